"""Restoration metrics of the evaluation protocol (``docs/PROTOCOL.md``, section 3).

Every function takes batched arrays of shape ``(n_spectra, n_channels)`` (one spectrum may be
given as a 1-D array) and returns one value per spectrum. Widths and positions are in channels;
spectra are compared on the same (unit-area) scale.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..spectral import fwhm, fwtm, parabola_vertex, peak_width

__all__ = [
    "peak_width",
    "fwhm",
    "fwtm",
    "recovery_rate",
    "relative_error",
    "region_variance",
    "noise_variance_reduction",
    "ssim_1d",
    "mse",
    "peak_position_error",
    "resolvable_features",
    "shows_peak",
    "smoothed_peak_flags",
    "found_at_false_rate",
    "feature_free_positions",
]


def _as_batch(spectra) -> np.ndarray:
    return np.atleast_2d(np.asarray(spectra, dtype=np.float64))


def _channel_mask(region, shape) -> np.ndarray:
    """A boolean mask of ``shape`` from a mask (one for all or one per spectrum) or a slice."""
    if region is None:
        return np.ones(shape, bool)
    if isinstance(region, slice):
        mask = np.zeros(shape[-1], bool)
        mask[region] = True
        region = mask
    return np.broadcast_to(np.asarray(region, bool), shape)


def recovery_rate(w_distorted, w_restored, w_original) -> np.ndarray:
    """Width recovery ``(W_d - W_r) / (W_d - W_o) * 100`` in percent.

    100 % is a perfect restoration, 0 % no narrowing at all; values above 100 % mean a peak
    restored narrower than the truth. NaN (with a warning silenced) when ``W_d == W_o``.
    """
    w_distorted, w_restored, w_original = (np.asarray(w, float) for w in (w_distorted, w_restored, w_original))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (w_distorted - w_restored) / (w_distorted - w_original) * 100.0
    return np.where(w_distorted == w_original, np.nan, rate)


def relative_error(w_restored, w_original) -> np.ndarray:
    """Relative width error ``|W_r - W_o| / W_o * 100`` in percent."""
    w_restored, w_original = np.asarray(w_restored, float), np.asarray(w_original, float)
    return np.abs(w_restored - w_original) / w_original * 100.0


def region_variance(residual, region=None) -> np.ndarray:
    """Variance (population, ``ddof=0``) of each spectrum over the channels in ``region``.

    Parameters
    ----------
    residual : array_like, shape (n_spectra, n_channels)
    region : slice or array_like of bool, optional
        Channels to use: a slice, a mask of ``n_channels``, or one mask per spectrum.
        Default: all channels.

    Returns
    -------
    ndarray, shape (n_spectra,)
        NaN for a spectrum with no channel in the region.
    """
    residual = _as_batch(residual)
    mask = _channel_mask(region, residual.shape)
    count = mask.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(mask, residual, 0.0).sum(axis=1) / count
        return np.where(mask, (residual - mean[:, None]) ** 2, 0.0).sum(axis=1) / count


def noise_variance_reduction(distorted, noise_free, restored, ground_truth, region) -> np.ndarray:
    """Factor by which a restoration reduces the noise variance.

    ``var(distorted - noise_free) / var(restored - ground_truth)`` over the channels in
    ``region``; the protocol uses the feature-less channels 1.5 eV and more above the ZLP of
    ZLP-only spectra, so the residual there is noise (and, for the restoration, any artefact).

    Parameters
    ----------
    distorted, noise_free, restored, ground_truth : array_like, shape (n_spectra, n_channels)
        On the same scale (unit area).
    region : slice or array_like of bool
        See :func:`region_variance`.

    Returns
    -------
    ndarray, shape (n_spectra,)
        Above 1 the restoration removed noise, below 1 it amplified it. ``inf`` where the
        restoration is exact over the region (zero variance) but the input is noisy, NaN where
        both variances are zero.
    """
    input_variance = region_variance(np.asarray(distorted, float) - noise_free, region)
    output_variance = region_variance(np.asarray(restored, float) - ground_truth, region)
    with np.errstate(divide="ignore", invalid="ignore"):
        return input_variance / output_variance


def ssim_1d(restored, reference, window: int = 7, data_range=None, mask=None) -> np.ndarray:
    """Structural similarity of spectra, mean over all windows of ``window`` channels.

    The definition of Wang et al., IEEE Trans. Image Process. 13, 600 (2004), with a uniform
    window, ``K1 = 0.01``, ``K2 = 0.03`` and sample (``N - 1``) variances and covariance, as
    ``skimage.metrics.structural_similarity`` computes it by default. Only windows that lie
    entirely inside the spectrum (and inside ``mask``) are averaged.

    Parameters
    ----------
    restored, reference : array_like, shape (n_spectra, n_channels)
    window : int
        Window length in channels (odd).
    data_range : float or array_like, optional
        Dynamic range ``L`` in the stabilising constants ``(K L)^2``. Default: ``max - min`` of
        each reference spectrum (over ``mask``).
    mask : array_like of bool, optional
        Channels to compare (one mask for all or one per spectrum), e.g. the measured window.

    Returns
    -------
    ndarray, shape (n_spectra,)
        1 for identical spectra; symmetric in its two arguments when ``data_range`` is given.
    """
    x, y = _as_batch(restored), _as_batch(reference)
    mask = _channel_mask(mask, y.shape)
    if data_range is None:
        data_range = np.where(mask, y, -np.inf).max(axis=1) - np.where(mask, y, np.inf).min(axis=1)
    c1 = (0.01 * np.asarray(data_range, float)) ** 2
    c2 = (0.03 * np.asarray(data_range, float)) ** 2
    c1, c2 = np.broadcast_to(c1, x.shape[:1])[:, None], np.broadcast_to(c2, x.shape[:1])[:, None]

    def window_mean(values):
        return np.lib.stride_tricks.sliding_window_view(values, window, axis=1).mean(axis=2)

    mean_x, mean_y = window_mean(x), window_mean(y)
    sample = window / (window - 1.0)
    var_x = sample * (window_mean(x * x) - mean_x**2)
    var_y = sample * (window_mean(y * y) - mean_y**2)
    cov_xy = sample * (window_mean(x * y) - mean_x * mean_y)
    # Luminance and contrast-structure terms; one whose numerator and denominator are both 0
    # (means both 0, or both windows flat, with a zero data range) compares equals: 1.
    luminance = _ratio_or_one(2 * mean_x * mean_y + c1, mean_x**2 + mean_y**2 + c1)
    structure = _ratio_or_one(2 * cov_xy + c2, var_x + var_y + c2)
    similarity = luminance * structure
    inside = np.lib.stride_tricks.sliding_window_view(mask, window, axis=1).all(axis=2)
    with np.errstate(invalid="ignore"):
        return np.where(inside, similarity, 0.0).sum(axis=1) / inside.sum(axis=1)


def _ratio_or_one(numerator, denominator):
    """``numerator / denominator``, 1 where the denominator is 0 (its numerator is then 0 too)."""
    return np.divide(numerator, denominator, out=np.ones_like(numerator), where=denominator != 0)


def mse(a, b, mask=None) -> np.ndarray:
    """Mean squared difference of each pair of spectra over ``mask`` (default: all channels)."""
    a, b = _as_batch(a), _as_batch(b)
    mask = _channel_mask(mask, a.shape)
    with np.errstate(invalid="ignore"):
        return np.where(mask, (a - b) ** 2, 0.0).sum(axis=1) / mask.sum(axis=1)


def _window_maximum(spectra, centres, radius):
    """Highest channel of each spectrum within +-radius of each centre, and whether it is a peak.

    Returns positions (n, k) and a mask that is True where the maximum lies strictly inside the
    window (on its edge the spectrum only slopes through the window).
    """
    n_spectra, n_channels = spectra.shape
    offsets = np.arange(-radius, radius + 1)
    window = np.round(np.nan_to_num(centres)).astype(int)[..., None] + offsets  # (n, k, w)
    inside = (window >= 0) & (window < n_channels)
    rows = np.arange(n_spectra)[:, None, None]
    values = np.where(inside, spectra[rows, np.clip(window, 0, n_channels - 1)], -np.inf)
    best = np.argmax(values, axis=-1)
    position = np.take_along_axis(window, best[..., None], -1)[..., 0]
    interior = (best > 0) & (best < offsets.size - 1) & (position > 0) & (position < n_channels - 1)
    return position, interior & np.isfinite(centres)


def _parabolic_vertex(spectra, position, is_peak):
    """Sub-channel position of each maximum: :func:`~hyperspy_eelspecnet.spectral.parabola_vertex`
    through the highest channel and its two neighbours (where ``is_peak``; the channel itself
    elsewhere).

    The true centres are continuous, so an integer channel would leave up to half a channel of
    rounding in every error and make medians of different methods tie at whole channels; like
    the ZLP widths (interpolated crossings), positions are interpolated.
    """
    rows = np.arange(spectra.shape[0])[:, None]
    centre = np.clip(position, 1, spectra.shape[1] - 2)
    shift, _ = parabola_vertex(*(spectra[rows, centre + step] for step in (-1, 0, 1)))
    return np.where(is_peak, position + shift, position)


def peak_position_error(
    restored, true_centres, search_radius: float = 10.0, reference=None, signed: bool = False
) -> np.ndarray:
    """Distance between where the restoration and the truth put each feature's maximum.

    For each true feature, the highest channel within ``search_radius`` channels of its centre,
    refined to the vertex of the parabola through it and its two neighbours (sub-channel), is its
    position, in the restoration and in ``reference`` (the ground truth). A feature is
    *resolvable* when the reference's maximum lies strictly inside that window (overlapping
    Lorentzians can shift or swallow a feature's maximum: then there is no peak to find), and
    *resolved* when the restoration's does too. Unlike "the nearest local maximum", this does
    not reward noise: a noisy spectrum has a local maximum next to every centre, but its
    highest channel in the window lands wherever its largest spike is.

    Parameters
    ----------
    restored : array_like, shape (n_spectra, n_channels)
    true_centres : array_like, shape (n_spectra, k)
        Feature centres in (fractional) channels, NaN-padded where a spectrum has fewer than
        ``k`` features (as ``SpectrumBatch.parameters["peak_centres"]``).
    search_radius : float
        Half width, in channels, of the window searched around each true centre.
    reference : array_like, shape (n_spectra, n_channels), optional
        The ground truth. Without it, positions are compared with the centres themselves.
    signed : bool
        Return the restoration's position minus the reference's (positive: the restoration puts
        the maximum at a higher channel) instead of its absolute value.

    Returns
    -------
    ndarray, shape (n_spectra, k)
        Position errors in channels, absolute unless ``signed``; NaN for padding, for features
        the reference does not show as a peak, and for features the restoration does not.
    """
    spectra = _as_batch(restored)
    centres = np.atleast_2d(np.asarray(true_centres, float))
    radius = int(np.floor(search_radius))
    position, resolved = _window_maximum(spectra, centres, radius)
    position = _parabolic_vertex(spectra, position, resolved)
    if reference is None:
        target, resolvable = centres, np.isfinite(centres)
    else:
        reference = _as_batch(reference)
        target, resolvable = _window_maximum(reference, centres, radius)
        target = _parabolic_vertex(reference, target, resolvable)
    error = position - target if signed else np.abs(position - target)
    return np.where(resolvable & resolved, error, np.nan)


def shows_peak(spectra, positions, search_radius: float = 10.0) -> np.ndarray:
    """True where a spectrum's highest channel within ``search_radius`` of a position is a peak.

    The test behind "found as a peak" in :func:`peak_position_error`: the maximum lies strictly
    inside the window, not on its edge. ``positions`` is (n_spectra, k), NaN-padded (False there).
    """
    positions = np.atleast_2d(np.asarray(positions, float))
    return _window_maximum(_as_batch(spectra), positions, int(np.floor(search_radius)))[1]


def smoothed_peak_flags(spectra, positions, smoothing_sigmas, search_radius: float = 10.0) -> np.ndarray:
    """:func:`shows_peak` of the spectra smoothed by Gaussians of increasing width.

    A smoother output shows fewer peaks, at true features and at feature-free positions alike,
    so these flags, taken at features and at :func:`feature_free_positions`, trace a method's
    detection curve (found against falsely found) and let methods be compared at the same
    false-peak rate (:func:`found_at_false_rate`).

    Parameters
    ----------
    spectra : array_like, shape (n_spectra, n_channels)
    positions : array_like, shape (n_spectra, k)
        Positions (channels), NaN-padded (False there).
    smoothing_sigmas : sequence of float
        Gaussian standard deviations in channels; 0 leaves the spectra as they are.
    search_radius : float
        As in :func:`shows_peak`.

    Returns
    -------
    ndarray of bool, shape (n_spectra, k, len(smoothing_sigmas))
    """
    spectra = _as_batch(spectra)
    flags = [
        shows_peak(gaussian_filter1d(spectra, sigma, axis=1) if sigma > 0 else spectra, positions, search_radius)
        for sigma in smoothing_sigmas
    ]
    return np.stack(flags, axis=-1)


def found_at_false_rate(false_rates, found_rates, false_rate: float) -> float:
    """The found fraction along a detection curve where its false-peak fraction is ``false_rate``.

    Linear interpolation between the curve's points (e.g. the mean flags of
    :func:`smoothed_peak_flags` at features and at feature-free positions); NaN where the curve
    does not reach ``false_rate`` (smoothing cannot make an output show *more* false peaks).

    Parameters
    ----------
    false_rates, found_rates : array_like, shape (k,)
        The curve's points, in any order. Of points with the same false rate, the one with the
        highest found rate is used (the best the output reaches at that false rate); NaN points
        are left out.
    false_rate : float
        The false-peak fraction to read the curve at.

    Returns
    -------
    float
        The found fraction there, or NaN.
    """
    false_rates, found_rates = np.asarray(false_rates, float), np.asarray(found_rates, float)
    keep = np.isfinite(false_rates) & np.isfinite(found_rates)
    if not keep.any():
        return float("nan")
    # Points of equal false rate (smoothing that removed no false peak): the best found counts.
    false_values, which = np.unique(false_rates[keep], return_inverse=True)
    best_found = np.full(false_values.size, -np.inf)
    np.maximum.at(best_found, which, found_rates[keep])
    return float(np.interp(false_rate, false_values, best_found, left=np.nan, right=np.nan))


def resolvable_features(reference, true_centres, search_radius: float = 10.0) -> np.ndarray:
    """True where the ground truth shows a feature as a maximum inside its search window."""
    return shows_peak(reference, true_centres, search_radius)


def feature_free_positions(
    reference, true_centres, first_channel, stop_channel, search_radius: float = 10.0, clearance=None
) -> np.ndarray:
    """Positions where the ground truth has no feature: the control for "found as a peak".

    Noise puts a spectrum's highest channel inside almost any window (for white noise, with
    probability ``(w - 2) / w`` for a window of ``w`` channels), so the fraction of features "found
    as a peak" means little without the fraction of feature-free positions "found" the same way.
    These are such positions: a grid of non-overlapping search windows inside
    ``[first_channel, stop_channel)``, at least ``clearance`` channels from every true centre, where
    the reference itself shows no peak.

    Parameters
    ----------
    reference : array_like, shape (n_spectra, n_channels)
        The ground truth.
    true_centres : array_like, shape (n_spectra, k)
        Every feature centre (channels), NaN-padded.
    first_channel, stop_channel : array_like, shape (n_spectra,)
        The span (channels) whose windows may be used, e.g. from 1.5 eV above the ZLP to the
        end of the measured window.
    search_radius : float
        Half width of the search window (channels), as in :func:`peak_position_error`.
    clearance : float, optional
        Least distance (channels) from any true centre; three search radii by default.

    Returns
    -------
    ndarray, shape (n_spectra, m)
        Positions in channels, NaN-padded.
    """
    reference = _as_batch(reference)
    centres = np.atleast_2d(np.asarray(true_centres, float))
    radius = int(np.floor(search_radius))
    clearance = 3 * radius if clearance is None else clearance
    grid = np.arange(radius, reference.shape[1] - radius - 1, 2 * radius + 1, dtype=float)[None, :]
    first = np.asarray(first_channel, float).reshape(-1, 1)
    stop = np.asarray(stop_channel, float).reshape(-1, 1)
    inside = (grid - radius >= first) & (grid + radius < stop)
    with np.errstate(invalid="ignore"):
        near = (np.abs(grid[:, :, None] - centres[:, None, :]) < clearance).any(axis=2)
    positions = np.where(inside & ~near, grid, np.nan)
    return np.where(shows_peak(reference, positions, search_radius), np.nan, positions)
