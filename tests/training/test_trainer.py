"""The trainer: a tiny model trained for a few steps on the CPU learns, saves, resumes."""

import numpy as np
import pytest
import yaml

from hyperspy_eelspecnet.cli import main as cli_main
from hyperspy_eelspecnet.model import load_model, predict_spectra
from hyperspy_eelspecnet.training import generate_batch, preset
from hyperspy_eelspecnet.training.trainer import MixtureComponent, TrainConfig, make_training_batch, train

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
    TrainConfig(epochs=1, **TINY).to_yaml(tmp_path / "stage1.yaml")
    other = TrainConfig(epochs=1, **{**TINY, "kernel_size": 3}).to_dict()
    other["initialise_from"] = str(tmp_path / "stage1.yaml")
    (tmp_path / "stage2.yaml").write_text(yaml.safe_dump(other))
    with pytest.raises(ValueError, match="kernel_size"):
        train(TrainConfig.from_yaml(tmp_path / "stage2.yaml"), tmp_path / "run", verbose=0)
