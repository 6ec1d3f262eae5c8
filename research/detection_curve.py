"""Found as a peak against found where there is none: each method's detection curve.

    python research/detection_curve.py [--model PATH] [--n-spectra 2000] [--preset instrument]

Not a timing. The evaluation's row "Resolvable features found as a peak" rises for any method
that leaves more noise: in a window of pure noise the highest channel lies inside 19 times in
21. Its control row, "Feature-free positions where a peak is found all the same", measures
that. One (found, false) pair per method does not say which method detects features better;
comparing them at the same false-peak rate does. This script runs the evaluation on one preset
(``evaluate(engine, presets=(preset,), windows=False)``: the same sets and seeds as
``eelspecnet evaluate``, raw spectra on their own channels, the truth's ZLP at the recorded
ZLP's half-maximum centre) with the model through the public path (``EELSpecNet``:
``EELSpecNetDeconvolution.run``, as users get it) and Richardson-Lucy (50 iterations, true
PSF); the evaluation smooths every output with Gaussians of increasing width (a smoother
output finds fewer features and fewer false ones; ``DETECTION_SMOOTHING_SIGMAS``), and this
prints, for the input, EELSpecNet and
RL-50, both fractions at each width: a detection curve per method. It ends with the fraction of
features each method finds at the unsmoothed network's false-peak rate (linear interpolation
along its curve; "-" where its curve does not reach it), the evaluation's row of that name.
"""

import argparse
import sys


from hyperspy_eelspecnet.evaluation.report import INPUT, NETWORK, evaluate  # noqa: E402
from hyperspy_eelspecnet.restoration import EELSpecNetDeconvolution  # noqa: E402
from hyperspy_eelspecnet.training.generator import PRESETS  # noqa: E402

RL = "RL-50"
METHODS = (INPUT, NETWORK, RL)


def load_engine(path):
    """The engine of a model file (None: the bundled model); exits for fixed-window models."""
    engine = EELSpecNetDeconvolution(path)
    if not engine.contract.length_multiple:
        sys.exit(f"{engine!r} restores only a fixed window (made before 0.5.0); this script needs a "
                 "model of 0.5.0 or later (--model PATH).")
    return engine


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--n-spectra", type=int, default=2000)
    parser.add_argument("--preset", default="instrument", choices=list(PRESETS))
    args = parser.parse_args()

    engine = load_engine(args.model)
    results = evaluate(engine, presets=(args.preset,), n_spectra=args.n_spectra, rl_iterations=(50,), windows=False)
    peaks = results["presets"][args.preset]["summary"]["peak_position_error"]
    curves = {method: peaks[method]["detection_curve"] for method in METHODS}

    print(f"\n{args.preset}: {args.n_spectra} spectra with features, model {engine.contract.name}"
          f" {engine.contract.version} ({engine.path}), the public path")
    print("Gaussian smoothing (channels): found at resolvable features / found at feature-free positions")
    print(f"  {'sigma':>5}  " + "  ".join(f"{m:>18}" for m in METHODS))
    for i, sigma in enumerate(curves[NETWORK]["smoothing_sigmas"]):
        cells = [f"{curves[m]['found_fraction'][i]:7.1%} / {curves[m]['false_peak_fraction'][i]:7.1%}" for m in METHODS]
        print(f"  {sigma:5.1f}  " + "  ".join(cells))
    print(f"\nFound at the network's false-peak rate ({peaks[NETWORK]['false_peak_fraction']:.1%}):")
    for method in METHODS:
        value = peaks[method]["found_at_network_false_rate"]
        print(f"  {method:<11} " + ("-" if value is None else f"{value:.1%}"))


if __name__ == "__main__":
    main()
