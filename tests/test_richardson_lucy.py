import numpy as np
import pytest

from hyperspy_eelspecnet.richardson_lucy import richardson_lucy

N_CHANNELS = 512


def _asymmetric_psf(n=N_CHANNELS, peak=200, gain_hwhm=3.0, loss_hwhm=6.0):
    """Gaussian gain side, Lorentzian loss side, maximum well away from the centre."""
    offset = np.arange(n) - float(peak)
    psf = np.where(
        offset > 0, 1.0 / (1.0 + (offset / loss_hwhm) ** 2), np.exp(-np.log(2.0) * (offset / gain_hwhm) ** 2)
    )
    return psf / psf.sum()


def _blur(truth, psf, origin):
    """Truncated linear convolution, zero shift at ``origin`` (what exspy's RL assumes)."""
    flat = truth.reshape(-1, truth.shape[-1])
    out = [np.convolve(row, psf)[origin: origin + truth.shape[-1]] for row in flat]
    return np.reshape(out, truth.shape)


def _stack(rng, shape=(3, 4)):
    channels = np.arange(N_CHANNELS)
    centres = rng.uniform(220, 450, shape + (3,))
    features = (0.01 / (1.0 + ((channels - centres[..., None]) / 8.0) ** 2)).sum(axis=-2)
    return np.exp(-0.5 * ((channels - 150.0) / 1.5) ** 2) + features


def _rms_width(spectrum):
    channels = np.arange(spectrum.size)
    weights = spectrum / spectrum.sum()
    centre = (weights * channels).sum()
    return np.sqrt((weights * (channels - centre) ** 2).sum())


def test_matches_exspy_on_a_stack():
    exspy = pytest.importorskip("exspy")
    rng = np.random.default_rng(1)
    psf = _asymmetric_psf()
    assert psf.argmax() != N_CHANNELS // 2
    blurred = _blur(_stack(rng), psf, psf.argmax()) + 1e-7

    signal = exspy.signals.EELSSpectrum(blurred)
    expected = signal.richardson_lucy_deconvolution(
        exspy.signals.EELSSpectrum(psf), iterations=30, show_progressbar=False
    ).data
    result = richardson_lucy(blurred, psf, iterations=30)

    assert result.shape == (3, 4, N_CHANNELS)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=0)


def test_per_spectrum_psfs_equal_a_loop():
    rng = np.random.default_rng(2)
    truth = _stack(rng, (5,))
    shapes = [(200, 4), (256, 6), (300, 9), (250, 3), (180, 12)]
    psfs = np.stack([_asymmetric_psf(peak=peak, loss_hwhm=hwhm) for peak, hwhm in shapes])
    blurred = np.stack([_blur(t, k, k.argmax()) for t, k in zip(truth, psfs)])

    batched = richardson_lucy(blurred, psfs, iterations=20)
    looped = np.stack([richardson_lucy(b, k, iterations=20) for b, k in zip(blurred, psfs)])
    np.testing.assert_allclose(batched, looped, rtol=1e-12, atol=1e-300)

    # (5, n) spectra against (2, 1, n) PSFs broadcast to (2, 5, n).
    broadcast = richardson_lucy(blurred, psfs[:2, None], iterations=5)
    assert broadcast.shape == (2, 5, N_CHANNELS)
    np.testing.assert_allclose(broadcast[1, 3], richardson_lucy(blurred[3], psfs[1], iterations=5), rtol=1e-12)


def test_iteration_snapshots_equal_separate_runs():
    rng = np.random.default_rng(3)
    psf = _asymmetric_psf()
    blurred = _blur(_stack(rng, (2,)), psf, psf.argmax())
    snapshots = richardson_lucy(blurred, psf, iterations=(3, 10))
    assert snapshots.shape == (2, 2, N_CHANNELS)
    np.testing.assert_allclose(snapshots[1], richardson_lucy(blurred, psf, iterations=10), rtol=1e-12)


def test_zero_input_gives_zeros():
    result = richardson_lucy(np.zeros((2, N_CHANNELS), np.float32), _asymmetric_psf(), iterations=10)
    assert result.dtype == np.float32
    assert np.all(result == 0.0)


def test_negative_noise_gives_non_negative_finite_output():
    rng = np.random.default_rng(4)
    psf = _asymmetric_psf()
    blurred = _blur(_stack(rng, (4,)), psf, psf.argmax())
    noisy = blurred + 1e-3 * rng.standard_normal(blurred.shape)
    assert noisy.min() < 0
    result = richardson_lucy(noisy, psf, iterations=50)
    assert np.all(np.isfinite(result))
    assert result.min() >= 0.0


def test_narrows_a_blurred_gaussian():
    channels = np.arange(N_CHANNELS)
    truth = np.exp(-0.5 * ((channels - 250.0) / 2.0) ** 2)
    psf = np.exp(-0.5 * ((channels - N_CHANNELS // 2) / 6.0) ** 2)
    blurred = _blur(truth, psf / psf.sum(), N_CHANNELS // 2)
    widths = [_rms_width(r) for r in richardson_lucy(blurred, psf / psf.sum(), iterations=(0, 5, 20, 100))]
    # Blurred width sqrt(2^2 + 6^2) = 6.3 channels, true width 2.
    assert widths[0] == pytest.approx(np.hypot(2.0, 6.0), rel=1e-3)
    assert widths[0] > widths[1] > widths[2] > widths[3]
    assert widths[3] < 0.5 * widths[0]


def test_fft_threads_do_not_change_the_result():
    rng = np.random.default_rng(5)
    spectra = rng.random((6, 300)) + 0.1
    psf = np.exp(-0.5 * ((np.arange(41) - 20) / 3.0) ** 2)
    np.testing.assert_array_equal(
        richardson_lucy(spectra, psf, 20, workers=1), richardson_lucy(spectra, psf, 20, workers=-1)
    )


def test_starts_from_a_given_estimate():
    channels = np.arange(N_CHANNELS)
    truth = np.exp(-0.5 * ((channels - 250.0) / 2.0) ** 2) + 0.01
    psf = np.exp(-0.5 * ((channels - N_CHANNELS // 2) / 6.0) ** 2)
    psf /= psf.sum()
    blurred = _blur(truth, psf, N_CHANNELS // 2)
    # Zero iterations return the starting estimate (clipped at zero), not the data.
    start = truth - 0.02
    np.testing.assert_allclose(richardson_lucy(blurred, psf, 0, initial=start), np.clip(start, 0.0, None))
    # The truth reproduces the data, so the update leaves it (almost) where it is, while the
    # same iterations from the data are still far from it.
    from_truth = richardson_lucy(blurred, psf, 20, initial=truth, origin=N_CHANNELS // 2)
    from_data = richardson_lucy(blurred, psf, 20, origin=N_CHANNELS // 2)
    inner = slice(50, N_CHANNELS - 50)  # away from the truncated convolution's ends
    assert np.abs(from_truth - truth)[inner].max() < 1e-3 * truth.max()
    assert np.abs(from_data - truth)[inner].max() > 0.1 * truth.max()
    # Without ``initial`` the data are the start, as before.
    np.testing.assert_array_equal(richardson_lucy(blurred, psf, 5, initial=blurred), richardson_lucy(blurred, psf, 5))


def test_nan_or_an_empty_psf_is_refused_not_spread_over_the_spectrum():
    psf = np.exp(-0.5 * (np.arange(-10, 11) / 2.0) ** 2)
    spectrum = np.convolve(np.r_[np.zeros(50), 1e4, np.zeros(69)], psf, mode="same") + 1.0
    holed = spectrum.copy()
    holed[100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        richardson_lucy(holed, psf, 5)
    with pytest.raises(ValueError, match="NaN"):
        richardson_lucy(spectrum, np.r_[psf, np.nan], 5)
    with pytest.raises(ValueError, match="no positive values"):
        richardson_lucy(spectrum, np.zeros(5), 3)
