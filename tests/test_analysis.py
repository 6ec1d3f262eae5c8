"""hyperspy_eelspecnet.analysis: energy-filtered maps, modal evolution along a line, and loss-feature
tables and maps of EELS signals."""

import numpy as np
import pytest

import dask.array as da
import exspy
import hyperspy.api as hs

from hyperspy_eelspecnet.analysis import (
    energy_filtered_maps, feature_agreement, feature_along_line, feature_map, feature_table, modal_evolution,
)


def spectrum_image(data, nav_scale=2.0, nav_offset=10.0):
    """EELS signal over ``data (ny, nx, n)``: x, y in nm, energy from -0.5 eV at 10 meV/ch."""
    signal = exspy.signals.EELSSpectrum(np.asarray(data, dtype=float))
    navigation = signal.axes_manager.navigation_axes
    for axis, name in zip(navigation, "xy"):
        axis.name, axis.scale, axis.offset, axis.units = name, nav_scale, nav_offset, "nm"
    energy = signal.axes_manager.signal_axes[0]
    energy.name, energy.scale, energy.offset, energy.units = "Energy loss", 0.01, -0.5, "eV"
    signal.metadata.General.title = "test"
    return signal


@pytest.fixture
def random_image():
    return spectrum_image(np.random.default_rng(0).random((4, 5, 100)))


WINDOWS = {
    "inside": (0.1, 0.2),
    "between centres": (0.013, 0.087),
    "one channel": (0.0, 0.01),
    "below the axis": (-1.0, -0.3),
    "above the axis": (0.3, 2.0),
    # Within half a channel past an end HyperSpy snaps to that end's channel (the last one is
    # then excluded, as the channel nearest ``high``).
    "just past the top": (0.3, 0.494),
    "just below the bottom": (-0.504, -0.45),
}


def test_maps_equal_isig_sums(random_image):
    maps = energy_filtered_maps(random_image, WINDOWS)
    assert isinstance(maps, hs.signals.Signal2D)
    assert maps.data.shape == (len(WINDOWS), 4, 5)
    for index, (low, high) in enumerate(WINDOWS.values()):
        np.testing.assert_allclose(maps.data[index], random_image.isig[low:high].sum(-1).data, rtol=1e-12)


def test_lazy_maps_equal_eager_maps_and_come_back_in_memory(random_image):
    random_image.data[1, 2, 60:] = np.nan
    lazy = random_image.as_lazy()
    lazy.data = lazy.data.rechunk((2, 2, -1))
    maps = energy_filtered_maps(lazy, WINDOWS)
    assert isinstance(maps.data, np.ndarray) and not maps._lazy
    np.testing.assert_allclose(maps.data, energy_filtered_maps(random_image, WINDOWS).data, rtol=1e-12)


def test_maps_axes_and_metadata(random_image):
    maps = energy_filtered_maps(random_image, WINDOWS)
    x_axis, y_axis = maps.axes_manager.signal_axes
    assert (x_axis.name, x_axis.scale, x_axis.offset, x_axis.units, x_axis.size) == ("x", 2.0, 10.0, "nm", 5)
    assert (y_axis.name, y_axis.size) == ("y", 4)
    assert maps.axes_manager.navigation_axes[0].name == "Energy window"
    assert maps.metadata.Signal.window_names == list(WINDOWS)
    assert maps.metadata.Signal.window_ranges == [list(pair) for pair in WINDOWS.values()]
    assert maps.metadata.Signal.window_units == "eV"


def test_maps_ignore_nan_channels(random_image):
    random_image.data[..., 60:] = np.nan  # a restoration's uncovered channels
    maps = energy_filtered_maps(random_image, {"edge": (0.05, 0.2)})
    expected = np.nansum(random_image.isig[0.05:0.2].data, axis=-1)
    assert np.all(np.isfinite(maps.data))
    np.testing.assert_allclose(maps.data[0], expected)


def test_line_scan_gives_profiles():
    line = exspy.signals.EELSSpectrum(np.ones((7, 50)))
    maps = energy_filtered_maps(line, {"a": (3.0, 8.0)})
    assert isinstance(maps, hs.signals.Signal1D)
    np.testing.assert_array_equal(maps.data, np.full((1, 7), 5.0))


@pytest.mark.parametrize("windows", [{}, {"reversed": (0.2, 0.1)}])
def test_maps_refuse_bad_windows(random_image, windows):
    with pytest.raises(ValueError, match="window"):
        energy_filtered_maps(random_image, windows)


def coordinate_image(ny=9, nx=12, n=20):
    """Spectra that encode their pixel: channel 0 = x index, channel 1 = y index, rest 1."""
    data = np.ones((ny, nx, n))
    data[..., 0] = np.arange(nx)[None, :]
    data[..., 1] = np.arange(ny)[:, None]
    return spectrum_image(data)


def test_horizontal_line_profile_and_axes():
    signal = coordinate_image()
    # From pixel (2, 4) to pixel (10, 4), in nm (offset 10, 2 nm per pixel).
    profile = modal_evolution(signal, start=(14.0, 18.0), end=(30.0, 18.0), width=1)
    assert isinstance(profile, hs.signals.Signal2D)
    assert profile.data.shape == (20, 9)  # (energy, position)
    np.testing.assert_array_equal(profile.data[0], np.arange(2, 11))
    np.testing.assert_array_equal(profile.data[1], np.full(9, 4.0))
    position, energy = profile.axes_manager.signal_axes
    assert (position.name, position.units, position.scale, position.offset) == ("Position", "nm", 2.0, 0.0)
    assert (energy.units, energy.scale, energy.offset) == ("eV", 0.01, -0.5)


def test_width_averages_across_the_line_only():
    signal = coordinate_image()
    profile = modal_evolution(signal, start=(14.0, 18.0), end=(30.0, 18.0), width=5)
    np.testing.assert_array_equal(profile.data[0], np.arange(2, 11))  # not averaged along it
    np.testing.assert_array_equal(profile.data[1], np.full(9, 4.0))  # rows 2..6 averaged
    # Near the edge the strip leaves the map: only the pixels inside count.
    edge = modal_evolution(signal, start=(14.0, 12.0), end=(30.0, 12.0), width=5)  # row 1: rows -1..3
    np.testing.assert_allclose(edge.data[1], np.full(9, 1.5))
    # An even width centred between rows takes each row once.
    between = modal_evolution(signal, start=(14.0, 19.0), end=(30.0, 19.0), width=2)  # y = 4.5 px
    np.testing.assert_array_equal(between.data[1], np.full(9, 4.5))


def test_vertical_and_diagonal_lines():
    signal = coordinate_image()
    vertical = modal_evolution(signal, start=(16.0, 10.0), end=(16.0, 26.0), width=3)
    np.testing.assert_array_equal(vertical.data[1], np.arange(0, 9))
    np.testing.assert_array_equal(vertical.data[0], np.full(9, 3.0))  # columns 2..4
    # A 3-4-5 triangle in pixels: 5 pixels long, 6 samples.
    diagonal = modal_evolution(signal, start=(10.0, 10.0), end=(16.0, 18.0), width=1)
    assert diagonal.data.shape[1] == 6
    np.testing.assert_array_equal(diagonal.data[0], [0, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(diagonal.data[1], [0, 1, 2, 2, 3, 4])
    assert diagonal.axes_manager.signal_axes[0].scale == pytest.approx(2.0)


def test_lazy_map_gives_the_same_profile_and_reads_only_the_strip():
    signal = coordinate_image()
    lazy = signal.as_lazy()
    lazy.data = lazy.data.rechunk((1, 1, -1))
    eager_profile = modal_evolution(signal, start=(10.0, 10.0), end=(16.0, 18.0), width=3)
    lazy_profile = modal_evolution(lazy, start=(10.0, 10.0), end=(16.0, 18.0), width=3)
    np.testing.assert_array_equal(lazy_profile.data, eager_profile.data)
    assert isinstance(lazy_profile.data, np.ndarray)
    # Pixels far from the line are never computed: their blocks refuse to be.
    guarded = signal.as_lazy()
    guarded.data = da.from_array(signal.data, chunks=(-1, 1, -1)).map_blocks(_refuse_columns_from_8, dtype=float)
    np.testing.assert_array_equal(
        modal_evolution(guarded, start=(10.0, 10.0), end=(16.0, 18.0), width=3).data, eager_profile.data
    )
    with pytest.raises(AssertionError, match="far from the line"):
        modal_evolution(guarded, start=(10.0, 10.0), end=(30.0, 10.0), width=1)


def _refuse_columns_from_8(block, block_info=None):
    if block_info[0]["array-location"][1][0] >= 8:
        raise AssertionError("a pixel far from the line was computed")
    return block


def test_line_roi_gives_the_same_profile():
    signal = coordinate_image()
    roi = hs.roi.Line2DROI(14.0, 18.0, 30.0, 18.0, linewidth=0)
    np.testing.assert_array_equal(
        modal_evolution(signal, roi, width=3).data,
        modal_evolution(signal, (14.0, 18.0), (30.0, 18.0), width=3).data,
    )
    with pytest.raises(ValueError, match="not both"):
        modal_evolution(signal, roi, (30.0, 18.0))


def test_nan_channels_ignored_and_outside_points_nan():
    signal = coordinate_image()
    signal.data[:, :6, 5] = np.nan
    profile = modal_evolution(signal, start=(14.0, 18.0), end=(30.0, 18.0), width=1)
    assert np.isnan(profile.data[5, :4]).all() and np.isfinite(profile.data[5, 4:]).all()
    outside = modal_evolution(coordinate_image(), start=(0.0, 18.0), end=(14.0, 18.0), width=1)  # x from -5 to 2 px
    assert np.isnan(outside.data[:, :5]).all() and np.isfinite(outside.data[:, 5:]).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start": (14.0, 18.0), "end": (14.0, 18.0)}, "zero length"),
        ({"start": (14.0, 18.0)}, "end point"),
        ({"start": (14.0, 18.0), "end": (30.0, 18.0), "width": 0}, "width"),
    ],
)
def test_modal_evolution_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        modal_evolution(coordinate_image(), **kwargs)


def test_modal_evolution_needs_a_spectrum_image():
    with pytest.raises(ValueError, match="2 navigation"):
        modal_evolution(exspy.signals.EELSSpectrum(np.ones((4, 30))), (0, 0), (3, 0))


def test_feature_energy_along_a_line_follows_a_shifting_phonon():
    # 6 x 9 map, energy from -0.5 eV at 10 meV/channel: Gaussian ZLP + a phonon whose energy
    # rises by 0.3 channel per column, only in columns 2..7 (none in columns 0, 1 and 8).
    ny, nx, n = 6, 9, 200
    energy = -0.5 + 0.01 * np.arange(n)
    columns = np.arange(nx)
    phonon = 0.9 + 0.003 * columns
    present = (columns >= 2) & (columns <= 7)
    spectra = np.exp(-0.5 * (energy / 0.02) ** 2) + np.where(
        present[:, None], 0.01 * 0.03**2 / ((energy - phonon[:, None]) ** 2 + 0.03**2), 0.0
    )
    signal = spectrum_image(np.broadcast_to(spectra, (ny, nx, n)))
    # Along row 3 from column 0 to column 8 (nm: offset 10, 2 nm per pixel), 3 rows averaged.
    profile = modal_evolution(signal, start=(10.0, 16.0), end=(26.0, 16.0), width=3)

    line = feature_along_line(profile, (0.8, 1.1))

    assert isinstance(line, hs.signals.Signal1D) and line.data.shape == (nx,)
    position = line.axes_manager.signal_axes[0]
    assert (position.name, position.units, position.scale) == ("Position", "nm", 2.0)
    np.testing.assert_allclose(line.data[present], phonon[present], atol=0.2 * 0.01)
    assert np.all(np.isnan(line.data[~present]))
    widths = feature_along_line(profile, (0.8, 1.1), "fwhm").data[present]
    np.testing.assert_allclose(widths, 0.06, rtol=0.1)
    assert np.all(np.isnan(feature_along_line(profile, (1.2, 1.4)).data))  # a window without a feature

    # A restoration that puts the phonon 1.5 channels high from column 5 on: found within one
    # channel where the truth has it (columns 2-7) in the first three of those six columns.
    shifted = line.deepcopy()
    shifted.data[5:] += 0.015
    shifted.data[0] = 0.9  # a feature where the truth has none is not counted
    assert feature_agreement(shifted, line, 0.01) == pytest.approx(0.5)
    assert feature_agreement(shifted.data, line.data, 0.02) == 1.0
    assert np.isnan(feature_agreement(line, np.full(nx, np.nan), 0.01))


def test_feature_along_line_needs_a_modal_profile(random_image):
    with pytest.raises(ValueError, match="modal_evolution"):
        feature_along_line(random_image, (0.1, 0.2))


# Loss features of EELS signals: 2048 channels at 5 meV, ZLP on channel 100.
FEATURE_DISPERSION = 0.005
FEATURE_ENERGY = (np.arange(2048) - 100) * FEATURE_DISPERSION


def lorentzian(energy, centre, fwhm, height):
    half = 0.5 * np.asarray(fwhm)
    return height * half**2 / ((energy - np.asarray(centre)) ** 2 + half**2)


def eels_map(phonon_energy):
    """EELS map (y, x, energy): ZLP + a phonon at ``phonon_energy`` (y, x) + a fixed feature."""
    zlp = np.exp(-0.5 * (FEATURE_ENERGY / (6.0 * FEATURE_DISPERSION / 2.3548)) ** 2)  # FWHM 6 channels
    spectra = zlp + lorentzian(FEATURE_ENERGY, phonon_energy[..., None], 0.04, 0.01)
    spectra += lorentzian(FEATURE_ENERGY, 3.0, 0.3, 0.002)
    signal = exspy.signals.EELSSpectrum(spectra)
    axis = signal.axes_manager.signal_axes[0]
    axis.scale, axis.offset, axis.units, axis.name = FEATURE_DISPERSION, FEATURE_ENERGY[0], "eV", "Energy loss"
    signal.metadata.General.title = "Phonon map"
    return signal


@pytest.mark.parametrize("method", ["maxima", "lorentzian"])
@pytest.mark.parametrize("lazy", [False, True])
def test_feature_map_follows_a_phonon_shift(lazy, method):
    x = np.arange(5)
    phonon_energy = np.broadcast_to(0.6 + 0.0037 * x, (3, 5))  # shifts by 0.74 channel per pixel
    signal = eels_map(phonon_energy)
    if lazy:
        signal = signal.as_lazy()

    energy = feature_map(signal, (0.4, 1.0), method=method)
    assert isinstance(energy, hs.signals.Signal2D) and energy.data.shape == (3, 5)
    np.testing.assert_allclose(energy.data, phonon_energy, atol=0.2 * FEATURE_DISPERSION)
    np.testing.assert_allclose(feature_map(signal, (0.4, 1.0), "fwhm", method=method).data, 0.04, rtol=0.05)
    assert np.all(np.isnan(feature_map(signal, (1.5, 2.0)).data))  # no feature in the window


def test_feature_table_signals():
    signal = eels_map(np.array([[0.6, 0.7]]))
    result = feature_table(signal, max_features=3)

    assert result["table"].shape == (1, 2, 3)
    energy = result["energy"]
    assert energy.axes_manager.navigation_shape == (2, 1)
    assert energy.axes_manager.signal_shape == (3,)
    np.testing.assert_allclose(energy.data[0, :, :2], [[0.6, 3.0], [0.7, 3.0]], atol=0.2 * FEATURE_DISPERSION)
    assert result["valid"].data[0, :, 2].tolist() == [False, False]
    assert "eV" in result["fwhm"].metadata.Signal.quantity


def test_feature_table_and_map_refuse_other_axes():
    signal = eels_map(np.array([[0.6]]))
    with pytest.raises(ValueError, match="own calibrated"):
        feature_table(signal, dispersion=0.01)
    with pytest.raises(ValueError, match="signal dimension"):
        feature_map(hs.signals.Signal2D(np.ones((8, 8))), (0.1, 0.2))


@pytest.mark.parametrize("window, match", [((1.0, 2.0), "outside the energy axis"), ((-5.0, -4.0), "outside"),
                                           ((0.0, 0.004), "holds no channel")])
def test_maps_refuse_windows_off_the_axis_or_between_channels(random_image, window, match):
    # A window in meV on an eV axis would otherwise sum the whole spectrum, or nothing.
    with pytest.raises(ValueError, match=match):
        energy_filtered_maps(random_image, {"w": window})
    with pytest.raises(ValueError, match="outside|no channel"):
        feature_map(random_image, window)


def test_maps_give_nan_where_a_window_holds_no_finite_channel(random_image):
    random_image.data[0, 0, 50:] = np.nan
    maps = energy_filtered_maps(random_image, {"w": (0.1, 0.2)})
    assert np.isnan(maps.data[0, 0, 0])  # no data, not "no intensity"
    assert np.isfinite(maps.data[0].ravel()[1:]).all()


def test_feature_along_line_takes_an_unnamed_energy_axis():
    ny, nx, n = 4, 6, 200
    energy = -0.5 + 0.01 * np.arange(n)
    spectra = np.exp(-0.5 * (energy / 0.02) ** 2) + 0.01 * 0.03**2 / ((energy - 0.9) ** 2 + 0.03**2)
    signal = exspy.signals.EELSSpectrum(np.broadcast_to(spectra, (ny, nx, n)).copy())
    signal.axes_manager.signal_axes[0].scale, signal.axes_manager.signal_axes[0].offset = 0.01, -0.5
    profile = modal_evolution(signal, start=(0.0, 2.0), end=(5.0, 2.0), width=1)
    np.testing.assert_allclose(feature_along_line(profile, (0.8, 1.1)).data, 0.9, atol=0.005)
