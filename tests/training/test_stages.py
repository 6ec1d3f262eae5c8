"""Training stages: which networks may continue which, and the weight surgery that carries
an earlier stage's network over (no training here: networks built and compared directly)."""

import numpy as np
import pytest

from hyperspy_eelspecnet.model import build_unet_core
from hyperspy_eelspecnet.training.stages import (
    check_stage_continues,
    identity_convolution,
    strided_up_as_pointwise,
    transfer_weights,
)
from hyperspy_eelspecnet.training.trainer import MixtureComponent, TrainConfig

SHAPE = dict(filters=(4, 6, 8), kernel_size=5, convs_per_level=1, bottleneck_dilations=(1,))


def core(**changes):
    """A tiny fully convolutional core with random (seeded) weights, biases included."""
    shape = {**SHAPE, **changes}
    network = build_unet_core(None, shape["filters"], shape["kernel_size"], shape["convs_per_level"],
                              shape["bottleneck_dilations"], resampling=shape.get("resampling", "strided"))
    rng = np.random.default_rng(len(network.weights))
    network.set_weights([rng.normal(0.0, 0.3, w.shape).astype("float32") for w in network.get_weights()])
    return network


def spectra_z(n=3, length=256, seed=0):
    """Compressed-intensity-like input: values in [0, 1]."""
    return np.random.default_rng(seed).random((n, length)).astype("float32")


def config(**changes):
    return TrainConfig(**{**SHAPE, **changes})


@pytest.mark.parametrize(
    "later",
    [{}, {"resampling": "antialiased"}, {"convs_per_level": (2, 1)}, {"convs_per_level": 3, "resampling": "antialiased"},
     {"learning_rate": 1e-5, "epochs": 3, "mixture": [MixtureComponent("instrument")]}],
)
def test_a_stage_may_keep_the_shape_add_convolutions_or_anti_alias(later):
    check_stage_continues(config(), config(**later))


@pytest.mark.parametrize(
    "earlier, later, named",
    [
        ({}, {"kernel_size": 3}, "kernel_size"),
        ({}, {"filters": (4, 6, 10)}, "filters"),
        ({}, {"bottleneck_dilations": (1, 2)}, "bottleneck_dilations"),
        ({"resampling": "antialiased"}, {"resampling": "strided"}, "resampling"),
        ({"convs_per_level": (2, 1)}, {"convs_per_level": (1, 2)}, "convs_per_level"),
        ({}, {"mixture": [MixtureComponent("reference", 1.0, {"n_channels": 1024})]}, "n_channels"),
    ],
)
def test_a_stage_must_keep_the_network_shape(earlier, later, named):
    with pytest.raises(ValueError, match=named):
        check_stage_continues(config(**earlier), config(**later))


def test_identity_convolution_passes_its_input():
    import keras

    layer = keras.layers.Conv1D(6, 5, padding="same")
    x = spectra_z(2, 40)[..., None].repeat(6, axis=-1) * np.arange(1, 7, dtype="float32")
    layer.build(x.shape)
    kernel, bias = identity_convolution(*layer.get_weights())
    assert kernel.shape == (5, 6, 6) and not bias.any()
    layer.set_weights([kernel, bias])
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    with pytest.raises(ValueError, match="odd number of taps"):
        identity_convolution(np.zeros((4, 6, 6)), np.zeros(6))
    with pytest.raises(ValueError, match="as many filters"):
        identity_convolution(np.zeros((5, 3, 6)), np.zeros(6))


def test_strided_up_as_pointwise_is_the_parity_mean_of_the_transposed_convolution():
    import keras

    rng = np.random.default_rng(2)
    x = rng.random((2, 16, 8)).astype("float32")
    transposed = keras.layers.Conv1DTranspose(4, 2, strides=2)
    transposed.build(x.shape)
    transposed.set_weights([rng.normal(size=(2, 4, 8)).astype("float32"), rng.normal(size=4).astype("float32")])
    pointwise = keras.layers.Conv1D(4, 1)
    pointwise.build(x.shape)
    kernel, bias = strided_up_as_pointwise(*transposed.get_weights())
    assert kernel.shape == (1, 8, 4)
    pointwise.set_weights([kernel, bias])
    # Each pair of the transposed convolution's outputs (even, odd channel) averages to the
    # pointwise convolution of their common input.
    pairs = np.asarray(transposed(x)).reshape(2, 16, 2, 4).mean(axis=2)
    np.testing.assert_allclose(np.asarray(pointwise(x)), pairs, rtol=1e-5, atol=1e-5)


def test_added_convolutions_start_as_the_identity_and_the_network_gives_the_earlier_output():
    source, target = core(), core(convs_per_level=(3, 2))
    added = transfer_weights(source, target)
    assert sorted(added) == ["dec0_conv1", "dec0_conv2", "dec1_conv1", "enc0_conv1", "enc0_conv2", "enc1_conv1"]
    for layer in (layer for layer in source.layers if layer.weights):
        for old, new in zip(layer.get_weights(), target.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(new, old)
    z = spectra_z()
    np.testing.assert_allclose(np.asarray(target(z)), np.asarray(source(z)), rtol=1e-5, atol=1e-6)


def test_an_antialiased_network_takes_the_strided_weights():
    source, target = core(), core(resampling="antialiased")
    assert transfer_weights(source, target) == []
    for layer in target.layers:
        if not layer.weights:
            continue
        old = source.get_layer(layer.name).get_weights()
        if layer.name.startswith("up"):  # kernel-2 transposed convolution -> 1x1 convolution
            assert old[0].shape == (2, layer.get_weights()[0].shape[2], layer.get_weights()[0].shape[1])
            old = strided_up_as_pointwise(*old)
        for new, expected in zip(layer.get_weights(), old):
            np.testing.assert_allclose(new, expected, rtol=1e-6)
    # Down the same weights, up the parity mean: an output close to the strided network's
    # for a smooth input (they differ by the aliasing the anti-aliased network drops).
    z = np.exp(-0.5 * ((np.arange(256) - 80) / 20.0) ** 2).astype("float32")[None]
    strided, smooth = np.asarray(source(z)), np.asarray(target(z))
    assert np.abs(smooth - strided).mean() < 0.1 * np.abs(strided).mean()  # 0.02 here; untransferred 0.55


def test_transfer_refuses_networks_of_another_shape():
    with pytest.raises(ValueError, match="other weight shapes"):
        transfer_weights(core(), core(filters=(4, 6, 10)))
    with pytest.raises(ValueError, match="lacks the source's layers"):
        transfer_weights(core(filters=(4, 6, 8, 8)), core())
