"""Reading spectra from files: anything rosettasciio reads, text or NumPy files.

Used for the vacuum spectra of training and fine-tuning, for the specimen spectra a
fine-tune matches its noise to, and (:func:`read_signal`) for the files ``eelspecnet
deconvolve`` restores.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SpectraFile", "read_spectra", "read_signal", "ZERO_AT_MAXIMUM", "load_spectra_signal", "is_table_file", "span"]

#: File endings read as text (one spectrum per row) or as NumPy arrays; anything else goes to
#: HyperSpy's loader (rosettasciio: .dm3, .dm4, .hspy, .msa, ...). Value: the column delimiter
#: (None: white space).
TEXT_SUFFIXES = {".txt": None, ".dat": None, ".csv": ",", ".tsv": "\t"}
_SEPARATED = {None: "white space", ",": "commas", "\t": "tabs"}
#: eV per unit of an energy axis, for the dispersion; other units leave it unknown.
EV_PER_UNIT = {"eV": 1.0, "meV": 1e-3, "keV": 1e3}
#: Relative difference of dispersions taken as the same.
DISPERSION_TOLERANCE = 1e-3


def folder_problem(path):
    """Why the folder ``path`` cannot be written or made (nothing is created), or None.

    Returns
    -------
    None or (str, Path)
        ``("file", path)``: it is an existing file; ``("under_file", p)``: ``p``, the first
        existing path on the way, is a file; ``("no_write", p)``: that folder does not allow
        writing.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        return "file", path
    existing = path if path.exists() else next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        return "under_file", existing
    if not os.access(existing, os.W_OK | os.X_OK):
        return "no_write", existing
    return None


def energies_in_ev(axis):
    """The energy of each channel of a HyperSpy axis in eV, or None where its units are not an
    energy (an uncalibrated axis in channels says nothing about where 0 eV is)."""
    units = axis.units if isinstance(axis.units, str) else ""
    if units not in EV_PER_UNIT:
        return None
    return np.asarray(axis.axis, dtype=float) * EV_PER_UNIT[units]


@dataclass
class SpectraFile:
    """The spectra of one file, flattened to ``(m, n)``.

    Attributes
    ----------
    path : Path
    spectra : ndarray, shape (m, n)
    names : list of str
        ``"file"`` for a single spectrum, ``"file[i, j]"`` (navigation indices in ``s.inav``
        order) for the pixels of a spectrum image, ``"file row k"`` for the rows of a table.
    dispersion : float or None
        eV per channel, where the file says (calibrated HyperSpy signals); None for text and
        NumPy files.
    energy_range : (float, float) or None
        Energies of the first and last channel in eV, where the file says (an energy axis in
        eV, meV or keV); None otherwise.
    """

    path: Path
    spectra: np.ndarray
    names: list
    dispersion: float | None
    energy_range: tuple | None = None

    def holds_zero_energy(self) -> bool:
        """Whether the energy window contains 0 eV (True where the file does not say)."""
        return self.energy_range is None or self.energy_range[0] <= 0.0 <= self.energy_range[1]


def span(low: float, high: float, spec: str = ".3g") -> str:
    """``"low-high"``, or ``"low to high"`` where a minus sign would make the hyphen ambiguous."""
    low_text, high_text = format(low, spec), format(high, spec)
    return f"{low_text}-{high_text}" if low >= 0 and high >= 0 else f"{low_text} to {high_text}"


def is_table_file(path) -> bool:
    """Whether ``path`` is read as a text table or a NumPy array (not by HyperSpy)."""
    suffix = Path(path).suffix.lower()
    return suffix in TEXT_SUFFIXES or suffix == ".npy"


def _reason(error) -> str:
    """A loader's message, to go inside a sentence of ours."""
    return str(error).strip().rstrip(".") or type(error).__name__


def _is_energy_axis(column) -> bool:
    """A column that increases in equal steps (to 0.1 %): an energy axis, not counts."""
    steps = np.diff(column)
    return bool(np.all(steps > 0) and np.ptp(steps) <= 1e-3 * np.mean(steps))


def load_spectra_signal(path, also: str | None = None):
    """``hs.load(path)``, checked to be one signal of spectra (signal dimension 1).

    HyperSpy's own log line for a file it cannot read is held back: the ``ValueError`` says
    what is wrong instead.

    Parameters
    ----------
    path : str or Path
    also : str, optional
        Other inputs the caller takes, for the message (e.g. "a text table").

    Returns
    -------
    BaseSignal

    Raises
    ------
    ValueError
        The file cannot be read, holds several signals, or is not spectra.
    """
    import logging

    import hyperspy.api as hs

    logger = logging.getLogger("hyperspy.io")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        signal = hs.load(path)
    except Exception as error:  # rosettasciio's readers raise many types for a bad file
        raise ValueError(
            f"Cannot read {path}: {_reason(error)}; give a file HyperSpy reads (.dm3, .dm4, .hspy, .msa, "
            f"...){', ' + also if also else ''}."
        ) from error
    finally:
        logger.setLevel(level)
    if isinstance(signal, list):
        raise ValueError(
            f"{path} holds {len(signal)} signals; save the near-zero-loss spectra alone (e.g. "
            "s.save('low_loss.hspy')) and pass that file."
        )
    if signal.axes_manager.signal_dimension != 1:
        raise ValueError(
            f"{path} holds a signal of signal dimension {signal.axes_manager.signal_dimension}; "
            "give spectra (one energy axis)."
        )
    return signal


def read_spectra(path) -> SpectraFile:
    """Read the spectra of a file (see :class:`SpectraFile`).

    Text (``.txt``, ``.dat``: white space between the columns; ``.csv``: commas; ``.tsv``: tabs)
    and ``.npy`` files hold one spectrum per row. A single column is one spectrum (a spectrum
    of one channel does not exist), so a spectrum saved as a column needs no transposing. Two
    columns whose first increases in equal steps are an energy axis and one spectrum's counts
    (a common text export); the energy's units are not stated, so the dispersion is left
    unknown.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file cannot be read, holds several signals, or is not spectra (signal dimension 1).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No file {path}; check its path.")
    dispersion = energy_range = None
    suffix = path.suffix.lower()
    if is_table_file(path):
        try:
            with warnings.catch_warnings():  # an empty file gets our own error below
                warnings.filterwarnings("ignore", message="loadtxt: input contained no data")
                if suffix == ".npy":
                    data = np.load(path)
                else:
                    data = np.loadtxt(path, ndmin=2, delimiter=TEXT_SUFFIXES[suffix])
            data = np.atleast_2d(np.asarray(data, dtype=float))
        except (OSError, EOFError, ValueError, TypeError) as error:
            if suffix == ".npy":
                remedy = "save the spectra with numpy.save, one per row"
            else:
                remedy = f"give numbers only, one spectrum per row, separated by {_SEPARATED[TEXT_SUFFIXES[suffix]]}"
            raise ValueError(f"Cannot read {path}: {_reason(error)}; {remedy}.") from error
        if data.ndim == 2 and data.shape[1] == 1:
            data = data.T  # one spectrum as a column
        elif data.ndim == 2 and data.shape[1] == 2 and data.shape[0] > 2 and _is_energy_axis(data[:, 0]):
            data = data[:, 1][None]  # energy and counts columns (a spectrum of two channels does not exist)
        names = [path.name] if data.shape[0] == 1 else [f"{path.name} row {k}" for k in range(data.shape[0])]
    else:
        signal = load_spectra_signal(path, also="a text table or a .npy array")
        axis = signal.axes_manager.signal_axes[0]
        if axis.units in EV_PER_UNIT:
            dispersion = float(axis.scale) * EV_PER_UNIT[axis.units]
            ends = (float(axis.axis[0]) * EV_PER_UNIT[axis.units], float(axis.axis[-1]) * EV_PER_UNIT[axis.units])
            energy_range = (min(ends), max(ends))
        data = np.asarray(signal.data, dtype=float)
        navigation = data.shape[:-1]
        if navigation:
            names = [f"{path.name}{tuple(int(i) for i in index[::-1])}" for index in np.ndindex(navigation)]
        else:
            names = [path.name]
    if data.size == 0:
        raise ValueError(f"{path} holds no spectrum (no numbers).")
    return SpectraFile(path, data.reshape(-1, data.shape[-1]), names, dispersion, energy_range)


#: The warning of :func:`read_signal` for a file it put 0 eV at the maximum of.
ZERO_AT_MAXIMUM = (
    "0 eV put at each spectrum's maximum: the file carries no energy axis; give --offset E (the energy of "
    "the first channel's centre) so that a window without a zero-loss peak can be recognised"
)


def read_signal(path, dispersion: float | None = None, offset: float | None = None, vacuum: bool = False):
    """The spectra of a file as an EELS signal, to restore (``eelspecnet deconvolve``).

    HyperSpy's files (.dm3, .dm4, .hspy, .msa, ...) keep their axes and metadata. Text and
    ``.npy`` files are read as :func:`read_spectra` reads them (one spectrum per row; several
    rows give a navigation axis of that length) and need ``dispersion``: their energy axis is
    ``dispersion`` eV per channel, its first channel at ``offset`` eV, or, without ``offset``,
    0 eV at the zero-loss peak's located maximum (the median over the rows): then a window
    without a ZLP (a plasmon window) has its maximum put at 0 eV and cannot be recognised as
    such. A HyperSpy file whose energy axis is not in eV, meV or keV (uncalibrated) is
    calibrated the same way where ``dispersion`` is given.

    Parameters
    ----------
    path : str or Path
    dispersion : float, optional
        eV per channel, for files that do not say it; where a file does, it must agree.
    offset : float, optional
        Energy of the first channel in eV, for files whose axis is calibrated here; not for
        files that say their energy axis.
    vacuum : bool
        The file holds vacuum spectra: their maximum is the ZLP, so 0 eV there is right, without
        the warning.

    Warns
    -----
    UserWarning
        0 eV put at the maximum (:data:`ZERO_AT_MAXIMUM`): calibrated here without ``offset``,
        unless ``vacuum``.

    Returns
    -------
    EELSSpectrum

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file cannot be read or is not spectra; a text or ``.npy`` file without
        ``dispersion``; ``dispersion`` not positive, or not the file's own; ``offset`` not
        finite, or given for a file that says its energy axis.
    """
    import exspy

    path = Path(path)
    if dispersion is not None and not (np.isfinite(dispersion) and dispersion > 0):
        raise ValueError(f"The dispersion must be a positive number of eV per channel (e.g. 0.005), not {dispersion:g}.")
    if offset is not None and not np.isfinite(offset):
        raise ValueError(f"The offset must be a finite energy in eV (the first channel's centre, e.g. -0.9275), not {offset:g}.")
    if is_table_file(path):
        read = read_spectra(path)
        if dispersion is None:
            raise ValueError(
                f"{path} is a {path.suffix} file, which does not say its dispersion; give it in eV per "
                "channel with --dispersion (dispersion=), e.g. --dispersion 0.005."
            )
        signal = exspy.signals.EELSSpectrum(read.spectra[0] if len(read.spectra) == 1 else read.spectra)
        signal.metadata.General.title = path.stem
        _calibrate(signal, dispersion, offset, warn=not vacuum)
        return signal
    signal = load_spectra_signal(path, also="a text table or a .npy array")
    if not hasattr(signal, "eelspecnet_deconvolve"):
        signal.set_signal_type("EELS")
    axis = signal.axes_manager.signal_axes[0]
    if axis.units in EV_PER_UNIT:
        stated = float(axis.scale) * EV_PER_UNIT[axis.units]
        if dispersion is not None and abs(dispersion - stated) > DISPERSION_TOLERANCE * abs(stated):
            raise ValueError(
                f"{path} is at {stated:g} eV per channel, not the {dispersion:g} given (--dispersion): "
                "leave the dispersion out for files that say theirs."
            )
        if offset is not None:
            raise ValueError(
                f"{path} says its energy axis (the first channel at {float(axis.axis[0]):g} {axis.units}); leave "
                "the offset (--offset) out for files that say theirs."
            )
    elif dispersion is not None:
        _calibrate(signal, dispersion, offset, warn=not vacuum)
    elif offset is not None:
        raise ValueError(
            f"{path} has no energy axis in eV; give its dispersion with the offset (--dispersion, dispersion=), "
            "e.g. --dispersion 0.005."
        )
    return signal


def _calibrate(signal, dispersion: float, offset: float | None = None, warn: bool = True):
    """An energy axis of ``dispersion`` eV per channel, the first channel at ``offset`` eV, or
    0 eV at the ZLP's located maximum."""
    from .spectral import locate_zlp

    axis = signal.axes_manager.signal_axes[0]
    if offset is not None:
        axis.scale, axis.offset, axis.units, axis.name = float(dispersion), float(offset), "eV", "Energy loss"
        return
    if warn:
        warnings.warn(ZERO_AT_MAXIMUM + ".", UserWarning, stacklevel=3)
    data = np.asarray(signal.data, dtype=float).reshape(-1, signal.data.shape[-1])
    positions = locate_zlp(np.where(np.isfinite(data), data, 0.0))
    zlp = float(np.nanmedian(positions)) if np.isfinite(positions).any() else 0.0
    axis.scale, axis.offset, axis.units, axis.name = float(dispersion), -zlp * float(dispersion), "eV", "Energy loss"

