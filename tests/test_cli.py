"""The command line (``eelspecnet``, in-process through ``main(argv)``) and the quiet start."""

import os
import re
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import hyperspy_eelspecnet  # noqa: F401 (first: exspy without HyperSpy's deprecation noise)
import hyperspy.api as hs
from exspy.signals import EELSSpectrum

from hyperspy_eelspecnet.cli import main
from hyperspy_eelspecnet.spectral import fwhm

SUBCOMMANDS = ["train", "finetune", "evaluate", "deconvolve", "demo"]
DISPERSION = 0.005


def run_cli(argv, capsys):
    """``main(argv)``: (exit code, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    out, err = capsys.readouterr()
    return code, out, err


def _spectra(gaussian_zlp_spectra, positions, n_channels=256, zlp=80.0, **kwargs):
    signal = EELSSpectrum(gaussian_zlp_spectra(n_channels, positions, **kwargs))
    energy = signal.axes_manager.signal_axes[0]
    energy.scale, energy.offset, energy.units, energy.name = DISPERSION, -zlp * DISPERSION, "eV", "Energy loss"
    signal.metadata.General.title = "low loss"
    return signal


def user_environment():
    """The environment of a fresh shell: without the settings this test process made on import."""
    return {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")}


# --------------------------------------------------------------------------- help


def test_help_lists_every_subcommand(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    assert out.startswith("usage: eelspecnet")
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize(
    "command, option",
    [("train", "--config"), ("finetune", "--specimen"), ("evaluate", "--rl-iterations"),
     ("deconvolve", "--psf"), ("demo", "--instrument")],
)
def test_subcommand_help(capsys, command, option):
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0
    assert out.startswith(f"usage: eelspecnet {command}") and option in out


def test_no_or_unknown_subcommand_exits_2(capsys):
    assert run_cli([], capsys)[0] == 2
    code, _, err = run_cli(["frobnicate", "x.hspy"], capsys)
    assert code == 2 and "invalid choice" in err


# --------------------------------------------------------------------------- deconvolve


def test_deconvolve_spectrum_image_with_vacuum_psf_and_plot(tmp_path, capsys, identity_model, gaussian_zlp_spectra):
    signal = _spectra(gaussian_zlp_spectra, 80.0 + np.linspace(-2, 2, 6).reshape(2, 3))
    source, vacuum_file, png = tmp_path / "map.hspy", tmp_path / "vacuum.hspy", tmp_path / "map.png"
    signal.save(source)
    vacuum = _spectra(gaussian_zlp_spectra, [80.4], fwhm=10.0, loss_level=0.0).inav[0]
    vacuum.metadata.General.title = "vacuum"
    vacuum.save(vacuum_file)
    code, out, err = run_cli(
        ["deconvolve", source, "--model", identity_model, "--rl-iterations", "8", "--psf", vacuum_file,
         "--plot", png],
        capsys,
    )
    assert code == 0, err
    restored_path = tmp_path / "map_eelspecnet.hspy"
    rl_path = tmp_path / "map_eelspecnet_richardson_lucy.hspy"
    restored, rl = hs.load(restored_path), hs.load(rl_path)
    for result in (restored, rl):
        assert isinstance(result, EELSSpectrum) and result.data.shape == (2, 3, 256)
        assert result.axes_manager.signal_axes[0].offset == pytest.approx(-80 * DISPERSION)
        assert result.axes_manager.signal_axes[0].scale == pytest.approx(DISPERSION)
        np.testing.assert_allclose(result.data.sum(-1), signal.data.sum(-1), rtol=1e-6)
    np.testing.assert_allclose(restored.data, signal.data, rtol=1e-5, atol=1e-6 * signal.data.max())  # identity
    assert np.all(fwhm(rl.data) < fwhm(signal.data) - 1)
    assert restored.metadata.General.title == "low loss after EELSpecNet restoration (identity-test vtest)"
    assert rl.metadata.General.title == "low loss after Richardson-Lucy deconvolution 8 iterations"
    assert rl.metadata.Signal.EELSpecNet.richardson_lucy.psf_source.startswith("signal 'vacuum': measured vacuum ZLP")
    assert png.stat().st_size > 10_000
    assert out.splitlines() == [
        f"EELSpecNet restoration written to {restored_path}",
        f"Richardson-Lucy deconvolution (8 iterations) written to {rl_path}",
        f"Comparison figure written to {png}",
    ]


def test_deconvolve_msa_spectrum_into_a_new_folder_without_rl(tmp_path, capsys, identity_model, gaussian_zlp_spectra):
    source = tmp_path / "spectrum.msa"
    spectrum = _spectra(gaussian_zlp_spectra, [81.3]).inav[0]
    spectrum.save(source)
    target = tmp_path / "out" / "restored.hspy"
    code, out, err = run_cli(
        ["deconvolve", source, "-o", target, "--rl-iterations", "0", "--model", identity_model], capsys
    )
    assert code == 0, err
    restored = hs.load(target)
    assert isinstance(restored, EELSSpectrum)  # .msa loads as a plain Signal1D: made EELS
    assert restored.data.shape == (256,)
    np.testing.assert_allclose(restored.data, spectrum.data, rtol=1e-5, atol=1e-6 * spectrum.data.max())
    assert not (tmp_path / "out" / "restored_richardson_lucy.hspy").exists()
    assert out == f"EELSpecNet restoration written to {target}\n"


def test_core_loss_file_exits_2_with_one_line(tmp_path, capsys, data_dir, identity_model):
    target = tmp_path / "restored.hspy"  # never beside the input in tests/data, even if this broke
    code, _, err = run_cli(["deconvolve", data_dir / "EELS_SI.dm4", "-o", target, "--model", identity_model], capsys)
    assert code == 2 and not target.exists()
    assert err.startswith("eelspecnet deconvolve: error: No zero-loss peak found in 4 spectra")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_narrow_zlp_file_exits_2(tmp_path, capsys, identity_model, gaussian_zlp_spectra):
    source = tmp_path / "narrow.hspy"
    _spectra(gaussian_zlp_spectra, [80.0], fwhm=2.0).save(source)  # the identity model restores 3 channels
    code, _, err = run_cli(["deconvolve", source, "--model", identity_model], capsys)
    assert code == 2 and "already narrower" in err
    assert not (tmp_path / "narrow_eelspecnet.hspy").exists()


def test_files_that_are_not_spectra_exit_2(tmp_path, capsys):
    image = tmp_path / "image.hspy"
    hs.signals.Signal2D(np.ones((8, 8))).save(image)
    code, _, err = run_cli(["deconvolve", image], capsys)
    assert code == 2 and "signal dimension 2" in err
    code, _, err = run_cli(["deconvolve", tmp_path / "nothing.dm4"], capsys)
    assert code == 2 and "cannot read" in err.lower()
    code, _, err = run_cli(["deconvolve", image, "-o", image], capsys)
    assert code == 2 and "overwrite the input" in err
    (tmp_path / "garbage.dm3").write_bytes(b"hello\n")  # rosettasciio: NotImplementedError
    code, _, err = run_cli(["deconvolve", tmp_path / "garbage.dm3"], capsys)
    assert code == 2 and "cannot read" in err.lower() and err.count("\n") == 1


def test_output_format_that_cannot_hold_the_spectra_exits_2_before_restoring(
    tmp_path, capsys, identity_model, gaussian_zlp_spectra
):
    source = tmp_path / "line.hspy"
    _spectra(gaussian_zlp_spectra, [80.0, 81.0]).save(source)  # a line scan: .msa holds one spectrum
    cases = [
        (["-o", tmp_path / "out" / "o.msa"], "HyperSpy cannot write spectra of navigation dimension 1", ".hspy"),
        (["--plot", tmp_path / "fig.xyz"], "cannot draw a figure", ".png"),
    ]
    for options, message, remedy in cases:
        code, _, err = run_cli(["deconvolve", source, *options, "--model", identity_model], capsys)
        assert code == 2 and err.startswith(f"eelspecnet deconvolve: error: {message}") and remedy in err
        assert err.count("\n") == 1
    assert [path.name for path in tmp_path.iterdir()] == ["line.hspy"]  # nothing restored, nothing written


def test_writer_failure_after_restoring_exits_2_with_one_line(tmp_path, capsys, identity_model, gaussian_zlp_spectra):
    source = tmp_path / "line.hspy"
    _spectra(gaussian_zlp_spectra, [80.0, 81.0]).save(source)
    (tmp_path / "taken").write_text("a file, not a folder")
    code, _, err = run_cli(
        ["deconvolve", source, "-o", tmp_path / "taken" / "o.hspy", "--rl-iterations", "0", "--model", identity_model],
        capsys,
    )
    assert code == 2 and err.startswith(f"eelspecnet deconvolve: error: cannot write {tmp_path / 'taken' / 'o.hspy'}")
    assert err.count("\n") == 1


WS2_SPECIMEN = "Position-5-Specimen_EELS-Spectrum_m0d93eV-to-9d07eV.txt"
WS2_VACUUM = "Position-2-Vacuum_EELS-Spectrum_m0d93eV-to-9d07eV.txt"


def test_deconvolve_reads_the_text_files_finetune_reads_given_their_dispersion(tmp_path, capsys, identity_model, data_dir):
    specimen, vacuum = data_dir / "eelsfitter_ws2" / WS2_SPECIMEN, data_dir / "eelsfitter_ws2" / WS2_VACUUM
    code, out, err = run_cli(["deconvolve", specimen, "--model", identity_model, "--psf", vacuum], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"eelspecnet deconvolve: error: {specimen} is a .txt file, which does not say its dispersion")
    # -o without an extension: HyperSpy writes .hspy, and the lines name the files written.
    code, out, err = run_cli(
        ["deconvolve", specimen, "--dispersion", "0.005", "--model", identity_model, "--rl-iterations", "2",
         "--psf", vacuum, "-o", tmp_path / "out" / "p5"],
        capsys,
    )
    assert code == 0, err
    # No energy axis in the file: said in one line (the --psf vacuum's maximum is its ZLP: no word).
    assert err.splitlines() == [
        "eelspecnet deconvolve: warning: 0 eV put at each spectrum's maximum: the file carries no energy axis; give "
        "--offset E (the energy of the first channel's centre) so that a window without a zero-loss peak can be recognised."
    ]
    restored_path, rl_path = tmp_path / "out" / "p5.hspy", tmp_path / "out" / "p5_richardson_lucy.hspy"
    assert out.splitlines() == [
        f"EELSpecNet restoration written to {restored_path}",
        f"Richardson-Lucy deconvolution (2 iterations) written to {rl_path}",
    ]
    restored, rl = hs.load(restored_path), hs.load(rl_path)
    data = np.loadtxt(specimen)
    np.testing.assert_allclose(restored.data, data, rtol=1e-5, atol=1e-6 * data.max())  # identity model
    assert np.all(fwhm(rl.data[None]) < fwhm(data[None]) - 1)
    axis = restored.axes_manager.signal_axes[0]
    assert axis.scale == 0.005 and axis.offset == pytest.approx(-0.93 + 0.0025, abs=0.005)  # the file name's axis
    assert rl.metadata.Signal.EELSpecNet.richardson_lucy.psf_source.startswith("signal 'Position-2-Vacuum")


def test_deconvolve_offset_lets_a_npy_window_without_a_zlp_be_refused(tmp_path, capsys, identity_model, data_dir):
    # A plasmon window from 5 eV saved as .npy: its maximum put at 0 eV, it would be restored as a ZLP.
    energy = np.arange(5.0, 25.0, 0.02)
    np.save(tmp_path / "plasmon.npy", 1e5 / (1 + ((energy - 15) / 0.35) ** 2) + 5e3 * (5 / energy) ** 1.5)
    command = ["deconvolve", tmp_path / "plasmon.npy", "--dispersion", "0.02", "--model", identity_model,
               "--rl-iterations", "0"]
    code, _, err = run_cli([*command, "--offset", "5"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("eelspecnet deconvolve: error: The maximum taken for the zero-loss peak lies at 15 to 15 eV")
    assert "0 eV lies outside the window" in err and not (tmp_path / "plasmon_eelspecnet.hspy").exists()
    # Without --offset it cannot be told; a line says so and how to let it be.
    code, _, err = run_cli(command, capsys)
    assert code == 0 and "give --offset E (the energy of the first channel's centre)" in err and err.count("\n") == 1
    # The WS2 specimen given its file name's offset: restored, without a word.
    specimen = data_dir / "eelsfitter_ws2" / WS2_SPECIMEN
    code, out, err = run_cli(["deconvolve", specimen, "--dispersion", "0.005", "--offset", "-0.93", "--model",
                              identity_model, "--rl-iterations", "0", "-o", tmp_path / "p5.hspy"], capsys)
    assert code == 0 and err == ""
    assert hs.load(tmp_path / "p5.hspy").axes_manager.signal_axes[0].offset == pytest.approx(-0.93)


def test_warnings_are_one_line_each_and_an_old_richardson_lucy_result_is_pointed_out(
    tmp_path, capsys, identity_model, gaussian_zlp_spectra
):
    source, vacuum = tmp_path / "map.hspy", tmp_path / "vacuum.hspy"
    _spectra(gaussian_zlp_spectra, [80.0, 81.0]).save(source)
    _spectra(gaussian_zlp_spectra, [80.4], fwhm=10.0, loss_level=0.0).inav[0].save(vacuum)
    code, out, err = run_cli(["deconvolve", source, "--model", identity_model, "--rl-iterations", "3"], capsys)
    assert code == 0, err
    old = tmp_path / "map_eelspecnet_richardson_lucy.hspy"
    assert old.exists()
    # Again without Richardson-Lucy, its PSF given by mistake: our warning without Python's source
    # line, and a line about the earlier run's file (kept: it is the user's).
    code, out, err = run_cli(
        ["deconvolve", source, "--model", identity_model, "--rl-iterations", "0", "--psf", vacuum], capsys
    )
    assert code == 0, err
    assert err.splitlines() == [
        "eelspecnet deconvolve: warning: psf is used only by Richardson-Lucy, which rl_iterations=0 skips: it was "
        "ignored (the EELSpecNet restoration does not use it; a fine-tuned model carries its own vacuum PSF). Pass "
        "rl_iterations > 0 to deconvolve with it, or leave psf out."
    ]
    assert out.splitlines() == [
        f"EELSpecNet restoration written to {tmp_path / 'map_eelspecnet.hspy'}",
        f"{old} is left from an earlier run (--rl-iterations 0 writes no Richardson-Lucy result): it does not "
        "belong to this restoration.",
    ]
    assert old.exists()


def test_other_packages_warnings_are_one_line_each_too(capsys, monkeypatch):
    import hyperspy_eelspecnet.cli as cli

    def warn(args):
        np.log(np.zeros(1))  # numpy's RuntimeWarning
        import warnings

        warnings.warn("first line\n   second line", FutureWarning)

    monkeypatch.setattr(cli, "_demo", warn)
    code, _, err = run_cli(["demo"], capsys)
    assert code == 0
    assert err.splitlines() == [
        "eelspecnet demo: warning: divide by zero encountered in log",
        "eelspecnet demo: warning: first line second line",
    ]


def test_no_progress_bar_unless_stderr_is_a_terminal(tmp_path, capsys, monkeypatch, identity_model, gaussian_zlp_spectra):
    hs.preferences.General.show_progressbar = True  # HyperSpy's default (the autouse fixture restores it)
    source = tmp_path / "map.hspy"
    _spectra(gaussian_zlp_spectra, np.full((2, 2), 80.0)).save(source)
    command = ["deconvolve", source, "--model", identity_model, "--rl-iterations", "0"]
    code, out, err = run_cli(command, capsys)
    assert code == 0, err
    assert out == f"EELSpecNet restoration written to {tmp_path / 'map_eelspecnet.hspy'}\n" and err == ""
    monkeypatch.setattr(type(sys.stderr), "isatty", lambda self: True)
    code, out, err = run_cli(command, capsys)
    assert code == 0 and "Completed" in err and "Completed" not in out  # the bar goes to stderr


def test_traceback_may_follow_the_subcommand(tmp_path, capsys):
    image = tmp_path / "image.hspy"
    hs.signals.Signal2D(np.ones((8, 8))).save(image)
    with pytest.raises(ValueError, match="signal dimension 2"):
        main(["deconvolve", image, "--traceback"])
    code, _, err = run_cli(["deconvolve", image], capsys)
    assert code == 2 and "signal dimension 2" in err


def test_finetune_refuses_a_specimen_as_vacuum_and_a_core_loss_file_in_one_line_unless_forced(
    tmp_path, capsys, data_dir
):
    ws2, out, absent = data_dir / "eelsfitter_ws2", tmp_path / "d", tmp_path / "absent.keras"
    mixed_up = ["finetune", ws2 / WS2_SPECIMEN, "--specimen", ws2 / WS2_VACUUM, "--dispersion", "0.005",
                "--out", out, "--model", absent]
    code, _, err = run_cli(mixed_up, capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"eelspecnet finetune: error: 1 of the 1 vacuum spectra ({WS2_SPECIMEN}) rise again")
    assert "recorded through a hole" in err and "--force" in err
    # --force: the same as a warning, and the run goes on (to the missing base model here).
    code, _, err = run_cli([*mixed_up, "--force"], capsys)
    warning, error = err.splitlines()
    assert code == 2 and warning.startswith(f"eelspecnet finetune: warning: 1 of the 1 vacuum spectra ({WS2_SPECIMEN})")
    assert error.startswith("eelspecnet finetune: error: No model file")
    code, _, err = run_cli(["finetune", data_dir / "EELS_SI.dm4", "--out", out], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "EELS_SI.dm4 spans 300-2347 eV: the window does not contain 0 eV, and the maximum taken for the zero" in err
    assert "(a plasmon or core-loss window), it is not a low-loss spectrum" in err
    assert not re.search(r"\d--\d", err)
    assert not out.exists()


# --------------------------------------------------------------------------- evaluate, finetune, demo: inputs first


@pytest.fixture
def no_evaluation(monkeypatch):
    """Fail the test if the evaluation starts: inputs must be refused before any work."""
    import hyperspy_eelspecnet.evaluation.report as report

    monkeypatch.setattr(report, "evaluate", lambda *a, **k: pytest.fail("the evaluation ran before checking inputs"))


def test_evaluate_refuses_bad_inputs_before_any_work(
    tmp_path, capsys, no_evaluation, identity_model, gaussian_zlp_spectra
):
    vacuum = gaussian_zlp_spectra(256, [80.0], loss_level=0.0)
    np.savetxt(tmp_path / "vacuum.txt", vacuum)
    holed = vacuum.copy()
    holed[0, 200] = np.nan
    np.savetxt(tmp_path / "holed.txt", holed)
    out = tmp_path / "report"
    cases = [
        (["--vacuum", tmp_path / "nofile.txt"], "No file"),
        (["--vacuum", tmp_path / "holed.txt"], "(holed.txt) holds NaN"),
        (["--vacuum", tmp_path / "vacuum.txt", "--compare", tmp_path / "none.keras"], "No model file"),
        (["--compare", identity_model], "--compare applies to the near-ZLP sets"),
        (["--near-zlp-spectra", "10"], "--near-zlp-spectra applies to the near-ZLP sets"),
    ]
    for options, message in cases:
        code, _, err = run_cli(["evaluate", "--out", out, "--model", identity_model, *options], capsys)
        assert code == 2 and err.startswith("eelspecnet evaluate: error: ") and message in err, (options, err)
        assert "needs --vacuum" in err or "--vacuum" in options
        assert err.count("\n") == 1
    code, _, err = run_cli(["evaluate", "--out", out, "--model", tmp_path / "none.keras"], capsys)
    assert code == 2 and "No model file" in err and err.count("\n") == 1
    code, _, err = run_cli(["evaluate", "--out", tmp_path / "vacuum.txt", "--model", identity_model], capsys)
    assert code == 2 and "is a file; give a folder" in err
    code, _, err = run_cli(["evaluate", "--out", out, "--card", tmp_path / "no" / "CARD.md"], capsys)
    assert code == 2 and f"No folder {tmp_path / 'no'}" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--n-spectra", "0"], "argument --n-spectra: give a positive whole number (e.g. 8), not '0'"),
        (["--n-spectra", "-5"], "argument --n-spectra: give a positive whole number (e.g. 8), not '-5'"),
        (["--near-zlp-spectra", "0"], "argument --near-zlp-spectra: give a positive whole number (e.g. 8), not '0'"),
        (["--near-zlp-spectra", "-2"], "argument --near-zlp-spectra: give a positive whole number (e.g. 8), not '-2'"),
        (["--rl-iterations", "0"], "argument --rl-iterations: give a positive whole number (e.g. 8), not '0'"),
        (["--rl-iterations", "5", "-1"], "argument --rl-iterations: give a positive whole number (e.g. 8), not '-1'"),
        (["--seed", "-1"], "argument --seed: give a whole number of 0 or more (e.g. 5), not '-1'"),
        (["--seed", "x"], "argument --seed: give a whole number of 0 or more (e.g. 5), not 'x'"),
    ],
)
def test_evaluate_counts_and_seed_must_be_whole_numbers(tmp_path, capsys, no_evaluation, identity_model, options, message):
    out = tmp_path / "report"
    code, _, err = run_cli(["evaluate", "--out", out, "--model", identity_model, *options], capsys)
    assert code == 2 and message in err, err
    assert not out.exists()


def test_finetune_seed_must_not_be_negative(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["finetune", "vacuum.txt", "--out", "tuned", "--seed", "-1"], capsys)
    assert code == 2 and "argument --seed: give a whole number of 0 or more (e.g. 5), not '-1'" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "options, message",
    [
        (["--presets", "--no-windows", "--card", "{tmp}/MODEL_CARD.md"],
         "nothing to evaluate: --presets names no preset, --no-windows skips the other windows and no --vacuum is given"),
        (["--presets", "reference", "bogus"], "Unknown evaluation set 'bogus'"),
        (["--out", "{tmp}/file/report"], "cannot create --out {tmp}/file/report: {tmp}/file is a file; give a folder"),
        (["--card", "{tmp}"], "--card {tmp} is a folder; give the model card's file"),
        (["--card", "{tmp}/file/CARD.md"], "cannot create the model card {tmp}/file/CARD.md: {tmp}/file is a file"),
        (["--card", "{tmp}/binary.md"], "cannot read the model card {tmp}/binary.md"),
    ],
)
def test_evaluate_refuses_an_empty_run_an_unknown_preset_and_unwritable_outputs_before_any_work(
    tmp_path, capsys, no_evaluation, identity_model, options, message
):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "binary.md").write_bytes(b"\xff\xfe\x00\x81")
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Card\n\n## Evaluation\n\nnumbers\n")
    out = tmp_path / "report"
    options = [option.format(tmp=tmp_path) for option in options]
    code, _, err = run_cli(["evaluate", "--out", out, "--model", identity_model, *options], capsys)
    assert code == 2 and err.startswith(f"eelspecnet evaluate: error: {message.format(tmp=tmp_path)}"), err
    assert err.count("\n") == 1
    assert not out.exists() and card.read_text() == "# Card\n\n## Evaluation\n\nnumbers\n"


def test_evaluate_reports_a_failed_write_in_one_line(tmp_path, capsys, monkeypatch, identity_model):
    import hyperspy_eelspecnet.evaluation.report as report

    def fail(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "report" / "evaluation.json"))

    monkeypatch.setattr(report, "evaluate", lambda *a, **k: {})
    monkeypatch.setattr(report, "write_report", fail)
    code, _, err = run_cli(["evaluate", "--out", tmp_path / "report", "--model", identity_model], capsys)
    assert code == 2 and err.startswith(f"eelspecnet evaluate: error: cannot write the report into {tmp_path / 'report'}: ")
    assert "Permission denied" in err and err.count("\n") == 1


def test_demo_refuses_a_missing_model_and_minutes_without_instrument_before_writing(tmp_path, capsys):
    out = tmp_path / "demo"
    code, _, err = run_cli(["demo", "--out", out, "--model", tmp_path / "none.keras"], capsys)
    assert code == 2 and err.startswith("eelspecnet demo: error: No model file") and err.count("\n") == 1
    assert "leave out --model on the command line" in err  # said in the command line's terms too
    code, _, err = run_cli(["demo", "--out", out, "--minutes", "5", "--model", tmp_path / "none.keras"], capsys)
    assert code == 2 and "(--minutes)" in err and "--instrument" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("command", [["finetune", "vacuum.txt", "--out", "tuned"], ["demo", "--instrument"]])
@pytest.mark.parametrize("minutes", ["0", "-1", "nan"])
def test_minutes_must_be_positive(tmp_path, capsys, monkeypatch, command, minutes):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli([*command, "--minutes", minutes], capsys)
    assert code == 2 and f"argument --minutes: give a positive number of minutes (e.g. 20), not '{minutes}'" in err
    assert list(tmp_path.iterdir()) == []


def test_train_reports_a_bad_configuration_in_one_line(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("batchsize: 4\n")
    code, _, err = run_cli(["train", "--config", tmp_path / "bad.yaml", "--out", tmp_path / "out"], capsys)
    assert code == 2 and "batchsize" in err and err.count("\n") == 1
    code, _, err = run_cli(["train", "--config", tmp_path / "bad.yaml", "--out", tmp_path / "out", "--max-minutes", "0"], capsys)
    assert code == 2 and "argument --max-minutes: give a positive number" in err
    assert not (tmp_path / "out").exists()
    # For a bug report: the error with its traceback, raised where it was raised.
    with pytest.raises(ValueError, match="batchsize") as raised:
        main(["--traceback", "train", "--config", tmp_path / "bad.yaml", "--out", tmp_path / "out"])
    assert raised.traceback[-1].path.name == "trainer.py"


#: A configuration that trains in a second (were it not refused).
TINY_TRAINING = "filters: [4, 8]\nbatch_size: 2\nsteps_per_epoch: 1\nepochs: 1\nwarmup_steps: 1\nvalidation_size: 2\n"


@pytest.mark.parametrize("write, match", [
    (lambda path: path.write_text("filters: [4, 8\n"), r"c\.yaml is not valid YAML: .* \(line 2, column 1\)\.$"),
    (lambda path: path.mkdir(), r"c\.yaml is a folder; give the training configuration's YAML file \(--config\)\.$"),
    (lambda path: path.write_text("- epochs: 3\n"), r"The configuration in .*c\.yaml must be a mapping of settings"),
    (lambda path: path.write_text(TINY_TRAINING + "kernel_size: 0\n"), r"error: kernel_size must be at least 1; got 0\.$"),
    (lambda path: path.write_text(TINY_TRAINING + "mixture: [{preset: instrument, overrides: {measured_psf_probability: 0.8}}]\n"),
     r"error: Mixture component\(s\) 0 \(instrument\) set measured_psf_probability above 0, but measured_psfs"),
])
def test_train_reports_an_unusable_configuration_in_one_line_before_writing(tmp_path, capsys, write, match):
    write(tmp_path / "c.yaml")
    code, _, err = run_cli(["train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "out"], capsys)
    assert code == 2 and err.startswith("eelspecnet train: error: ") and err.count("\n") == 1
    assert re.search(match, err.strip()), err
    assert not (tmp_path / "out").exists()


def test_train_refuses_to_replace_a_finished_run(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(TINY_TRAINING)
    out = tmp_path / "out"
    out.mkdir()
    (out / "eelspecnet.keras").write_text("a model")
    code, _, err = run_cli(["train", "--config", tmp_path / "c.yaml", "--out", out], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"{out} holds a finished training run (eelspecnet.keras)" in err and "(--out)" in err and "(--resume)" in err
    assert [p.name for p in out.iterdir()] == ["eelspecnet.keras"] and (out / "eelspecnet.keras").read_text() == "a model"


def test_train_help_says_when_the_time_limit_is_checked(capsys):
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    assert "wall-clock limit in minutes, checked at the end of each epoch" in " ".join(out.split())


# --------------------------------------------------------------------------- quiet start


def test_import_prints_nothing():
    """A product requirement: no TensorFlow log lines, no numba or HyperSpy deprecation noise."""
    done = subprocess.run(
        [sys.executable, "-c", "import hyperspy_eelspecnet"],
        capture_output=True, text=True, env=user_environment(), timeout=120,
    )
    assert done.returncode == 0
    assert (done.stdout, done.stderr) == ("", "")


@pytest.mark.slow
def test_deconvolve_in_a_fresh_process_prints_only_its_result(tmp_path, identity_model, gaussian_zlp_spectra):
    """TensorFlow is imported by the restoration: its start-up lines must not reach the user."""
    source = tmp_path / "map.hspy"
    _spectra(gaussian_zlp_spectra, np.full((2, 2), 80.0)).save(source)
    done = subprocess.run(
        [sys.executable, "-m", "hyperspy_eelspecnet.cli", "deconvolve", str(source), "--model", str(identity_model),
         "--rl-iterations", "0"],
        capture_output=True, text=True, env=user_environment(), timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # No progress bar: stderr is not a terminal here (a log file).
    assert done.stdout == f"EELSpecNet restoration written to {tmp_path / 'map_eelspecnet.hspy'}\n"


@pytest.mark.slow
def test_demo_writes_signals_and_figures(tmp_path, capsys, identity_model):
    hs.preferences.General.show_progressbar = True  # HyperSpy's default (the autouse fixture restores it)
    out = tmp_path / "demo"
    code, printed, err = run_cli(["demo", "--out", out, "--model", identity_model], capsys)
    assert code == 0, err
    assert "Completed" not in printed + err  # no progress bar: stderr is not a terminal here
    suffixes = ("", "_truth", "_eelspecnet", "_richardson_lucy")
    signals = [hs.load(out / f"silver_nanowire{suffix}.hspy") for suffix in suffixes]
    for signal in signals:
        assert signal.data.shape == (16, 48, 1024)
    raw, _, restored, rl = signals
    np.testing.assert_allclose(restored.data, raw.data, rtol=1e-4, atol=1e-6 * raw.data.max())  # identity model
    assert np.median(fwhm(rl.data)) < np.median(fwhm(raw.data))
    for name in ("modal_evolution.png", "energy_filtered_maps.png", "phonon_along_wire.png", "single_pixel.png"):
        assert (out / name).stat().st_size > 10_000 and str(out / name) in printed
    # Each method's line names its phonon map and its SP1-SP4 maps' correlation with the truth.
    sp_ranges = re.findall(r"map correlation (-?\d\.\d{3}) \(SP1-SP4 maps (-?\d\.\d{4})-(-?\d\.\d{4})\)", printed)
    assert len(sp_ranges) == 2 and all(float(low) <= float(high) <= 1 for _, low, high in sp_ranges)
