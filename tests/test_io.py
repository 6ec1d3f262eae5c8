"""Spectra read from text, NumPy and HyperSpy files."""

import warnings
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


def test_energy_and_counts_columns_are_read_as_one_spectrum(tmp_path):
    energy = -0.5 + 0.005 * np.arange(300)
    counts = 1e5 * np.exp(-0.5 * (energy / 0.02) ** 2) + 10.0
    np.savetxt(tmp_path / "export.txt", np.column_stack([energy, counts]))
    read = read_spectra(tmp_path / "export.txt")
    assert read.spectra.shape == (1, 300) and read.dispersion is None
    np.testing.assert_allclose(read.spectra[0], counts)
    # Two spectra of two channels each in two rows stay rows: a column of counts is no energy axis.
    np.savetxt(tmp_path / "rows.txt", np.array([[3.0, 1.0], [1.0, 3.0], [2.0, 2.0]]))
    assert read_spectra(tmp_path / "rows.txt").spectra.shape == (3, 2)


def test_csv_tsv_and_a_single_column_are_read_as_spectra(tmp_path):
    rows = np.arange(2 * 16, dtype=float).reshape(2, 16) + 1
    np.savetxt(tmp_path / "rows.csv", rows, delimiter=",")
    np.savetxt(tmp_path / "rows.tsv", rows, delimiter="\t")
    for name in ("rows.csv", "rows.tsv"):
        np.testing.assert_array_equal(read_spectra(tmp_path / name).spectra, rows)
    # One spectrum saved as a column (a spectrum of one channel does not exist): one spectrum.
    np.savetxt(tmp_path / "column.txt", rows[0])
    np.save(tmp_path / "column.npy", rows[0][:, None])
    for name in ("column.txt", "column.npy"):
        read = read_spectra(tmp_path / name)
        np.testing.assert_array_equal(read.spectra, rows[:1])
        assert read.names == [name]


@pytest.mark.parametrize(
    "name, content, remedy",
    [("empty.npy", b"", "numpy.save"), ("garbage.dm3", b"hello\n", "HyperSpy reads"),
     ("garbage.hspy", b"hello\n", "HyperSpy reads"), ("words.csv", b"1,2,x\n", "separated by commas")],
)
def test_unreadable_files_name_the_file_and_the_remedy(tmp_path, name, content, remedy, caplog):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=f"Cannot read .*{name}: .*{remedy}") as error:
        read_spectra(tmp_path / name)
    assert "\n" not in str(error.value)
    # Our message replaces HyperSpy's "please report this error" log line.
    assert not [r for r in caplog.records if r.name.startswith("hyperspy") and r.levelname == "ERROR"]


def test_calibrated_files_give_their_energy_window_and_a_core_loss_window_holds_no_zero(data_dir):
    core_loss = read_spectra(data_dir / "EELS_SI.dm4")  # 300-2347 eV at 1 eV per channel
    assert core_loss.energy_range == pytest.approx((300.0, 2347.0))
    assert not core_loss.holds_zero_energy()
    text = read_spectra(WS2_VACUUM)
    assert text.energy_range is None and text.holds_zero_energy()  # a text file does not say


def test_span_writes_negative_ranges_without_a_double_minus():
    from hyperspy_eelspecnet.io import span

    assert span(-0.0034, -6.8e-05, ".2g") == "-0.0034 to -6.8e-05"
    assert span(-0.5, 2.0) == "-0.5 to 2"
    assert span(300.0, 2347.0, ".4g") == "300-2347"


def test_read_signal_reads_text_with_a_dispersion_and_zero_energy_at_the_zlp(tmp_path, data_dir):
    import hyperspy.api as hs
    from exspy.signals import EELSSpectrum

    from hyperspy_eelspecnet.io import read_signal

    with pytest.raises(ValueError, match=r"does not say its dispersion; give it .* --dispersion"):
        read_signal(WS2_VACUUM)
    with pytest.warns(UserWarning, match=r"^0 eV put at each spectrum's maximum: the file carries no energy axis; give --offset"):
        signal = read_signal(WS2_VACUUM, dispersion=0.005)
    assert isinstance(signal, EELSSpectrum) and signal.data.shape == (2000,)
    np.testing.assert_array_equal(signal.data, np.loadtxt(WS2_VACUUM))
    axis = signal.axes_manager.signal_axes[0]
    assert (axis.scale, axis.units) == (0.005, "eV")
    # The file name's axis: channel 0 centred at -0.93 + 0.0025 eV; the ZLP maximum put at 0 eV
    # agrees within a channel.
    assert axis.offset == pytest.approx(-0.93 + 0.0025, abs=0.005)
    # Rows of a table: a navigation axis.
    np.save(tmp_path / "two.npy", np.stack([np.loadtxt(WS2_VACUUM)] * 2))
    assert read_signal(tmp_path / "two.npy", dispersion=0.005, offset=-0.93).data.shape == (2, 2000)
    # A file that says its dispersion keeps it; another one given is refused.
    with pytest.raises(ValueError, match=r"EELS_SI\.dm4 is at 1 eV per channel, not the 0\.005 given"):
        read_signal(data_dir / "EELS_SI.dm4", dispersion=0.005)
    assert read_signal(data_dir / "EELS_SI.dm4").axes_manager.signal_axes[0].offset == 300.0
    # An uncalibrated HyperSpy file is calibrated as a text file is.
    hs.signals.Signal1D(np.loadtxt(WS2_VACUUM)).save(tmp_path / "plain.hspy")
    with pytest.warns(UserWarning, match="0 eV put at each spectrum's maximum"):
        plain = read_signal(tmp_path / "plain.hspy", dispersion=0.005)
    assert isinstance(plain, EELSSpectrum) and plain.axes_manager.signal_axes[0].offset == axis.offset


def test_read_signal_puts_the_first_channel_at_the_offset_given(tmp_path, data_dir):
    import hyperspy.api as hs

    from hyperspy_eelspecnet.io import read_signal

    # A window without the ZLP (a plasmon window from 5 eV): with its offset, its maximum stays
    # at its energy, where the restoration's check recognises it; no word about 0 eV.
    energy = np.arange(5.0, 25.0, 0.02)
    np.save(tmp_path / "plasmon.npy", 1e5 / (1 + ((energy - 15) / 0.35) ** 2) + 5e3 * (5 / energy) ** 1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signal = read_signal(tmp_path / "plasmon.npy", dispersion=0.02, offset=5.0)
    axis = signal.axes_manager.signal_axes[0]
    assert (axis.scale, axis.offset, axis.units) == (0.02, 5.0, "eV")
    assert axis.axis[np.argmax(signal.data)] == pytest.approx(15.0, abs=0.02)
    # A file that says its axis keeps it; an uncalibrated one needs the dispersion with the offset.
    with pytest.raises(ValueError, match=r"EELS_SI\.dm4 says its energy axis .* leave the offset \(--offset\) out"):
        read_signal(data_dir / "EELS_SI.dm4", offset=0.0)
    hs.signals.Signal1D(np.ones(100)).save(tmp_path / "plain.hspy")
    with pytest.raises(ValueError, match=r"no energy axis in eV; give its dispersion with the offset"):
        read_signal(tmp_path / "plain.hspy", offset=-1.0)
    assert read_signal(tmp_path / "plain.hspy", dispersion=0.1, offset=-1.0).axes_manager.signal_axes[0].offset == -1.0
