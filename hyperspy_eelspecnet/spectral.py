"""Spectral primitives shared by the training generator and the restoration.

Both must treat a spectrum identically (where its ZLP is, how it is shifted onto the model's
channels, how channels the detector did not record are filled), or the network would be
trained on data prepared differently from the data it restores. So these live here, once.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MIN_CHANNELS_BELOW_ZLP", "MIN_CHANNELS_ABOVE_ZLP", "PAD_EDGE_CHANNELS",
    "finite_mean", "parabola_vertex", "locate_zlp", "half_maximum_centre", "peak_width", "fwhm", "fwtm", "linear_resample", "pad_outside_window",
]

#: A spectrum the network can restore shows the ZLP's energy-gain side: at least this many
#: channels below the ZLP maximum.
MIN_CHANNELS_BELOW_ZLP = 32
#: And some of its loss side: at least this many channels above it.
MIN_CHANNELS_ABOVE_ZLP = 64
#: Channels averaged to fill channels outside a recorded window (the edge value on each side).
PAD_EDGE_CHANNELS = 8


def finite_mean(values, axis):
    """Mean of the finite values along ``axis``; NaN where there are none (without a warning)."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    n_finite = finite.sum(axis=axis)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    return np.where(n_finite > 0, total / np.maximum(n_finite, 1), np.nan)


def parabola_vertex(left, centre, right):
    """Shift (channels, within +-0.5) and height of the vertex of the parabola through three
    neighbouring channels around a maximum; shift 0 where the three do not curve downwards."""
    curvature = left - 2.0 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    shift = np.clip(np.nan_to_num(shift), -0.5, 0.5)
    return shift, centre - 0.25 * (left - right) * shift


def locate_zlp(spectra) -> np.ndarray:
    """Sub-channel position of the zero-loss peak of each spectrum.

    The maximum channel ``k`` is refined by the vertex of the parabola through channels
    ``k - 1, k, k + 1`` (:func:`parabola_vertex`); the refinement is limited to half a channel
    and skipped at the ends of the spectrum. A flat top (several channels in a row at the
    maximum: a saturated detector) is located at its middle.

    Parameters
    ----------
    spectra : array_like, shape (..., n)

    Returns
    -------
    ndarray, shape (...)
        ZLP position in channels (float).
    """
    spectra = np.asarray(spectra, dtype=float)
    if spectra.ndim == 0:
        raise ValueError("locate_zlp needs spectra along a last (energy) axis, not a single number.")
    shape, n = spectra.shape[:-1], spectra.shape[-1]
    rows = spectra.reshape(-1, n)
    peak_index = np.argmax(rows, axis=-1)
    top = rows[np.arange(len(rows)), peak_index]
    with_nan = np.isnan(top)  # argmax stops at a row's first NaN; NaN is not a maximum
    if with_nan.any():
        masked = np.where(np.isnan(rows[with_nan]), -np.inf, rows[with_nan])
        peak_index[with_nan], top[with_nan] = masked.argmax(axis=-1), masked.max(axis=-1)
    inner = np.clip(peak_index, 1, n - 2)
    left, centre, right = (rows[np.arange(len(rows)), inner + step] for step in (-1, 0, 1))
    offset, _ = parabola_vertex(left, centre, right)
    at_edge = (peak_index == 0) | (peak_index == n - 1)
    position = peak_index + np.where(at_edge, 0.0, offset)
    # argmax gives a flat top's first channel: its middle instead (two channels: the parabola's).
    # A flat top of three or more has the two channels after argmax at the maximum.
    following = [rows[np.arange(len(rows)), np.minimum(peak_index + step, n - 1)] for step in (1, 2)]
    flat = (peak_index + 2 < n) & (following[0] == top) & (following[1] == top)
    if flat.any():
        first = peak_index[flat]
        after_top = (np.arange(n) > first[:, None]) & ~(rows[flat] == top[flat][:, None])
        top_end = np.where(after_top.any(axis=-1), np.argmax(after_top, axis=-1), n)
        position[flat] = 0.5 * (first + top_end - 1)
    return position.reshape(shape)[()]  # a scalar for one spectrum


def _crossings(spectra, fraction: float, peak_channel=None, search_radius: int = 10):
    """Interpolated crossings of ``fraction`` of the peak height either side of each peak.

    Returns the left and right crossings (channels) and whether both exist (see
    :func:`peak_width`).
    """
    spectra = np.atleast_2d(np.asarray(spectra, dtype=np.float64))
    n_spectra, n_channels = spectra.shape
    rows = np.arange(n_spectra)
    if peak_channel is None:
        peak = np.where(np.isnan(spectra), -np.inf, spectra).argmax(axis=1)  # NaN is not a maximum
    else:
        centre = np.broadcast_to(np.asarray(peak_channel, int), (n_spectra,))
        window = np.clip(centre[:, None] + np.arange(-search_radius, search_radius + 1), 0, n_channels - 1)
        peak = window[rows, np.take_along_axis(spectra, window, axis=1).argmax(axis=1)]
    height = spectra[rows, peak]
    level = fraction * height
    channels = np.arange(n_channels)
    below = spectra < level[:, None]

    left_mask = below & (channels < peak[:, None])
    right_mask = below & (channels > peak[:, None])
    found = left_mask.any(axis=1) & right_mask.any(axis=1) & (height > 0)
    left = np.where(left_mask, channels, -1).max(axis=1).clip(0, n_channels - 2)
    right = np.where(right_mask, channels, n_channels).min(axis=1).clip(1, n_channels - 1)

    def crossing(outer, inner):
        y_outer, y_inner = spectra[rows, outer], spectra[rows, inner]
        with np.errstate(divide="ignore", invalid="ignore"):
            return outer + (inner - outer) * (level - y_outer) / (y_inner - y_outer)

    return crossing(left, left + 1), crossing(right, right - 1), found


def peak_width(spectra, fraction: float, peak_channel=None, search_radius: int = 10) -> np.ndarray:
    """Full width of a peak at ``fraction`` of its maximum.

    From the peak, the first channel on each side that falls below ``fraction`` times the
    peak height is found; each crossing is placed by linear interpolation between that channel
    and its neighbour towards the peak.

    Parameters
    ----------
    spectra : array_like, shape (..., n_channels)
    fraction : float
        Height of the width, as a fraction of the peak height (0.5 for FWHM).
    peak_channel : int or array_like of int, optional
        Channel (one per spectrum, or one for all) near which the peak lies; the peak is the
        highest channel within ``search_radius`` of it, so a distorted or restored peak that
        moved by a few channels is still measured. Default: each spectrum's maximum.
    search_radius : int
        Half width, in channels, of the search around ``peak_channel``.

    Returns
    -------
    ndarray, shape (...)
        Widths in channels; NaN where the spectrum does not fall below the level on one side
        or the peak is not positive. One spectrum given as a 1-D array gives shape ``(1,)``.
    """
    spectra = np.asarray(spectra, dtype=float)
    lead = spectra.shape[:-1] if spectra.ndim > 1 else (1,)
    flat = spectra.reshape(-1, spectra.shape[-1])
    if peak_channel is not None and np.ndim(peak_channel):
        peak_channel = np.asarray(peak_channel).reshape(-1)
    left, right, found = _crossings(flat, fraction, peak_channel, search_radius)
    return np.where(found, right - left, np.nan).reshape(lead)


def half_maximum_centre(spectra) -> np.ndarray:
    """Centre of each spectrum's highest peak: the midpoint of its half-maximum crossings.

    The crossings are those of :func:`fwhm`. Where the maximum itself is decided by noise (a
    few counts between neighbouring channels at the top of the ZLP) this centre is not: on
    the ``instrument`` generator's noisiest third it moves 0.07 channels (median) with the
    noise, the parabola vertex of :func:`locate_zlp` 0.44. NaN where a crossing is missing.

    Parameters
    ----------
    spectra : array_like, shape (..., n)

    Returns
    -------
    ndarray, shape (...)
    """
    spectra = np.asarray(spectra, dtype=float)
    left, right, found = _crossings(spectra.reshape(-1, spectra.shape[-1]), 0.5)
    return np.where(found, 0.5 * (left + right), np.nan).reshape(spectra.shape[:-1])


def fwhm(spectra, peak_channel=None, search_radius: int = 10) -> np.ndarray:
    """Full width at half maximum in channels; see :func:`peak_width`."""
    return peak_width(spectra, 0.5, peak_channel, search_radius)


def fwtm(spectra, peak_channel=None, search_radius: int = 10) -> np.ndarray:
    """Full width at tenth maximum in channels; see :func:`peak_width`."""
    return peak_width(spectra, 0.1, peak_channel, search_radius)


def linear_resample(spectra, positions):
    """Values of ``spectra (batch, n)`` at fractional ``positions (batch, m)`` (linear).

    Returns the values and a mask of positions inside ``[0, n - 1]``; values outside are those
    of the nearest edge pair (callers pad or blank them).
    """
    n = spectra.shape[-1]
    lower = np.clip(np.floor(positions).astype(np.int64), 0, n - 2)
    weight = np.clip(positions - lower, 0.0, 1.0)
    values = (1.0 - weight) * np.take_along_axis(spectra, lower, -1) + weight * np.take_along_axis(
        spectra, lower + 1, -1
    )
    inside = (positions >= 0) & (positions <= n - 1)
    return values, inside


def pad_outside_window(spectra, start, stop):
    """Fill channels outside ``[start, stop)`` with the mean of the 8 nearest measured channels.

    A constant continuation of the recorded level neither invents a feature nor a cliff at the
    edge of the acquisition window (zeros would put a step there that a network reads as an
    edge of a peak).

    Parameters
    ----------
    spectra : ndarray, shape (batch, n)
    start, stop : ndarray of int, shape (batch,)
        First measured channel and one past the last.

    Returns
    -------
    padded : ndarray, shape (batch, n)
    measured : ndarray of bool, shape (batch, n)
    """
    n = spectra.shape[1]
    channels = np.arange(n)[None, :]
    start = np.asarray(start)[:, None]
    stop = np.asarray(stop)[:, None]
    edge = np.arange(PAD_EDGE_CHANNELS)[None, :]
    # Means of the first and last PAD_EDGE_CHANNELS measured channels of every spectrum at once.
    first = np.take_along_axis(spectra, np.clip(start + edge, 0, n - 1), 1).mean(axis=1, keepdims=True)
    last = np.take_along_axis(spectra, np.clip(stop - PAD_EDGE_CHANNELS + edge, 0, n - 1), 1).mean(axis=1, keepdims=True)
    measured = (channels >= start) & (channels < stop)
    padded = np.where(channels < start, first, np.where(channels >= stop, last, spectra))
    return padded, measured
