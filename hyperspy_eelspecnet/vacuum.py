"""Measured vacuum zero-loss peaks as point spread functions: checked, cleaned, centred.

A vacuum spectrum, recorded through a hole with the specimen's settings, is the instrument's
own blur: PSF and energy jitter together. The fine-tuning (:mod:`hyperspy_eelspecnet.training`)
blurs its ground truths with such spectra, and Richardson-Lucy deconvolves with one
(``eelspecnet_deconvolve(psf=...)``); both take them through :func:`prepare_vacuum_psfs`, so a
PSF means the same thing everywhere:

1. **Refused** with the reason and the spectra named: non-finite values, no positive counts,
   a zero-loss peak (ZLP) flat at its maximum for :data:`SATURATED_RUN` channels or a quarter
   of its FWHM (a saturated detector: the PSF's core is cut off), and a ZLP cut by the window (it must fall below
   :data:`ZLP_EDGE_FRACTION` of its maximum on both sides inside the spectrum, for
   :data:`ZLP_EDGE_RUN` channels in a row, so that one dead channel does not pass for the
   ZLP's foot).
2. **Dark level.** A dark reference subtracted with too large a value leaves the far tails
   negative: the low level of the spectrum smoothed over one ZLP FWHM (its
   :data:`DARK_PERCENTILE` th percentile, so that a single dead or negative channel does not
   count; smoothed over at least :data:`FLOOR_SMOOTHING` channels, so that zero-mean read
   noise does not count either) is added back.
   A positive offset cannot be told from the tail of the ZLP within one window, so it is kept
   as tail. Beyond the run of channels around the ZLP where the spectrum, smoothed over one
   FWHM, stays positive, the tails are noise and are set to zero (clipped channel by channel,
   zero-mean noise would leave a positive pedestal over the whole window); negative channels
   inside it are clipped.
3. **Centred** at sub-channel precision: the ZLP's located maximum
   (:func:`~hyperspy_eelspecnet.spectral.locate_zlp`) is moved onto channel ``length // 2`` by
   a Fourier shift (a PSF at least a few channels wide is band-limited, so the shift neither
   smooths nor rings at a visible level; the few negative round-off values are clipped), then
   the spectrum is scaled to unit sum.

:func:`match_to_gaussian` replaces the vacuum PSF of spectra by a Gaussian of its FWHM: a
fine-tuned model sees its inputs so (in training and in the restoration), with no PSF tail left
under a feature near the ZLP.

:func:`loss_feature_rise` measures how far a spectrum's loss side rises again above its ZLP
tail: a specimen spectrum passed as a vacuum by mistake shows its loss features there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .spectral import fwhm, locate_zlp, pad_outside_window

__all__ = [
    "VacuumPSFs", "prepare_vacuum_psfs", "loss_feature_rise", "match_to_gaussian", "ZLP_EDGE_FRACTION",
    "LOSS_FEATURE_RISE_LIMIT", "LOSS_FEATURE_NOISE_ALLOWANCE",
]

#: The ZLP of a usable vacuum spectrum falls below this fraction of its maximum on both sides...
ZLP_EDGE_FRACTION = 1e-2
#: ... for this many channels in a row.
ZLP_EDGE_RUN = 3
#: A vacuum ZLP at its maximum for this many channels in a row (or a quarter of its FWHM, where
#: longer) saturated the detector.
SATURATED_RUN = 4
#: Percentile of the smoothed spectrum taken as its floor (a negative one is a dark level
#: subtracted too large).
DARK_PERCENTILE = 10.0
#: Channels (at least; one ZLP FWHM where wider) the spectrum is smoothed over for its floor:
#: read noise of standard deviation s leaves a floor of about -0.1 s, not the -0.5 s of a
#: 4-channel smoothing.
FLOOR_SMOOTHING = 32.0
#: A rise counts only beyond this many standard deviations of the smoothed tail's noise: pure
#: counting noise reaches 7.4 in 80 simulated vacuum spectra of 1e3-1e6 counts at their maximum.
LOSS_FEATURE_NOISE_ALLOWANCE = 12.0
#: A loss side that rises again by more than this fraction of the ZLP maximum above its running
#: minimum (smoothed over one ZLP FWHM), beyond its counting noise, holds loss features:
#: measured vacuum spectra of the WS2 set rise by 0.8-1.2e-5 (ripple), its specimen spectra by
#: 2.3-2.6e-4 (:func:`loss_feature_rise`).
LOSS_FEATURE_RISE_LIMIT = 1e-4
#: Tikhonov term of the PSF matching (relative to the unit-sum PSF's squared transform at zero
#: frequency): where the vacuum PSF's transform falls below ~1e-3 the Gaussian's has long vanished.
MATCHING_REGULARISATION = 1e-6


@dataclass
class VacuumPSFs:
    """Vacuum spectra prepared as PSFs by :func:`prepare_vacuum_psfs`.

    Attributes
    ----------
    psfs : ndarray, shape (m, length)
        Non-negative, unit sum, the ZLP's located maximum on channel ``length // 2`` (to 1e-3
        channel).
    zlp_position : ndarray, shape (m,)
        Where the ZLP was located in the given spectra (channels).
    zlp_fwhm : ndarray, shape (m,)
        ZLP FWHM (channels).
    dark_offset : ndarray, shape (m,)
        Counts added back to each spectrum (a dark level subtracted too large; 0 where none).
    """

    psfs: np.ndarray
    zlp_position: np.ndarray
    zlp_fwhm: np.ndarray
    dark_offset: np.ndarray


def _describe(rows, names) -> str:
    """'2 vacuum spectra (a.txt, b.txt) hold' / '1 vacuum spectrum (a.txt) holds' style subject."""
    shown = ", ".join(str(names[i]) if names is not None else f"row {int(i)}" for i in rows[:5])
    more = ", ..." if len(rows) > 5 else ""
    what = "spectrum" if len(rows) == 1 else "spectra"
    return f"{len(rows)} vacuum {what} ({shown}{more})"


def _verb(rows, singular, plural):
    return singular if len(rows) == 1 else plural


def prepare_vacuum_psfs(spectra, length: int | None = None, names=None) -> VacuumPSFs:
    """Check measured vacuum spectra and prepare them as PSFs (see the module notes).

    Parameters
    ----------
    spectra : array_like, shape (n,) or (m, n)
        Vacuum spectra (counts), one per row.
    length : int, optional
        Channels of the returned PSFs (default ``n``); the spectrum is cut or zero-padded
        around its centred ZLP.
    names : sequence of str, optional
        A name per spectrum (e.g. file and pixel) for the error messages; row indices otherwise.

    Returns
    -------
    VacuumPSFs

    Raises
    ------
    ValueError
        No spectrum, non-finite values, no positive counts, a saturated ZLP, or a ZLP cut by
        the window.
    """
    data = np.asarray(spectra, dtype=float)
    if data.ndim == 1:
        data = data[None]
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] < 3:
        raise ValueError(
            f"Give vacuum spectra as an array of shape (n_channels,) or (n_spectra, n_channels); got shape "
            f"{np.shape(spectra)}."
        )
    bad = np.flatnonzero(~np.isfinite(data).all(axis=1))
    if bad.size:
        raise ValueError(
            f"{_describe(bad, names)} {_verb(bad, 'holds', 'hold')} NaN or infinite values: a vacuum reference must be a clean "
            "recording. Replace the dead channels or record it again."
        )
    peak = data.max(axis=1)
    bad = np.flatnonzero((peak <= 0) | (data.sum(axis=1) <= 0))
    if bad.size:
        raise ValueError(
            f"{_describe(bad, names)} {_verb(bad, 'holds', 'hold')} no positive counts: there is no zero-loss peak."
        )
    # A plateau of SATURATED_RUN channels, or a quarter of the ZLP's FWHM where longer: counting
    # noise gives three equal channels at the top of a few hundred counts now and then.
    width = fwhm(data)
    run_length = np.maximum(SATURATED_RUN, np.ceil(np.nan_to_num(width, nan=0.0) / 4)).astype(int)
    at_top = data == peak[:, None]
    candidates = np.flatnonzero(_runs(at_top, SATURATED_RUN))  # almost always none
    bad = np.array([i for i in candidates if _runs(at_top[i: i + 1], int(run_length[i]))[0]], int)
    if bad.size:
        raise ValueError(
            f"The zero-loss peak of {_describe(bad, names)} is flat at its maximum ({int(run_length[bad].min())} or more "
            f"channels in a row at {peak[bad].max():.6g} counts): the detector saturated, and the PSF's core "
            "is cut off. Record the vacuum reference again with a shorter exposure."
        )
    position = locate_zlp(data)
    channels = np.arange(data.shape[1])
    run = _runs(data < ZLP_EDGE_FRACTION * peak[:, None], ZLP_EDGE_RUN, anywhere=False)
    starts = channels[: run.shape[1]]
    falls_below = (run & (starts + ZLP_EDGE_RUN - 1 < position[:, None])).any(axis=1)
    falls_above = (run & (starts > position[:, None])).any(axis=1)
    bad = np.flatnonzero(~(falls_below & falls_above) | ~np.isfinite(width))
    if bad.size:
        lowest = np.min(data[bad] / peak[bad, None], axis=1)
        raise ValueError(
            f"The zero-loss peak of {_describe(bad, names)} is cut by the energy window: it does not "
            f"fall below {ZLP_EDGE_FRACTION:g} of its maximum on both sides ({ZLP_EDGE_RUN} channels in a "
            "row). Record the vacuum reference with the whole ZLP inside the window. If it is inside, "
            f"the spectrum stands on a dark level (its lowest channels are {lowest.min():.2g} to {lowest.max():.2g} "
            "of the maximum): subtract the dark reference first."
        )
    # A dark level subtracted too large shows as a negative floor under the tails, smoothed
    # widely enough that zero-mean read noise does not read as one.
    smoothing = np.maximum(width, FLOOR_SMOOTHING)
    floor = np.array([
        np.percentile(gaussian_filter1d(row, s, mode="nearest"), DARK_PERCENTILE) for row, s in zip(data, smoothing)
    ])
    # Read noise of standard deviation sigma (from the second differences), smoothed by a
    # Gaussian of standard deviation s, has sigma / sqrt(2 sqrt(pi) s): a floor within three of
    # those of zero is noise, not a dark level.
    noise = 1.4826 * np.median(np.abs(np.diff(data, 2, axis=1)), axis=1) / np.sqrt(6.0)
    dark_offset = np.where(floor < -3.0 * noise / np.sqrt(2.0 * np.sqrt(np.pi) * smoothing), -floor, 0.0)
    cleaned = _zlp_run(data + dark_offset[:, None], position, width)

    length = data.shape[1] if length is None else int(length)
    centre = length // 2
    n_fft = 1 << int(np.ceil(np.log2(max(length, data.shape[1]) * 2)))
    frequency = np.fft.rfftfreq(n_fft)[None, :]
    padded = np.zeros((data.shape[0], n_fft))
    padded[:, : data.shape[1]] = cleaned
    # The located maximum goes to channel `centre`: a shift by (centre - position) channels.
    shift = (centre - position)[:, None]
    spectrum_ft = np.fft.rfft(padded, axis=1)
    for _ in range(3):  # the parabola vertex is not exactly shift-covariant: refine the shift
        centred = np.fft.irfft(spectrum_ft * np.exp(-2j * np.pi * frequency * shift), n_fft, axis=1)
        psfs = np.clip(centred[:, :length], 0.0, None)
        shift = shift + (centre - locate_zlp(psfs))[:, None]
    psfs /= psfs.sum(axis=1, keepdims=True)
    return VacuumPSFs(psfs=psfs, zlp_position=position, zlp_fwhm=width, dark_offset=dark_offset)


def _runs(mask, length: int, anywhere: bool = True):
    """Where ``mask`` holds for ``length`` channels in a row: for each start channel (shape
    ``(m, n - length + 1)``), or, with ``anywhere``, whether it does somewhere in each row."""
    run = np.lib.stride_tricks.sliding_window_view(mask, length, axis=1).all(axis=2)
    return run.any(axis=1) if anywhere else run


def _zlp_run(spectra, position, width):
    """The spectra over the run of channels around the ZLP where, smoothed over one ZLP FWHM,
    they stay positive; zero beyond it, and negative channels inside it clipped to zero.

    Beyond that run the tails are in the noise: clipped channel by channel they would leave a
    positive pedestal of read noise (~0.4 of its standard deviation in every channel) that a
    unit-sum PSF spreads over the whole window, and Richardson-Lucy would take flat continua for
    its blur.
    """
    cleaned = np.zeros_like(spectra)
    channels = np.arange(spectra.shape[1])
    for i, (row, centre, w) in enumerate(zip(spectra, position, width)):
        smooth = gaussian_filter1d(row, max(w, 1.0), mode="nearest")
        k = int(np.clip(round(centre), 0, row.size - 1))
        empty = channels[smooth <= 0]
        low = empty[empty < k].max() + 1 if np.any(empty < k) else 0
        high = empty[empty > k].min() if np.any(empty > k) else row.size
        cleaned[i, low:high] = np.clip(row[low:high], 0.0, None)
    return cleaned


def loss_feature_rise(spectra) -> np.ndarray:
    """How far each spectrum's loss side rises again above its ZLP tail, as a fraction of the ZLP.

    The spectrum is smoothed over one ZLP FWHM; from three FWHM above the ZLP on, the largest
    excess of the smoothed spectrum over its running minimum, less
    :data:`LOSS_FEATURE_NOISE_ALLOWANCE` standard deviations of the smoothed tail's noise
    (estimated from the tail's second differences), is returned, relative to the ZLP maximum
    (0 where the noise explains the rise). A ZLP tail only decays, so a vacuum spectrum gives
    noise and ripple (3e-5 for the WS2 vacuum spectra before the allowance; a vacuum of 1e4
    counts at its maximum, up to 3e-4 of pure counting noise); loss features give more
    (2.3-2.6e-4 for the WS2 specimen after the allowance, 70-128 standard deviations). Features that sit on the tail
    without rising above an earlier, lower part of it are not seen.

    Parameters
    ----------
    spectra : array_like, shape (n,) or (m, n)

    Returns
    -------
    ndarray, shape (m,)
    """
    data = np.atleast_2d(np.asarray(spectra, dtype=float))
    position = locate_zlp(data)
    width = np.nan_to_num(fwhm(data), nan=1.0)
    rise = np.zeros(data.shape[0])
    for row, (spectrum, zlp, w) in enumerate(zip(data, position, width)):
        start = int(round(zlp + 3 * w))
        if start >= spectrum.size - 1:
            continue
        smoothing = max(w, 1.0)
        tail = spectrum[start:]
        smooth = gaussian_filter1d(spectrum, smoothing, mode="nearest")[start:]
        # Counting noise per channel from second differences (blind to a smooth tail), then
        # after smoothing with a Gaussian of standard deviation `smoothing`.
        # The median absolute deviation is robust to spikes, but reads 0 where most tail channels
        # hold no count (a vacuum of a few hundred counts): only there the RMS is the estimate (a
        # spike on a tail of counts would inflate it, and hide loss features under its noise).
        second = np.diff(tail, 2)
        noise = 0.0
        if tail.size > 2:
            noise = 1.4826 * np.median(np.abs(second - np.median(second)))
            noise = (noise if noise > 0 else np.sqrt(np.mean(second**2))) / np.sqrt(6.0)
        noise /= np.sqrt(2.0 * np.sqrt(np.pi) * smoothing)
        excess = (smooth - np.minimum.accumulate(smooth)).max() - LOSS_FEATURE_NOISE_ALLOWANCE * noise
        rise[row] = max(excess, 0.0) / spectrum.max()
    return rise


def match_to_gaussian(spectra, vacuum_psf) -> np.ndarray:
    """Spectra as if recorded with a Gaussian PSF of the vacuum PSF's FWHM instead of the vacuum PSF.

    The measured vacuum PSF ``P`` (ZLP core, asymmetric tails, jitter) is replaced by a
    symmetric Gaussian ``G`` of the same FWHM: each spectrum is convolved with the kernel whose
    transform is ``G P* / (|P|^2 + MATCHING_REGULARISATION)`` (PSF matching, as images of one
    sky taken with different optics are brought to one PSF). The Gaussian falls to 1e-6 of its
    maximum within 2.2 FWHM, so what the vacuum's tails put under a loss feature near the ZLP
    is gone, and the feature stands on its own; the ZLP core keeps its width, so no noise is
    amplified beyond the share of the tails (a kernel that narrows would). The operation is
    linear and keeps the counts, and a feature keeps its energy (both kernels are centred on
    the ZLP maximum, as :func:`prepare_vacuum_psfs` puts it).

    Parameters
    ----------
    spectra : array_like, shape (..., n)
        Spectra recorded with the vacuum's settings. Beyond its ends each spectrum is continued
        by the mean of its outermost channels, as the restoration pads it.
    vacuum_psf : array_like, shape (m,)
        A vacuum PSF as :func:`prepare_vacuum_psfs` returns it (unit sum, ZLP maximum on
        channel ``m // 2``), e.g. the mean of several.

    Returns
    -------
    ndarray, shape (..., n), float64
    """
    spectra = np.asarray(spectra, dtype=float)
    psf = np.asarray(vacuum_psf, dtype=float)
    shape = spectra.shape
    flat = spectra.reshape(-1, shape[-1])
    n, m = flat.shape[1], psf.size
    offsets = np.arange(m) - m // 2
    width = float(fwhm(psf[None])[0])
    gaussian = np.exp(-4.0 * np.log(2.0) * (offsets / width) ** 2)
    gaussian /= gaussian.sum()
    # Both kernels on one circle with zero shift at index 0; room for the spectrum, its padding
    # (m channels each side, beyond any kernel's reach) and the kernels' spread.
    n_fft = 1 << int(np.ceil(np.log2(n + 3 * m)))
    circle = np.zeros((2, n_fft))
    np.add.at(circle, (slice(None), offsets % n_fft), np.stack([psf, gaussian]))
    vacuum_ft, gaussian_ft = np.fft.rfft(circle, axis=1)
    kernel_ft = gaussian_ft * np.conj(vacuum_ft) / (np.abs(vacuum_ft) ** 2 + MATCHING_REGULARISATION)
    padded = np.zeros((flat.shape[0], n_fft))
    padded[:, m: m + n] = flat
    padded, _ = pad_outside_window(padded, np.full(len(flat), m), np.full(len(flat), m + n))
    matched = np.fft.irfft(np.fft.rfft(padded, axis=1) * kernel_ft, n_fft, axis=1)[:, m: m + n]
    return matched.reshape(shape)
