"""HyperSpy glue: the ``EELSpecNet`` signal type and the ``eelspecnet_deconvolve`` method.

The science lives in :mod:`hyperspy_eelspecnet.restoration` (NumPy) and
:mod:`hyperspy_eelspecnet.richardson_lucy`; this module validates the signal, runs them over
batches (eager) or dask blocks (lazy) and wraps the results into new signals.
"""

from __future__ import annotations

import warnings
from collections import namedtuple

import numpy as np
from exspy.signals import EELSSpectrum, LazyEELSSpectrum
from hyperspy.docstrings.signal import LAZY_OUTPUT_ARG, SHOW_PROGRESSBAR_ARG

from .. import restoration

__all__ = ["EELSpecNetSpectrum", "LazyEELSpecNetSpectrum", "EELSpecNetResult", "eelspecnet_deconvolve"]

class EELSpecNetResult(namedtuple("EELSpecNetResult", ["restored", "richardson_lucy"])):
    """Signals returned by ``eelspecnet_deconvolve``: ``restored, rl = s.eelspecnet_deconvolve()``.

    Attributes
    ----------
    restored : EELSSpectrum
        The EELSpecNet restoration.
    richardson_lucy : EELSSpectrum or None
        Richardson-Lucy deconvolution of the same input, None when ``rl_iterations=0``.
    input : EELSSpectrum or None
        The signal that was restored, kept (outside the tuple, so that two-name unpacking
        works) for :meth:`plot`.
    """

    input = None

    def __new__(cls, restored, richardson_lucy=None, input=None):
        result = super().__new__(cls, restored, richardson_lucy)
        result.input = input
        return result

    def plot(self, **kwargs):
        """Compare input, restored and Richardson-Lucy spectra.

        A single spectrum gives a static figure (linear and log intensity,
        :func:`hyperspy_eelspecnet.plotting.plot_comparison`); a spectrum image or line scan
        gives HyperSpy's interactive plot of the input with the restored and Richardson-Lucy
        spectra of the navigator's pixel overlaid
        (:func:`hyperspy_eelspecnet.plotting.plot_interactive_comparison`).

        Parameters
        ----------
        **kwargs
            Passed to the function above (e.g. ``energy_range`` for a spectrum, ``norm="log"``
            for a spectrum image).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .. import plotting

        if self.input is None:
            raise ValueError("This result does not know its input; use hyperspy_eelspecnet.plotting directly.")
        if self.input.axes_manager.navigation_dimension == 0:
            return plotting.plot_comparison(self, **kwargs)
        return plotting.plot_interactive_comparison(self.input, self.restored, self.richardson_lucy, **kwargs)


#: eV per unit of the energy axis, for the dispersion check; other units skip it.
_EV_PER_UNIT = {"eV": 1.0, "meV": 1e-3, "keV": 1e3}

_OWN_ZLP_PSF = (
    "each spectrum's own zero-loss peak: its energy-gain side up to the maximum, mirrored about "
    "the maximum onto the loss side, out to (not including) the first channel below "
    f"{restoration.OWN_ZLP_PSF_THRESHOLD:g} of the maximum on each side, negative values "
    "clipped, zero elsewhere, unit sum"
)


def eelspecnet_deconvolve(
    self,
    model=None,
    rl_iterations=50,
    psf=None,
    batch_size=None,
    show_progressbar=None,
    lazy_output=None,
):
    """Restore near-zero-loss spectra with EELSpecNet, and deconvolve them with Richardson-Lucy.

    Each spectrum's zero-loss peak (ZLP) is located at sub-channel precision, the spectrum is
    shifted (linear interpolation) and cropped/padded into the model's window with the ZLP on
    the model's ZLP channel, normalised to unit area, restored by the network in batches, then
    shifted back onto the input's channels and scaled so that its counts over the channels the
    window covers equal the input's. Input channels beyond the model window are NaN (with a
    warning). See :mod:`hyperspy_eelspecnet.restoration` for each step.

    Parameters
    ----------
    model : None, str, Path, (keras.Model, ModelContract) or EELSpecNetDeconvolution
        ``None`` for the bundled default model, or the path of a ``.keras`` file written by
        ``eelspecnet train`` (its ``.json`` contract beside it).
    rl_iterations : int
        Richardson-Lucy iterations for the comparison result; 0 skips it.
    psf : None, EELSSpectrum or array_like
        PSF for Richardson-Lucy. ``None`` uses each spectrum's own ZLP
        (:func:`~hyperspy_eelspecnet.restoration.own_zlp_psf`: its gain side, mirrored). A
        measured vacuum ZLP may be given as a signal with the same energy scale, either one
        spectrum for all pixels or one per pixel (same navigation shape), or as an array of
        shape ``(n_psf,)`` or ``data.shape[:-1] + (n_psf,)``. Every PSF is scaled to unit sum
        (counts are conserved; exspy's method leaves the scale to the user) and its maximum is
        taken as zero energy shift, as in exspy.
    batch_size : int, optional
        Spectra per network call; by default 4096 when TensorFlow sees a GPU, 256 otherwise
        (:func:`~hyperspy_eelspecnet.restoration.default_batch_size`).
    %s
    %s

    Returns
    -------
    EELSpecNetResult
        Named tuple ``(restored, richardson_lucy)`` of signals of the input's class, navigation
        shape and energy axis; ``richardson_lucy`` is None when ``rl_iterations=0``. Their
        ``metadata.Signal.EELSpecNet`` records the model (name, version, file, SHA-256), the
        pre-processing, the Richardson-Lucy iterations and the PSF source.

    Raises
    ------
    ValueError
        Signal dimension other than 1, non-uniform energy axis, NaN or infinite values, spectra
        without positive counts, no zero-loss peak, too few channels around it, a PSF of the
        wrong shape or energy scale, a model file that is not a Keras model or does not match
        its contract.
    TypeError
        Complex data.
    FileNotFoundError
        The model file or its contract is missing.

    Warns
    -----
    UserWarning
        ZLP width or dispersion outside what the model was trained on; input channels outside
        the model window (NaN in the restored signal).

    Notes
    -----
    The input is never modified. Lazy signals are processed block by block with
    :func:`dask.array.map_blocks` (navigation chunks kept, the energy axis in one chunk); the
    model is loaded once per process, also in ``dask.distributed`` workers. Before processing,
    one pass over the data measures every spectrum to validate it, so a lazy signal is read
    twice: bad input (NaNs, no ZLP, too few channels) fails before the network runs, not hours
    into it.

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> import hyperspy_eelspecnet  # doctest: +SKIP
    >>> s = hs.load("low_loss.dm4")  # doctest: +SKIP
    >>> restored, rl = s.eelspecnet_deconvolve(rl_iterations=50)  # doctest: +SKIP
    """
    _check_energy_axis(self)
    if np.issubdtype(self.data.dtype, np.complexfloating):
        raise TypeError(restoration._COMPLEX_MESSAGE)
    if isinstance(rl_iterations, bool) or not isinstance(rl_iterations, (int, np.integer)) or rl_iterations < 0:
        raise ValueError(f"rl_iterations must be a non-negative integer (0 skips Richardson-Lucy), got {rl_iterations!r}.")
    batch_size = restoration.default_batch_size() if batch_size is None else batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if show_progressbar is None:
        from hyperspy.api import preferences

        show_progressbar = preferences.General.show_progressbar
    lazy_output = self._lazy if lazy_output is None else bool(lazy_output)

    engine = model if isinstance(model, restoration.EELSpecNetDeconvolution) else restoration.EELSpecNetDeconvolution(model)
    psf_data, psf_source = _psf_for(self, psf) if rl_iterations else (None, None)

    diagnostics = _diagnose(self.data)
    restoration.check_spectra(diagnostics)
    axis = self.axes_manager.signal_axes[0]
    dispersion = axis.scale * _EV_PER_UNIT[axis.units] if axis.units in _EV_PER_UNIT else None
    for text in restoration.contract_warnings(diagnostics, engine.contract, dispersion):
        warnings.warn(text, UserWarning, stacklevel=2)

    out_dtype = self.data.dtype if np.issubdtype(self.data.dtype, np.floating) else np.dtype(float)
    if self._lazy or lazy_output:
        restored_data, rl_data = _run_lazy(self.data, engine, psf_data, rl_iterations, batch_size, out_dtype)
        if not lazy_output:  # both results in one pass over the input, not one pass each
            restored_data, rl_data = _compute_together(restored_data, rl_data, show_progressbar)
    else:
        restored_data, rl_data = _run_eager(
            self.data, diagnostics[..., 3], engine, psf_data, rl_iterations, batch_size, out_dtype, show_progressbar
        )

    record = _record(engine, diagnostics, rl_iterations, psf_source, self.data.dtype)
    restored = _result_signal(self, restored_data, lazy_output, show_progressbar)
    restored.metadata.General.title = (
        f"{self.metadata.General.title} after EELSpecNet restoration "
        f"({engine.contract.name} v{engine.contract.version})"
    )
    restored.metadata.set_item("Signal.EELSpecNet", {**record, "result": "EELSpecNet restoration"})
    rl = None
    if rl_iterations:
        rl = _result_signal(self, rl_data, lazy_output, show_progressbar)
        rl.metadata.General.title = (
            f"{self.metadata.General.title} after Richardson-Lucy deconvolution {rl_iterations} iterations"
        )
        rl.metadata.set_item("Signal.EELSpecNet", {**record, "result": "Richardson-Lucy deconvolution"})
    return EELSpecNetResult(restored, rl, input=self)


eelspecnet_deconvolve.__doc__ %= (SHOW_PROGRESSBAR_ARG, LAZY_OUTPUT_ARG)


# --------------------------------------------------------------------------- validation


def _check_energy_axis(signal):
    if signal.axes_manager.signal_dimension != 1:
        raise ValueError(
            f"eelspecnet_deconvolve needs spectra (signal dimension 1); this signal has signal "
            f"dimension {signal.axes_manager.signal_dimension}. Make the energy axis the only "
            "signal axis, e.g. s.as_signal1D(energy_axis_index)."
        )
    if not signal.axes_manager.signal_axes[0].is_uniform:
        raise ValueError(
            "eelspecnet_deconvolve needs a uniform energy axis (constant eV per channel); this "
            "one is non-uniform. Interpolate onto a uniform axis first, e.g. with "
            "s.interpolate_on_axis(hs.axes.UniformDataAxis(...), 0)."
        )


def _diagnose(data):
    """:func:`restoration.diagnose_spectra` of a NumPy or dask array (one pass, computed)."""
    if isinstance(data, np.ndarray):
        return restoration.diagnose_spectra(data)
    import dask.array as da

    data = data.rechunk({data.ndim - 1: -1})
    n_fields = len(restoration.DIAGNOSTIC_FIELDS)
    return da.map_blocks(
        restoration.diagnose_spectra, data, chunks=data.chunks[:-1] + ((n_fields,),), dtype=float
    ).compute()


def _psf_for(signal, psf):
    """(psf array or None, source text) for Richardson-Lucy; arrays normalised to unit sum."""
    if psf is None:
        return None, _OWN_ZLP_PSF
    nav_shape = signal.data.shape[:-1]
    if hasattr(psf, "axes_manager"):
        if psf.axes_manager.signal_dimension != 1:
            raise ValueError(
                f"The PSF signal has signal dimension {psf.axes_manager.signal_dimension}; give a "
                "spectrum (a measured vacuum zero-loss peak)."
            )
        psf_scale = psf.axes_manager.signal_axes[0].scale
        scale = signal.axes_manager.signal_axes[0].scale
        if not np.isclose(psf_scale, scale, rtol=1e-6, atol=0):
            raise ValueError(
                f"The PSF has {psf_scale:g} per channel but the signal {scale:g}; rebin or "
                "interpolate the PSF onto the signal's energy scale."
            )
        source = f"signal {psf.metadata.General.title!r}"
        data = psf.data
    else:
        source = "array"
        data = psf
    if not hasattr(data, "dask"):
        data = np.asarray(data)
    if np.issubdtype(data.dtype, np.complexfloating):
        raise TypeError("The PSF is complex; give a real, non-negative measured zero-loss peak.")
    if data.ndim != 1 and data.shape[:-1] != nav_shape:
        raise ValueError(
            f"The PSF has shape {data.shape} (navigation {data.shape[:-1]}, {data.shape[-1]} "
            f"channels) but the signal's navigation shape is {nav_shape}: give one PSF for all "
            f"spectra, shape (n_psf,), or one per spectrum, shape {nav_shape + ('n_psf',)}."
        )
    if isinstance(data, np.ndarray):
        data = data.astype(float)
        sums = data.sum(axis=-1, keepdims=True)
        if not np.all(np.isfinite(data)) or np.any(sums <= 0):
            raise ValueError("The PSF has NaN/inf values or no positive counts; give a measured zero-loss peak.")
        return data / sums, source
    data = data.astype(float)
    return data / data.sum(axis=-1, keepdims=True), source


# --------------------------------------------------------------------------- processing


def _run_eager(data, zlp_position, engine, psf, rl_iterations, batch_size, out_dtype, show_progressbar):
    """Restore (and deconvolve) ``data`` in batches of ``batch_size`` spectra."""
    from hyperspy.external.progressbar import progressbar

    from ..richardson_lucy import richardson_lucy

    n = data.shape[-1]
    flat = data.reshape(-1, n)
    positions = np.asarray(zlp_position).reshape(-1)
    psf = None if psf is None else np.asarray(psf)
    per_spectrum_psf = psf is not None and psf.ndim > 1
    if per_spectrum_psf:
        psf = psf.reshape(-1, psf.shape[-1])
    restored = np.empty(flat.shape, out_dtype)
    rl = np.empty(flat.shape, out_dtype) if rl_iterations else None
    starts = range(0, flat.shape[0], batch_size)
    for start in progressbar(starts, disable=not show_progressbar, total=len(starts), leave=True):
        batch = slice(start, start + batch_size)
        spectra = flat[batch].astype(float)
        restored[batch] = engine.restore_checked(spectra, positions[batch], batch_size)
        if rl_iterations:
            if psf is None:
                kernel = restoration.own_zlp_psf(spectra)
            else:
                kernel = psf[batch] if per_spectrum_psf else psf
            rl[batch] = richardson_lucy(spectra, kernel, rl_iterations)
    shape = data.shape
    return restored.reshape(shape), None if rl is None else rl.reshape(shape)


def _restore_block(block, engine, batch_size, out_dtype):
    return engine.restore_checked(block, None, batch_size).astype(out_dtype)


def _richardson_lucy_block(block, psf_block=None, iterations=50, out_dtype=float):
    from ..richardson_lucy import richardson_lucy

    block = np.asarray(block, dtype=float)
    kernel = restoration.own_zlp_psf(block) if psf_block is None else psf_block
    # Dask already runs one block per thread: FFTs on every core in each would oversubscribe.
    return richardson_lucy(block, kernel, iterations, workers=1).astype(out_dtype)


def _run_lazy(data, engine, psf, rl_iterations, batch_size, out_dtype):
    """Dask arrays of the restored (and deconvolved) spectra, block by navigation chunk."""
    import dask.array as da

    signal_axis = data.ndim - 1
    if isinstance(data, np.ndarray):
        data = da.from_array(data, chunks=("auto",) * signal_axis + (-1,))
    data = data.rechunk({signal_axis: -1})
    # The engine pickles as its model path: each task carries a few bytes, each worker
    # loads the model once.
    restored = da.map_blocks(
        _restore_block, data, engine=engine, batch_size=batch_size, out_dtype=out_dtype,
        dtype=out_dtype, meta=np.array((), out_dtype),
    )
    if not rl_iterations:
        return restored, None
    kwargs = {"iterations": rl_iterations, "out_dtype": out_dtype, "dtype": out_dtype, "meta": np.array((), out_dtype)}
    if psf is None or psf.ndim == 1:
        rl = da.map_blocks(_richardson_lucy_block, data, psf_block=psf, **kwargs)
    else:
        psf = da.asarray(psf).rechunk(data.chunks[:-1] + (-1,))
        rl = da.map_blocks(_richardson_lucy_block, data, psf, chunks=data.chunks, **kwargs)
    return restored, rl


def _compute_together(restored, rl, show_progressbar):
    """Compute the lazy restored and Richardson-Lucy arrays in one dask pass."""
    import contextlib

    import dask
    from dask.diagnostics import ProgressBar

    with ProgressBar() if show_progressbar else contextlib.nullcontext():
        return dask.compute(restored, rl)


# --------------------------------------------------------------------------- results


def _result_signal(signal, data, lazy_output, show_progressbar):
    """A copy of ``signal`` (class, axes, metadata) holding ``data``, lazy as asked."""
    out = signal._deepcopy_with_new_data(data)
    if out._lazy != (not isinstance(data, np.ndarray)):
        out._lazy = not out._lazy
        out._assign_subclass()
    if out._lazy and not lazy_output:
        out.compute(show_progressbar=show_progressbar)
    return out


def _record(engine, diagnostics, rl_iterations, psf_source, input_dtype):
    """Plain metadata saying what was done (readable back from any saved file)."""
    contract = engine.contract
    fwhm = diagnostics[..., 4]
    record = {
        "model": {
            "name": contract.name,
            "version": contract.version,
            "file": str(engine.path) if engine.path is not None else "in memory",
            "sha256": engine.sha256 or "unknown (in-memory model)",
            "n_channels": int(contract.n_channels),
            "zlp_channel": int(contract.zlp_channel),
            "dispersion": float(contract.dispersion),
        },
        "preprocessing": {
            "input_dtype": str(input_dtype),
            "zlp_location": "maximum refined by the vertex of the parabola through it and its neighbours",
            "shift": "linear interpolation (sub-channel) to put the ZLP on the model's zlp_channel, and back",
            "padding": f"mean of the {restoration.PAD_EDGE_CHANNELS} nearest measured channels",
            "normalisation": "unit area over the measured channels; restored area scaled to the input's",
            "uncovered_channels": "NaN (beyond the model window)",
            "zlp_fwhm_channels_median": float(np.median(fwhm)),
            "zlp_position_channels_median": float(np.median(diagnostics[..., 3])),
        },
        "richardson_lucy": {
            "iterations": int(rl_iterations),
            "psf_source": psf_source or "none (not computed)",
        },
    }
    return record


class EELSpecNetSpectrum(EELSSpectrum):
    """EELS spectra for EELSpecNet restoration (signal type ``EELS_EELSpecNet``).

    An :class:`exspy.signals.EELSSpectrum` in every respect; the signal type marks data meant
    for, or produced by, EELSpecNet. Every EELS signal has :meth:`eelspecnet_deconvolve` once
    ``hyperspy_eelspecnet`` is imported.
    """

    _signal_type = "EELS_EELSpecNet"
    _alias_signal_types = ["EELSpecNet"]

    eelspecnet_deconvolve = eelspecnet_deconvolve


class LazyEELSpecNetSpectrum(EELSpecNetSpectrum, LazyEELSSpectrum):
    """Lazy :class:`EELSpecNetSpectrum`."""
