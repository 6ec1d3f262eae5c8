"""Maps and profiles of spectrum images: energy-filtered maps, modal evolution along a line, and
the energy (or width, area) of one loss feature along that line.

Plain functions over HyperSpy signals; the arithmetic is NumPy on the signal's data. They
work on any EELS spectrum image, raw or restored (restored spectra are NaN outside the model
window; those channels are ignored). Of a lazy signal, only what the result needs is computed
(window sums block by block, the spectra a line passes through); results are in memory.
"""

from __future__ import annotations

import numpy as np

from .features import find_loss_features, strongest_in_window
from .spectral import finite_mean

__all__ = [
    "energy_filtered_maps", "modal_evolution", "feature_along_line", "feature_table", "feature_map",
    "feature_agreement",
]


def _axis_dictionary(axis, navigate):
    return {
        "name": axis.name,
        "size": axis.size,
        "scale": axis.scale,
        "offset": axis.offset,
        "units": axis.units,
        "navigate": navigate,
    }


def _signal_on_axes(data, axes):
    """A Signal1D, Signal2D or BaseSignal of ``data`` whose signal axes are copies of ``axes``
    (in array order): a quantity per pixel of a map, shown as the map."""
    import hyperspy.api as hs

    dictionaries = [_axis_dictionary(a, navigate=False) for a in axes]
    if len(dictionaries) != data.ndim:  # a single spectrum's value: a one-element signal
        return hs.signals.BaseSignal(data)
    kind = {1: hs.signals.Signal1D, 2: hs.signals.Signal2D}.get(data.ndim, hs.signals.BaseSignal)
    return kind(data, axes=dictionaries)


def _units(axis):
    """The axis' units, or "" where they are not set (HyperSpy's ``Undefined``)."""
    return axis.units if isinstance(axis.units, str) and axis.units else ""


def _check_on_axis(axis, low, high, label):
    """Refuse an energy range (``label``: what to call it) lying outside the axis, e.g. in meV
    on an eV axis (HyperSpy accepts half a channel past each end)."""
    if low > axis.high_value + 0.5 * axis.scale or high < axis.low_value - 0.5 * axis.scale:
        units = f" {_units(axis)}" if _units(axis) else ""
        raise ValueError(
            f"{label} ({low:g}, {high:g}) lies outside the energy axis "
            f"({axis.low_value:g} to {axis.high_value:g}{units}); give it in the axis' units."
        )


def _channel_slice(axis, low, high, name):
    """The channels of ``signal.isig[low:high]`` (HyperSpy's rounding, clipped to the axis).

    Raises ``ValueError`` for a window outside the axis (e.g. meV on an eV axis) or holding no
    channel, where a sum would read as "no intensity".
    """
    units = f" {_units(axis)}" if _units(axis) else ""
    _check_on_axis(axis, low, high, f"Energy window {name!r}")
    window = slice(_index_or(axis, low, 0), _index_or(axis, high, axis.size))
    if window.stop <= window.start:
        raise ValueError(
            f"Energy window {name!r} ({low:g}, {high:g}) holds no channel of the energy axis "
            f"({axis.scale:g}{units} per channel); widen it."
        )
    return window


def _index_or(axis, value, outside):
    """The channel nearest ``value``; ``outside`` beyond the axis (HyperSpy accepts half a
    channel past each end, as ``isig`` does)."""
    try:
        return axis.value2index(value)
    except ValueError:
        return outside


def energy_filtered_maps(signal, windows):
    """Integrated intensity of each energy window over a spectrum image.

    Parameters
    ----------
    signal : EELSSpectrum
        Spectra with one or two navigation dimensions and a uniform energy axis. NaN channels
        are left out of a window's sum; a pixel with no finite channel in a window gets NaN.
    windows : dict of str to (float, float)
        Window name to ``(low, high)`` in the energy axis' units (eV), e.g.
        ``{"Ph": (0.07, 0.13), "SP1": (0.30, 0.40)}``.

    Returns
    -------
    Signal2D (or Signal1D for a line scan)
        One map per window, the windows along the navigation axis ``"Energy window"`` in the
        order given, in memory (a lazy input is summed block by block).
        ``metadata.Signal.window_names`` and ``metadata.Signal.window_ranges`` list the
        windows; the map axes are the input's navigation axes.

    Raises
    ------
    ValueError
        Not a line scan or spectrum image; no window; a window with ``low >= high``, outside
        the energy axis (e.g. given in meV on an eV axis) or holding no channel.

    Notes
    -----
    A window sums the same channels as ``signal.isig[low:high].sum(-1)``: from the channel
    nearest ``low`` up to, not including, the channel nearest ``high`` (HyperSpy's float
    slicing), so a window ``(E1, E2)`` at channel centres covers ``E1 <= E < E2``.

    Examples
    --------
    >>> maps = energy_filtered_maps(s, {"Ph": (0.07, 0.13), "SP1": (0.30, 0.40)})  # doctest: +SKIP
    >>> maps.plot()  # doctest: +SKIP
    """
    navigation_axes = signal.axes_manager.navigation_axes
    if signal.axes_manager.signal_dimension != 1 or len(navigation_axes) not in (1, 2):
        raise ValueError(
            "energy_filtered_maps needs a line scan or spectrum image (1 or 2 navigation "
            f"dimensions, 1 signal dimension); got {signal.axes_manager.navigation_dimension} and "
            f"{signal.axes_manager.signal_dimension}."
        )
    if not windows:
        raise ValueError("Give at least one energy window, e.g. {'SP1': (0.30, 0.40)}.")
    axis = signal.axes_manager.signal_axes[0]
    data = signal.data
    lazy = not isinstance(data, np.ndarray)
    if lazy:
        import dask.array as xp
    else:
        xp = np
    maps = []
    for name, (low, high) in windows.items():
        if not low < high:
            raise ValueError(f"Energy window {name!r} must have low < high, got ({low}, {high}).")
        window = data[..., _channel_slice(axis, low, high, name)]
        # NaN channels are left out; a pixel with none finite in the window has no value (NaN), not 0.
        total = xp.nansum(window, axis=-1)
        maps.append(xp.where(xp.isfinite(window).any(axis=-1), total, np.nan))
    maps = xp.stack(maps)
    maps = np.asarray(maps.compute()) if lazy else maps  # one pass over the lazy data

    import hyperspy.api as hs

    axes = [{"name": "Energy window", "size": len(maps), "navigate": True}]
    axes += [_axis_dictionary(a, navigate=False) for a in reversed(navigation_axes)]
    out = (hs.signals.Signal2D if len(navigation_axes) == 2 else hs.signals.Signal1D)(maps, axes=axes)
    out.metadata.General.title = f"{signal.metadata.General.title} energy-filtered maps"
    out.metadata.set_item("Signal.window_names", list(windows))
    out.metadata.set_item("Signal.window_ranges", [list(map(float, pair)) for pair in windows.values()])
    out.metadata.set_item("Signal.window_units", axis.units)
    return out


def _line_points(signal, start, end):
    """``(start, end)`` of a line in navigation units and in fractional pixels, as (x, y) arrays."""
    from hyperspy.roi import Line2DROI

    if isinstance(start, Line2DROI):
        if end is not None:
            raise ValueError("Give either a Line2DROI or start and end points, not both.")
        start, end = (start.x1, start.y1), (start.x2, start.y2)
    elif end is None:
        raise ValueError("Give the end point of the line (x, y) in the navigation units.")
    x_axis, y_axis = signal.axes_manager.navigation_axes
    calibrated = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    offsets = np.array([x_axis.offset, y_axis.offset])
    scales = np.array([x_axis.scale, y_axis.scale])
    return calibrated, tuple((point - offsets) / scales for point in calibrated)


def _pixel_spectra(data, rows, columns) -> np.ndarray:
    """Spectra of the pixels ``(rows[i], columns[i])`` of a NumPy or dask map, as NumPy."""
    if isinstance(data, np.ndarray):
        return data[rows, columns]
    return np.asarray(data.vindex[rows, columns].compute())


def modal_evolution(signal, start, end=None, width=7):
    """Spectra along a line across a spectrum image, averaged across it: energy vs position.

    The line is sampled once per pixel of its length (in pixel units) from ``start`` to
    ``end``. At each sample the spectra of ``width`` pixels on the perpendicular through it,
    one pixel apart and centred on the line, are averaged; every point takes the spectrum of
    its **nearest pixel** (no interpolation between spectra, so noise is not smoothed and
    counts are not mixed). Points outside the map are left out of the average (NaN where all
    are outside); NaN channels are ignored.

    Parameters
    ----------
    signal : EELSSpectrum
        Spectrum image: two navigation dimensions, one signal dimension.
    start : (float, float) or hyperspy.roi.Line2DROI
        Start ``(x, y)`` in the navigation axes' units, or a line ROI (its end points are
        used; its ``linewidth`` is not, ``width`` sets the averaging).
    end : (float, float), optional
        End ``(x, y)`` in the navigation axes' units (not with a ROI).
    width : int
        Pixels averaged across the line (odd values centre the strip on the line), as the
        7 x 7 pixel averages of the paper's Fig. 7d.

    Returns
    -------
    Signal2D
        Data of shape ``(n_energy, n_positions)``: signal axes ``"Position"`` (distance along
        the line from ``start``, in the navigation units) and the input's energy axis.

    Examples
    --------
    >>> profile = modal_evolution(s, start=(100, 150), end=(840, 150), width=7)  # doctest: +SKIP
    >>> profile.plot()  # doctest: +SKIP
    """
    if signal.axes_manager.navigation_dimension != 2 or signal.axes_manager.signal_dimension != 1:
        raise ValueError(
            "modal_evolution needs a spectrum image (2 navigation dimensions, 1 signal "
            f"dimension); got {signal.axes_manager.navigation_dimension} and "
            f"{signal.axes_manager.signal_dimension}."
        )
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be a positive number of pixels, got {width!r}.")
    (start, end), (start_px, end_px) = _line_points(signal, start, end)
    length = float(np.hypot(*(end - start)))
    direction = end_px - start_px
    length_px = float(np.hypot(*direction))
    if length_px == 0:
        raise ValueError("The line has zero length: start and end are the same point.")
    n_positions = int(np.floor(length_px)) + 1
    along = direction / length_px
    across = np.array([-along[1], along[0]])
    steps = np.arange(n_positions)
    offsets = np.arange(width) - (width - 1) / 2.0
    points = start_px + steps[:, None, None] * along + offsets[None, :, None] * across  # (n, width, 2)
    # Half-pixel points round up (np.rint rounds to even), so a strip centred between two
    # pixel rows samples each row once.
    columns = np.floor(points[..., 0] + 0.5).astype(int)
    rows = np.floor(points[..., 1] + 0.5).astype(int)
    ny, nx = signal.data.shape[:2]
    inside = (columns >= 0) & (columns < nx) & (rows >= 0) & (rows < ny)
    # Read each pixel the strip touches once (of a lazy map, only those pixels are loaded).
    pixel = rows.clip(0, ny - 1) * nx + columns.clip(0, nx - 1)
    unique, which = np.unique(pixel, return_inverse=True)
    pixel_spectra = _pixel_spectra(signal.data, unique // nx, unique % nx)
    spectra = np.where(
        inside[..., None], pixel_spectra[which.reshape(pixel.shape)], np.nan
    )  # (n_positions, width, n_energy)
    profile = finite_mean(spectra, axis=1)

    import hyperspy.api as hs

    x_axis = signal.axes_manager.navigation_axes[0]
    energy_axis = signal.axes_manager.signal_axes[0]
    position_axis = {
        "name": "Position",
        "size": n_positions,
        "scale": length / length_px,
        "offset": 0.0,
        "units": x_axis.units,
    }
    out = hs.signals.Signal2D(profile.T, axes=[_axis_dictionary(energy_axis, False), position_axis])
    out.metadata.General.title = f"{signal.metadata.General.title} modal evolution"
    out.metadata.set_item(
        "Signal.line",
        {
            "start": start.tolist(),
            "end": end.tolist(),
            "width_pixels": int(width),
            "sampling": "nearest pixel, one sample per pixel of length",
        },
    )
    return out



def feature_along_line(profile, energy_window, quantity: str = "energy", **kwargs):
    """One quantity of the strongest loss feature in an energy window, along a modal profile.

    At every position of a :func:`modal_evolution` profile (spectra already averaged across
    the line's width, so less noisy than single pixels) the loss features are found by
    :func:`~hyperspy_eelspecnet.features.find_loss_features` and the most prominent one inside
    ``energy_window`` is kept (:func:`~hyperspy_eelspecnet.features.strongest_in_window`):
    e.g. the phonon energy along a nanowire, which shifts where the phonon couples to a
    surface plasmon.

    Parameters
    ----------
    profile : Signal2D
        Output of :func:`modal_evolution` (energy x position).
    energy_window : (float, float)
        Inclusive energy range, in the units of the energy axis.
    quantity : str
        ``energy`` (default), ``fwhm``, ``area``, ``height`` or ``prominence``.
    **kwargs
        Passed to :func:`~hyperspy_eelspecnet.features.find_loss_features`.

    Returns
    -------
    Signal1D
        The quantity against the profile's position axis; NaN where no feature lies in the
        window.
    """
    if profile.axes_manager.signal_dimension != 2 or profile.metadata.get_item("Signal.line") is None:
        raise ValueError(
            "feature_along_line needs the energy-vs-position profile returned by modal_evolution."
        )
    # The profile as spectra (navigation: position; signal: energy) is what feature_map maps.
    energy_axis = profile.axes_manager.signal_axes[1]
    out = feature_map(profile.transpose(signal_axes=[energy_axis]), energy_window, quantity, **kwargs)
    out.metadata.set_item("Signal.line", profile.metadata.Signal.line.as_dictionary())
    return out


def feature_agreement(found, truth, tolerance: float) -> float:
    """Share of the places where ``truth`` shows the feature at which ``found`` lies within ``tolerance`` of it.

    Parameters
    ----------
    found, truth : signal or array_like
        Two outputs of :func:`feature_along_line` on the same line, or of :func:`feature_map`
        on the same map (NaN: no feature there; a feature missed where the truth has one
        counts against ``found``).
    tolerance : float
        In the units of the quantity (eV for energies).

    Returns
    -------
    float
        NaN when the truth shows the feature nowhere.
    """
    values, reference = (np.asarray(getattr(x, "data", x), dtype=float) for x in (found, truth))
    shown = np.isfinite(reference)
    if not shown.any():
        return float("nan")
    return float((np.abs(values[shown] - reference[shown]) <= tolerance).mean())


def _features_of_signal(signal, kwargs):
    """:func:`find_loss_features` of an EELS signal on its calibrated energy axis (computed)."""
    if signal.axes_manager.signal_dimension != 1:
        raise ValueError(
            f"Loss features need spectra (signal dimension 1); this signal has signal dimension "
            f"{signal.axes_manager.signal_dimension}."
        )
    if "energy_axis" in kwargs or "dispersion" in kwargs or "offset" in kwargs:
        raise ValueError("The energy axis is the signal's own calibrated signal axis.")
    data = signal.data if isinstance(signal.data, np.ndarray) else signal.data.compute()
    return find_loss_features(data, signal.axes_manager.signal_axes[0].axis, **kwargs)


def feature_table(signal, **kwargs) -> dict:
    """Loss features of every spectrum of an EELS signal, one signal per quantity.

    Parameters
    ----------
    signal : EELSSpectrum or Signal1D
        Spectra (e.g. restored ones) with a calibrated, increasing energy axis; a lazy signal
        is computed.
    **kwargs
        ``zlp_exclusion``, ``min_height_ratio``, ``max_features``, ``method`` of
        :func:`~hyperspy_eelspecnet.features.find_loss_features`, which documents the detection and the measurements.

    Returns
    -------
    dict
        ``energy``, ``fwhm``, ``area``, ``height``, ``prominence``, ``valid``: ``Signal1D``
        with the input's navigation axes and the feature index as signal axis (features
        sorted by energy, NaN / False where fewer were found); ``table``: the structured array
        of :func:`find_loss_features`.
    """
    import hyperspy.api as hs

    table = _features_of_signal(signal, kwargs)
    energy_axis = signal.axes_manager.signal_axes[0]
    units = energy_axis.units if isinstance(energy_axis.units, str) else "axis units"
    axes = [_axis_dictionary(a, navigate=True) for a in reversed(signal.axes_manager.navigation_axes)] + [
        {"name": "Feature index", "size": table.shape[-1], "navigate": False}
    ]
    title = signal.metadata.General.title or "Spectra"
    quantity_labels = {
        "energy": f"Energy ({units})",
        "fwhm": f"FWHM ({units})",
        "area": f"Area (intensity x {units})",
        "height": "Height (intensity)",
        "prominence": "Prominence (intensity)",
        "valid": "Feature found",
    }
    result = {}
    for name, label in quantity_labels.items():
        out = hs.signals.Signal1D(table[name], axes=axes)
        out.metadata.General.title = f"{title}: loss-feature {name}"
        out.metadata.Signal.quantity = label
        result[name] = out
    result["table"] = table
    return result


def feature_map(signal, energy_window, quantity: str = "energy", **kwargs):
    """Map one quantity of the strongest loss feature inside an energy window.

    For each pixel the most prominent feature whose energy lies in ``energy_window`` is
    chosen (:func:`strongest_in_window`); pixels without one are NaN. Mapping the energy of a
    phonon shows it shift across the map, e.g. near a plasmon.

    Parameters
    ----------
    signal : EELSSpectrum or Signal1D
        Spectra with a calibrated energy axis (a lazy signal is computed).
    energy_window : (float, float)
        Inclusive energy range in the units of the signal's energy axis.
    quantity : str
        ``energy`` (default), ``fwhm``, ``area``, ``height`` or ``prominence``.
    **kwargs
        Passed to :func:`find_loss_features` (``zlp_exclusion``, ``min_height_ratio``,
        ``max_features``, ``method``).

    Returns
    -------
    Signal2D (2-D map), Signal1D (line) or BaseSignal (single spectrum)
        The navigation space of ``signal`` as signal space.

    Raises
    ------
    ValueError
        An energy window outside the energy axis (e.g. in meV on an eV axis), where every pixel
        would read "no feature".
    """
    energy_axis = signal.axes_manager.signal_axes[0]
    if signal.axes_manager.signal_dimension == 1:  # (other shapes: _features_of_signal says why not)
        _channel_slice(energy_axis, *energy_window, name="energy_window")
    table = _features_of_signal(signal, kwargs)
    values = strongest_in_window(table, energy_window, quantity)
    out = _signal_on_axes(np.atleast_1d(values), reversed(signal.axes_manager.navigation_axes))
    units = energy_axis.units if isinstance(energy_axis.units, str) else ""
    low, high = energy_window
    out.metadata.General.title = (
        f"{signal.metadata.General.title or 'Spectra'}: {quantity} of the strongest feature in "
        f"{low:g}-{high:g} {units}".rstrip()
    )
    return out
