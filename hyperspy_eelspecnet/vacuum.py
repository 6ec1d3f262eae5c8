"""Measured vacuum zero-loss peaks as point spread functions: checked, cleaned, centred.

A vacuum spectrum, recorded through a hole with the specimen's settings, is the instrument's
own blur: PSF and energy jitter together. The fine-tuning (:mod:`hyperspy_eelspecnet.training`)
blurs its ground truths with such spectra, and Richardson-Lucy deconvolves with one
(``eelspecnet_deconvolve(psf=...)``); both take them through :func:`prepare_vacuum_psfs`, so a
PSF means the same thing everywhere:

1. **Refused** with the reason and the spectra named: non-finite values, no positive counts,
   and a zero-loss peak (ZLP) cut by the window (it must fall below
   :data:`ZLP_EDGE_FRACTION` of its maximum on both sides inside the spectrum).
2. **Dark level.** A dark reference subtracted with too large a value leaves the far tails
   negative: the most negative level of the spectrum smoothed over one ZLP FWHM is added back.
   A positive offset cannot be told from the tail of the ZLP within one window, so it is kept
   as tail. What remains below zero is noise, and is clipped.
3. **Centred** at sub-channel precision: the ZLP's located maximum
   (:func:`~hyperspy_eelspecnet.spectral.locate_zlp`) is moved onto channel ``length // 2`` by
   a Fourier shift (a PSF at least a few channels wide is band-limited, so the shift neither
   smooths nor rings at a visible level; the few negative round-off values are clipped), then
   the spectrum is scaled to unit sum.

:func:`loss_feature_rise` measures how far a spectrum's loss side rises again above its ZLP
tail: a specimen spectrum passed as a vacuum by mistake shows its loss features there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .spectral import fwhm, locate_zlp

__all__ = ["VacuumPSFs", "prepare_vacuum_psfs", "loss_feature_rise", "ZLP_EDGE_FRACTION", "LOSS_FEATURE_RISE_LIMIT"]

#: The ZLP of a usable vacuum spectrum falls below this fraction of its maximum on both sides.
ZLP_EDGE_FRACTION = 1e-2
#: A loss side that rises again by more than this fraction of the ZLP maximum above its running
#: minimum (smoothed over one ZLP FWHM) holds loss features: measured vacuum spectra of the WS2
#: set rise by 3e-5 (noise and ripple), its specimen spectra by 2.5-3e-4.
LOSS_FEATURE_RISE_LIMIT = 1e-4


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
        No spectrum, non-finite values, no positive counts, or a ZLP cut by the window.
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
    position = locate_zlp(data)
    width = fwhm(data)
    channels = np.arange(data.shape[1])
    low = data < ZLP_EDGE_FRACTION * peak[:, None]
    falls_below = (low & (channels < position[:, None])).any(axis=1)
    falls_above = (low & (channels > position[:, None])).any(axis=1)
    bad = np.flatnonzero(~(falls_below & falls_above) | ~np.isfinite(width))
    if bad.size:
        raise ValueError(
            f"The zero-loss peak of {_describe(bad, names)} is cut by the energy window: it does not "
            f"fall below {ZLP_EDGE_FRACTION:g} of its maximum on both sides. Record the vacuum "
            "reference with the whole ZLP inside the window."
        )
    # A dark level subtracted too large shows as a negative floor under the smoothed tails.
    floor = np.array([gaussian_filter1d(row, max(w, 1.0), mode="nearest").min() for row, w in zip(data, width)])
    dark_offset = np.clip(-floor, 0.0, None)
    cleaned = np.clip(data + dark_offset[:, None], 0.0, None)

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


def loss_feature_rise(spectra) -> np.ndarray:
    """How far each spectrum's loss side rises again above its ZLP tail, as a fraction of the ZLP.

    The spectrum is smoothed over one ZLP FWHM; from three FWHM above the ZLP on, the largest
    excess of the smoothed spectrum over its running minimum is returned, relative to the ZLP
    maximum. A ZLP tail only decays, so a vacuum spectrum gives noise and ripple (3e-5 for the
    WS2 vacuum spectra); loss features give more (2.5-3e-4 for the WS2 specimen). Features that
    sit on the tail without rising above an earlier, lower part of it are not seen.

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
        smooth = gaussian_filter1d(spectrum, max(w, 1.0), mode="nearest")[start:]
        rise[row] = (smooth - np.minimum.accumulate(smooth)).max() / spectrum.max()
    return rise
