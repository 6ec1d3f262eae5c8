"""WS2 through the vacuum route: the bundled (blind) model against one fine-tuned on WS2's vacuum.

    eelspecnet finetune tests/data/eelsfitter_ws2/Position-[23]-Vacuum*.txt \
        --specimen tests/data/eelsfitter_ws2/Position-[5678]-Specimen*.txt \
        --dispersion 0.005 --out runs/ws2_finetuned --minutes 20
    python research/ws2_vacuum_route.py --model runs/ws2_finetuned/eelspecnet.keras

Every restoration is the public path, ``s.eelspecnet_deconvolve`` on the four WS2 specimen
spectra (2000 channels, -0.93 to 9.07 eV, ZLP near channel 186); Richardson-Lucy (50
iterations) gets the mean of the two vacuum spectra as its PSF (``psf=``, prepared as the
fine-tune prepares them). Per spectrum: the ZLP FWHM (channels) and how many times narrower
than the input's; restored/input intensity over the band-gap onset (1.5-2 eV), the loss
continuum (2-8 eV) and its 0.5-eV bins; negative and non-finite channels. Issue 22's bars: ZLP
narrowed >= 5 times, 2-8 eV kept within 25 %, no negative or non-finite value.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_checks import load_ws2  # noqa: E402

import hyperspy_eelspecnet  # noqa: E402,F401  (registers eelspecnet_deconvolve)
from hyperspy_eelspecnet.spectral import fwhm  # noqa: E402

ONSET = (1.5, 2.0)
CONTINUUM = (2.0, 8.0)
BIN_EV = 0.5


def band_ratios(restored, data, energy):
    """Restored/input intensity over the onset, the continuum and its bins, per spectrum."""
    def ratio(low, high):
        band = (energy >= low - 1e-9) & (energy < high - 1e-9)
        return restored[:, band].sum(-1) / data[:, band].sum(-1)

    bins = np.stack([ratio(low, low + BIN_EV) for low in np.arange(*CONTINUUM, BIN_EV)], axis=1)
    return ratio(*ONSET), ratio(*CONTINUUM), bins


def report(label, restored, data, energy):
    width, width_in = fwhm(restored), fwhm(data)
    onset, continuum, bins = band_ratios(restored, data, energy)
    print(f"{label}")
    print("  ZLP FWHM (channels):", np.round(width, 2), " narrowed", np.round(width_in / width, 1), "times")
    print(f"  restored/input {ONSET[0]}-{ONSET[1]} eV:", np.round(onset, 3))
    print(f"  restored/input {CONTINUUM[0]}-{CONTINUUM[1]} eV:", np.round(continuum, 3),
          f" per {BIN_EV}-eV bin {bins.min():.3f} to {bins.max():.3f}")
    print("  negative channels:", int((restored < 0).sum()), " non-finite:", int((~np.isfinite(restored)).sum()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the model fine-tuned on the WS2 vacuum spectra")
    args = parser.parse_args()

    specimen = load_ws2("Specimen")
    vacuum = load_ws2("Vacuum")
    data = np.asarray(specimen.data, float)
    energy = specimen.axes_manager.signal_axes[0].axis
    print("WS2 specimen spectra, 4 x 2000 channels; input ZLP FWHM (channels):", np.round(fwhm(data), 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        blind, _ = specimen.eelspecnet_deconvolve(show_progressbar=False)
        tuned, rl = specimen.eelspecnet_deconvolve(model=args.model, psf=vacuum, rl_iterations=50, show_progressbar=False)
    for text in dict.fromkeys(str(w.message).split(": ")[0] for w in caught):
        print(f"  warning: {text}")
    report("bundled model (blind)", np.asarray(blind.data), data, energy)
    report(f"fine-tuned on the vacuum ({args.model})", np.asarray(tuned.data), data, energy)
    report("Richardson-Lucy, 50 iterations, vacuum PSF", np.asarray(rl.data), data, energy)


if __name__ == "__main__":
    main()
