"""Restore near-zero-loss EELS spectra with EELSpecNet: plain NumPy, no HyperSpy.

The data path, one named function per step, every step vectorised over a batch of spectra
``(batch, n)``:

1. :func:`diagnose_spectra` measures each spectrum (non-finite values, area, zero-loss peak
   position and width, channels either side of the ZLP); :func:`check_spectra` refuses what
   the network cannot restore and :func:`contract_warnings` says where the input leaves what
   the model was trained on, naming the spectra and what to do.
2. For a fine-tuned model whose contract holds a ``vacuum_psf`` (``eelspecnet finetune``), each
   spectrum is first matched to a Gaussian of that PSF's FWHM
   (:func:`~hyperspy_eelspecnet.vacuum.match_to_gaussian`), as its training inputs were; the
   HyperSpy glue records this step (the PSF's FWHM and a short hash of it). Models without one
   take the spectra as recorded.
3. :func:`to_network_input` pads each spectrum on both sides, with the mean of its 8 outermost
   channels (as the training generator pads windows cut by the detector), to a length the
   network takes, and scales it to unit area. The spectrum itself is neither shifted nor
   resampled: the network is fully convolutional and was trained with the ZLP anywhere in its
   window, at its own sub-channel position. Its first channel always lands on the same place of
   the network's grid, so a window cut shorter at its loss end keeps the restoration of the rest
   (to 0.1 % for cuts within the padded length; a cut that shortens the padded length changes
   it by 1-2 %: the network sees the whole input).
4. The network restores the padded spectra in batches
   (:func:`hyperspy_eelspecnet.model.predict_spectra`).
5. :func:`from_network_output` cuts the padding off again and scales each restored spectrum so
   that its counts equal the input's: every input channel comes back restored, none NaN.

:func:`restore_block` runs steps 2-5 and, beside them, Richardson-Lucy
(:func:`deconvolve_block`): the HyperSpy glue maps the two over a signal. :class:`EELSpecNetDeconvolution` holds a loaded model.
Models are loaded once per process and cached by path, and an engine pickles as its path only,
so dask ships a few bytes per task and each worker loads the model on first use.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from .model import file_sha256, load_model, predict_spectra
from .model.files import model_file
from .model.backend import import_tensorflow
from .richardson_lucy import richardson_lucy
from .spectral import (
    MIN_CHANNELS_ABOVE_ZLP, MIN_CHANNELS_BELOW_ZLP, fwhm, locate_zlp, pad_outside_window,
)
from .vacuum import match_to_gaussian

__all__ = [
    "EELSpecNetDeconvolution",
    "restore_block",
    "deconvolve_block",
    "DEFAULT_BATCH_SIZE",
    "GPU_BATCH_SIZE",
    "default_batch_size",
    "DIAGNOSTICS",
    "diagnose_spectra",
    "check_spectra",
    "check_zlp_width",
    "likely_spikes",
    "SPIKE_FWHM_CHANNELS",
    "SPIKE_DISTANCE_FWHMS",
    "contract_warnings",
    "zlp_energy_warning",
    "NETWORK_MARGIN",
    "to_network_input",
    "from_network_output",
    "own_zlp_psf",
    "OWN_ZLP_PSF_THRESHOLD",
    "COMPLEX_DATA_MESSAGE",
]
#: Spectra per network call on a CPU: larger batches gain little there and each 256 spectra
#: hold ~200 MiB of activations (measured on 2 cores).
DEFAULT_BATCH_SIZE = 256
#: Spectra per network call on a GPU, where small batches leave most of the device idle.
GPU_BATCH_SIZE = 4096


@functools.lru_cache(maxsize=1)
def default_batch_size() -> int:
    """Spectra per network call for this machine: :data:`GPU_BATCH_SIZE` when TensorFlow sees a
    GPU, :data:`DEFAULT_BATCH_SIZE` otherwise (asked once per process: it runs on every block)."""
    tf = import_tensorflow()

    return GPU_BATCH_SIZE if tf.config.list_physical_devices("GPU") else DEFAULT_BATCH_SIZE

#: :func:`own_zlp_psf` keeps the ZLP down to this fraction of its maximum.
OWN_ZLP_PSF_THRESHOLD = 1e-3

#: The per-spectrum measurements of :func:`diagnose_spectra`: non-finite values, area (sum),
#: maximum, ZLP position and FWHM (channels), channels below and above the ZLP position.
DIAGNOSTICS = np.dtype([
    ("n_nonfinite", "f8"), ("area", "f8"), ("peak", "f8"), ("zlp_position", "f8"), ("zlp_fwhm", "f8"),
    ("channels_below", "f8"), ("channels_above", "f8"),
])


# --------------------------------------------------------------------------- diagnostics


def diagnose_spectra(spectra) -> np.ndarray:
    """Per-spectrum measurements used to validate input and to warn about the model contract.

    Parameters
    ----------
    spectra : array_like, shape (..., n)

    Returns
    -------
    ndarray of :data:`DIAGNOSTICS`, shape (...)
        Non-finite values count as zero in the other measurements. A structured array (named
        fields, one record per spectrum) so that dask can build it block by block.

    Raises
    ------
    TypeError
        Complex spectra.
    """
    spectra = np.asarray(spectra)
    if np.iscomplexobj(spectra):
        raise TypeError(COMPLEX_DATA_MESSAGE)
    spectra = np.asarray(spectra, dtype=float)
    finite = np.isfinite(spectra)
    clean = spectra if finite.all() else np.where(finite, spectra, 0.0)
    diagnostics = np.empty(spectra.shape[:-1], DIAGNOSTICS)
    diagnostics["n_nonfinite"] = (~finite).sum(axis=-1)
    diagnostics["area"] = clean.sum(axis=-1)
    diagnostics["peak"] = clean.max(axis=-1)
    diagnostics["zlp_position"] = position = locate_zlp(clean)
    diagnostics["zlp_fwhm"] = fwhm(clean)
    diagnostics["channels_below"] = position
    diagnostics["channels_above"] = (spectra.shape[-1] - 1) - position
    return diagnostics


#: What complex input is told.
COMPLEX_DATA_MESSAGE = (
    "The spectra are complex; EELSpecNet restores real intensities. Take the real part or the "
    "modulus first (e.g. s.real or abs(s))."
)


def _describe_indices(mask, max_shown: int = 5) -> str:
    """'3 spectra, at navigation indices (x, y) (0, 1), (2, 1), ...' in HyperSpy's inav order."""
    mask = np.asarray(mask)
    if mask.ndim == 0:
        return "the spectrum"
    flat = np.argwhere(mask)
    count = len(flat)
    shown = ", ".join(str(tuple(int(i) for i in index[::-1])) for index in flat[:max_shown])
    more = ", ..." if count > max_shown else ""
    noun = "spectrum" if count == 1 else "spectra"
    return f"{count} {noun} (navigation indices in s.inav order: {shown}{more})"


def check_spectra(diagnostics) -> None:
    """Raise ``ValueError`` naming the spectra EELSpecNet cannot restore and the fix.

    Parameters
    ----------
    diagnostics : ndarray of :data:`DIAGNOSTICS`
        Output of :func:`diagnose_spectra`.

    Raises
    ------
    ValueError
        Non-finite values; spectra without positive area or maximum (all zero or dominated by
        negative values); no zero-loss peak (the maximum does not fall to half on both sides);
        fewer than :data:`~hyperspy_eelspecnet.spectral.MIN_CHANNELS_BELOW_ZLP` channels below
        or :data:`~hyperspy_eelspecnet.spectral.MIN_CHANNELS_ABOVE_ZLP` above the ZLP, counted
        from its located sub-channel position (``channels_below`` and ``channels_above``; the
        message gives the fewest among the refused spectra). Where the located maximum of a
        refused spectrum is likely a spike (:func:`likely_spikes`), the message says so instead.
    """
    d = diagnostics
    nonfinite = d["n_nonfinite"] > 0
    if np.any(nonfinite):
        raise ValueError(
            f"The data contain {int(d['n_nonfinite'].sum())} NaN or infinite values in "
            f"{_describe_indices(nonfinite)}. Replace them first (e.g. interpolate, or "
            "s.data[~np.isfinite(s.data)] = 0 if they are dead channels) or crop them away."
        )
    not_positive = (d["area"] <= 0) | (d["peak"] <= 0)
    if np.any(not_positive):
        raise ValueError(
            f"No positive area or maximum in {_describe_indices(not_positive)}: all zero or "
            "dominated by negative values, so there is no zero-loss peak to restore. Check the "
            "dark-reference subtraction, or crop these pixels away."
        )
    no_zlp = ~np.isfinite(d["zlp_fwhm"])
    _refuse_spikes(d, no_zlp, "has no zero-loss peak shape (it does not fall to half on both sides)")
    if np.any(no_zlp):
        raise ValueError(
            f"No zero-loss peak found in {_describe_indices(no_zlp)}: the maximum does not fall "
            "to half its height on both sides within the spectrum. EELSpecNet restores "
            "near-zero-loss (low-loss) spectra that contain the whole ZLP; core-loss spectra or "
            "windows that cut the ZLP cannot be restored."
        )
    short_below = d["channels_below"] < MIN_CHANNELS_BELOW_ZLP
    short_above = d["channels_above"] < MIN_CHANNELS_ABOVE_ZLP
    short = short_below | short_above
    _refuse_spikes(d, short, "leaves too few channels below or above it")
    if np.any(short):
        # Rounded down: a spectrum 0.4 channels short must not read as having enough.
        fewest = [
            f"as few as {np.floor(10 * np.min(d[field][mask])) / 10:.1f} channels {side} it"
            for field, mask, side in (
                ("channels_below", short_below, "below"), ("channels_above", short_above, "above")
            )
            if np.any(mask)
        ]
        raise ValueError(
            f"Too few channels around the zero-loss peak in {_describe_indices(short)} "
            f"({' and '.join(fewest)}). EELSpecNet needs at least {MIN_CHANNELS_BELOW_ZLP} "
            f"channels below and {MIN_CHANNELS_ABOVE_ZLP} above the ZLP maximum (counted from its "
            "located, sub-channel position to the first and the last channel); acquire or crop a "
            "wider energy window around 0 eV."
        )


#: A located zero-loss peak narrower than this (FWHM, channels) is taken for a spike.
SPIKE_FWHM_CHANNELS = 1.5
#: A located zero-loss peak further than this many median ZLP widths from the median ZLP
#: position (and less than half as wide as the median ZLP) is taken for a spike.
SPIKE_DISTANCE_FWHMS = 5.0


def likely_spikes(diagnostics) -> np.ndarray:
    """Which spectra's located maximum is likely a spike (cosmic ray, hot pixel), not the ZLP.

    A spike higher than the zero-loss peak is located as the ZLP. It is recognised by either

    - a FWHM below :data:`SPIKE_FWHM_CHANNELS` channels (among three spectra or more, also
      below half their median ZLP FWHM: a map whose ZLPs are all that narrow holds no spikes,
      its dispersion is coarse), or
    - among three spectra or more, a position more than :data:`SPIKE_DISTANCE_FWHMS` median
      ZLP widths from the median ZLP position of all spectra, with a width below half the
      median (or none measurable: a spike on the first or last channel). A ZLP that merely
      drifted keeps its width.

    Parameters
    ----------
    diagnostics : ndarray of :data:`DIAGNOSTICS`

    Returns
    -------
    ndarray of bool, the shape of ``diagnostics``
    """
    width = diagnostics["zlp_fwhm"]
    spikes = width < SPIKE_FWHM_CHANNELS
    measured = np.isfinite(width)
    if diagnostics.size >= 3 and np.any(measured):
        median_width = np.median(width[measured])
        distance = np.abs(diagnostics["zlp_position"] - np.median(diagnostics["zlp_position"]))
        narrow = ~measured | (width < 0.5 * median_width)
        spikes &= narrow
        spikes |= narrow & (distance > SPIKE_DISTANCE_FWHMS * median_width)
    return spikes


def _refuse_spikes(diagnostics, failing, problem: str) -> None:
    """Raise ``ValueError`` when spectra fail a check because a spike was located as their ZLP.

    ``problem`` says, after "taken for the ZLP, it", what the check found.
    """
    if not np.any(failing):
        return
    spikes = failing & likely_spikes(diagnostics)
    if not np.any(spikes):
        return
    found = diagnostics[spikes]
    where = ", ".join(
        f"channel {position:.1f} ({width:.1f} channels FWHM)" if np.isfinite(width) else f"channel {position:.1f}"
        for position, width in zip(found["zlp_position"][:5], found["zlp_fwhm"][:5])
    )
    more = ", ..." if found.size > 5 else ""
    typical = ""
    if diagnostics.size >= 3:
        typical = (
            f"; the median ZLP of all {diagnostics.size} spectra lies at channel "
            f"{np.median(diagnostics['zlp_position']):.1f} ({np.nanmedian(diagnostics['zlp_fwhm']):.1f} "
            "channels FWHM)"
        )
    raise ValueError(
        f"The maximum of {_describe_indices(spikes)} is likely a spike (a cosmic ray or a hot "
        f"pixel), not the zero-loss peak: it lies at {where}{more}{typical}. Taken for the ZLP, it "
        f"{problem}. Remove spikes first, e.g. with HyperSpy's s.spikes_removal_tool(), or crop "
        "them away; then restore."
    )


def check_zlp_width(diagnostics, contract, force: bool = False) -> None:
    """Refuse spectra whose ZLP is already narrower than the model's restored ZLP.

    The network restores a ZLP of ``contract.zlp_fwhm_channels``; a narrower one (a coarse
    energy axis, e.g. 0.5 eV per channel over a 0.8 eV ZLP) would come back wider, its loss
    signal reshaped: worse than the input. ``force=True`` restores them anyway.

    Raises
    ------
    ValueError
        Naming the spectra; where their located maximum is likely a spike
        (:func:`likely_spikes`), saying so and how to remove it.
    """
    narrow = diagnostics["zlp_fwhm"] < contract.zlp_fwhm_channels
    if np.any(narrow) and not force:
        _refuse_spikes(
            diagnostics, narrow,
            f"is narrower than the {contract.zlp_fwhm_channels:g}-channel ZLP the model restores (if it is "
            "the ZLP itself, there is nothing to sharpen at this dispersion; force=True restores it anyway)",
        )
        raise ValueError(
            f"The zero-loss peak of {_describe_indices(narrow)} is already narrower (as narrow as "
            f"{float(np.min(diagnostics['zlp_fwhm'][narrow])):.2f} channels FWHM) than the "
            f"{contract.zlp_fwhm_channels:g}-channel ZLP the model {contract.name!r} restores: the "
            "restoration would widen it and reshape the loss signal. There is nothing to sharpen at "
            "this energy resolution per channel; record with a finer dispersion, or pass force=True "
            "(--force on the command line) to restore anyway."
        )


def contract_warnings(diagnostics, contract) -> list[str]:
    """Texts of the warnings for input outside what the model was trained on.

    Everything is judged in channels, as the model's ranges are.

    Parameters
    ----------
    diagnostics : ndarray of :data:`DIAGNOSTICS`
        Output of :func:`diagnose_spectra` for input that passed :func:`check_spectra`.
    contract : ModelContract

    Returns
    -------
    list of str
        One text per problem: a ZLP wider than ``contract.psf_fwhm_channels`` (bin the energy
        axis by the factor given), narrower than it (fine-tune on your vacuum ZLP), and total
        counts outside ``contract.counts_range``.
    """
    texts = []
    fwhm = diagnostics["zlp_fwhm"].ravel()
    if fwhm.size == 0:
        return texts
    low, high = contract.psf_fwhm_channels
    measured = f"measured {np.min(fwhm):.1f}-{np.max(fwhm):.1f} channels, median {np.median(fwhm):.1f}"
    wide = fwhm > high
    if np.any(wide):
        factor = int(np.ceil(np.max(fwhm) / high))
        texts.append(
            f"The zero-loss peak of {int(wide.sum())} of {fwhm.size} spectra is wider than the "
            f"{high:g} channels FWHM the model {contract.name!r} was trained on ({measured}): "
            "results there are extrapolation. Bin the energy axis by "
            f"{factor} (s.rebin(scale=(1, ..., {factor})), the energy axis last) to bring it into range."
        )
    narrow = fwhm < low
    if np.any(narrow):
        texts.append(
            f"The zero-loss peak of {int(narrow.sum())} of {fwhm.size} spectra is narrower than the "
            f"{low:g} channels FWHM the model {contract.name!r} was trained on ({measured}): results "
            "there are extrapolation. Binning would make it narrower still; fine-tune the model on "
            "your microscope's vacuum ZLP instead ('eelspecnet finetune VACUUM --out DIR')."
        )
    if contract.counts_range is not None:
        few, many = contract.counts_range
        area = diagnostics["area"].ravel()
        outside = (area < few) | (area > many)
        if np.any(outside):
            texts.append(
                f"{int(outside.sum())} of {area.size} spectra hold {np.min(area):.3g}-{np.max(area):.3g} "
                f"counts (summed over channels), outside the {few:.0e}-{many:.0e} electrons per "
                f"spectrum the model {contract.name!r} was trained on: their noise is "
                f"{'lower' if np.max(area) > many else 'higher'} than anything it saw. If the data are "
                "counts, fine-tune on your vacuum ZLP with your specimen's counts ('eelspecnet "
                "finetune VACUUM --specimen FILE --out DIR'); if they were scaled, this does not apply."
            )
    return texts


#: A located ZLP further than this from 0 eV (on an energy axis in eV) gets a warning: a
#: plasmon or a window without the ZLP is likely, or an uncalibrated axis.
ZLP_ENERGY_LIMIT_EV = 5.0


def zlp_energy_warning(diagnostics, energies_ev) -> str | None:
    """The text of the warning for spectra whose located maximum is not at zero energy loss.

    A window without the ZLP (a plasmon or core-loss window) has a maximum that is a loss
    feature; restored as a ZLP, it would be sharpened into one. It is recognised on a
    calibrated energy axis: 0 eV outside the window, or the located maximum further than
    :data:`ZLP_ENERGY_LIMIT_EV` from 0 eV.

    Parameters
    ----------
    diagnostics : ndarray of :data:`DIAGNOSTICS`
    energies_ev : ndarray, shape (n,)
        The energy of each channel, in eV (uniform, increasing).

    Returns
    -------
    str or None
        None when 0 eV lies in the window and every located maximum within the limit of it.
    """
    energies_ev = np.asarray(energies_ev, dtype=float)
    first, last = energies_ev[0], energies_ev[-1]
    scale = (last - first) / max(len(energies_ev) - 1, 1)
    energy = first + scale * diagnostics["zlp_position"].ravel()
    far = np.abs(energy) > ZLP_ENERGY_LIMIT_EV
    outside = first > 0 or last < 0
    if energy.size == 0 or not (outside or np.any(far)):
        return None
    which = "0 eV lies outside the window" if outside else f"in {int(far.sum())} of {energy.size} spectra"
    return (
        f"The maximum taken for the zero-loss peak lies at {np.min(energy):.3g} to {np.max(energy):.3g} eV, "
        f"not near 0 eV ({which}, {first:.3g} to {last:.3g} eV). If this window has no ZLP (a plasmon "
        "or core-loss window), that maximum is a loss feature and the restoration sharpens it as if it "
        "were the ZLP: restore a low-loss window that contains the ZLP. If the ZLP is there and the "
        "energy axis is not calibrated, calibrate it first (s.align_zero_loss_peak(calibrate=True))."
    )


# --------------------------------------------------------------------------- the network's input


#: Channels of padding at least added on each side of a spectrum before the network (the
#: training windows had at least 64 channels of padding beyond the detector's edges).
NETWORK_MARGIN = 64


def to_network_input(spectra, length_multiple: int, margin: int = NETWORK_MARGIN):
    """Pad spectra on both sides to a length the network takes, at unit area.

    Parameters
    ----------
    spectra : ndarray, shape (batch, n)
        Finite input spectra.
    length_multiple : int
        The network's lengths are multiples of this (``ModelContract.length_multiple``).
    margin : int
        At least this many channels of padding on each side.

    Returns
    -------
    padded : ndarray, shape (batch, length), float32
        ``length`` the smallest multiple of ``length_multiple`` of at least ``n + 2 margin``;
        the spectra at channels ``start`` to ``start + n``, the channels either side filled
        with the mean of their 8 outermost channels
        (:func:`~hyperspy_eelspecnet.spectral.pad_outside_window`), unit area over the
        spectrum's own channels.
    start : int
        Where the spectra begin in ``padded``: always ``margin``, whatever ``n``. The network
        halves its length six times and is not exactly shift-equivariant, so a start that
        depended on ``n`` (e.g. centring) would move every channel on its grid when the window's
        loss end is cut a channel shorter, and change the restoration by 1-3 %. A cut that
        shortens ``length`` still changes it by 1-2 % (the network sees the whole input;
        ``research/loss_end_cut.py``).
    """
    spectra = np.asarray(spectra, dtype=float)
    count, n = spectra.shape
    length = int(np.ceil((n + 2 * margin) / length_multiple)) * length_multiple
    start = margin
    padded = np.zeros((count, length))
    padded[:, start: start + n] = spectra / spectra.sum(axis=1, keepdims=True)
    padded, _ = pad_outside_window(padded, np.full(count, start), np.full(count, start + n))
    return padded.astype(np.float32), start


def from_network_output(restored, spectra, start: int):
    """Cut the padding off restored spectra and give them the input's counts.

    Parameters
    ----------
    restored : ndarray, shape (batch, length)
        Network output for :func:`to_network_input`'s spectra.
    spectra : ndarray, shape (batch, n)
        The input spectra.
    start : int
        Where the spectra begin in ``restored``.

    Returns
    -------
    ndarray, shape (batch, n), float64
        Restored spectra summing to the input's counts.
    """
    spectra = np.asarray(spectra, dtype=float)
    restored = np.asarray(restored, dtype=float)[:, start: start + spectra.shape[1]]
    return restored * (spectra.sum(axis=1, keepdims=True) / restored.sum(axis=1, keepdims=True))


def own_zlp_psf(spectra, threshold: float = OWN_ZLP_PSF_THRESHOLD) -> np.ndarray:
    """Each spectrum's own zero-loss peak, modelled for use as its Richardson-Lucy PSF.

    The energy-gain side of the spectrum (channels up to the maximum) holds the ZLP and nothing
    else, while its loss side also holds the loss features that RL must restore, not divide
    out. So the PSF is the gain side as recorded and, on the loss side, its mirror image about
    the maximum channel; it ends on each side before the first channel below ``threshold``
    times the maximum, negative values are clipped to zero, and it is scaled to unit sum. It
    has the input's length, so its maximum sits where the input's ZLP does. A ZLP whose loss
    tail is heavier than its gain tail is under-estimated there (RL then leaves some tail).

    Parameters
    ----------
    spectra : array_like, shape (..., n)
    threshold : float
        Fraction of the maximum that ends the ZLP (default 1e-3).

    Returns
    -------
    ndarray, shape (..., n)
    """
    spectra = np.asarray(spectra, dtype=float)
    n = spectra.shape[-1]
    channels = np.arange(n)
    peak_index = np.argmax(spectra, axis=-1)[..., None]
    mirrored_source = np.where(channels > peak_index, 2 * peak_index - channels, channels)
    profile = np.where(
        mirrored_source >= 0, np.take_along_axis(spectra, np.clip(mirrored_source, 0, n - 1), -1), 0.0
    )
    level = threshold * np.take_along_axis(spectra, peak_index, -1)
    below = profile < level
    first_left = np.where(below & (channels < peak_index), channels, -1).max(axis=-1, keepdims=True)
    first_right = np.where(below & (channels > peak_index), channels, n).min(axis=-1, keepdims=True)
    inside = (channels > first_left) & (channels < first_right)
    psf = np.where(inside, np.clip(profile, 0.0, None), 0.0)
    return psf / psf.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- the engine


def restore_block(spectra, engine, psf=None, rl_iterations: int = 0):
    """Restore a block of validated spectra, and deconvolve it with Richardson-Lucy.

    The one function behind ``eelspecnet_deconvolve``: HyperSpy maps it over a signal's
    navigation chunks (eager, lazy or on a ``dask.distributed`` cluster alike).

    Parameters
    ----------
    spectra : array_like, shape (..., n)
        Spectra that passed :meth:`EELSpecNetDeconvolution.validate`.
    engine : EELSpecNetDeconvolution
    psf : array_like, shape (n_psf,) or (..., n_psf), optional
        Richardson-Lucy's PSF, one for all spectra or one per spectrum (unit sum, maximum at
        zero energy shift); ``None`` uses each spectrum's own ZLP (:func:`own_zlp_psf`).
    rl_iterations : int
        Richardson-Lucy iterations; 0 skips it.

    Returns
    -------
    restored : ndarray, shape (..., n), float64
    richardson_lucy : ndarray, shape (..., n), float64, or None when ``rl_iterations`` is 0
    """
    spectra = np.asarray(spectra, dtype=float)
    restored = engine.run(spectra)
    return restored, (deconvolve_block(spectra, psf, rl_iterations) if rl_iterations else None)


def deconvolve_block(spectra, psf=None, rl_iterations: int = 50):
    """Richardson-Lucy deconvolution of a block of spectra, the comparison beside the network.

    It does not depend on the network's result: the HyperSpy glue maps it over the signal apart
    from the restoration, so that computing one lazy result does not compute the other.

    Parameters
    ----------
    spectra : array_like, shape (..., n)
    psf : array_like, shape (n_psf,) or (..., n_psf), optional
        As for :func:`restore_block`; ``None`` uses each spectrum's own ZLP (:func:`own_zlp_psf`).
    rl_iterations : int

    Returns
    -------
    ndarray, shape (..., n), float64
    """
    spectra = np.asarray(spectra, dtype=float)
    kernel = own_zlp_psf(spectra) if psf is None else np.asarray(psf, dtype=float)
    # Dask runs one block per thread: FFTs on every core in each would oversubscribe them.
    return richardson_lucy(spectra, kernel, rl_iterations, workers=1)


def _checked_batch_size(batch_size):
    """``batch_size`` as an int (None stays None); ``ValueError`` unless a positive integer."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


_MODEL_CACHE: dict = {}
_MODEL_CACHE_LOCK = threading.Lock()


def _load_cached(path: Path):
    """(model, contract, sha256) for a model file, loaded once per process and file version."""
    stat = path.stat() if path.exists() else None
    key = (str(path), stat.st_mtime_ns if stat else None, stat.st_size if stat else None)
    with _MODEL_CACHE_LOCK:
        if key not in _MODEL_CACHE:
            model, contract = load_model(path)  # raises FileNotFoundError / ValueError
            _MODEL_CACHE[key] = (model, contract, file_sha256(path))
        return _MODEL_CACHE[key]


class EELSpecNetDeconvolution:
    """A loaded EELSpecNet model that restores spectra given as NumPy arrays.

    Parameters
    ----------
    model : None, str, Path or (keras.Model, ModelContract)
        ``None`` for the bundled default model, the path of a ``.keras`` file written by
        ``eelspecnet train`` (with its ``.json`` contract beside it) or of the folder written by
        ``eelspecnet train`` or ``eelspecnet finetune --out DIR``, or an already loaded model and
        its contract.
    batch_size : int, optional
        Spectra per network call; :func:`default_batch_size` (GPU or CPU) when None.

    Raises
    ------
    FileNotFoundError
        The model file or its contract is missing (a folder without ``eelspecnet.keras``).
    ValueError
        The file is not a Keras model, or it disagrees with its contract; a batch size that
        is not a positive integer.

    Notes
    -----
    Models given by path are loaded once per process and cached by path. The engine pickles
    as its path only; an unpickled engine (e.g. in a dask worker) loads the model on first use.
    An engine built from an in-memory model pickles the whole model (Keras 3 supports it), so
    prefer paths with ``dask.distributed``.

    Examples
    --------
    Two spectra of 512 channels, energy loss increasing, a Gaussian ZLP on channel 100:

    >>> import numpy as np
    >>> from hyperspy_eelspecnet import EELSpecNetDeconvolution
    >>> engine = EELSpecNetDeconvolution()  # the bundled model
    >>> channels = np.arange(512)
    >>> spectra = 1e6 * np.exp(-0.5 * ((channels - 100) / 5.0) ** 2)[None].repeat(2, axis=0)
    >>> restored = engine.restore(spectra)
    >>> restored.shape
    (2, 512)
    """

    def __init__(self, model=None, batch_size: int | None = None):
        self.batch_size = _checked_batch_size(batch_size)
        if model is None or isinstance(model, (str, os.PathLike)):
            self._path = model_file(model).absolute()
            self._loaded = _load_cached(self._path)
        elif isinstance(model, tuple) and len(model) == 2:
            keras_model, contract = model
            self._path = None
            self._loaded = (keras_model, contract, None)
        else:
            raise TypeError(
                "model must be None (bundled default), the path of a '.keras' file, or a "
                f"(keras.Model, ModelContract) pair as returned by load_model; got {type(model).__name__}."
            )

    def with_batch_size(self, batch_size: int) -> "EELSpecNetDeconvolution":
        """The same model, run ``batch_size`` spectra per network call."""
        engine = copy.copy(self)
        engine.batch_size = _checked_batch_size(batch_size)
        return engine

    # Pickled by path and SHA-256: dask tasks carry a few bytes, workers load the model once and
    # refuse a file that is not the one the restoration started with. The bundled model is
    # found wherever the package is installed on the worker.
    def __getstate__(self):
        state = {"path": None if self._path is None else str(self._path), "batch_size": self.batch_size}
        if self._path is None:
            state["loaded"] = self._loaded
        else:
            state["sha256"] = self.sha256
            state["bundled"] = self._path == model_file(None).absolute()
        return state

    def __setstate__(self, state):
        bundled = state.get("bundled", False)
        self._path = model_file(None).absolute() if bundled else (
            Path(state["path"]) if state["path"] is not None else None
        )
        self._loaded = state.get("loaded")
        self.batch_size = state.get("batch_size")
        self._expected_sha256 = state.get("sha256")

    def __dask_tokenize__(self):
        if self._path is not None:
            return ("EELSpecNetDeconvolution", str(self._path), self.sha256, self.batch_size)
        return ("EELSpecNetDeconvolution", id(self._loaded[0]), self.batch_size)

    def __repr__(self):
        contract = self.contract
        return f"<EELSpecNetDeconvolution {contract.name} v{contract.version} ({self._path or 'in memory'})>"

    def _ensure_loaded(self):
        if self._loaded is None:
            loaded = _load_cached(self._path)
            expected = getattr(self, "_expected_sha256", None)
            if expected is not None and loaded[2] != expected:
                raise ValueError(
                    f"The model file {self._path} here (SHA-256 {loaded[2][:16]}...) is not the one the "
                    f"restoration was started with ({expected[:16]}...): it changed, or this worker sees "
                    "another file at that path. Give every worker the same model file."
                )
            self._loaded = loaded
        return self._loaded

    @property
    def model(self):
        """The Keras model (spectra in, restored spectra out)."""
        return self._ensure_loaded()[0]

    @property
    def contract(self):
        """The model's :class:`~hyperspy_eelspecnet.model.ModelContract`."""
        return self._ensure_loaded()[1]

    @property
    def path(self):
        """Path of the model file, or None for an in-memory model."""
        return self._path

    @property
    def sha256(self):
        """SHA-256 of the model file, or None for an in-memory model."""
        return self._ensure_loaded()[2]

    def _check_model_kind(self) -> None:
        """Refuse a model of the fixed-window kind (hyperspy-eelspecnet before 0.5.0)."""
        contract = self.contract
        if not contract.length_multiple:
            raise ValueError(
                f"The model {contract.name!r} {contract.version} ({self._path or 'in memory'}) restores "
                f"only a {contract.n_channels}-channel window with the ZLP on channel {contract.zlp_channel}: "
                "it was made by hyperspy-eelspecnet before 0.5.0, whose restoration resampled every spectrum "
                "into that window. Fine-tune it for this version ('eelspecnet finetune VACUUM --model "
                "THIS_MODEL --out DIR'), or use the bundled model."
            )

    def validate(self, diagnostics, force: bool = False) -> None:
        """Refuse what the network cannot restore, and warn where it leaves the trained ranges.

        Parameters
        ----------
        diagnostics : ndarray of :data:`DIAGNOSTICS`
            :func:`diagnose_spectra` of the spectra.
        force : bool
            Restore ZLPs narrower than the model's restored ZLP anyway (:func:`check_zlp_width`).

        Raises
        ------
        ValueError
            See :func:`check_spectra` and :func:`check_zlp_width`; a model of the fixed-window
            kind of hyperspy-eelspecnet before 0.5.0.

        Warns
        -----
        UserWarning
            One per text of :func:`contract_warnings`.
        """
        self._check_model_kind()
        contract = self.contract
        check_spectra(diagnostics)
        check_zlp_width(diagnostics, contract, force)
        for text in contract_warnings(diagnostics, contract):
            warnings.warn(text, UserWarning, stacklevel=3)

    def restore(self, spectra, force: bool = False):
        """Restore spectra given as a NumPy array.

        Parameters
        ----------
        spectra : array_like, shape (..., n)
            Near-zero-loss spectra (counts), channels in order of increasing energy loss (the
            energy-gain side first); integers are converted to float, complex values are
            refused.
        force : bool
            Restore ZLPs narrower than the model's restored ZLP anyway.

        Returns
        -------
        ndarray, shape (..., n), float64
            Restored spectra on the input's channels, every one of them, with the input's
            counts.

        Raises
        ------
        ValueError, TypeError
            See :meth:`validate`; complex input.
        """
        self.validate(diagnose_spectra(spectra), force)
        return self.run(spectra)

    def _matched(self, flat):
        """The spectra as the network takes them: matched to a Gaussian PSF for a model fine-tuned
        so (its contract holds the vacuum PSF), as recorded otherwise."""
        if self.contract.vacuum_psf is None:
            return flat
        return match_to_gaussian(flat, self.contract.vacuum_psf)

    def run(self, spectra) -> np.ndarray:
        """The network's restoration of spectra that passed :meth:`validate` (no checks).

        This is what runs on every block of :func:`restore_block`.
        """
        self._check_model_kind()
        spectra = np.asarray(spectra, dtype=float)
        shape = spectra.shape
        flat = spectra.reshape(-1, shape[-1])
        if flat.shape[0] == 0:
            return np.empty(shape)
        network_input = self._matched(flat)
        padded, start = to_network_input(network_input, self.contract.length_multiple)
        batch_size = default_batch_size() if self.batch_size is None else self.batch_size
        # Activations grow with the length: keep a batch's memory that of a 2048-channel one.
        batch_size = max(1, batch_size * 2048 // max(padded.shape[1], 2048))
        restored = predict_spectra(self.model, padded, batch_size=batch_size)
        return from_network_output(restored, flat, start).reshape(shape)
