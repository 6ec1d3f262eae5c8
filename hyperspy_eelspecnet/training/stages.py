"""Training in stages: a later stage starts from the best weights of an earlier one.

A stage may keep the earlier network's shape, add convolutions to a level (they start as the
identity) or make a strided network anti-aliased (each transposed up-convolution becomes the
mean of its two taps). :func:`check_stage_continues` is the rule, :func:`transfer_weights` the
weight surgery that carries the earlier network over.
"""

from __future__ import annotations

import re

import numpy as np

from ..model import level_convolutions
from ..model.backend import import_keras

__all__ = ["check_stage_continues", "transfer_weights", "identity_convolution", "strided_up_as_pointwise"]

#: Names of the convolutions inside an encoder or decoder level (``enc0_conv2``, ...).
LEVEL_CONVOLUTION = re.compile(r"(enc|dec)\d+_conv\d+")


def check_stage_continues(earlier, config) -> None:
    """Raise ``ValueError`` unless ``config``'s network can start from ``earlier``'s weights.

    It can when the two ``TrainConfig`` build the same network, or when ``config`` only adds
    convolutions to a level or anti-aliases a strided network (what :func:`transfer_weights`
    starts as the earlier network).
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
        different.append("resampling")  # only strided -> antialiased converts
    if different or earlier.generator_configs[0].n_channels != config.generator_configs[0].n_channels:
        raise ValueError(
            f"{config.initialise_from} builds another network ({', '.join(different) or 'n_channels'} "
            "differ); a later stage must keep the network's shape."
        )


def transfer_weights(source, target) -> list[str]:
    """Copy the weights of every layer of ``source`` into the same-named layer of ``target``.

    A strided network's kernel-2 transposed up-convolution ``up{level}`` becomes an
    anti-aliased network's 1x1 convolution of the same name (:func:`strided_up_as_pointwise`);
    the down convolutions keep their shapes and weights. A convolution the target adds inside
    a level (more ``convs_per_level``: ``enc{level}_conv{i}`` or ``dec{level}_conv{i}`` with as
    many filters in as out) starts as the identity (:func:`identity_convolution`): it follows a
    ReLU, so it passes the non-negative input on unchanged and the deeper network starts as
    the source. Returns the names of the target's layers with weights that ``source`` does not
    have. Raises ``ValueError`` if a shared layer's weights differ in shape.
    """
    keras = import_keras()

    shared = {layer.name: layer for layer in source.layers if layer.weights}
    added = []
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name not in shared:
            added.append(layer.name)
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
    return added


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
    channel's parity, and the parity-dependent part (the aliasing) is dropped.

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
