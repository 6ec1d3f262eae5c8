"""hyperspy_eelspecnet.data: the synthetic silver-nanowire spectrum image."""

import json

import numpy as np
import pytest

from exspy.signals import EELSSpectrum

from hyperspy_eelspecnet.data import silver_nanowire
from hyperspy_eelspecnet.data._silver_nanowire import WIRE_START, _mode_pattern, _wire_geometry
from hyperspy_eelspecnet.model import default_model_path
from hyperspy_eelspecnet.restoration import locate_zlp, zlp_fwhm


@pytest.fixture(scope="module")
def nanowire():
    return silver_nanowire(return_ground_truth=True)


def test_signal_type_shape_and_axes(nanowire):
    signal, truth = nanowire
    for s in (signal, truth):
        assert isinstance(s, EELSSpectrum)
        assert s.metadata.Signal.signal_type == "EELS"
        assert s.data.shape == (16, 48, 1024)
    x_axis, y_axis = signal.axes_manager.navigation_axes
    energy = signal.axes_manager.signal_axes[0]
    assert (x_axis.units, y_axis.units, energy.units) == ("nm", "nm", "eV")
    assert (x_axis.scale, y_axis.scale) == (20.0, 20.0)
    assert energy.scale == pytest.approx(0.005)
    assert energy.offset == pytest.approx(-1.0)
    assert "synthetic" in signal.metadata.General.title.lower()
    assert "Synthetic" in signal.metadata.Sample.description


def test_same_seed_same_data_other_seed_other_noise():
    first, second, other = silver_nanowire(seed=3), silver_nanowire(seed=3), silver_nanowire(seed=4)
    np.testing.assert_array_equal(first.data, second.data)
    assert not np.array_equal(first.data, other.data)
    assert first.metadata.Sample.ground_truth.seed == 3


def test_counts_poisson_and_ground_truth_area(nanowire):
    signal, truth = nanowire
    counts = signal.data.sum(axis=-1)
    assert 1e6 <= counts.min() and counts.max() <= 1e7
    np.testing.assert_array_equal(signal.data, np.round(signal.data))  # counts
    # The truth carries the expected counts of each spectrum: equal within Poisson noise.
    np.testing.assert_allclose(truth.data.sum(axis=-1), counts, rtol=5 * counts.max() ** -0.5 + 1e-3)


def test_zlp_width_and_drift_inside_model_range(nanowire):
    signal, truth = nanowire
    low, high = json.loads(default_model_path().with_suffix(".json").read_text())["psf_fwhm_channels"]
    fwhm = zlp_fwhm(signal.data)
    assert 12 <= np.median(fwhm) <= 15
    assert low <= fwhm.min() and fwhm.max() <= high
    assert np.median(zlp_fwhm(truth.data)) == pytest.approx(3.0, abs=0.3)  # quasi-Dirac target
    position = locate_zlp(truth.data)
    assert 2.0 < np.ptp(position) < 8.0  # a few channels of drift
    assert abs(np.median(position) - 200) < 1.5
    np.testing.assert_allclose(signal.metadata.Sample.ground_truth.zlp_drift_map_channels, position - 200, atol=0.3)


def test_ground_truth_metadata():
    record = silver_nanowire().metadata.Sample.ground_truth
    energies = record.mode_energies_eV.as_dictionary()
    assert list(energies) == ["Ph", "SP1", "SP2", "SP3", "SP4"]
    assert energies["Ph"] == pytest.approx(0.1)
    assert np.all(np.diff([energies[f"SP{m}"] for m in range(1, 5)]) > 0)
    heights = [mode["height_relative_to_zlp"] for mode in record.surface_plasmons.as_dictionary().values()]
    heights.append(record.phonon.height_relative_to_zlp)
    assert all(1 / 3000 <= h <= 1 / 300 for h in heights)
    assert record.psf.fwhm_eV == pytest.approx(0.065)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_mode_has_order_plus_one_maxima_strongest_at_the_ends(order):
    along = _mode_pattern(order, np.linspace(0, 1, 401)[None, :], np.zeros((1, 401)))[0]
    interior = (along[1:-1] > along[:-2]) & (along[1:-1] >= along[2:])
    assert interior.sum() + 2 == order + 1  # m - 1 maxima inside and the two ends
    assert along[0] == along.max() and along[-1] == pytest.approx(along.max())
    s, distance, _ = _wire_geometry(48, 16)
    pattern = _mode_pattern(order, s, distance)
    row = int(WIRE_START[1])
    assert pattern[row].max() == pytest.approx(1.0)
    assert pattern[0].max() < 0.1  # decayed a few pixels away from the wire


def test_features_visible_in_ground_truth(nanowire):
    _, truth = nanowire
    energy = truth.axes_manager.signal_axes[0]
    tip, middle = truth.inav[5, 7].data, truth.inav[24, 7].data
    membrane = truth.inav[24, 0].data
    sp1, ph = energy.value2index(0.35), energy.value2index(0.10)
    between = energy.value2index(0.23)
    assert tip[sp1] > 5 * middle[sp1]  # SP1: ends, node in the middle
    assert membrane[ph] > 3 * membrane[between]  # the phonon on the bare membrane
    # No loss at zero energy transfer other than the ZLP: the gain side is weak.
    assert membrane[energy.value2index(-0.10)] < 0.05 * membrane[ph]
