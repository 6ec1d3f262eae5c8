"""HyperSpy glue: the ``EELSpecNet`` signal type and the ``eelspecnet_deconvolve`` method.

The science lives in :mod:`hyperspy_eelspecnet.restoration` (NumPy): this module validates the
signal once, maps the restoration and Richardson-Lucy
(:func:`~hyperspy_eelspecnet.restoration.deconvolve_block`) over its navigation chunks with
dask (eager, lazy and distributed signals alike), wraps the results into new signals and
records what was done in their metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import warnings
from collections import namedtuple

import numpy as np
from exspy.signals import EELSSpectrum, LazyEELSSpectrum
from hyperspy.docstrings.signal import LAZY_OUTPUT_ARG, SHOW_PROGRESSBAR_ARG

from .. import restoration
from ..io import DISPERSION_TOLERANCE, energies_in_ev
from ..spectral import PAD_EDGE_CHANNELS, fwhm
from ..vacuum import LOSS_FEATURE_RISE_LIMIT, loss_feature_rise, prepare_vacuum_psfs

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
    force=False,
    show_progressbar=None,
    lazy_output=None,
):
    """Restore near-zero-loss spectra with EELSpecNet, and deconvolve them with Richardson-Lucy.

    Each spectrum is padded on both sides (the mean of its outermost channels) to a length the
    network takes, restored by the network over its own channels, whatever their number and
    wherever its zero-loss peak (ZLP) sits, cut back to them and scaled to the input's counts.
    Nothing is shifted or resampled, and every channel is restored. See
    :mod:`hyperspy_eelspecnet.restoration` for each step.

    Parameters
    ----------
    model : None, str, Path, (keras.Model, ModelContract) or EELSpecNetDeconvolution
        ``None`` for the bundled default model, the path of a ``.keras`` file written by
        ``eelspecnet train`` (its ``.json`` contract beside it), or the folder written by
        ``eelspecnet train`` or ``eelspecnet finetune --out DIR``.
    rl_iterations : int
        Richardson-Lucy iterations for the comparison result; 0 skips it.
    psf : None, EELSSpectrum or array_like
        PSF for Richardson-Lucy, and for nothing else (a fine-tuned model carries its own vacuum
        PSF in its contract): with ``rl_iterations=0`` it is ignored, with a warning. ``None``
        uses each spectrum's own ZLP
        (:func:`~hyperspy_eelspecnet.restoration.own_zlp_psf`: its gain side, mirrored). A
        measured vacuum ZLP may be given as a signal with the same energy scale (converted
        between units such as meV and eV), either one
        spectrum for all pixels or one per pixel (same navigation shape), or as an array of
        shape ``(n_psf,)`` or ``data.shape[:-1] + (n_psf,)``; several vacuum spectra (a signal
        or array of another navigation shape) are averaged after centring. It is prepared as for
        ``eelspecnet finetune`` (:func:`~hyperspy_eelspecnet.vacuum.prepare_vacuum_psfs`): a
        ZLP cut by the window or NaN values are refused, a negative dark offset is removed, the
        located maximum (sub-channel) is zero energy shift, and the PSF has unit sum (counts
        are conserved); a PSF with loss features is refused unless ``force=True``. The PSF is read into memory
        at the call, a lazy one too (one per pixel: as much memory as the signal in float64).
    batch_size : int, optional
        Spectra per network call; by default 4096 when TensorFlow sees a GPU, 256 otherwise
        (:func:`~hyperspy_eelspecnet.restoration.default_batch_size`).
    force : bool
        Restore anyway where a check refuses input that looks wrong but may not be (each then
        only warned about): a ZLP already narrower than the model's restored ZLP (the
        restoration would widen it); a signal restored already (its metadata records an
        EELSpecNet restoration); on an energy axis in eV, meV or keV, a maximum taken for the
        ZLP more than 5 eV from 0 eV or a window without 0 eV (a plasmon or core-loss window, or
        an uncalibrated axis); a model fine-tuned on a vacuum recorded at another dispersion;
        a PSF with loss features (a specimen spectrum, not a vacuum reference).
    %s
    %s

    Returns
    -------
    EELSpecNetResult
        Named tuple ``(restored, richardson_lucy)`` of signals of the input's class, navigation
        shape and energy axis; ``richardson_lucy`` is None when ``rl_iterations=0``. Their
        ``metadata.Signal.EELSpecNet`` records the model (name, version, file, SHA-256), the
        pre-processing (with a fine-tuned model's matching to a Gaussian), the Richardson-Lucy
        iterations and the PSF source.

    Raises
    ------
    ValueError
        Signal dimension other than 1, non-uniform or decreasing energy axis, NaN or infinite
        values, spectra without positive counts, no zero-loss peak, too few channels around it
        (32 below, 64 above) -- where the located ZLP is likely a spike, the message says so --;
        unless ``force``, what it lists; a PSF that is not numbers, of
        the wrong shape or energy scale, on a non-uniform axis or not a whole ZLP, a model file
        that is not a Keras model or does not match its contract.
    TypeError
        Complex data or PSF.
    FileNotFoundError
        The model file or its contract is missing.

    Warns
    -----
    UserWarning
        ZLP width (in channels) or counts outside what the model was trained on, with what to
        do; a PSF given with ``rl_iterations=0`` (unused); with ``force=True``, what it let
        through.

    Notes
    -----
    The input is never modified. The restoration
    (:meth:`~hyperspy_eelspecnet.restoration.EELSpecNetDeconvolution.run`) and Richardson-Lucy
    (:func:`~hyperspy_eelspecnet.restoration.deconvolve_block`) run on each navigation chunk
    (the energy axis in one chunk) through :func:`dask.array.map_blocks`, for eager signals
    too; an eager result computes both in one pass over the data. The model is loaded once per
    process, also in ``dask.distributed`` workers. Before that, one pass over the data measures
    every spectrum to validate it, so a lazy signal is read twice: bad input (NaNs, no ZLP, too
    few channels) fails before the network runs, not hours into it. With
    ``lazy_output=True`` the two results are separate graphs over the same input: computing
    one does not compute the other (``dask.compute(restored.data, rl.data)`` reads the input
    once for both).

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> import hyperspy_eelspecnet  # doctest: +SKIP
    >>> s = hs.load("low_loss.dm4")  # doctest: +SKIP
    >>> restored, rl = s.eelspecnet_deconvolve(rl_iterations=50)  # doctest: +SKIP
    """
    _check_energy_axis(self)
    if self.metadata.has_item("Signal.EELSpecNet"):
        _refuse_unless_forced(
            "This signal is an EELSpecNet result already "
            f"({self.metadata.Signal.EELSpecNet.get_item('result', 'restored')}): restored again, its ZLP "
            "keeps its width but its loss signal is reshaped once more. Restore the recorded signal.",
            force,
        )
    if isinstance(rl_iterations, bool) or not isinstance(rl_iterations, (int, np.integer)) or rl_iterations < 0:
        raise ValueError(f"rl_iterations must be a non-negative integer (0 skips Richardson-Lucy), got {rl_iterations!r}.")
    if show_progressbar is None:
        from hyperspy.api import preferences

        show_progressbar = preferences.General.show_progressbar
    data = _as_dask(self.data)
    lazy_output = not isinstance(self.data, np.ndarray) if lazy_output is None else bool(lazy_output)
    if isinstance(model, restoration.EELSpecNetDeconvolution):
        engine = model if batch_size is None else model.with_batch_size(batch_size)
    else:
        engine = restoration.EELSpecNetDeconvolution(model, batch_size)
    if psf is not None and not rl_iterations:
        warnings.warn(
            "psf is used only by Richardson-Lucy, which rl_iterations=0 skips: it was ignored (the "
            "EELSpecNet restoration does not use it; a fine-tuned model carries its own vacuum PSF). "
            "Pass rl_iterations > 0 to deconvolve with it, or leave psf out.",
            UserWarning,
            stacklevel=2,
        )
    energies = energies_in_ev(self.axes_manager.signal_axes[0])
    _check_fine_tune_dispersion(energies, engine.contract, force)
    psf_data, psf_source = _psf_for(self, psf, force) if rl_iterations else (None, None)

    # The checks read the whole input: for a lazy one (a file), that pass gets a bar of its own.
    with _progressbar(show_progressbar and not isinstance(self.data, np.ndarray)):
        diagnostics = _diagnose(data)
    engine.validate(diagnostics, force)
    text = None if energies is None else restoration.zlp_energy_warning(diagnostics, energies)
    if text:
        _refuse_unless_forced(text, force)

    restored, rl = _map_blocks(data, engine, psf_data, rl_iterations, _output_dtype(self.data.dtype))
    if not lazy_output:  # both results in one pass over the input
        import dask

        with _progressbar(show_progressbar):
            restored, rl = dask.persist(restored, rl)
    record = _record(engine, diagnostics, rl_iterations, psf_source, self.data.dtype)
    title = self.metadata.General.title
    contract = engine.contract
    restored = _result_signal(
        self, restored, lazy_output,
        f"{title} after EELSpecNet restoration ({contract.name} v{contract.version})",
        {**record, "result": "EELSpecNet restoration"},
    )
    if rl is not None:
        rl = _result_signal(
            self, rl, lazy_output,
            f"{title} after Richardson-Lucy deconvolution {rl_iterations} iterations",
            {**record, "result": "Richardson-Lucy deconvolution"},
        )
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
    if signal.axes_manager.signal_axes[0].scale < 0:
        raise ValueError(
            "eelspecnet_deconvolve needs the energy axis in increasing order (energy gain first, "
            "as the network was trained); this one decreases (negative scale "
            f"{signal.axes_manager.signal_axes[0].scale:g}). Reverse it first: s = s.isig[::-1] "
            "(HyperSpy flips the data and the axis together)."
        )
    if np.issubdtype(signal.data.dtype, np.complexfloating):
        raise TypeError(restoration.COMPLEX_DATA_MESSAGE)


def _refuse_unless_forced(text, force, stacklevel=3):
    """``ValueError`` with ``text`` and how to override it; with ``force``, a warning instead."""
    if not force:
        raise ValueError(f"{text} If the input is right, pass force=True (--force on the command line) to restore anyway.")
    warnings.warn(f"{text} (Restored anyway: force=True.)", UserWarning, stacklevel=stacklevel)


def _check_fine_tune_dispersion(energies, contract, force):
    """A model fine-tuned on a vacuum (its PSF in the contract, in channels) restores spectra at
    that vacuum's dispersion only: at another, the PSF it matches them from is the wrong width."""
    if contract.vacuum_psf is None:
        return
    if energies is None or energies.size < 2:
        return
    scale = (energies[-1] - energies[0]) / (energies.size - 1)
    if not np.isclose(scale, contract.dispersion, rtol=DISPERSION_TOLERANCE):
        _refuse_unless_forced(
            f"The model {contract.name!r} was fine-tuned on a vacuum ZLP at {contract.dispersion:g} eV per "
            f"channel, but this signal has {scale:g} eV per channel: its vacuum PSF, in channels, is not this "
            "signal's. Restore spectra recorded at the vacuum's dispersion, or fine-tune on a vacuum recorded "
            "with this signal's settings ('eelspecnet finetune VACUUM --out DIR').",
            force,
        )


#: Spectra per block, eager or lazy (:func:`_as_dask`): each block is restored (and
#: deconvolved) at once, so this bounds the memory of the Richardson-Lucy FFTs.
EAGER_CHUNK_SPECTRA = 1024


def _as_dask(data):
    """The data as a dask array with the energy axis in one chunk and about
    :data:`EAGER_CHUNK_SPECTRA` spectra per block, in one rechunking: a lazy file chunked
    along the energy axis would otherwise give blocks of many of its chunks each (and an
    intermediate block of the whole map), and one chunked pixel by pixel a network call per
    spectrum (six times slower)."""
    import dask.array as da

    signal_axis = data.ndim - 1
    if isinstance(data, np.ndarray):
        navigation = data.shape[:-1]
        per_axis = max(int(EAGER_CHUNK_SPECTRA ** (1 / max(len(navigation), 1))), 1)
        return da.from_array(data, chunks=tuple(min(per_axis, size) for size in navigation) + (-1,))
    limit = EAGER_CHUNK_SPECTRA * data.shape[-1] * data.dtype.itemsize
    return data.rechunk({**{axis: "auto" for axis in range(signal_axis)}, signal_axis: -1}, block_size_limit=limit)


def _diagnose(data):
    """:func:`restoration.diagnose_spectra` of every spectrum of a dask array (one pass, computed)."""
    import dask.array as da

    return da.map_blocks(
        restoration.diagnose_spectra, data, drop_axis=data.ndim - 1, dtype=restoration.DIAGNOSTICS,
    ).compute()


def _psf_for(signal, psf, force=False):
    """(psf array or None, source text) for Richardson-Lucy: a measured vacuum ZLP prepared as
    :func:`~hyperspy_eelspecnet.vacuum.prepare_vacuum_psfs` prepares it for fine-tuning."""
    if psf is None:
        return None, _OWN_ZLP_PSF
    nav_shape = signal.data.shape[:-1]
    if hasattr(psf, "axes_manager"):
        if psf.axes_manager.signal_dimension != 1:
            raise ValueError(
                f"The PSF signal has signal dimension {psf.axes_manager.signal_dimension}; give a "
                "spectrum (a measured vacuum zero-loss peak)."
            )
        _check_psf_axis(psf.axes_manager.signal_axes[0], signal.axes_manager.signal_axes[0])
        source = f"signal {psf.metadata.General.title!r}"
        data = psf.data
    else:
        source = "array"
        data = psf
    data = np.asarray(data.compute() if hasattr(data, "compute") else data)
    if np.issubdtype(data.dtype, np.complexfloating):
        raise TypeError("The PSF is complex; give a real, non-negative measured zero-loss peak.")
    if data.ndim == 0 or not np.issubdtype(data.dtype, np.number):
        raise ValueError(
            f"psf must be None (each spectrum's own ZLP), a signal or an array of a measured vacuum "
            f"zero-loss peak (numbers along its last axis); got {psf!r:.100}."
        )
    if np.shape(data)[:-1] not in ((), nav_shape) and np.ndim(data) != 2:
        raise ValueError(
            f"The PSF has shape {data.shape} (navigation {data.shape[:-1]}, {data.shape[-1]} "
            f"channels) but the signal's navigation shape is {nav_shape}: give one vacuum spectrum, "
            f"several (shape (m, n_psf): averaged), or one per spectrum, shape {nav_shape + ('n_psf',)}."
        )
    flat = data.reshape(-1, data.shape[-1])
    prepared = prepare_vacuum_psfs(flat).psfs  # refuses what is not a whole ZLP
    rising = loss_feature_rise(flat) > LOSS_FEATURE_RISE_LIMIT
    if rising.any():
        _refuse_unless_forced(
            f"{int(rising.sum())} of the {len(flat)} PSF spectra rise again above their ZLP tail by more "
            f"than {LOSS_FEATURE_RISE_LIMIT:g} of the ZLP: loss features, as in a specimen spectrum. "
            "Give a vacuum reference (recorded through a hole), or Richardson-Lucy will take those "
            "features for blur.",
            force, stacklevel=4,
        )
    if data.ndim > 1 and data.shape[:-1] != nav_shape:  # several vacuum spectra: one PSF, centred first
        return prepared.mean(axis=0), (
            f"{source}: mean of {len(flat)} measured vacuum ZLPs, each with its dark offset removed and "
            "centred on its located maximum, unit sum"
        )
    return prepared.reshape(data.shape[:-1] + (prepared.shape[-1],)), (
        f"{source}: measured vacuum ZLP, dark offset removed, centred on its located maximum, unit sum"
    )


def _check_psf_axis(psf_axis, axis):
    """Refuse a PSF energy axis that is non-uniform, decreasing, or of another dispersion.

    Dispersions are compared in the signal's units when both axes have units that convert
    (meV and eV); otherwise as given.
    """
    if not psf_axis.is_uniform:
        raise ValueError(
            "The PSF's energy axis is non-uniform; interpolate the PSF onto a uniform axis of the "
            "signal's dispersion first, e.g. psf.interpolate_on_axis(hs.axes.UniformDataAxis(...), 0)."
        )
    # Undefined units are not strings (traits' Undefined).
    psf_units, units = (a.units if isinstance(a.units, str) else "" for a in (psf_axis, axis))
    psf_scale = psf_axis.scale
    if psf_units and units and psf_units != units:
        converted = psf_axis.copy()
        with contextlib.suppress(Exception):  # units that do not convert: compare as given
            converted.convert_to_units(units)
            psf_scale = converted.scale
    if psf_scale < 0:
        raise ValueError("The PSF's energy axis decreases; reverse it first: psf = psf.isig[::-1].")
    if not np.isclose(psf_scale, axis.scale, rtol=1e-6, atol=0):
        def amount(value, unit):
            return f"{value:g} {unit}".strip()

        in_units = f" (= {amount(psf_scale, units)})" if psf_scale != psf_axis.scale else ""
        raise ValueError(
            f"The PSF has {amount(psf_axis.scale, psf_units)} per channel{in_units} but the signal "
            f"{amount(axis.scale, units)}; rebin or interpolate the PSF onto the signal's energy scale."
        )


# --------------------------------------------------------------------------- processing


def _output_dtype(input_dtype):
    """Float input keeps its precision, at least float32 (a sharpened ZLP overflows float16);
    integer counts become float64."""
    return np.result_type(input_dtype, np.float32) if np.issubdtype(input_dtype, np.floating) else np.dtype(float)


def _restore(block, engine=None, out_dtype=float):
    """The engine's restoration of one block (:meth:`restoration.EELSpecNetDeconvolution.run`)."""
    return engine.run(np.asarray(block, dtype=float)).astype(out_dtype)


def _deconvolve(block, psf_block=None, rl_iterations=0, out_dtype=float):
    """Richardson-Lucy of one block (:func:`restoration.deconvolve_block`)."""
    return restoration.deconvolve_block(block, psf_block, rl_iterations).astype(out_dtype)


def _map_blocks(data, engine, psf, rl_iterations, out_dtype):
    """Dask arrays of the restored spectra and of Richardson-Lucy's (None without it), chunk by
    chunk, each a graph of its own over the same input: computing one does not compute the other.

    The engine pickles as its model path: each task carries a few bytes, each worker loads
    the model once.
    """
    import dask.array as da

    common = {"dtype": out_dtype, "meta": np.array((), out_dtype)}
    restored = da.map_blocks(_restore, data, engine=engine, out_dtype=out_dtype, **common)
    if not rl_iterations:
        return restored, None
    kwargs = {"rl_iterations": rl_iterations, "out_dtype": out_dtype, **common}
    if psf is not None and psf.ndim > 1:  # one PSF per spectrum, chunked as the spectra
        psf = da.asarray(psf).rechunk(data.chunks[:-1] + (-1,))
        return restored, da.map_blocks(_deconvolve, data, psf, chunks=data.chunks, **kwargs)
    return restored, da.map_blocks(_deconvolve, data, psf_block=psf, **kwargs)


def _progressbar(show):
    """dask's progress bar for a local computation (on stderr, as HyperSpy's own bars), or nothing."""
    from dask.diagnostics import ProgressBar

    return ProgressBar(out=sys.stderr) if show else contextlib.nullcontext()


# --------------------------------------------------------------------------- results


def _result_signal(signal, data, lazy_output, title, record):
    """A signal of ``signal``'s class (lazy as asked), axes and metadata, holding ``data``."""
    out = signal.as_lazy(copy_variance=False, copy_navigator=False, copy_learning_results=False)
    out.data = data
    out.metadata.General.title = title
    out.metadata.set_item("Signal.EELSpecNet", record)
    if not lazy_output:
        out.compute(show_progressbar=False)
    return out


def _record(engine, diagnostics, rl_iterations, psf_source, input_dtype):
    """Plain metadata saying what was done (readable back from any saved file)."""
    contract = engine.contract
    return {
        "model": {
            "name": contract.name,
            "version": contract.version,
            "file": str(engine.path) if engine.path is not None else "in memory",
            "sha256": engine.sha256 or "unknown (in-memory model)",
            "n_channels": int(contract.n_channels),
            "dispersion": float(contract.dispersion),
        },
        "preprocessing": {
            "input_dtype": str(input_dtype),
            "padding": (
                f"{restoration.NETWORK_MARGIN} channels before the spectrum and at least as many after it, "
                f"to a multiple of {contract.length_multiple}, the mean of the {PAD_EDGE_CHANNELS} outermost "
                "channels"
            ),
            "shift": "none: the network runs over the spectrum's own channels",
            "normalisation": "unit area in; the restored spectrum scaled to the input's counts",
            "zlp_fwhm_channels_median": float(np.median(diagnostics["zlp_fwhm"])),
            "zlp_position_channels_median": float(np.median(diagnostics["zlp_position"])),
            "gaussian_matching": _gaussian_matching_record(contract),
        },
        "richardson_lucy": {
            "iterations": int(rl_iterations),
            "psf_source": psf_source or "none (not computed)",
        },
    }


def _gaussian_matching_record(contract):
    """What a fine-tuned model's matching to a Gaussian did to every input (or that none ran)."""
    if contract.vacuum_psf is None:
        return "none: the model takes spectra as recorded"
    vacuum_psf = np.asarray(contract.vacuum_psf, dtype=np.float64)
    return {
        "step": (
            "before the network, each spectrum matched from the model's vacuum PSF to a Gaussian of "
            "its FWHM (hyperspy_eelspecnet.vacuum.match_to_gaussian)"
        ),
        "vacuum_psf_fwhm_channels": float(fwhm(vacuum_psf[None])[0]),
        "vacuum_psf_channels": int(vacuum_psf.size),
        # Identifies the PSF: the first 16 hex digits of the SHA-256 of its float64 values.
        "vacuum_psf_sha256_16": hashlib.sha256(vacuum_psf.tobytes()).hexdigest()[:16],
    }


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
