"""Train an EELSpecNet model on generated spectra: ``eelspecnet train --config C.yaml --out DIR``.

Batches are generated on the fly from seeds (never stored): training batch ``i`` of epoch ``e``
comes from ``SeedSequence([seed, 0, e, i])`` and the validation set from
``SeedSequence([seed, 1])``, so the validation set never overlaps training data and any run
can be repeated exactly. Checkpoints (weights, optimizer state, epoch) go to ``DIR/backup`` and
``--resume`` continues from them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..evaluation.metrics import mse
from ..model import (
    DEFAULT_EPSILON, ModelContract, build_eelspecnet, build_unet_core, check_resampling, level_convolutions,
    save_model,
)
from ..model.backend import import_keras, import_tensorflow, retracing_warnings_dropped
from ..model.files import model_file
from ..model.layers import compress_intensity
from .card import write_model_card
from ..io import read_spectra
from ..vacuum import prepare_vacuum_psfs
from .generator import GeneratorConfig, generate_batch, preset
from .stages import check_stage_continues, transfer_weights

keras = import_keras()

__all__ = [
    "TrainConfig", "MixtureComponent", "train", "export_model", "make_training_batch", "validation_batch",
    "feature_core_weights", "training_loss", "hardware_description",
]


#: How the learning rate decays (``TrainConfig.schedule``).
SCHEDULES = ("epochs", "minutes")


@dataclass
class MixtureComponent:
    """One source of training spectra: a preset, overrides of its settings, and a weight."""

    preset: str = "reference"
    weight: float = 1.0
    overrides: dict = field(default_factory=dict)

    def generator_config(self) -> GeneratorConfig:
        values = preset(self.preset).to_dict()
        values.update(self.overrides)
        return GeneratorConfig.from_dict(values)


def _mixture_component(value, index: int) -> MixtureComponent:
    """A mixture component from a YAML mapping, with a message naming it when it is not one."""
    if isinstance(value, MixtureComponent):
        return value
    known = [f.name for f in dataclasses.fields(MixtureComponent)]
    if not isinstance(value, dict) or set(value) - set(known):
        raise ValueError(
            f"Mixture component {index} must be a mapping of {known}; got {value!r:.120}."
        )
    component = MixtureComponent(**value)
    if isinstance(component.weight, bool) or not isinstance(component.weight, (int, float)):
        raise ValueError(f"Mixture component {index}'s weight must be a number; got {component.weight!r}.")
    return component


def _check_number(config, name: str, integer: bool = False, low=None, strict: bool = False, hint: str = "") -> None:
    """Refuse a setting that is not a number (an integer), or is below ``low``. A string that
    reads as one is taken (YAML reads ``1e-3``, without a decimal point, as text). ``hint`` is
    added to the message."""
    value = getattr(config, name)
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            pass
        else:
            setattr(config, name, value)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not np.isfinite(value):
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}; got {value!r}.{hint}")
    if low is not None and (value <= low if strict else value < low):
        raise ValueError(f"{name} must be {'above' if strict else 'at least'} {low:g}; got {value!r}.{hint}")


def _check_integers(config, name: str, at_least: int, example: str) -> None:
    """Refuse a setting that is not a list of at least ``at_least`` positive integers; keep it
    as a tuple."""
    value = getattr(config, name)
    if not (
        isinstance(value, (list, tuple)) and len(value) >= at_least
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 1 for v in value)
    ):
        count = {0: "", 1: "at least one ", 2: "at least two "}[at_least]
        raise ValueError(f"{name} must be a list of {count}positive integers ({example}); got {value!r}.")
    setattr(config, name, tuple(int(v) for v in value))


@dataclass
class TrainConfig:
    """Everything a training run depends on; round-trips to YAML.

    Attributes
    ----------
    mixture : list of MixtureComponent
        Generator presets mixed into every batch in proportion to their weights.
    measured_psfs : list of str
        Text/NumPy files or HyperSpy-readable files of measured vacuum ZLPs used as PSFs by
        components whose overrides set ``measured_psf_probability`` > 0 (a list also for one
        file; a relative path is relative to the working folder). :func:`train` refuses such a
        component without them.
    match_to_gaussian : bool
        Match every recorded spectrum to a Gaussian of the FWHM of the mean of
        ``measured_psfs`` (:func:`~hyperspy_eelspecnet.vacuum.match_to_gaussian`) before the
        network, in training and, through the contract's ``vacuum_psf``, in the restoration.
    filters, kernel_size, convs_per_level, bottleneck_dilations, resampling : network shape
        See :func:`hyperspy_eelspecnet.model.build_unet_core`.
    epsilon : float
        Intensity-compression constant, above 0 (see :mod:`hyperspy_eelspecnet.model`).
    linear_weight : float
        Weight of the linear-intensity term of the loss (keeps the ZLP shape exact).
    feature_weight : float
        Extra weight, in the loss's compressed term, of the channels at the core of each true
        loss feature (within ``FEATURE_CORE_HALF_WIDTH`` of its centre, see
        :func:`feature_core_weights`): a channel there counts ``1 + feature_weight`` times. A
        narrow feature covers a few of 2048 channels, so erasing it costs the plain loss
        almost nothing; this makes it cost. 0 (the default) weights every measured channel
        alike.
    noise_weight_exponent : float
        Weights each spectrum's compressed term by its noise power to the power
        ``-noise_weight_exponent`` (see :func:`spectrum_noise_weights`). The noise power of the
        generated spectra spans over four decades, and so does the error no restoration can avoid:
        with every spectrum weighted alike the noisiest fifth carries half the loss, and the
        network leaves clean spectra, where every feature is measured, less sharp than their
        input. 0 (the default) weights every spectrum alike.
    batch_size, steps_per_epoch, epochs : int
        Optimisation length.
    learning_rate, final_learning_rate_fraction, warmup_steps : float, float, int
        Cosine schedule with linear warm-up.
    clipnorm : float or None
        Gradient-norm clipping (above 0; None, YAML ``null``, for none): the linear ZLP term
        makes early gradients large enough to blow the weights up (seen: a loss spike, then a
        network stuck at a constant output).
    validation_size : int
        Spectra in the held-apart validation set; at least ``batch_size`` (it is evaluated in
        batches of that size, and picks the best weights and when to stop).
    early_stopping_patience : int
        Epochs without validation improvement before stopping.
    max_minutes : float or None
        Stop (and keep the best weights) after this wall time, checked at the end of each
        epoch (so a run may go on for up to an epoch more); on the ``"minutes"`` schedule,
        after each step.
    seed : int
        Root of all training and validation seeds, 0 or more.
    name, version : str
        Written to the model contract. :meth:`from_yaml` keeps a version YAML reads as a
        number as it is written (``version: 1.10`` is "1.10", not 1.1).
    initialise_from : str or None
        Another training configuration (YAML; a relative path is relative to this file) whose
        best weights start this run: a second stage with its own schedule, mixture and seeds.
        :func:`train` first trains that configuration into ``OUT/initial`` unless a finished
        run is already there, so one command reproduces every stage. The network shapes must
        match, except that a later stage may add convolutions to a level (a larger
        ``convs_per_level``; they start as the identity) and may make a strided network
        anti-aliased (:mod:`.stages`).
    initial_model : str or None
        A model file (``.keras`` with its contract) whose network starts this run, e.g. the
        bundled model for a fine-tune (:func:`~hyperspy_eelspecnet.training.finetune`), or
        the folder that holds it; a relative path is relative to the working folder. Its
        network must have this configuration's shape. Not with ``initialise_from``.
    schedule : {"epochs", "minutes"}
        The learning rate's cosine decay (after ``warmup_steps``) runs over ``epochs *
        steps_per_epoch`` steps (``"epochs"``), or over ``max_minutes`` of wall-clock time
        (``"minutes"``: training then ends when the time is spent, within a step, whatever
        ``epochs`` says, and a progress line shows the time and the loss).
    """

    mixture: list = field(default_factory=lambda: [MixtureComponent()])
    measured_psfs: list = field(default_factory=list)
    match_to_gaussian: bool = False
    filters: tuple = (16, 24, 32, 48, 64, 96, 128)
    kernel_size: int = 7
    convs_per_level: int | tuple = 2
    bottleneck_dilations: tuple = (1, 2, 4)
    resampling: str = "strided"
    epsilon: float = DEFAULT_EPSILON
    linear_weight: float = 1.0
    feature_weight: float = 0.0
    noise_weight_exponent: float = 0.0
    batch_size: int = 32
    steps_per_epoch: int = 200
    epochs: int = 50
    learning_rate: float = 1e-3
    final_learning_rate_fraction: float = 0.01
    warmup_steps: int = 200
    clipnorm: float | None = 1.0
    validation_size: int = 512
    early_stopping_patience: int = 20
    max_minutes: float | None = None
    seed: int = 0
    name: str = "eelspecnet"
    version: str = "0"
    initialise_from: str | None = None
    initial_model: str | None = None
    schedule: str = "epochs"

    def __post_init__(self):
        if not isinstance(self.mixture, (list, tuple)):
            raise ValueError("mixture must be a list of components, e.g. [{preset: reference, weight: 1.0}].")
        self.mixture = [_mixture_component(m, k) for k, m in enumerate(self.mixture)]
        for name in ("batch_size", "steps_per_epoch", "epochs", "validation_size"):
            _check_number(self, name, integer=True, low=1)
        for name in ("warmup_steps", "early_stopping_patience"):
            _check_number(self, name, integer=True, low=0)
        _check_number(self, "learning_rate", low=0.0, strict=True)
        _check_number(self, "final_learning_rate_fraction", low=0.0)
        if self.max_minutes is not None:
            _check_number(self, "max_minutes", low=0.0, strict=True)
        if self.validation_size < self.batch_size:
            raise ValueError(
                f"validation_size must be at least batch_size ({self.batch_size}): the validation set is "
                f"evaluated in batches of that size and picks the best weights; got {self.validation_size}."
            )
        _check_number(self, "seed", integer=True, low=0)
        _check_number(self, "kernel_size", integer=True, low=1)
        _check_number(self, "epsilon", low=0.0, strict=True)
        if self.clipnorm is not None:
            _check_number(self, "clipnorm", low=0.0, strict=True, hint=" Give null for no clipping.")
        _check_integers(self, "filters", 2, "filters per level, e.g. [16, 32, 64]")
        _check_integers(self, "bottleneck_dilations", 0, "the bottleneck convolutions' dilation rates, e.g. [1, 2, 4]")
        if not isinstance(self.match_to_gaussian, (bool, np.bool_)):
            raise ValueError(f"match_to_gaussian must be true or false; got {self.match_to_gaussian!r}.")
        self.match_to_gaussian = bool(self.match_to_gaussian)
        if not isinstance(self.measured_psfs, (list, tuple)) or not all(
            isinstance(p, (str, os.PathLike)) for p in self.measured_psfs
        ):
            raise ValueError(
                f"measured_psfs must be a list of files, e.g. [vacuum.dm4] (one file too); got {self.measured_psfs!r}."
            )
        self.measured_psfs = [str(p) for p in self.measured_psfs]
        if not isinstance(self.version, str):
            raise ValueError(
                f"version must be text; got {self.version!r}. In YAML, quote it (version: \"1.10\"): unquoted, "
                "1.10 reads as the number 1.1."
            )
        weights = np.array([m.weight for m in self.mixture], float)
        if not (np.all(np.isfinite(weights)) and np.all(weights >= 0) and weights.sum() > 0):
            raise ValueError(
                f"Mixture weights must be non-negative numbers with a positive sum; got {weights.tolist()}."
            )
        if not isinstance(self.convs_per_level, int):
            self.convs_per_level = tuple(self.convs_per_level)
        level_convolutions(self.convs_per_level, len(self.filters) - 1)
        if not self.mixture:
            raise ValueError("The training mixture needs at least one generator component.")
        # The contract records one of each: the window, and the restored ZLP's width (two widths
        # would ask the network for two outputs from the same input).
        shared = ("n_channels", "zlp_channel", "dispersion", "zlp_fwhm")
        values = {name: [getattr(m.generator_config(), name) for m in self.mixture] for name in shared}
        differ = {name: v for name, v in values.items() if len(set(v)) > 1}
        if differ:
            raise ValueError(
                f"All mixture components must share {', '.join(shared)}; the components differ in "
                + "; ".join(f"{name} {v}" for name, v in differ.items()) + "."
            )
        names = ("linear_weight", "feature_weight", "noise_weight_exponent")
        for name in names:
            _check_number(self, name)
        weights = {k: getattr(self, k) for k in names}
        negative = {k: w for k, w in weights.items() if w < 0}
        if negative:
            raise ValueError(f"Loss weights must not be negative; got {negative}. Use 0 to leave a term out.")
        check_resampling(self.resampling)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}; got {self.schedule!r}.")
        if self.schedule == "minutes" and not self.max_minutes:
            raise ValueError("schedule 'minutes' needs max_minutes, the wall-clock time the schedule runs over.")
        if self.initialise_from and self.initial_model:
            raise ValueError("Give initialise_from (an earlier stage's configuration) or initial_model, not both.")

    @property
    def generator_configs(self):
        return [m.generator_config() for m in self.mixture]

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["filters"] = list(self.filters)
        out["bottleneck_dilations"] = list(self.bottleneck_dilations)
        if not isinstance(self.convs_per_level, int):
            out["convs_per_level"] = list(self.convs_per_level)
        return out

    @classmethod
    def from_yaml(cls, path) -> "TrainConfig":
        """Read a configuration from a YAML file.

        Parameters
        ----------
        path : str or Path
            A YAML mapping of settings; ``initialise_from``, when relative, is taken relative to
            this file's folder (``initial_model`` and ``measured_psfs`` to the working folder).

        Returns
        -------
        TrainConfig

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            ``path`` is a folder, is not valid YAML (the line and column are named), is not a
            mapping of settings, names an unknown setting, or a setting's value is refused
            (as :class:`TrainConfig` refuses it).
        """
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"{path} is a folder; give the training configuration's YAML file (--config).")
        text = path.read_text()
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"{path} is not valid YAML: {_yaml_problem(error)}.") from error
        if values is None:
            warnings.warn(
                f"{path} sets nothing: every setting keeps its default, which trains the full-size network "
                f"for {cls.epochs} epochs (hours on a CPU).", UserWarning, stacklevel=2,
            )
            values = {}
        if not isinstance(values, dict):
            raise ValueError(
                f"The configuration in {path} must be a mapping of settings (a 'setting: value' line each, "
                f"e.g. 'epochs: 10'); got {values!r:.80}."
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown training setting(s) in {path}: {sorted(unknown, key=str)}.")
        if isinstance(values.get("version"), (int, float)) and not isinstance(values["version"], bool):
            # 1.10 as written, not the number 1.1 (kept a number, and refused, where it cannot be found)
            values["version"] = _scalar_text(text, "version") or values["version"]
        if values.get("initialise_from"):
            stage = Path(values["initialise_from"])
            values["initialise_from"] = str(stage if stage.is_absolute() else Path(path).parent / stage)
        return cls(**values)

    def to_yaml(self, path=None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text


def _yaml_problem(error) -> str:
    """What a YAML parser's error says, where (line and column, counted from 1), on one line."""
    def at(mark):
        return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""

    problem = getattr(error, "problem", None)
    if problem is None:
        return " ".join(str(error).split())
    context = getattr(error, "context", None)
    where = f"{context}{at(getattr(error, 'context_mark', None))}, " if context else ""
    return f"{where}{problem}{at(getattr(error, 'problem_mark', None))}"


def _scalar_text(text: str, key: str):
    """The text of the top-level setting ``key`` in YAML ``text`` as written (e.g. ``1.10``,
    which ``safe_load`` reads as the number 1.1)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    for key_node, value_node in root.value:
        if key_node.value == key and isinstance(value_node, yaml.ScalarNode):
            return value_node.value
    return None


def _load_measured_psfs(paths, length: int):
    """The vacuum spectra of ``paths`` prepared as PSFs of ``length`` channels, or None."""
    if not paths:
        return None
    files = [read_spectra(path) for path in paths]
    names = [name for f in files for name in f.names]
    width = min(f.spectra.shape[-1] for f in files)
    spectra = np.concatenate([f.spectra[:, :width] for f in files])
    return prepare_vacuum_psfs(spectra, length, names).psfs


def matching_psf(config: TrainConfig, measured_psfs=None):
    """The vacuum PSF the inputs are matched from (the mean of the measured PSFs), or None.

    ``measured_psfs`` as :func:`_load_measured_psfs` gives them (loaded from the configuration
    when not given)."""
    if not config.match_to_gaussian:
        return None
    if measured_psfs is None:
        measured_psfs = _load_measured_psfs(config.measured_psfs, 2 * config.generator_configs[0].n_channels)
    if measured_psfs is None:
        raise ValueError("match_to_gaussian needs measured_psfs (the vacuum spectra).")
    return measured_psfs.mean(axis=0)


#: Half width, in channels, of the core of a loss feature weighted by ``feature_weight``: its
#: FWHM, but at least 5 channels (a maximum placed 5 channels off is misplaced) and at most 20
#: (a broad feature's whole extent is continuum to the loss, not a feature to place).
FEATURE_CORE_HALF_WIDTH = (5.0, 20.0)
def feature_core_weights(batch, feature_weight: float) -> np.ndarray:
    """Per-channel loss weights: ``1 + feature_weight`` at the core of each true loss feature.

    Parameters
    ----------
    batch : SpectrumBatch
        A generated batch; its ``peak_centres`` and ``peak_fwhms`` (channels, NaN-padded) place
        the features on the ground truth's channels.
    feature_weight : float
        Extra weight of a channel within ``clip(FWHM, *FEATURE_CORE_HALF_WIDTH)`` of a centre.

    Returns
    -------
    ndarray, shape (n_spectra, n_channels), float32
        1 everywhere else (padding is masked separately).
    """
    centres = batch.parameters["peak_centres"]
    half_width = np.clip(batch.parameters["peak_fwhms"], *FEATURE_CORE_HALF_WIDTH)
    channels = np.arange(batch.ground_truth.shape[1])
    with np.errstate(invalid="ignore"):
        near = np.abs(channels - centres[..., None]) <= half_width[..., None]  # NaN padding: False
    return (1.0 + feature_weight * near.any(axis=1)).astype(np.float32)


#: Noise power (mean squared compressed noise per measured channel) at which a spectrum's weight
#: is 1 under ``noise_weight_exponent`` (a round value inside the ``instrument`` preset's range,
#: about 5e-6 to 0.2 with a median of 2e-4), and the floor added to it so that a noise-free
#: spectrum's weight stays finite.
NOISE_WEIGHT_REFERENCE, NOISE_WEIGHT_FLOOR = 1e-3, 1e-6


def spectrum_noise_weights(z_distorted, z_noise_free, measured, exponent: float) -> np.ndarray:
    """Per-spectrum loss weights from each spectrum's noise power in compressed intensities.

    Parameters
    ----------
    z_distorted, z_noise_free : ndarray, shape (n_spectra, n_channels)
        The compressed input and the same spectra before noise (same compression peak).
    measured : ndarray of bool, shape (n_spectra, n_channels)
        Channels inside each spectrum's measured window.
    exponent : float
        ``w = ((P + NOISE_WEIGHT_FLOOR) / NOISE_WEIGHT_REFERENCE) ** -exponent``, with ``P`` the
        mean squared difference of the two over the measured channels.

    Returns
    -------
    ndarray, shape (n_spectra, 1), float32
    """
    power = mse(np.asarray(z_distorted, float), z_noise_free, mask=measured)[:, None]
    return (((power + NOISE_WEIGHT_FLOOR) / NOISE_WEIGHT_REFERENCE) ** -exponent).astype(np.float32)


def make_training_batch(
    configs, weights, batch_size, seed, epsilon, measured_psfs=None, feature_weight=0.0, noise_weight_exponent=0.0,
    match_psf=None,
):
    """One batch for the core network: compressed input ``z`` and packed target.

    Parameters
    ----------
    configs : sequence of GeneratorConfig
        The mixture's generators.
    weights : sequence of float
        Their shares of the batch (summing to 1).
    batch_size : int
    seed : int or SeedSequence
        The same seed gives the same batch.
    epsilon : float
        Intensity-compression constant.
    measured_psfs : ndarray, optional
        Measured vacuum ZLPs, for the components whose ``measured_psf_probability`` is above 0
        (as :class:`TrainConfig` documents ``measured_psfs``).
    feature_weight : float
        Extra weight of the channels at loss-feature cores (see :class:`TrainConfig`).
    noise_weight_exponent : float
        Exponent of the per-spectrum noise weights (:func:`spectrum_noise_weights`).
    match_psf : ndarray, optional
        The vacuum PSF the recorded spectra are matched from (``TrainConfig.match_to_gaussian``).

    Returns
    -------
    z_in : ndarray, shape (batch, n)
    target : ndarray, shape (batch, n, 2)
        ``[..., 0]`` the compressed ground truth (relative to the input's maximum),
        ``[..., 1]`` the weight of each channel in the loss's compressed term: 0 on padding
        (excluded from the loss), 1 on measured channels, ``1 + feature_weight`` at
        loss-feature cores (:func:`feature_core_weights`), all of a spectrum's channels
        times its noise weight (:func:`spectrum_noise_weights`) when ``noise_weight_exponent``
        is not 0.
    """
    sequence = np.random.SeedSequence(seed) if not isinstance(seed, np.random.SeedSequence) else seed
    counts = np.random.default_rng(sequence.spawn(1)[0]).multinomial(batch_size, weights)
    psfs_of = [measured_psfs if config.measured_psf_probability > 0 else None for config in configs]
    parts = [
        generate_batch(config, int(count), child, measured_psfs=psfs, match_psf=match_psf)
        for config, count, child, psfs in zip(configs, counts, sequence.spawn(len(configs)), psfs_of)
        if count
    ]
    distorted = np.concatenate([p.distorted for p in parts])
    truth = np.concatenate([p.ground_truth for p in parts])
    measured = np.concatenate([p.measured for p in parts])
    channel_weight = measured.astype(np.float32)
    if feature_weight:
        channel_weight *= np.concatenate([feature_core_weights(p, feature_weight) for p in parts])
    z_in, peak = compress_intensity(distorted, epsilon)
    z_truth, _ = compress_intensity(truth, epsilon, peak=peak)
    if noise_weight_exponent:
        z_noise_free, _ = compress_intensity(np.concatenate([p.noise_free for p in parts]), epsilon, peak=peak)
        channel_weight *= spectrum_noise_weights(z_in, z_noise_free, measured, noise_weight_exponent)
    return z_in, np.stack([z_truth, channel_weight], axis=-1)


def validation_batch(config: TrainConfig, measured_psfs=None, seed: int | None = None):
    """The validation set of a training run: ``config.validation_size`` spectra of its mixture
    from ``SeedSequence([seed, 1])`` (``seed`` defaults to ``config.seed``; the training
    batches come from ``SeedSequence([config.seed, 0, ...])``), as :func:`make_training_batch`
    packs them with the configuration's loss weights. ``measured_psfs`` as prepared by the
    trainer for configurations that use them."""
    return make_training_batch(
        config.generator_configs, _mixture_shares(config), config.validation_size,
        np.random.SeedSequence([config.seed if seed is None else seed, 1]), config.epsilon, measured_psfs,
        config.feature_weight, config.noise_weight_exponent, matching_psf(config, measured_psfs),
    )


def _mixture_shares(config: TrainConfig) -> np.ndarray:
    """Each mixture component's share of a batch (its weight over the sum)."""
    weights = np.array([m.weight for m in config.mixture], float)
    return weights / weights.sum()


@keras.saving.register_keras_serializable(package="hyperspy_eelspecnet")
class CompressedSpectrumLoss(keras.losses.Loss):
    """Masked squared error on compressed intensities plus a linear-intensity term for the ZLP.

    The compressed term makes features at 1/4000 of the ZLP count (see
    :mod:`hyperspy_eelspecnet.model.layers`); the linear term, normalised by each target's
    maximum, pins the restored ZLP's height and width, which a compressed error alone
    under-weights by the compression's slope.

    ``y_true[..., 1]`` weights each channel of the compressed term (0 on padding, more than 1
    at loss-feature cores; see :func:`make_training_batch`); the linear term counts every
    measured channel once (it is about the ZLP's shape, not about where features are), and the
    sum is divided by the number of measured channels.
    """

    def __init__(self, epsilon=DEFAULT_EPSILON, linear_weight=1.0, name="compressed_spectrum_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = float(epsilon)
        self.linear_weight = float(linear_weight)

    def call(self, y_true, y_pred):
        ops = keras.ops
        z_truth, weight = y_true[..., 0], y_true[..., 1]
        mask = ops.cast(weight > 0, weight.dtype)
        scale = float(np.arcsinh(1.0 / self.epsilon))
        compressed = ops.sum(weight * ops.square(y_pred - z_truth), axis=-1)
        linear_pred = ops.sinh(ops.minimum(y_pred, 1.6) * scale)
        linear_truth = ops.sinh(z_truth * scale)
        norm = ops.max(linear_truth, axis=-1, keepdims=True)
        linear = ops.sum(mask * ops.square((linear_pred - linear_truth) / norm), axis=-1)
        n_measured = ops.maximum(ops.sum(mask, axis=-1), 1.0)
        return (compressed + self.linear_weight * linear) / n_measured

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "linear_weight": self.linear_weight}


def training_loss(config: TrainConfig) -> CompressedSpectrumLoss:
    """The loss a configuration trains with (its ``epsilon`` and ``linear_weight``)."""
    return CompressedSpectrumLoss(config.epsilon, config.linear_weight)


class GeneratedSpectra(keras.utils.PyDataset):
    """Batches generated from ``SeedSequence([seed, 0, epoch, index])``."""

    def __init__(self, config: TrainConfig, measured_psfs, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.configs = config.generator_configs
        self.weights = _mixture_shares(config)
        self.measured_psfs = measured_psfs
        self.match_psf = matching_psf(config, measured_psfs)
        self.epoch = 0

    def __len__(self):
        return self.config.steps_per_epoch

    def __getitem__(self, index):
        c = self.config
        return make_training_batch(
            self.configs, self.weights, c.batch_size,
            np.random.SeedSequence([c.seed, 0, self.epoch, index]), c.epsilon, self.measured_psfs,
            c.feature_weight, c.noise_weight_exponent, self.match_psf,
        )

    def on_epoch_end(self):
        self.epoch += 1


class _EpochTracker(keras.callbacks.Callback):
    """Tells the data set which epoch runs (its batches' seeds), also after a resume."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.epoch = epoch


class _ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keeps its backup after training ends, so a run stopped by the wall-clock limit
    (or finished) can be continued with ``--resume`` and a larger ``epochs``."""

    def on_train_end(self, logs=None):
        pass


class _WallClockCosine(keras.callbacks.Callback):
    """The ``"minutes"`` schedule: linear warm-up over ``warmup_steps``, then a cosine decay of
    the learning rate over the wall-clock budget ``max_minutes``; stops training when it is
    spent, and shows one progress line (time, step, loss). The elapsed time is kept in a file
    at every epoch's end, so that a resumed run continues the schedule where it stopped."""

    def __init__(self, config: TrainConfig, record: Path, resume: bool, show: bool = True):
        super().__init__()
        self.config = config
        self.budget = 60.0 * config.max_minutes
        self.record = Path(record)
        kept = json.loads(self.record.read_text()) if resume and self.record.exists() else {}
        self.before = kept.get("elapsed_s", 0.0)
        self.show = show
        self.step = kept.get("steps", 0)  # a resumed run does not warm up again

    def elapsed(self) -> float:
        return self.before + time.time() - self.start

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_train_batch_begin(self, batch, logs=None):
        c = self.config
        fraction = min(self.elapsed() / self.budget, 1.0)
        peak = c.learning_rate
        floor = c.final_learning_rate_fraction * peak
        rate = floor + (peak - floor) * 0.5 * (1.0 + np.cos(np.pi * fraction))
        if self.step < c.warmup_steps:
            rate = min(rate, peak * (0.01 + 0.99 * self.step / max(c.warmup_steps, 1)))
        self.model.optimizer.learning_rate.assign(rate)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        elapsed = self.elapsed()
        if self.show and (self.step % 10 == 0 or elapsed >= self.budget):
            done = int(30 * min(elapsed / self.budget, 1.0))
            loss = (logs or {}).get("loss", float("nan"))
            print(
                f"\r  [{'#' * done}{'.' * (30 - done)}] {elapsed / 60:5.1f} / {self.budget / 60:g} min, "
                f"step {self.step}, loss {float(loss):.3g}   ", end="", flush=True,
            )
        if elapsed >= self.budget:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.record.write_text(json.dumps({"elapsed_s": self.elapsed(), "steps": self.step}))

    def on_train_end(self, logs=None):
        self.record.write_text(json.dumps({"elapsed_s": self.elapsed(), "steps": self.step}))
        if self.show:
            print(flush=True)


class _WallClockLimit(keras.callbacks.Callback):
    """Stops training at the end of the first epoch past ``minutes`` of wall time."""

    def __init__(self, minutes):
        super().__init__()
        self.seconds = None if minutes is None else 60.0 * minutes
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if self.seconds is not None and time.time() - self.start > self.seconds:
            print(f"\nStopping: wall-clock limit of {self.seconds / 60:g} min reached (checked at each epoch's end).")
            self.model.stop_training = True


def hardware_description() -> str:
    """"CPU: <model>, <n> cores" or "GPU: <names>": where a model was trained or timed."""
    tf = import_tensorflow()

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
        return "GPU: " + ", ".join(names)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu}, {os.cpu_count()} cores"


def _initial_weights(config: TrainConfig, earlier: TrainConfig, stage_dir: Path, verbose) -> tuple[Path, dict]:
    """Best weights and training summary of the earlier stage ``earlier`` (the configuration
    ``config.initialise_from``), trained first if needed."""
    weights = stage_dir / "best.weights.h5"
    finished = stage_dir / "training_summary.json"
    if not (weights.exists() and finished.exists()):
        print(f"Training the earlier stage {config.initialise_from} into {stage_dir} first.", flush=True)
        train(earlier, stage_dir, resume=(stage_dir / "backup").exists(), verbose=verbose)
    return weights, json.loads(finished.read_text())


def _build_core(config: TrainConfig):
    """The core network a configuration trains (uncompiled, freshly initialised)."""
    return build_unet_core(
        config.generator_configs[0].n_channels, config.filters, config.kernel_size, config.convs_per_level, config.bottleneck_dilations,
        resampling=config.resampling,
    )


def _load_initial_weights(core, earlier: TrainConfig, config: TrainConfig, weights: Path) -> None:
    """Load the earlier stage's best weights into ``core``; by layer name where ``config`` adds
    convolutions to a level or anti-aliases a strided network (:func:`_initial_weights` has
    checked that nothing else differs)."""
    if (earlier.resampling, earlier.convs_per_level) == (config.resampling, config.convs_per_level):
        core.load_weights(weights)
        return
    earlier_core = _build_core(earlier)
    earlier_core.load_weights(weights)
    transfer_weights(earlier_core, core)


def _load_model_weights(core, path) -> None:
    """Start ``core`` from the network of a model file (``TrainConfig.initial_model``)."""
    from ..model import core_of, load_model

    model, _ = load_model(path)
    source = core_of(model)
    shapes = [w.shape for w in source.get_weights()]
    if shapes != [w.shape for w in core.get_weights()]:
        raise ValueError(
            f"The network of {path} has another shape than this configuration builds (filters, "
            "kernel_size, convs_per_level, bottleneck_dilations, resampling must be the model's)."
        )
    core.set_weights(source.get_weights())


def _earlier_stage(config: TrainConfig) -> TrainConfig | None:
    """The configuration ``config.initialise_from`` names, checked to continue ``config``'s
    network (:func:`~.stages.check_stage_continues`); None without one."""
    if not config.initialise_from:
        return None
    path = Path(config.initialise_from)
    if not path.is_file():
        raise ValueError(
            f"initialise_from: no configuration at {path.resolve()}; give the earlier stage's YAML file (a "
            "relative path is relative to the folder of the configuration that names it), or leave "
            "initialise_from out."
        )
    earlier = TrainConfig.from_yaml(path)
    check_stage_continues(earlier, config)
    return earlier


def _check_inputs(config: TrainConfig) -> None:
    """Refuse the files a configuration names that are not there, and the settings that need
    measured PSFs without ``measured_psfs`` (a relative path is relative to the working folder)."""
    if config.initial_model:
        try:
            path = model_file(config.initial_model)  # a folder: the model file in it
        except FileNotFoundError as error:
            raise ValueError(f"initial_model: {error}") from error
        if not path.is_file():
            raise ValueError(
                f"initial_model: no model file at {path.resolve()}; give in the configuration's initial_model "
                "a '.keras' file written by 'eelspecnet train' or 'eelspecnet finetune' (or their folder; a "
                "relative path is relative to the working folder), or leave initial_model out to start from "
                "random weights."
            )
    missing = [str(Path(p).resolve()) for p in config.measured_psfs if not Path(p).is_file()]
    if missing:
        raise ValueError(
            f"measured_psfs: no file at {', '.join(missing)}; give the vacuum spectra's files (a relative path "
            "is relative to the working folder)."
        )
    if not config.measured_psfs:
        asking = [
            f"{k} ({m.preset})" for k, (m, g) in enumerate(zip(config.mixture, config.generator_configs))
            if g.measured_psf_probability > 0
        ]
        if asking:
            raise ValueError(
                f"Mixture component(s) {', '.join(asking)} set measured_psf_probability above 0, but "
                "measured_psfs lists no vacuum spectra; list their files under measured_psfs, or set "
                "measured_psf_probability to 0."
            )
        if config.match_to_gaussian:
            raise ValueError(
                "match_to_gaussian needs measured_psfs (the vacuum spectra whose mean is matched to a "
                "Gaussian); list their files under measured_psfs, or set match_to_gaussian to false."
            )


#: Settings a resumed run may change: how long it goes on.
RESUMABLE_CHANGES = ("epochs", "max_minutes", "early_stopping_patience")


def _check_resumable(config: TrainConfig, out_dir: Path) -> None:
    """Refuse to resume where there is no run, or a run of another configuration."""
    saved = out_dir / "train_config.yaml"
    if not (out_dir / "backup").exists() or not saved.exists():
        raise ValueError(
            f"There is no run to resume in {out_dir} (no backup/ and train_config.yaml); leave out "
            "resume (--resume) to start one."
        )
    # Through JSON: tuples and lists, as a configuration made in Python and one read back differ.
    before, now = (json.loads(json.dumps(c.to_dict())) for c in (TrainConfig.from_yaml(saved), config))
    changed = sorted(key for key in now if key not in RESUMABLE_CHANGES and before.get(key) != now[key])
    if changed:
        raise ValueError(
            f"The run in {out_dir} was started with other settings ({', '.join(changed)}); resume it with "
            f"its own configuration ({saved}), or start a new run in another folder. Only "
            f"{', '.join(RESUMABLE_CHANGES)} may change on resume."
        )


def train(config: TrainConfig, out_dir, resume: bool = False, verbose: int | str = "auto") -> Path:
    """Train a model and write ``eelspecnet.keras``, its contract and ``MODEL_CARD.md`` to ``out_dir``.

    Parameters
    ----------
    config : TrainConfig
    out_dir : str or Path
        Output folder; ``backup/`` inside it holds the resumable checkpoint.
    resume : bool
        Continue from ``out_dir/backup`` (otherwise an existing backup is discarded).
    verbose : int or "auto"
        Keras progress-bar setting.

    Returns
    -------
    Path
        The written ``.keras`` model file.

    Raises
    ------
    ValueError
        ``out_dir`` is a file; without ``resume``, ``out_dir`` holds a finished run
        (``eelspecnet.keras``: give another folder, resume it, or delete it); with ``resume``,
        ``out_dir`` holds no run, or a run of another configuration (only ``epochs``,
        ``max_minutes`` and ``early_stopping_patience`` may change: a run may be given longer);
        ``initialise_from``, ``initial_model`` or a file of ``measured_psfs`` is not there, or
        the model's network has another shape; ``measured_psf_probability`` above 0 in a
        mixture component, or ``match_to_gaussian``, without ``measured_psfs``. All are
        refused before anything is written: ``out_dir`` is neither created nor changed.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file; give a folder for the training run (--out).")
    backup = out_dir / "backup"
    if resume:
        _check_resumable(config, out_dir)
    elif (out_dir / "eelspecnet.keras").exists():
        raise ValueError(
            f"{out_dir} holds a finished training run (eelspecnet.keras); give another output folder (--out), "
            "resume it (--resume) to train it longer, or delete it to start again."
        )
    earlier = _earlier_stage(config)
    _check_inputs(config)
    keras.utils.set_random_seed(config.seed)
    # The generator's kernels span 2 n channels: cropping to n here would cut the PSF tails.
    measured_psfs = _load_measured_psfs(config.measured_psfs, 2 * config.generator_configs[0].n_channels)
    core = _build_core(config)
    if config.initial_model:
        _load_model_weights(core, config.initial_model)

    out_dir.mkdir(parents=True, exist_ok=True)
    if backup.exists() and not resume:
        shutil.rmtree(backup)
    config.to_yaml(out_dir / "train_config.yaml")
    if earlier is not None:
        initial_weights, initial_summary = _initial_weights(config, earlier, out_dir / "initial", verbose)
        _load_initial_weights(core, earlier, config, initial_weights)
    if config.schedule == "minutes":
        learning_rate = config.learning_rate * 0.01  # the warm-up's start; _WallClockCosine sets it
    else:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate * 0.01,
            decay_steps=max(config.epochs * config.steps_per_epoch - config.warmup_steps, 1),
            alpha=config.final_learning_rate_fraction,
            warmup_target=config.learning_rate,
            warmup_steps=config.warmup_steps,
        )
    core.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=config.clipnorm),
        loss=training_loss(config),
    )

    validation = validation_batch(config, measured_psfs)
    dataset = GeneratedSpectra(config, measured_psfs)
    best = out_dir / "best.weights.h5"
    checkpoint = keras.callbacks.ModelCheckpoint(str(best), save_best_only=True, save_weights_only=True)
    history_file = out_dir / "history.csv"
    if resume and history_file.exists() and best.exists():
        # Only an epoch better than every earlier one may replace the best weights.
        previous = np.genfromtxt(history_file, delimiter=",", names=True, ndmin=1)
        if "val_loss" in previous.dtype.names and previous.size:
            checkpoint.best = float(np.nanmin(previous["val_loss"]))
    callbacks = [
        _EpochTracker(dataset),
        _ResumableBackup(str(backup)),
        checkpoint,
        keras.callbacks.EarlyStopping(patience=config.early_stopping_patience),
        keras.callbacks.CSVLogger(str(history_file), append=resume and history_file.exists()),
    ]
    if config.schedule == "minutes":
        clock = _WallClockCosine(config, out_dir / "elapsed.json", resume, show=verbose != 0)
        callbacks.append(clock)
        verbose = 0  # the clock's progress line replaces Keras's per-epoch bars
    else:
        callbacks.append(_WallClockLimit(config.max_minutes))
    start = time.time()
    with retracing_warnings_dropped():
        history = core.fit(
            dataset, epochs=config.epochs, validation_data=validation,
            validation_batch_size=config.batch_size, callbacks=callbacks, verbose=verbose,
        )
    wall_time = time.time() - start
    # The whole run, a resumed one included: history.csv holds every epoch, the clock every second.
    epochs = np.genfromtxt(history_file, delimiter=",", names=True, ndmin=1)
    val_loss = epochs["val_loss"] if epochs.size and "val_loss" in epochs.dtype.names else np.array([np.nan])
    summary = {
        "epochs_run": int(epochs.size),
        "best_val_loss": float(np.nanmin(val_loss)) if np.isfinite(val_loss).any() else float("nan"),
        "wall_time_s": round(clock.elapsed() if config.schedule == "minutes" else wall_time, 1),
        "hardware": hardware_description(),
        "steps": clock.step if config.schedule == "minutes" else int(core.optimizer.iterations.numpy()),
    }
    if config.initialise_from:
        summary["initial_stage"] = {
            "config": Path(config.initialise_from).name,
            **{
                key: initial_summary[key]
                for key in ("epochs_run", "best_val_loss", "wall_time_s", "hardware", "initial_stage")
                if key in initial_summary
            },
        }
    return export_model(config, best if best.exists() else core, out_dir, summary)


def export_model(
    config: TrainConfig, weights, out_dir, summary: dict | None = None, filename: str = "eelspecnet.keras"
) -> Path:
    """Write the deployable model, contract and card from trained core weights.

    The core is rebuilt uncompiled and wrapped with the intensity layers, so the file holds
    weights and architecture only (no optimizer state, no training loss) and loads with
    ``safe_mode=True`` without this package's trainer.

    Parameters
    ----------
    config : TrainConfig
    weights : path or keras.Model
        A ``.weights.h5`` file of the core, or a trained core model.
    out_dir : path
    summary : dict, optional
        Training record (epochs, losses, wall time, hardware) for the contract and card.
    filename : str
        Name of the model file inside ``out_dir``.
    """
    out_dir = Path(out_dir)
    generator_configs = config.generator_configs
    # The file holds the fully convolutional network: any length divisible by 2 ** depth.
    core = build_unet_core(
        None, config.filters, config.kernel_size, config.convs_per_level, config.bottleneck_dilations,
        resampling=config.resampling,
    )
    if isinstance(weights, (str, Path)):
        core.load_weights(weights)
    else:
        core.set_weights(weights.get_weights())
    model = build_eelspecnet(core, config.epsilon, name=config.name)
    counted = [c.total_counts for c in generator_configs if c.noise_model == "poisson"]
    contract = ModelContract(
        n_channels=generator_configs[0].n_channels,
        length_multiple=2 ** (len(config.filters) - 1),
        zlp_channel=generator_configs[0].zlp_channel,
        dispersion=generator_configs[0].dispersion,
        psf_fwhm_channels=(min(c.psf_fwhm[0] for c in generator_configs), max(c.psf_fwhm[1] for c in generator_configs)),
        zlp_fwhm_channels=generator_configs[0].zlp_fwhm,
        counts_range=(min(c[0] for c in counted), max(c[1] for c in counted)) if counted else None,
        epsilon=config.epsilon,
        name=config.name,
        version=config.version,
        preset="+".join(m.preset for m in config.mixture),
        training={"config": config.to_dict(), "parameters": int(core.count_params()), **(summary or {})},
    )
    vacuum_psf = matching_psf(config)
    if vacuum_psf is not None:
        contract.vacuum_psf = [float(np.float32(v)) for v in vacuum_psf]
    path = save_model(model, out_dir / filename, contract)
    write_model_card(out_dir / "MODEL_CARD.md", contract, config)
    (out_dir / "training_summary.json").write_text(json.dumps(contract.training, indent=2, default=str))
    return path


