"""The trainer: a tiny model trained for a few steps on the CPU learns, saves, resumes."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from hyperspy_eelspecnet.cli import main as cli_main
from hyperspy_eelspecnet.model import compress_intensity, core_of, load_model, predict_spectra, strided_up_as_pointwise
from hyperspy_eelspecnet.training import generate_batch, preset
from hyperspy_eelspecnet.training.trainer import (
    ABSOLUTE_ERROR_SMOOTHING,
    CompressedSpectrumLoss,
    MixtureComponent,
    TrainConfig,
    _initial_stage_lines,
    check_stage_continues,
    feature_core_weights,
    make_training_batch,
    spectrum_noise_weights,
    train,
)

REPOSITORY = Path(__file__).resolve().parents[2]

TINY = dict(
    filters=(8, 8, 8, 8), kernel_size=5, convs_per_level=1, bottleneck_dilations=(1,),
    batch_size=16, steps_per_epoch=15, validation_size=64, learning_rate=3e-3, warmup_steps=5,
)


def test_training_batches_pack_compressed_truth_and_mask():
    configs = [preset("reference"), preset("instrument")]
    z, target = make_training_batch(configs, [0.5, 0.5], 32, np.random.SeedSequence(0), 1e-4)
    assert z.shape == (32, 2048) and target.shape == (32, 2048, 2)
    assert np.isfinite(z).all() and (z.max(axis=1) == pytest.approx(1.0))
    assert set(np.unique(target[..., 1])) <= {0.0, 1.0}
    z_again, _ = make_training_batch(configs, [0.5, 0.5], 32, np.random.SeedSequence(0), 1e-4)
    np.testing.assert_array_equal(z, z_again)



def test_feature_weight_raises_the_loss_weight_at_true_feature_cores_only():
    config = preset("reference")
    z, target = make_training_batch([config], [1.0], 8, np.random.SeedSequence(3), 1e-4)
    z_w, target_w = make_training_batch([config], [1.0], 8, np.random.SeedSequence(3), 1e-4, feature_weight=9.0)
    np.testing.assert_array_equal(z, z_w)  # same spectra, only the weights differ
    np.testing.assert_array_equal(target[..., 0], target_w[..., 0])
    weights = target_w[..., 1]
    assert set(np.unique(weights)) <= {0.0, 1.0, 10.0} and (weights == 10.0).any()
    batch = generate_batch(config, 8, np.random.SeedSequence(3).spawn(1)[0])
    cores = feature_core_weights(batch, 9.0)
    centres, fwhms = batch.parameters["peak_centres"], batch.parameters["peak_fwhms"]
    i, j = np.argwhere(np.isfinite(centres))[0]
    centre, half = centres[i, j], np.clip(fwhms[i, j], 5.0, 20.0)
    assert cores[i, int(np.ceil(centre - half)): int(np.floor(centre + half)) + 1].min() == 10.0
    # Far from every feature of a spectrum the weight stays 1.
    far = np.all(np.abs(np.arange(2048)[:, None] - np.nan_to_num(centres[i], nan=-1e9)) > 20.5, axis=1)
    assert far.any() and (cores[i, far] == 1.0).all()

def test_noise_weights_favour_clean_spectra_and_leave_the_targets_alone():
    config = preset("instrument")
    z, target = make_training_batch([config], [1.0], 16, np.random.SeedSequence(5), 1e-4)
    z_w, target_w = make_training_batch(
        [config], [1.0], 16, np.random.SeedSequence(5), 1e-4, noise_weight_exponent=0.25
    )
    np.testing.assert_array_equal(z, z_w)
    np.testing.assert_array_equal(target[..., 0], target_w[..., 0])
    measured = target[..., 1] > 0
    np.testing.assert_array_equal(target_w[..., 1] > 0, measured)  # padding stays out of the loss
    # One weight per spectrum, on all of its measured channels.
    per_spectrum = np.array([np.unique(row[m]) for row, m in zip(target_w[..., 1], measured)])
    assert per_spectrum.shape == (16, 1)
    # More noise (fewer counts), less weight; the compressed noise power also depends on the
    # spectrum's shape, so the order is followed closely, not exactly.
    batch = generate_batch(config, 16, np.random.SeedSequence(5).spawn(2)[1])  # as make_training_batch
    np.testing.assert_allclose(compress_intensity(batch.distorted, 1e-4)[0], z)
    noise = batch.parameters["noise_amplitude"]
    by_noise = per_spectrum[np.argsort(noise), 0]
    assert by_noise[:4].min() > 2 * by_noise[-4:].max()
    assert np.corrcoef(np.log(noise), np.log(per_spectrum[:, 0]))[0, 1] < -0.8


def test_noise_weights_follow_the_power_law():
    measured = np.ones((3, 100), bool)
    measured[2, 50:] = False  # padding does not count in the noise power
    clean = np.zeros((3, 100))
    noisy = clean.copy()
    noisy[0] += 0.1  # power 1e-2
    noisy[1] += 1e-3  # power 1e-6: at the floor, weight of power 2e-6
    noisy[2, :50] += 0.1
    noisy[2, 50:] += 100.0
    weights = spectrum_noise_weights(noisy, clean, measured, 0.5)[:, 0]
    expected = (np.array([1e-2, 1e-6, 1e-2]) + 1e-6) / 1e-3
    np.testing.assert_allclose(weights, expected**-0.5, rtol=1e-5)
    assert spectrum_noise_weights(noisy, clean, measured, 0.0).tolist() == [[1.0]] * 3


def _loss_value(loss, z_truth, z_pred, mask=None):
    mask = np.ones_like(z_truth) if mask is None else mask
    y_true = np.stack([z_truth, mask], axis=-1)[None].astype("float32")
    return float(loss(y_true, z_pred[None].astype("float32")))


def test_slope_term_weights_misplaced_narrow_features_not_smooth_misfits():
    channels = np.arange(200, dtype=float)
    background = 0.2 + 0.3 * np.exp(-channels / 80)
    narrow = background + 0.15 / (1 + ((channels - 100) / 1.5) ** 2)
    shifted = background + 0.15 / (1 + ((channels - 102) / 1.5) ** 2)
    plain = CompressedSpectrumLoss(1e-4, linear_weight=0.0)
    with_slope = CompressedSpectrumLoss(1e-4, linear_weight=0.0, slope_weight=10.0)

    # A smooth misfit (a constant offset) has no slope error: both losses agree.
    offset = narrow + 0.01
    assert _loss_value(with_slope, narrow, offset) == pytest.approx(_loss_value(plain, narrow, offset), rel=1e-6)
    # A narrow feature 2 channels off: the slope term is the squared error of neighbour differences.
    error = shifted - narrow
    expected = (np.sum(error**2) + 10.0 * np.sum(np.diff(error) ** 2)) / channels.size
    assert _loss_value(with_slope, narrow, shifted) == pytest.approx(expected, rel=1e-4)
    assert _loss_value(with_slope, narrow, shifted) > 2 * _loss_value(plain, narrow, shifted)
    # Pairs that touch a padded (unmeasured) channel do not count.
    mask = (channels < 150).astype(float)
    wrong_padding = np.where(mask > 0, narrow, 5.0)
    assert _loss_value(with_slope, narrow, wrong_padding, mask) == pytest.approx(0.0, abs=1e-9)
    assert with_slope.get_config()["slope_weight"] == 10.0


def test_absolute_norm_makes_the_loss_minimiser_the_median_not_the_mean():
    # One channel whose truth is 0.2 in two spectra of three and 0.5 in the third: the output
    # that minimises the squared charge is their mean (0.3), the absolute charge's their median (0.2).
    truths = np.array([[0.2], [0.2], [0.5]])
    candidates = np.linspace(0.15, 0.55, 81)
    squared = CompressedSpectrumLoss(1e-4, linear_weight=0.0)
    absolute = CompressedSpectrumLoss(1e-4, linear_weight=0.0, compressed_norm="absolute")

    def best(loss):
        costs = [sum(_loss_value(loss, t, np.array([c])) for t in truths) for c in candidates]
        return candidates[int(np.argmin(costs))]

    assert best(squared) == pytest.approx(0.3, abs=1e-6)
    assert best(absolute) == pytest.approx(0.2, abs=1e-6)
    # Away from zero the charge is the absolute error, smoothed below ABSOLUTE_ERROR_SMOOTHING.
    error = 0.05
    expected = np.sqrt(error**2 + ABSOLUTE_ERROR_SMOOTHING**2) - ABSOLUTE_ERROR_SMOOTHING
    assert _loss_value(absolute, np.full(4, 0.5), np.full(4, 0.5 + error)) == pytest.approx(expected, rel=1e-5)
    assert absolute.get_config()["compressed_norm"] == "absolute"
    with pytest.raises(ValueError, match="compressed_norm"):
        CompressedSpectrumLoss(1e-4, compressed_norm="cubic")
    with pytest.raises(ValueError, match="compressed_norm"):
        TrainConfig(compressed_norm="l1")


def test_card_names_every_earlier_stage():
    stage1 = {"config": "s1.yaml", "epochs_run": 75, "wall_time_s": 600.0, "hardware": "CPU"}
    stage2 = {"config": "s2.yaml", "epochs_run": 70, "wall_time_s": 1200.0, "hardware": "CPU", "initial_stage": stage1}
    lines = _initial_stage_lines(stage2)
    assert lines == [
        "- started from the best weights of the earlier stage `s2.yaml`; the epochs and wall time above are this stage's",
        "- stage `s2.yaml`: 70 epochs from the best weights of `s1.yaml`, 20.0 min on CPU",
        "- stage `s1.yaml`: 75 epochs from random weights, 10.0 min on CPU",
    ]
    assert _initial_stage_lines(None) == []


def test_loss_falls_and_model_is_written(tmp_path):
    config = TrainConfig(epochs=3, **TINY)
    path = train(config, tmp_path, verbose=0)
    history = np.genfromtxt(tmp_path / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < 0.75 * history["loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    model, contract = load_model(path)
    assert contract.n_channels == 2048 and contract.zlp_channel == 400
    assert contract.training["epochs_run"] == 3
    assert (tmp_path / "MODEL_CARD.md").read_text().startswith("# Model card")
    batch = generate_batch(preset("reference"), 4, seed=99)
    restored = predict_spectra(model, batch.distorted, batch_size=4)
    assert (restored >= 0).all() and np.isfinite(restored).all()


def test_resume_continues_from_checkpoint(tmp_path):
    TrainConfig(epochs=2, **TINY).to_yaml(tmp_path / "c.yaml")
    cli_main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run")])
    config = TrainConfig(epochs=3, **TINY)
    config.to_yaml(tmp_path / "c.yaml")
    # The backup survives the finished run; --resume continues at the third epoch.
    cli_main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--resume"])
    history = np.genfromtxt(tmp_path / "run" / "history.csv", delimiter=",", names=True)
    assert list(history["epoch"]) == [0, 1, 2]
    assert load_model(tmp_path / "run" / "eelspecnet.keras")[1].training["epochs_run"] == 1
    # Without --resume an old backup is discarded and training starts again at epoch 0.
    cli_main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run")])
    history = np.genfromtxt(tmp_path / "run" / "history.csv", delimiter=",", names=True)
    assert list(history["epoch"]) == [0, 1, 2]


def test_config_yaml_round_trip_and_validation(tmp_path):
    config = TrainConfig(mixture=[MixtureComponent("instrument", 1.0, {"zlp_drift": [-5.0, 5.0]})])
    config.to_yaml(tmp_path / "c.yaml")
    again = TrainConfig.from_yaml(tmp_path / "c.yaml")
    assert again.to_dict() == config.to_dict()
    assert again.generator_configs[0].zlp_drift == (-5.0, 5.0)
    (tmp_path / "bad.yaml").write_text("learning_rat: 0.1\n")
    with pytest.raises(ValueError, match="learning_rat"):
        TrainConfig.from_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="share n_channels"):
        TrainConfig(mixture=[MixtureComponent("reference"), MixtureComponent("reference", 1, {"zlp_channel": 300})])
    with pytest.raises(ValueError, match="feature_weight"):
        TrainConfig(feature_weight=-1.0)
    with pytest.raises(ValueError, match="zlp_gain needs zlp_context"):
        TrainConfig(zlp_gain=True)
    with pytest.raises(ValueError, match="resampling must be one of"):
        TrainConfig(resampling="bilinear")


def test_second_stage_trains_its_first_stage_and_starts_from_its_weights(tmp_path):
    (tmp_path / "configs").mkdir()
    TrainConfig(epochs=2, **TINY).to_yaml(tmp_path / "configs" / "stage1.yaml")
    stage2 = TrainConfig(epochs=1, **{**TINY, "learning_rate": 1e-6, "warmup_steps": 1}).to_dict()
    stage2["initialise_from"] = "stage1.yaml"  # relative to the stage-2 file
    (tmp_path / "configs" / "stage2.yaml").write_text(yaml.safe_dump(stage2))

    cli_main(["train", "--config", str(tmp_path / "configs" / "stage2.yaml"), "--out", str(tmp_path / "run")])

    first = np.genfromtxt(tmp_path / "run" / "initial" / "history.csv", delimiter=",", names=True)
    second = np.genfromtxt(tmp_path / "run" / "history.csv", delimiter=",", names=True)
    assert first.size == 2 and second.size == 1
    # With a learning rate of 1e-6 the second stage barely moves the first stage's weights: its
    # validation loss (other seeds, same generator) is close to the first stage's, far below an
    # untrained network's (the first epoch of stage 1 started from random weights).
    untrained = TrainConfig(epochs=1, **{**TINY, "learning_rate": 1e-6, "warmup_steps": 1})
    train(untrained, tmp_path / "untrained", verbose=0)
    random_loss = float(np.genfromtxt(tmp_path / "untrained" / "history.csv", delimiter=",", names=True)["val_loss"])
    assert float(second["val_loss"]) < 0.5 * random_loss
    assert float(second["val_loss"]) < 2.0 * float(first["val_loss"][-1])
    contract = load_model(tmp_path / "run" / "eelspecnet.keras")[1]
    assert contract.training["initial_stage"]["epochs_run"] == 2
    assert "earlier stage `stage1.yaml`" in (tmp_path / "run" / "MODEL_CARD.md").read_text()


def test_second_stage_must_keep_the_network_shape(tmp_path):
    # Only strided -> anti-aliased resampling converts (the next test); the reverse cannot. A
    # level may gain convolutions (they start as the identity), not lose them.
    for first, changed in (
        ({}, {"kernel_size": 3}),
        ({"resampling": "antialiased"}, {"resampling": "strided"}),
        ({"convs_per_level": (2, 1, 1)}, {"convs_per_level": (1, 2, 2)}),
    ):
        TrainConfig(epochs=1, **{**TINY, **first}).to_yaml(tmp_path / "stage1.yaml")
        other = TrainConfig(epochs=1, **{**TINY, **changed}).to_dict()
        other["initialise_from"] = str(tmp_path / "stage1.yaml")
        (tmp_path / "stage2.yaml").write_text(yaml.safe_dump(other))
        with pytest.raises(ValueError, match=next(iter(changed))):
            train(TrainConfig.from_yaml(tmp_path / "stage2.yaml"), tmp_path / "run", verbose=0)


def test_an_antialiased_stage_starts_from_the_strided_stage_before_it(tmp_path):
    TrainConfig(epochs=1, **TINY).to_yaml(tmp_path / "stage1.yaml")
    stage2 = TrainConfig(
        epochs=1, resampling="antialiased", **{**TINY, "learning_rate": 1e-9, "warmup_steps": 1}
    ).to_dict()
    stage2["initialise_from"] = "stage1.yaml"
    (tmp_path / "stage2.yaml").write_text(yaml.safe_dump(stage2))
    train(TrainConfig.from_yaml(tmp_path / "stage2.yaml"), tmp_path / "run", verbose=0)
    first = core_of(load_model(tmp_path / "run" / "initial" / "eelspecnet.keras")[0])
    second = core_of(load_model(tmp_path / "run" / "eelspecnet.keras")[0])
    assert load_model(tmp_path / "run" / "eelspecnet.keras")[1].training["config"]["resampling"] == "antialiased"
    for layer in second.layers:
        if not layer.weights:
            continue
        old = first.get_layer(layer.name).get_weights()
        if layer.name.startswith("up"):  # kernel-2 transposed convolution -> 1x1 convolution
            old = strided_up_as_pointwise(*old)
        for new_weight, old_weight in zip(layer.get_weights(), old):
            np.testing.assert_allclose(new_weight, old_weight, atol=1e-6)


@pytest.mark.parametrize("added", [{"zlp_context": 32}, {"rl_iterations": 3}, {"convs_per_level": [3, 1, 2]}])
def test_a_later_stage_may_add_zlp_conditioning_rl_input_or_convolutions_and_starts_from_the_earlier_output(
    tmp_path, added
):
    TrainConfig(epochs=1, **TINY).to_yaml(tmp_path / "stage1.yaml")
    stage2 = TrainConfig(epochs=1, **{**TINY, **added, "learning_rate": 1e-9, "warmup_steps": 1}).to_dict()
    stage2["initialise_from"] = "stage1.yaml"
    (tmp_path / "stage2.yaml").write_text(yaml.safe_dump(stage2))
    train(TrainConfig.from_yaml(tmp_path / "stage2.yaml"), tmp_path / "run", verbose=0)
    first = load_model(tmp_path / "run" / "initial" / "eelspecnet.keras")[0]
    second, contract = load_model(tmp_path / "run" / "eelspecnet.keras")
    for name, value in added.items():
        assert contract.training["config"][name] == value
    assert second.count_params() > first.count_params()
    spectra = generate_batch(preset("reference"), 4, seed=7).distorted
    # A learning rate of 1e-9 leaves the weights where stage 1 left them and the new layers at
    # zero (or the identity): the extended network gives stage 1's output.
    np.testing.assert_allclose(predict_spectra(second, spectra), predict_spectra(first, spectra), rtol=1e-3, atol=1e-9)


@pytest.mark.parametrize(
    "path", sorted(str(p.relative_to(REPOSITORY)) for p in (REPOSITORY / "configs").rglob("*.yaml"))
)
def test_repository_configs_load_and_their_stages_keep_the_network(path):
    config = TrainConfig.from_yaml(REPOSITORY / path)
    while config.initialise_from:
        earlier = TrainConfig.from_yaml(config.initialise_from)
        check_stage_continues(earlier, config)  # what train() checks before it starts
        config = earlier


def test_channel_weights_scale_the_compressed_term_only():
    channels = np.arange(64, dtype=float)
    z_truth = 0.2 + 0.8 * np.exp(-0.5 * ((channels - 20) / 1.5) ** 2)  # a ZLP on a floor
    z_pred = z_truth.copy()
    z_pred[20] -= 0.01  # wrong at the ZLP maximum: both the compressed and the linear term see it
    weights = np.ones_like(z_truth)
    weights[18:23] = 10.0
    compressed_only = CompressedSpectrumLoss(1e-4, linear_weight=0.0)
    both = CompressedSpectrumLoss(1e-4, linear_weight=3000.0)
    plain_compressed = _loss_value(compressed_only, z_truth, z_pred)
    assert _loss_value(compressed_only, z_truth, z_pred, weights) == pytest.approx(10 * plain_compressed, rel=1e-5)
    # The linear (ZLP-shape) part is the same with or without the weights.
    linear_part = _loss_value(both, z_truth, z_pred) - plain_compressed
    assert linear_part > 100 * plain_compressed
    weighted = _loss_value(both, z_truth, z_pred, weights)
    assert weighted - 10 * plain_compressed == pytest.approx(linear_part, rel=1e-4)
