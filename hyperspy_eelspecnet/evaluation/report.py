"""EELSpecNet against Richardson-Lucy on generated spectra: ``eelspecnet evaluate``.

Every restoration is judged as users get it: the raw generated spectra go through the public
path, :meth:`~hyperspy_eelspecnet.restoration.EELSpecNetDeconvolution.run` (padding, the
network over the spectrum's own channels, counts restored), whatever the window and wherever
the ZLP sits; the bare network on the generated window is kept as a diagnostic row
(``EELSpecNet, network only``). The protocol (``docs/PROTOCOL.md``, section 3), for each set:

1. a ZLP-only set (no loss features, no continuum) gives the ZLP width rows (FWHM and FWTM
   recovery and relative error) and the noise variance reduction;
2. a set with loss features gives SSIM and MSE against the ground truth, the position error
   of the features, the fraction of them found as a peak, and, as that fraction's control, the
   fraction of feature-free positions where a peak is "found" just the same; and, since a
   noisier output finds more of both, the fraction found at the network's false-peak rate, each
   other output smoothed by Gaussians until it shows as few false peaks (its detection curve).

The sets: the two generator presets in their 2048-channel window, and the ``reference``
physics in windows of other lengths with the ZLP elsewhere (:data:`WINDOW_SETS`). Energy zero
is where the restoration puts it, the midpoint of the recorded ZLP's half-maximum crossings:
the generator puts the truth's ZLP there (``align_zlp``, ``zlp_centre="half_maximum"``), so the
ZLP moves by the jitter's and the PSF's offset, as in a measurement, and every metric compares
with the truth aligned to it. Every method's output is brought to unit area over the measured
channels before it is judged (the restoration conserves counts, and so does the ground truth).
Richardson-Lucy gets the true blur of each spectrum (jitter and PSF combined) as its PSF: the
best case for it.

With measured vacuum spectra (``--vacuum``), :func:`near_zlp_significance` adds the sets that
say where blind restoration cannot be trusted: one loss feature 15-60 channels from the ZLP,
or none, under those vacuum spectra as PSFs; found and false rates for each model and for
Richardson-Lucy with the vacuum PSF.
"""

from __future__ import annotations

import json
import numbers
import os
import time
from pathlib import Path

import numpy as np

from dataclasses import replace

from ..io import folder_problem
from ..model import predict_spectra
from ..restoration import EELSpecNetDeconvolution
from ..richardson_lucy import richardson_lucy
from ..training.card import set_card_section
from ..training.generator import PRESETS, generate_batch, preset
from ..vacuum import prepare_vacuum_psfs
from .metrics import (
    feature_free_positions,
    found_at_false_rate,
    fwhm,
    fwtm,
    mse,
    noise_variance_reduction,
    peak_position_error,
    recovery_rate,
    region_variance,
    relative_error,
    resolvable_features,
    smoothed_peak_flags,
    ssim_1d,
)

__all__ = [
    "evaluate", "write_report", "evaluate_command", "update_model_card", "evaluation_set",
    "evaluation_batches", "evaluation_entropy", "restore_batch", "unit_area", "zlp_metrics", "measured_centres",
    "feature_free_control", "near_zlp_significance",
    "EVALUATION_SEED", "DETECTION_SMOOTHING_SIGMAS", "WINDOW_SETS", "NEAR_ZLP_DISTANCE",
]

NETWORK = "EELSpecNet"
#: The diagnostic row: the bare network on the generated window, without the public path.
NETWORK_ONLY = "EELSpecNet, network only"
#: Windows (channels, ZLP channel) the ``reference`` physics is also judged in.
WINDOW_SETS = ((640, 40), (1024, 100), (1688, 40), (1800, 400), (4096, 400))
#: Distance range (channels) of the one loss feature of the near-ZLP sets.
NEAR_ZLP_DISTANCE = (15.0, 60.0)
#: A near-ZLP feature is found where a restoration's maximum lies this close (channels) to the
#: truth's.
NEAR_ZLP_TOLERANCE = 1.5
INPUT = "input"
NOISE_REGION_START_EV = 1.5
#: Root seed of the evaluation sets (``eelspecnet evaluate --seed``). Training draws from
#: ``SeedSequence([train_seed, 0 or 1, ...])`` with small training seeds (0 by default); rooted
#: here the evaluation streams are disjoint from them unless a model was trained with this seed.
EVALUATION_SEED = 20221014
#: Gaussian widths (channels) each output is smoothed with to trace its detection curve: found
#: as a peak against falsely found, from the output as it is (0) to one smoothed far enough that
#: Richardson-Lucy's noisy outputs show as few false peaks as the network's.
DETECTION_SMOOTHING_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)

# Table rows: key -> label. "input" (the distorted spectrum) is judged only where it means something.
METRICS = {
    "noise_variance_reduction": "Noise variance reduction (x)",
    "fwhm_recovery": "ZLP FWHM recovery (%)",
    "fwhm_relative_error": "ZLP FWHM relative error (%)",
    "fwtm_recovery": "ZLP FWTM recovery (%)",
    "fwtm_relative_error": "ZLP FWTM relative error (%)",
    "ssim": "SSIM to ground truth",
    "mse": "MSE to ground truth",
    "peak_position_error": "Feature position error (channels)",
}


def _rl_name(iterations: int) -> str:
    return f"RL-{iterations}"


def _whole_number(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int; a ValueError unless it is a whole number of at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive whole number" if minimum == 1 else f"a whole number of {minimum} or more"
        raise ValueError(f"{name} must be {what}, not {value!r}.")
    return int(value)


def _checked_settings(presets, n_spectra, rl_iterations, seed, n_window_spectra=None) -> tuple:
    """:func:`evaluate`'s settings checked before any work: ``(presets, rl_iterations)``.

    Returns
    -------
    tuple
        The set names as a tuple (each known to :func:`evaluation_set`) and the Richardson-Lucy
        iteration counts, de-duplicated and sorted.

    Raises
    ------
    ValueError
        An unknown set name, a count that is not a positive whole number (``n_spectra``,
        ``n_window_spectra``, each of ``rl_iterations``, of which there must be one at least) or a
        ``seed`` below 0.
    """
    presets = (presets,) if isinstance(presets, str) else tuple(presets)
    for name in presets:
        evaluation_set(name)  # an unknown name is refused before any set is evaluated
    _whole_number("n_spectra", n_spectra)
    if n_window_spectra is not None:
        _whole_number("n_window_spectra", n_window_spectra)
    _whole_number("seed", seed, minimum=0)
    rl_iterations = (rl_iterations,) if isinstance(rl_iterations, numbers.Number) else tuple(rl_iterations)
    if not rl_iterations:
        raise ValueError("rl_iterations is empty; give one Richardson-Lucy iteration count at least (e.g. 50).")
    return presets, tuple(sorted({_whole_number("rl_iterations", k) for k in rl_iterations}))


def unit_area(spectra, measured):
    """``spectra`` scaled to unit area over their ``measured`` channels (unscaled where that area is 0)."""
    area = np.where(measured, spectra, 0.0).sum(axis=1, keepdims=True)
    return spectra / np.where(area != 0, area, 1.0)


def evaluation_set(name: str):
    """The generator configuration of an evaluation set: a preset's name (its window, the truth's
    ZLP at the recorded ZLP's half-maximum centre), or ``"reference, N ch, ZLP at Z"`` (the
    ``reference`` physics in an N-channel window with the ZLP on channel Z, :data:`WINDOW_SETS`)."""
    if name in PRESETS:
        return replace(preset(name), align_zlp=True, zlp_centre="half_maximum")
    for n_channels, zlp_channel in WINDOW_SETS:
        if name == _window_set_name(n_channels, zlp_channel):
            return replace(
                preset("reference"), n_channels=n_channels, zlp_channel=zlp_channel,
                peak_channel=(zlp_channel, n_channels - 2), window_stop=(n_channels, n_channels),
                align_zlp=True, zlp_centre="half_maximum",
            )
    raise ValueError(
        f"Unknown evaluation set {name!r}; give one of the presets {sorted(PRESETS)} or the windows "
        f"{_window_set_names()}."
    )


def _window_set_name(n_channels, zlp_channel):
    return f"reference, {n_channels} ch, ZLP at {zlp_channel}"


def _window_set_names():
    return [_window_set_name(*window) for window in WINDOW_SETS]


def evaluation_entropy(set_name: str, zlp_only: bool, seed: int = EVALUATION_SEED) -> tuple:
    """The entropy :func:`evaluate` gives :func:`evaluation_batches` for one set:
    ``(seed, set index, 0 for the ZLP-only spectra or 1 for those with features)``; the presets
    have indices 0 and 1, the windows of :data:`WINDOW_SETS` 2, 3, ..."""
    names = list(PRESETS) + _window_set_names()
    return (seed, names.index(set_name), 0 if zlp_only else 1)


def evaluation_batches(config, n_spectra, entropy, zlp_only, block_size):
    """Generated batches (with their true blur) of at most ``block_size`` spectra.

    Block ``b`` comes from ``SeedSequence([*entropy, b])``; :func:`evaluate` uses
    :func:`evaluation_entropy`, so other scripts (``research/feature_breakdown.py``) can
    regenerate its sets.
    """
    for index, start in enumerate(range(0, n_spectra, block_size)):
        size = min(block_size, n_spectra - start)
        yield generate_batch(
            config, size, np.random.SeedSequence([*entropy, index]), zlp_only=zlp_only, return_psf=True
        )


def restore_measured(engine, spectra, measured):
    """The public path's restoration of each spectrum's measured channels, as a user would give
    them (a windowed spectrum's channels outside its window are not passed); 0 outside.

    Parameters
    ----------
    engine : EELSpecNetDeconvolution
    spectra : ndarray, shape (m, n)
    measured : ndarray of bool, shape (m, n)
        Each row's measured channels, one contiguous run.
    """
    restored = np.zeros_like(spectra, dtype=float)
    whole = measured.all(axis=1)
    if whole.any():
        restored[whole] = engine.run(spectra[whole])
    for row in np.flatnonzero(~whole):
        channels = np.flatnonzero(measured[row])
        window = slice(channels[0], channels[-1] + 1)
        restored[row, window] = engine.run(spectra[row, window][None])[0]
    return restored


def restore_batch(engine, batch, rl_iterations, batch_size):
    """Every method's restoration of a batch, unit area over the measured channels: the public
    path (:meth:`EELSpecNetDeconvolution.run`), the bare network where the window's length
    suits it, and Richardson-Lucy."""
    n_channels = batch.distorted.shape[1]
    restored = {NETWORK: restore_measured(engine, batch.distorted, batch.measured)}
    if n_channels % engine.contract.length_multiple == 0:
        restored[NETWORK_ONLY] = predict_spectra(engine.model, batch.distorted, batch_size)
    # The generator's kernels have their zero shift at n // 2, not at their (jittered) maximum.
    deconvolved = richardson_lucy(batch.distorted, batch.psf, iterations=rl_iterations, origin=n_channels // 2)
    restored.update({_rl_name(k): spectra for k, spectra in zip(rl_iterations, deconvolved)})
    return {method: unit_area(spectra, batch.measured) for method, spectra in restored.items()}


def zlp_metrics(config, batch, restored):
    """Per-spectrum ZLP width and noise metrics of one ZLP-only batch.

    Parameters
    ----------
    config : GeneratorConfig
        The batch's generator configuration.
    batch : SpectrumBatch
        ZLP-only spectra made with ``return_psf=True``.
    restored : dict
        Method name -> restored spectra, unit area over the measured channels
        (:func:`restore_batch`, :func:`unit_area`).

    Returns
    -------
    dict
        Metric name -> {method or ``"input"``: per-spectrum values}.
    """
    truth, distorted = batch.ground_truth, batch.distorted
    peak = truth.argmax(axis=1)
    original = {"fwhm": fwhm(truth, peak), "fwtm": fwtm(truth, peak)}
    blurred = {"fwhm": fwhm(distorted, peak), "fwtm": fwtm(distorted, peak)}
    region = (np.arange(config.n_channels) >= _noise_region_start(config, batch)[:, None]) & batch.measured

    values = {"noise_amplitude": {INPUT: batch.parameters["noise_amplitude"]}}
    values["noise_variance"] = {INPUT: region_variance(distorted.astype(float) - batch.noise_free, region)}
    values["noise_variance_reduction"] = {}
    for key in ("fwhm", "fwtm"):
        values[f"{key}_recovery"], values[f"{key}_relative_error"] = {}, {}
    for method, spectra in restored.items():
        values["noise_variance"][method] = region_variance(spectra - truth, region)
        values["noise_variance_reduction"][method] = noise_variance_reduction(
            distorted, batch.noise_free, spectra, truth, region
        )
        for key, width in (("fwhm", fwhm), ("fwtm", fwtm)):
            restored_width = width(spectra, peak)
            values[f"{key}_recovery"][method] = recovery_rate(blurred[key], restored_width, original[key])
            values[f"{key}_relative_error"][method] = relative_error(restored_width, original[key])
    return values


def _noise_region_start(config, batch):
    """First channel of each spectrum's feature-free region, NOISE_REGION_START_EV above its ZLP."""
    return np.round(batch.parameters["zlp_position"] + NOISE_REGION_START_EV / config.dispersion)


def feature_free_control(config, batch, search_radius):
    """The positions of the control row: where the truth has no feature (NaN-padded).

    :func:`~.metrics.feature_free_positions` from 1.5 eV above the ZLP (as the noise region)
    to the end of each spectrum's measured window.
    """
    first_channel = np.maximum(_noise_region_start(config, batch), batch.parameters["window_start"])
    return feature_free_positions(
        batch.ground_truth, batch.parameters["peak_centres"], first_channel, batch.parameters["window_stop"],
        search_radius,
    )


def measured_centres(batch):
    """True feature centres inside each spectrum's measured window; NaN elsewhere and for padding."""
    centres = batch.parameters["peak_centres"]
    start, stop = batch.parameters["window_start"], batch.parameters["window_stop"]
    return np.where((centres >= start[:, None]) & (centres < stop[:, None] - 1), centres, np.nan)


def _feature_metrics(config, batch, restored, peak_search_radius):
    """Per-spectrum fidelity metrics of one batch with loss features."""
    truth, measured = batch.ground_truth, batch.measured
    centres = measured_centres(batch)
    # Only features the truth itself shows as a peak can be found (PROTOCOL: resolvable peaks).
    resolvable = resolvable_features(truth, centres, peak_search_radius)
    free = feature_free_control(config, batch, peak_search_radius)
    values = {"ssim": {}, "mse": {}, "peak_position_error": {}, "peak_resolved": {}, "false_peak": {}}
    for method, spectra in {INPUT: batch.distorted, **restored}.items():
        values["ssim"][method] = ssim_1d(spectra, truth, mask=measured)
        values["mse"][method] = mse(spectra, truth, mask=measured)
        errors = peak_position_error(spectra, centres, peak_search_radius, reference=truth)
        values["peak_position_error"][method] = errors[resolvable]
        # Detection curves, one column per smoothing width; column 0 is the output as it is.
        sigmas = DETECTION_SMOOTHING_SIGMAS
        values["peak_resolved"][method] = smoothed_peak_flags(spectra, centres, sigmas, peak_search_radius)[resolvable]
        values["false_peak"][method] = smoothed_peak_flags(spectra, free, sigmas, peak_search_radius)[np.isfinite(free)]
    return values


def _append(store, values):
    for metric, by_method in values.items():
        for method, array in by_method.items():
            store.setdefault(metric, {}).setdefault(method, []).append(np.asarray(array))


def _concatenate(store):
    return {metric: {m: np.concatenate(a) for m, a in by_method.items()} for metric, by_method in store.items()}


def _statistics(values) -> dict:
    """Median and 5-95 % range of the non-NaN values.

    Percentiles are taken at the nearest sample, not interpolated, so an infinite noise
    reduction (a restoration exact over the region) still gives a defined summary.
    """
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"median": None, "p5": None, "p95": None, "n": 0}
    p5, median, p95 = np.percentile(values, [5, 50, 95], method="nearest")
    return {"median": float(median), "p5": float(p5), "p95": float(p95), "n": int(values.size)}


def _summarise(per_spectrum) -> dict:
    summary = {}
    for metric in METRICS:
        summary[metric] = {method: _statistics(v) for method, v in per_spectrum[metric].items()}
    peaks = summary["peak_position_error"]
    curves = {}
    for method, found in per_spectrum["peak_resolved"].items():
        false = per_spectrum["false_peak"][method]
        curves[method] = (false.mean(axis=0), found.mean(axis=0)) if found.size and false.size else None
        peaks[method]["resolved_fraction"] = float(found[:, 0].mean()) if found.size else None
        peaks[method]["false_peak_fraction"] = float(false[:, 0].mean()) if false.size else None
        peaks[method]["detection_curve"] = None if curves[method] is None else {
            "smoothing_sigmas": list(DETECTION_SMOOTHING_SIGMAS),
            "found_fraction": curves[method][1].tolist(),
            "false_peak_fraction": curves[method][0].tolist(),
        }
    # Found at the same false-peak rate: the network's, each other output smoothed down to it.
    network_false = peaks.get(NETWORK, {}).get("false_peak_fraction")
    for method, curve in curves.items():
        value = None if curve is None or network_false is None else found_at_false_rate(*curve, network_false)
        peaks[method]["found_at_network_false_rate"] = None if value is None or np.isnan(value) else value
    return summary


def evaluate(
    engine,
    presets=("reference", "instrument"),
    n_spectra: int = 2000,
    rl_iterations=(10, 25, 50, 100),
    seed: int = EVALUATION_SEED,
    windows: bool = True,
    n_window_spectra: int | None = None,
    block_size: int = 500,
    peak_search_radius: float = 10.0,
    n_examples: int = 3,
) -> dict:
    """Judge a model, through the public path, and Richardson-Lucy on generated evaluation sets.

    Parameters
    ----------
    engine : EELSpecNetDeconvolution or path
        The model to judge (a path, or None for the bundled model, is loaded).
    presets : sequence of str
        Generator presets to evaluate on, each in its own window (:func:`evaluation_set`); every
        name is checked before any set is evaluated.
    n_spectra : int
        Spectra in each preset's sets (two sets per preset: ZLP-only and with features), 1 or more.
    rl_iterations : sequence of int
        Richardson-Lucy iteration counts to report, each 1 or more (one run to the largest);
        reported in increasing order, each once.
    seed : int
        Root of the evaluation seeds, 0 or more: block ``b`` of a set comes from ``SeedSequence([*entropy,
        b])`` with :func:`evaluation_entropy`, so a set does not depend on which others are
        evaluated.
    windows : bool
        Also judge the ``reference`` physics in the windows of :data:`WINDOW_SETS`.
    n_window_spectra : int, optional
        Spectra in each window's sets, 1 or more (default: a quarter of ``n_spectra``, 1 at least).
    block_size : int
        Spectra generated and restored at once (bounds memory).
    peak_search_radius : float
        Largest distance (channels) between a true feature and a restored maximum.
    n_examples : int
        Spectra of the first feature block kept for the example figure.

    Returns
    -------
    dict
        ``settings`` and, per set (``presets``, named as :func:`evaluation_set` takes them),
        ``summary`` (per metric and method: median, 5 and 95 % percentiles, count;
        JSON-ready), ``per_spectrum`` (the arrays behind it) and ``examples`` (a few spectra and
        their restorations).

    Raises
    ------
    ValueError
        An unknown preset, a count that is not a positive whole number, no ``rl_iterations`` or
        a negative ``seed`` (all checked before any spectrum is generated).
    """
    presets, rl_iterations = _checked_settings(presets, n_spectra, rl_iterations, seed, n_window_spectra)
    if not isinstance(engine, EELSpecNetDeconvolution):
        engine = EELSpecNetDeconvolution(engine)
    methods = [NETWORK, NETWORK_ONLY, *(_rl_name(k) for k in rl_iterations)]
    contract = engine.contract
    sets = {name: n_spectra for name in presets}
    if windows:
        sets.update({name: n_window_spectra or max(n_spectra // 4, 1) for name in _window_set_names()})
    results = {
        "settings": {
            "presets": list(sets),
            "n_spectra": {name: int(count) for name, count in sets.items()},
            "rl_iterations": list(rl_iterations),
            "seed": int(seed),
            "methods": methods,
            "model": {
                "name": contract.name, "version": contract.version, "parameters": int(engine.model.count_params()),
                "file": str(engine.path) if engine.path else "in memory",
            },
            "noise_region_start_ev": NOISE_REGION_START_EV,
            "peak_search_radius_channels": peak_search_radius,
        },
        "presets": {},
    }
    batch_size = engine.batch_size or 256
    for name, count in sets.items():
        config = evaluation_set(name)
        started = time.time()
        store, examples = {}, None
        for zlp_only in (True, False):
            label = "ZLP-only set" if zlp_only else "feature set"
            done = 0
            entropy = evaluation_entropy(name, zlp_only, seed)
            for batch in evaluation_batches(config, count, entropy, zlp_only, block_size):
                restored = restore_batch(engine, batch, rl_iterations, batch_size)
                if zlp_only:
                    _append(store, zlp_metrics(config, batch, restored))
                else:
                    _append(store, _feature_metrics(config, batch, restored, peak_search_radius))
                    if examples is None:
                        examples = _examples(config, batch, restored, n_examples)
                done += batch.distorted.shape[0]
                print(f"[{name}] {label}: {done}/{count} spectra ({time.time() - started:.0f} s)", flush=True)
        per_spectrum = _concatenate(store)
        results["presets"][name] = {
            "summary": _summarise(per_spectrum),
            "per_spectrum": per_spectrum,
            "examples": examples,
            "seconds": time.time() - started,
        }
    return results


def near_zlp_significance(
    engines: dict, vacuum_spectra, n_spectra: int = 500, seed: int = EVALUATION_SEED, counts=(1e6, 1e8),
    rl_iterations: int = 50,
) -> dict:
    """Found and false rates of a loss feature 15-60 channels from the ZLP, under measured PSFs.

    Two sets of ``instrument``-like spectra blurred by the given vacuum spectra
    (:func:`~hyperspy_eelspecnet.vacuum.prepare_vacuum_psfs`, as a fine-tune uses them): one
    with a single loss feature :data:`NEAR_ZLP_DISTANCE` channels above the ZLP (3-15 channels
    FWHM, 1/3000 to 1/300 of the ZLP, no continuum), one drawn from the same seeds without it
    (everything else the same, spectrum by spectrum). A method *finds* the feature where its
    output's maximum within 3 channels of the truth's lies, interpolated, within
    :data:`NEAR_ZLP_TOLERANCE` channels of it; it shows a *false* one where its output of the
    twin spectrum without the feature does the same at that place.

    Parameters
    ----------
    engines : dict of str to EELSpecNetDeconvolution
        The models to judge (e.g. the bundled blind one and one fine-tuned on these vacuum
        spectra), by label.
    vacuum_spectra : ndarray, shape (m, n)
        Measured vacuum spectra.
    n_spectra : int
        Spectra in each set, 1 or more.
    seed : int
        Root of the sets' seeds, 0 or more.
    counts : (float, float)
        Electrons per spectrum (log-uniform).
    rl_iterations : int
        Richardson-Lucy's iterations (1 or more), with the mean prepared vacuum spectrum as its PSF.

    Returns
    -------
    dict
        ``settings`` and, per method, ``found`` and ``false`` (fractions) and
        ``position_error`` (median, channels, over the features found).

    Raises
    ------
    ValueError
        ``n_spectra`` or ``rl_iterations`` is not a positive whole number, or ``seed`` is
        negative (checked before any spectrum is generated).
    """
    n_spectra = _whole_number("n_spectra", n_spectra)
    seed = _whole_number("seed", seed, minimum=0)
    rl_iterations = _whole_number("rl_iterations", rl_iterations)
    config = replace(
        preset("instrument"), n_peaks=(1, 1), peak_near_zlp_fraction=1.0, peak_near_zlp_distance=NEAR_ZLP_DISTANCE,
        peak_fwhm=(3.0, 15.0), peak_ratio=(300.0, 3000.0), continuum_probability=0.0, window_probability=0.0,
        zlp_centre="half_maximum", measured_psf_probability=1.0, measured_psf_extra_fwhm=(0.0, 1.0),
        jitter_amplitude=(0.0, 1.0), zlp_drift=(-30.0, 30.0), total_counts=tuple(counts),
    )
    psfs = prepare_vacuum_psfs(vacuum_spectra, 2 * config.n_channels).psfs
    entropy = np.random.SeedSequence([seed, 99])
    with_feature = generate_batch(config, n_spectra, entropy, measured_psfs=psfs)
    # The same draws, the feature's height made negligible: the twin without it.
    without = generate_batch(replace(config, peak_ratio=(1e12, 1e12)), n_spectra, entropy, measured_psfs=psfs)
    centres = with_feature.parameters["peak_centres"]
    vacuum_psf = prepare_vacuum_psfs(vacuum_spectra).psfs.mean(axis=0)
    outputs = {}
    for label, engine in engines.items():
        outputs[label] = (engine.run(with_feature.distorted), engine.run(without.distorted))
    rl_label = f"RL-{rl_iterations}, vacuum PSF"
    outputs[rl_label] = tuple(
        richardson_lucy(b.distorted, vacuum_psf, rl_iterations) for b in (with_feature, without)
    )
    outputs[INPUT] = (with_feature.distorted, without.distorted)
    summary = {}
    for label, (found_in, false_in) in outputs.items():
        error = peak_position_error(found_in, centres, 3, reference=with_feature.ground_truth)[:, 0]
        false_error = peak_position_error(false_in, centres, 3, reference=with_feature.ground_truth)[:, 0]
        found = error <= NEAR_ZLP_TOLERANCE
        summary[label] = {
            "found": float(found.mean()),
            "false": float((false_error <= NEAR_ZLP_TOLERANCE).mean()),
            "position_error": float(np.median(error[found])) if found.any() else None,
        }
    return {
        "settings": {
            "n_spectra": int(n_spectra), "distance_channels": list(NEAR_ZLP_DISTANCE),
            "tolerance_channels": NEAR_ZLP_TOLERANCE, "counts": [float(c) for c in counts],
            "vacuum_spectra": int(np.shape(vacuum_spectra)[0]),
        },
        "methods": summary,
    }


def _near_zlp_markdown(near) -> str:
    s = near["settings"]
    lines = [
        f"## A loss feature {s['distance_channels'][0]:g}-{s['distance_channels'][1]:g} channels from the ZLP, "
        "under measured vacuum PSFs",
        "",
        f"{s['n_spectra']} spectra with one feature and the same {s['n_spectra']} without it, blurred by "
        f"{s['vacuum_spectra']} vacuum spectra, {s['counts'][0]:.0e}-{s['counts'][1]:.0e} electrons. Found: the "
        f"output's maximum within {s['tolerance_channels']:g} channels of the truth's; false: the same "
        "at that place in the twin without the feature.",
        "",
        "| method | found | false | position error of those found (channels) |",
        "|---|---|---|---|",
    ]
    for label, m in near["methods"].items():
        error = "–" if m["position_error"] is None else f"{m['position_error']:.2f}"
        lines.append(f"| {label} | {100 * m['found']:.1f} % | {100 * m['false']:.1f} % | {error} |")
    return "\n".join(lines)


def _examples(config, batch, restored, n_examples):
    rl_methods = [m for m in restored if m.startswith("RL-")]
    # RL-50 as in the paper's comparisons, or the count closest to it.
    rl_method = min(rl_methods, key=lambda m: abs(int(m.split("-")[1]) - 50))
    keep = slice(0, n_examples)
    return {
        "energy": config.energy_axis,
        "measured": batch.measured[keep],
        "distorted": batch.distorted[keep],
        "ground_truth": batch.ground_truth[keep],
        NETWORK: restored[NETWORK][keep],
        rl_method: restored[rl_method][keep],
    }


def _format(stats, digits=4) -> str:
    if stats is None or stats["median"] is None:
        return "–"
    return f"{stats['median']:.{digits}g} [{stats['p5']:.{digits}g}, {stats['p95']:.{digits}g}]"


def _markdown(results) -> str:
    settings = results["settings"]
    columns = [INPUT, *settings["methods"]]
    lines = [
        "# EELSpecNet versus Richardson-Lucy",
        "",
        f"Model `{settings['model']['name']}` {settings['model'].get('version', '')} "
        f"({settings['model']['parameters']:,} parameters); seed {settings['seed']}. `{NETWORK}` is the "
        "public path (`EELSpecNetDeconvolution.run`, as `s.eelspecnet_deconvolve()` runs it) on the raw "
        f"spectra; `{NETWORK_ONLY}` the bare network on the generated window (a diagnostic). Energy "
        "zero, and the truth's ZLP, at the recorded ZLP's half-maximum centre. Cells: median "
        "[5 %, 95 %]. Richardson-Lucy uses each spectrum's true blur as its PSF. `input` is the "
        "distorted spectrum.",
    ]
    windows = [name for name in results["presets"] if name not in PRESETS]
    for name, result in results["presets"].items():
        if name in windows:
            continue
        lines += ["", f"{settings['n_spectra'][name]} spectra per set."]
        lines += ["", f"## Preset `{name}`", "", "| metric | " + " | ".join(columns) + " |"]
        lines.append("|---" * (len(columns) + 1) + "|")
        for metric, label in METRICS.items():
            by_method = result["summary"][metric]
            digits = {"ssim": 6, "peak_position_error": 2}.get(metric, 4)
            lines.append(f"| {label} | " + " | ".join(_format(by_method.get(m), digits) for m in columns) + " |")
        peaks = result["summary"]["peak_position_error"]
        radius = f"{settings['peak_search_radius_channels']:g}"
        for key, label in (
            ("resolved_fraction", f"Resolvable features found as a peak (within +-{radius} channels)"),
            ("false_peak_fraction", "Feature-free positions where a peak is found all the same (lower is better)"),
            (
                "found_at_network_false_rate",
                f"Resolvable features found as a peak at {NETWORK}'s false-peak rate (each output smoothed to it)",
            ),
        ):
            lines.append(
                f"| {label} | "
                + " | ".join(
                    "–" if peaks.get(m, {}).get(key) is None else f"{100 * peaks[m][key]:.1f} %" for m in columns
                )
                + " |"
            )
    if windows:
        rl = min((m for m in settings["methods"] if m.startswith("RL-")), key=lambda m: abs(int(m[3:]) - 50))
        lines += [
            "", "## Other windows (the `reference` physics)", "",
            f"{NETWORK} through the public path, {rl} beside it (true PSF); medians [5 %, 95 %].", "",
            "| window | spectra per set | ZLP FWHM error (%) | ZLP FWTM error (%) | ZLP FWHM recovery (%) "
            f"| SSIM | {rl} FWHM error (%) | {rl} SSIM |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in windows:
            s = results["presets"][name]["summary"]
            lines.append(
                f"| {name.split(', ', 1)[1]} | {settings['n_spectra'][name]} | "
                f"{_format(s['fwhm_relative_error'][NETWORK], 3)} | {_format(s['fwtm_relative_error'][NETWORK], 3)} | "
                f"{_format(s['fwhm_recovery'][NETWORK], 5)} | {_format(s['ssim'][NETWORK], 6)} | "
                f"{_format(s['fwhm_relative_error'][rl], 3)} | {_format(s['ssim'][rl], 6)} |"
            )
    if results.get("near_zlp"):
        lines += ["", _near_zlp_markdown(results["near_zlp"])]
    return "\n".join(lines) + "\n"


def _json_ready(results) -> dict:
    """Settings and summaries only; infinities become strings, as JSON has none."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, float) and not np.isfinite(value):
            return str(value)
        return value

    return clean({
        "settings": results["settings"],
        "presets": {
            name: {"summary": r["summary"], "seconds": r["seconds"]} for name, r in results["presets"].items()
        },
        "near_zlp": results.get("near_zlp"),
    })


def _method_colours(methods):
    from matplotlib import colormaps

    ramp = colormaps["viridis"]
    rl = [m for m in methods if m.startswith("RL-")]
    colours = {INPUT: "0.55", NETWORK: "tab:red", NETWORK_ONLY: "tab:orange"}
    colours.update({m: ramp(0.15 + 0.7 * i / max(len(rl) - 1, 1)) for i, m in enumerate(rl)})
    return colours


def _violins(ax, by_method, methods, colours, log=False):
    """Violins of the finite values of each method, y range cut to the 1-99 % span."""
    data, names = [], []
    for method in methods:
        values = np.asarray(by_method.get(method, []), float)
        values = values[np.isfinite(values)]
        if log:
            values = values[values > 0]
        if values.size > 1:
            data.append(values)
            names.append(method)
    if not data:
        return
    parts = ax.violinplot(data, showmedians=True, showextrema=False)
    for body, method in zip(parts["bodies"], names):
        body.set_facecolor(colours[method])
        body.set_alpha(0.7)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    if log:
        ax.set_yscale("log")
    low, high = np.percentile(np.concatenate(data), [1, 99])
    if high > low:
        margin = 0.05 * (high - low)
        ax.set_ylim(low / 1.5 if log else low - margin, high * 1.5 if log else high + margin)
    ax.grid(alpha=0.3)


def _figure_noise(results, path):
    from matplotlib.figure import Figure

    names = [name for name in results["presets"] if name in PRESETS]
    methods = [INPUT, *results["settings"]["methods"]]
    colours = _method_colours(methods)
    fig = Figure(figsize=(5.5 * len(names), 4.5), layout="constrained")
    for ax, name in zip(np.atleast_1d(fig.subplots(1, len(names))), names):
        per_spectrum = results["presets"][name]["per_spectrum"]
        amplitude = per_spectrum["noise_amplitude"][INPUT]
        for method in (m for m in methods if m in per_spectrum["noise_variance"]):
            variance = per_spectrum["noise_variance"][method]
            keep = np.isfinite(variance) & (variance > 0) & (amplitude > 0)
            label = "distorted input" if method == INPUT else method
            ax.scatter(amplitude[keep], variance[keep], s=4, alpha=0.5, color=colours[method], label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("noise amplitude (std / spectrum maximum)")
        ax.set_ylabel("noise variance ≥ 1.5 eV above the ZLP")
        ax.set_title(f"Noise variance, preset '{name}'")
        ax.grid(alpha=0.3, which="both")
        ax.legend(markerscale=3, fontsize="small")
    fig.savefig(path, dpi=110)


def _figure_zlp_width(results, path):
    from matplotlib.figure import Figure

    names = [name for name in results["presets"] if name in PRESETS]
    methods = results["settings"]["methods"]
    colours = _method_colours(methods)
    panels = ["fwhm_recovery", "fwhm_relative_error", "fwtm_recovery", "fwtm_relative_error"]
    fig = Figure(figsize=(16, 3.8 * len(names)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(names), len(panels)))
    for row, name in zip(axes, names):
        per_spectrum = results["presets"][name]["per_spectrum"]
        for ax, metric in zip(row, panels):
            log = metric.endswith("relative_error")
            _violins(ax, per_spectrum[metric], methods, colours, log=log)
            if not log:
                ax.axhline(100.0, color="k", lw=0.8, ls="--")
            ax.set_title(f"{METRICS[metric]} — {name}", fontsize="medium")
    fig.savefig(path, dpi=110)


def _figure_ssim(results, path):
    from matplotlib.figure import Figure

    names = [name for name in results["presets"] if name in PRESETS]
    methods = [INPUT, *results["settings"]["methods"]]
    colours = _method_colours(methods)
    fig = Figure(figsize=(5.5 * len(names), 4.2), layout="constrained")
    for ax, name in zip(np.atleast_1d(fig.subplots(1, len(names))), names):
        _violins(ax, results["presets"][name]["per_spectrum"]["ssim"], methods, colours)
        ax.set_title(f"SSIM to ground truth — {name}")
    fig.savefig(path, dpi=110)


def _figure_examples(results, path):
    from matplotlib.figure import Figure

    name = next(name for name in results["presets"] if name in PRESETS)
    examples = results["presets"][name]["examples"]
    energy, measured = examples["energy"], examples["measured"]
    curves = [k for k in examples if k not in ("energy", "measured")]
    colours = {"distorted": "0.55", "ground_truth": "k", NETWORK: "tab:red"}
    n_rows = examples["distorted"].shape[0]
    fig = Figure(figsize=(10, 2.8 * n_rows), layout="constrained")
    for index, ax in enumerate(np.atleast_1d(fig.subplots(n_rows, 1, sharex=True))):
        inside = measured[index]
        for curve in curves:
            colour = colours.get(curve, "tab:blue")
            label = curve.replace("_", " ")
            ax.plot(energy[inside], examples[curve][index][inside], color=colour, lw=1.0, label=label)
        top = examples["ground_truth"][index].max()
        ax.set_yscale("log")
        ax.set_ylim(1e-7 * top, 2 * top)
        ax.set_ylabel("intensity (unit area)")
        ax.grid(alpha=0.3)
    ax.set_xlabel("energy loss (eV)")
    fig.axes[0].legend(fontsize="small", ncols=len(curves))
    fig.axes[0].set_title(f"Examples from preset '{name}'")
    fig.savefig(path, dpi=110)


def write_report(results, out_dir) -> dict:
    """Write ``evaluation.json``, ``evaluation.md`` and the figures of :func:`evaluate`'s results.

    Returns
    -------
    dict
        Name -> path of every file written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in ("evaluation.json", "evaluation.md")}
    paths["evaluation.json"].write_text(json.dumps(_json_ready(results), indent=2))
    paths["evaluation.md"].write_text(_markdown(results))
    if any(name in PRESETS for name in results["presets"]):  # the figures show the presets' sets
        figures = {
            "fig4_noise_variance.png": _figure_noise, "fig5_zlp_width.png": _figure_zlp_width,
            "fig6_ssim.png": _figure_ssim, "examples.png": _figure_examples,
        }
        for name, draw in figures.items():
            paths[name] = out_dir / name
            draw(results, paths[name])
    return paths


def _check_output_folder(out) -> None:
    """Refuse, before any work, a report folder that cannot be written (or created)."""
    problem = folder_problem(out)
    if problem is not None:
        kind, where = problem
        raise ValueError({
            "file": f"--out {out} is a file; give a folder for the report.",
            "under_file": f"cannot create --out {out}: {where} is a file; give a folder for the report.",
            "no_write": f"cannot write in {where} (--out {out}): permission denied; give another folder.",
        }[kind])


def _check_card(card) -> None:
    """Refuse, before any work, a model card that cannot be read and rewritten."""
    path = Path(card)
    if path.is_dir():
        raise ValueError(f"--card {card} is a folder; give the model card's file (e.g. {path / 'MODEL_CARD.md'}).")
    if path.exists():
        try:
            path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"cannot read the model card {card} ({error}); give a Markdown file to --card.") from error
        if not os.access(path, os.W_OK):
            raise ValueError(f"cannot write the model card {card}: permission denied; give another --card.")
        return
    if not path.parent.exists():
        raise FileNotFoundError(f"No folder {path.parent} for the model card {card}; create it first.")
    if not path.parent.is_dir():
        raise ValueError(f"cannot create the model card {card}: {path.parent} is a file; give another --card.")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ValueError(
            f"cannot create the model card {card}: permission denied in {path.parent}; give another --card."
        )


def evaluate_command(args) -> None:
    """``eelspecnet evaluate``: evaluate a model, write the report to ``args.out``.

    Every input is checked before any spectrum is generated: the settings (preset names,
    counts, seed), the output paths, the models (loaded) and the vacuum spectra (read and
    prepared as PSFs).

    Raises
    ------
    FileNotFoundError
        A model or vacuum file, or the model card's folder, is missing.
    ValueError
        Nothing to evaluate (no preset, ``--no-windows`` and no ``--vacuum``); an unknown preset;
        a count that is not a positive whole number or a negative seed; a model or vacuum file
        is unusable; ``--out`` or ``--card`` cannot be written; ``--compare`` or
        ``--near-zlp-spectra`` is given without ``--vacuum``; or the report or card could not be
        written at the end.
    """
    from ..io import read_spectra

    if not args.vacuum:
        for option, value in (("--compare", args.compare), ("--near-zlp-spectra", args.near_zlp_spectra)):
            if value is not None:
                raise ValueError(
                    f"{option} applies to the near-ZLP sets under measured vacuum spectra: it needs --vacuum."
                )
        if not args.presets and args.no_windows:
            raise ValueError(
                "nothing to evaluate: --presets names no preset, --no-windows skips the other windows and no "
                "--vacuum is given; name a preset (e.g. --presets reference), drop --no-windows or add --vacuum."
            )
    seed = EVALUATION_SEED if args.seed is None else args.seed
    presets, rl_iterations = _checked_settings(args.presets, args.n_spectra, args.rl_iterations, seed)
    if args.near_zlp_spectra is not None:
        _whole_number("--near-zlp-spectra", args.near_zlp_spectra)
    _check_output_folder(args.out)
    card = getattr(args, "card", None)
    if card:
        _check_card(card)
    engine = EELSpecNetDeconvolution(args.model)
    engines = {f"EELSpecNet ({engine.contract.name} {engine.contract.version})": engine}
    for path in args.compare or []:
        other = EELSpecNetDeconvolution(path)
        engines[f"EELSpecNet ({other.contract.name} {other.contract.version}, {path})"] = other
    if args.vacuum:
        files = [read_spectra(path) for path in args.vacuum]
        if len({file.spectra.shape[1] for file in files}) > 1:
            raise ValueError(
                "The --vacuum files hold spectra of different lengths ("
                + ", ".join(f"{file.path.name}: {file.spectra.shape[1]} channels" for file in files)
                + "); give spectra of one length."
            )
        vacuum = np.concatenate([file.spectra for file in files])
        prepare_vacuum_psfs(vacuum, names=[name for file in files for name in file.names])  # refused by name
    results = evaluate(
        engine, presets=presets, n_spectra=args.n_spectra, rl_iterations=rl_iterations, seed=seed,
        windows=not args.no_windows,
    )
    if args.vacuum:
        n_near = {} if args.near_zlp_spectra is None else {"n_spectra": args.near_zlp_spectra}
        results["near_zlp"] = near_zlp_significance(engines, vacuum, seed=seed, **n_near)
    try:
        paths = write_report(results, args.out)
    except OSError as error:
        raise ValueError(f"cannot write the report into {args.out}: {error}") from error
    print(f"Report written to {paths['evaluation.md'].parent}")
    if card:
        command = "eelspecnet evaluate " + " ".join(getattr(args, "argv", []) or [])
        try:
            update_model_card(card, paths["evaluation.md"].read_text(), command.strip())
        except OSError as error:
            raise ValueError(f"cannot write the model card {card}: {error}") from error
        print(f"Evaluation table written into {card}")


CARD_SECTION = "## Evaluation"


def update_model_card(card_path, evaluation_markdown: str, command: str) -> None:
    """Replace the ``## Evaluation`` section of a model card where it stands (or add it at the end).

    The section holds the command that produced the numbers and the report's tables, with the
    report's headings moved one level down, so the card never shows numbers without their source.
    """
    body = "\n".join(
        ("#" + line) if line.startswith("#") else line
        for line in evaluation_markdown.splitlines()
        if not line.startswith("# ")
    ).strip()
    set_card_section(card_path, CARD_SECTION, f"Produced by `{command}`.\n\n{body}")
