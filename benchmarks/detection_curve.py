"""Found as a peak against found where there is none: each method's detection curve.

    python benchmarks/detection_curve.py [--model PATH] [--n-spectra 2000] [--preset instrument]

Not a timing. The evaluation's row "Resolvable features found as a peak" rises for any method
that leaves more noise: in a window of pure noise the highest channel lies inside 19 times in
21. Its control row, "Feature-free positions where a peak is found all the same", measures
that. One (found, false) pair per method does not say which method detects features better;
comparing them at the same false-peak rate does. This script regenerates the evaluation's
feature set of a preset (the same seeds as ``eelspecnet evaluate``), restores it with the model
and with Richardson-Lucy (50 iterations, true PSF), smooths every output with Gaussians of
increasing width (a smoother output finds fewer features and fewer false ones; the widths of
the evaluation, ``DETECTION_SMOOTHING_SIGMAS``), and prints, for the input, EELSpecNet and
RL-50, both fractions at each width: a detection curve per method. It ends with the fraction of
features each method finds at the unsmoothed network's false-peak rate (linear interpolation
along its curve; "-" where its curve does not reach it), the evaluation's row of that name.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from hyperspy_eelspecnet.evaluation.metrics import (  # noqa: E402
    found_at_false_rate,
    resolvable_features,
    smoothed_peak_flags,
)
from hyperspy_eelspecnet.evaluation.report import (  # noqa: E402
    DETECTION_SMOOTHING_SIGMAS,
    NETWORK,
    evaluation_batches,
    evaluation_entropy,
    feature_free_control,
    measured_centres,
    restore_batch,
)
from hyperspy_eelspecnet.model import load_model  # noqa: E402
from hyperspy_eelspecnet.training import preset  # noqa: E402
from hyperspy_eelspecnet.training.generator import PRESETS  # noqa: E402

SEARCH_RADIUS = 10
RL = "RL-50"
METHODS = ("input", NETWORK, RL)


def detection_flags(config, batch, restored):
    """Per method: found flags at resolvable features and at feature-free positions, one column per width."""
    centres = measured_centres(batch)
    resolvable = resolvable_features(batch.ground_truth, centres, SEARCH_RADIUS)
    free = feature_free_control(config, batch, SEARCH_RADIUS)  # as the evaluation's control row
    flags = {}
    for method in METHODS:
        spectra = batch.distorted if method == "input" else restored[method]
        flags[method] = (
            smoothed_peak_flags(spectra, centres, DETECTION_SMOOTHING_SIGMAS, SEARCH_RADIUS)[resolvable],
            smoothed_peak_flags(spectra, free, DETECTION_SMOOTHING_SIGMAS, SEARCH_RADIUS)[np.isfinite(free)],
        )
    return flags


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--n-spectra", type=int, default=2000)
    parser.add_argument("--preset", default="instrument", choices=list(PRESETS))
    args = parser.parse_args()

    model, _ = load_model(args.model)
    config = preset(args.preset)
    entropy = evaluation_entropy(args.preset, False)
    found, false = {}, {}
    for batch in evaluation_batches(config, args.n_spectra, entropy, False, 500):
        restored = restore_batch(model, batch, (50,), 256)
        for method, (at_features, at_free) in detection_flags(config, batch, restored).items():
            found.setdefault(method, []).append(at_features)
            false.setdefault(method, []).append(at_free)
    # Per method: (false-peak fractions, found fractions), one per smoothing width.
    curves = {m: (np.concatenate(false[m]).mean(axis=0), np.concatenate(found[m]).mean(axis=0)) for m in METHODS}

    print(f"{args.preset}: {args.n_spectra} spectra with features, model {args.model or 'bundled'}")
    print("Gaussian smoothing (channels): found at resolvable features / found at feature-free positions")
    print(f"  {'sigma':>5}  " + "  ".join(f"{m:>18}" for m in METHODS))
    for i, sigma in enumerate(DETECTION_SMOOTHING_SIGMAS):
        cells = [f"{curves[m][1][i]:7.1%} / {curves[m][0][i]:7.1%}" for m in METHODS]
        print(f"  {sigma:5.1f}  " + "  ".join(cells))
    reference_false = curves[NETWORK][0][0]
    print(f"\nFound at the network's false-peak rate ({reference_false:.1%}):")
    for method in METHODS:
        value = found_at_false_rate(*curves[method], reference_false)
        print(f"  {method:<11} " + ("-" if np.isnan(value) else f"{value:.1%}"))


if __name__ == "__main__":
    main()
