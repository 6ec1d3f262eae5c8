"""Train an EELSpecNet model on generated spectra: ``eelspecnet train --config C.yaml --out DIR``.

Batches are generated on the fly from seeds (never stored): training batch ``i`` of epoch ``e``
comes from ``SeedSequence([seed, 0, e, i])`` and validation spectrum block ``j`` from
``SeedSequence([seed, 1, j])``, so the validation set never overlaps training data and any run
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..evaluation.metrics import mse
from ..model import (
    DEFAULT_EPSILON, MODEL_EDGE_CHANNELS, ModelContract, build_eelspecnet, build_unet_core, check_resampling,
    compress_intensity, level_convolutions, save_model, transfer_weights,
)
from .generator import GeneratorConfig, generate_batch, prepare_measured_psfs, preset

__all__ = [
    "TrainConfig", "MixtureComponent", "train", "export_model", "make_training_batch", "validation_batch",
    "feature_core_weights", "check_stage_continues",
    "CompressedSpectrumLoss", "training_loss",
]


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


@dataclass
class TrainConfig:
    """Everything a training run depends on; round-trips to YAML.

    Attributes
    ----------
    mixture : list of MixtureComponent
        Generator presets mixed into every batch in proportion to their weights.
    measured_psfs : list of str
        Text/NumPy files or HyperSpy-readable files of measured vacuum ZLPs used as PSFs by
        components whose overrides set ``measured_psf_probability`` > 0.
    filters, kernel_size, convs_per_level, bottleneck_dilations, resampling, antialias_from_level, zlp_context, zlp_gain, rl_iterations, rl_psf_half_width : network shape
        See :func:`hyperspy_eelspecnet.model.build_unet_core` (the ZLP channel is the
        generator's).
    epsilon : float
        Intensity-compression constant (see :mod:`hyperspy_eelspecnet.model`).
    linear_weight : float
        Weight of the linear-intensity term of the loss (keeps the ZLP shape exact).
    compressed_norm : {"squared", "absolute"}
        How the compressed term charges each channel's error ``e``: ``"squared"`` (the
        default, ``e**2``) makes the network's output the mean of the intensities its input
        allows, ``"absolute"`` (``sqrt(e**2 + d**2) - d`` with ``d`` =
        ``ABSOLUTE_ERROR_SMOOTHING``, the absolute error smoothed at zero) their median. Where
        the input leaves a weak feature uncertain, the mean is the feature at a fraction of
        its height, spread over where it may sit; the median keeps it whole when it is more
        likely there than not and leaves it out otherwise.
    slope_weight : float
        Weight of the slope term of the loss: the squared error of the channel-to-channel
        differences of the compressed intensities. A misplaced or smeared narrow feature
        costs as much slope error as value error, a smooth misfit almost none, so this term
        weights training towards where narrow features sit. 0 (the default) leaves it out.
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
        Gradient-norm clipping: the linear ZLP term makes early gradients large enough to blow
        the weights up (seen: a loss spike, then a network stuck at a constant output).
    validation_size : int
        Spectra in the held-apart validation set.
    early_stopping_patience : int
        Epochs without validation improvement before stopping.
    max_minutes : float or None
        Stop (and keep the best weights) after this wall time.
    seed : int
        Root of all training and validation seeds.
    name, version : str
        Written to the model contract.
    edge_channels : int
        Written to the model contract: channels at each end of the window the restoration does
        not return (measure them on real data whose spectrum runs past the window).
    initialise_from : str or None
        Another training configuration (YAML; a relative path is relative to this file) whose
        best weights start this run: a second stage with its own schedule, mixture and seeds.
        :func:`train` first trains that configuration into ``OUT/initial`` unless a finished
        run is already there, so one command reproduces every stage. The network shapes must
        match, except that a later stage may add the ZLP-shape conditioning (``zlp_context``,
        ``zlp_gain``), the own-ZLP Richardson-Lucy input (``rl_iterations``) or convolutions
        to a level (a larger ``convs_per_level``), whose new layers start as the identity, and
        may make a strided network anti-aliased.
    """

    mixture: list = field(default_factory=lambda: [MixtureComponent()])
    measured_psfs: list = field(default_factory=list)
    filters: tuple = (16, 24, 32, 48, 64, 96, 128)
    kernel_size: int = 7
    convs_per_level: int | tuple = 2
    bottleneck_dilations: tuple = (1, 2, 4)
    resampling: str = "strided"
    antialias_from_level: int = 0
    zlp_context: int = 0
    zlp_gain: bool = False
    rl_iterations: int = 0
    rl_psf_half_width: int = 64
    epsilon: float = DEFAULT_EPSILON
    linear_weight: float = 1.0
    compressed_norm: str = "squared"
    slope_weight: float = 0.0
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
    edge_channels: int = MODEL_EDGE_CHANNELS
    initialise_from: str | None = None

    def __post_init__(self):
        self.mixture = [
            m if isinstance(m, MixtureComponent) else MixtureComponent(**m) for m in self.mixture
        ]
        self.filters = tuple(self.filters)
        self.bottleneck_dilations = tuple(self.bottleneck_dilations)
        if not isinstance(self.convs_per_level, int):
            self.convs_per_level = tuple(self.convs_per_level)
        level_convolutions(self.convs_per_level, len(self.filters) - 1)
        if not self.mixture:
            raise ValueError("The training mixture needs at least one generator component.")
        channels = {m.generator_config().n_channels for m in self.mixture}
        zlps = {m.generator_config().zlp_channel for m in self.mixture}
        if len(channels) != 1 or len(zlps) != 1:
            raise ValueError(
                f"All mixture components must share n_channels and zlp_channel; got {channels}, {zlps}."
            )
        names = ("linear_weight", "slope_weight", "feature_weight", "noise_weight_exponent")
        weights = {k: getattr(self, k) for k in names}
        negative = {k: w for k, w in weights.items() if w < 0}
        if negative:
            raise ValueError(f"Loss weights must not be negative; got {negative}. Use 0 to leave a term out.")
        _check_compressed_norm(self.compressed_norm)
        check_resampling(self.resampling)
        if self.zlp_gain and not self.zlp_context:
            raise ValueError("zlp_gain needs zlp_context > 0 (the ZLP window the gains are computed from).")

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
        values = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown training setting(s) in {path}: {sorted(unknown)}.")
        if values.get("initialise_from"):
            stage = Path(values["initialise_from"])
            values["initialise_from"] = str(stage if stage.is_absolute() else Path(path).parent / stage)
        return cls(**values)

    def to_yaml(self, path=None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text


def _load_measured_psfs(paths):
    if not paths:
        return None
    rows = []
    for path in paths:
        path = Path(path)
        if path.suffix in (".txt", ".csv", ".tsv"):
            rows.append(np.atleast_2d(np.loadtxt(path)))
        elif path.suffix == ".npy":
            rows.append(np.atleast_2d(np.load(path)))
        else:
            import hyperspy.api as hs

            data = np.asarray(hs.load(path).data)
            rows.append(data.reshape(-1, data.shape[-1]))
    width = min(r.shape[-1] for r in rows)
    return np.concatenate([r[:, :width] for r in rows])


#: Half width, in channels, of the core of a loss feature weighted by ``feature_weight``: its
#: FWHM, but at least 5 channels (a maximum placed 5 channels off is misplaced) and at most 20
#: (a broad feature's whole extent is continuum to the loss, not a feature to place).
FEATURE_CORE_HALF_WIDTH = (5.0, 20.0)
#: How the loss's compressed term may charge a channel's error (see ``TrainConfig.compressed_norm``).
COMPRESSED_NORMS = ("squared", "absolute")
#: Below this compressed error (about 1e-3 of the way from nothing to the spectrum's maximum),
#: the "absolute" charge turns quadratic, so that its gradient is continuous at zero.
ABSOLUTE_ERROR_SMOOTHING = 1e-3


def _check_compressed_norm(name) -> None:
    if name not in COMPRESSED_NORMS:
        raise ValueError(f"compressed_norm must be one of {COMPRESSED_NORMS}; got {name!r}.")


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
    configs, weights, batch_size, seed, epsilon, measured_psfs=None, feature_weight=0.0, noise_weight_exponent=0.0
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
        Measured vacuum ZLPs for components that use them.
    feature_weight : float
        Extra weight of the channels at loss-feature cores (see :class:`TrainConfig`).
    noise_weight_exponent : float
        Exponent of the per-spectrum noise weights (:func:`spectrum_noise_weights`).

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
    parts = [
        generate_batch(config, int(count), child, measured_psfs=measured_psfs)
        for config, count, child in zip(configs, counts, sequence.spawn(len(configs)))
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
        config.feature_weight, config.noise_weight_exponent,
    )


def _mixture_shares(config: TrainConfig) -> np.ndarray:
    """Each mixture component's share of a batch (its weight over the sum)."""
    weights = np.array([m.weight for m in config.mixture], float)
    return weights / weights.sum()


def _keras_parts():
    import keras

    @keras.saving.register_keras_serializable(package="hyperspy_eelspecnet")
    class CompressedSpectrumLoss(keras.losses.Loss):
        """Masked squared (or smoothed absolute, ``compressed_norm``) error on compressed
        intensities plus a linear-intensity term for the ZLP shape, and optionally a slope term
        for narrow features.

        The compressed term makes features at 1/4000 of the ZLP count (see
        :mod:`hyperspy_eelspecnet.model`); the linear term, normalised by each target's
        maximum, pins the restored ZLP's height and width, which a compressed error alone
        under-weights by the compression's slope. The slope term compares the differences
        between neighbouring channels (both measured) of the compressed spectra: it is large
        where a narrow feature is misplaced or smeared and small for a smooth misfit.

        ``y_true[..., 1]`` weights each channel of the compressed term (0 on padding, more
        than 1 at loss-feature cores; see :func:`make_training_batch`); the linear and slope
        terms count every measured channel once (they are about the ZLP's shape and the
        compressed slopes, not about where features are), and the sum is divided by the
        number of measured channels.
        """

        def __init__(
            self, epsilon=DEFAULT_EPSILON, linear_weight=1.0, slope_weight=0.0,
            compressed_norm="squared", name="compressed_spectrum_loss", **kwargs,
        ):
            super().__init__(name=name, **kwargs)
            _check_compressed_norm(compressed_norm)
            self.epsilon = float(epsilon)
            self.linear_weight = float(linear_weight)
            self.slope_weight = float(slope_weight)
            self.compressed_norm = compressed_norm

        def call(self, y_true, y_pred):
            ops = keras.ops
            z_truth, weight = y_true[..., 0], y_true[..., 1]
            mask = ops.cast(weight > 0, weight.dtype)
            scale = float(np.arcsinh(1.0 / self.epsilon))
            error = y_pred - z_truth
            if self.compressed_norm == "absolute":
                smoothing = ABSOLUTE_ERROR_SMOOTHING
                charge = ops.sqrt(ops.square(error) + smoothing**2) - smoothing
            else:
                charge = ops.square(error)
            compressed = ops.sum(weight * charge, axis=-1)
            linear_pred = ops.sinh(ops.minimum(y_pred, 1.6) * scale)
            linear_truth = ops.sinh(z_truth * scale)
            norm = ops.max(linear_truth, axis=-1, keepdims=True)
            linear = ops.sum(mask * ops.square((linear_pred - linear_truth) / norm), axis=-1)
            total = compressed + self.linear_weight * linear
            if self.slope_weight:
                pair_mask = mask[..., 1:] * mask[..., :-1]
                slope = ops.sum(pair_mask * ops.square(error[..., 1:] - error[..., :-1]), axis=-1)
                total = total + self.slope_weight * slope
            n_measured = ops.maximum(ops.sum(mask, axis=-1), 1.0)
            return total / n_measured

        def get_config(self):
            return {
                **super().get_config(), "epsilon": self.epsilon,
                "linear_weight": self.linear_weight, "slope_weight": self.slope_weight,
                "compressed_norm": self.compressed_norm,
            }

    class GeneratedSpectra(keras.utils.PyDataset):
        """Batches generated from ``SeedSequence([seed, 0, epoch, index])``."""

        def __init__(self, config: TrainConfig, measured_psfs, **kwargs):
            super().__init__(**kwargs)
            self.config = config
            self.configs = config.generator_configs
            self.weights = _mixture_shares(config)
            self.measured_psfs = measured_psfs
            self.epoch = 0

        def __len__(self):
            return self.config.steps_per_epoch

        def __getitem__(self, index):
            c = self.config
            return make_training_batch(
                self.configs, self.weights, c.batch_size,
                np.random.SeedSequence([c.seed, 0, self.epoch, index]), c.epsilon, self.measured_psfs,
                c.feature_weight, c.noise_weight_exponent,
            )

        def on_epoch_end(self):
            self.epoch += 1

    class EpochTracker(keras.callbacks.Callback):
        def __init__(self, dataset):
            super().__init__()
            self.dataset = dataset

        def on_epoch_begin(self, epoch, logs=None):
            self.dataset.epoch = epoch

    class ResumableBackup(keras.callbacks.BackupAndRestore):
        """Keeps its backup after training ends, so a run stopped by the wall-clock limit
        (or finished) can be continued with ``--resume`` and a larger ``epochs``."""

        def on_train_end(self, logs=None):
            pass

    class WallClockLimit(keras.callbacks.Callback):
        def __init__(self, minutes):
            super().__init__()
            self.seconds = None if minutes is None else 60.0 * minutes
            self.start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            if self.seconds is not None and time.time() - self.start > self.seconds:
                print(f"\nStopping: wall-clock limit of {self.seconds / 60:.0f} min reached.")
                self.model.stop_training = True

    return keras, CompressedSpectrumLoss, GeneratedSpectra, EpochTracker, ResumableBackup, WallClockLimit


def CompressedSpectrumLoss(*args, **kwargs):  # noqa: N802 - factory with the class's name
    """Build the training loss (see the class docstring in :func:`_keras_parts`)."""
    return _keras_parts()[1](*args, **kwargs)


def training_loss(config: TrainConfig):
    """The loss a configuration trains with (its ``epsilon``, ``linear_weight``,
    ``slope_weight`` and ``compressed_norm``)."""
    return CompressedSpectrumLoss(config.epsilon, config.linear_weight, config.slope_weight, config.compressed_norm)


def _hardware() -> str:
    import tensorflow as tf

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


def _initial_weights(config: TrainConfig, stage_dir: Path, verbose) -> tuple[TrainConfig, Path, dict]:
    """Configuration, best weights and training summary of the earlier stage
    ``config.initialise_from``, trained first if needed."""
    earlier = TrainConfig.from_yaml(config.initialise_from)
    check_stage_continues(earlier, config)
    weights = stage_dir / "best.weights.h5"
    finished = stage_dir / "training_summary.json"
    if not (weights.exists() and finished.exists()):
        print(f"Training the earlier stage {config.initialise_from} into {stage_dir} first.", flush=True)
        train(earlier, stage_dir, resume=(stage_dir / "backup").exists(), verbose=verbose)
    return earlier, weights, json.loads(finished.read_text())


def check_stage_continues(earlier: TrainConfig, config: TrainConfig) -> None:
    """Raise ``ValueError`` unless ``config``'s network can start from ``earlier``'s weights.

    It can when the two build the same network, or when ``config`` only adds to it what
    :func:`hyperspy_eelspecnet.model.transfer_weights` starts as the earlier network: the
    ZLP-shape conditioning, the own-ZLP Richardson-Lucy input, convolutions to a level, or
    anti-aliasing of a strided network.
    """
    shapes = ("filters", "kernel_size", "bottleneck_dilations")
    different = [name for name in shapes if getattr(earlier, name) != getattr(config, name)]
    depth = len(config.filters) - 1
    if earlier.filters == config.filters and any(  # more convolutions start as the identity
        before > after
        for before, after in zip(
            level_convolutions(earlier.convs_per_level, depth), level_convolutions(config.convs_per_level, depth)
        )
    ):
        different.append("convs_per_level")
    if earlier.resampling != config.resampling and earlier.resampling != "strided":
        different.append("resampling")  # only strided -> antialiased converts (transfer_weights)
    elif "antialiased" == earlier.resampling == config.resampling and (
        earlier.antialias_from_level != config.antialias_from_level
    ):
        different.append("antialias_from_level")
    if earlier.zlp_context and earlier.zlp_context != config.zlp_context:
        different.append("zlp_context")
    if earlier.zlp_gain and not config.zlp_gain:
        different.append("zlp_gain")
    if earlier.rl_iterations and (earlier.rl_iterations, earlier.rl_psf_half_width) != (
        config.rl_iterations, config.rl_psf_half_width
    ):
        different.append("rl_iterations")
    if different or earlier.generator_configs[0].n_channels != config.generator_configs[0].n_channels:
        raise ValueError(
            f"{config.initialise_from} builds another network ({', '.join(different) or 'n_channels'} "
            "differ); a later stage must keep the network's shape."
        )


def _build_core(config: TrainConfig):
    """The core network a configuration trains (uncompiled, freshly initialised)."""
    generator_config = config.generator_configs[0]
    return build_unet_core(
        generator_config.n_channels, config.filters, config.kernel_size,
        config.convs_per_level, config.bottleneck_dilations,
        zlp_context=config.zlp_context, zlp_channel=generator_config.zlp_channel, zlp_gain=config.zlp_gain,
        rl_iterations=config.rl_iterations, rl_psf_half_width=config.rl_psf_half_width, epsilon=config.epsilon,
        resampling=config.resampling, antialias_from_level=config.antialias_from_level,
    )


def _load_initial_weights(core, earlier: TrainConfig, config: TrainConfig, weights: Path) -> None:
    """Load the earlier stage's best weights into ``core`` (by layer name where ``config`` adds
    the ZLP-shape conditioning, the Richardson-Lucy input or convolutions to a level, or
    anti-aliases a strided network; :func:`_initial_weights` has checked that nothing else
    differs)."""
    added = ("zlp_context", "zlp_gain", "rl_iterations", "resampling", "antialias_from_level", "convs_per_level")
    if all(getattr(earlier, name) == getattr(config, name) for name in added):
        core.load_weights(weights)
        return
    earlier_core = _build_core(earlier)
    earlier_core.load_weights(weights)
    transfer_weights(earlier_core, core)


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
    """
    keras, _, GeneratedSpectra, EpochTracker, ResumableBackup, WallClockLimit = _keras_parts()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    backup = out_dir / "backup"
    if backup.exists() and not resume:
        shutil.rmtree(backup)
    config.to_yaml(out_dir / "train_config.yaml")
    keras.utils.set_random_seed(config.seed)

    measured_psfs = _load_measured_psfs(config.measured_psfs)
    if measured_psfs is not None:
        # The generator's kernels span 2 n channels: cropping to n here would cut the PSF tails.
        measured_psfs = prepare_measured_psfs(measured_psfs, 2 * config.generator_configs[0].n_channels)
    core = _build_core(config)
    total_steps = config.epochs * config.steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.01,
        decay_steps=max(total_steps - config.warmup_steps, 1),
        alpha=config.final_learning_rate_fraction,
        warmup_target=config.learning_rate,
        warmup_steps=config.warmup_steps,
    )
    if config.initialise_from:
        earlier, initial_weights, initial_summary = _initial_weights(config, out_dir / "initial", verbose)
        _load_initial_weights(core, earlier, config, initial_weights)
    core.compile(
        optimizer=keras.optimizers.Adam(schedule, clipnorm=config.clipnorm),
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
        EpochTracker(dataset),
        ResumableBackup(str(backup)),
        checkpoint,
        keras.callbacks.EarlyStopping(patience=config.early_stopping_patience),
        keras.callbacks.CSVLogger(str(history_file), append=resume and history_file.exists()),
        WallClockLimit(config.max_minutes),
    ]
    start = time.time()
    history = core.fit(
        dataset, epochs=config.epochs, validation_data=validation,
        validation_batch_size=config.batch_size, callbacks=callbacks, verbose=verbose,
    )
    wall_time = time.time() - start
    summary = {
        "epochs_run": len(history.history.get("loss", [])),
        "best_val_loss": float(min(history.history.get("val_loss", [np.nan]))),
        "wall_time_s": round(wall_time, 1),
        "hardware": _hardware(),
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
    generator_config = config.generator_configs[0]
    core = _build_core(config)
    if isinstance(weights, (str, Path)):
        core.load_weights(weights)
    else:
        core.set_weights(weights.get_weights())
    model = build_eelspecnet(core, config.epsilon, name=config.name)
    psf_low = min(c.psf_fwhm[0] for c in config.generator_configs)
    psf_high = max(c.psf_fwhm[1] for c in config.generator_configs)
    contract = ModelContract(
        n_channels=generator_config.n_channels,
        zlp_channel=generator_config.zlp_channel,
        dispersion=generator_config.dispersion,
        psf_fwhm_channels=(psf_low, psf_high),
        zlp_fwhm_channels=generator_config.zlp_fwhm,
        epsilon=config.epsilon,
        edge_channels=config.edge_channels,
        name=config.name,
        version=config.version,
        preset="+".join(m.preset for m in config.mixture),
        training={"config": config.to_dict(), "parameters": int(core.count_params()), **(summary or {})},
    )
    path = save_model(model, out_dir / filename, contract)
    _write_card(out_dir / "MODEL_CARD.md", contract)
    (out_dir / "training_summary.json").write_text(json.dumps(contract.training, indent=2, default=str))
    return path


def _coverage_rows(config: TrainConfig) -> list[str]:
    """Markdown rows describing what each generator component of the mixture covers."""
    rows = ["| | " + " | ".join(f"`{m.preset}` (weight {m.weight:g})" for m in config.mixture) + " |"]
    rows.append("|---|" + "---|" * len(config.mixture))
    generators = config.generator_configs

    def row(label, cell):
        rows.append(f"| {label} | " + " | ".join(cell(g) for g in generators) + " |")

    def channels(pair, g, digits=3):
        low, high = pair
        return (f"{low:.{digits}g}-{high:.{digits}g} ch "
                f"({low * g.dispersion * 1000:.{digits}g}-{high * g.dispersion * 1000:.{digits}g} meV at {g.dispersion * 1000:g} meV/ch)")

    row("distorted ZLP / PSF FWHM", lambda g: f"{g.psf_shape}, " + channels(g.psf_fwhm, g))
    row("PSF loss/gain half-width ratio", lambda g: f"{g.psf_asymmetry[0]:g}-{g.psf_asymmetry[1]:g}")
    row("PSF Lorentzian fraction (tails)", lambda g: f"{g.psf_lorentz_fraction[0]:g}-{g.psf_lorentz_fraction[1]:g}"
        + (" (log-uniform)" if g.psf_lorentz_fraction_log else ""))
    row("jitter half-amplitude", lambda g: f"{g.jitter_amplitude[0]:g}-{g.jitter_amplitude[1]:g} ch, "
        + ", ".join(g.jitter_distributions))
    row("loss features", lambda g: f"{g.n_peaks[0]}-{g.n_peaks[1]} Lorentzians, FWHM " + channels(g.peak_fwhm, g)
        + f", 1/{g.peak_ratio[1]:g} to 1/{g.peak_ratio[0]:g} of the ZLP")
    row("feature centres", lambda g: f"uniform over channels {g.peak_channel[0]}-{g.peak_channel[1]}" + (
        "" if g.peak_near_zlp_fraction == 0 else f"; {g.peak_near_zlp_fraction:.0%} instead "
        f"{g.peak_near_zlp_distance[0]:g}-{g.peak_near_zlp_distance[1]:g} ch above the ZLP (log-uniform)"))
    row("continuum", lambda g: "none" if g.continuum_probability == 0 else
        f"{g.continuum_probability:.0%} of spectra, 1/{g.continuum_ratio[1]:g} to 1/{g.continuum_ratio[0]:g} of the ZLP")
    row("noise", lambda g: f"Gaussian, std {g.gaussian_noise_std[0]:g}-{g.gaussian_noise_std[1]:g} x max"
        if g.noise_model == "gaussian" else
        f"Poisson, {g.total_counts[0]:.0e}-{g.total_counts[1]:.0e} counts, read noise "
        f"{g.read_noise[0]:g}-{g.read_noise[1]:g}, dark {g.dark_level[0]:g}-{g.dark_level[1]:g} counts/ch")
    row("ZLP drift, alignment", lambda g: f"{g.zlp_drift[0]:g} to {g.zlp_drift[1]:g} ch, "
        + ("aligned on the located ZLP" if g.align_zlp else "not aligned"))
    row("short windows", lambda g: "none" if g.window_probability == 0 else
        f"{g.window_probability:.0%} of spectra, start {g.window_start[0]}-{g.window_start[1]}, "
        f"stop {g.window_stop[0]}-{g.window_stop[1]}")
    return rows


def _initial_stage_lines(stage) -> list[str]:
    """Card lines naming the earlier stages of a staged training, latest first."""
    if not stage:
        return []
    lines = [
        f"- started from the best weights of the earlier stage `{stage['config']}`; the epochs and "
        "wall time above are this stage's"
    ]
    while stage:
        earlier = stage.get("initial_stage")
        start = f"the best weights of `{earlier['config']}`" if earlier else "random weights"
        minutes = (stage.get("wall_time_s") or float("nan")) / 60
        lines.append(
            f"- stage `{stage['config']}`: {stage.get('epochs_run', '?')} epochs from {start}, "
            f"{minutes:.1f} min on {stage.get('hardware', '?')}"
        )
        stage = earlier
    return lines


def _write_card(path: Path, contract: ModelContract) -> None:
    t = contract.training
    config = TrainConfig(**t["config"])
    lines = [
        f"# Model card: {contract.name} {contract.version}",
        "",
        "A compact EELSpecNet (1-D U-shaped CNN) that restores near-zero-loss EELS spectra: it",
        "removes the instrument's blur (PSF and energy jitter) and noise and returns a quasi-Dirac",
        "zero-loss peak with the loss features, counts conserved. Trained on generated spectra only.",
        "",
        "## Contract",
        f"- channels: {contract.n_channels}, ZLP at channel {contract.zlp_channel}, "
        f"trained at {contract.dispersion * 1000:g} meV/channel (ranges below are in channels)",
        f"- distorted ZLP FWHM seen in training: {contract.psf_fwhm_channels[0]:g}-"
        f"{contract.psf_fwhm_channels[1]:g} channels; restored ZLP FWHM {contract.zlp_fwhm_channels:g} channels",
        f"- outputs used: window channels {contract.edge_channels}-{contract.n_channels - 1 - contract.edge_channels} "
        f"(the outermost {contract.edge_channels} at each end are not returned)",
        f"- generator preset(s): {contract.preset}",
        "",
        "## What it was trained on",
        *_coverage_rows(config),
        "",
        "## Limits",
        "- Outside these ranges (a ZLP wider or narrower in channels, features narrower than about",
        "  3 channels, fewer counts) the network has seen nothing: `eelspecnet_deconvolve` warns",
        "  with the numbers; rebin, or train on your own measured PSFs (`measured_psfs:`).",
        "- The restored ZLP is the quasi-Dirac of the training truth, not a measurement of the",
        "  source's energy spread; energy zero is the located ZLP maximum.",
        "- Generated training data only: features unlike Lorentzians or the continua listed above may",
        "  be restored with the shape of what the network knows.",
        "",
        "## Training",
        f"- parameters: {t['parameters']:,}",
        f"- epochs run: {t.get('epochs_run', '?')}, best validation loss {t.get('best_val_loss', float('nan')):.3e}",
        f"- wall time: {t.get('wall_time_s', float('nan')) / 60:.1f} min on {t.get('hardware', '?')}",
        *_initial_stage_lines(t.get("initial_stage")),
        f"- seed: {config.seed} (training batch i of epoch e: SeedSequence([seed, 0, e, i]); "
        "validation: SeedSequence([seed, 1]))",
        "",
        "## Configuration",
        "```yaml",
        yaml.safe_dump(t["config"], sort_keys=False).rstrip(),
        "```",
        "",
    ]
    path.write_text("\n".join(lines))
