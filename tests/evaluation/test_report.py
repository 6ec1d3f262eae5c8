import json

import numpy as np
import pytest

from hyperspy_eelspecnet.cli import main
from hyperspy_eelspecnet.evaluation.report import METRICS, evaluate, write_report
from hyperspy_eelspecnet.model import load_model
from hyperspy_eelspecnet.training.trainer import TrainConfig, train

FIGURES = ("fig4_noise_variance.png", "fig5_zlp_width.png", "fig6_ssim.png", "examples.png")


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    config = TrainConfig(filters=(8, 8, 8), batch_size=8, steps_per_epoch=3, epochs=1, validation_size=16)
    return train(config, tmp_path_factory.mktemp("model"), verbose=0)


def test_evaluate_and_report(tiny_model_path, tmp_path):
    model, _ = load_model(tiny_model_path)
    results = evaluate(model, presets=("reference",), n_spectra=32, rl_iterations=(5,), block_size=20)
    paths = write_report(results, tmp_path)

    report = json.loads(paths["evaluation.json"].read_text())
    assert report["settings"]["methods"] == ["EELSpecNet", "RL-5"]
    summary = report["presets"]["reference"]["summary"]
    assert set(summary) == set(METRICS)
    for metric in ("fwhm_recovery", "fwhm_relative_error", "fwtm_recovery", "ssim", "mse", "noise_variance_reduction"):
        stats = summary[metric]["RL-5"]
        assert stats["n"] > 0
        assert all(np.isfinite(stats[key]) for key in ("median", "p5", "p95"))
    assert 0.0 < summary["fwhm_recovery"]["RL-5"]["median"] < 100.0
    assert summary["ssim"]["input"]["n"] == 32
    for method in ("input", "EELSpecNet", "RL-5"):
        assert 0.0 <= summary["peak_position_error"][method]["resolved_fraction"] <= 1.0
        assert 0.0 <= summary["peak_position_error"][method]["false_peak_fraction"] <= 1.0
    # The noisy input finds a "peak" at most feature-free positions (white noise: 19/21).
    assert summary["peak_position_error"]["input"]["false_peak_fraction"] > 0.5
    # Detection curves: smoothing lowers both fractions; the first point is the output as it is.
    for method in ("input", "EELSpecNet", "RL-5"):
        peaks = summary["peak_position_error"][method]
        curve = peaks["detection_curve"]
        assert curve["smoothing_sigmas"][0] == 0.0
        assert curve["found_fraction"][0] == pytest.approx(peaks["resolved_fraction"])
        assert curve["false_peak_fraction"][0] == pytest.approx(peaks["false_peak_fraction"])
        assert curve["false_peak_fraction"][-1] < curve["false_peak_fraction"][0]
    network = summary["peak_position_error"]["EELSpecNet"]
    # At its own false-peak rate the network finds what it finds (NaN-free: its curve starts there).
    assert network["found_at_network_false_rate"] == pytest.approx(network["resolved_fraction"])

    markdown = paths["evaluation.md"].read_text()
    assert "| ZLP FWHM recovery (%) |" in markdown and "RL-5" in markdown
    assert "| Feature-free positions where a peak is found all the same (lower is better) |" in markdown
    assert "| Resolvable features found as a peak at EELSpecNet's false-peak rate" in markdown
    for name in FIGURES:
        assert paths[name].stat().st_size > 0


def test_evaluate_command(tiny_model_path, tmp_path):
    out = tmp_path / "report"
    main([
        "evaluate", "--model", str(tiny_model_path), "--out", str(out), "--n-spectra", "16",
        "--presets", "reference", "--rl-iterations", "3",
    ])
    report = json.loads((out / "evaluation.json").read_text())
    assert report["settings"]["rl_iterations"] == [3]
    assert report["settings"]["model"]["file"] == str(tiny_model_path)
    for name in ("evaluation.md", *FIGURES):
        assert (out / name).stat().st_size > 0


def test_evaluation_table_replaces_the_card_section(tiny_model_path, tmp_path):
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model card\n\n## Evaluation\n\nold numbers\n\n## Limits\n\nkeep me\n")
    args = ["evaluate", "--model", str(tiny_model_path), "--out", str(tmp_path / "r"), "--n-spectra", "8",
            "--presets", "reference", "--rl-iterations", "2", "--card", str(card)]
    main(args)
    text = card.read_text()
    assert "old numbers" not in text and "keep me" in text
    assert text.count("## Evaluation") == 1
    assert f"Produced by `eelspecnet evaluate {' '.join(args[1:])}`" in text
    assert "### Preset `reference`" in text and "| ZLP FWHM recovery (%) |" in text
