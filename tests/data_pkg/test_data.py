"""hyperspy_eelspecnet.data: the synthetic silver-nanowire spectrum image, its membrane hole and
its microscope's vacuum reference."""

import json

import numpy as np
import pytest

import hyperspy_eelspecnet  # noqa: F401 (first: exspy without HyperSpy's deprecation noise)
from exspy.signals import EELSSpectrum

from hyperspy_eelspecnet.data import membrane_hole, silver_nanowire, silver_nanowire_vacuum
from hyperspy_eelspecnet.data._silver_nanowire import WIRE_START, _mode_pattern, _wire_geometry
from hyperspy_eelspecnet.model import default_model_path
from hyperspy_eelspecnet.spectral import fwhm, locate_zlp
from hyperspy_eelspecnet.vacuum import LOSS_FEATURE_RISE_LIMIT, loss_feature_rise, prepare_vacuum_psfs

NAVIGATION = (16, 48)  # (y, x) in the data
N_CHANNELS = 1024


@pytest.fixture(scope="module")
def nanowire():
    return silver_nanowire(return_ground_truth=True)


@pytest.fixture(scope="module")
def vacuum():
    return silver_nanowire_vacuum()


def energy_axis(signal):
    axis = signal.axes_manager.signal_axes[0]
    return axis.size, axis.scale, axis.offset, axis.units


# --------------------------------------------------------------------------- the spectrum image


def test_signal_type_shape_and_axes(nanowire):
    signal, truth = nanowire
    for s in (signal, truth):
        assert isinstance(s, EELSSpectrum) and s.metadata.Signal.signal_type == "EELS"
        assert s.data.shape == NAVIGATION + (N_CHANNELS,)
        assert s.metadata.Acquisition_instrument.TEM.beam_energy == 80.0
    x_axis, y_axis = signal.axes_manager.navigation_axes
    assert (x_axis.name, x_axis.size, x_axis.scale, x_axis.units) == ("x", 48, 20.0, "nm")
    assert (y_axis.name, y_axis.size, y_axis.scale, y_axis.units) == ("y", 16, 20.0, "nm")
    assert energy_axis(signal) == (N_CHANNELS, pytest.approx(0.005), pytest.approx(-1.0), "eV")
    assert energy_axis(truth) == energy_axis(signal)
    assert "synthetic" in signal.metadata.General.title.lower()
    assert "ground truth" in truth.metadata.General.title
    assert "not a measurement" in signal.metadata.Sample.description


def test_same_seed_same_data_other_seed_other_noise(nanowire):
    signal, _ = nanowire
    np.testing.assert_array_equal(silver_nanowire(seed=0).data, signal.data)
    other = silver_nanowire(seed=1)
    assert not np.array_equal(other.data, signal.data)
    assert other.metadata.Sample.ground_truth.seed == 1 and signal.metadata.Sample.ground_truth.seed == 0


def test_counts_are_poisson_around_the_truths_counts(nanowire):
    signal, truth = nanowire
    counts = signal.data.sum(axis=-1)
    assert 2.5e6 <= counts.min() and counts.max() <= 5.1e6  # fewer electrons on the wire
    np.testing.assert_array_equal(signal.data, np.round(signal.data))
    assert signal.data.min() >= 0
    np.testing.assert_allclose(truth.data.sum(axis=-1), counts, rtol=5 * counts.min() ** -0.5 + 1e-4)


def test_zlp_width_and_drift_inside_the_bundled_models_range(nanowire):
    signal, truth = nanowire
    low, high = json.loads(default_model_path().with_suffix(".json").read_text())["psf_fwhm_channels"]
    measured = fwhm(signal.data)
    assert 13 <= np.median(measured) <= 15  # 13-channel pseudo-Voigt PSF and jitter
    assert low <= measured.min() and measured.max() <= high
    assert np.median(fwhm(truth.data)) == pytest.approx(3.0, abs=0.3)  # quasi-Dirac target
    position = locate_zlp(truth.data)
    assert 2.0 < np.ptp(position) < 8.0  # a few channels of drift
    assert abs(np.median(position) - 200) < 1.5
    drift = signal.metadata.Sample.ground_truth.zlp_drift_map_channels
    np.testing.assert_allclose(drift, position - 200, atol=0.3)


def test_ground_truth_metadata(nanowire):
    record = nanowire[0].metadata.Sample.ground_truth
    energies = record.mode_energies_eV.as_dictionary()
    assert list(energies) == ["Ph", "SP1", "SP2", "SP3", "SP4"]
    assert energies["Ph"] == pytest.approx(0.1)
    assert np.all(np.diff([energies[f"SP{m}"] for m in range(1, 5)]) > 0)
    heights = [mode["height_relative_to_zlp"] for mode in record.surface_plasmons.as_dictionary().values()]
    heights.append(record.phonon.height_relative_to_zlp)
    assert all(1 / 3000 <= h <= 1 / 300 for h in heights)
    assert record.psf.fwhm_eV == pytest.approx(0.065)
    assert record.hole.centre_nm == [480.0, 260.0] and record.hole.radius_nm == 60.0


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_mode_has_order_plus_one_maxima_strongest_at_the_ends(order):
    along = _mode_pattern(order, np.linspace(0, 1, 401)[None, :], np.zeros((1, 401)))[0]
    interior = (along[1:-1] > along[:-2]) & (along[1:-1] >= along[2:])
    assert interior.sum() + 2 == order + 1  # m - 1 maxima inside and the two ends
    assert along[0] == along.max() and along[-1] == pytest.approx(along.max())
    s, distance, _ = _wire_geometry(48, 16)
    pattern = _mode_pattern(order, s, distance)
    assert pattern[int(WIRE_START[1])].max() == pytest.approx(1.0)
    assert pattern[0].max() < 0.1  # decayed a few pixels away from the wire


def test_features_visible_in_ground_truth(nanowire):
    _, truth = nanowire
    energy = truth.axes_manager.signal_axes[0]
    tip, middle, membrane = truth.data[7, 5], truth.data[7, 24], truth.data[0, 24]  # (y, x)
    sp1, ph, between = energy.value2index(0.35), energy.value2index(0.10), energy.value2index(0.23)
    assert tip[sp1] > 5 * middle[sp1]  # SP1: ends, node in the middle
    assert membrane[ph] > 3 * membrane[between]  # the phonon on the bare membrane
    assert membrane[energy.value2index(-0.10)] < 0.05 * membrane[ph]  # gain side: detailed balance
    bulk = energy.value2index(3.8)
    assert middle[bulk] > 20 * membrane[bulk]  # the bulk plasmon only on the wire


# --------------------------------------------------------------------------- the membrane hole


def test_hole_map_is_a_disk_beside_the_wire(nanowire):
    hole = nanowire[0].metadata.Sample.ground_truth.hole_map
    assert hole.dtype == bool and hole.shape == NAVIGATION
    np.testing.assert_array_equal(hole, membrane_hole())
    ys, xs = np.nonzero(hole)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (10, 15, 21, 27)  # radius 3 around (24, 13)
    assert hole.sum() == 28  # the disk's 29 pixels less the one beyond the map's edge (y = 16)
    _, distance, chord = _wire_geometry(48, 16)
    assert np.all(distance[hole] >= 1.0) and np.all(chord[hole] == 0)  # off the wire
    assert membrane_hole(10, 5).shape == (5, 10)


def _phonon_peak(spectra, energy):
    """Whether each spectrum has a local maximum in 0.07-0.13 eV, and its value at 0.10 eV
    relative to its maximum."""
    window = spectra[..., (energy > 0.07) & (energy < 0.13)]
    peaked = ((window[..., 1:-1] > window[..., :-2]) & (window[..., 1:-1] > window[..., 2:])).any(axis=-1)
    return peaked, spectra[..., np.argmin(np.abs(energy - 0.10))] / spectra.max(axis=-1)


def test_hole_pixels_have_no_phonon_and_the_membrane_everywhere_else(nanowire):
    signal, truth = nanowire
    hole = signal.metadata.Sample.ground_truth.hole_map
    energy = truth.axes_manager.signal_axes[0].axis
    peaked, height = _phonon_peak(truth.data, energy)
    assert not peaked[hole].any() and np.all(height[hole] < 1e-5)
    # Off the wire (its surface plasmons and bulk plasmon would not hide the phonon, but its
    # chord changes the counts) every membrane pixel shows the phonon at its height (1/1500).
    _, distance, _ = _wire_geometry(48, 16)
    membrane = ~hole & (distance >= 1.0)
    assert peaked[membrane].all()
    np.testing.assert_allclose(height[membrane], 1 / 1500, rtol=0.35)
    # The hole keeps the membrane's counts: electrons pass, they are not lost.
    counts = signal.data.sum(-1)
    np.testing.assert_allclose(counts[hole].mean(), counts[membrane].mean(), rtol=2e-3)


# --------------------------------------------------------------------------- the vacuum reference


def test_vacuum_reference_shape_axis_and_counts(vacuum, nanowire):
    assert isinstance(vacuum, EELSSpectrum) and vacuum.data.shape == (32, N_CHANNELS)
    assert energy_axis(vacuum) == energy_axis(nanowire[0])
    assert vacuum.metadata.Acquisition_instrument.TEM.beam_energy == 80.0
    np.testing.assert_allclose(vacuum.data.sum(-1), 5e7, rtol=1e-3)
    np.testing.assert_array_equal(vacuum.data, np.round(vacuum.data))
    position = locate_zlp(vacuum.data)
    assert np.all(np.abs(position - 200) < 2.0) and np.ptp(position) > 0.5  # own drift per spectrum
    assert loss_feature_rise(vacuum.data).max() < 0.1 * LOSS_FEATURE_RISE_LIMIT  # no loss features
    assert silver_nanowire_vacuum(n_spectra=3, seed=5).data.shape == (3, N_CHANNELS)


def test_vacuum_is_deterministic(vacuum):
    np.testing.assert_array_equal(silver_nanowire_vacuum().data, vacuum.data)
    assert not np.array_equal(silver_nanowire_vacuum(seed=2).data, vacuum.data)


def test_vacuum_zlp_has_the_shape_of_the_hole_pixels_zlp(vacuum, nanowire):
    """The vacuum reference is the demo microscope's PSF: centred and normalised as a PSF, it
    matches the hole's pixels (no membrane) and not the membrane's (its phonon under the tail)."""
    signal = nanowire[0]
    hole = signal.metadata.Sample.ground_truth.hole_map
    psf = prepare_vacuum_psfs(vacuum.data).psfs.mean(axis=0)
    in_hole = prepare_vacuum_psfs(signal.data[hole]).psfs.mean(axis=0)
    on_membrane = prepare_vacuum_psfs(signal.data[0]).psfs.mean(axis=0)  # the row y = 0
    centre = N_CHANNELS // 2
    assert fwhm(psf)[0] == pytest.approx(fwhm(in_hole)[0], abs=0.2)
    assert 13 <= fwhm(psf)[0] <= 15
    near = slice(centre - 30, centre + 31)
    assert np.abs(in_hole[near] - psf[near]).max() < 5e-3 * psf.max()
    phonon = slice(centre + 14, centre + 26)  # 0.07-0.13 eV
    hole_excess = in_hole[phonon].sum() / psf[phonon].sum() - 1
    membrane_excess = on_membrane[phonon].sum() / psf[phonon].sum() - 1
    assert abs(hole_excess) < 0.01 and membrane_excess > 0.015
