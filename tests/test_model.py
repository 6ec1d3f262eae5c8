"""Network builder, intensity compression, saving with a contract and safe loading."""

import json

import numpy as np
import pytest

from hyperspy_eelspecnet.model import (
    ModelContract,
    build_eelspecnet,
    build_unet_core,
    compress_intensity,
    expand_intensity,
    identity_convolution,
    load_model,
    predict_spectra,
    save_model,
    strided_up_as_pointwise,
    transfer_weights,
)


def test_compression_round_trip_and_weak_features_are_visible():
    spectra = np.array([[0.0, 1e-6, 2.5e-4, 0.5, 1.0, -1e-5]], np.float32)
    z, peak = compress_intensity(spectra)
    np.testing.assert_allclose(expand_intensity(z, peak), spectra, rtol=1e-4, atol=1e-9)
    # A feature at 1/4000 of the peak keeps a sixth of the compressed range (linear: 1/4000).
    assert 0.15 < z[0, 2] < 0.2 and z[0, 4] == pytest.approx(1.0)


def test_unet_shape_non_negative_output_and_size():
    core = build_unet_core(256, filters=(4, 8, 8), kernel_size=5)
    model = build_eelspecnet(core)
    x = np.random.default_rng(0).normal(0.01, 0.01, (3, 256)).astype(np.float32)
    y = predict_spectra(model, x, batch_size=2)
    assert y.shape == (3, 256) and (y >= 0).all() and np.isfinite(y).all()


def test_layers_of_the_compressed_model_match_numpy_twins():
    core = build_unet_core(128, filters=(4, 4))
    model = build_eelspecnet(core)
    x = np.abs(np.random.default_rng(1).normal(0, 1, (2, 128))).astype(np.float32)
    z, peak = compress_intensity(x)
    expected = expand_intensity(core.predict(z, verbose=0), peak)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-7)


def test_zlp_context_starts_as_the_plain_network_and_learns_from_the_zlp_shape(tmp_path):
    plain = build_unet_core(128, filters=(4, 4, 8))
    conditioned = build_unet_core(128, filters=(4, 4, 8), zlp_context=8, zlp_channel=20)
    assert transfer_weights(plain, conditioned) == ["zlp_shape", "zlp_shape_to_dec1", "zlp_shape_to_dec0"]
    z = np.abs(np.random.default_rng(3).normal(0, 0.3, (3, 128))).astype(np.float32)
    # Its projections start at zero: the same output as the network it continues.
    np.testing.assert_array_equal(conditioned.predict(z, verbose=0), plain.predict(z, verbose=0))
    # The ZLP-shape vector reads the ZLP window (channels 12-28) and nothing else.
    import keras

    shape_vector = keras.Model(conditioned.input, conditioned.get_layer("zlp_shape").output)
    changed_zlp, changed_outside = z.copy(), z.copy()
    changed_zlp[:, 15:25] += 0.5
    changed_outside[:, np.r_[0:12, 29:128]] += 0.5
    vector = shape_vector.predict(z, verbose=0)
    assert np.abs(shape_vector.predict(changed_zlp, verbose=0) - vector).max() > 1e-2
    np.testing.assert_array_equal(shape_vector.predict(changed_outside, verbose=0), vector)
    # Once its projections are trained, a change of the ZLP's shape changes the output far from it.
    for name in ("zlp_shape_to_dec1", "zlp_shape_to_dec0"):
        layer = conditioned.get_layer(name)
        layer.set_weights([np.full((64, 4), 0.5, np.float32), np.zeros(4, np.float32)])
    far = slice(100, 128)
    change = conditioned.predict(changed_zlp, verbose=0) - conditioned.predict(z, verbose=0)
    plain_change = plain.predict(changed_zlp, verbose=0) - plain.predict(z, verbose=0)
    assert np.abs(change[:, far] - plain_change[:, far]).max() > 1e-3
    # It saves and loads like the plain network.
    path = save_model(build_eelspecnet(conditioned), tmp_path / "c.keras", ModelContract(n_channels=128, zlp_channel=20))
    np.testing.assert_allclose(load_model(path)[0].predict(z, verbose=0), build_eelspecnet(conditioned).predict(z, verbose=0), rtol=1e-6)


def test_zlp_gain_starts_as_the_identity_and_scales_the_decoder_by_the_zlp_shape(tmp_path):
    plain = build_unet_core(128, filters=(4, 4, 8))
    gained = build_unet_core(128, filters=(4, 4, 8), zlp_context=8, zlp_channel=20, zlp_gain=True)
    assert transfer_weights(plain, gained) == [
        "zlp_shape", "zlp_shape_to_dec1", "zlp_shape_gain_dec1", "zlp_shape_to_dec0", "zlp_shape_gain_dec0"
    ]
    z = np.abs(np.random.default_rng(4).normal(0, 0.3, (3, 128))).astype(np.float32)
    np.testing.assert_array_equal(gained.predict(z, verbose=0), plain.predict(z, verbose=0))
    # A trained gain multiplies the full-resolution decoder's features: zero switches them off,
    # leaving only the last layer's bias (the same output for every spectrum).
    layer = gained.get_layer("zlp_shape_gain_dec0")
    layer.set_weights([np.zeros((64, 4), np.float32), np.zeros(4, np.float32)])
    out = gained.predict(z, verbose=0)
    np.testing.assert_allclose(out, np.broadcast_to(out[:1, :1], out.shape), rtol=1e-6)
    assert np.abs(plain.predict(z, verbose=0) - out).max() > 1e-3
    path = save_model(build_eelspecnet(gained), tmp_path / "g.keras", ModelContract(n_channels=128, zlp_channel=20))
    np.testing.assert_allclose(load_model(path)[0].predict(z, verbose=0), build_eelspecnet(gained).predict(z, verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match="zlp_gain needs zlp_context"):
        build_unet_core(128, filters=(4, 4), zlp_gain=True)


def test_own_zlp_richardson_lucy_layer_matches_the_numpy_deconvolution():
    from hyperspy_eelspecnet.model import _layers
    from hyperspy_eelspecnet.richardson_lucy import richardson_lucy

    channels = np.arange(256)
    rng = np.random.default_rng(5)
    truth = 1 / (1 + ((channels - 40) / 1.5) ** 2) + 3e-3 / (1 + ((channels - 150) / 3) ** 2)
    psf = np.exp(-0.5 * (np.arange(-12, 13) / 3.0) ** 2)
    spectra = np.convolve(truth, psf / psf.sum(), "same")[None] * rng.uniform(0.5, 2, (3, 1))
    spectra = np.clip(spectra + rng.normal(0, 1e-5, spectra.shape), 0, None).astype(np.float32)
    z, peak = compress_intensity(spectra)
    layer = _layers()[2](zlp_channel=40, iterations=5, psf_half_width=16)
    restored = expand_intensity(np.asarray(layer(z)), peak)
    observed = spectra / peak
    expected = richardson_lucy(observed, observed[:, 24:57], 5, origin=16) * peak
    np.testing.assert_allclose(restored, expected, rtol=2e-3, atol=1e-6 * peak.max())
    assert restored.min() >= 0
    # It deblurs: the feature at channel 150 comes out narrower than it went in.
    assert (restored[:, 150] / restored[:, 144]).min() > 1.2 * (spectra[:, 150] / spectra[:, 144]).max()


def test_rl_input_starts_as_the_plain_network_and_feeds_the_first_level(tmp_path):
    plain = build_unet_core(128, filters=(4, 4, 8))
    with_rl = build_unet_core(128, filters=(4, 4, 8), zlp_channel=20, rl_iterations=3, rl_psf_half_width=8)
    assert transfer_weights(plain, with_rl) == ["rl_to_enc0"]
    z = np.abs(np.random.default_rng(6).normal(0, 0.3, (3, 128))).astype(np.float32)
    np.testing.assert_array_equal(with_rl.predict(z, verbose=0), plain.predict(z, verbose=0))
    # Once its convolution is trained, the estimate changes the output.
    with_rl.get_layer("rl_to_enc0").set_weights([np.full((7, 1, 4), 0.1, np.float32)])
    assert np.abs(with_rl.predict(z, verbose=0) - plain.predict(z, verbose=0)).max() > 1e-3
    path = save_model(build_eelspecnet(with_rl), tmp_path / "r.keras", ModelContract(n_channels=128, zlp_channel=20))
    np.testing.assert_allclose(load_model(path)[0].predict(z, verbose=0), build_eelspecnet(with_rl).predict(z, verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match="rl_iterations needs a zlp_channel"):
        build_unet_core(128, filters=(4, 4), rl_iterations=3)
    with pytest.raises(ValueError, match="zlp_channel=4"):
        build_unet_core(128, filters=(4, 4), zlp_channel=4, rl_iterations=3, rl_psf_half_width=8)


def test_added_level_convolutions_start_as_the_identity(tmp_path):
    shallow = build_unet_core(128, filters=(4, 6, 8), resampling="antialiased")
    deeper = build_unet_core(128, filters=(4, 6, 8), convs_per_level=(4, 3), resampling="antialiased")
    assert transfer_weights(shallow, deeper) == [
        "enc0_conv2", "enc0_conv3", "enc1_conv2", "dec1_conv2", "dec0_conv2", "dec0_conv3"
    ]
    kernel, bias = deeper.get_layer("dec0_conv3").get_weights()
    assert kernel.shape == (7, 4, 4)
    np.testing.assert_array_equal(kernel[3], np.eye(4))
    assert not kernel[np.r_[0:3, 4:7]].any() and not bias.any()
    z = np.abs(np.random.default_rng(8).normal(0, 0.3, (3, 128))).astype(np.float32)
    np.testing.assert_allclose(deeper.predict(z, verbose=0), shallow.predict(z, verbose=0), rtol=1e-6, atol=1e-7)
    # Once trained, an added convolution changes the output.
    deeper.get_layer("enc0_conv2").set_weights([np.full((7, 4, 4), 0.1, np.float32), np.zeros(4, np.float32)])
    assert np.abs(deeper.predict(z, verbose=0) - shallow.predict(z, verbose=0)).max() > 1e-3
    path = save_model(build_eelspecnet(deeper), tmp_path / "d.keras", ModelContract(n_channels=128, zlp_channel=20))
    np.testing.assert_allclose(
        load_model(path)[0].predict(z, verbose=0), build_eelspecnet(deeper).predict(z, verbose=0), rtol=1e-6
    )
    with pytest.raises(ValueError, match="or 2 numbers >= 1, one per level"):
        build_unet_core(128, filters=(4, 6, 8), convs_per_level=(2, 2, 2))
    with pytest.raises(ValueError, match="one number >= 1 for every level"):
        build_unet_core(128, filters=(4, 6, 8), convs_per_level=(2, 0))
    with pytest.raises(ValueError, match="odd number of taps and as many filters in as out"):
        identity_convolution(np.zeros((7, 1, 4)), np.zeros(4))


def test_zlp_context_needs_a_zlp_channel_inside_the_window_and_transfer_checks_shapes():
    with pytest.raises(ValueError, match="zlp_channel"):
        build_unet_core(128, filters=(4, 4), zlp_context=8)
    with pytest.raises(ValueError, match="zlp_channel=4"):
        build_unet_core(128, filters=(4, 4), zlp_context=8, zlp_channel=4)
    with pytest.raises(ValueError, match="other weight shapes"):
        transfer_weights(build_unet_core(128, filters=(4, 4)), build_unet_core(128, filters=(4, 8)))
    with pytest.raises(ValueError, match="lacks"):
        transfer_weights(build_unet_core(128, filters=(4, 4), zlp_context=8, zlp_channel=20), build_unet_core(128, filters=(4, 4)))


def test_strided_up_convolution_becomes_the_pointwise_one_that_treats_both_parities_alike():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 16, 5)).astype("float32")
    transposed = keras.layers.Conv1DTranspose(4, 2, strides=2)
    strided_out = keras.ops.convert_to_numpy(transposed(x))
    kernel, bias = strided_up_as_pointwise(*transposed.get_weights())
    assert kernel.shape == (1, 5, 4)
    pointwise = keras.layers.Conv1D(4, 1)
    pointwise.build((None, 32, 5))
    pointwise.set_weights([kernel, bias])
    doubled_out = keras.ops.convert_to_numpy(pointwise(np.repeat(x, 2, axis=1)))
    # Each even/odd output pair of the transposed convolution averages to the pointwise output
    # after nearest doubling; the pairs differ (the aliasing), the pointwise pair does not.
    pair_mean = strided_out.reshape(2, 16, 2, 4).mean(axis=2)
    np.testing.assert_allclose(doubled_out[:, ::2], pair_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(doubled_out[:, 1::2], pair_mean, rtol=1e-5, atol=1e-6)
    assert np.abs(strided_out[:, ::2] - strided_out[:, 1::2]).mean() > 0.05


def test_antialiased_resampling_makes_the_network_nearly_shift_equivariant(tmp_path):
    import keras

    channels = np.arange(128)
    # One smooth feature at 8 consecutive positions (one period of a 3-level network).
    z = np.stack([0.2 + 0.5 * np.exp(-0.5 * ((channels - 60 - s) / 2.0) ** 2) for s in range(8)]).astype(np.float32)
    spread = {}
    for resampling in ("strided", "antialiased"):
        keras.utils.set_random_seed(0)
        core = build_unet_core(128, filters=(4, 8, 8, 8), kernel_size=5, resampling=resampling)
        out = core.predict(z, verbose=0)
        # Shifted back, an equivariant network's outputs coincide (away from the ends).
        back = np.stack([np.roll(row, -s) for s, row in enumerate(out)])[:, 30:90]
        spread[resampling] = np.std(back - back.mean(axis=0)) / np.std(back)
    # Measured with this seed: 0.036 and 0.0055.
    assert spread["strided"] > 0.02 and spread["antialiased"] < spread["strided"] / 4
    # Built from Keras layers only: saved and loaded in safe mode like the strided network.
    path = save_model(build_eelspecnet(core), tmp_path / "m.keras", ModelContract(n_channels=128))
    x = np.abs(np.random.default_rng(4).normal(0, 1, (2, 128))).astype(np.float32)
    np.testing.assert_allclose(load_model(path)[0].predict(x, verbose=0), predict_spectra(build_eelspecnet(core), x), rtol=1e-5)
    with pytest.raises(ValueError, match="resampling must be one of"):
        build_unet_core(128, filters=(4, 4), resampling="bilinear")
    # antialias_from_level: the finer levels keep the strided resampling.
    partial = build_unet_core(128, filters=(4, 8, 8, 8), kernel_size=5, resampling="antialiased", antialias_from_level=2)
    names = {layer.name for layer in partial.layers}
    assert {"down2_lowpass", "up2_double"} <= names and not {"down1_lowpass", "up1_double"} & names
    assert type(partial.get_layer("up1")).__name__ == "Conv1DTranspose"


def test_channel_count_must_fit_the_depth():
    with pytest.raises(ValueError, match="divisible"):
        build_unet_core(100, filters=(4, 8, 8, 8))


def test_save_and_load_safe_mode_with_contract(tmp_path):
    core = build_unet_core(128, filters=(4, 4))
    model = build_eelspecnet(core)
    path = save_model(model, tmp_path / "m.keras", ModelContract(n_channels=128, zlp_channel=20))
    loaded, contract = load_model(path)
    assert contract.n_channels == 128 and contract.zlp_channel == 20
    x = np.abs(np.random.default_rng(2).normal(0, 1, (2, 128))).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file"):
        load_model(tmp_path / "absent.keras")
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"not a zip archive")
    ModelContract(n_channels=128).to_json(tmp_path / "bogus.json")
    with pytest.raises(ValueError, match="not a loadable Keras model"):
        load_model(bogus)
    core = build_unet_core(128, filters=(4, 4))
    path = save_model(build_eelspecnet(core), tmp_path / "m.keras", ModelContract(n_channels=128))
    contract = json.loads((tmp_path / "m.json").read_text())
    contract["n_channels"] = 2048
    (tmp_path / "m.json").write_text(json.dumps(contract))
    with pytest.raises(ValueError, match="128 channels but its contract says 2048"):
        load_model(path)
    (tmp_path / "m.json").unlink()
    with pytest.raises(FileNotFoundError, match="no contract file"):
        load_model(path)


@pytest.mark.parametrize("distance", [70, 150])
def test_bundled_model_keeps_a_feature_on_the_zlp_tail(default_model, distance):
    # A 12-channel Lorentzian at 1/350 of the ZLP, on the tail of a 13-channel asymmetric
    # pseudo-Voigt PSF with a 30 % Lorentzian fraction (the demo nanowire's instrument), 1e7
    # counts. Model 0.1.0 smeared the 70-channel one into the tail (no peak within 12 channels
    # of it), model 0.3.0 put the 150-channel one 2 channels low; the restored maximum must sit
    # within one channel of the true centre.
    from scipy.signal import fftconvolve

    channels = np.arange(2048.0)
    centre = 400 + distance
    truth = np.exp(-0.5 * ((channels - 400) / (3 / 2.3548)) ** 2) + (1 / 350) * 36 / ((channels - centre) ** 2 + 36)
    # The PSF's zero offset at index 1023: fftconvolve's "same" output then keeps every channel
    # where it was (at index 1024 it would move the spectrum one channel up, off the ZLP channel
    # of the model's contract, as this test did before).
    offsets = np.arange(-1023, 1025.0)
    half = np.where(offsets > 0, 13 * 1.3 / 2.3, 13 / 2.3)
    psf = 0.3 / (1 + (offsets / half) ** 2) + 0.7 * np.exp(-np.log(2) * (offsets / half) ** 2)
    blurred = np.clip(fftconvolve(truth, psf / psf.sum(), mode="same"), 0, None)
    assert blurred.argmax() == 400
    counts = np.random.default_rng(distance).poisson(blurred / blurred.sum() * 1e7).astype(np.float32)

    model, _ = load_model(default_model)
    restored = predict_spectra(model, counts[None], batch_size=1)[0]

    window = slice(centre - 12, centre + 13)
    peak = window.start + int(np.argmax(restored[window]))
    assert window.start < peak < window.stop - 1  # a maximum inside, not a slope
    assert abs(peak - centre) <= 1
