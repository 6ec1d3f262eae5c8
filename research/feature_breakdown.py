"""Where the feature rows of the evaluation are won and lost: a per-feature breakdown.

    python research/feature_breakdown.py [--model PATH] [--n-spectra 1000] [--preset instrument]
                                           [--jitter uniform gaussian arcsine bimodal]
                                           [--plot-missed FILE.png]

Not a timing. It regenerates the evaluation's feature set of a preset (its generator
configuration ``evaluation_set(preset)``: the raw spectra on their own channels, the ZLP
drifting, the truth's ZLP at the recorded ZLP's half-maximum centre; the same seeds as
``eelspecnet evaluate``: ``SeedSequence([20221014, p, 1, block])``, ``p`` 0 for ``reference``
and 1 for ``instrument``; with the default ``--n-spectra`` the first half of the report's
2000-spectrum set), restores it as users get it, through the public path (``restore_batch``:
``EELSpecNetDeconvolution.run``, the network over the spectrum's own channels, counts restored;
the evaluation's ``EELSpecNet`` row, not its bare-network diagnostic), and with Richardson-Lucy
(50 iterations, true PSF), and prints, for the input, EELSpecNet and RL-50, the fraction of
resolvable features found as a peak and the median position error (the evaluation's two
feature rows), split by the feature's FWHM, its height relative to the ZLP, its distance to the
ZLP, its signal-to-noise ratio and the noise of its spectrum (noise standard deviation at the
ZLP maximum over that maximum), and the clearly measured features (SNR >= 10) by FWHM; first
over all resolvable features and over those both EELSpecNet and RL-50 find (position errors on
the same features). Then, for the clear features narrower than 15 channels, each method's
median signed offset (a bias moves them all one way; a spread leaves it near 0), and last, of
those that RL-50 finds as a peak and the network does not, how many the network still shows
as a local maximum near the centre (a bump lower than its sloping window's edge) rather than
moved away or smoothed out. With ``--jitter``, every spectrum's jitter is drawn from the named
distributions instead of the preset's (the same seeds otherwise): how much of the deficit one
jitter shape makes. With ``--plot-missed``, the first twelve of those clear narrow features
that RL-50 finds and the network does not are drawn (truth, input, RL-50, network; +-60
channels) into a PNG file: what the missing rows look like.

The signal-to-noise ratio of a feature is that of a matched filter over the search window
(+-10 channels): the root of the summed squares of the feature's own blurred profile (its
Lorentzian convolved with the spectrum's true blur) over the standard deviation of the noise
in the window (distorted minus noise-free spectrum). Below ~3 the measurement does not show
the feature; there "found" and "position" reflect how a method treats noise.
"""

import argparse
import dataclasses
import sys


import numpy as np  # noqa: E402

from hyperspy_eelspecnet.evaluation.metrics import peak_position_error, resolvable_features  # noqa: E402
from hyperspy_eelspecnet.evaluation.report import (  # noqa: E402
    NETWORK,
    evaluation_batches,
    evaluation_entropy,
    evaluation_set,
    measured_centres,
    restore_batch,
)
from hyperspy_eelspecnet.restoration import EELSpecNetDeconvolution  # noqa: E402
from hyperspy_eelspecnet.training.generator import PRESETS  # noqa: E402

SEARCH_RADIUS = 10
MISSED_DRAWN = 12
RL = "RL-50"
METHODS = ("input", NETWORK, RL)


def matched_filter_snr(batch, centres):
    """Signal-to-noise ratio of each feature in its search window (NaN for padding)."""
    n = batch.ground_truth.shape[1]
    channels = np.arange(n)
    # Truth spectra are unit-area with a ZLP of height 1 before normalisation: its maximum is
    # the normalisation factor of the feature heights.
    scale = batch.ground_truth.max(axis=1)
    padded = np.zeros((batch.psf.shape[0], 2 * n))
    padded[:, (np.arange(n) - n // 2) % (2 * n)] = batch.psf  # zero shift at index 0
    blur_ft = np.fft.rfft(padded, axis=1)
    noise = batch.distorted.astype(float) - batch.noise_free.astype(float)
    snr = np.full(centres.shape, np.nan)
    p = batch.parameters
    for i, j in zip(*np.nonzero(np.isfinite(centres))):
        half = 0.5 * p["peak_fwhms"][i, j]
        profile = scale[i] * p["peak_heights"][i, j] * half**2 / ((channels - centres[i, j]) ** 2 + half**2)
        blurred = np.fft.irfft(np.fft.rfft(profile, 2 * n) * blur_ft[i], 2 * n)[:n]
        low = int(max(centres[i, j] - SEARCH_RADIUS, 0))
        high = int(min(centres[i, j] + SEARCH_RADIUS + 1, n))
        measured = batch.measured[i, low:high]
        if measured.sum() > 3:
            snr[i, j] = np.sqrt(np.sum(blurred[low:high][measured] ** 2)) / noise[i, low:high][measured].std()
    return snr


def nearest_local_maximum(spectra, centres, radius=SEARCH_RADIUS):
    """Distance (channels) from each centre to the nearest local maximum of the spectrum within
    ``radius``; NaN where there is none (or for padding)."""
    n = spectra.shape[1]
    interior = np.zeros(spectra.shape, bool)
    interior[:, 1:-1] = (spectra[:, 1:-1] > spectra[:, :-2]) & (spectra[:, 1:-1] >= spectra[:, 2:])
    offsets = np.arange(-radius, radius + 1)
    window = np.clip(np.round(np.nan_to_num(centres)).astype(int)[..., None] + offsets, 0, n - 1)
    is_max = interior[np.arange(spectra.shape[0])[:, None, None], window] & np.isfinite(centres)[..., None]
    distance = np.where(is_max, np.abs(offsets), np.inf).min(axis=-1)
    return np.where(np.isfinite(distance), distance, np.nan)


def clear_narrow(snr, fwhm):
    """The clearly measured narrow features: matched-filter SNR >= 10, FWHM < 15 channels."""
    return (snr >= 10) & (fwhm < 15)


def load_engine(path):
    """The engine of a model file (None: the bundled model); exits for fixed-window models."""
    engine = EELSpecNetDeconvolution(path)
    if not engine.contract.length_multiple:
        sys.exit(f"{engine!r} restores only a fixed window (made before 0.5.0); this script needs a "
                 "model of 0.5.0 or later (--model PATH).")
    return engine


def collect(engine, name, n_spectra, jitter=None, missed_examples=None):
    """One row per resolvable feature: its properties and each method's signed position offset
    (NaN where the method shows no peak).

    ``jitter``: jitter distributions to draw from instead of the preset's (same seeds).
    ``missed_examples``: a list that receives, for the first ``MISSED_DRAWN`` clear narrow
    features RL-50 finds as a peak and the network does not, a dict of its centre, properties
    and the four spectra.
    """
    config = evaluation_set(name)
    if jitter:
        config = dataclasses.replace(config, jitter_distributions=list(jitter))
    rows = []
    for batch in evaluation_batches(config, n_spectra, evaluation_entropy(name, False), False, 500):
        restored = restore_batch(engine, batch, (50,), 256)
        p = batch.parameters
        centres = measured_centres(batch)
        resolvable = resolvable_features(batch.ground_truth, centres, SEARCH_RADIUS)
        offsets = {
            method: peak_position_error(spectra, centres, SEARCH_RADIUS, reference=batch.ground_truth, signed=True)
            for method, spectra in (("input", batch.distorted), (NETWORK, restored[NETWORK]), (RL, restored[RL]))
        }
        snr = matched_filter_snr(batch, centres)
        network_bump = nearest_local_maximum(restored[NETWORK], centres)
        if missed_examples is not None:
            missed = resolvable & clear_narrow(snr, p["peak_fwhms"]) & np.isnan(offsets[NETWORK])
            wanted = MISSED_DRAWN - len(missed_examples)
            for i, j in list(zip(*np.nonzero(missed & np.isfinite(offsets[RL]))))[:wanted]:
                missed_examples.append(
                    {
                        "centre": centres[i, j], "fwhm": p["peak_fwhms"][i, j], "height": p["peak_heights"][i, j],
                        "snr": snr[i, j], "truth": batch.ground_truth[i], "input": batch.distorted[i],
                        RL: restored[RL][i], NETWORK: restored[NETWORK][i],
                    }
                )
        for i, j in zip(*np.nonzero(resolvable)):
            rows.append(
                {
                    "fwhm": p["peak_fwhms"][i, j],
                    "height": p["peak_heights"][i, j],
                    "distance": centres[i, j] - p["zlp_position"][i],
                    "snr": snr[i, j],
                    "noise": p["noise_amplitude"][i],
                    "network_bump": network_bump[i, j],
                    **{method: offsets[method][i, j] for method in METHODS},
                }
            )
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def line(label, values, selection):
    parts = [f"{label:<24} n={selection.sum():5d}"]
    for method in METHODS:
        errors = np.abs(values[method][selection])
        found = np.isfinite(errors)
        median = np.median(errors[found]) if found.any() else np.nan
        parts.append(f"{method}: found {found.mean():6.1%}, error {median:5.2f} ch")
    return "  ".join(parts)


def print_split(values, title, key, edges, within):
    """One line per bin of ``values[key]`` among the features selected by ``within``."""
    print(f"\n{title}")
    for low, high in zip(edges[:-1], edges[1:]):
        selection = within & (values[key] >= low) & (values[key] < high)
        if selection.any():
            print(line(f"  {low:.4g} to {high:.4g}", values, selection))


def report(values):
    every = np.ones(values["fwhm"].size, bool)
    print(line("all resolvable features", values, every))
    # Each method's position error is over the features it finds; one that finds fewer may find
    # only the easier ones. Compared on the features both restorations find:
    print(line(f"found by {NETWORK} and {RL}", values, np.isfinite(values[NETWORK]) & np.isfinite(values[RL])))
    splits = {
        "fwhm": ("FWHM (ch)", [0, 5, 15, 40, np.inf]),
        "height": ("height / ZLP", [0, 1 / 3000, 1 / 1000, 1 / 300, np.inf]),
        "distance": ("distance to ZLP (ch)", [-np.inf, 0, 30, 100, 300, np.inf]),
        "snr": ("matched-filter SNR", [0, 1, 3, 10, 30, np.inf]),
        "noise": ("spectrum noise (std / ZLP maximum)", [0, 1e-3, 3e-3, 1e-2, np.inf]),
    }
    for key, (title, edges) in splits.items():
        print_split(values, f"by {title}", key, edges, every)
    # Where the measurement shows the feature clearly, "found" no longer rewards noise: what is
    # left is how sharply each method restores what is there.
    title, edges = splits["fwhm"]
    print_split(values, f"clear features only (matched-filter SNR >= 10), by {title}", "fwhm", edges, values["snr"] >= 10)
    # A bias (every clear narrow feature moved the same way) or a spread?
    narrow = clear_narrow(values["snr"], values["fwhm"])
    offsets = ", ".join(
        f"{method} {np.nanmedian(values[method][narrow]):+.2f} ch" for method in METHODS
    )
    print(f"\nclear features narrower than 15 ch, median signed offset (restored - true maximum): {offsets}")
    # Is a clear feature the network misses (and RL-50 finds) displaced, or still there as a
    # bump too low to be the highest point of its window on a sloping background?
    missed = narrow & np.isnan(values[NETWORK]) & np.isfinite(values[RL])
    bump = values["network_bump"][missed]
    print(
        f"\nclear features narrower than 15 ch that RL-50 finds as a peak and {NETWORK} does not: {missed.sum()}"
        f" of {narrow.sum()}; {NETWORK}'s output has a local maximum"
        f" within 3 ch of the centre at {np.sum(bump <= 3)}, 4-10 ch at {np.sum(bump > 3)}, none within 10 ch"
        f" at {np.isnan(bump).sum()}"
    )


def plot_missed(examples, path, radius=60):
    """Draw the (up to ``MISSED_DRAWN``) missed clear narrow features (truth, input, RL-50, network) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(16, 10))
    styles = {"input": {"color": "0.6"}, "truth": {"color": "k"}, RL: {"color": "tab:orange", "alpha": 0.7},
              NETWORK: {"color": "tab:blue"}}
    for ax, example in zip(axes.flat, examples):
        centre = int(round(example["centre"]))
        window = slice(max(centre - radius, 0), min(centre + radius, example["truth"].size))
        channels = np.arange(window.start, window.stop)
        for label, style in styles.items():
            ax.plot(channels, example[label][window], label=label, **style)
        ax.axvline(centre, ls=":", color="tab:red")
        top = max(example["truth"][window].max(), example[NETWORK][window].max())
        ax.set_ylim(0, 1.3 * top)
        ax.set_title(
            f"FWHM {example['fwhm']:.1f} ch, height {example['height']:.1e} of the ZLP, SNR {example['snr']:.0f}",
            fontsize=8,
        )
        ax.set_xlabel("channel", fontsize=8)
    for ax in axes.flat[len(examples):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"Clear narrow features RL-50 finds as a peak and {NETWORK} does not (red: true centre)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: the bundled model)")
    parser.add_argument("--n-spectra", type=int, default=1000)
    parser.add_argument("--preset", default="instrument", choices=list(PRESETS))
    parser.add_argument(
        "--jitter", nargs="+", metavar="DISTRIBUTION",
        help="draw the jitter from these distributions (uniform, gaussian, arcsine, bimodal) instead of"
        " the preset's, with the same seeds: how much of the deficit one jitter shape makes",
    )
    parser.add_argument("--plot-missed", metavar="FILE", help="draw twelve missed clear narrow features to this PNG")
    args = parser.parse_args(argv)
    engine = load_engine(args.model)
    jitter = f", jitter {' / '.join(args.jitter)}" if args.jitter else ""
    print(f"{args.preset}{jitter}: {args.n_spectra} spectra with features, model {engine.contract.name}"
          f" {engine.contract.version} ({engine.path}), the public path")
    missed = [] if args.plot_missed else None
    report(collect(engine, args.preset, args.n_spectra, args.jitter, missed))
    if args.plot_missed:
        plot_missed(missed, args.plot_missed)
        print(f"\n{len(missed)} missed features drawn to {args.plot_missed}")


if __name__ == "__main__":
    sys.exit(main())
