"""Fine-tune a model on your microscope's own vacuum ZLP: ``eelspecnet finetune VACUUM --out DIR``.

Blind, a loss feature on the ZLP's tail cannot be told from the tail of an unknown PSF (a
phonon at 0.1 eV, say). A vacuum spectrum recorded with the specimen's settings is that PSF:
:func:`finetune` continues a trained model (the bundled one by default) on generated spectra
blurred by the given vacuum spectra only (:mod:`hyperspy_eelspecnet.vacuum` prepares them), so
the network learns this instrument's tails exactly. The generated truths put loss features
near the ZLP more often (in half of them, weak phonon-like features 1-5 vacuum FWHM from the
ZLP, scaled to its width), give every loss feature its energy-gain twin weighted by detailed
balance at a random temperature, and draw their noise from the specimen's counts when a
specimen file is given. Every recorded spectrum is matched from the mean vacuum PSF to a
Gaussian of its width before the network (:func:`~hyperspy_eelspecnet.vacuum.match_to_gaussian`):
the vacuum's tails are gone from under the features near the ZLP, and the network learns to
undo a Gaussian. The fine-tuned model's contract carries that PSF, and the restoration matches
every input with it. The run lasts a wall-clock budget, with the learning rate decaying over
it (``TrainConfig.schedule = "minutes"``).

Everything but the finished model lives in ``DIR/training`` (checkpoints to resume from); the
model, its contract and its card are moved into ``DIR`` only when training has finished, so an
interrupted run never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from ..io import DISPERSION_TOLERANCE, read_spectra, span
from ..model import file_sha256, load_model
from ..model.contract import contract_path
from ..model.files import model_file
from ..restoration import ZLP_ENERGY_LIMIT_EV
from ..spectral import MIN_CHANNELS_ABOVE_ZLP, fwhm, locate_zlp
from ..vacuum import LOSS_FEATURE_RISE_LIMIT, loss_feature_rise, prepare_vacuum_psfs
from .card import set_card_section

__all__ = ["finetune", "finetune_config", "FINETUNE_MINUTES"]

#: Default wall-clock budget of a fine-tune, minutes (on a 2-core CPU).
FINETUNE_MINUTES = 20.0
#: Specimen temperatures of the gain-side twins, kelvin (log-uniform).
TEMPERATURE_RANGE = (100.0, 1500.0)
#: Electrons per spectrum when no specimen is given (log-uniform).
DEFAULT_COUNTS = (1e4, 1e9)
#: Phonon-like features of half the training spectra, in units of the vacuum's ZLP FWHM: 75 %
#: of them this far above the ZLP (log-uniform), all this wide (uniform), and 1/300-1/3000 of
#: the ZLP's height (uniform in the ratio).
PHONON_NEAR_FRACTION = 0.75
PHONON_DISTANCE_FWHM = (1.0, 5.0)
PHONON_WIDTH_FWHM = (0.4, 1.5)
PHONON_RATIO = (300.0, 3000.0)
#: Generated spectra (and as many twins without the feature) of the card's near-ZLP validation.
VALIDATION_SPECTRA = 300
#: A vacuum recorded with the specimen's settings cannot have a wider ZLP than the specimen's:
#: the FWHM of its aligned mean more than this times the specimen's is refused (the rest is noise, drift)...
VACUUM_WIDER_LIMIT = 1.15
#: ... and a specimen ZLP more than this times the vacuum's gets a warning (drift during a long
#: acquisition, or other settings).
SPECIMEN_WIDER_LIMIT = 1.5
#: A calibrated window without 0 eV holds the ZLP, off 0 eV (an uncalibrated axis), where its
#: maximum falls below this fraction of itself on its gain side (dark there, not standing on a
#: ZLP's tail as a plasmon does) ...
ZLP_GAIN_FRACTION = 1e-2
#: ... and below this fraction on its loss side (a thick specimen's ZLP falls less far before
#: its plasmon) ...
ZLP_LOSS_FRACTION = 0.1
#: ... for this many channels in a row (their mean).
ZLP_RUN = 3


def _read_all(paths, what):
    files = [read_spectra(path) for path in paths]
    if not files:
        raise ValueError(f"Give at least one {what} file.")
    widths = {f.spectra.shape[-1] for f in files}
    if len(widths) > 1:
        raise ValueError(
            f"The {what} files have different channel counts {sorted(widths)}; give spectra of one "
            "energy window (crop them alike)."
        )
    return files


def _refuse_unless_forced(text, force):
    """``ValueError`` with ``text`` and how to override it; with ``force``, a warning instead."""
    if not force:
        raise ValueError(
            f"{text} If the files are right, pass force=True (--force on the command line) to fine-tune on them anyway."
        )
    warnings.warn(f"{text} (Fine-tuned anyway: force=True.)", UserWarning, stacklevel=3)


def _zlp_like(spectra) -> np.ndarray:
    """Whether each spectrum's maximum looks like a zero-loss peak: inside the window, falling
    below :data:`ZLP_GAIN_FRACTION` of itself on its gain side (a ZLP's gain side is dark; a
    plasmon's or an edge's stands on what lies below it) and below :data:`ZLP_LOSS_FRACTION` on
    its loss side (a few channels in a row), with a FWHM under a tenth of the window."""
    data = np.nan_to_num(np.asarray(spectra, dtype=float))
    n = data.shape[1]
    position = np.rint(locate_zlp(data)).astype(int)
    peak = data[np.arange(len(data)), position]
    run = np.ones(ZLP_RUN) / ZLP_RUN
    like = np.zeros(len(data), bool)
    width = fwhm(data)
    for i, (row, k, top, w) in enumerate(zip(data, position, peak, width)):
        level = np.convolve(row, run, mode="valid") / top if top > 0 else np.ones(max(n - ZLP_RUN + 1, 0))
        below, above = level[: max(k - ZLP_RUN + 1, 0)], level[k + 1:]
        like[i] = (
            below.size > 0 and above.size > 0 and below.min() < ZLP_GAIN_FRACTION and above.min() < ZLP_LOSS_FRACTION
            and np.isfinite(w) and w < 0.1 * n
        )
    return like


def _check_low_loss(files, what, force):
    """Refuse (unless ``force``) files whose calibrated window does not contain 0 eV and whose
    maximum is no ZLP-like peak (a plasmon or core-loss window); warn of a ZLP-like maximum
    off 0 eV (an uncalibrated axis: the fine-tune works in channels)."""
    for f in files:
        if f.energy_range is None:
            continue
        first, last = f.energy_range
        scale = (last - first) / max(f.spectra.shape[1] - 1, 1)
        energy = first + scale * locate_zlp(np.nan_to_num(f.spectra))
        low, high = format(float(energy.min()), ".3g"), format(float(energy.max()), ".3g")
        at = low if low == high else span(float(energy.min()), float(energy.max()), ".3g")
        outside = not f.holds_zero_energy()
        if not outside and np.all(np.abs(energy) <= ZLP_ENERGY_LIMIT_EV):
            continue
        where = (
            f"spans {span(first, last, '.4g')} eV: the window does not contain 0 eV" if outside
            else f"has its maximum at {at} eV, more than {ZLP_ENERGY_LIMIT_EV:g} eV from 0 eV"
        )
        calibrate = (
            "If the ZLP is there and the energy axis is not calibrated, calibrate it first "
            "(s.align_zero_loss_peak(calibrate=True)) and save the file again."
        )
        like = _zlp_like(f.spectra)
        if like.all():
            warnings.warn(
                f"The {what} file {f.path} {where}, but its maximum (at {at} eV) is a narrow peak like a "
                "zero-loss peak: the energy axis is likely not calibrated. The fine-tune works in channels "
                f"and goes on; if this window has no ZLP (a plasmon window), do not use it. {calibrate}",
                UserWarning,
                stacklevel=3,
            )
            continue
        remedy = (
            "give the vacuum zero-loss peak, recorded through a hole with the specimen's settings."
            if what == "vacuum" else "give the low-loss spectra to be restored, with their zero-loss peak."
        )
        shown = f"{int((~like).sum())} of its {len(like)} spectra" if len(like) > 1 else "it"
        _refuse_unless_forced(
            f"The {what} file {f.path} {where}, and the maximum taken for the zero-loss peak (at {at} eV) is no "
            f"narrow peak dark on its gain side in {shown}. If this window has no ZLP (a plasmon or core-loss "
            f"window), it is not a low-loss spectrum: {remedy} {calibrate}",
            force,
        )


def _check_specimen(file):
    """Refuse specimen spectra whose counts cannot set the training noise (NaN, no counts)."""
    finite = np.isfinite(file.spectra)
    totals = np.where(finite, file.spectra, 0.0).sum(axis=1)
    bad = np.flatnonzero(~finite.all(axis=1) | (totals <= 0))
    if bad.size:
        shown = ", ".join(file.names[i] for i in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise ValueError(
            f"{bad.size} of the specimen spectra in {file.path} ({shown}) hold NaN or infinite values or no "
            "positive counts: the fine-tune draws its noise from the specimen's counts. Replace or crop "
            "away those pixels, or leave out --specimen (the noise then spans 1e4-1e9 electrons)."
        )


def _check_loss_features(spectra, names, force):
    """Refuse (unless ``force``) vacuum spectra whose loss side rises again above their ZLP tail
    (:func:`~hyperspy_eelspecnet.vacuum.loss_feature_rise`): a single spectrum as it is judged;
    of several, more than half of them, or their mean aligned on the ZLP (loss features
    common to them, as in specimen spectra given as the vacuum). A few that rise while their
    mean does not are named in a warning (counting noise or a stray spike)."""
    rise = loss_feature_rise(spectra)
    rising = np.flatnonzero(rise > LOSS_FEATURE_RISE_LIMIT)
    if not rising.size:
        return
    shown = ", ".join(names[i] for i in rising[:5]) + (", ..." if rising.size > 5 else "")
    by = span(rise[rising].min(), rise[rising].max(), ".2g") if rising.size > 1 else f"{rise[rising[0]]:.2g}"
    which = f"{rising.size} of the {len(names)} vacuum spectra ({shown}) rise again above their ZLP tail by {by} of the ZLP"
    if len(names) > 1 and 2 * rising.size <= len(names):
        smoothing = float(np.nanmedian(fwhm(spectra))) / 4.0
        mean_rise = float(loss_feature_rise(_aligned_sum(spectra, smoothing))[0])
        if mean_rise <= LOSS_FEATURE_RISE_LIMIT:
            warnings.warn(
                f"{which}, their mean aligned on the ZLP does not (a vacuum's tail stays below "
                f"{LOSS_FEATURE_RISE_LIMIT:g}): counting noise or a stray spike, most likely; fine-tuned on all of "
                "them. If those spectra hold loss features, leave them out.",
                UserWarning,
                stacklevel=3,
            )
            return
        which += f", and their mean aligned on the ZLP by {mean_rise:.2g}"
    _refuse_unless_forced(
        f"{which} (a vacuum's tail stays below {LOSS_FEATURE_RISE_LIMIT:g}): loss features, as in "
        "a specimen spectrum, and the network would learn to remove them. Pass the vacuum reference "
        "recorded through a hole, with nothing in the beam.",
        force,
    )


def _dispersion(files, what):
    """The one dispersion the files state (eV per channel), or None when none does."""
    stated = {f.path.name: f.dispersion for f in files if f.dispersion is not None}
    values = list(stated.values())
    if values and any(abs(v - values[0]) > DISPERSION_TOLERANCE * abs(values[0]) for v in values):
        raise ValueError(f"The {what} files have different dispersions: {stated} eV per channel.")
    return values[0] if values else None


def _aligned_sum(spectra, smoothing: float) -> np.ndarray:
    """The sum of ``spectra`` (m, n) shifted by whole channels to a common ZLP on channel n of a
    frame of 2n channels (zero beyond each spectrum), the ZLP located on the spectra smoothed by
    a Gaussian of standard deviation ``smoothing`` (not on a noise spike at its top)."""
    from scipy.ndimage import gaussian_filter1d

    data = np.nan_to_num(np.asarray(spectra, dtype=float))
    n = data.shape[1]
    position = np.rint(locate_zlp(gaussian_filter1d(data, max(smoothing, 0.5), axis=1, mode="nearest"))).astype(int)
    start = n - position
    total = np.zeros(2 * n)
    for shift in np.unique(start):
        total[shift: shift + n] += data[start == shift].sum(axis=0)
    return total


def _aligned_mean_fwhm(spectra, smoothing: float) -> float:
    """FWHM (channels) of the mean of ``spectra`` aligned on their ZLP (:func:`_aligned_sum`):
    a low-count spectrum's own FWHM is biased low by its noise (its maximum lifted by it), the
    mean's is not."""
    return float(fwhm(_aligned_sum(spectra, smoothing)[None])[0])


def _compare_widths(vacuum_spectra, vacuum_fwhm, specimen_spectra, force):
    """Refuse (unless ``force``) a vacuum ZLP wider than the specimen's; warn of a specimen ZLP
    much wider than the vacuum's (FWHM of the mean of each one's spectra aligned on their ZLP,
    channels)."""
    smoothing = float(np.median(vacuum_fwhm)) / 4.0
    specimen_width = _aligned_mean_fwhm(specimen_spectra, smoothing)
    if not np.isfinite(specimen_width):
        return  # no ZLP measured in the specimen: the restoration says so
    vacuum_width = _aligned_mean_fwhm(vacuum_spectra, smoothing)
    widths = "FWHM of the mean of the spectra aligned on their ZLP"
    if vacuum_width > VACUUM_WIDER_LIMIT * specimen_width:
        _refuse_unless_forced(
            f"The vacuum ZLP is {vacuum_width:.1f} channels wide ({widths}), {vacuum_width / specimen_width:.2f} "
            f"times the specimen's {specimen_width:.1f}: a vacuum recorded with the specimen's settings cannot "
            f"be wider (more than {VACUUM_WIDER_LIMIT:g} times). Record the vacuum reference with the "
            "specimen's settings (dispersion, energy resolution, exposure).",
            force,
        )
    elif specimen_width > SPECIMEN_WIDER_LIMIT * vacuum_width:
        warnings.warn(
            f"The specimen's ZLP is {specimen_width:.1f} channels wide ({widths}), "
            f"{specimen_width / vacuum_width:.2f} times the vacuum's {vacuum_width:.1f}: drift during a long "
            "acquisition, or a vacuum recorded with other settings. The fine-tuned model learns the vacuum's "
            "blur only; check that the vacuum reference was recorded with the specimen's settings.",
            UserWarning,
            stacklevel=3,
        )


def finetune_config(
    base_config: dict, vacuum_fwhm, dispersion: float, counts, seed: int = 0, minutes=FINETUNE_MINUTES,
    n_channels: int = 2048,
):
    """The training configuration of a fine-tune.

    Parameters
    ----------
    base_config : dict
        The base model's training configuration (``contract.training["config"]``): the
        network's shape and the loss are kept.
    vacuum_fwhm : array_like
        ZLP FWHM (channels) of the vacuum spectra, for the contract's trained range.
    dispersion : float
        eV per channel (the detailed balance of the gain-side twins needs energies).
    counts : (float, float)
        Electrons per spectrum, drawn log-uniformly.
    seed : int
    minutes : float
        Wall-clock budget.
    n_channels : int
        Channels of the training spectra (the ZLP nominally on a fifth of them, moved anywhere
        from channel 96 to the middle by the drift).

    Returns
    -------
    TrainConfig
    """
    from .trainer import TrainConfig

    keep = ("filters", "kernel_size", "convs_per_level", "bottleneck_dilations", "resampling", "epsilon",
            "linear_weight", "feature_weight", "noise_weight_exponent")
    network = {key: base_config[key] for key in keep if key in base_config}
    zlp_channel = n_channels // 5
    overrides = {
        # The vacuum spectra are the whole blur (PSF and jitter): a little more of both, drift,
        # and the ZLP anywhere in the window, as the base model was trained.
        "measured_psf_probability": 1.0,
        "measured_psf_extra_fwhm": [0.0, 1.0],
        "jitter_amplitude": [0.0, 1.0],
        "jitter_distributions": ["uniform", "gaussian"],
        "n_channels": n_channels,
        "zlp_channel": zlp_channel,
        "peak_channel": [zlp_channel - 20, n_channels - 2],
        "zlp_drift": [96.0 - zlp_channel, n_channels / 2 - zlp_channel],
        "align_zlp": True,
        "zlp_centre": "half_maximum",
        "window_probability": 1.0,
        "window_start": [64, zlp_channel],
        "window_stop": [int(0.6 * n_channels), n_channels - 64],
        # Phonons and low-energy plasmons on the ZLP tail, with their anti-Stokes twins.
        "peak_near_zlp_fraction": 0.5,
        "peak_near_zlp_distance": [6.0, 300.0],
        "gain_side_temperature": list(TEMPERATURE_RANGE),
        "total_counts": [float(counts[0]), float(counts[1])],
        "dispersion": float(dispersion),
    }
    low, high = float(np.min(vacuum_fwhm)), float(np.max(vacuum_fwhm))
    # The contract's range: the vacuum's, as the broadening and jitter above (and a specimen's
    # ZLP a little off the vacuum's) make it.
    overrides["psf_fwhm"] = [max(low - 1.0, 1.0), high + 2.0]
    # Half the spectra: phonon-like features scaled to this instrument's ZLP width, mostly 1-5
    # FWHM above it, where the ZLP's tail hides them.
    width = float(np.median(vacuum_fwhm))
    phonon_like = {
        **overrides,
        "peak_near_zlp_fraction": PHONON_NEAR_FRACTION,
        "peak_near_zlp_distance": [PHONON_DISTANCE_FWHM[0] * width, PHONON_DISTANCE_FWHM[1] * width],
        "peak_fwhm": [PHONON_WIDTH_FWHM[0] * width, PHONON_WIDTH_FWHM[1] * width],
        "peak_fwhm_log": False,
        "peak_ratio": list(PHONON_RATIO),
    }
    return TrainConfig(
        mixture=[
            {"preset": "instrument", "weight": 0.5, "overrides": overrides},
            {"preset": "instrument", "weight": 0.5, "overrides": phonon_like},
        ],
        # The network sees every input matched from the mean vacuum PSF to a Gaussian of its
        # width: no PSF tail left under a feature near the ZLP (the restoration does the same).
        match_to_gaussian=True,
        **network,
        batch_size=32,
        steps_per_epoch=200,
        epochs=100000,
        learning_rate=2e-4,
        final_learning_rate_fraction=0.01,
        warmup_steps=100,
        validation_size=256,
        early_stopping_patience=100000,
        max_minutes=float(minutes),
        schedule="minutes",
        seed=int(seed),
        name="eelspecnet-finetuned",
        version="1",
    )


def finetune(
    vacuum,
    out,
    minutes: float = FINETUNE_MINUTES,
    model=None,
    specimen=None,
    dispersion: float | None = None,
    resume: bool = False,
    seed: int = 0,
    verbose: int = 1,
    force: bool = False,
) -> Path:
    """Fine-tune a model on measured vacuum spectra; write ``out/eelspecnet.keras``.

    Parameters
    ----------
    vacuum : path or sequence of paths
        Vacuum spectra: anything rosettasciio reads (.dm3, .dm4, .hspy, .msa; a spectrum
        image gives one PSF per pixel), text files (one spectrum per row) or ``.npy``.
    out : path
        Output folder: ``eelspecnet.keras``, its contract ``eelspecnet.json`` and
        ``MODEL_CARD.md``; ``training/`` keeps the checkpoints.
    minutes : float
        Wall-clock budget of the training (the learning rate decays over it).
    model : path, optional
        The model to start from (a ``.keras`` file or the folder ``eelspecnet train`` or
        ``eelspecnet finetune`` wrote); the bundled one by default.
    specimen : path or sequence of paths, optional
        Specimen spectra to be restored: the generated noise spans their counts (half the
        lowest to twice the highest), and their dispersion must be the vacuum's.
    dispersion : float, optional
        eV per channel, where neither the vacuum nor the specimen files say (text, ``.npy``).
        Where no file says and none is given, the specimen files' is taken (a line says so), or
        else the base model's (with a warning).
    resume : bool
        Continue the run in ``out/training`` (its schedule and checkpoints).
    seed : int
        Root of the generated training and validation spectra.
    verbose : int
        0 hides the progress line and the line saying where the dispersion came from.
    force : bool
        Fine-tune anyway (each then only warned about) on vacuum spectra that look wrong but may
        not be: a calibrated energy window without 0 eV, loss features rising above the ZLP
        tail (a specimen spectrum given as the vacuum), a vacuum ZLP wider than the specimen's.

    Returns
    -------
    Path
        ``out/eelspecnet.keras``.

    Raises
    ------
    ValueError
        Vacuum spectra with NaN, without counts or with a ZLP cut by the window (see
        :func:`~hyperspy_eelspecnet.vacuum.prepare_vacuum_psfs`); specimen spectra with NaN or
        without counts; vacuum and specimen at different dispersions; fewer channels than the
        restoration needs; ``resume`` with other files, base model, dispersion or seed than the
        run it continues. Unless ``force``: a vacuum or specimen file whose energy axis (in
        eV, meV or keV) does not contain 0 eV and whose maximum is no ZLP-like peak (a plasmon
        or core-loss window); vacuum spectra whose loss side rises again above their ZLP tail
        by more than :data:`~hyperspy_eelspecnet.vacuum.LOSS_FEATURE_RISE_LIMIT` of the ZLP
        (:func:`~hyperspy_eelspecnet.vacuum.loss_feature_rise`: loss features, a specimen
        spectrum given as the vacuum): a single one, more than half of several, or their mean
        aligned on the ZLP; a vacuum whose ZLP FWHM (channels, of the mean of its spectra
        aligned on the ZLP) is more than :data:`VACUUM_WIDER_LIMIT` times the specimen's
        (likewise; recorded with other settings). ``out`` is left unchanged.

    Warns
    -----
    UserWarning
        A specimen ZLP more than :data:`SPECIMEN_WIDER_LIMIT` times as wide as the vacuum's
        (drift during a long acquisition, or other settings); a ZLP-like maximum off 0 eV
        (an uncalibrated axis); a few vacuum spectra rising above their ZLP tail while their
        mean does not (counting noise, a stray spike); the base model's dispersion
        adopted because no file says one and none is given; with ``force``, what it let through.
    """
    vacuum = [vacuum] if isinstance(vacuum, (str, os.PathLike)) else list(vacuum)
    specimen = [] if specimen is None else [specimen] if isinstance(specimen, (str, os.PathLike)) else list(specimen)
    vacuum_files = _read_all(vacuum, "vacuum")
    specimen_files = _read_all(specimen, "specimen") if specimen else []
    _check_low_loss(vacuum_files, "vacuum", force)
    _check_low_loss(specimen_files, "specimen", force)
    for f in specimen_files:
        _check_specimen(f)
    vacuum_dispersion = _dispersion(vacuum_files, "vacuum")
    specimen_dispersion = _dispersion(specimen_files, "specimen") if specimen_files else None
    if vacuum_dispersion and specimen_dispersion and (
        abs(vacuum_dispersion - specimen_dispersion) > DISPERSION_TOLERANCE * vacuum_dispersion
    ):
        raise ValueError(
            f"The vacuum spectra are at {vacuum_dispersion:g} eV per channel, the specimen at "
            f"{specimen_dispersion:g}: a PSF measured at one dispersion does not blur spectra at "
            "another. Record the vacuum reference with the specimen's settings."
        )
    stated = vacuum_dispersion or specimen_dispersion
    if dispersion is not None and stated is not None and abs(dispersion - stated) > DISPERSION_TOLERANCE * stated:
        raise ValueError(f"dispersion={dispersion:g} eV per channel, but the files say {stated:g}.")

    names = [name for f in vacuum_files for name in f.names]
    spectra = np.concatenate([f.spectra for f in vacuum_files])
    prepared = prepare_vacuum_psfs(spectra, names=names)  # raises for unusable spectra
    after = spectra.shape[1] - 1 - prepared.zlp_position
    if np.any(after < MIN_CHANNELS_ABOVE_ZLP):
        raise ValueError(
            f"The vacuum spectra show fewer than {MIN_CHANNELS_ABOVE_ZLP} channels above the ZLP; the "
            "PSF's loss-side tail is what the fine-tune learns, record a wider window."
        )
    _check_loss_features(spectra, names, force)
    if specimen_files:
        _compare_widths(spectra + prepared.dark_offset[:, None], prepared.zlp_fwhm, np.concatenate([f.spectra for f in specimen_files]), force)
    if vacuum_dispersion is None and dispersion is None and specimen_dispersion is not None and verbose:
        print(
            f"Dispersion: {specimen_dispersion:g} eV per channel, the specimen files' (the vacuum files do "
            "not say theirs; give --dispersion (dispersion=) to set it)."
        )

    base_path = model_file(model)  # a file, a folder written by train or finetune, or the bundled model
    base_model, base_contract = load_model(base_path)
    del base_model
    if specimen_files:
        totals = np.concatenate([f.spectra.sum(axis=1) for f in specimen_files])
        counts = (max(0.5 * float(totals.min()), 1.0), 2.0 * float(totals.max()))
    else:
        counts = DEFAULT_COUNTS
    source = (
        "the vacuum files" if vacuum_dispersion else "the specimen files" if specimen_dispersion
        else "given" if dispersion else "the base model's, unknown from the files"
    )
    if stated is None and dispersion is None:
        warnings.warn(
            f"Neither the vacuum nor the specimen files say their dispersion: the base model's "
            f"{base_contract.dispersion:g} eV per channel is taken, and the fine-tuned model restores "
            "spectra at that dispersion only. Give --dispersion (dispersion=) if the spectra are at another.",
            UserWarning,
            stacklevel=2,
        )
    dispersion = stated or dispersion or base_contract.dispersion
    # Training spectra as long as the vacuum spectra allow (a 1024-channel frame trains twice
    # as many spectra a minute as a 2048-channel one).
    frame = 1024 if spectra.shape[1] <= 1024 else 2048
    config = finetune_config(
        base_contract.training["config"], prepared.zlp_fwhm, dispersion, counts, seed, minutes, n_channels=frame
    )
    config.initial_model = str(base_path.absolute())

    out = Path(out)
    work = out / "training"
    # What the run is made of: a resumed run must be given the same.
    inputs = {
        "vacuum_sha256": [file_sha256(f.path) for f in vacuum_files],
        "specimen_sha256": [file_sha256(f.path) for f in specimen_files],
        "base_model_sha256": file_sha256(base_path),
        "dispersion_eV": float(dispersion), "counts": [float(c) for c in counts], "seed": int(seed),
    }
    inputs_file = work / "finetune_inputs.json"
    if resume and not (work / "backup").exists():
        raise ValueError(f"There is no fine-tune to resume in {out}; leave out resume (--resume) to start one.")
    if resume and inputs_file.exists():
        before = json.loads(inputs_file.read_text())
        changed = [key for key in inputs if before.get(key) != inputs[key]]
        if changed:
            raise ValueError(
                f"The run in {work} was started with other {', '.join(changed)} than given now; a "
                "resumed fine-tune must be given the same vacuum, specimen, base model, dispersion "
                "and seed (a longer budget may be given). Give those, or start afresh without resume."
            )
    if work.exists() and not resume:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    inputs_file.write_text(json.dumps(inputs, indent=1))
    vacuum_file = work / "vacuum_spectra.npy"  # what the trainer reads: every vacuum spectrum, as given
    np.save(vacuum_file, spectra)
    config.measured_psfs = [str(vacuum_file)]

    from .trainer import train

    started = time.time()
    trained = train(config, work, resume=resume, verbose=verbose)
    validation = _near_zlp_validation(trained, base_path, spectra, counts if specimen_files else None)
    record = {
        "base_model": {
            "file": str(base_path.absolute()), "sha256": inputs["base_model_sha256"],
            "name": base_contract.name, "version": base_contract.version,
        },
        "vacuum": [
            {"file": str(f.path.absolute()), "sha256": sha256, "spectra": int(f.spectra.shape[0])}
            for f, sha256 in zip(vacuum_files, inputs["vacuum_sha256"])
        ],
        "vacuum_zlp_fwhm_channels": [float(prepared.zlp_fwhm.min()), float(prepared.zlp_fwhm.max())],
        "dispersion_eV": float(dispersion),
        "dispersion_source": source,
        "specimen": [str(f.path.absolute()) for f in specimen_files],
        "counts": [float(c) for c in counts],
        "wall_time_s": round(time.time() - started, 1),
        "validation": validation,
    }
    return _publish(trained, out, record, config)


def _near_zlp_validation(trained, base_path, vacuum_spectra, counts) -> dict:
    """Found and false rates of a loss feature near the ZLP under these vacuum spectra, for the
    fine-tuned model, its base and Richardson-Lucy with the mean vacuum
    (:func:`~hyperspy_eelspecnet.evaluation.report.near_zlp_significance`)."""
    from ..evaluation.report import near_zlp_significance
    from ..restoration import EELSpecNetDeconvolution

    engines = {"fine-tuned": EELSpecNetDeconvolution(trained), "base model": EELSpecNetDeconvolution(base_path)}
    options = {} if counts is None else {"counts": tuple(counts)}
    return near_zlp_significance(engines, vacuum_spectra, n_spectra=VALIDATION_SPECTRA, **options)


def _validation_line(validation: dict) -> str:
    settings, methods = validation["settings"], validation["methods"]
    rates = {label: f"{100 * m['found']:.1f} / {100 * m['false']:.1f} %" for label, m in methods.items()}
    return (
        f"- near the ZLP: a loss feature {settings['distance_channels'][0]:g}-{settings['distance_channels'][1]:g} "
        f"channels from it (1/300-1/3000 of the ZLP), {settings['n_spectra']} generated spectra under these vacuum "
        f"spectra at {settings['counts'][0]:.3g}-{settings['counts'][1]:.3g} electrons, and their twins without "
        f"it: found within {settings['tolerance_channels']:g} channels / false, fine-tuned {rates['fine-tuned']}, "
        f"the base model {rates['base model']}, "
        + ", ".join(f"{label} {rate}" for label, rate in rates.items() if label not in ("fine-tuned", "base model"))
    )


def _publish(trained: Path, out: Path, record: dict, config) -> Path:
    """Record the fine-tune in the trained model's contract and card, then move model, contract
    and card into ``out`` (each written under a temporary name and renamed)."""
    from ..model import ModelContract

    contract = ModelContract.from_json(contract_path(trained))
    record["matched_gaussian_fwhm_channels"] = float(fwhm(np.asarray(contract.vacuum_psf)[None])[0])
    summary = json.loads((trained.parent / "training_summary.json").read_text())
    contract.training["finetune"] = record
    contract.to_json(contract_path(trained))
    card = trained.parent / "MODEL_CARD.md"
    steps = int(summary.get("steps", 0)) or None
    lines = [
        f"- base model: {record['base_model']['name']} {record['base_model']['version']} "
        f"(`{record['base_model']['file']}`, SHA-256 {record['base_model']['sha256']})",
        "- vacuum spectra (the PSFs): " + "; ".join(
            f"`{v['file']}` ({v['spectra']} spectra, SHA-256 {v['sha256']})" for v in record["vacuum"]
        ),
        f"- their ZLP FWHM: {record['vacuum_zlp_fwhm_channels'][0]:.2f}-{record['vacuum_zlp_fwhm_channels'][1]:.2f} "
        f"channels at {record['dispersion_eV']:g} eV per channel ({record['dispersion_source']})",
        "- inputs matched from the mean vacuum PSF to a Gaussian of its FWHM "
        f"({record['matched_gaussian_fwhm_channels']:.2f} channels) before the network, in training and in "
        "every restoration with this model (`vacuum.match_to_gaussian`; the PSF is in the contract)",
        f"- noise: Poisson on {record['counts'][0]:.3g}-{record['counts'][1]:.3g} electrons per spectrum"
        + (" (the specimen's counts)" if record["specimen"] else ""),
        f"- training: {steps or 'unknown'} steps of {config.batch_size} spectra "
        f"({summary.get('epochs_run')} epochs of up to {config.steps_per_epoch} steps; the last one ends "
        "with the wall-clock budget)",
        f"- time: {summary.get('wall_time_s', float('nan')) / 60:.1f} min of training "
        f"({record['wall_time_s'] / 60:.1f} min in all) on {summary.get('hardware')}",
        f"- best validation loss: {summary.get('best_val_loss', float('nan')):.4g} "
        f"({config.validation_size} generated spectra with these PSFs)",
        _validation_line(record["validation"]),
    ]
    set_card_section(card, "## Fine-tuning", "\n".join(lines))
    out.mkdir(parents=True, exist_ok=True)
    # Every file copied under a temporary name first, then all renamed at once: an error or
    # Ctrl-C while copying leaves the model, contract and card of an earlier run together.
    sources = (contract_path(trained), card, trained)  # the model last: it names a finished run
    temporaries = [out / f".{source.name}.partial" for source in sources]
    try:
        for source, temporary in zip(sources, temporaries):
            shutil.copyfile(source, temporary)
        for source, temporary in zip(sources, temporaries):
            os.replace(temporary, out / source.name)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    return out / trained.name
