"""Found as a peak against found where there is none: each method's detection curve.

    python benchmarks/detection_curve.py [--model PATH] [--n-spectra 2000] [--preset instrument]

Not a timing. The evaluation's row "Resolvable features found as a peak" rises for any method
that leaves more noise: in a window of pure noise the highest channel lies inside 19 times in
21. Its control row, "Feature-free positions where a peak is found all the same", measures
that. One (found, false) pair per method does not say which method detects features better;
comparing them at the same false-peak rate does. This script regenerates the evaluation's
feature set of a preset (the same seeds as ``eelspecnet evaluate``), restores it with the model
and with Richardson-Lucy (50 iterations, true PSF), smooths every output with Gaussians of
increasing width (a smoother output finds fewer features and fewer false ones), and prints,
for the input, EELSpecNet and RL-50, both fractions at each width: a detection curve per
method. It ends with the fraction of features each method finds at the unsmoothed network's
false-peak rate (linear interpolation along its curve; "-" where its curve does not reach it).
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter1d  # noqa: E402

from hyperspy_eelspecnet.evaluation.metrics import resolvable_features, shows_peak  # noqa: E402
from hyperspy_eelspecnet.evaluation.report import (  # noqa: E402
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
SMOOTHING_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # channels


def detection_flags(config, batch, restored):
    """Per method and smoothing width: found flags at resolvable features and at feature-free positions."""
    centres = measured_centres(batch)
    resolvable = resolvable_features(batch.ground_truth, centres, SEARCH_RADIUS)
    free = feature_free_control(config, batch, SEARCH_RADIUS)  # as the evaluation's control row
    flags = {}
    for method in METHODS:
        spectra = batch.distorted if method == "input" else restored[method]
        for sigma in SMOOTHING_SIGMAS:
            smoothed = gaussian_filter1d(spectra, sigma, axis=1) if sigma else spectra
            flags[method, sigma] = (
                shows_peak(smoothed, centres, SEARCH_RADIUS)[resolvable],
                shows_peak(smoothed, free, SEARCH_RADIUS)[np.isfinite(free)],
            )
    return flags


def found_at_false_rate(curve, false_rate):
    """Found fraction along a (false, found) curve at ``false_rate``; NaN outside the curve."""
    false, found = np.array(curve).T
    order = np.argsort(false)
    return float(np.interp(false_rate, false[order], found[order], left=np.nan, right=np.nan))


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
        for key, (at_features, at_free) in detection_flags(config, batch, restored).items():
            found.setdefault(key, []).append(at_features)
            false.setdefault(key, []).append(at_free)
    rates = {key: (np.concatenate(false[key]).mean(), np.concatenate(found[key]).mean()) for key in found}

    print(f"{args.preset}: {args.n_spectra} spectra with features, model {args.model or 'bundled'}")
    print("Gaussian smoothing (channels): found at resolvable features / found at feature-free positions")
    print(f"  {'sigma':>5}  " + "  ".join(f"{m:>18}" for m in METHODS))
    for sigma in SMOOTHING_SIGMAS:
        cells = [f"{rates[m, sigma][1]:7.1%} / {rates[m, sigma][0]:7.1%}" for m in METHODS]
        print(f"  {sigma:5.1f}  " + "  ".join(cells))
    reference_false = rates[NETWORK, 0.0][0]
    print(f"\nFound at the network's false-peak rate ({reference_false:.1%}):")
    for method in METHODS:
        value = found_at_false_rate([rates[method, s] for s in SMOOTHING_SIGMAS], reference_false)
        print(f"  {method:<11} " + ("-" if np.isnan(value) else f"{value:.1%}"))


if __name__ == "__main__":
    main()
