"""The demo: its phonon figures, judged on the ground truth itself and on the raw input; its
output folder; and what its figures and lines name (the restorations stood in for)."""

import contextlib
import io
import os

import exspy
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from hyperspy_eelspecnet import plotting, restoration
from hyperspy_eelspecnet.cli import main
from hyperspy_eelspecnet.data import membrane_hole, silver_nanowire
from hyperspy_eelspecnet.demo import phonon_figures, run_demo
from hyperspy_eelspecnet.training import finetuning


@pytest.fixture(scope="module")
def nanowire():
    return silver_nanowire(return_ground_truth=True)


def test_the_truth_scores_perfectly_and_gives_its_temperature(nanowire):
    _, truth = nanowire
    figures = phonon_figures(truth, truth)
    assert figures["found_along_wire"] == figures["found_in_membrane"] == 1.0
    assert figures["false_in_hole"] == 0.0
    assert figures["map_correlation"] == pytest.approx(1.0)
    assert all(r == pytest.approx(1.0) for r in figures["sp_map_correlation"].values())
    # Detailed balance at 295 K, read back over the phonon window (0.07-0.13 eV) at its centre.
    assert figures["temperature_K"] == pytest.approx(295, rel=0.1)


def test_the_raw_input_shows_no_phonon_where_it_is_and_no_clean_map(nanowire):
    signal, truth = nanowire
    figures = phonon_figures(signal, truth)
    assert figures["found_along_wire"] < 0.5 and figures["found_in_membrane"] < 0.5
    assert figures["map_correlation"] < 0.9  # the ZLP tail, not the phonon, fills the window
    assert membrane_hole().sum() == 28


def test_several_restorations_are_scored_as_each_alone(nanowire):
    signal, truth = nanowire
    together = phonon_figures({"input": signal, "truth": truth}, truth)
    assert together == {"input": phonon_figures(signal, truth), "truth": phonon_figures(truth, truth)}


@pytest.fixture
def no_model(monkeypatch):
    """Loading the model fails the test: the output folder is checked before it."""
    def load(model):
        raise AssertionError("the model was loaded before the output folder was checked")

    monkeypatch.setattr(restoration, "EELSpecNetDeconvolution", load)


def test_an_output_folder_that_is_a_file_is_refused_in_one_line(tmp_path, no_model):
    existing = tmp_path / "existing"
    existing.write_text("")
    with pytest.raises(ValueError, match=f"Output folder {existing} is an existing file; give the path of a folder"):
        run_demo(existing)
    with pytest.raises(ValueError, match=f"cannot be made: {existing} is a file; give a path under a folder"):
        run_demo(existing / "a" / "b")
    assert existing.read_text() == ""


def test_an_output_folder_that_cannot_be_written_is_refused(tmp_path, no_model, monkeypatch):
    if os.geteuid() != 0:  # root writes anywhere: the check is stood in for below
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ValueError, match=f"cannot be written: {locked} does not allow writing"):
            run_demo(locked / "demo")
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ValueError, match=f"cannot be written: {tmp_path} does not allow writing; give a folder"):
        run_demo(tmp_path / "demo" / "deeper")
    assert not (tmp_path / "demo").exists()


def test_a_folder_the_file_system_refuses_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(restoration, "EELSpecNetDeconvolution", lambda model: None)

    def read_only(self, *args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(type(tmp_path), "mkdir", read_only)
    with pytest.raises(ValueError, match=r"cannot be made \(Read-only file system\); give a folder you can write to"):
        run_demo(tmp_path / "demo")


def test_cli_demo_into_a_file_says_so_in_one_line(tmp_path, capsys, no_model):
    existing = tmp_path / "existing"
    existing.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(existing)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "is an existing file" in err


@pytest.fixture(scope="module")
def instrument_demo(tmp_path_factory):
    """``run_demo(instrument=True)`` with stand-ins for the model, the fine-tune and the
    restorations (each distinct: blind restored = input, fine-tuned = 2 x input, Richardson-Lucy
    0.5 x input with its own ZLP and 0.25 x with the vacuum PSF), its figures kept."""
    def deconvolve(self, model=None, rl_iterations=50, psf=None, show_progressbar=None):
        restored, rl = self.deepcopy(), self.deepcopy()
        restored.data = restored.data * (1.0 if model is None else 2.0)
        rl.data = rl.data * (0.5 if psf is None else 0.25)
        return restored, rl

    figures = {}

    def kept(name):
        draw = getattr(plotting, name)

        def wrapper(*args, **kwargs):
            figures[name] = draw(*args, **kwargs)
            return figures[name]
        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(restoration, "EELSpecNetDeconvolution", lambda model: None)
        patch.setattr(finetuning, "finetune", lambda *args, **kwargs: "tuned.keras")
        patch.setattr(exspy.signals.EELSSpectrum, "eelspecnet_deconvolve", deconvolve, raising=False)
        for name in ("plot_comparison", "plot_maps_side_by_side", "plot_feature_along_line"):
            patch.setattr(plotting, name, kept(name))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            run_demo(tmp_path_factory.mktemp("demo"), instrument=True, minutes=0.01)
    return figures, printed.getvalue()


def test_instrument_demo_figures_name_the_restoration_they_show(instrument_demo, nanowire):
    figures, _ = instrument_demo
    signal, _ = nanowire
    linear = figures["plot_comparison"].axes[0]  # one pixel: no navigator
    assert [text.get_text() for text in linear.get_legend().get_texts()] == [
        "input", "EELSpecNet, fine-tuned", "Richardson-Lucy, vacuum PSF", "ground truth"
    ]
    tip = signal.inav[5, 7].data
    restored, rl = (line.get_ydata() for line in linear.get_lines()[1:3])
    np.testing.assert_allclose(restored, 2 * tip)
    np.testing.assert_allclose(rl, 0.25 * tip)  # the vacuum PSF's, not the own ZLP's (0.5)
    maps = figures["plot_maps_side_by_side"]
    assert [ax.get_title() for ax in maps.axes if ax.get_images()][:3] == [
        "input: Ph (0.07-0.13 eV)", "EELSpecNet, fine-tuned: Ph (0.07-0.13 eV)", "ground truth: Ph (0.07-0.13 eV)"
    ]


def test_demo_tolerance_has_units_and_its_legend_hides_no_point(instrument_demo):
    figure = instrument_demo[0]["plot_feature_along_line"]
    legend = figure.legends[0]
    assert "EELSpecNet, fine-tuned (within 0.0075 eV of the truth" in legend.get_texts()[1].get_text()
    figure.draw_without_rendering()
    assert legend.get_window_extent().y1 < figure.axes[0].get_window_extent().y0


def test_demo_temperature_stands_beside_the_same_estimate_on_the_truth(instrument_demo, nanowire):
    printed = instrument_demo[1]
    lines = [line for line in printed.splitlines() if " K " in line or line.endswith(" K)")]
    assert len(lines) == 4  # one per restoration
    truth = phonon_figures(nanowire[1], nanowire[1])["temperature_K"]
    assert truth == pytest.approx(304, abs=1)  # not 295 K: the estimate is biased on the truth itself
    for line in lines:
        assert line.endswith(f"K (the same estimate on the truth: {truth:.0f} K; simulated at 295 K)")
