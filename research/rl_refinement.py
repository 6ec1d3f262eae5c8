"""Does refining the network's restoration against the data fix its feature positions?

    python research/rl_refinement.py [--model PATH] [--n-spectra 500] [--preset instrument]

Not a timing. The network restores clearly measured narrow features less precisely than the
input shows them (``python research/feature_breakdown.py``, clear features by FWHM), and
Richardson-Lucy places features better. This script asks whether a few Richardson-Lucy
iterations that start from the network's output (``richardson_lucy(..., initial=...)``) and
pull it back towards the measured data give both: the network's noise reduction and RL's
positions. It regenerates the first ``--n-spectra`` spectra of the evaluation's two sets of a
preset (``evaluation_set(preset)``, the same seeds as ``eelspecnet evaluate``: raw spectra on
their own channels, the truth's ZLP at the recorded ZLP's half-maximum centre), restores them
through the public path as users get it (``restore_batch``: ``EELSpecNetDeconvolution.run``,
the evaluation's ``EELSpecNet`` row) and prints, for that restoration, RL-50 and the
restoration refined by 2, 5 and 10 iterations, the evaluation's feature rows (found as a peak,
position error, false peaks, SSIM, MSE) and ZLP rows (noise-variance reduction, FWHM and FWTM
relative error), with two kernels: each spectrum's true blur (what the evaluation's RL-50 is
given, and no measurement gives) and the spectrum's own ZLP (``own_zlp_psf``, what a user has
and what ``eelspecnet_deconvolve`` gives its Richardson-Lucy).
"""

import argparse
import sys


import numpy as np  # noqa: E402

from hyperspy_eelspecnet.evaluation.metrics import (  # noqa: E402
    mse,
    peak_position_error,
    resolvable_features,
    shows_peak,
    ssim_1d,
)
from hyperspy_eelspecnet.evaluation.report import (  # noqa: E402
    NETWORK,
    evaluation_batches,
    evaluation_entropy,
    evaluation_set,
    feature_free_control,
    measured_centres,
    restore_batch,
    unit_area,
    zlp_metrics,
)
from hyperspy_eelspecnet.restoration import EELSpecNetDeconvolution, own_zlp_psf  # noqa: E402
from hyperspy_eelspecnet.richardson_lucy import richardson_lucy  # noqa: E402
from hyperspy_eelspecnet.training.generator import PRESETS  # noqa: E402

SEARCH_RADIUS = 10
REFINEMENT_ITERATIONS = (2, 5, 10)


def load_engine(path):
    """The engine of a model file (None: the bundled model); exits for fixed-window models."""
    engine = EELSpecNetDeconvolution(path)
    if not engine.contract.length_multiple:
        sys.exit(f"{engine!r} restores only a fixed window (made before 0.5.0); this script needs a "
                 "model of 0.5.0 or later (--model PATH).")
    return engine


def restorations(engine, batch):
    """The restoration (public path), RL-50 (true blur) and the restoration refined with each
    kernel, unit area over the measured channels."""
    restored = restore_batch(engine, batch, (50,), 256)
    methods = {NETWORK: restored[NETWORK], "RL-50": restored["RL-50"]}
    n_channels = batch.distorted.shape[1]
    own = own_zlp_psf(batch.distorted)
    kernels = {"true blur": (batch.psf, n_channels // 2), "own ZLP": (own, own.argmax(axis=1))}
    for label, (psf, origin) in kernels.items():
        refined = richardson_lucy(
            batch.distorted, psf, REFINEMENT_ITERATIONS, origin=origin, initial=restored[NETWORK]
        )
        for iterations, spectra in zip(REFINEMENT_ITERATIONS, refined):
            methods[f"{NETWORK} + RL-{iterations}, {label}"] = unit_area(spectra, batch.measured)
    return methods


def feature_rows(config, batch, methods):
    centres = measured_centres(batch)
    resolvable = resolvable_features(batch.ground_truth, centres, SEARCH_RADIUS)
    free = feature_free_control(config, batch, SEARCH_RADIUS)
    rows = {}
    for method, spectra in methods.items():
        errors = peak_position_error(spectra, centres, SEARCH_RADIUS, reference=batch.ground_truth)[resolvable]
        rows[method] = {
            "errors": errors,
            "false": shows_peak(spectra, free, SEARCH_RADIUS)[np.isfinite(free)],
            "ssim": ssim_1d(spectra, batch.ground_truth, mask=batch.measured),
            "mse": mse(spectra, batch.ground_truth, batch.measured),
        }
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--n-spectra", type=int, default=500)
    parser.add_argument("--preset", default="instrument", choices=list(PRESETS))
    args = parser.parse_args()

    engine = load_engine(args.model)
    config = evaluation_set(args.preset)
    features, zlp = {}, {}
    for batch in evaluation_batches(config, args.n_spectra, evaluation_entropy(args.preset, False), False, 500):
        for method, row in feature_rows(config, batch, restorations(engine, batch)).items():
            for key, values in row.items():
                features.setdefault(method, {}).setdefault(key, []).append(values)
    for batch in evaluation_batches(config, args.n_spectra, evaluation_entropy(args.preset, True), True, 500):
        values = zlp_metrics(config, batch, restorations(engine, batch))
        for key in ("noise_variance_reduction", "fwhm_relative_error", "fwtm_relative_error"):
            for method, per_spectrum in values[key].items():
                zlp.setdefault(method, {}).setdefault(key, []).append(per_spectrum)

    print(f"{args.preset}: {args.n_spectra} spectra of each evaluation set, model {engine.contract.name}"
          f" {engine.contract.version} ({engine.path}), the public path")
    print(f"  {'method':<34} {'found':>6} {'pos (ch)':>8} {'false':>6} {'SSIM':>9} {'MSE':>8}"
          f" {'noise red.':>10} {'FWHM err':>8} {'FWTM err':>8}")
    for method in features:
        f = {key: np.concatenate(v) for key, v in features[method].items()}
        z = {key: np.nanmedian(np.concatenate(v)) for key, v in zlp[method].items()}
        print(
            f"  {method:<34} {np.isfinite(f['errors']).mean():6.1%} {np.nanmedian(f['errors']):8.2f}"
            f" {f['false'].mean():6.1%} {np.median(f['ssim']):9.6f} {np.median(f['mse']):8.1e}"
            f" {z['noise_variance_reduction']:10.4g} {z['fwhm_relative_error']:7.3f}% {z['fwtm_relative_error']:7.3f}%"
        )


if __name__ == "__main__":
    main()
