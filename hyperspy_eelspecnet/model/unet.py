"""The EELSpecNet network: a compact 1-D U-shaped CNN in Keras 3.

Keras is imported when a network is built, not when this module is imported.
"""

from __future__ import annotations

import numpy as np

from .backend import import_keras
from .contract import DEFAULT_EPSILON

__all__ = ["RESAMPLINGS", "check_resampling", "level_convolutions", "build_unet_core", "build_eelspecnet", "core_of"]

#: How :func:`build_unet_core`'s levels change length (see its ``resampling``).
RESAMPLINGS = ("strided", "antialiased")


def check_resampling(resampling: str) -> None:
    """Raise ``ValueError`` unless ``resampling`` is one of :data:`RESAMPLINGS`."""
    if resampling not in RESAMPLINGS:
        raise ValueError(f"resampling must be one of {RESAMPLINGS}; got {resampling!r}.")


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


def build_unet_core(
    n_channels: int | None = 2048,
    filters=(16, 24, 32, 48, 64, 96, 128),
    kernel_size: int = 7,
    convs_per_level: int = 2,
    bottleneck_dilations=(1, 2, 4),
    resampling: str = "strided",
    name: str = "eelspecnet_core",
):
    """The U-shaped network on compressed intensities: ``z (batch, n) -> z_out (batch, n)``.

    Each encoder level applies ``convs_per_level`` convolutions with ``filters[level]`` filters
    and halves the length; the bottleneck stacks dilated convolutions (a receptive field wide
    enough for the ZLP's Lorentzian tails); each decoder level doubles the length,
    concatenates the encoder's output of the same length (skip connection) and convolves
    again. The last layer is a 1x1 convolution with softplus, so ``z_out > 0``.

    Parameters
    ----------
    n_channels : int or None
        Spectrum length; ``None`` builds a network for any length divisible by
        ``2 ** (len(filters) - 1)`` (it is fully convolutional).
    filters : sequence of int
        Filters per level, from the full-resolution level down to the bottleneck.
    kernel_size : int
        Convolution kernel length.
    convs_per_level : int or sequence of int
        Convolutions per encoder and decoder level: one number for every level, or one per
        level from the full-resolution one down (``len(filters) - 1`` numbers, each >= 1).
    bottleneck_dilations : sequence of int
        Dilation rates of the bottleneck convolutions.
    resampling : {"strided", "antialiased"}
        How the levels change length. ``"strided"``: a stride-2 convolution of kernel 2 down,
        a transposed convolution of kernel 2 up. Both treat the even and the odd channel of
        each pair differently, so the network is not shift-equivariant: the same feature
        comes back differently shaped depending on where it sits modulo ``2 ** depth``
        channels. ``"antialiased"`` low-passes before every length change: a 3-channel box
        average before the stride-2 convolution down, and up a nearest-neighbour doubling
        smoothed by the same box average, then a 1x1 convolution (the shift-invariance fix of
        blurred pooling, Zhang, ICML 2019).
    name : str
    """
    keras = import_keras()

    check_resampling(resampling)
    layers = keras.layers
    depth = len(filters) - 1
    if n_channels is not None and n_channels % (2**depth):
        raise ValueError(
            f"n_channels={n_channels} must be divisible by 2**{depth}={2 ** depth} for a U-Net "
            f"with {len(filters)} levels."
        )
    convs = level_convolutions(convs_per_level, depth)

    def conv(x, n_filters, dilation=1, label=None):
        return layers.Conv1D(
            n_filters, kernel_size, padding="same", dilation_rate=dilation, activation="relu", name=label,
        )(x)

    antialiased = resampling == "antialiased"
    z_in = keras.Input((n_channels,), name="z")
    x = layers.Reshape((-1, 1))(z_in)
    skips = []
    for level, n_filters in enumerate(filters[:-1]):
        for i in range(convs[level]):
            x = conv(x, n_filters, label=f"enc{level}_conv{i}")
        skips.append(x)
        if antialiased:
            x = layers.AveragePooling1D(3, strides=1, padding="same", name=f"down{level}_lowpass")(x)
        x = layers.Conv1D(filters[level + 1], 2, strides=2, name=f"down{level}")(x)
    for i, dilation in enumerate(bottleneck_dilations):
        x = conv(x, filters[-1], dilation, label=f"bottleneck{i}")
    for level in reversed(range(depth)):
        if antialiased:
            x = layers.UpSampling1D(2, name=f"up{level}_double")(x)
            x = layers.AveragePooling1D(3, strides=1, padding="same", name=f"up{level}_lowpass")(x)
            x = layers.Conv1D(filters[level], 1, name=f"up{level}")(x)
        else:
            x = layers.Conv1DTranspose(filters[level], 2, strides=2, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        for i in range(convs[level]):
            x = conv(x, filters[level], label=f"dec{level}_conv{i}")
    # Softplus, not ReLU: non-negative like it, but a ReLU output can die early in training
    # (seen: the whole spectrum stuck at zero) while softplus keeps a gradient everywhere.
    x = layers.Conv1D(1, 1, activation="softplus", name="z_out")(x)
    z_out = layers.Reshape((-1,))(x) if n_channels is None else layers.Reshape((n_channels,))(x)
    return keras.Model(z_in, z_out, name=name)


def build_eelspecnet(core, epsilon: float = DEFAULT_EPSILON, name: str = "eelspecnet"):
    """Wrap a core network into the full model ``spectra -> restored spectra`` (same scale)."""
    keras = import_keras()

    from .layers import IntensityCompression, IntensityExpansion

    spectra = keras.Input((core.input_shape[-1],), name="spectra")
    z, peak = IntensityCompression(epsilon=epsilon, name="compress")(spectra)
    restored = IntensityExpansion(epsilon=epsilon, name="expand")([core(z), peak])
    return keras.Model(spectra, restored, name=name)


def core_of(model):
    """The core (compressed-domain) sub-model of a full EELSpecNet model."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.name.endswith("core"):
            return layer
    raise ValueError(f"Model {model.name!r} has no EELSpecNet core sub-model.")
