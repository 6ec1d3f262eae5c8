"""Restore near-zero-loss EELS spectra with EELSpecNet: plain NumPy, no HyperSpy.

The data path, one named function per step, every step vectorised over a batch of spectra
``(batch, n)``:

1. :func:`diagnose_spectra` measures each spectrum (non-finite values, area, zero-loss peak
   position and width, channels either side of the ZLP) and :func:`check_spectra` refuses
   what the network cannot restore, naming the spectra and the fix.
2. :func:`locate_zlp` finds the zero-loss peak at sub-channel precision: the maximum, refined
   by the vertex of the parabola through it and its two neighbours.
3. :func:`to_model_window` shifts each spectrum by **linear interpolation** so its ZLP sits on
   the model's ``zlp_channel`` and crops/pads it to the model's ``n_channels``. Linear
   interpolation is a convex combination of two neighbours, so it never creates negative
   intensities or ringing (a Fourier shift would); its cost is a slight smoothing, none for a
   whole-channel shift and at most a ``[1/4, 1/2, 1/4]`` kernel for a half-channel shift once
   the restored spectrum is shifted back. Window channels the data do not cover are padded
   with the mean of the 8 nearest measured channels, exactly as the training generator pads
   short acquisition windows (:func:`hyperspy_eelspecnet.spectral.pad_outside_window`). Each spectrum is then scaled to unit
   area over its measured channels, as in training.
4. The network restores the window in batches (:func:`hyperspy_eelspecnet.model.predict_spectra`).
5. :func:`from_model_window` undoes it all: it shifts the restored window back onto the
   input's channels and scales it so that its area over the input channels the window covers
   equals the input's area over those channels (counts are conserved). Input channels the
   window cannot cover are NaN: nothing is invented there.

:class:`EELSpecNetDeconvolution` holds a loaded model. Models are loaded once per process and
cached by path, and an engine pickles as its path only, so dask ships a few bytes per task and
each worker loads the model on first use.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from .model import default_model_path, file_sha256, load_model, predict_spectra
from .model.backend import import_tensorflow
from .model.contract import MODEL_EDGE_CHANNELS
from .richardson_lucy import richardson_lucy
from .spectral import (
    MIN_CHANNELS_ABOVE_ZLP, MIN_CHANNELS_BELOW_ZLP, fwhm, linear_resample, locate_zlp, pad_outside_window,
)

__all__ = [
    "EELSpecNetDeconvolution",
    "restore_block",
    "DEFAULT_BATCH_SIZE",
    "GPU_BATCH_SIZE",
    "default_batch_size",
    "DIAGNOSTICS",
    "diagnose_spectra",
    "check_spectra",
    "contract_warnings",
    "zlp_fwhm",
    "to_model_window",
    "from_model_window",
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


def zlp_fwhm(spectra) -> np.ndarray:
    """Full width at half maximum (channels) of the peak at each spectrum's maximum.

    The half-maximum crossings either side of the maximum are interpolated linearly (the
    evaluation's :func:`~hyperspy_eelspecnet.evaluation.metrics.fwhm`, for any leading shape).
    NaN where the spectrum does not fall below half its maximum on one side (no complete peak).

    Parameters
    ----------
    spectra : array_like, shape (..., n)

    Returns
    -------
    ndarray, shape (...)
    """
    spectra = np.asarray(spectra, dtype=float)
    return fwhm(spectra.reshape(-1, spectra.shape[-1])).reshape(spectra.shape[:-1])


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
    diagnostics["zlp_fwhm"] = zlp_fwhm(clean)
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
        or :data:`~hyperspy_eelspecnet.spectral.MIN_CHANNELS_ABOVE_ZLP` above the ZLP.
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
    if np.any(no_zlp):
        raise ValueError(
            f"No zero-loss peak found in {_describe_indices(no_zlp)}: the maximum does not fall "
            "to half its height on both sides within the spectrum. EELSpecNet restores "
            "near-zero-loss (low-loss) spectra that contain the whole ZLP; core-loss spectra or "
            "windows that cut the ZLP cannot be restored."
        )
    short = (d["channels_below"] < MIN_CHANNELS_BELOW_ZLP) | (d["channels_above"] < MIN_CHANNELS_ABOVE_ZLP)
    if np.any(short):
        before = float(np.min(d["channels_below"]))
        after = float(np.min(d["channels_above"]))
        raise ValueError(
            f"Too few channels around the zero-loss peak in {_describe_indices(short)} (as few "
            f"as {before:.0f} below and {after:.0f} above it). EELSpecNet needs at least "
            f"{MIN_CHANNELS_BELOW_ZLP} channels below and {MIN_CHANNELS_ABOVE_ZLP} above the ZLP "
            "maximum; acquire or crop a wider energy window around 0 eV."
        )


def contract_warnings(diagnostics, contract, dispersion=None) -> list[str]:
    """Texts of the warnings for input outside what the model was trained on.

    Parameters
    ----------
    diagnostics : ndarray of :data:`DIAGNOSTICS`
        Output of :func:`diagnose_spectra` for input that passed :func:`check_spectra`.
    contract : ModelContract
    dispersion : float, optional
        eV per channel of the input; skipped when None.

    Returns
    -------
    list of str
        One text per problem: ZLP FWHM outside ``contract.psf_fwhm_channels``; dispersion more
        than a factor 2 from ``contract.dispersion``; input channels outside the model window
        (set to NaN in the restored spectra).
    """
    texts = []
    fwhm = diagnostics["zlp_fwhm"].ravel()
    low, high = contract.psf_fwhm_channels
    outside = (fwhm < low) | (fwhm > high)
    if np.any(outside):
        texts.append(
            f"The zero-loss peak FWHM of {int(outside.sum())} of {fwhm.size} spectra lies outside "
            f"the {low:g}-{high:g} channels the model {contract.name!r} was trained on (measured "
            f"{np.min(fwhm):.1f}-{np.max(fwhm):.1f} channels, median {np.median(fwhm):.1f}). "
            "Results there are extrapolation: rebin the energy axis (s.rebin) so the ZLP spans "
            "the trained range, or train a model on your own PSF with 'eelspecnet train'."
        )
    if dispersion is not None and contract.dispersion > 0:
        ratio = abs(float(dispersion)) / contract.dispersion
        if not 0.5 <= ratio <= 2.0:
            texts.append(
                f"The dispersion {abs(float(dispersion)):g} eV/channel differs by a factor "
                f"{ratio:.2g} from the {contract.dispersion:g} eV/channel the model "
                f"{contract.name!r} was trained at; its widths and ranges are in channels, so it "
                "expects features of other widths in eV. Rebin the energy axis (s.rebin) towards "
                f"{contract.dispersion:g} eV/channel, or train a model at your dispersion with "
                "'eelspecnet train'."
            )
    # Whole input channels beyond the window (the tolerance absorbs round-off in the position).
    edge = contract.edge_channels
    reach_below = contract.zlp_channel - edge
    reach_above = contract.n_channels - 1 - contract.zlp_channel - edge
    below = int(max(np.ceil(np.max(diagnostics["channels_below"] - reach_below) - 1e-6), 0))
    above = int(max(np.ceil(np.max(diagnostics["channels_above"] - reach_above) - 1e-6), 0))
    if below or above:
        where = " and ".join(
            f"{count} channels {side}" for count, side in ((below, "below"), (above, "above")) if count
        )
        texts.append(
            f"Up to {where} the zero-loss peak lie outside the model's {contract.n_channels}-channel window "
            f"(usable: {reach_below} channels below the ZLP, {reach_above} above, the outermost "
            f"{edge} at each end being unreliable); the restored spectra are "
            "NaN there (nothing is invented). Crop the input (s.isig[...]) to remove them."
        )
    return texts


# --------------------------------------------------------------------------- window mapping


def to_model_window(spectra, zlp_position, n_channels: int, zlp_channel: int):
    """Shift, crop/pad and normalise spectra into the model's window.

    Parameters
    ----------
    spectra : ndarray, shape (batch, n)
        Finite input spectra.
    zlp_position : ndarray, shape (batch,)
        ZLP position in input channels (sub-channel).
    n_channels, zlp_channel : int
        The model's window length and ZLP channel (:class:`ModelContract`).

    Returns
    -------
    window : ndarray, shape (batch, n_channels), float32
        Spectra with the ZLP at ``zlp_channel``, padded beyond the data with the mean of the 8
        nearest measured channels, unit area over the measured channels.
    measured : ndarray of bool, shape (batch, n_channels)
        Window channels the data cover.
    """
    spectra = np.asarray(spectra, dtype=float)
    window_channels = np.arange(n_channels)[None, :]
    source = window_channels - zlp_channel + np.asarray(zlp_position, dtype=float)[:, None]
    window, measured = linear_resample(spectra, source)
    start = np.argmax(measured, axis=1)
    stop = n_channels - np.argmax(measured[:, ::-1], axis=1)
    window, measured = pad_outside_window(window, start, stop)
    area = np.where(measured, window, 0.0).sum(axis=1, keepdims=True)
    return (window / area).astype(np.float32), measured


def from_model_window(restored_window, spectra, zlp_position, zlp_channel: int, edge_channels: int = MODEL_EDGE_CHANNELS):
    """Map restored windows back onto the input channels, conserving counts.

    Parameters
    ----------
    restored_window : ndarray, shape (batch, n_channels)
        Network output for :func:`to_model_window`'s windows.
    spectra : ndarray, shape (batch, n)
        The input spectra (for the area to restore).
    zlp_position : ndarray, shape (batch,)
        ZLP positions used by :func:`to_model_window`.
    zlp_channel : int
        The model's ZLP channel.
    edge_channels : int
        Channels at each end of the window that are not returned (``ModelContract.edge_channels``).

    Returns
    -------
    ndarray, shape (batch, n), float64
        Restored spectra whose sum over the channels the window covers equals the input's sum
        over those channels; NaN on channels the window does not cover, and on those that land
        in its outermost ``edge_channels`` channels.
    """
    spectra = np.asarray(spectra, dtype=float)
    input_channels = np.arange(spectra.shape[-1])[None, :]
    target = input_channels - np.asarray(zlp_position, dtype=float)[:, None] + zlp_channel
    restored, covered = linear_resample(np.asarray(restored_window, dtype=float), target)
    n_window = np.shape(restored_window)[-1]
    covered &= (target >= edge_channels) & (target <= n_window - 1 - edge_channels)
    input_area = np.where(covered, spectra, 0.0).sum(axis=1, keepdims=True)
    restored_area = np.where(covered, restored, 0.0).sum(axis=1, keepdims=True)
    scale = np.divide(input_area, restored_area, out=np.zeros_like(input_area), where=restored_area > 0)
    return np.where(covered, restored * scale, np.nan)


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
    if not rl_iterations:
        return restored, None
    kernel = own_zlp_psf(spectra) if psf is None else np.asarray(psf, dtype=float)
    # Dask runs one block per thread: FFTs on every core in each would oversubscribe them.
    return restored, richardson_lucy(spectra, kernel, rl_iterations, workers=1)


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
        ``eelspecnet train`` (with its ``.json`` contract beside it), or an already loaded
        model and its contract.
    batch_size : int, optional
        Spectra per network call; :func:`default_batch_size` (GPU or CPU) when None.

    Raises
    ------
    FileNotFoundError
        The model file or its contract is missing.
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
    >>> engine = EELSpecNetDeconvolution()  # doctest: +SKIP
    >>> restored = engine.restore(spectra, dispersion=0.005)  # doctest: +SKIP
    """

    def __init__(self, model=None, batch_size: int | None = None):
        self.batch_size = _checked_batch_size(batch_size)
        if model is None or isinstance(model, (str, os.PathLike)):
            self._path = Path(model if model is not None else default_model_path()).expanduser().absolute()
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

    # Pickled by path: dask tasks carry a few bytes and workers load the model once.
    def __getstate__(self):
        state = {"path": None if self._path is None else str(self._path), "batch_size": self.batch_size}
        if self._path is None:
            state["loaded"] = self._loaded
        return state

    def __setstate__(self, state):
        self._path = Path(state["path"]) if state["path"] is not None else None
        self._loaded = state.get("loaded")
        self.batch_size = state.get("batch_size")

    def __dask_tokenize__(self):
        if self._path is not None:
            return ("EELSpecNetDeconvolution", str(self._path), self.sha256, self.batch_size)
        return ("EELSpecNetDeconvolution", id(self._loaded[0]), self.batch_size)

    def __repr__(self):
        contract = self.contract
        return f"<EELSpecNetDeconvolution {contract.name} v{contract.version} ({self._path or 'in memory'})>"

    def _ensure_loaded(self):
        if self._loaded is None:
            self._loaded = _load_cached(self._path)
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

    def validate(self, diagnostics, dispersion=None) -> None:
        """Refuse what the network cannot restore, and warn where it leaves the trained ranges.

        Parameters
        ----------
        diagnostics : ndarray of :data:`DIAGNOSTICS`
            :func:`diagnose_spectra` of the spectra.
        dispersion : float, optional
            eV per channel of the input; the dispersion warning is skipped when None.

        Raises
        ------
        ValueError
            See :func:`check_spectra`.

        Warns
        -----
        UserWarning
            One per text of :func:`contract_warnings`.
        """
        check_spectra(diagnostics)
        for text in contract_warnings(diagnostics, self.contract, dispersion):
            warnings.warn(text, UserWarning, stacklevel=3)

    def restore(self, spectra, dispersion=None):
        """Restore spectra given as a NumPy array.

        Parameters
        ----------
        spectra : array_like, shape (..., n)
            Near-zero-loss spectra (counts); integers are converted to float, complex values
            are refused.
        dispersion : float, optional
            eV per channel, only to warn when it is far from the model's.

        Returns
        -------
        ndarray, shape (..., n), float64
            Restored spectra on the input's channels; NaN where the model window does not reach
            (with a warning); area over the covered channels equal to the input's.

        Raises
        ------
        ValueError, TypeError
            See :func:`check_spectra`; complex input.
        """
        self.validate(diagnose_spectra(spectra), dispersion)
        return self.run(spectra)

    def run(self, spectra) -> np.ndarray:
        """The network's restoration of spectra that passed :meth:`validate` (no checks).

        This is what runs on every block of :func:`restore_block`.
        """
        spectra = np.asarray(spectra, dtype=float)
        shape = spectra.shape
        flat = spectra.reshape(-1, shape[-1])
        if flat.shape[0] == 0:
            return np.empty(shape)
        position = locate_zlp(flat)
        contract = self.contract
        window, _ = to_model_window(flat, position, contract.n_channels, contract.zlp_channel)
        batch_size = default_batch_size() if self.batch_size is None else self.batch_size
        restored_window = predict_spectra(self.model, window, batch_size=batch_size)
        restored = from_model_window(restored_window, flat, position, contract.zlp_channel, contract.edge_channels)
        return restored.reshape(shape)
