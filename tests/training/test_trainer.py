"""The trainer: a tiny network trained for a few steps on short generated spectra learns,
resumes, keeps to a wall-clock budget, continues an earlier stage or a model file, and exports
a model that takes any length."""

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from hyperspy_eelspecnet.model import build_unet_core, core_of, load_model, predict_spectra
from hyperspy_eelspecnet.model.layers import compress_intensity, expand_intensity
from hyperspy_eelspecnet.training import generate_batch, preset
from hyperspy_eelspecnet.training.stages import check_stage_continues, strided_up_as_pointwise
from hyperspy_eelspecnet.training.trainer import (
    CompressedSpectrumLoss,
    MixtureComponent,
    TrainConfig,
    export_model,
    feature_core_weights,
    make_training_batch,
    spectrum_noise_weights,
    train,
    training_loss,
    validation_batch,
)

REPOSITORY = Path(__file__).resolve().parents[2]

#: The reference physics on 512 channels (ZLP on channel 100): four times cheaper than 2048.
SHORT = {"n_channels": 512, "zlp_channel": 100, "peak_channel": [100, 510], "window_stop": [512, 512]}
TINY = dict(
    mixture=[MixtureComponent("reference", 1.0, SHORT)], filters=(4, 6, 8), kernel_size=5, convs_per_level=1,
    bottleneck_dilations=(1,), batch_size=8, steps_per_epoch=6, validation_size=16, learning_rate=3e-3,
    warmup_steps=2,
)
#: A learning rate that leaves the weights where they start (Adam moves each by about this much).
FROZEN = dict(learning_rate=1e-9, warmup_steps=1, steps_per_epoch=1, epochs=1)


def history(out):
    return np.genfromtxt(Path(out) / "history.csv", delimiter=",", names=True, ndmin=1)


def core_weights(path):
    """{layer name: weights} of the core network of a model file."""
    core = core_of(load_model(path)[0])
    return {layer.name: layer.get_weights() for layer in core.layers if layer.weights}


# --- Batches and loss (no training) -----------------------------------------------------


def test_training_batches_pack_compressed_truth_and_mask():
    configs = [preset("reference"), preset("instrument")]
    z, target = make_training_batch(configs, [0.5, 0.5], 32, np.random.SeedSequence(0), 1e-4)
    assert z.shape == (32, 2048) and target.shape == (32, 2048, 2)
    assert np.isfinite(z).all() and (z.max(axis=1) == pytest.approx(1.0))
    assert set(np.unique(target[..., 1])) <= {0.0, 1.0}
    assert (target[..., 1] == 0).any()  # the instrument's short windows: padding out of the loss
    z_again, _ = make_training_batch(configs, [0.5, 0.5], 32, np.random.SeedSequence(0), 1e-4)
    np.testing.assert_array_equal(z, z_again)


def test_measured_psfs_blur_only_the_components_that_ask_for_them():
    from dataclasses import replace

    from hyperspy_eelspecnet.vacuum import prepare_vacuum_psfs

    analytic = replace(preset("reference"), **SHORT)  # measured_psf_probability 0
    measured = replace(analytic, measured_psf_probability=1.0)
    channels = np.arange(1024)
    psfs = prepare_vacuum_psfs(np.exp(-0.5 * ((channels - 512) / 30.0) ** 2)[None] + 1e-9, length=1024).psfs

    def batch(configs, weights, with_psfs):
        return make_training_batch(configs, weights, 8, np.random.SeedSequence(3), 1e-4, psfs if with_psfs else None)[0]

    mixture = [analytic, measured]
    # A component that asks for no measured PSF gets none, though the configuration lists some.
    np.testing.assert_array_equal(batch(mixture, [1.0, 0.0], True), batch(mixture, [1.0, 0.0], False))
    assert not np.allclose(batch(mixture, [0.0, 1.0], True), batch(mixture, [0.0, 1.0], False))
    np.testing.assert_array_equal(batch([analytic], [1.0], True), batch([analytic], [1.0], False))


def test_validation_set_is_seeded_apart_from_the_training_batches():
    config = TrainConfig(**TINY)
    z, target = validation_batch(config)
    assert z.shape == (16, 512) and target.shape == (16, 512, 2)
    np.testing.assert_array_equal(validation_batch(config)[0], z)
    np.testing.assert_array_equal(validation_batch(TrainConfig(**{**TINY, "seed": 3}), seed=0)[0], z)
    first_training_batch, _ = make_training_batch(
        config.generator_configs, [1.0], 16, np.random.SeedSequence([0, 0, 0, 0]), config.epsilon
    )
    assert not np.allclose(first_training_batch, z)


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


def _loss_value(loss, z_truth, z_pred, weights=None):
    weights = np.ones_like(z_truth) if weights is None else weights
    y_true = np.stack([z_truth, weights], axis=-1)[None].astype("float32")
    return float(loss(y_true, z_pred[None].astype("float32")))


def test_loss_is_the_masked_compressed_error_plus_the_linear_zlp_term():
    channels = np.arange(64, dtype=float)
    z_truth = 0.2 + 0.8 * np.exp(-0.5 * ((channels - 20) / 1.5) ** 2)  # a ZLP on a floor
    compressed_only = CompressedSpectrumLoss(1e-4, linear_weight=0.0)
    assert _loss_value(compressed_only, z_truth, z_truth) == 0.0
    z_pred = z_truth + 0.01
    assert _loss_value(compressed_only, z_truth, z_pred) == pytest.approx(1e-4, rel=1e-4)  # mean square
    # The linear term: squared error of sinh(z * asinh(1/eps)) over the target's maximum.
    scale = np.arcsinh(1e4)
    linear = np.sinh(z_truth * scale), np.sinh(z_pred * scale)
    expected = np.mean(((linear[1] - linear[0]) / linear[0].max()) ** 2)
    assert _loss_value(CompressedSpectrumLoss(1e-4, linear_weight=2.0), z_truth, z_pred) == pytest.approx(
        1e-4 + 2.0 * expected, rel=1e-3
    )
    # Padding (weight 0) counts in neither term nor in the channel count.
    mask = (channels < 48).astype(float)
    wrong_padding = np.where(mask > 0, z_pred, 5.0)
    both = CompressedSpectrumLoss(1e-4, linear_weight=2.0)
    assert _loss_value(both, z_truth, wrong_padding, mask) == pytest.approx(_loss_value(both, z_truth[:48], z_pred[:48]), rel=1e-4)
    # A configuration's loss has its epsilon and linear weight, and round-trips through its config.
    loss = training_loss(TrainConfig(epsilon=1e-3, linear_weight=0.5))
    assert (loss.epsilon, loss.linear_weight) == (1e-3, 0.5)
    again = CompressedSpectrumLoss.from_config(loss.get_config())
    assert (again.epsilon, again.linear_weight) == (1e-3, 0.5)


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


# --- Configurations (no training) -------------------------------------------------------


def test_config_yaml_round_trip_and_validation(tmp_path):
    config = TrainConfig(mixture=[MixtureComponent("instrument", 1.0, {"zlp_drift": [-5.0, 5.0]})], schedule="minutes",
                         max_minutes=3.0, convs_per_level=(2, 1, 1, 1, 1, 1))
    config.to_yaml(tmp_path / "c.yaml")
    again = TrainConfig.from_yaml(tmp_path / "c.yaml")
    assert again.to_dict() == config.to_dict()
    assert again.generator_configs[0].zlp_drift == (-5.0, 5.0) and again.convs_per_level == (2, 1, 1, 1, 1, 1)
    (tmp_path / "bad.yaml").write_text("learning_rat: 0.1\n")
    with pytest.raises(ValueError, match="learning_rat"):
        TrainConfig.from_yaml(tmp_path / "bad.yaml")
    # The experiment options of earlier versions are gone: a configuration naming one is refused.
    (tmp_path / "old.yaml").write_text("zlp_context: 32\n")
    with pytest.raises(ValueError, match="zlp_context"):
        TrainConfig.from_yaml(tmp_path / "old.yaml")
    with pytest.raises(ValueError, match="share n_channels"):
        TrainConfig(mixture=[MixtureComponent("reference"), MixtureComponent("reference", 1, {"zlp_channel": 300})])
    # The contract keeps one dispersion and one restored ZLP width: components must agree on both.
    with pytest.raises(ValueError, match=r"differ in zlp_fwhm \[3\.0, 5\.0\]"):
        TrainConfig(mixture=[MixtureComponent("reference"), MixtureComponent("instrument", 1, {"zlp_fwhm": 5.0})])
    with pytest.raises(ValueError, match=r"differ in dispersion \[0\.005, 0\.01\]"):
        TrainConfig(mixture=[MixtureComponent("reference"), MixtureComponent("reference", 1, {"dispersion": 0.01})])
    with pytest.raises(ValueError, match="feature_weight"):
        TrainConfig(feature_weight=-1.0)
    with pytest.raises(ValueError, match="resampling must be one of"):
        TrainConfig(resampling="bilinear")
    with pytest.raises(ValueError, match="schedule must be one of"):
        TrainConfig(schedule="steps")
    with pytest.raises(ValueError, match="needs max_minutes"):
        TrainConfig(schedule="minutes")
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(initialise_from="a.yaml", initial_model="b.keras")
    with pytest.raises(ValueError, match="convs_per_level"):
        TrainConfig(convs_per_level=(2, 2))


CONFIGS = sorted(path.name for path in (REPOSITORY / "configs").glob("*.yaml"))


@pytest.mark.parametrize("name", CONFIGS)
def test_repository_configs_load_and_their_stages_keep_the_network(name):
    config = TrainConfig.from_yaml(REPOSITORY / "configs" / name)
    while config.initialise_from:
        earlier = TrainConfig.from_yaml(config.initialise_from)
        check_stage_continues(earlier, config)  # what train() checks before it starts
        config = earlier


def test_the_default_configuration_chains_every_stage():
    assert CONFIGS == ["default.yaml", *(f"default_stage{k}.yaml" for k in range(1, 10))]
    chain, config = ["default.yaml"], TrainConfig.from_yaml(REPOSITORY / "configs" / "default.yaml")
    while config.initialise_from:
        chain.append(Path(config.initialise_from).name)
        config = TrainConfig.from_yaml(config.initialise_from)
    assert chain == ["default.yaml", *(f"default_stage{k}.yaml" for k in range(9, 0, -1))]
    assert TrainConfig.from_yaml(REPOSITORY / "configs" / "default.yaml").schedule == "minutes"


# --- Training ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """A two-stage run: stage 2 (``configs/stage2.yaml``) adds a convolution to level 0 and
    anti-aliases the strided stage 1 (2 epochs), which ``train`` trains first into
    ``run/initial``; stage 2 trains at a learning rate that leaves its weights where the
    transfer put them."""
    root = tmp_path_factory.mktemp("staged")
    (root / "configs").mkdir()
    TrainConfig(epochs=2, **TINY).to_yaml(root / "configs" / "stage1.yaml")
    stage2 = TrainConfig(**{**TINY, **FROZEN, "convs_per_level": (2, 1), "resampling": "antialiased"}).to_dict()
    stage2["initialise_from"] = "stage1.yaml"  # relative to the stage-2 file
    (root / "configs" / "stage2.yaml").write_text(yaml.safe_dump(stage2))
    path = train(TrainConfig.from_yaml(root / "configs" / "stage2.yaml"), root / "run", verbose=0)
    return root / "run", path


def test_second_stage_trains_its_first_stage_and_starts_from_its_weights(staged):
    run, path = staged
    assert list(history(run / "initial")["epoch"]) == [0, 1] and history(run).size == 1
    first = core_weights(run / "initial" / "eelspecnet.keras")
    second = core_weights(path)
    assert set(second) - set(first) == {"enc0_conv1", "dec0_conv1"}
    for name, weights in first.items():
        if name.startswith("up"):  # kernel-2 transposed convolution -> 1x1 convolution
            weights = strided_up_as_pointwise(*weights)
        for new, old in zip(second[name], weights):
            np.testing.assert_allclose(new, old, atol=1e-6)
    for name in ("enc0_conv1", "dec0_conv1"):  # added: the identity
        kernel, bias = second[name]
        np.testing.assert_allclose(kernel[2], np.eye(kernel.shape[1]), atol=1e-6)
        np.testing.assert_allclose(kernel[[0, 1, 3, 4]], 0.0, atol=1e-6)
        np.testing.assert_allclose(bias, 0.0, atol=1e-6)
    contract = load_model(path)[1]
    assert contract.training["config"]["resampling"] == "antialiased"
    assert contract.training["initial_stage"]["config"] == "stage1.yaml"
    assert contract.training["initial_stage"]["epochs_run"] == 2
    assert "earlier stage `stage1.yaml`" in (run / "MODEL_CARD.md").read_text()


def test_loss_falls_resumes_and_the_model_is_written(staged, tmp_path):
    # Stage 1 of the staged run (2 epochs) continued to 3: its backup survives the finished
    # run; resume continues at the third epoch with the optimizer's state (its step count
    # runs on).
    run = tmp_path / "stage1"
    shutil.copytree(staged[0] / "initial", run)
    config = TrainConfig(epochs=3, **TINY)
    path = train(config, run, resume=True, verbose=0)
    rows = history(run)
    assert list(rows["epoch"]) == [0, 1, 2]
    assert np.isfinite(rows["loss"]).all() and np.isfinite(rows["val_loss"]).all()
    assert rows["val_loss"][-1] < rows["val_loss"][0]
    model, contract = load_model(path)
    assert (contract.n_channels, contract.zlp_channel, contract.length_multiple) == (512, 100, 4)
    training = contract.training
    assert training["epochs_run"] == 3 and training["steps"] == 3 * TINY["steps_per_epoch"]  # the whole run
    assert training["config"] == config.to_dict()
    assert (run / "MODEL_CARD.md").read_text().startswith("# Model card")
    assert TrainConfig.from_yaml(run / "train_config.yaml").to_dict() == config.to_dict()
    batch = generate_batch(config.generator_configs[0], 4, seed=99)
    restored = predict_spectra(model, batch.distorted, batch_size=4)
    assert (restored >= 0).all() and np.isfinite(restored).all()
    # The exported model holds the best weights kept over both runs.
    best = build_unet_core(512, config.filters, config.kernel_size, config.convs_per_level, config.bottleneck_dilations)
    best.load_weights(run / "best.weights.h5")
    for name, weights in core_weights(path).items():
        for new, kept in zip(weights, best.get_layer(name).get_weights()):
            np.testing.assert_array_equal(new, kept)


@pytest.mark.slow
def test_training_without_resume_starts_again(tmp_path):
    train(TrainConfig(epochs=2, **TINY), tmp_path, verbose=0)
    # A run stopped before its model was written (its backup and history left): without
    # resume, the old backup is discarded and training starts again at epoch 0, history and
    # all. (A finished run is refused: test_a_finished_run_is_not_replaced_without_resume.)
    (tmp_path / "eelspecnet.keras").unlink()
    path = train(TrainConfig(epochs=1, **TINY), tmp_path, verbose=0)
    assert list(history(tmp_path)["epoch"]) == [0]
    assert load_model(path)[1].training["steps"] == TINY["steps_per_epoch"]


@pytest.mark.parametrize("setting, match", [
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"steps_per_epoch": 2.5}, "steps_per_epoch must be an integer"),
    ({"learning_rate": -1e-3}, "learning_rate must be above 0"),
    ({"learning_rate": "fast"}, "learning_rate must be a number"),
    ({"mixture": [{"preset": "reference", "wieght": 1.0}]}, "Mixture component 0 must be a mapping"),
    ({"mixture": [{"preset": "reference", "weight": 0.0}]}, "positive sum"),
    ({"filters": 16}, r"^filters must be a list of at least two positive integers .*; got 16\.$"),
    ({"filters": [4]}, r"^filters must be a list of at least two positive integers .*; got \[4\]\.$"),
    ({"filters": [4, "8"]}, r"^filters must be a list of at least two positive integers .*; got \[4, '8'\]\.$"),
    ({"filters": [4, -8]}, r"^filters must be a list of at least two positive integers"),
    ({"bottleneck_dilations": 2}, r"^bottleneck_dilations must be a list of positive integers .*; got 2\.$"),
    ({"linear_weight": "abc"}, r"^linear_weight must be a number; got 'abc'\.$"),
    ({"clipnorm": "big"}, r"^clipnorm must be a number; got 'big'\. Give null for no clipping\.$"),
    ({"clipnorm": 0.0}, r"^clipnorm must be above 0"),
    ({"kernel_size": "seven"}, r"^kernel_size must be an integer; got 'seven'\.$"),
    ({"kernel_size": 0}, r"^kernel_size must be at least 1; got 0\.$"),
    ({"seed": "abc"}, r"^seed must be an integer; got 'abc'\.$"),
    ({"seed": -3}, r"^seed must be at least 0; got -3\.$"),
    ({"epsilon": -1.0}, r"^epsilon must be above 0; got -1\.0\.$"),
    ({"epsilon": 0.0}, r"^epsilon must be above 0"),
    ({"validation_size": 1}, r"^validation_size must be at least batch_size \(8\).*; got 1\.$"),
    ({"match_to_gaussian": "no"}, r"^match_to_gaussian must be true or false; got 'no'\.$"),
    ({"measured_psfs": "vacuum.txt"}, r"^measured_psfs must be a list of files.*; got 'vacuum\.txt'\.$"),
    ({"version": 1.1}, r"^version must be text; got 1\.1\. In YAML, quote it"),
])
def test_settings_that_cannot_train_are_refused_by_name(setting, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{**TINY, **setting})


@pytest.mark.parametrize("text, match", [
    ("filters: [4, 8\n", r"bad\.yaml is not valid YAML: .*expected ',' or '\]'.* \(line 2, column 1\)\.$"),
    ("epochs: 3\n  batch_size: 4\n", r"bad\.yaml is not valid YAML: .* \(line 2, column 13\)\.$"),
    ("- epochs: 3\n- batch_size: 4\n", r"The configuration in .*bad\.yaml must be a mapping of settings"),
    ("hello\n", r"The configuration in .*bad\.yaml must be a mapping of settings .*; got 'hello'\.$"),
    ("3\n", r"The configuration in .*bad\.yaml must be a mapping of settings .*; got 3\.$"),
])
def test_a_file_that_is_no_mapping_of_settings_is_refused_with_where(tmp_path, text, match):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_yaml(tmp_path / "bad.yaml")


def test_a_folder_given_as_the_configuration_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"is a folder; give the training configuration's YAML file \(--config\)"):
        TrainConfig.from_yaml(tmp_path)


def test_an_empty_configuration_warns_that_it_trains_the_default(tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    with pytest.warns(UserWarning, match=r"empty\.yaml sets nothing: every setting keeps its default"):
        config = TrainConfig.from_yaml(tmp_path / "empty.yaml")
    assert config.to_dict() == TrainConfig().to_dict()


def test_a_version_yaml_reads_as_a_number_is_kept_as_written(tmp_path):
    (tmp_path / "c.yaml").write_text("version: 1.10\nname: tiny\n")
    config = TrainConfig.from_yaml(tmp_path / "c.yaml")
    assert config.version == "1.10"
    config.to_yaml(tmp_path / "again.yaml")
    assert TrainConfig.from_yaml(tmp_path / "again.yaml").version == "1.10"
    (tmp_path / "c.yaml").write_text("version: true\n")
    with pytest.raises(ValueError, match="version must be text; got True"):
        TrainConfig.from_yaml(tmp_path / "c.yaml")


def test_a_number_yaml_reads_as_text_is_taken(tmp_path):
    (tmp_path / "c.yaml").write_text("learning_rate: 1e-3\nbatch_size: 4\n")  # PyYAML: "1e-3" is a string
    config = TrainConfig.from_yaml(tmp_path / "c.yaml")
    assert config.learning_rate == 1e-3 and config.batch_size == 4


def test_resume_refuses_no_run_and_a_run_of_another_configuration(staged, tmp_path):
    with pytest.raises(ValueError, match="no run to resume"):
        train(TrainConfig(epochs=1, **TINY), tmp_path / "empty", resume=True, verbose=0)
    assert not (tmp_path / "empty").exists()
    run = tmp_path / "stage1"
    shutil.copytree(staged[0] / "initial", run)
    before = {p.name: p.stat().st_mtime_ns for p in run.rglob("*")}
    with pytest.raises(ValueError, match=r"other settings \(learning_rate, seed\)"):
        train(TrainConfig(**{**TINY, "seed": 5, "learning_rate": 1e-3}), run, resume=True, verbose=0)
    assert {p.name: p.stat().st_mtime_ns for p in run.rglob("*")} == before  # nothing touched
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        train(TrainConfig(epochs=1, **TINY), tmp_path / "a_file", verbose=0)


WITH_MEASURED_PSFS = [MixtureComponent("reference", 1.0, {**SHORT, "measured_psf_probability": 0.8})]


@pytest.mark.parametrize("setting, match", [
    ({"mixture": WITH_MEASURED_PSFS}, r"^Mixture component\(s\) 0 \(reference\) set measured_psf_probability above 0, "
                                      "but measured_psfs lists no vacuum spectra"),
    ({"match_to_gaussian": True}, r"^match_to_gaussian needs measured_psfs"),
    ({"mixture": WITH_MEASURED_PSFS, "measured_psfs": ["no_vacuum.txt"]},
     r"^measured_psfs: no file at .*no_vacuum\.txt; .*relative to the working folder"),
    ({"initial_model": "no_model.keras"}, r"^initial_model: no model file at .*no_model\.keras; give in the "
                                          "configuration's initial_model"),
    ({"initialise_from": "no_stage.yaml"}, r"^initialise_from: no configuration at .*no_stage\.yaml; "),
])
def test_missing_files_are_refused_before_anything_is_written(tmp_path, monkeypatch, setting, match):
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(**{**TINY, **FROZEN, **setting})
    with pytest.raises(ValueError, match=match) as refused:
        train(config, tmp_path / "run", verbose=0)
    assert "Pass model=None" not in str(refused.value)  # the restoration's advice, not the trainer's
    assert not (tmp_path / "run").exists()


def test_a_relative_initialise_from_is_named_where_it_was_looked_for(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "stage2.yaml").write_text("initialise_from: stage1.yaml\n")
    config = TrainConfig.from_yaml(tmp_path / "configs" / "stage2.yaml")
    with pytest.raises(ValueError, match=rf"no configuration at {tmp_path / 'configs' / 'stage1.yaml'};"):
        train(config, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_a_finished_run_is_not_replaced_without_resume(tmp_path):
    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    for name in ("eelspecnet.keras", "eelspecnet.json", "MODEL_CARD.md", "train_config.yaml"):
        (run / name).write_text(name)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None) for p in run.rglob("*")}
    with pytest.raises(ValueError, match=(
        r"run holds a finished training run \(eelspecnet\.keras\); give another output folder \(--out\), "
        r"resume it \(--resume\) to train it longer, or delete it"
    )):
        train(TrainConfig(**{**TINY, **FROZEN}), run, verbose=0)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None) for p in run.rglob("*")} == before


def test_the_wall_clock_stop_line_shows_the_limit_as_given(capsys):
    from types import SimpleNamespace

    from hyperspy_eelspecnet.training.trainer import _WallClockLimit

    limit = _WallClockLimit(0.1)
    limit.set_model(SimpleNamespace(stop_training=False))
    limit.on_epoch_end(0)
    assert not limit.model.stop_training  # checked at an epoch's end: not yet 6 s
    limit.start -= 7.0
    limit.on_epoch_end(1)
    assert limit.model.stop_training
    assert "wall-clock limit of 0.1 min reached" in capsys.readouterr().out


def test_a_stage_of_another_shape_is_refused_before_training(tmp_path):
    TrainConfig(epochs=1, **TINY).to_yaml(tmp_path / "stage1.yaml")
    other = TrainConfig(**{**TINY, "kernel_size": 3}).to_dict()
    other["initialise_from"] = "stage1.yaml"
    (tmp_path / "stage2.yaml").write_text(yaml.safe_dump(other))
    with pytest.raises(ValueError, match="kernel_size"):
        train(TrainConfig.from_yaml(tmp_path / "stage2.yaml"), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()  # refused before stage 1 was trained, before anything was written


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny core with random (seeded) weights, exported; and its configuration."""
    import keras

    keras.utils.set_random_seed(11)
    config = TrainConfig(**{**TINY, "name": "tiny", "version": "1.2"})
    core = build_unet_core(512, config.filters, config.kernel_size, config.convs_per_level, config.bottleneck_dilations)
    out = tmp_path_factory.mktemp("exported")
    path = export_model(config, core, out, {"epochs_run": 0, "wall_time_s": 0.0})
    return path, core, config


def test_export_writes_a_model_for_any_length(exported):
    path, core, config = exported
    assert path.name == "eelspecnet.keras" and path.with_suffix(".json").exists()
    assert (path.parent / "MODEL_CARD.md").read_text().startswith("# Model card: tiny 1.2")
    model, contract = load_model(path)
    assert model.input_shape[-1] is None  # fully convolutional
    assert contract.length_multiple == 2 ** (len(config.filters) - 1) == 4
    assert (contract.n_channels, contract.name, contract.version, contract.preset) == (512, "tiny", "1.2", "reference")
    assert contract.training["parameters"] == core.count_params()
    assert contract.psf_fwhm_channels == (7.0, 40.0) and contract.counts_range is None
    # Each length runs, and gives the network of the weights exported: compression, core, expansion.
    for length in (1024, 2048):
        spectra = generate_batch(preset("reference"), 3, seed=length).distorted[:, :length]
        restored = predict_spectra(model, spectra, batch_size=3)
        assert restored.shape == spectra.shape and np.isfinite(restored).all() and (restored >= 0).all()
        z, peak = compress_intensity(spectra, config.epsilon)
        by_hand = expand_intensity(np.asarray(core_of(model)(z)), peak, config.epsilon)
        np.testing.assert_allclose(restored, by_hand, rtol=1e-5, atol=1e-12)
    # The same weights as the core given (built for 512 channels).
    for layer in (layer for layer in core.layers if layer.weights):
        for new, old in zip(core_of(model).get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(new, old)


def test_export_from_a_weights_file_gives_the_same_network(exported, tmp_path):
    _, core, config = exported
    core.save_weights(tmp_path / "core.weights.h5")
    again = export_model(config, tmp_path / "core.weights.h5", tmp_path, filename="again.keras")
    assert again == tmp_path / "again.keras" and (tmp_path / "MODEL_CARD.md").exists()
    for name, weights in core_weights(again).items():
        for new, old in zip(weights, core.get_layer(name).get_weights()):
            np.testing.assert_array_equal(new, old)


def test_a_model_file_starts_a_run_on_the_minutes_schedule(exported, tmp_path):
    # One run for two things: ``initial_model`` (at a learning rate that leaves the weights
    # where they start) and the wall-clock schedule (a 1.8 s budget, 1000 epochs allowed).
    path, _, _ = exported
    config = TrainConfig(**{
        **TINY, "learning_rate": 1e-9, "warmup_steps": 1, "steps_per_epoch": 4, "epochs": 1000,
        "schedule": "minutes", "max_minutes": 0.03, "initial_model": str(path),
    })
    start = time.time()
    out = train(config, tmp_path / "run", verbose=0)
    wall = time.time() - start
    start_weights = core_weights(path)
    for name, weights in core_weights(out).items():
        for new, old in zip(weights, start_weights[name]):
            np.testing.assert_allclose(new, old, atol=1e-6)
    # Stopped at the end of the first step past 1.8 s (the first step traces the network, a
    # second or more on a busy CPU), long before 1000 epochs; the clock ran inside the call.
    elapsed = float(yaml.safe_load((tmp_path / "run" / "elapsed.json").read_text())["elapsed_s"])
    assert 1.8 <= elapsed <= wall and elapsed < 30.0
    training = load_model(out)[1].training
    assert 1 <= training["epochs_run"] < 1000 and 1 <= training["steps"] < 4 * training["epochs_run"] + 1
    assert history(tmp_path / "run").size == training["epochs_run"]
    # A model of another shape is refused, before anything is written.
    with pytest.raises(ValueError, match="another shape"):
        train(TrainConfig(**{**TINY, **FROZEN, "kernel_size": 3, "initial_model": str(path)}), tmp_path / "other", verbose=0)
    assert not (tmp_path / "other").exists()
