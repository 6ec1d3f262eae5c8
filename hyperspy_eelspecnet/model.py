"""The EELSpecNet network: a compact 1-D U-shaped CNN in Keras 3, and its model contract.

Intensity scaling
-----------------
Loss features sit 1/300 to 1/10000 below the zero-loss peak. On linear, unit-area spectra a
mean-squared error is dominated by the ZLP and ignores them. The network therefore works on
*compressed* intensities

    z = asinh(x / (epsilon * peak)) / asinh(1 / epsilon)

where ``peak`` is the maximum of the input spectrum. ``z`` is linear for intensities below
``epsilon * peak`` (so noise around zero stays symmetric and bounded, unlike a log or a fourth
root whose slope diverges at zero) and logarithmic above: a feature at 1/4000 of the recorded
ZLP maximum has ``z ~ 0.17`` while the ZLP has ``z = 1`` (a 670-fold boost over the linear
scale), so both matter to the loss. The restored spectrum is
``epsilon * peak * sinh(z_out * asinh(1 / epsilon))`` with ``z_out > 0`` from a softplus, so the
output is non-negative by construction (and below 1e-7 of the peak where the network says "nothing").

The two scalings are layers of the saved model (:class:`IntensityCompression`,
:class:`IntensityExpansion`), so a ``.keras`` file maps spectra of any scale to restored spectra
on the same scale, and it loads with ``safe_mode=True``.

Model contract
--------------
Every model file carries a JSON sidecar (``<name>.json``) with the channel count, the channel
where the ZLP must sit, the dispersion and the ranges it was trained on
(:class:`ModelContract`). :func:`load_model` refuses a model whose file and sidecar disagree.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "ModelContract",
    "build_unet_core",
    "build_eelspecnet",
    "transfer_weights",
    "strided_up_as_pointwise",
    "identity_convolution",
    "core_of",
    "save_model",
    "load_model",
    "default_model_path",
    "compress_intensity",
    "expand_intensity",
    "predict_spectra",
]

DEFAULT_EPSILON = 1e-4
#: Default number of channels at each end of the model window whose output is not used (models
#: state their own in ``ModelContract.edge_channels``): like any CNN with 'same' padding, the
#: network's outermost outputs see zeros beyond the window.
MODEL_EDGE_CHANNELS = 16


def _keras():
    import keras

    return keras


def compress_intensity(spectra, epsilon: float = DEFAULT_EPSILON, peak=None):
    """NumPy twin of :class:`IntensityCompression`; returns ``(z, peak)``."""
    spectra = np.asarray(spectra, dtype=np.float32)
    if peak is None:
        peak = np.maximum(spectra.max(axis=-1, keepdims=True), np.float32(1e-30))
    scale = np.float32(np.arcsinh(1.0 / epsilon))
    return np.arcsinh(spectra / (epsilon * peak)) / scale, peak


def expand_intensity(z, peak, epsilon: float = DEFAULT_EPSILON):
    """Inverse of :func:`compress_intensity`."""
    scale = np.arcsinh(1.0 / epsilon)
    return (epsilon * peak * np.sinh(np.asarray(z) * scale)).astype(np.float32)


def _register(cls):
    return _keras().saving.register_keras_serializable(package="hyperspy_eelspecnet")(cls)


def _layers():
    """Define (once) and return the custom layers; keeps Keras out of import time."""
    global IntensityCompression, IntensityExpansion, OwnZlpRichardsonLucy
    if "IntensityCompression" in globals():
        return IntensityCompression, IntensityExpansion, OwnZlpRichardsonLucy
    keras = _keras()
    ops = keras.ops

    @_register
    class IntensityCompression(keras.layers.Layer):
        """``(spectra) -> (z, peak)``: asinh compression relative to each spectrum's maximum."""

        def __init__(self, epsilon=DEFAULT_EPSILON, **kwargs):
            super().__init__(**kwargs)
            self.epsilon = float(epsilon)

        def call(self, spectra):
            peak = ops.maximum(ops.max(spectra, axis=-1, keepdims=True), 1e-30)
            scale = float(np.arcsinh(1.0 / self.epsilon))
            return ops.arcsinh(spectra / (self.epsilon * peak)) / scale, peak

        def compute_output_shape(self, input_shape):
            return input_shape, (*input_shape[:-1], 1)

        def get_config(self):
            return {**super().get_config(), "epsilon": self.epsilon}

    @_register
    class IntensityExpansion(keras.layers.Layer):
        """``(z, peak) -> spectra``: inverse of :class:`IntensityCompression`."""

        def __init__(self, epsilon=DEFAULT_EPSILON, **kwargs):
            super().__init__(**kwargs)
            self.epsilon = float(epsilon)

        def call(self, inputs):
            z, peak = inputs
            scale = float(np.arcsinh(1.0 / self.epsilon))
            return self.epsilon * peak * ops.sinh(z * scale)

        def compute_output_shape(self, input_shape):
            return input_shape[0]

        def get_config(self):
            return {**super().get_config(), "epsilon": self.epsilon}

    @_register
    class OwnZlpRichardsonLucy(keras.layers.Layer):
        """``z -> z_rl``: Richardson-Lucy on each spectrum with its own ZLP as the blur.

        Works in the compressed domain of :class:`IntensityCompression` (both sides relative
        to the input's maximum). The blur of each spectrum is the ZLP it recorded: the
        channels ``zlp_channel +- psf_half_width``, clipped at zero and normalised. The
        spectrum is zero-padded to twice its length (no wrap-around) and deconvolved with
        :func:`~hyperspy_eelspecnet.richardson_lucy.richardson_lucy`'s update (FFT products,
        estimate floored at ``1e-12`` of its maximum, never negative). No weights.
        """

        def __init__(self, zlp_channel, iterations=20, psf_half_width=64, epsilon=DEFAULT_EPSILON, **kwargs):
            super().__init__(**kwargs)
            self.zlp_channel = int(zlp_channel)
            self.iterations = int(iterations)
            self.psf_half_width = int(psf_half_width)
            self.epsilon = float(epsilon)

        def call(self, z):
            scale = float(np.arcsinh(1.0 / self.epsilon))
            n = z.shape[-1]
            length = 2 * n
            observed = ops.maximum(self.epsilon * ops.sinh(z * scale), 0.0)
            c, h = self.zlp_channel, self.psf_half_width
            psf = observed[:, c - h : c + h + 1]
            psf = psf / ops.maximum(ops.sum(psf, axis=-1, keepdims=True), 1e-30)
            # Zero shift at index 0: offsets 0..h, then the padding, then -h..-1.
            pad = ops.zeros_like(observed)
            kernel = ops.concatenate([psf[:, h:], pad, pad[:, : n - 2 * h - 1], psf[:, :h]], axis=-1)
            k_re, k_im = ops.rfft(kernel)

            def convolve(x, conjugate):
                x_re, x_im = ops.rfft(ops.concatenate([x, pad], axis=-1))
                sign = -1.0 if conjugate else 1.0
                re = x_re * k_re - sign * x_im * k_im
                im = x_im * k_re + sign * x_re * k_im
                return ops.irfft((re, im), fft_length=length)[:, :n]

            estimate = observed
            for _ in range(self.iterations):
                blurred = convolve(estimate, conjugate=False)
                floor = 1e-12 * ops.max(blurred, axis=-1, keepdims=True)
                ratio = observed / ops.maximum(blurred, ops.maximum(floor, 1e-30))
                estimate = ops.maximum(estimate * convolve(ratio, conjugate=True), 0.0)
            return ops.arcsinh(estimate / self.epsilon) / scale

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {
                **super().get_config(), "zlp_channel": self.zlp_channel, "iterations": self.iterations,
                "psf_half_width": self.psf_half_width, "epsilon": self.epsilon,
            }

    return IntensityCompression, IntensityExpansion, OwnZlpRichardsonLucy


def _check_zlp_window(option: str, half_width: int, zlp_channel, n_channels: int) -> None:
    """Refuse a network option that reads the ZLP window ``zlp_channel +- half_width`` when that
    window is not inside the spectrum."""
    if zlp_channel is None or not half_width <= zlp_channel < n_channels - half_width:
        raise ValueError(
            f"{option} needs a zlp_channel at least {half_width} channels from both ends of the "
            f"{n_channels}-channel window (it reads the ZLP window); got zlp_channel={zlp_channel}."
        )


#: How :func:`build_unet_core`'s levels change length (see its ``resampling``).
RESAMPLINGS = ("strided", "antialiased")


def check_resampling(resampling: str) -> None:
    """Raise ``ValueError`` unless ``resampling`` is one of :data:`RESAMPLINGS`."""
    if resampling not in RESAMPLINGS:
        raise ValueError(f"resampling must be one of {RESAMPLINGS}; got {resampling!r}.")


def build_unet_core(
    n_channels: int = 2048,
    filters=(16, 24, 32, 48, 64, 96, 128),
    kernel_size: int = 7,
    convs_per_level: int = 2,
    bottleneck_dilations=(1, 2, 4),
    zlp_context: int = 0,
    zlp_channel: int | None = None,
    zlp_gain: bool = False,
    rl_iterations: int = 0,
    rl_psf_half_width: int = 64,
    epsilon: float = DEFAULT_EPSILON,
    resampling: str = "strided",
    antialias_from_level: int = 0,
    name: str = "eelspecnet_core",
):
    """The U-shaped network on compressed intensities: ``z (batch, n) -> z_out (batch, n)``.

    Each encoder level applies ``convs_per_level`` convolutions with ``filters[level]`` filters
    and halves the length with a stride-2 convolution; the bottleneck stacks dilated
    convolutions (a receptive field wide enough for the ZLP's Lorentzian tails); each decoder
    level doubles the length with a transposed convolution, concatenates the encoder's output
    of the same length (skip connection) and convolves again. The last layer is a 1x1
    convolution with softplus, so ``z_out > 0``.

    Parameters
    ----------
    n_channels : int
        Spectrum length; must be divisible by ``2 ** (len(filters) - 1)``.
    filters : sequence of int
        Filters per level, from the full-resolution level down to the bottleneck.
    kernel_size : int
        Convolution kernel length.
    convs_per_level : int or sequence of int
        Convolutions per encoder and decoder level: one number for every level, or one per
        level from the full-resolution one down (``len(filters) - 1`` numbers, each >= 1).
    bottleneck_dilations : sequence of int
        Dilation rates of the bottleneck convolutions.
    zlp_context : int
        Half width, in channels, of the ZLP window given to every decoder level (0: none).
        The blur of each spectrum is written in its own ZLP; a feature a thousand channels
        away otherwise learns that shape only through the coarse bottleneck. With
        ``zlp_context > 0`` the channels ``zlp_channel +- zlp_context`` are flattened into a
        ZLP-shape vector (one dense layer) and each decoder level adds a learned projection of
        it to its features (a per-spectrum bias, the same at every channel). The projections
        start at zero, so such a network starts as the one without them and can continue
        its weights (:func:`transfer_weights`).
    zlp_channel : int, optional
        Channel of the aligned ZLP; required when ``zlp_context > 0``.
    zlp_gain : bool
        With ``zlp_context``, also multiply each decoder level's output, per spectrum and
        filter, by a learned projection of the ZLP-shape vector that starts at one (a gain, as
        in feature-wise linear modulation): a bias shifts features, a gain can switch them on
        and off, e.g. choose how much deblurring a spectrum's own blur calls for.
    rl_iterations : int
        With ``rl_iterations > 0`` the network also sees a Richardson-Lucy estimate of its
        input made with the spectrum's own ZLP (channels ``zlp_channel +- rl_psf_half_width``)
        as the blur (:class:`OwnZlpRichardsonLucy`), so every feature comes with a version
        deblurred by that spectrum's blur, meant to let the network see how much blur there is
        at each feature rather than apply an average deblurring (two trials did not get there;
        see the science notes in the documentation). A linear convolution of the
        estimate (``rl_to_enc0``, starting at zero) is added to the first convolution's
        output, so such a network starts as the one without it (:func:`transfer_weights`).
        Needs ``zlp_channel``.
    rl_psf_half_width : int
        Half width, in channels, of the ZLP window used as the blur by ``rl_iterations``.
    epsilon : float
        The intensity compression's ``epsilon`` (:class:`IntensityCompression`); the
        Richardson-Lucy estimate works on linear intensities.
    resampling : {"strided", "antialiased"}
        How the levels change length. ``"strided"``: a stride-2 convolution of kernel 2 down,
        a transposed convolution of kernel 2 up. Both treat the even and the odd channel of
        each pair differently, so the network is not shift-equivariant: the same feature
        comes back differently shaped, and its maximum up to a few channels elsewhere,
        depending on where it sits modulo ``2 ** depth`` channels. ``"antialiased"``
        low-passes before every length change: a 3-channel box average before the stride-2
        convolution down, and up a nearest-neighbour doubling smoothed by the same box
        average, then a 1x1 convolution (the shift-invariance fix of blurred pooling, Zhang,
        ICML 2019).
    antialias_from_level : int
        With ``"antialiased"``, the first level whose length changes are low-passed (0: all);
        the finer levels keep the strided resampling.
    """
    check_resampling(resampling)
    keras = _keras()
    layers = keras.layers
    depth = len(filters) - 1
    if n_channels % (2**depth):
        raise ValueError(
            f"n_channels={n_channels} must be divisible by 2**{depth}={2 ** depth} for a U-Net "
            f"with {len(filters)} levels."
        )

    convs = level_convolutions(convs_per_level, depth)

    def conv(x, n_filters, dilation=1, label=None):
        return layers.Conv1D(
            n_filters, kernel_size, padding="same", dilation_rate=dilation, activation="relu",
            name=label,
        )(x)

    # Levels whose length changes are low-passed (resampling="antialiased").
    low_passed = set(range(antialias_from_level, depth)) if resampling == "antialiased" else set()

    z_in = keras.Input((n_channels,), name="z")
    x = layers.Reshape((n_channels, 1))(z_in)
    zlp_shape = None
    z_rl = None
    if rl_iterations:
        _check_zlp_window("rl_iterations", rl_psf_half_width, zlp_channel, n_channels)
        richardson_lucy_layer = _layers()[2]
        z_rl = richardson_lucy_layer(
            zlp_channel, rl_iterations, rl_psf_half_width, epsilon, name="own_zlp_richardson_lucy"
        )(z_in)
        z_rl = layers.Reshape((n_channels, 1))(z_rl)
    if zlp_gain and not zlp_context:
        raise ValueError("zlp_gain needs zlp_context > 0 (the ZLP window the gains are computed from).")
    if zlp_context:
        _check_zlp_window(f"zlp_context={zlp_context}", zlp_context, zlp_channel, n_channels)
        window = layers.Cropping1D(
            (zlp_channel - zlp_context, n_channels - zlp_channel - zlp_context - 1), name="zlp_window"
        )(x)
        zlp_shape = layers.Dense(64, activation="relu", name="zlp_shape")(layers.Flatten()(window))
    skips = []
    for level, n_filters in enumerate(filters[:-1]):
        for i in range(convs[level]):
            x = conv(x, n_filters, label=f"enc{level}_conv{i}")
            if z_rl is not None and (level, i) == (0, 0):
                rl_features = layers.Conv1D(
                    n_filters, kernel_size, padding="same", use_bias=False, kernel_initializer="zeros",
                    name="rl_to_enc0",
                )(z_rl)
                x = layers.Add(name="rl_added")([x, rl_features])
        skips.append(x)
        if level in low_passed:
            x = layers.AveragePooling1D(3, strides=1, padding="same", name=f"down{level}_lowpass")(x)
        x = layers.Conv1D(filters[level + 1], 2, strides=2, name=f"down{level}")(x)
    for i, dilation in enumerate(bottleneck_dilations):
        x = conv(x, filters[-1], dilation, label=f"bottleneck{i}")
    for level in reversed(range(depth)):
        if level in low_passed:
            x = layers.UpSampling1D(2, name=f"up{level}_double")(x)
            x = layers.AveragePooling1D(3, strides=1, padding="same", name=f"up{level}_lowpass")(x)
            x = layers.Conv1D(filters[level], 1, name=f"up{level}")(x)
        else:
            x = layers.Conv1DTranspose(filters[level], 2, strides=2, name=f"up{level}")(x)
        if zlp_shape is not None:
            bias = layers.Dense(filters[level], kernel_initializer="zeros", name=f"zlp_shape_to_dec{level}")(zlp_shape)
            x = layers.Add(name=f"zlp_conditioned{level}")([x, layers.RepeatVector(n_channels // 2**level)(bias)])
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        for i in range(convs[level]):
            x = conv(x, filters[level], label=f"dec{level}_conv{i}")
        if zlp_gain:
            gain = layers.Dense(
                filters[level], kernel_initializer="zeros", bias_initializer="ones", name=f"zlp_shape_gain_dec{level}"
            )(zlp_shape)
            x = layers.Multiply(name=f"zlp_gained{level}")([x, layers.RepeatVector(n_channels // 2**level)(gain)])
    # Softplus, not ReLU: non-negative like it, but a ReLU output can die early in training
    # (seen: the whole spectrum stuck at zero) while softplus keeps a gradient everywhere.
    x = layers.Conv1D(1, 1, activation="softplus", name="z_out")(x)
    z_out = layers.Reshape((n_channels,))(x)
    return keras.Model(z_in, z_out, name=name)


def level_convolutions(convs_per_level, depth: int) -> list[int]:
    """Convolutions of each encoder (and decoder) level, from the full-resolution level down.

    ``convs_per_level`` is one number for all ``depth`` levels or one per level; raises
    ``ValueError`` for another count of numbers or a level without a convolution.
    """
    if np.ndim(convs_per_level) == 0:
        convs = [int(convs_per_level)] * depth
    else:
        convs = [int(n) for n in convs_per_level]
    if len(convs) != depth or min(convs) < 1:
        raise ValueError(
            f"convs_per_level={convs_per_level!r}: give one number >= 1 for every level, or {depth} "
            f"numbers >= 1, one per level (a network with {depth + 1} filter counts has {depth} levels "
            "above its bottleneck)."
        )
    return convs


#: Names of the convolutions inside an encoder or decoder level (``enc0_conv2``, ...).
LEVEL_CONVOLUTION = re.compile(r"(enc|dec)\d+_conv\d+")


def transfer_weights(source, target) -> list[str]:
    """Copy the weights of every layer of ``source`` into the same-named layer of ``target``.

    Continues a trained core in a network that adds layers to it (e.g. ``zlp_context``), or
    that resamples differently: a strided network's kernel-2 transposed up-convolution
    ``up{level}`` becomes an anti-aliased network's 1x1 convolution of the same name
    (:func:`strided_up_as_pointwise`); the down convolutions keep their shapes and weights.
    A convolution the target adds inside a level (more ``convs_per_level``: ``enc{level}_conv{i}``
    or ``dec{level}_conv{i}`` with as many filters in as out) starts as the identity, its
    centre tap the unit matrix and no bias: it follows a ReLU, so its ReLU passes the
    non-negative input on unchanged and the deeper network starts as the source.
    Returns the names of the target's layers with weights that ``source`` does not have
    (those added convolutions set to the identity, all others left as initialised). Raises
    ``ValueError`` if a shared layer's weights differ in shape.
    """
    keras = _keras()
    shared = {layer.name: layer for layer in source.layers if layer.weights}
    untouched = []
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name not in shared:
            untouched.append(layer.name)
            if LEVEL_CONVOLUTION.fullmatch(layer.name):
                layer.set_weights(identity_convolution(*layer.get_weights()))
            continue
        source_layer = shared.pop(layer.name)
        old = source_layer.get_weights()
        if isinstance(source_layer, keras.layers.Conv1DTranspose) and not isinstance(
            layer, keras.layers.Conv1DTranspose
        ):
            old = strided_up_as_pointwise(*old)
        if [w.shape for w in old] != [w.shape for w in layer.get_weights()]:
            raise ValueError(f"Layer {layer.name!r} has other weight shapes in the two networks.")
        layer.set_weights(old)
    if shared:
        raise ValueError(f"The target network lacks the source's layers {sorted(shared)}.")
    return untouched


def identity_convolution(kernel, bias):
    """Weights that make a ``same``-padded convolution pass its input unchanged.

    Parameters
    ----------
    kernel : array, shape (taps, filters, filters)
        An odd number of taps and as many filters in as out.
    bias : array, shape (filters,)

    Returns
    -------
    list of array
        ``[kernel, bias]``: the centre tap the unit matrix, every other tap and the bias zero.
    """
    taps, filters_in, filters_out = np.shape(kernel)
    if taps % 2 == 0 or filters_in != filters_out:
        raise ValueError(
            f"Only a convolution with an odd number of taps and as many filters in as out can start "
            f"as the identity; this one has kernel shape {np.shape(kernel)}."
        )
    identity = np.zeros((taps, filters_in, filters_out), dtype=np.asarray(kernel).dtype)
    identity[taps // 2] = np.eye(filters_in)
    return [identity, np.zeros_like(bias)]


def strided_up_as_pointwise(kernel, bias):
    """The 1x1 convolution that best continues a kernel-2, stride-2 transposed convolution
    after nearest-neighbour doubling.

    The transposed convolution writes ``kernel[0]`` into each even output channel and
    ``kernel[1]`` into each odd one (Keras stores it as ``(taps, filters_out, filters_in)``).
    After nearest doubling both channels of a pair hold the same input, so the pointwise
    convolution that treats them alike is the mean of the two taps, ``(1, filters_in,
    filters_out)``: what stays is the part of the up-sampling that does not depend on a
    channel's parity, and the parity-dependent part (the aliasing) is dropped. Lets an
    anti-aliased network start from a trained strided one and be fine-tuned instead of
    trained from random weights.

    Parameters
    ----------
    kernel : array, shape (2, filters_out, filters_in)
        The transposed convolution's kernel.
    bias : array, shape (filters_out,)

    Returns
    -------
    list of array
        ``[kernel (1, filters_in, filters_out), bias]`` for a ``Conv1D(filters_out, 1)``.
    """
    kernel = np.asarray(kernel)
    return [kernel.mean(axis=0, keepdims=True).transpose(0, 2, 1), np.asarray(bias)]


def build_eelspecnet(core, epsilon: float = DEFAULT_EPSILON, name: str = "eelspecnet"):
    """Wrap a core network into the full model ``spectra -> restored spectra`` (same scale)."""
    keras = _keras()
    compression, expansion, _ = _layers()
    n_channels = core.input_shape[-1]
    spectra = keras.Input((n_channels,), name="spectra")
    z, peak = compression(epsilon=epsilon, name="compress")(spectra)
    z_out = core(z)
    restored = expansion(epsilon=epsilon, name="expand")([z_out, peak])
    return keras.Model(spectra, restored, name=name)


def core_of(model):
    """The core (compressed-domain) sub-model of a full EELSpecNet model."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.name.endswith("core"):
            return layer
    raise ValueError(f"Model {model.name!r} has no EELSpecNet core sub-model.")


@dataclass
class ModelContract:
    """What a model file expects of its input; stored beside it as JSON.

    Attributes
    ----------
    n_channels : int
        Channels the network takes.
    zlp_channel : int
        Channel where the zero-loss peak must sit.
    dispersion : float
        eV per channel the training ranges were expressed at (ranges are in channels, so other
        dispersions work where the physics maps into the same channel ranges).
    psf_fwhm_channels : (float, float)
        Range of distorted ZLP FWHM (channels) seen in training.
    zlp_fwhm_channels : float
        FWHM (channels) of the restored quasi-Dirac ZLP.
    epsilon : float
        Intensity-compression constant.
    edge_channels : int
        Channels at each end of the window whose output is not used: near the window's ends
        the network sees its zero padding. Measured per model (see the model card).
    name, version : str
        Identification recorded in the metadata of restored signals.
    preset : str
        Generator preset(s) the model was trained on.
    training : dict
        Free-form record (config, seeds, steps) written by the trainer.
    """

    n_channels: int = 2048
    zlp_channel: int = 400
    dispersion: float = 0.005
    psf_fwhm_channels: tuple = (7.0, 40.0)
    zlp_fwhm_channels: float = 3.0
    epsilon: float = DEFAULT_EPSILON
    edge_channels: int = MODEL_EDGE_CHANNELS
    name: str = "eelspecnet"
    version: str = "0"
    preset: str = "reference"
    training: dict = field(default_factory=dict)

    def to_json(self, path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, default=_json_default))

    @classmethod
    def from_json(cls, path) -> "ModelContract":
        values = json.loads(Path(path).read_text())
        values["psf_fwhm_channels"] = tuple(values.get("psf_fwhm_channels", (7.0, 40.0)))
        return cls(**values)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_model(model, path, contract: ModelContract) -> Path:
    """Save the full model (weights and architecture, no optimizer state) and its contract."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Model files end in '.keras'; got {path.name!r}.")
    if model.input_shape[-1] != contract.n_channels:
        raise ValueError(
            f"The model takes {model.input_shape[-1]} channels but the contract says {contract.n_channels}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)  # exported models are never compiled: no optimizer state is written
    contract.to_json(_sidecar(path))
    return path


def default_model_path() -> Path:
    """Path of the bundled default model."""
    return Path(__file__).parent / "models" / "eelspecnet_default.keras"


def file_sha256(path) -> str:
    """SHA-256 of a file, recorded in the metadata of restored signals."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(path=None):
    """Load a model file and its contract.

    Parameters
    ----------
    path : str or Path, optional
        A ``.keras`` file with its ``.json`` sidecar; ``None`` loads the bundled default.

    Returns
    -------
    model : keras.Model
        Full model, spectra in, restored spectra out.
    contract : ModelContract

    Raises
    ------
    FileNotFoundError
        The file or its sidecar is missing.
    ValueError
        The file is not a Keras model, or its channel count disagrees with the sidecar.
    """
    path = Path(default_model_path() if path is None else path)
    if not path.exists():
        raise FileNotFoundError(
            f"No model file at {path}. Pass model=None for the bundled default, or the path of a "
            "'.keras' file written by 'eelspecnet train'."
        )
    sidecar = _sidecar(path)
    if not sidecar.exists():
        raise FileNotFoundError(
            f"Model {path.name} has no contract file {sidecar.name} beside it; models written by "
            "'eelspecnet train' always have one (it records the channel count and ZLP channel)."
        )
    contract = ModelContract.from_json(sidecar)
    keras = _keras()
    _layers()
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises several types for a bad archive
        raise ValueError(f"{path} is not a loadable Keras model: {error}") from error
    if model.input_shape[-1] != contract.n_channels:
        raise ValueError(
            f"Model {path.name} takes {model.input_shape[-1]} channels but its contract says "
            f"{contract.n_channels}; the files do not belong together."
        )
    return model, contract


def predict_spectra(model, spectra, batch_size: int = 256) -> np.ndarray:
    """Run a full model over ``(n, channels)`` spectra in batches; returns float32 spectra.

    The call goes through a compiled inference function (no per-spectrum Python) and the last
    partial batch is padded to ``batch_size`` so only one graph is traced.
    """
    spectra = np.asarray(spectra, dtype=np.float32)
    n = spectra.shape[0]
    out = np.empty_like(spectra)
    infer, lock = _inference_function(model)
    for start in range(0, n, batch_size):
        chunk = spectra[start: start + batch_size]
        size = chunk.shape[0]
        if size < batch_size and n > batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - size, chunk.shape[1]), np.float32)])
        with lock:
            out[start: start + size] = np.asarray(infer(chunk))[:size]
    return out


_INFERENCE_CACHE = weakref.WeakKeyDictionary()
_INFERENCE_CACHE_LOCK = threading.Lock()


def _inference_function(model):
    """One traced inference function per model and a lock, dropped with the model.

    The lock lets one thread at a time run the network: TensorFlow already spreads one call
    over all CPU cores (or the GPU), so concurrent calls from dask's threads gain no speed and
    each would hold its own activations (~200 MiB per 256-spectrum batch on the CPU).
    """
    with _INFERENCE_CACHE_LOCK:
        if model not in _INFERENCE_CACHE:
            import tensorflow as tf

            model_ref = weakref.ref(model)
            function = tf.function(lambda x: model_ref()(x, training=False), reduce_retracing=True)
            _INFERENCE_CACHE[model] = (function, threading.Lock())
        return _INFERENCE_CACHE[model]
