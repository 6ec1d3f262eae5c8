"""Batched Richardson-Lucy deconvolution of spectra, the baseline EELSpecNet is compared with.

The update is the one of exspy's ``EELSSpectrum.richardson_lucy_deconvolution`` (Gloter et al.,
Ultramicroscopy 96, 385 (2003)):

    estimate <- estimate * correlate(psf, observed / convolve(psf, estimate))

with the PSF's zero shift at its maximum and truncated linear ('full' then sliced) convolutions,
so both give the same numbers. Here every spectrum of a stack is deconvolved at once: the
convolutions are products of zero-padded FFTs over the whole batch, with no per-spectrum loop.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import fft as sp_fft

__all__ = ["richardson_lucy"]


def richardson_lucy(
    spectra,
    psf,
    iterations: int | Sequence[int] = 50,
    *,
    origin=None,
    initial=None,
    eps: float = 1e-12,
    workers: int = -1,
) -> np.ndarray:
    """Richardson-Lucy deconvolution of a stack of spectra.

    Parameters
    ----------
    spectra : array_like, shape (..., n)
        Spectra on their last axis.
    psf : array_like, shape (n_psf,) or (..., n_psf)
        Point spread function, one for all spectra or one per spectrum (leading dimensions are
        broadcast against those of ``spectra``). It need not be normalised: the update does
        not depend on the PSF's scale.
    iterations : int or sequence of int
        Number of iterations. A sequence returns the estimate after each of those counts from
        a single run (e.g. ``(10, 25, 50, 100)`` costs 100 iterations, not 185).
    origin : int or array_like of int, optional
        Index of the PSF channel that means "no energy shift", per spectrum or for all. Default:
        the PSF's maximum (``psf.argmax()``), as in exspy.
    initial : array_like, optional
        The estimate to start from, broadcast against ``spectra`` (clipped at zero), e.g. another
        method's restoration to be refined against the data. Default: the data themselves, as in
        exspy.
    eps : float
        Floor of the re-blurred estimate, relative to its maximum in each spectrum. Channels the
        estimate leaves (almost) empty would otherwise divide by zero, or by FFT round-off, and
        spread a huge ratio over the whole spectrum; floored, the ratio there stays finite, and
        zero where the data are zero. It never changes channels holding more than ``eps`` times
        the maximum, so results agree with exspy's to round-off.
    workers : int
        Threads for the FFTs (:func:`scipy.fft.rfft`); -1, the default, uses every CPU core.
        Pass 1 where the caller already runs one call per core (dask blocks).

    Returns
    -------
    ndarray
        Deconvolved spectra, shape ``broadcast(spectra, psf)[:-1] + (n,)``, with a leading axis of
        ``len(iterations)`` when ``iterations`` is a sequence; the input's float dtype (float64
        for integer input). Computed in float64.

    Raises
    ------
    ValueError
        No energy axis; NaN or infinite values in ``spectra`` or ``psf``; a PSF without positive
        values; negative ``iterations``.

    Notes
    -----
    The multiplicative update preserves signs, so negative data (noise around a subtracted dark
    level) would give negative, oscillating estimates. Negative channels are clipped to zero
    before deconvolution, and round-off negatives are clipped after every iteration: the
    result is never negative.
    """
    spectra = np.asarray(spectra)
    out_dtype = spectra.dtype if np.issubdtype(spectra.dtype, np.floating) else np.float64
    observed = np.clip(spectra.astype(np.float64), 0.0, None)
    psf = np.asarray(psf, dtype=np.float64)
    if observed.ndim < 1 or psf.ndim < 1:
        raise ValueError("spectra and psf need a last (energy) axis.")
    if not (np.isfinite(observed).all() and np.isfinite(psf).all()):
        raise ValueError(
            "spectra or psf hold NaN or infinite values, which the Fourier transforms would spread over "
            "every channel; replace or crop them first."
        )
    if np.any(np.clip(psf, 0.0, None).sum(axis=-1) <= 0):
        raise ValueError("The psf has no positive values; give a measured or modelled zero-loss peak.")
    counts = np.atleast_1d(np.asarray(iterations, dtype=int))
    if np.any(counts < 0):
        raise ValueError(f"iterations must be non-negative, got {iterations}.")

    n, n_psf = observed.shape[-1], psf.shape[-1]
    lead = np.broadcast_shapes(observed.shape[:-1], psf.shape[:-1])
    observed = np.broadcast_to(observed, lead + (n,))
    psf = np.broadcast_to(psf, lead + (n_psf,))
    shift = psf.argmax(axis=-1) if origin is None else np.broadcast_to(np.asarray(origin, int), lead)

    # Linear convolution needs n + n_psf - 1 points to avoid wrap-around; rolling the padded PSF
    # so its origin sits at index 0 reproduces exspy's slice ``full[imax : imax + n]``, and the
    # complex conjugate of its transform is the correlation ``full(psf[::-1], .)[mimax:]``.
    length = sp_fft.next_fast_len(n + n_psf - 1, real=True)
    padded = np.zeros(lead + (length,))
    padded[..., :n_psf] = psf
    index = (np.arange(length) + np.asarray(shift)[..., None]) % length
    transfer = sp_fft.rfft(np.take_along_axis(padded, index, axis=-1), axis=-1)
    transfer_conj = transfer.conj()

    def blur(values, kernel_ft):
        spectrum_ft = sp_fft.rfft(values, length, axis=-1, workers=workers)
        return sp_fft.irfft(spectrum_ft * kernel_ft, length, axis=-1, workers=workers)[..., :n]

    if initial is None:
        estimate = observed.copy()
    else:
        estimate = np.clip(np.broadcast_to(np.asarray(initial, dtype=np.float64), lead + (n,)), 0.0, None)
    snapshots = {}
    for done in range(int(counts.max(initial=0)) + 1):
        if done in counts:
            snapshots[done] = estimate.astype(out_dtype)
        if done == counts.max():
            break
        reblurred = blur(estimate, transfer)
        floor = np.maximum(eps * reblurred.max(axis=-1, keepdims=True), np.finfo(float).tiny)
        ratio = observed / np.maximum(reblurred, floor)
        estimate = np.clip(estimate * blur(ratio, transfer_conj), 0.0, None)

    if np.ndim(iterations) == 0:
        return snapshots[int(counts[0])]
    return np.stack([snapshots[int(c)] for c in counts])
