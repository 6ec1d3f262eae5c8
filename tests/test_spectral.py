"""Spectral primitives shared by the generator and the restoration: ZLP position, widths,
resampling and padding."""

import warnings

import numpy as np
import pytest

from hyperspy_eelspecnet.spectral import (
    finite_mean,
    fwhm,
    fwtm,
    half_maximum_centre,
    linear_resample,
    locate_zlp,
    pad_outside_window,
    parabola_vertex,
    peak_width,
)

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: FWTM / FWHM of a Gaussian.
GAUSSIAN_TENTH_TO_HALF = np.sqrt(np.log(10.0) / np.log(2.0))


def gaussians(centres, width, n_channels=400, height=1.0):
    """Noiseless Gaussian peaks of FWHM ``width`` at (sub-channel) ``centres``, any leading shape."""
    centres = np.asarray(centres, dtype=float)
    offset = np.arange(n_channels) - centres[..., None]
    return height * np.exp(-0.5 * (offset / (width * FWHM_TO_SIGMA)) ** 2)


def triangles(apexes, half_base, n_channels=200):
    """Triangular peaks of height 1 on whole channels: linear between samples, so the widths
    measured by linear interpolation are exact (FWHM = half_base, FWTM = 1.8 half_base)."""
    apexes = np.asarray(apexes, dtype=float)
    offset = np.abs(np.arange(n_channels) - apexes[..., None])
    return np.clip(1.0 - offset / np.asarray(half_base, dtype=float)[..., None], 0.0, None)


# --------------------------------------------------------------------------- ZLP position

SUB_CHANNEL_CENTRES = 150.0 + np.linspace(-0.5, 0.5, 11)


def test_parabola_vertex_of_sampled_parabolas_is_exact():
    # y = height - curvature (x - x0)^2 sampled at x = -1, 0, 1: the vertex comes back exactly.
    x0 = np.array([-0.5, -0.31, 0.0, 0.2, 0.45])
    height, curvature = 7.0, 0.8
    left, centre, right = (height - curvature * (x - x0) ** 2 for x in (-1.0, 0.0, 1.0))
    shift, top = parabola_vertex(left, centre, right)
    np.testing.assert_allclose(shift, x0, atol=1e-12)
    np.testing.assert_allclose(top, height, atol=1e-12)


def test_parabola_vertex_without_a_maximum_stays_on_the_centre_channel():
    # Flat, convex and (beyond +-0.5) monotonic triples: no shift, the centre's height.
    left = np.array([1.0, 2.0, 0.0])
    centre = np.array([1.0, 1.0, 1.0])
    right = np.array([1.0, 2.0, 1.9])
    shift, top = parabola_vertex(left, centre, right)
    np.testing.assert_array_equal(shift, [0.0, 0.0, 0.5])
    np.testing.assert_array_equal(top[:2], centre[:2])


def test_locate_zlp_finds_gaussians_at_sub_channel_positions():
    # The parabola through three channels of a 12-channel Gaussian: 0.002 channels bias at most.
    np.testing.assert_allclose(locate_zlp(gaussians(SUB_CHANNEL_CENTRES, 12.0)), SUB_CHANNEL_CENTRES, atol=0.005)


def test_half_maximum_centre_finds_gaussians_at_sub_channel_positions():
    np.testing.assert_allclose(
        half_maximum_centre(gaussians(SUB_CHANNEL_CENTRES, 12.0)), SUB_CHANNEL_CENTRES, atol=0.005
    )


def test_half_maximum_centre_is_the_midpoint_of_an_asymmetric_peaks_crossings():
    # Half maximum 4 channels below and 10 above the apex at 100: centre at 103, not at 100.
    channels = np.arange(300.0)
    peak = np.where(channels < 100, 1 - (100 - channels) / 8.0, 1 - (channels - 100) / 20.0).clip(0)
    assert half_maximum_centre(peak) == pytest.approx(103.0, abs=1e-12)
    assert locate_zlp(peak) == pytest.approx(100.0 + 0.5 * (0.875 - 0.95) / (0.875 - 2 + 0.95), abs=1e-12)
    assert np.isnan(half_maximum_centre(np.exp(-channels / 30.0)))  # maximum on the first channel


def test_zlp_position_is_vectorised_over_leading_axes():
    centres = np.array([[80.0, 90.25, 101.6], [100.5, 120.75, 133.1]])
    spectra = gaussians(centres, 12.0)
    assert locate_zlp(spectra).shape == (2, 3) and half_maximum_centre(spectra).shape == (2, 3)
    np.testing.assert_allclose(locate_zlp(spectra), centres, atol=0.005)
    np.testing.assert_allclose(half_maximum_centre(spectra), centres, atol=0.005)


def test_locate_zlp_at_the_ends_of_the_spectrum_is_not_refined():
    spectra = np.array([[5.0, 4.0, 1.0, 0.0], [0.0, 1.0, 4.0, 5.0]])
    np.testing.assert_array_equal(locate_zlp(spectra), [0.0, 3.0])


def test_locate_zlp_puts_a_flat_top_at_its_middle():
    """A saturated detector: argmax gives the plateau's first channel, 3.5 channels off here."""
    channels = np.arange(400.0)
    saturated = np.minimum(1e5 * np.exp(-0.5 * ((channels - 200.0) / 4.0) ** 2), 6e4)
    assert locate_zlp(saturated) == pytest.approx(200.0)
    assert locate_zlp(np.array([[0.0, 1.0, 5.0, 5.0, 5.0, 1.0, 0.0], [0.0, 1.0, 5.0, 5.0, 1.0, 0.0, 0.0]])).tolist() == [3.0, 2.5]
    assert isinstance(locate_zlp(saturated), float)  # one spectrum: a number


# --------------------------------------------------------------------------- widths


@pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
def test_fwhm_and_fwtm_of_triangles_are_exact_for_any_leading_shape(lead):
    rng = np.random.default_rng(0)
    half_base = rng.uniform(4.0, 30.0, lead)
    spectra = triangles(rng.integers(60, 140, lead), half_base)
    # A single spectrum (1-D) gives shape (1,), as documented.
    expected_shape = lead if lead else (1,)
    assert fwhm(spectra).shape == expected_shape and fwtm(spectra).shape == expected_shape
    np.testing.assert_allclose(fwhm(spectra), np.reshape(half_base, expected_shape), rtol=1e-12)
    np.testing.assert_allclose(fwtm(spectra), np.reshape(1.8 * half_base, expected_shape), rtol=1e-12)


@pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
def test_fwhm_and_fwtm_of_gaussians_for_any_leading_shape(lead):
    # Linear interpolation between channels: within 0.5 % of the true widths for FWHM >= 12.
    rng = np.random.default_rng(1)
    width = rng.uniform(12.0, 40.0, lead)
    spectra = gaussians(rng.uniform(150.0, 250.0, lead), width[..., None] if lead else width)
    expected_shape = lead if lead else (1,)
    np.testing.assert_allclose(fwhm(spectra), np.reshape(width, expected_shape), rtol=5e-3)
    np.testing.assert_allclose(fwtm(spectra), np.reshape(width * GAUSSIAN_TENTH_TO_HALF, expected_shape), rtol=1e-2)


def test_widths_do_not_depend_on_height_or_position():
    spectra = np.stack([triangles(80, 10.0), 1e6 * triangles(80, 10.0), triangles(131, 10.0)])
    np.testing.assert_allclose(fwhm(spectra), 10.0, rtol=1e-12)


def test_peak_width_at_any_fraction_of_a_triangle():
    spectra = triangles(100, 20.0)
    for fraction in (0.25, 0.5, 0.75):
        assert peak_width(spectra, fraction)[0] == pytest.approx(2 * 20.0 * (1 - fraction), rel=1e-12)


def test_peak_width_near_a_given_channel_measures_that_peak_not_the_highest():
    # A 6-channel peak at 300 beside a taller 20-channel one at 100.
    spectra = np.stack([triangles(100, 20.0, 400) + 0.3 * triangles(300, 6.0, 400)] * 2)
    np.testing.assert_allclose(fwhm(spectra), 20.0, rtol=1e-12)
    # Found within the search radius of a guess 4 channels off, one guess per spectrum or for all.
    np.testing.assert_allclose(fwhm(spectra, peak_channel=296), 6.0, rtol=1e-12)
    np.testing.assert_allclose(fwhm(spectra, peak_channel=[304, 96]), [6.0, 20.0], rtol=1e-12)
    # A guess farther off than the search radius finds nothing there.
    assert np.isnan(fwhm(spectra, peak_channel=285, search_radius=4)).all()


def test_peak_width_is_nan_without_two_crossings_or_a_positive_peak():
    channels = np.arange(300.0)
    spectra = np.stack([
        np.exp(-channels / 30.0),  # maximum on the first channel: no crossing below it
        triangles(295, 40.0, 300),  # half maximum 20 channels beyond the last channel
        -triangles(150, 10.0, 300),  # no positive peak
        triangles(150, 10.0, 300),
    ])
    widths = fwhm(spectra)
    assert np.isnan(widths[:3]).all()
    assert widths[3] == pytest.approx(10.0, rel=1e-12)


# --------------------------------------------------------------------------- resampling and padding


def test_finite_mean_ignores_nans_and_is_nan_without_finite_values():
    values = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [np.nan, 2.0, 4.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice"
        means = finite_mean(values, axis=1)
    np.testing.assert_array_equal(means[[0, 2]], [2.0, 3.0])
    assert np.isnan(means[1])
    np.testing.assert_array_equal(finite_mean(values, axis=0), [1.0, 2.0, 3.5])


def test_finite_mean_ignores_infinities():
    assert finite_mean(np.array([[np.inf, 2.0, 4.0]]), axis=1)[0] == 3.0


def test_linear_resample_of_a_line_is_exact_inside_and_held_at_the_edges_outside():
    spectra = np.stack([2.0 * np.arange(10.0) + 1.0, -np.arange(10.0)])
    positions = np.array([[0.0, 2.25, 8.5, 9.0, -3.0, 12.0], [4.75, 0.5, 1.0, 3.3, 9.5, -0.1]])
    values, inside = linear_resample(spectra, positions)
    np.testing.assert_array_equal(inside, [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0]])
    np.testing.assert_allclose(values[0, :4], 2.0 * positions[0, :4] + 1.0, atol=1e-12)
    np.testing.assert_allclose(values[1, :4], -positions[1, :4], atol=1e-12)
    np.testing.assert_array_equal(values[0, 4:], [1.0, 19.0])  # the end values outside
    np.testing.assert_array_equal(values[1, 4:], [-9.0, 0.0])


def test_linear_resample_shifts_a_gaussian_by_fractional_channels():
    spectrum = gaussians(100.0, 20.0, 300)[None]
    shifted, _ = linear_resample(spectrum, np.arange(300.0)[None] - 7.4)
    assert locate_zlp(shifted)[0] == pytest.approx(107.4, abs=0.02)


def test_pad_outside_window_fills_with_the_mean_of_the_outermost_measured_channels():
    rng = np.random.default_rng(2)
    spectra = rng.uniform(1.0, 2.0, (2, 64))
    start, stop = np.array([10, 0]), np.array([50, 40])
    padded, measured = pad_outside_window(spectra, start, stop)
    expected_measured = np.zeros((2, 64), bool)
    expected_measured[0, 10:50] = expected_measured[1, 0:40] = True
    np.testing.assert_array_equal(measured, expected_measured)
    np.testing.assert_array_equal(padded[measured], spectra[measured])  # measured channels untouched
    edge = 8  # the documented 8 outermost channels (PAD_EDGE_CHANNELS)
    np.testing.assert_allclose(padded[0, :10], spectra[0, 10: 10 + edge].mean())
    np.testing.assert_allclose(padded[0, 50:], spectra[0, 50 - edge: 50].mean())
    np.testing.assert_allclose(padded[1, 40:], spectra[1, 40 - edge: 40].mean())


def test_a_nan_channel_is_not_taken_for_the_zlp():
    channels = np.arange(300.0)
    spectrum = np.exp(-0.5 * ((channels - 100.0) / 4.0) ** 2)
    spectrum[150] = np.nan
    assert locate_zlp(spectrum) == pytest.approx(100.0)
    assert fwhm(spectrum[None])[0] == pytest.approx(2.3548 * 4.0, rel=0.01)
    with pytest.raises(ValueError, match="last"):
        locate_zlp(np.float64(3.0))
