"""Spectra read from text, NumPy and HyperSpy files."""

from pathlib import Path

import numpy as np
import pytest

from hyperspy_eelspecnet.io import read_spectra

WS2_VACUUM = Path(__file__).parent / "data" / "eelsfitter_ws2" / "Position-2-Vacuum_EELS-Spectrum_m0d93eV-to-9d07eV.txt"


def test_text_file_is_one_spectrum_without_a_dispersion():
    read = read_spectra(WS2_VACUUM)
    assert read.spectra.shape == (1, 2000)
    assert read.names == [WS2_VACUUM.name]
    assert read.dispersion is None
    np.testing.assert_array_equal(read.spectra[0], np.loadtxt(WS2_VACUUM))


def test_spectrum_image_gives_one_spectrum_per_pixel_named_by_its_indices(tmp_path):
    import exspy

    data = np.arange(2 * 3 * 64, dtype=float).reshape(2, 3, 64) + 1
    signal = exspy.signals.EELSSpectrum(data)
    axis = signal.axes_manager.signal_axes[0]
    axis.scale, axis.units = 5.0, "meV"
    signal.save(tmp_path / "map.hspy")
    read = read_spectra(tmp_path / "map.hspy")
    assert read.spectra.shape == (6, 64)
    assert read.dispersion == pytest.approx(0.005)
    # s.inav order: x (the last navigation array axis) first.
    assert read.names[1] == "map.hspy(1, 0)"
    np.testing.assert_array_equal(read.spectra[1], data[0, 1])
    np.save(tmp_path / "rows.npy", data[0])
    assert read_spectra(tmp_path / "rows.npy").spectra.shape == (3, 64)


def test_missing_empty_and_non_spectra_files_are_refused(tmp_path):
    import hyperspy.api as hs

    with pytest.raises(FileNotFoundError):
        read_spectra(tmp_path / "absent.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="no spectrum"):
        read_spectra(tmp_path / "empty.txt")
    hs.signals.Signal2D(np.ones((8, 8))).save(tmp_path / "image.hspy")
    with pytest.raises(ValueError, match="signal dimension 2"):
        read_spectra(tmp_path / "image.hspy")
