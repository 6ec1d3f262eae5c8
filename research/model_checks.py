"""Print a model's figures on real WS2 spectra, near the zero-loss peak and on the demo.

    python research/model_checks.py [--model PATH]

Every restoration here is the public path, as users get it: the spectra are built or loaded on
their own raw channel axis, with the zero-loss peak (ZLP) wherever it falls, and restored by
``EELSpecNetDeconvolution.restore`` (validation, then ``run``: padding, the network over the
spectrum's own channels, the input's counts restored) or by ``s.eelspecnet_deconvolve``, never
by the bare network on a prepared window. Energy zero is where the restoration puts it, the
ZLP's half-maximum centre (:func:`~hyperspy_eelspecnet.spectral.half_maximum_centre`): feature
positions are measured in each spectrum (input, restoration, Richardson-Lucy) from its own ZLP
centre and compared with the truth's distance from its ZLP. Positions are sub-channel (the
parabola through the highest channel and its neighbours, as the evaluation's position error);
"no peak" where the highest channel of the search window is on its edge. A contract warning of
the model (counts or ZLP width outside its training ranges) is printed where a case raises one.

The numbers the README, the model card and the docs quote beside the evaluation report:

1. **WS2** (``tests/data/eelsfitter_ws2``, 4 specimen spectra, 2000 channels, ZLP near channel
   186, through ``eelspecnet_deconvolve`` with ``rl_iterations=50``): ZLP FWHM of input,
   restoration and Richardson-Lucy (50 iterations, each spectrum's own ZLP), where the restored
   ZLP's centre lies against the input's; restored/input intensity over 2-7.76 eV (the loss
   continuum) and per 0.25-eV bin there; negative and non-finite values; and the outermost 100
   channels at each end of the spectrum (the energy-gain side at -0.93 eV, 8.57-9.07 eV at the
   loss end): restored/input and RL-50/input intensity there (at the loss end also over the 100
   channels inwards of them), and the restoration's per 20-channel block from the end inwards.
   Every channel is restored; a ratio falling towards an end, below that of the channels
   inwards and of 2-7.76 eV, says the outer channels are restored less well. At the loss end
   the input is loss continuum, which a restoration should keep; on the gain side it is the
   ZLP's tail, which a restoration removes (RL-50 shows how far Richardson-Lucy goes).
2. **A feature on the ZLP tail**: a 12-channel Lorentzian at 1/350 of the ZLP on a
   quasi-Dirac ZLP (3 channels) blurred by variants of the demo's PSF (13 channels, loss/gain
   1.3, Lorentzian fraction 0.3) at 1e7 counts, Poisson noise, in two raw axes: 2048 channels
   with the ZLP at 401.3 and 1024 channels with it at 150. The offset of the maximum within
   +-15 channels from where it belongs (its true distance from the spectrum's own ZLP centre),
   for input and restoration; and, for the default PSF at 70 and 150 channels (the cases of
   ``test_bundled_model_keeps_a_feature_on_the_zlp_tail``) over 16 Poisson draws, the restored
   offsets rounded to whole channels, and how many lie within one channel.
3. **An isolated feature in a clean spectrum**: one Lorentzian (6 or 20 channels FWHM, 1/100 to
   1/3000 of the ZLP) 600 channels from the ZLP, blurred by a narrow pseudo-Voigt PSF (4 or 15
   channels, Lorentzian fraction 0.1) at 9.9e7 counts (just inside the 1e4-1e8 trained on), in
   the same two raw axes; the fraction of the true contrast (maximum within +-3 channels of
   the feature's place, 600 channels from the spectrum's own ZLP centre, over the mean of two
   3-channel flanks 3 FWHM away) that input, restoration and Richardson-Lucy (50 iterations,
   the true PSF) keep, and the feature's FWHM above that flank level in each (channels).
4. **Where a clean feature's maximum lands under jitter**: generated ``instrument`` spectra
   (the evaluation's convention: the truth's ZLP at the recorded ZLP's half-maximum centre, the
   ZLP drifting +-30 channels) with one 6-channel feature at 1/1000 of the ZLP, 1e8 counts,
   jitter of 0-12 channels and a 15-channel pseudo-Voigt PSF, symmetric or 2.5 times wider on
   the loss side; restored by ``restore_batch`` (the public path) and Richardson-Lucy (50
   iterations, the true blur); the mean signed and median absolute offset (channels) of the
   maximum within +-10 channels of the true feature, measured from each output's own ZLP centre.
5. **The demo** (``hyperspy_eelspecnet.data.silver_nanowire``, blind): the phonon figures of
   :func:`hyperspy_eelspecnet.demo.phonon_figures` (phonon found along the wire, false ones in
   the membrane hole, map correlations of the phonon and SP1-SP4 windows, gain/loss ratio and
   the temperature it gives; the truth is at 295 K) for input, the model and Richardson-Lucy
   (50 iterations, own ZLP); and SP1 at the wire ends (7-pixel averages, local maxima).
6. **Shift equivariance**: a clean 6-channel Lorentzian at 1/1000 of the ZLP, 600 channels
   from it, blurred by a symmetric 4-channel pseudo-Voigt PSF, 9.9e7 counts; the whole spectrum
   (ZLP and feature) slid in quarter channels over one 64-channel period of the network, the
   ZLP from channel 401.3 to 465.05 of a 2048-channel axis (256 positions, one noise draw
   each). For input, restoration and Richardson-Lucy (50 iterations, true PSF): the feature's
   offset from its true distance to the output's own ZLP centre (mean, spread, and the range of
   the mean over the 64 one-channel phases), and where the output's ZLP centre lies against the
   true one. A shift-equivariant restoration has one offset at every phase.

About 50 s on 2 CPU cores shared with a training run (8 s of it imports).
"""

import argparse
import sys
import warnings
from pathlib import Path


import numpy as np  # noqa: E402
from scipy.signal import fftconvolve  # noqa: E402

import hyperspy_eelspecnet  # noqa: E402,F401
from hyperspy_eelspecnet.analysis import feature_along_line, modal_evolution  # noqa: E402
from hyperspy_eelspecnet.data import silver_nanowire  # noqa: E402
from hyperspy_eelspecnet.demo import phonon_figures  # noqa: E402
from hyperspy_eelspecnet.evaluation.metrics import peak_position_error  # noqa: E402
from hyperspy_eelspecnet.evaluation.report import NETWORK, evaluation_set, restore_batch  # noqa: E402
from hyperspy_eelspecnet.io import read_spectra  # noqa: E402
from hyperspy_eelspecnet.restoration import EELSpecNetDeconvolution  # noqa: E402
from hyperspy_eelspecnet.richardson_lucy import richardson_lucy  # noqa: E402
from hyperspy_eelspecnet.spectral import fwhm, half_maximum_centre  # noqa: E402
from hyperspy_eelspecnet.training import generate_batch  # noqa: E402
from hyperspy_eelspecnet.training.generator import quasi_dirac_zlp  # noqa: E402

np.set_printoptions(precision=3, suppress=True, linewidth=120)

#: The real WS2 low-loss spectra (EELSfitter) the tests use; the energy axis is in the file names.
WS2_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "eelsfitter_ws2"
WS2_DISPERSION = 0.005  # eV per channel
WS2_OFFSET = -0.93 + 0.5 * WS2_DISPERSION  # centre of channel 0
#: The loss continuum judged on WS2 (eV), as quoted since model 0.2.0.
WS2_BAND = (2.0, 7.76)
#: Channels at each end of a WS2 spectrum compared with the input, and their blocks.
OUTER_CHANNELS, OUTER_BLOCK = 100, 20
#: The raw axes of the hand-built spectra: (channels, sub-channel ZLP position).
AXES = ((2048, 401.3), (1024, 150.0))
#: Electrons in a clean hand-built spectrum: just inside the 1e4-1e8 the model was trained on
#: (at 1e8 half the Poisson draws would lie above it and be warned about).
CLEAN_COUNTS = 9.9e7


def load_engine(path):
    """The engine of a model file (None: the bundled model); exits for fixed-window models."""
    engine = EELSpecNetDeconvolution(path)
    if not engine.contract.length_multiple:
        sys.exit(f"{engine!r} restores only a fixed window (made before 0.5.0); these checks need a "
                 "model of 0.5.0 or later (--model PATH).")
    return engine


def restore(engine, spectra, label=""):
    """``engine.restore`` (the public path: validated, then run), printing any contract warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        restored = engine.restore(spectra)
    for text in dict.fromkeys(str(w.message).split(": ")[0] for w in caught):
        print(f"  contract warning{f' ({label})' if label else ''}: {text}")
    return restored


def load_ws2(kind):
    """The WS2 files of one kind ("Specimen" or "Vacuum"), sorted by position, as one EELSSpectrum."""
    import exspy

    files = sorted(WS2_DIR.glob(f"Position-*-{kind}_EELS-Spectrum_*.txt"))
    signal = exspy.signals.EELSSpectrum(np.concatenate([read_spectra(path).spectra for path in files]))
    axis = signal.axes_manager.signal_axes[0]
    axis.scale, axis.offset, axis.units, axis.name = WS2_DISPERSION, WS2_OFFSET, "eV", "Energy loss"
    signal.metadata.General.title = f"WS2 {kind}"
    return signal


def ws2(engine):
    specimen = load_ws2("Specimen")
    print("WS2 specimen spectra (4 x 2000 channels, -0.93 to 9.07 eV), eelspecnet_deconvolve")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        restored, rl = specimen.eelspecnet_deconvolve(model=engine, rl_iterations=50, show_progressbar=False)
    for text in dict.fromkeys(str(w.message).split(": ")[0] for w in caught):
        print(f"  contract warning: {text}")
    data, out, rl = np.asarray(specimen.data, float), np.asarray(restored.data), np.asarray(rl.data)
    energy = specimen.axes_manager.signal_axes[0].axis
    print("  ZLP FWHM (channels): input", fwhm(data), "restored", fwhm(out), "RL-50 own ZLP", fwhm(rl))
    print("  restored ZLP centre - input's (half-maximum centres, channels):",
          half_maximum_centre(out) - half_maximum_centre(data))
    band = (energy >= WS2_BAND[0] - 1e-9) & (energy <= WS2_BAND[1] + 1e-9)
    print(f"  restored/input intensity, {WS2_BAND[0]:.2f}-{WS2_BAND[1]:.2f} eV:",
          out[:, band].sum(-1) / data[:, band].sum(-1))
    bins = band.nonzero()[0][: band.sum() // 50 * 50].reshape(-1, 50)
    ratio = out[:, bins].sum(-1) / data[:, bins].sum(-1)
    print(f"  same per 0.25-eV bin: {ratio.min():.4f} to {ratio.max():.4f}")
    print(f"  negative values per spectrum {(out < 0).sum(-1)}, non-finite {(~np.isfinite(out)).sum(-1)};"
          f" smallest restored value {np.nanmin(out):.3g}")
    n, k = data.shape[-1], OUTER_CHANNELS
    ends = (("first", np.arange(k), np.arange(k, 2 * k)), ("last", np.arange(n - k, n), np.arange(n - 2 * k, n - k)))
    for label, channels, inwards in ends:
        print(f"  {label} {k} channels ({energy[channels[0]]:+.2f} to {energy[channels[-1]]:+.2f} eV):")
        for name, spectra in (("restored", out), ("RL-50", rl)):
            # Inwards of the gain-side end lies the ZLP itself: no reference there.
            reference = spectra[:, inwards].sum(-1) / data[:, inwards].sum(-1) if label == "last" else None
            print(f"    {name + '/input':<15}", spectra[:, channels].sum(-1) / data[:, channels].sum(-1),
                  *(() if reference is None else (f"  the {k} channels inwards of them", reference)))
        blocks = channels.reshape(-1, OUTER_BLOCK)
        print(f"    restored/input per {OUTER_BLOCK}-channel block, from the end inwards:")
        for block in blocks if label == "first" else blocks[::-1]:
            print(f"      channels {block[0]:4d}-{block[-1]:4d}:", out[:, block].sum(-1) / data[:, block].sum(-1))


def pseudo_voigt_kernel(n, fwhm, asymmetry, eta):
    """Unit-sum pseudo-Voigt PSF over offsets -n ... n (zero shift at index n), loss/gain half
    widths ``asymmetry``: convolved in "same" mode it keeps every channel in place, and it spans
    a whole ``n``-channel spectrum from any ZLP position."""
    offsets = np.arange(-n, n + 1.0)
    half = np.where(offsets > 0, fwhm * asymmetry / (1 + asymmetry), fwhm / (1 + asymmetry))
    psf = eta / (1 + (offsets / half) ** 2) + (1 - eta) * np.exp(-np.log(2) * (offsets / half) ** 2)
    return psf / psf.sum()


def truth_spectrum(n, zlp, distance, feature_fwhm, height):
    """A 3-channel quasi-Dirac ZLP of height 1 at sub-channel ``zlp`` and one Lorentzian loss
    feature ``distance`` channels above it, on an ``n``-channel raw axis."""
    channels = np.arange(n, dtype=float)
    half = feature_fwhm / 2
    return quasi_dirac_zlp(channels, zlp) + height * half**2 / ((channels - zlp - distance) ** 2 + half**2)


def recorded(truths, kernel, counts, seed=0):
    """``truths`` blurred by ``kernel``, as Poisson counts (``counts`` electrons each)."""
    blurred = np.clip(fftconvolve(np.atleast_2d(truths), kernel[None], mode="same", axes=1), 0, None)
    rng = np.random.default_rng(seed)
    return rng.poisson(blurred / blurred.sum(axis=1, keepdims=True) * counts).astype(float)


def feature_offset(spectra, distance, radius):
    """Each spectrum's maximum within +-``radius`` of ``distance`` channels above its own ZLP's
    half-maximum centre, minus that place (sub-channel; NaN where not a peak)."""
    spectra = np.atleast_2d(spectra)
    place = half_maximum_centre(spectra) + distance
    return peak_position_error(spectra, place[:, None], radius, signed=True)[:, 0]


def true_distance(truths, distance, radius):
    """The truth's feature maximum from its ZLP centre (``distance`` up to the sub-channel
    estimate's own bias, which comparing like with like cancels)."""
    return distance + feature_offset(truths, distance, radius)


def case_label(case):
    """'default', or the case's changes from it ('eta 0.01', 'height 1/50', ...)."""
    return ", ".join(f"{key} 1/{1 / value:.0f}" if key == "height" else f"{key} {value:g}"
                     for key, value in case.items()) or "default"


def tail_feature(engine):
    print("\nA 12-channel feature at 1/350 of the ZLP on its tail (default: 70 channels out, PSF 13 ch,"
          " loss/gain 1.3, eta 0.3, 1e7 counts)")
    print("  offset of the maximum (+-15 ch) from its true distance to the spectrum's own ZLP centre, channels")
    cases = [{}, {"asymmetry": 1.0}, {"eta": 0.01}, {"eta": 1.0}, {"fwhm": 7}, {"fwhm": 25}, {"distance": 40},
             {"distance": 150}, {"height": 1 / 50}, {"counts": CLEAN_COUNTS}, {"asymmetry": 2.0}]

    def spectra(n, zlp, fwhm=13, asymmetry=1.3, eta=0.3, distance=70, height=1 / 350, counts=1e7, seeds=(0,)):
        truth = truth_spectrum(n, zlp, distance, 12, height)
        kernel = pseudo_voigt_kernel(n, fwhm, asymmetry, eta)
        return truth, np.concatenate([recorded(truth, kernel, counts, seed) for seed in seeds])

    for n, zlp in AXES:
        built = [spectra(n, zlp, **case) for case in cases]
        inputs = np.array([x[0] for _, x in built])
        restored = restore(engine, inputs, f"{n} ch")
        print(f"  {n} channels, ZLP at {zlp}:        input  restored")
        hits = 0
        for k, (case, (truth, _)) in enumerate(zip(cases, built)):
            distance = true_distance(truth, case.get("distance", 70), 15)
            found = [feature_offset(s[k], distance, 15)[0] for s in (inputs, restored)]
            hits += abs(found[1]) <= 1
            cells = "  ".join("no peak" if np.isnan(f) else f"{f:+7.2f}" for f in found)
            print(f"    {case_label(case):<22} {cells}")
        print(f"    restored within 1 channel: {hits} of {len(cases)}")
        for distance in (70, 150):
            truth, draws = spectra(n, zlp, distance=distance, seeds=range(16))
            offsets = feature_offset(restore(engine, draws, f"{n} ch"), true_distance(truth, distance, 15), 15)
            rounded = np.round(offsets[np.isfinite(offsets)]).astype(int)
            counted = ", ".join(f"{o:+d}: {c}" for o, c in zip(*np.unique(rounded, return_counts=True)))
            missing = f", no peak: {np.isnan(offsets).sum()}" if np.isnan(offsets).any() else ""
            print(f"    default PSF, {distance} ch out, 16 noise draws: restored offset (rounded) {counted}{missing};"
                  f" within 1 channel {np.sum(np.abs(offsets) <= 1)}, mean {np.nanmean(offsets):+.2f}")


def isolated_feature(engine):
    distance = 600

    def above_flanks(spectra, place, feature_fwhm):
        """Each spectrum's +-3 FWHM around ``place``, less the mean of two 3-channel flanks at its ends."""
        flank = int(round(3 * feature_fwhm))
        centre = np.round(place).astype(int)[:, None]
        rows = np.arange(len(spectra))[:, None]
        window = spectra[rows, centre + np.arange(-flank, flank + 1)]
        flanks = spectra[rows, centre + np.r_[np.arange(-flank - 1, -flank + 2), np.arange(flank - 1, flank + 2)]]
        return window - flanks.mean(axis=1, keepdims=True), flank

    def contrast_and_width(spectra, feature_fwhm, truth_distance):
        place = half_maximum_centre(spectra) + truth_distance
        window, flank = above_flanks(spectra, place, feature_fwhm)
        return window[:, flank - 3: flank + 4].max(axis=1), fwhm(window, flank, 3)

    print(f"\nAn isolated feature {distance} channels from the ZLP, {CLEAN_COUNTS:.2g} counts: fraction of the"
          " true contrast kept, and FWHM (channels)")
    for n, zlp in AXES:
        print(f"  {n} channels, ZLP at {zlp}")
        print("  PSF  FWHM  height    input  restored  RL-50 (true PSF)   FWHM: truth  input  restored  RL-50")
        for psf_fwhm in (4, 15):
            kernel = pseudo_voigt_kernel(n, psf_fwhm, 1.0, 0.1)
            for feature_fwhm in (6, 20):
                heights = (1 / 100, 1 / 300, 1 / 1000, 1 / 3000)
                truths = np.array([truth_spectrum(n, zlp, distance, feature_fwhm, h) for h in heights])
                inputs = recorded(truths, kernel, CLEAN_COUNTS)
                restored = restore(engine, inputs, f"{n} ch, PSF {psf_fwhm}")
                rl = richardson_lucy(inputs, kernel, 50, origin=n)
                # Every spectrum on the input's scale: the truth with the input's counts.
                truths = truths / truths.sum(axis=1, keepdims=True) * inputs.sum(axis=1, keepdims=True)
                truth_distance = true_distance(truths, distance, 10)
                true_contrast, true_width = contrast_and_width(truths, feature_fwhm, truth_distance)
                measured = [contrast_and_width(s, feature_fwhm, truth_distance) for s in (inputs, restored, rl)]
                kept = [c / true_contrast for c, _ in measured]
                widths = [true_width] + [w for _, w in measured]
                for h, a, b, c, *w in zip(heights, *kept, *widths):
                    print(f"  {psf_fwhm:3d}  {feature_fwhm:4d}  1/{1 / h:<6.0f} {a:6.2f}  {b:8.2f}  {c:6.2f}"
                          f"              {w[0]:5.1f}  {w[1]:5.1f}  {w[2]:8.1f}  {w[3]:5.1f}")


def feature_position(engine):
    print("\nWhere a clean 6-channel feature's maximum lands (generated instrument spectra, ZLP drifting +-30 ch,"
          " jitter 0-12 ch, PSF 15 ch; 200 spectra each):")
    print("  offset from the true distance to each output's own ZLP centre (channels):"
          " mean signed / median absolute")
    print(f"  loss/gain  {'input':>14}  {NETWORK:>14}  {'RL-50':>14}")
    for asymmetry in (1.0, 2.5):
        config = evaluation_set("instrument")
        config.n_peaks, config.peak_fwhm, config.peak_ratio = (1, 1), (6.0, 6.0), (1000.0, 1000.0)
        config.peak_channel, config.continuum_probability, config.window_probability = (800, 1600), 0.0, 0.0
        config.total_counts, config.jitter_amplitude = (1e8, 1e8), (0.0, 12.0)
        config.psf_fwhm, config.psf_asymmetry = (15.0, 15.0), (asymmetry, asymmetry)
        batch = generate_batch(config, 200, seed=77, return_psf=True)
        restored = restore_batch(engine, batch, (50,), 100)
        centres = batch.parameters["peak_centres"][:, 0]
        truth_distance = true_distance(batch.ground_truth, centres - half_maximum_centre(batch.ground_truth), 10)
        parts = []
        for spectra in (batch.distorted, restored[NETWORK], restored["RL-50"]):
            offset = feature_offset(spectra, truth_distance, 10)
            parts.append(f"{np.nanmean(offset):+.2f} / {np.nanmedian(np.abs(offset)):.2f}"
                         + (f" ({np.isnan(offset).sum()} no peak)" if np.isnan(offset).any() else ""))
        print(f"  {asymmetry:<9}  " + "  ".join(f"{p:>14}" for p in parts))


def demo(engine):
    signal, truth = silver_nanowire(return_ground_truth=True)
    restored, rl = signal.eelspecnet_deconvolve(model=engine, rl_iterations=50, show_progressbar=False)
    methods = (("input", signal), ("EELSpecNet", restored), ("RL-50 own ZLP", rl), ("truth", truth))
    print("\nDemo (silver nanowire, blind), phonon 0.07-0.13 eV (demo.phonon_figures; the truth is at 295 K)")
    print(f"  {'':<14} {'found along wire':>16} {'false in hole':>13} {'Ph map r':>8}   {'SP1-SP4 map r':<27}"
          f" {'gain/loss':>9} {'T (K)':>7}")
    for label, spectra in methods:
        f = phonon_figures(spectra, truth)
        sp = " ".join(f"{r:.3f}" for r in f["sp_map_correlation"].values())
        print(f"  {label:<14} {f['found_along_wire']:16.0%} {f['false_in_hole']:13.0%} {f['map_correlation']:8.3f}"
              f"   {sp:<27} {f['gain_loss_ratio']:9.4f} {f['temperature_K']:7.0f}")
    x_axis, y_axis = signal.axes_manager.navigation_axes
    row = y_axis.value2index(signal.metadata.Sample.ground_truth.wire.start_nm[1])
    ends = [4, 5, 6, 40, 41, 42]  # positions near the wire's two ends
    print("  SP1 at the wire ends (7-pixel averages, local maxima in 0.28-0.45 eV), eV:")
    for label, spectra in methods:
        line = (x_axis.low_value, y_axis.axis[row]), (x_axis.high_value, y_axis.axis[row])
        profile = modal_evolution(spectra, *line, 7)
        print(f"    {label:<14} {feature_along_line(profile, (0.28, 0.45)).data[ends]}")


def sliding_feature(engine):
    n, distance, steps = 2048, 600, 256
    zlps = 401.3 + np.arange(steps) / 4
    truths = np.array([truth_spectrum(n, z, distance, 6, 1 / 1000) for z in zlps])
    kernel = pseudo_voigt_kernel(n, 4, 1.0, 0.1)
    inputs = recorded(truths, kernel, CLEAN_COUNTS)
    restored = restore(engine, inputs)
    rl = richardson_lucy(inputs, kernel, 50, origin=n)
    truth_distance = true_distance(truths, distance, 10)
    print(f"\nA clean 6-channel feature {distance} ch from the ZLP (PSF 4 ch, {CLEAN_COUNTS:.2g} counts), the whole"
          f" spectrum slid over 64 channels in quarter channels (ZLP at {zlps[0]}-{zlps[-1]} of {n}):")
    print("  feature offset from its true distance to the output's ZLP centre: mean, standard deviation; range of the"
          " phase means | output's ZLP centre - true ZLP: mean, standard deviation; range of the phase means")
    phase = np.floor(zlps).astype(int) % 64

    def summary(values):
        means = np.array([np.nanmean(values[phase == p]) for p in range(64)])
        return f"{np.nanmean(values):+.2f}  {np.nanstd(values):.2f};  {means.min():+.2f} to {means.max():+.2f}"

    for label, spectra in (("input", inputs), (NETWORK, restored), ("RL-50", rl)):
        offset = feature_offset(spectra, truth_distance, 10)
        missing = f"  ({np.isnan(offset).sum()} not found as a peak)" if np.isnan(offset).any() else ""
        print(f"  {label:<11} {summary(offset)}  |  {summary(half_maximum_centre(spectra) - zlps)}{missing}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: bundled)")
    args = parser.parse_args()
    engine = load_engine(args.model)
    print(f"Model {engine.contract.name} {engine.contract.version} ({engine.path})\n")
    ws2(engine)
    tail_feature(engine)
    isolated_feature(engine)
    feature_position(engine)
    demo(engine)
    sliding_feature(engine)


if __name__ == "__main__":
    main()
