import numpy as np
import pytest

from hyperspy_eelspecnet.evaluation import (
    feature_free_positions,
    found_at_false_rate,
    fwhm,
    fwtm,
    mse,
    noise_variance_reduction,
    peak_position_error,
    peak_width,
    recovery_rate,
    relative_error,
    resolvable_features,
    shows_peak,
    smoothed_peak_flags,
    ssim_1d,
)

CHANNELS = np.arange(2048)


def gaussian(centre, sigma, height=1.0):
    return height * np.exp(-0.5 * ((CHANNELS - np.asarray(centre, float)[..., None]) / sigma) ** 2)


def test_fwhm_and_fwtm_of_sampled_gaussians():
    spectra = gaussian([400.0, 400.3, 1000.7], 10.0)
    np.testing.assert_allclose(fwhm(spectra), 2 * np.sqrt(2 * np.log(2)) * 10.0, atol=0.05)
    np.testing.assert_allclose(fwtm(spectra), 2 * np.sqrt(2 * np.log(10)) * 10.0, atol=0.05)
    assert fwhm(gaussian([400.0], 10.0)[0]).shape == (1,)  # one 1-D spectrum


def test_peak_width_around_a_given_channel():
    # A higher second peak far away must not be measured when the channel is given.
    spectra = gaussian(400.0, 10.0) + gaussian(1500.0, 3.0, height=5.0)
    assert fwhm(spectra)[0] == pytest.approx(2 * np.sqrt(2 * np.log(2)) * 3.0, abs=0.1)
    assert fwhm(spectra, peak_channel=405)[0] == pytest.approx(23.548, abs=0.05)


def test_peak_width_is_nan_without_a_crossing():
    spectra = gaussian(2, 10.0)
    assert np.isnan(peak_width(spectra, 0.5))[0]
    assert np.isnan(fwhm(np.zeros((1, 2048))))[0]


def test_perfect_restoration_scores():
    truth = gaussian([400.0, 420.0], 1.3)
    distorted = gaussian([400.0, 420.0], 8.0)
    w_original, w_distorted = fwhm(truth), fwhm(distorted)
    np.testing.assert_allclose(recovery_rate(w_distorted, fwhm(truth), w_original), 100.0)
    np.testing.assert_allclose(recovery_rate(w_distorted, w_distorted, w_original), 0.0)
    np.testing.assert_allclose(relative_error(fwhm(truth), w_original), 0.0)
    np.testing.assert_allclose(relative_error(1.5 * w_original, w_original), 50.0)
    np.testing.assert_allclose(ssim_1d(truth, truth), 1.0)
    np.testing.assert_allclose(mse(truth, truth), 0.0)


def test_ssim_by_hand_on_one_window():
    restored = np.array([[0, 0, 0, 0.5, 0, 0, 0]])
    reference = np.array([[0, 0, 0, 1.0, 0, 0, 0]])
    # Window means 1/14 and 1/7; sample variances 1/28 and 1/7, covariance 1/14; L = 1.
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * (1 / 14) * (1 / 7) + c1) * (2 * (1 / 14) + c2) / (
        ((1 / 14) ** 2 + (1 / 7) ** 2 + c1) * (1 / 28 + 1 / 7 + c2)
    )
    assert ssim_1d(restored, reference)[0] == pytest.approx(expected, rel=1e-12)


def test_ssim_averages_valid_windows_and_is_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 3, 40))
    per_window = [ssim_1d(a[:, i: i + 7], b[:, i: i + 7], data_range=1.0) for i in range(34)]
    np.testing.assert_allclose(ssim_1d(a, b, data_range=1.0), np.mean(per_window, axis=0), rtol=1e-12)
    np.testing.assert_allclose(ssim_1d(a, b, data_range=1.0), ssim_1d(b, a, data_range=1.0), rtol=1e-12)
    assert np.all(ssim_1d(a, b) < 1.0)


def test_ssim_and_mse_masks():
    truth = gaussian([400.0], 2.0)
    restored = truth.copy()
    restored[0, 1500:] += 0.3
    measured = CHANNELS < 1200
    assert ssim_1d(restored, truth, mask=measured)[0] == pytest.approx(1.0)
    assert mse(restored, truth, mask=measured)[0] == 0.0
    assert ssim_1d(restored, truth)[0] < 1.0


def test_noise_variance_reduction_of_half_the_noise_is_four():
    rng = np.random.default_rng(1)
    noise_free = gaussian(np.full(200, 400.0), 8.0)
    truth = gaussian(np.full(200, 400.0), 1.3)
    distorted = noise_free + 1e-3 * rng.standard_normal(noise_free.shape)
    restored = truth + 0.5e-3 * rng.standard_normal(truth.shape)
    reduction = noise_variance_reduction(distorted, noise_free, restored, truth, slice(700, None))
    assert np.median(reduction) == pytest.approx(4.0, rel=0.1)
    mask = CHANNELS >= 700
    np.testing.assert_allclose(noise_variance_reduction(distorted, noise_free, restored, truth, mask), reduction)
    assert np.isinf(noise_variance_reduction(distorted, noise_free, truth, truth, mask)).all()


def test_peak_position_error():
    restored = gaussian(400.0, 1.0) + gaussian(1002.0, 20.0, 0.01)
    centres = np.array([[1000.0, 1500.0, np.nan], [400.4, np.nan, np.nan]])
    errors = peak_position_error(np.vstack([restored, restored]), centres, search_radius=5)
    np.testing.assert_allclose(errors, [[2.0, np.nan, np.nan], [0.4, np.nan, np.nan]])
    # Noise does not help: next to every centre it makes a local maximum, but the highest
    # channel of the window lands on the largest spike, on average far from the true centre.
    rng = np.random.default_rng(0)
    centres = np.full((200, 1), 1000.0)
    clean = np.vstack([gaussian(1000.0, 20.0, 0.01)] * 200)
    noisy = clean + rng.normal(0, 0.01, clean.shape)
    assert np.nanmedian(peak_position_error(clean, centres)) == 0
    assert np.nanmedian(peak_position_error(noisy, centres)) >= 3
    # With the truth as reference, overlap shifts count against neither: a restoration equal
    # to the truth scores 0 even where a neighbour's tail moves the maximum off the centre.
    truth = gaussian(1000.0, 8.0, 0.02) + gaussian(1030.0, 20.0, 0.03)  # maximum moved to 1003
    shifted_centre = np.array([[1000.0]])
    assert peak_position_error(truth, shifted_centre, reference=truth)[0, 0] == 0
    assert peak_position_error(truth, shifted_centre)[0, 0] == pytest.approx(3, abs=0.5)
    # A feature swallowed by a stronger neighbour shows no peak of its own: not resolvable.
    swallowing = gaussian(1000.0, 20.0, 0.01) + gaussian(1040.0, 20.0, 0.02)
    assert not resolvable_features(swallowing, shifted_centre)[0, 0]


def test_peak_position_error_is_sub_channel():
    # Features between channels: the interpolated maximum finds the centre to a few hundredths of
    # a channel, where the highest channel alone is off by the rounding (0.3 and 0.5 here).
    centres = np.array([[1000.3], [1200.5]])
    spectra = np.vstack([gaussian(1000.3, 8.0, 0.01), gaussian(1200.5, 4.0, 0.01)])
    errors = peak_position_error(spectra, centres)
    np.testing.assert_allclose(errors, 0.0, atol=0.03)
    # A restoration shifted by 0.6 channels against the truth scores 0.6, not 1 or 0.
    shifted = np.vstack([gaussian(1000.9, 8.0, 0.01), gaussian(1201.1, 4.0, 0.01)])
    np.testing.assert_allclose(peak_position_error(shifted, centres, reference=spectra), 0.6, atol=0.05)
    # Signed, the offset says which way: +0.6 for the shift to higher channels, -0.6 back.
    np.testing.assert_allclose(peak_position_error(shifted, centres, reference=spectra, signed=True), 0.6, atol=0.05)
    np.testing.assert_allclose(peak_position_error(spectra, centres, reference=shifted, signed=True), -0.6, atol=0.05)


def test_feature_free_positions_keep_away_from_features_and_peaks():
    # A decaying background with a feature at 1000 and a bump the truth shows at 1500 whose
    # centre is not listed: positions avoid the listed centre and every peak of the truth.
    truth = np.exp(-CHANNELS / 800.0) + gaussian(1000.0, 5.0, 0.1) + gaussian(1500.0, 5.0, 0.1)
    free = feature_free_positions(truth, [[1000.0, np.nan]], [700], [2000], search_radius=10)
    positions = free[np.isfinite(free)]
    assert positions.size > 30
    assert positions.min() - 10 >= 700 and positions.max() + 10 < 2000
    assert np.abs(positions - 1000).min() >= 30  # three search radii
    assert np.abs(positions - 1500).min() > 10  # the truth shows a peak there
    assert np.all(np.diff(positions) >= 21)  # windows do not overlap
    assert not shows_peak(truth[None], free, 10)[np.isfinite(free)].any()


def test_noise_finds_a_peak_almost_anywhere():
    # The reason "found as a peak" needs a control: for white noise the highest channel of a
    # 21-channel window is inside it with probability 19/21.
    rng = np.random.default_rng(1)
    background = np.exp(-CHANNELS / 800.0)[None].repeat(200, 0)
    positions = feature_free_positions(background, np.full((200, 1), np.nan), np.full(200, 700), np.full(200, 2048))
    noisy = background + rng.normal(0, 0.01, background.shape)
    assert shows_peak(noisy, positions)[np.isfinite(positions)].mean() == pytest.approx(19 / 21, abs=0.02)
    assert not shows_peak(background, positions)[np.isfinite(positions)].any()


def test_smoothing_trades_found_features_for_fewer_false_peaks():
    # Gaussian features 6 channels wide on a decaying background, in white noise: smoothing
    # removes the noise's false peaks much faster than the features, so the detection curve
    # falls from ~19/21 false peaks (the noise) towards none while most features stay found.
    rng = np.random.default_rng(2)
    n = 200
    centres = rng.uniform(800, 1800, (n, 1))
    truth = np.exp(-CHANNELS / 800.0) + 0.05 * np.exp(-0.5 * ((CHANNELS - centres) / 6.0) ** 2)
    noisy = truth + rng.normal(0, 0.01, truth.shape)
    free = feature_free_positions(truth, centres, np.full(n, 700), np.full(n, 2048))
    sigmas = (0.0, 2.0, 6.0)
    found = smoothed_peak_flags(noisy, centres, sigmas)
    false = smoothed_peak_flags(noisy, free, sigmas)[np.isfinite(free)]
    assert found.shape == (n, 1, 3) and found.dtype == bool
    assert np.array_equal(found[..., 0], shows_peak(noisy, centres))  # width 0: the output as it is
    false_rates, found_rates = false.mean(axis=0), found[:, 0].mean(axis=0)
    assert false_rates[0] == pytest.approx(19 / 21, abs=0.03)
    assert np.all(np.diff(false_rates) < -0.1)
    assert found_rates[-1] > 0.9 and false_rates[-1] < 0.6
    # NaN-padded positions are never found.
    assert not smoothed_peak_flags(noisy, np.full((n, 2), np.nan), sigmas).any()


def test_found_at_false_rate_interpolates_along_the_curve():
    false_rates, found_rates = [0.8, 0.4, 0.2], [0.9, 0.7, 0.5]
    assert found_at_false_rate(false_rates, found_rates, 0.3) == pytest.approx(0.6)
    assert found_at_false_rate(false_rates, found_rates, 0.8) == pytest.approx(0.9)
    # Smoothing cannot raise the false-peak rate above the output's own, nor below the curve's end.
    assert np.isnan(found_at_false_rate(false_rates, found_rates, 0.9))
    assert np.isnan(found_at_false_rate(false_rates, found_rates, 0.1))


def test_found_at_false_rate_takes_the_best_found_of_tied_false_rates():
    # Two points at a false rate of 0.4: the curve reaches 0.8 there, whatever their order.
    assert found_at_false_rate([0.4, 0.4, 0.3], [0.8, 0.7, 0.6], 0.4) == pytest.approx(0.8)
    assert found_at_false_rate([0.4, 0.4, 0.3], [0.7, 0.8, 0.6], 0.4) == pytest.approx(0.8)
    assert found_at_false_rate([0.3, 0.4, 0.4, 0.4], [0.6, 0.5, 0.8, 0.7], 0.35) == pytest.approx(0.7)
    # A NaN point is left out, not interpolated through.
    assert found_at_false_rate([0.2, np.nan, 0.4], [0.5, 0.9, 0.7], 0.3) == pytest.approx(0.6)


def test_ssim_of_identical_flat_spectra_is_one_without_a_warning():
    import warnings

    flat = np.stack([np.full(50, 2.0), np.zeros(50)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(ssim_1d(flat, flat), [1.0, 1.0])
        # Flat spectra of other levels (data range 0): only the luminance term differs.
        assert ssim_1d(np.full(50, 1.0), np.full(50, 2.0))[0] == pytest.approx(2 * 1 * 2 / (1 + 4))
