"""The command line: ``eelspecnet deconvolve`` and ``eelspecnet demo``."""

import matplotlib
import numpy as np
import pytest
from conftest import DATA_DIR, load_ws2

matplotlib.use("Agg")

import hyperspy.api as hs

from hyperspy_eelspecnet.cli import main
from hyperspy_eelspecnet.restoration import zlp_fwhm


def test_deconvolve_hspy_writes_both_results_and_plot(tmp_path, capsys, default_model):
    source = tmp_path / "ws2.hspy"
    load_ws2().save(source)
    png = tmp_path / "ws2.png"
    with pytest.warns(UserWarning, match="outside the model"):
        main(["deconvolve", str(source), "--rl-iterations", "10", "--plot", str(png)])
    restored_path, rl_path = tmp_path / "ws2_eelspecnet.hspy", tmp_path / "ws2_eelspecnet_richardson_lucy.hspy"
    restored, rl = hs.load(restored_path), hs.load(rl_path)
    for signal in (restored, rl):
        assert signal.data.shape == (6, 2000)
        assert signal.metadata.Signal.signal_type == "EELS"
    assert "after EELSpecNet restoration" in restored.metadata.General.title
    assert rl.metadata.General.title.endswith("after Richardson-Lucy deconvolution 10 iterations")
    assert png.stat().st_size > 10_000
    out = capsys.readouterr().out
    assert all(str(path) in out for path in (restored_path, rl_path, png))


def test_deconvolve_msa_spectrum_without_rl(tmp_path, capsys, default_model):
    source = tmp_path / "vacuum.msa"
    spectrum = load_ws2("Vacuum").inav[0]
    spectrum.save(source)
    target = tmp_path / "out" / "restored.hspy"  # the folder is created
    with pytest.warns(UserWarning):
        main(["deconvolve", str(source), "-o", str(target), "--rl-iterations", "0"])
    restored = hs.load(target)
    assert restored.data.shape == (2000,)
    assert restored.metadata.Signal.signal_type == "EELS"  # .msa loads as a plain Signal1D
    assert zlp_fwhm(np.nan_to_num(restored.data)) < zlp_fwhm(spectrum.data)
    assert not (tmp_path / "out" / "restored_richardson_lucy.hspy").exists()


def test_core_loss_exits_2_with_one_line(capsys, default_model):
    with pytest.raises(SystemExit) as exit_info:
        main(["deconvolve", str(DATA_DIR / "EELS_SI.dm4")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("eelspecnet deconvolve: error: No zero-loss peak found")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_output_must_not_overwrite_the_input(tmp_path, capsys):
    source = tmp_path / "ws2.hspy"
    with pytest.raises(SystemExit) as exit_info:
        main(["deconvolve", str(source), "-o", str(source)])
    assert exit_info.value.code == 2
    assert "overwrite the input" in capsys.readouterr().err


def test_missing_file_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["deconvolve", str(tmp_path / "nothing.dm4")])
    assert exit_info.value.code == 2
    assert "cannot read" in capsys.readouterr().err


def test_demo_writes_files_and_restores(tmp_path, capsys, default_model):
    out = tmp_path / "demo"
    main(["demo", "--out", str(out)])
    printed = capsys.readouterr().out
    suffixes = ["", "_truth", "_eelspecnet", "_richardson_lucy"]
    signals = [hs.load(out / f"silver_nanowire{suffix}.hspy") for suffix in suffixes]
    for signal in signals:
        assert signal.data.shape == (16, 48, 1024)
        assert signal.axes_manager.signal_axes[0].units == "eV"
    raw, truth, restored, rl = signals
    assert np.median(zlp_fwhm(np.nan_to_num(restored.data))) < 0.5 * np.median(zlp_fwhm(raw.data))
    assert "Richardson-Lucy deconvolution 50 iterations" in rl.metadata.General.title
    assert raw.metadata.Sample.ground_truth.mode_energies_eV.SP1 == pytest.approx(0.35)
    for name in ("modal_evolution.png", "energy_filtered_maps.png", "single_pixel.png"):
        assert (out / name).stat().st_size > 10_000
        assert str(out / name) in printed
