"""The network: intensity compression, the fully convolutional U-Net, model files with their
contract, and batched inference."""

import json

import numpy as np
import pytest

from hyperspy_eelspecnet.model import (
    ModelContract,
    build_eelspecnet,
    build_unet_core,
    check_resampling,
    core_of,
    level_convolutions,
    load_model,
    predict_spectra,
    save_model,
)
from hyperspy_eelspecnet.model.layers import (
    IntensityCompression,
    IntensityExpansion,
    compress_intensity,
    expand_intensity,
)

#: A U-Net small enough to build, save and load in a fraction of a second: 2 levels, so its
#: lengths are multiples of 4.
TINY = dict(filters=(4, 4, 4), kernel_size=3, convs_per_level=1, bottleneck_dilations=(1,))
TINY_MULTIPLE = 4


def tiny_contract(**changes):
    """The contract of a network of any length divisible by 4, with ``changes``."""
    values = dict(n_channels=128, length_multiple=TINY_MULTIPLE, zlp_channel=20, name="tiny", version="test")
    return ModelContract(**{**values, **changes})


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    keras.utils.set_random_seed(0)
    return build_eelspecnet(build_unet_core(None, **TINY))


def positive_spectra(shape, seed=0):
    return np.abs(np.random.default_rng(seed).normal(0.01, 0.01, shape)).astype(np.float32)


# --------------------------------------------------------------------------- intensity scaling


def test_compression_and_expansion_are_inverses_and_weak_features_stay_visible():
    spectra = np.array([[0.0, 1e-6, 2.5e-4, 0.5, 1.0, -1e-5], [3e3, 1e4, 2.0, 0.0, 5e2, 7.0]], np.float32)
    z, peak = compress_intensity(spectra)
    np.testing.assert_array_equal(peak[:, 0], [1.0, 1e4])
    np.testing.assert_allclose(expand_intensity(z, peak), spectra, rtol=1e-4, atol=1e-9)
    # The peak maps to 1; a feature at 1/4000 of it keeps a sixth of the range (linear: 1/4000).
    assert z[0, 4] == pytest.approx(1.0) and z[1, 1] == pytest.approx(1.0)
    assert 0.15 < z[0, 2] < 0.2
    # Negative noise stays symmetric around zero.
    assert z[0, 5] == pytest.approx(-compress_intensity(np.float32([[1e-5, 1.0]]))[0][0, 0], rel=1e-5)


def test_keras_layers_match_their_numpy_twins():
    import keras

    spectra = np.abs(np.random.default_rng(1).normal(0, 1, (3, 40))).astype(np.float32) * [[1.0], [1e3], [1e-3]]
    spectra = spectra.astype(np.float32)
    compression, expansion = IntensityCompression(epsilon=1e-3), IntensityExpansion(epsilon=1e-3)
    z, peak = compression(spectra)
    z_numpy, peak_numpy = compress_intensity(spectra, epsilon=1e-3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(z), z_numpy, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(peak), peak_numpy, rtol=1e-6)
    back = keras.ops.convert_to_numpy(expansion([z, peak]))
    np.testing.assert_allclose(back, expand_intensity(z_numpy, peak_numpy, epsilon=1e-3), rtol=1e-4, atol=1e-9)
    assert IntensityCompression.from_config(compression.get_config()).epsilon == 1e-3


# --------------------------------------------------------------------------- the network


def test_a_fully_convolutional_core_takes_every_length_divisible_by_two_to_the_depth():
    core = build_unet_core(None, **TINY)
    assert core.input_shape == (None, None)
    for length in (64, 100, 256, 1028):
        z = positive_spectra((2, length), seed=length)
        out = np.asarray(core(z))
        assert out.shape == (2, length)
        assert (out > 0).all()  # softplus output: compressed intensities are positive


def test_a_fixed_length_core_must_fit_the_depth():
    assert build_unet_core(128, **TINY).input_shape == (None, 128)
    with pytest.raises(ValueError, match=r"n_channels=100 must be divisible by 2\*\*3=8"):
        build_unet_core(100, filters=(4, 4, 4, 4))


def test_levels_and_resampling_options():
    assert level_convolutions(2, 3) == [2, 2, 2]
    assert level_convolutions((6, 2, 1), 3) == [6, 2, 1]
    with pytest.raises(ValueError, match="or 2 numbers >= 1, one per level"):
        level_convolutions((2, 2, 2), 2)
    with pytest.raises(ValueError, match="one number >= 1 for every level"):
        level_convolutions((2, 0), 2)
    check_resampling("antialiased")
    with pytest.raises(ValueError, match="resampling must be one of"):
        check_resampling("bilinear")
    with pytest.raises(ValueError, match="resampling must be one of"):
        build_unet_core(None, filters=(4, 4), resampling="bilinear")
    names = {layer.name for layer in build_unet_core(None, **{**TINY, "resampling": "antialiased"}).layers}
    assert {"down0_lowpass", "down1_lowpass", "up0_double", "up1_double"} <= names


def test_full_model_restores_on_the_input_scale_and_holds_its_core(tiny_model):
    """The compression is relative to each spectrum's maximum: scaling a spectrum scales its
    restoration, so counts or unit area give the same shape."""
    assert tiny_model.input_shape == (None, None)
    spectra = positive_spectra((2, 96))
    restored = predict_spectra(tiny_model, spectra)
    scaled = predict_spectra(tiny_model, 1e4 * spectra)
    np.testing.assert_allclose(scaled, 1e4 * restored, rtol=1e-4)
    assert (restored >= 0).all()
    core = core_of(tiny_model)
    assert core.name == "eelspecnet_core"
    z, peak = compress_intensity(spectra)
    np.testing.assert_allclose(expand_intensity(np.asarray(core(z)), peak), restored, rtol=1e-4, atol=1e-9)
    with pytest.raises(ValueError, match="has no EELSpecNet core"):
        core_of(core)


def test_batched_inference_equals_one_call(tiny_model):
    spectra = positive_spectra((5, 64), seed=3)
    whole = predict_spectra(tiny_model, spectra, batch_size=5)
    assert whole.shape == (5, 64) and whole.dtype == np.float32
    np.testing.assert_allclose(predict_spectra(tiny_model, spectra, batch_size=2), whole, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(np.asarray(tiny_model(spectra)), whole, rtol=1e-5)  # eager: other rounding


# --------------------------------------------------------------------------- contract


def test_contract_json_round_trip(tmp_path):
    contract = tiny_contract(
        psf_fwhm_channels=(3.0, 40.0), counts_range=(1e4, 1e8), training={"seed": np.int64(3), "loss": np.float32(0.5)}
    )
    contract.to_json(tmp_path / "c.json")
    back = ModelContract.from_json(tmp_path / "c.json")
    assert back == contract
    assert back.psf_fwhm_channels == (3.0, 40.0) and back.counts_range == (1e4, 1e8)
    tiny_contract().to_json(tmp_path / "none.json")
    assert ModelContract.from_json(tmp_path / "none.json").counts_range is None


def test_contract_of_an_older_version_loads_without_its_retired_keys(tmp_path):
    values = {"n_channels": 2048, "zlp_channel": 400, "edge_channels": 16, "zlp_fwhm": 3.0,
              "min_channels_after_zlp": 256, "psf_fwhm_channels": [7, 40], "name": "old"}
    (tmp_path / "old.json").write_text(json.dumps(values))
    contract = ModelContract.from_json(tmp_path / "old.json")
    assert contract.name == "old" and contract.psf_fwhm_channels == (7, 40)
    # Without length_multiple it is of the fixed-window kind the restoration refuses.
    assert contract.length_multiple == 0


# --------------------------------------------------------------------------- model files


def test_save_and_load_round_trip(tmp_path, tiny_model):
    contract = tiny_contract(counts_range=(1e3, 1e7))
    path = save_model(tiny_model, tmp_path / "m.keras", contract)
    assert path.exists() and (tmp_path / "m.json").exists()
    loaded, loaded_contract = load_model(path)
    assert loaded_contract == contract
    for length in (64, 200):
        spectra = positive_spectra((3, length), seed=length)
        np.testing.assert_array_equal(predict_spectra(loaded, spectra), predict_spectra(tiny_model, spectra))


def test_save_refuses_other_suffixes_and_a_contract_of_another_length(tmp_path, tiny_model):
    with pytest.raises(ValueError, match=r"end in '\.keras'"):
        save_model(tiny_model, tmp_path / "m.h5", tiny_contract())
    fixed = build_eelspecnet(build_unet_core(128, **TINY))
    with pytest.raises(ValueError, match="takes 128 channels but the contract says 256"):
        save_model(fixed, tmp_path / "f.keras", tiny_contract(n_channels=256))


def test_load_errors_name_the_problem(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="No model file"):
        load_model(tmp_path / "absent.keras")
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"not a zip archive")
    with pytest.raises(FileNotFoundError, match="no contract file bogus.json"):
        load_model(bogus)
    tiny_contract().to_json(tmp_path / "bogus.json")
    with pytest.raises(ValueError, match="not a loadable Keras model"):
        load_model(bogus)


def test_load_refuses_a_model_and_contract_that_do_not_belong_together(tmp_path):
    fixed = build_eelspecnet(build_unet_core(128, **TINY))
    # A fixed 128-channel model (before 0.5.0) loads with its fixed-window contract ...
    path = save_model(fixed, tmp_path / "fixed.keras", tiny_contract(length_multiple=0))
    assert load_model(path)[1].length_multiple == 0
    # ... not with a contract that says it takes any length,
    tiny_contract(length_multiple=64).to_json(tmp_path / "fixed.json")
    with pytest.raises(ValueError, match="takes a fixed 128 channels but its contract says it takes any length"):
        load_model(path)
    # nor with one of another channel count.
    tiny_contract(length_multiple=0, n_channels=2048).to_json(tmp_path / "fixed.json")
    with pytest.raises(ValueError, match="takes 128 channels but its contract says 2048"):
        load_model(path)


def test_load_refuses_a_contract_whose_length_multiple_the_network_does_not_take(tmp_path, tiny_model):
    # The tiny network halves the length twice: it takes multiples of 4, not of 2.
    path = save_model(tiny_model, tmp_path / "m.keras", tiny_contract(length_multiple=2))
    refused = r"does not take spectra of 6 channels.*length_multiple 2 of its contract m\.json"
    with pytest.raises(ValueError, match=refused):
        load_model(path)
    tiny_contract(length_multiple=8).to_json(tmp_path / "m.json")  # stricter than needed: it works
    assert load_model(path)[1].length_multiple == 8


def test_load_takes_the_folder_written_by_train_or_finetune(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path / "out" / "eelspecnet.keras", tiny_contract())
    assert load_model(tmp_path / "out")[1] == tiny_contract()
    with pytest.raises(FileNotFoundError, match=r"folder .* holds no eelspecnet\.keras"):
        load_model(tmp_path)


def test_retracing_warnings_are_dropped_while_training_and_nothing_else(caplog):
    import logging

    from hyperspy_eelspecnet.model.backend import RETRACING_MESSAGE, retracing_warnings_dropped

    logger = logging.getLogger("tensorflow")
    retracing = f"5 out of the last 9 calls to <function f> {RETRACING_MESSAGE}. Tracing is expensive"
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        with retracing_warnings_dropped():
            logger.warning(retracing)
            logger.warning("a real problem")
        logger.warning(retracing)  # outside the block, TensorFlow's logging is as it was
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["a real problem", retracing]
    assert not logger.filters


def test_restoring_with_several_models_and_lengths_logs_no_retracing_warning(caplog):
    # One traced function per model, each traced again per input length: by design, and in a
    # session that restores with the bundled and a fine-tuned model it is no user's concern.
    import logging

    from hyperspy_eelspecnet.model.backend import RETRACING_MESSAGE

    models = [build_eelspecnet(build_unet_core(None, **TINY)) for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for length in (64, 128, 192, 256):
            for model in models:
                restored = predict_spectra(model, positive_spectra((2, length), seed=length), batch_size=2)
                assert restored.shape == (2, length) and np.isfinite(restored).all()
    assert not [r for r in caplog.records if RETRACING_MESSAGE in r.getMessage()]
    assert not logging.getLogger("tensorflow").filters
