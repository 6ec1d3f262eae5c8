"""A phonon spectrum image from an instrument unlike the demo's, restored blind, fine-tuned on its
own vacuum, and by Richardson-Lucy with that vacuum as PSF.

The instrument: a PSF with power-law tails (``K(x) = 1 / (1 + |x / w|^p)``, loss side ``w``
times ``--asymmetry`` wider than the gain side), ``--fwhm`` channels wide, energy jitter and a
ZLP drift of a channel or two. The specimen: a ``--rows`` x ``--columns`` map of 1024-channel
spectra at ``--dispersion`` eV per channel whose left three quarters hold a phonon at
``--phonon-ev`` (an antisymmetric Lorentzian, ``--phonon-fwhm`` channels, its gain-side twin by
detailed balance at 295 K) whose strength grows across the map from ``--strength`` low to
high, as a fraction of the recorded signal at the phonon's energy; the right quarter has none
(the control pixels). A broad loss continuum from 0.5 eV sits under everything. 32 vacuum
spectra of the same instrument are the fine-tune's input.

Printed, for each method: the share of phonon pixels whose strongest feature within the phonon
window (2.5 phonon FWHM either side) lies within 1.5 channels of the truth's (found), the share
of control pixels showing a feature there (false), the median position error over the pixels
found, the correlation of the energy-filtered phonon map (the phonon's energy +-1 FWHM) with
the truth's, the same for the whole phonon window (whose low edge can reach within a few
channels of the ZLP, where the map is the ZLP's foot more than the phonon: see
``research/instrument_map.py``), and NaN/negative counts.

    python research/instrument_phonons.py --out runs/instrument_a --minutes 20
    python research/instrument_phonons.py --out runs/instrument_b --fwhm 18 --asymmetry 2 --phonon-ev 0.16
    python research/instrument_phonons.py --out runs/instrument_a --reuse   # measure again, no fine-tune
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


import numpy as np  # noqa: E402

import hyperspy_eelspecnet  # noqa: E402,F401
from hyperspy_eelspecnet.analysis import energy_filtered_maps  # noqa: E402
from hyperspy_eelspecnet.features import find_loss_features, strongest_in_window  # noqa: E402
from hyperspy_eelspecnet.training import finetune  # noqa: E402
from hyperspy_eelspecnet.training.generator import BOLTZMANN_EV_PER_K, blur_spectra, quasi_dirac_zlp  # noqa: E402

N_CHANNELS = 1024
ZLP_CHANNEL = 200


def power_law_psf(fwhm, asymmetry, exponent, n):
    """Unit-sum kernel on offsets -n ... n - 1 with its half maximum at -fwhm/(1+a) and fwhm a/(1+a)."""
    offsets = np.arange(2 * n) - n
    half = np.where(offsets > 0, fwhm * asymmetry / (1 + asymmetry), fwhm / (1 + asymmetry))
    kernel = 1.0 / (1.0 + np.abs(offsets / half) ** exponent)
    return kernel / kernel.sum()


def antisymmetric_lorentzian(energy, centre, fwhm, temperature=295.0):
    half_sq = (0.5 * fwhm) ** 2
    magnitude = np.abs(energy)
    response = half_sq / ((magnitude - centre) ** 2 + half_sq) - half_sq / ((magnitude + centre) ** 2 + half_sq)
    return np.where(energy >= 0, response, response * np.exp(-magnitude / (BOLTZMANN_EV_PER_K * temperature)))


def simulate(args, rng):
    """(specimen counts, truth, vacuum counts, phonon mask) as arrays."""
    ny, nx, n = args.rows, args.columns, N_CHANNELS
    channels = np.arange(n, dtype=float)
    psf = power_law_psf(args.fwhm, args.asymmetry, args.exponent, n)[None, :]

    def blur(truth):
        shifts = rng.uniform(-args.jitter, args.jitter, (truth.shape[0], 25))
        shifts[:, 0] = 0.0
        return blur_spectra(truth, psf, shifts)[0]

    count = ny * nx
    drift = rng.uniform(-1.5, 1.5, count)
    zlp = ZLP_CHANNEL + drift
    energy = (channels[None, :] - zlp[:, None]) * args.dispersion
    zlp_peak = quasi_dirac_zlp(channels, zlp)
    continuum = 2e-4 * np.clip((energy - 0.5) / 1.0, 0, None) ** 0.5 * np.exp(-np.clip(energy - 0.5, 0, None) / 4)
    phonon_shape = antisymmetric_lorentzian(energy, args.phonon_ev, args.phonon_fwhm * args.dispersion)
    columns = np.tile(np.arange(nx), ny)
    has_phonon = columns < int(0.75 * nx)
    # Strength: the phonon's share of the recorded signal at its energy, growing across the map.
    share = np.where(has_phonon, np.interp(columns, [0, 0.75 * nx - 1], args.strength), 0.0)
    background = blur(zlp_peak + continuum)
    unit = blur(phonon_shape)
    at = np.argmin(np.abs(energy - args.phonon_ev), axis=1)
    rows = np.arange(count)
    height = share / np.maximum(1 - share, 1e-9) * background[rows, at] / np.maximum(unit[rows, at], 1e-30)
    truth = zlp_peak + continuum + height[:, None] * phonon_shape
    blurred = background + height[:, None] * unit
    counts = args.counts * blurred / blurred.sum(axis=1, keepdims=True)
    specimen = rng.poisson(counts).astype(np.float32)
    truth = (truth / truth.sum(axis=1, keepdims=True) * args.counts).astype(np.float32)
    vacuum_truth = quasi_dirac_zlp(channels, ZLP_CHANNEL + rng.uniform(-1.5, 1.5, 32))
    vacuum = blur(vacuum_truth)
    vacuum = rng.poisson(10 * args.counts * vacuum / vacuum.sum(axis=1, keepdims=True)).astype(np.float32)
    shape = (ny, nx, n)
    return specimen.reshape(shape), truth.reshape(shape), vacuum, has_phonon.reshape(ny, nx)


def as_signal(data, dispersion, title):
    from exspy.signals import EELSSpectrum

    signal = EELSSpectrum(data)
    axis = signal.axes_manager.signal_axes[0]
    axis.scale, axis.offset, axis.units, axis.name = dispersion, -ZLP_CHANNEL * dispersion, "eV", "Energy loss"
    signal.metadata.General.title = title
    return signal


def scores(restored, truth, has_phonon, window, dispersion, map_window):
    energy = truth.axes_manager.signal_axes[0].axis
    data = np.asarray(restored.data)
    found_energy = strongest_in_window(find_loss_features(data, energy), window)
    true_energy = strongest_in_window(find_loss_features(np.asarray(truth.data), energy), window)
    error = np.abs(found_energy - true_energy) / dispersion
    found = error <= 1.5
    maps = [energy_filtered_maps(s, {"Ph": map_window}).data[0] for s in (restored, truth)]
    wide_maps = [energy_filtered_maps(s, {"Ph": window}).data[0] for s in (restored, truth)]
    return {
        "found": float(found[has_phonon].mean()),
        "false": float(np.isfinite(found_energy[~has_phonon]).mean()),
        "median_error_channels": float(np.nanmedian(error[has_phonon & found])) if found[has_phonon].any() else np.nan,
        "map_correlation": float(np.corrcoef(maps[0].ravel(), maps[1].ravel())[0, 1]),
        "wide_map_correlation": float(np.corrcoef(wide_maps[0].ravel(), wide_maps[1].ravel())[0, 1]),
        "non_finite": int((~np.isfinite(data)).sum()),
        "negative": int((data < 0).sum()),
    }


def instrument_parser(description=__doc__.splitlines()[0]):
    """An argument parser with the instrument's and the specimen's options (and their defaults)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--fwhm", type=float, default=10.0, help="PSF FWHM, channels")
    parser.add_argument("--asymmetry", type=float, default=1.6, help="loss-side / gain-side half width")
    parser.add_argument("--exponent", type=float, default=2.5, help="power of the PSF's tails")
    parser.add_argument("--jitter", type=float, default=1.5, help="jitter half-amplitude, channels")
    parser.add_argument("--dispersion", type=float, default=0.005)
    parser.add_argument("--phonon-ev", type=float, default=0.12)
    parser.add_argument("--phonon-fwhm", type=float, default=8.0, help="channels")
    parser.add_argument("--strength", type=float, nargs=2, default=(0.05, 0.5))
    parser.add_argument("--counts", type=float, default=5e6)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--columns", type=int, default=32)
    parser.add_argument("--seed", type=int, default=3)
    return parser


def main():
    parser = instrument_parser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--model", default=None, help="base model (default: the bundled one)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the model already fine-tuned in OUT/finetuned instead of fine-tuning again")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    specimen, truth, vacuum, has_phonon = simulate(args, rng)
    s = as_signal(specimen, args.dispersion, "specimen")
    t = as_signal(truth, args.dispersion, "truth")
    v = as_signal(vacuum, args.dispersion, "vacuum")
    s.save(out / "specimen.hspy", overwrite=True)
    v.save(out / "vacuum.hspy", overwrite=True)
    started = time.time()
    tuned = out / "finetuned" / "eelspecnet.keras"
    reused = args.reuse and tuned.exists()
    if not reused:
        tuned = finetune(out / "vacuum.hspy", out / "finetuned", minutes=args.minutes, model=args.model,
                         specimen=out / "specimen.hspy")
    blind, rl = s.eelspecnet_deconvolve(model=args.model, rl_iterations=50, psf=v)
    restored, _ = s.eelspecnet_deconvolve(model=tuned, rl_iterations=0)
    minutes = (time.time() - started) / 60
    half = 2.5 * args.phonon_fwhm * args.dispersion
    window = (args.phonon_ev - half, args.phonon_ev + half)
    map_window = (args.phonon_ev - args.phonon_fwhm * args.dispersion, args.phonon_ev + args.phonon_fwhm * args.dispersion)
    print(f"Instrument: power-law PSF, FWHM {args.fwhm:g} ch, asymmetry {args.asymmetry:g}, exponent "
          f"{args.exponent:g}; phonon at {args.phonon_ev:g} eV ({args.phonon_fwhm:g} ch), {args.strength[0]:.0%}-"
          f"{args.strength[1]:.0%} of the signal there; {int(has_phonon.sum())} phonon and "
          f"{int((~has_phonon).sum())} control pixels; window {window[0]:.3f}-{window[1]:.3f} eV, map "
          f"{map_window[0]:.3f}-{map_window[1]:.3f} eV")
    print(f"{'Restoration' if reused else 'Fine-tune and restoration'}: {minutes:.1f} min")
    for label, result in (("input", s), ("EELSpecNet, blind", blind), ("EELSpecNet, fine-tuned", restored),
                          ("Richardson-Lucy 50, vacuum PSF", rl)):
        r = scores(result, t, has_phonon, window, args.dispersion, map_window)
        print(f"  {label:32s} found {100 * r['found']:5.1f} %  false {100 * r['false']:5.1f} %  median error "
              f"{r['median_error_channels']:.2f} ch  map correlation {r['map_correlation']:.3f} "
              f"(whole window {r['wide_map_correlation']:.3f})  "
              f"non-finite {r['non_finite']}  negative {r['negative']}")


if __name__ == "__main__":
    main()
