"""What a microscopist does next with a restoration: exspy's low-loss methods on the restored
signals (ZLP centre, elastic intensity, relative thickness, ZLP alignment, integration).

Each data set is restored once per module: the measured WS2 spectra and a few pixels of the demo
nanowire with the bundled model, and the nanowire pixels with the identity model (whose
restoration is the input, so exspy must give the input's numbers)."""

import numpy as np
import pytest

import hyperspy_eelspecnet  # noqa: F401 (first: exspy without HyperSpy's deprecation noise)
from exspy.signals import EELSSpectrum

from hyperspy_eelspecnet.data import silver_nanowire

#: Elastic-intensity threshold (eV): past both the measured ZLP (FWHM 0.07-0.085 eV) and a
#: restored one, below the first loss features (SP1 at 0.35 eV, WS2 from ~1.5 eV).
THRESHOLD = 0.2


@pytest.fixture(scope="module")
def ws2(load_ws2, default_model):
    """The six WS2 spectra (2 vacuum, 4 specimen) and their restoration by the bundled model."""
    signal = load_ws2()
    with pytest.warns(UserWarning, match="4 of 6 spectra hold"):  # counts above the trained range
        restored, _ = signal.eelspecnet_deconvolve(rl_iterations=0, show_progressbar=False)
    return signal, restored, None


def _nanowire_pixels():
    signal, truth = silver_nanowire(return_ground_truth=True)
    return signal.inav[:3, :2].deepcopy(), truth.inav[:3, :2].deepcopy()


@pytest.fixture(scope="module")
def nanowire(default_model):
    """Six membrane pixels of the demo, restored by the bundled model, and their ground truth."""
    signal, truth = _nanowire_pixels()
    restored, _ = signal.eelspecnet_deconvolve(rl_iterations=0, show_progressbar=False)
    return signal, restored, truth


@pytest.fixture(scope="module")
def nanowire_identity(identity_model):
    signal, truth = _nanowire_pixels()
    restored, _ = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0, show_progressbar=False)
    return signal, restored, truth


def thickness(signal):
    return signal.estimate_thickness(threshold=THRESHOLD).data


def aligned_copy(signal):
    copy = signal.deepcopy()
    copy.align_zero_loss_peak(print_stats=False, show_progressbar=False)
    return copy


# --------------------------------------------------------------------------- every restoration


@pytest.mark.parametrize("data", ["ws2", "nanowire", "nanowire_identity"])
def test_exspy_low_loss_methods_run_on_the_restoration(request, data):
    signal, restored, _ = request.getfixturevalue(data)
    assert isinstance(restored, EELSSpectrum)
    nav_shape = signal.data.shape[:-1]
    energy = restored.axes_manager.signal_axes[0]
    centre = restored.estimate_zero_loss_peak_centre().data
    assert centre.shape == nav_shape and np.all((centre >= energy.low_value) & (centre <= energy.high_value))
    total = restored.integrate1D(-1).data
    elastic = restored.estimate_elastic_scattering_intensity(threshold=THRESHOLD).data
    assert elastic.shape == nav_shape and np.all(elastic > 0) and np.all(elastic <= total * (1 + 1e-12))
    t_over_lambda = thickness(restored)
    assert t_over_lambda.shape == nav_shape and np.isfinite(t_over_lambda).all() and np.all(t_over_lambda >= 0)
    np.testing.assert_allclose(t_over_lambda, np.log(total / elastic), rtol=1e-9)
    before = restored.data.copy(), restored.axes_manager.signal_axes[0].offset
    aligned = aligned_copy(restored)
    assert np.isfinite(aligned.data).all() and aligned.data.shape[:-1] == nav_shape
    np.testing.assert_array_equal(restored.data, before[0])  # the copy, not the restoration
    assert restored.axes_manager.signal_axes[0].offset == before[1]


@pytest.mark.parametrize("data", ["ws2", "nanowire", "nanowire_identity"])
def test_integrated_counts_are_the_inputs(request, data):
    signal, restored, _ = request.getfixturevalue(data)
    total = restored.integrate1D(-1)
    assert total.data.shape == signal.data.shape[:-1] and np.isfinite(total.data).all()
    np.testing.assert_allclose(total.data, signal.integrate1D(-1).data, rtol=1e-3)


def test_identity_restoration_gives_exspy_the_inputs_numbers(nanowire_identity):
    """The result signal carries the input's calibration: every follow-up agrees with the input's."""
    signal, restored, _ = nanowire_identity
    np.testing.assert_array_equal(
        restored.estimate_zero_loss_peak_centre().data, signal.estimate_zero_loss_peak_centre().data
    )
    np.testing.assert_allclose(
        restored.estimate_elastic_scattering_intensity(threshold=THRESHOLD).data,
        signal.estimate_elastic_scattering_intensity(threshold=THRESHOLD).data,
        rtol=1e-5,
    )
    np.testing.assert_allclose(thickness(restored), thickness(signal), atol=1e-5)
    aligned, aligned_input = aligned_copy(restored), aligned_copy(signal)
    assert aligned.axes_manager.signal_axes[0].offset == pytest.approx(aligned_input.axes_manager.signal_axes[0].offset)
    np.testing.assert_allclose(aligned.data, aligned_input.data, rtol=1e-4, atol=1e-6 * signal.data.max())


# --------------------------------------------------------------------------- the bundled model's restorations


@pytest.mark.parametrize(
    "data", ["ws2", "nanowire"]
)
def test_restored_zlp_centre_within_one_channel_of_the_inputs(request, data):
    signal, restored, _ = request.getfixturevalue(data)
    scale = signal.axes_manager.signal_axes[0].scale
    np.testing.assert_allclose(
        restored.estimate_zero_loss_peak_centre().data,
        signal.estimate_zero_loss_peak_centre().data,
        atol=scale * 1.001,
    )


@pytest.mark.parametrize(
    "data", ["ws2", "nanowire"]
)
def test_restored_zlp_holds_the_elastic_intensity_and_thickness_falls(request, data):
    """A sharper ZLP puts its tail back under the threshold: the elastic intensity stays most of the
    counts and t/lambda does not grow; on the nanowire it moves towards the ground truth's."""
    signal, restored, truth = request.getfixturevalue(data)
    total = restored.integrate1D(-1).data
    assert np.all(restored.estimate_elastic_scattering_intensity(threshold=THRESHOLD).data > 0.5 * total)
    measured, restored_t = thickness(signal), thickness(restored)
    assert np.all(restored_t <= measured + 2e-3), (restored_t, measured)
    if truth is not None:
        true_t = thickness(truth)
        assert np.all(np.abs(restored_t - true_t) < np.abs(measured - true_t)), (restored_t, measured, true_t)


@pytest.mark.parametrize("data", ["ws2", "nanowire"])
def test_align_zero_loss_peak_on_a_copy_of_the_restoration(request, data):
    signal, restored, _ = request.getfixturevalue(data)
    energy = signal.axes_manager.signal_axes[0]
    aligned = aligned_copy(restored)
    centre = aligned.estimate_zero_loss_peak_centre().data
    assert np.all(np.abs(centre) <= 0.5 * energy.scale)  # calibrated: every ZLP at 0 eV
    # The restored ZLPs sit where the measured ones do: aligning crops no more than their drift.
    drift = np.ptp(signal.estimate_zero_loss_peak_centre().data) / energy.scale
    assert aligned.axes_manager.signal_axes[0].size >= energy.size - drift - 2
    assert np.isfinite(aligned.data).all()
