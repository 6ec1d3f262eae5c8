"""The evaluation report: EELSpecNet through the public path against Richardson-Lucy.

The identity model (a network that returns its input, in the real wrapper) makes the plumbing
checkable: its restoration is the distorted spectrum itself, so it narrows no ZLP and scores
what the input scores, while Richardson-Lucy with the true blur does narrow it.
"""

import json
import re

import numpy as np
import pytest

import hyperspy_eelspecnet.evaluation.report as report
from hyperspy_eelspecnet.cli import main
from hyperspy_eelspecnet.evaluation.report import (
    DETECTION_SMOOTHING_SIGMAS,
    METRICS,
    WINDOW_SETS,
    evaluate,
    evaluation_set,
    near_zlp_significance,
    update_model_card,
    write_report,
)
from hyperspy_eelspecnet.restoration import EELSpecNetDeconvolution
from hyperspy_eelspecnet.spectral import half_maximum_centre
from hyperspy_eelspecnet.training.generator import generate_batch

FIGURES = ("fig4_noise_variance.png", "fig5_zlp_width.png", "fig6_ssim.png", "examples.png")
NETWORK, NETWORK_ONLY = "EELSpecNet", "EELSpecNet, network only"
LENGTH_MULTIPLE = 64  # the identity model's (tests/conftest.py)


@pytest.fixture(scope="module")
def results(identity_model):
    """The reference preset (8 spectra per set) and every window (4 per set), RL-3 and RL-20
    (asked for as 20, 3, 20)."""
    return evaluate(identity_model, presets=("reference",), n_spectra=8, rl_iterations=(20, 3, 20), n_window_spectra=4)


def test_evaluation_sets_put_energy_zero_at_the_half_maximum_centre():
    config = evaluation_set("reference")
    assert config.align_zlp and config.zlp_centre == "half_maximum"
    batch = generate_batch(config, 8, seed=1, zlp_only=True)
    np.testing.assert_allclose(half_maximum_centre(batch.ground_truth), batch.parameters["zlp_position"], atol=0.02)
    for n_channels, zlp_channel in WINDOW_SETS:
        window = evaluation_set(f"reference, {n_channels} ch, ZLP at {zlp_channel}")
        assert (window.n_channels, window.zlp_channel) == (n_channels, zlp_channel)
        assert window.peak_channel[1] < n_channels and window.window_stop == (n_channels, n_channels)
    with pytest.raises(ValueError, match="Unknown evaluation set"):
        evaluation_set("reference, 3000 ch, ZLP at 40")


def test_tables_have_every_method_and_metric(results):
    settings = results["settings"]
    # Each iteration count once, in increasing order.
    assert settings["rl_iterations"] == [3, 20]
    assert settings["methods"] == [NETWORK, NETWORK_ONLY, "RL-3", "RL-20"]
    window_names = [f"reference, {n} ch, ZLP at {z}" for n, z in WINDOW_SETS]
    assert list(results["presets"]) == ["reference", *window_names]
    assert settings["n_spectra"] == {"reference": 8, **{name: 4 for name in window_names}}
    for name, result in results["presets"].items():
        summary, n = result["summary"], settings["n_spectra"][name]
        assert set(summary) == set(METRICS)
        # The bare network runs only where the window's length suits it (1688 and 1800 do not).
        length = evaluation_set(name).n_channels
        restored = {NETWORK, "RL-3", "RL-20"} | ({NETWORK_ONLY} if length % LENGTH_MULTIPLE == 0 else set())
        assert set(summary["fwhm_recovery"]) == restored
        assert set(summary["ssim"]) == restored | {"input"}
        for metric in METRICS:
            for method, stats in summary[metric].items():
                # Every spectrum has a ZLP FWHM, an SSIM and an MSE; a wide ZLP 40 channels from
                # the window's start may have no tenth-maximum crossing there (FWTM: NaN).
                if metric in ("fwhm_recovery", "noise_variance_reduction", "ssim", "mse"):
                    assert stats["n"] == n, (name, metric, method)
                if stats["n"]:
                    assert stats["p5"] <= stats["median"] <= stats["p95"]
        assert result["examples"]["energy"].size == length


def test_identity_restoration_scores_as_its_input_and_rl_narrows_the_zlp(results):
    for name, result in results["presets"].items():
        summary = result["summary"]
        # The identity network narrows nothing: FWHM recovery 0 %, SSIM and MSE of the input.
        for method in {NETWORK, NETWORK_ONLY} & set(summary["fwhm_recovery"]):
            assert abs(summary["fwhm_recovery"][method]["median"]) < 0.1, name
            assert summary["ssim"][method]["median"] == pytest.approx(summary["ssim"]["input"]["median"], abs=1e-4)
            assert summary["mse"][method]["median"] == pytest.approx(summary["mse"]["input"]["median"], rel=1e-2)
        # Richardson-Lucy with the true blur narrows the ZLP, more with more iterations.
        rl3, rl20 = (summary["fwhm_recovery"][m]["median"] for m in ("RL-3", "RL-20"))
        assert 5.0 < rl3 < rl20 < 100.0, name
        assert summary["ssim"]["RL-20"]["median"] > summary["ssim"]["input"]["median"]


def test_peak_rows_and_detection_curves(results):
    peaks = results["presets"]["reference"]["summary"]["peak_position_error"]
    per_spectrum = results["presets"]["reference"]["per_spectrum"]
    for method in ("input", NETWORK, NETWORK_ONLY, "RL-3", "RL-20"):
        row = peaks[method]
        assert 0.0 <= row["resolved_fraction"] <= 1.0 and 0.0 <= row["false_peak_fraction"] <= 1.0
        curve = row["detection_curve"]
        assert curve["smoothing_sigmas"] == list(DETECTION_SMOOTHING_SIGMAS)
        assert curve["found_fraction"][0] == pytest.approx(row["resolved_fraction"])
        assert curve["false_peak_fraction"][0] == pytest.approx(row["false_peak_fraction"])
        assert curve["false_peak_fraction"][-1] < curve["false_peak_fraction"][0]  # smoothing removes noise peaks
        found = per_spectrum["peak_resolved"][method]
        assert found.shape[1] == len(DETECTION_SMOOTHING_SIGMAS) and found[:, 0].mean() == row["resolved_fraction"]
    # The noisy input shows a "peak" at most feature-free positions (white noise: 19/21).
    assert peaks["input"]["false_peak_fraction"] > 0.5
    # At its own false-peak rate the network finds what it finds.
    assert peaks[NETWORK]["found_at_network_false_rate"] == pytest.approx(peaks[NETWORK]["resolved_fraction"])
    # The identity's rows are the input's.
    assert peaks[NETWORK]["resolved_fraction"] == peaks["input"]["resolved_fraction"]


def test_without_windows_only_the_presets_are_judged(identity_model):
    results = evaluate(identity_model, presets=("instrument",), n_spectra=4, rl_iterations=(2,), windows=False)
    assert list(results["presets"]) == ["instrument"]
    summary = results["presets"]["instrument"]["summary"]
    assert set(summary["ssim"]) == {"input", NETWORK, NETWORK_ONLY, "RL-2"}
    assert summary["ssim"]["input"]["n"] == 4


def test_write_report_writes_tables_and_figures(results, tmp_path):
    paths = write_report(results, tmp_path)
    assert set(paths) == {"evaluation.json", "evaluation.md", *FIGURES}
    for path in paths.values():
        assert path.parent == tmp_path and path.stat().st_size > 0
    written = json.loads(paths["evaluation.json"].read_text())
    assert written["settings"]["methods"] == results["settings"]["methods"]
    assert set(written["presets"]["reference"]["summary"]) == set(METRICS)
    assert written["presets"]["reference"]["summary"]["ssim"]["RL-20"] == results["presets"]["reference"]["summary"]["ssim"]["RL-20"]
    markdown = paths["evaluation.md"].read_text()
    assert "## Preset `reference`" in markdown and "| ZLP FWHM recovery (%) |" in markdown
    assert "| Feature-free positions where a peak is found all the same (lower is better) |" in markdown
    assert "## Other windows (the `reference` physics)" in markdown
    for n_channels, zlp_channel in WINDOW_SETS:
        assert f"| {n_channels} ch, ZLP at {zlp_channel} | 4 |" in markdown


def test_near_zlp_significance(identity_model, load_ws2):
    vacuum = load_ws2("Vacuum").data
    engine = EELSpecNetDeconvolution(identity_model)
    near = near_zlp_significance({"identity": engine}, vacuum, n_spectra=6, seed=3)
    assert near["settings"]["n_spectra"] == 6 and near["settings"]["vacuum_spectra"] == 2
    assert list(near["methods"]) == ["identity", "RL-50, vacuum PSF", "input"]
    for row in near["methods"].values():
        assert 0.0 <= row["found"] <= 1.0 and 0.0 <= row["false"] <= 1.0
        assert row["position_error"] is None or 0.0 <= row["position_error"] <= 1.5
    # The identity changes nothing (up to float32 round-off in its compression and expansion).
    identity, recorded = near["methods"]["identity"], near["methods"]["input"]
    assert (identity["found"], identity["false"]) == (recorded["found"], recorded["false"])
    assert identity["position_error"] == pytest.approx(recorded["position_error"], abs=1e-4)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"n_spectra": 0}, "n_spectra must be a positive whole number, not 0."),
        ({"n_spectra": -3}, "n_spectra must be a positive whole number, not -3."),
        ({"n_spectra": 2.5}, "n_spectra must be a positive whole number, not 2.5."),
        ({"n_window_spectra": 0}, "n_window_spectra must be a positive whole number, not 0."),
        ({"rl_iterations": (5, 0)}, "rl_iterations must be a positive whole number, not 0."),
        ({"rl_iterations": (5, -2)}, "rl_iterations must be a positive whole number, not -2."),
        ({"rl_iterations": ()}, "rl_iterations is empty; give one Richardson-Lucy iteration count at least"),
        ({"seed": -1}, "seed must be a whole number of 0 or more, not -1."),
        ({"presets": ("reference", "bogus")}, "Unknown evaluation set 'bogus'"),
    ],
)
def test_evaluate_refuses_bad_settings_before_any_spectrum(monkeypatch, identity_model, settings, message):
    monkeypatch.setattr(report, "evaluation_batches", lambda *a, **k: pytest.fail("spectra were generated"))
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate(identity_model, **{"presets": ("reference",), "n_spectra": 8, **settings})


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"n_spectra": 0}, "n_spectra must be a positive whole number, not 0."),
        ({"n_spectra": -2}, "n_spectra must be a positive whole number, not -2."),
        ({"seed": -1}, "seed must be a whole number of 0 or more, not -1."),
        ({"rl_iterations": 0}, "rl_iterations must be a positive whole number, not 0."),
    ],
)
def test_near_zlp_significance_refuses_bad_settings_before_any_spectrum(monkeypatch, settings, message):
    monkeypatch.setattr(report, "generate_batch", lambda *a, **k: pytest.fail("spectra were generated"))
    monkeypatch.setattr(report, "prepare_vacuum_psfs", lambda *a, **k: pytest.fail("the vacuum was prepared"))
    with pytest.raises(ValueError, match=re.escape(message)):
        near_zlp_significance({}, np.ones((1, 256)), **settings)


def test_update_model_card_replaces_the_evaluation_section(tmp_path):
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model card\n\n## Evaluation\n\nold numbers\n\n## Limits\n\nkeep me\n")
    report = "# EELSpecNet versus Richardson-Lucy\n\nintro\n\n## Preset `reference`\n\n| metric | input |\n"
    update_model_card(card, report, "eelspecnet evaluate --n-spectra 8")
    text = card.read_text()
    assert "old numbers" not in text and "## Limits\n\nkeep me" in text
    assert text.count("## Evaluation") == 1
    assert "Produced by `eelspecnet evaluate --n-spectra 8`." in text
    # The report's title is dropped and its headings move one level down, under the section.
    assert "EELSpecNet versus Richardson-Lucy" not in text
    assert "### Preset `reference`" in text and text.index("### Preset") > text.index("## Evaluation")
    update_model_card(card, report.replace("input", "RL-5"), "again")
    assert text.count("## Evaluation") == 1 and "| metric | RL-5 |" in card.read_text()


def test_evaluate_command_writes_the_report_and_the_card(identity_model, tmp_path):
    # No preset, only the windows (one spectrum per set): the tables, no figures (they show presets).
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model card\n\n## Evaluation\n\nold numbers\n\n## Limits\n\nkeep me\n")
    out = tmp_path / "report"
    # A global option before the sub-command (--traceback); an iteration count given twice.
    args = ["--traceback", "evaluate", "--model", str(identity_model), "--out", str(out), "--n-spectra", "4",
            "--presets", "--rl-iterations", "3", "3", "--seed", "5", "--card", str(card)]
    main(args)
    written = json.loads((out / "evaluation.json").read_text())
    assert written["settings"]["rl_iterations"] == [3] and written["settings"]["seed"] == 5
    assert written["settings"]["model"]["file"] == str(identity_model)
    assert list(written["presets"]) == [f"reference, {n} ch, ZLP at {z}" for n, z in WINDOW_SETS]
    assert set(written["settings"]["n_spectra"].values()) == {1}
    assert sorted(path.name for path in out.iterdir()) == ["evaluation.json", "evaluation.md"]
    text = card.read_text()
    assert "old numbers" not in text and "## Limits\n\nkeep me" in text
    # The section is replaced where it stood, and records the sub-command's arguments.
    assert text.index("## Evaluation") < text.index("## Limits")
    assert f"Produced by `eelspecnet evaluate {' '.join(args[2:])}`" in text
    assert "### Other windows (the `reference` physics)" in text and "## Preset" not in text
