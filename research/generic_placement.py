"""Does a generic check of a fine-tuned model predict where it puts the demo's phonon?

    python research/generic_placement.py VACUUM.hspy MODEL [MODEL ...]

For each model, 200 spectra per band of one Lorentzian feature (0.4-1.0 vacuum ZLP FWHM wide,
1/300-1/3000 of the ZLP) 1.2-1.7, 1.7-2.3, 2.3-3.2 and 3.2-4.5 FWHM above the ZLP, blurred by
the given vacuum spectra (as ``evaluation.report.near_zlp_significance`` draws its sets,
1e6-1e8 electrons), restored through ``EELSpecNetDeconvolution.run``: the signed position error
of the restored maximum against the truth's (median, quartiles; positive: too high in energy)
and the share within 1.5 channels. Compare with the demo's phonon along the wire
(``research/phonon_positions.py MODEL --demo``), 1.45 FWHM out.
"""

import argparse
import warnings
from dataclasses import replace

import numpy as np

import hyperspy.api as hs
from hyperspy_eelspecnet import EELSpecNetDeconvolution
from hyperspy_eelspecnet.evaluation.metrics import peak_position_error
from hyperspy_eelspecnet.spectral import fwhm
from hyperspy_eelspecnet.training.generator import generate_batch, preset
from hyperspy_eelspecnet.vacuum import prepare_vacuum_psfs

BANDS_FWHM = ((1.2, 1.7), (1.7, 2.3), (2.3, 3.2), (3.2, 4.5))
N_SPECTRA = 200


def band_config(width, low, high):
    return replace(
        preset("instrument"), n_peaks=(1, 1), peak_near_zlp_fraction=1.0, peak_near_zlp_distance=(low * width, high * width),
        peak_fwhm=(0.4 * width, 1.0 * width), peak_fwhm_log=False, peak_ratio=(300.0, 3000.0), continuum_probability=0.0,
        window_probability=0.0, zlp_centre="half_maximum", measured_psf_probability=1.0,
        measured_psf_extra_fwhm=(0.0, 1.0), jitter_amplitude=(0.0, 1.0), zlp_drift=(-30.0, 30.0), total_counts=(1e6, 1e8),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vacuum", help="vacuum spectra (e.g. DEMO/silver_nanowire_vacuum.hspy)")
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    vacuum = np.asarray(hs.load(args.vacuum).data, float)
    width = float(np.median(fwhm(prepare_vacuum_psfs(vacuum).psfs)))
    print(f"vacuum ZLP FWHM {width:.2f} channels")
    batches = []
    for low, high in BANDS_FWHM:
        config = band_config(width, low, high)
        psfs = prepare_vacuum_psfs(vacuum, 2 * config.n_channels).psfs
        batch = generate_batch(config, N_SPECTRA, np.random.SeedSequence([7, int(low * 10)]), measured_psfs=psfs)
        batches.append((low, high, batch))
    for path in args.models:
        engine = EELSpecNetDeconvolution(path)
        print(path)
        for low, high, batch in batches:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                restored = engine.run(batch.distorted)
            error = peak_position_error(
                restored, batch.parameters["peak_centres"], 0.4 * low * width, reference=batch.ground_truth, signed=True
            )[:, 0]
            q1, median, q3 = np.nanpercentile(error, [25, 50, 75])
            print(f"  {low:g}-{high:g} FWHM out: signed error median {median:+.2f} [{q1:+.2f}, {q3:+.2f}] channels, "
                  f"within 1.5: {100 * np.mean(np.abs(error) <= 1.5):.0f} %")


if __name__ == "__main__":
    main()
