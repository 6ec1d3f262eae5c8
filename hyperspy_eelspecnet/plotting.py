"""Figures comparing input, EELSpecNet restoration and Richardson-Lucy deconvolution.

Static figures are plain matplotlib (they work with the Agg backend) and return the
:class:`matplotlib.figure.Figure`; :func:`plot_interactive_comparison` uses HyperSpy's
navigator to browse a spectrum image.
"""

from __future__ import annotations

import numpy as np

from .analysis import _check_on_axis, _units
from .spectral import finite_mean

__all__ = [
    "plot_comparison",
    "plot_interactive_comparison",
    "plot_maps_side_by_side",
    "plot_modal_evolution",
    "plot_feature_along_line",
]

#: Colours of input, EELSpecNet, Richardson-Lucy and a ground truth (the paper's red and green).
COLOURS = {"input": "tab:red", "restored": "tab:green", "richardson_lucy": "tab:blue", "truth": "black"}
#: The log panels show at most this many decades below the highest spectrum's maximum in the shown range.
LOG_DECADES = 6
#: An energy_range this many times wider than the energy axis is in other units (meV on an eV axis).
MAX_RANGE_TO_AXIS = 10.0


def _as_triple(signals):
    """(input, restored, richardson_lucy or None) from a result or a 2/3-sequence."""
    if hasattr(signals, "restored") and hasattr(signals, "richardson_lucy"):  # an EELSpecNetResult
        if signals.input is None:
            raise ValueError(
                "This EELSpecNetResult does not know its input; give (input, restored, "
                "richardson_lucy) instead."
            )
        return signals.input, signals.restored, signals.richardson_lucy
    signals = tuple(signals)
    if len(signals) not in (2, 3):
        raise ValueError("Give an EELSpecNetResult or (input, restored[, richardson_lucy]).")
    return signals + (None,) * (3 - len(signals))


def _label(signal, role):
    if role == "input":
        return "input"
    if role == "restored":
        return "EELSpecNet"
    if role == "truth":
        return "ground truth"
    iterations = signal.metadata.get_item("Signal.EELSpecNet.richardson_lucy.iterations")
    return f"Richardson-Lucy ({iterations} it.)" if iterations else "Richardson-Lucy"


def _axis_label(axis, fallback):
    """``name (units)``; ``fallback`` for an unnamed axis, no brackets without units."""
    name = axis.name if isinstance(axis.name, str) and axis.name else fallback
    units = _units(axis)
    return f"{name} ({units})" if units else name


def _shown_channels(axis, energy_range):
    """The channels of a uniform energy axis inside ``energy_range`` (all of them for None).

    Raises ``ValueError`` for a range that is reversed, lies outside the axis, holds no
    channel, or is more than :data:`MAX_RANGE_TO_AXIS` times as wide as the axis (e.g. meV on
    an eV axis), as :func:`~hyperspy_eelspecnet.analysis.energy_filtered_maps` does for its
    windows.
    """
    energy = axis.axis
    if energy_range is None:
        return np.ones(energy.size, bool)
    low, high = (float(value) for value in energy_range)
    units = f" {_units(axis)}" if _units(axis) else ""
    if not low < high:
        raise ValueError(f"energy_range ({low:g}, {high:g}) is reversed or empty; give (low, high) with low < high.")
    _check_on_axis(axis, low, high, "energy_range")
    span = axis.high_value - axis.low_value
    if high - low > MAX_RANGE_TO_AXIS * span:
        raise ValueError(
            f"energy_range ({low:g}, {high:g}) is {(high - low) / span:.0f} times as wide as the energy axis "
            f"({axis.low_value:g} to {axis.high_value:g}{units}); give it in the axis' units."
        )
    shown = (energy >= low) & (energy <= high)
    if not shown.any():
        raise ValueError(
            f"energy_range ({low:g}, {high:g}) holds no channel of the energy axis "
            f"({axis.scale:g}{units} per channel); widen it."
        )
    return shown


def plot_comparison(signals, index=None, energy_range=None, truth=None, labels=None, figsize=(11, 4)):
    """Input, restored and Richardson-Lucy spectra overlaid, linear and log intensity.

    Parameters
    ----------
    signals : EELSpecNetResult or sequence
        The result of ``eelspecnet_deconvolve`` (which keeps its input), or
        ``(input, restored)`` or ``(input, restored, richardson_lucy)`` signals of equal shape.
    index : tuple of int, optional
        Navigation indices (``s.inav`` order) of the pixel to show. For a spectrum image
        without ``index`` the figure shows the mean spectra (NaN channels ignored) beside the
        navigator: the input's total counts per pixel.
    energy_range : (float, float), optional
        Energies shown, ``low < high`` in the energy axis' units; the whole axis by default.
        The intensity limits span every spectrum drawn, inside this range (the log panel at
        most :data:`LOG_DECADES` decades below their maximum).
    truth : EELSSpectrum, optional
        A known ground truth of the same shape (synthetic data), drawn dashed.
    labels : sequence of str, optional
        Legend labels of the signals in ``signals``, in their order, e.g. ``("input",
        "EELSpecNet, fine-tuned", "Richardson-Lucy, vacuum PSF")``; by default "input",
        "EELSpecNet" and "Richardson-Lucy (N it.)". The truth is "ground truth".
    figsize : (float, float)

    Returns
    -------
    matplotlib.figure.Figure
        Axes: [navigator,] linear, log. Each spectrum axis has one line per signal, in the
        order input, restored, Richardson-Lucy, ground truth.

    Raises
    ------
    ValueError
        ``energy_range`` reversed, outside the energy axis, holding no channel of it, or far
        wider than it (e.g. meV on an eV axis); ``labels`` not one per signal.
    """
    from matplotlib.figure import Figure

    signals = (*_as_triple(signals), truth)
    raw = signals[0]
    energy_axis = raw.axes_manager.signal_axes[0]
    shown = _shown_channels(energy_axis, energy_range)  # before anything is drawn
    given = [s is not None for s in signals[:3]]
    if labels is None:
        labels = [_label(s, role) if s is not None else None for s, role in zip(signals, ("input", "restored", "richardson_lucy"))]
    elif len(labels) != sum(given):
        raise ValueError(f"Give one label per signal: {sum(given)} signals, {len(labels)} labels.")
    else:
        labels = iter(labels)
        labels = [next(labels) if g else None for g in given]
    labels = [*labels, "ground truth"]
    if index is not None:
        signals = tuple(None if s is None else s.inav[tuple(index)] for s in signals)
    navigation_dimension = signals[0].axes_manager.navigation_dimension
    figure = Figure(figsize=figsize, layout="constrained")
    n_panels = 2 if navigation_dimension == 0 else 3
    axes = figure.subplots(1, n_panels)
    if navigation_dimension:
        _plot_navigator(axes[0], raw)
        axes = axes[1:]
    energy = energy_axis.axis
    roles = ("input", "restored", "richardson_lucy", "truth")
    in_range = []
    for signal, role, label in zip(signals, roles, labels):
        if signal is None:
            continue
        data = np.asarray(signal.data, dtype=float).reshape(-1, energy.size)
        spectrum = data[0] if data.shape[0] == 1 else finite_mean(data, axis=0)
        style = "--" if role == "truth" else "-"
        for ax in axes:
            ax.plot(energy, spectrum, style, color=COLOURS[role], lw=1.0, label=label)
        in_range.append(spectrum[shown])
    values = np.concatenate(in_range)
    values = values[np.isfinite(values)]
    axes[1].set_yscale("log")
    if values.size:  # the limits of every spectrum drawn, in the energies shown
        top, bottom = float(values.max()), min(float(values.min()), 0.0)
        if top > bottom:
            margin = 0.05 * (top - bottom)
            axes[0].set_ylim(bottom - margin, top + margin)
        positive = values[values > 0]
        if positive.size:  # down to the lowest positive value, at most LOG_DECADES below the top
            axes[1].set_ylim(max(top * 10.0**-LOG_DECADES, 0.5 * float(positive.min())), top * 2.0)
    what = "mean spectrum" if navigation_dimension else "spectrum"
    if index is not None:
        what = f"pixel {tuple(index)}"
    for ax, scale in zip(axes, ("linear", "log")):
        ax.set_xlabel(_axis_label(energy_axis, "Energy"))
        ax.set_ylabel(f"Intensity ({scale})")
        if energy_range is not None:
            ax.set_xlim(*energy_range)
    title = raw.metadata.General.title
    axes[0].set_title(f"{title}: {what}" if title else what[0].upper() + what[1:], fontsize="medium")
    axes[0].legend(fontsize="small")
    return figure


def _extent(axis):
    """imshow extent of a uniform axis: from the first to the last pixel edge."""
    return axis.offset - 0.5 * axis.scale, axis.offset + (axis.size - 0.5) * axis.scale


def _plot_navigator(ax, signal):
    """Total counts per pixel: an image for a spectrum image, a curve for a line scan."""
    total = np.nansum(np.asarray(signal.data, dtype=float), axis=-1)
    navigation_axes = signal.axes_manager.navigation_axes
    if len(navigation_axes) == 2:
        x_axis, y_axis = navigation_axes
        image = ax.imshow(total, extent=(*_extent(x_axis), *_extent(y_axis)[::-1]), cmap="gray")
        ax.figure.colorbar(image, ax=ax, label="Counts")
        ax.set_ylabel(_axis_label(y_axis, "y"))
    else:
        ax.plot(navigation_axes[0].axis, total.ravel(), color="k")
        ax.set_ylabel("Counts")
    ax.set_xlabel(_axis_label(navigation_axes[0], "x"))
    ax.set_title("Navigator: total counts", fontsize="medium")


def plot_interactive_comparison(raw, restored, richardson_lucy=None, **kwargs):
    """HyperSpy plot of ``raw`` with the restored (and RL) spectra of the same pixel overlaid.

    Moving the navigator's cursor updates all lines.

    Parameters
    ----------
    raw, restored, richardson_lucy : EELSSpectrum
        Signals of equal shape; ``richardson_lucy`` may be None.
    **kwargs
        Passed to ``raw.plot`` (e.g. ``norm="log"``).

    Returns
    -------
    matplotlib.figure.Figure
        The spectrum figure.
    """
    from hyperspy.drawing.signal1d import Signal1DLine

    raw.plot(**kwargs)
    signal_plot = raw._plot.signal_plot
    signal_plot.ax_lines[0].set_line_properties(color=COLOURS["input"], type="line")
    signal_plot.ax_lines[0].line.set_label("input")
    for signal, role in ((restored, "restored"), (richardson_lucy, "richardson_lucy")):
        if signal is None:
            continue
        line = Signal1DLine()
        # Lines follow the input's navigator: same navigation shape, so its indices apply.
        line.data_function = signal._get_current_data
        line.set_line_properties(color=COLOURS[role], type="line")
        signal_plot.add_line(line)
        line.plot(norm=kwargs.get("norm", "auto"))
        line.line.set_label(_label(signal, role))
    signal_plot.ax.legend(fontsize="small")
    return signal_plot.figure


def _robust_limits(*images, percentiles=(0.5, 99.5)):
    values = np.concatenate([np.asarray(image, dtype=float).ravel() for image in images])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    return tuple(float(v) for v in np.percentile(values, percentiles))


def plot_maps_side_by_side(raw_maps, restored_maps, truth_maps=None, shared_scale=True,
                           titles=("input", "EELSpecNet", "ground truth"), figsize=None):
    """Energy-filtered maps of the input and of the restoration, one row per window.

    Parameters
    ----------
    raw_maps, restored_maps : Signal2D or Signal1D
        Outputs of :func:`hyperspy_eelspecnet.analysis.energy_filtered_maps` for the same
        windows, names and energy ranges (a line scan's maps are drawn as strips along the
        line).
    truth_maps : Signal2D, optional
        The same maps of a known ground truth (synthetic data), drawn in a third column.
    shared_scale : bool
        One colour scale (and colour bar) per window, from the 0.5-99.5 percentiles of all
        its maps together, so that intensities compare directly. ``False`` scales (and
        labels) each map on its own, which shows the pattern of a weak restored feature
        beside a raw map dominated by the zero-loss tail.
    titles : sequence of str
        Column titles.
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
        Row ``i`` holds the images of window ``i`` (raw, restored[, truth]), then the colour
        bars (one per row when shared, else one per image).

    Raises
    ------
    ValueError
        The maps are not of the same windows (names and energy ranges).
    """
    from matplotlib.figure import Figure

    columns = [raw_maps, restored_maps] + ([] if truth_maps is None else [truth_maps])
    windows = [_windows(maps) for maps in columns]
    names, ranges = zip(*windows[0]) if windows[0] else ((), ())
    if any(other != windows[0] for other in windows[1:]):
        different = next(other for other in windows[1:] if other != windows[0])
        raise ValueError(
            f"All maps must have the same energy windows (names and ranges: energy_filtered_maps with one "
            f"windows dict); got {_describe(windows[0])} and {_describe(different)}."
        )
    units = raw_maps.metadata.get_item("Signal.window_units", "")
    units = f" {units}" if isinstance(units, str) and units else ""
    signal_axes = raw_maps.axes_manager.signal_axes
    line = len(signal_axes) == 1  # a line scan's maps: one strip per window
    shape = (len(names), 1, signal_axes[0].size) if line else (len(names), *raw_maps.data.shape[-2:])
    data = [np.asarray(maps.data, dtype=float).reshape(shape) for maps in columns]
    x_axis, y_axis = (signal_axes[0], None) if line else signal_axes
    extent = (*_extent(x_axis), 0.0, 1.0) if line else (*_extent(x_axis), *_extent(y_axis)[::-1])
    aspect = 0.6 if line else y_axis.size / x_axis.size
    figsize = figsize or (4.5 * len(columns), 1.0 + 4.4 * len(names) * aspect + 1.0 * len(names))
    figure = Figure(figsize=figsize, layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(names), len(columns), sharex=True, sharey=True))
    for row, (name, (low, high)) in enumerate(zip(names, ranges)):
        limits = _robust_limits(*(maps[row] for maps in data))
        for column, (maps, title) in enumerate(zip(data, titles)):
            ax = axes[row, column]
            vmin, vmax = limits if shared_scale else _robust_limits(maps[row])
            image = ax.imshow(
                maps[row], extent=extent, vmin=vmin, vmax=vmax, cmap="inferno", aspect="auto" if line else None
            )
            ax.set_title(f"{title}: {name} ({low:g}-{high:g}{units})", fontsize="medium")
            if not shared_scale:
                figure.colorbar(image, ax=ax, label="Counts")
        if shared_scale:
            figure.colorbar(image, ax=axes[row].tolist(), label="Counts")
    for ax in axes[-1]:
        ax.set_xlabel(_axis_label(x_axis, "x"))
    for ax in axes[:, 0]:
        if line:
            ax.set_yticks([])
        else:
            ax.set_ylabel(_axis_label(y_axis, "y"))
    return figure


def _windows(maps):
    """``[(name, (low, high)), ...]`` of :func:`~hyperspy_eelspecnet.analysis.energy_filtered_maps`."""
    names = maps.metadata.get_item("Signal.window_names", [])
    ranges = maps.metadata.get_item("Signal.window_ranges", [])
    return [(str(name), tuple(float(v) for v in pair)) for name, pair in zip(names, ranges)]


def _describe(windows):
    return ", ".join(f"{name} {low:g}-{high:g}" for name, (low, high) in windows) or "none"


def plot_modal_evolution(raw_profile, restored_profile, truth_profile=None, energy_range=None, mode_energies=None,
                         log_intensity=False, titles=("input", "EELSpecNet", "ground truth"), figsize=None):
    """Energy-vs-position maps of input and restoration side by side (the paper's Fig. 7d).

    Parameters
    ----------
    raw_profile, restored_profile : Signal2D
        Outputs of :func:`hyperspy_eelspecnet.analysis.modal_evolution` along the same line.
    truth_profile : Signal2D, optional
        The same profile of a known ground truth (synthetic data), drawn third.
    energy_range : (float, float), optional
        Energies shown, ``low < high`` in the energy axis' units; the whole axis by default.
        Each panel's colour scale spans the 0.5-99.5 percentiles of its own data in this range
        (the input's is dominated by the zero-loss tail; a shared scale would hide the others).
    mode_energies : dict of str to float, optional
        Labelled dotted lines at these energies, e.g. ``{"Ph": 0.1, "SP1": 0.35}``; those
        outside the energies shown are left out.
    log_intensity : bool
        Logarithmic colour scale, which shows features on the input's zero-loss tail.
    titles : sequence of str
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
        Image axes (raw, restored[, truth]), each followed by its colour bar.

    Raises
    ------
    ValueError
        ``energy_range`` reversed, outside the energy axis, holding no channel of it, or far
        wider than it (e.g. meV on an eV axis).
    """
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure

    profiles = [raw_profile, restored_profile] + ([] if truth_profile is None else [truth_profile])
    figure = Figure(figsize=figsize or (5 * len(profiles), 5), layout="constrained")
    axes = figure.subplots(1, len(profiles), sharey=True)
    for ax, profile, title in zip(axes, profiles, titles):
        position_axis, energy_axis = profile.axes_manager.signal_axes
        energy = energy_axis.axis
        rows = _shown_channels(energy_axis, energy_range)
        data = np.asarray(profile.data, dtype=float)[rows]
        kept = energy[rows]
        extent = (*_extent(position_axis), kept[0] - 0.5 * energy_axis.scale, kept[-1] + 0.5 * energy_axis.scale)
        vmin, vmax = _robust_limits(data[data > 0] if log_intensity else data)
        norm = LogNorm(vmin, vmax) if log_intensity else Normalize(vmin, vmax)
        image = ax.imshow(data, origin="lower", aspect="auto", extent=extent, norm=norm, cmap="inferno")
        figure.colorbar(image, ax=ax, label="Counts")
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(_position_label(position_axis))
        for name, mode_energy in (mode_energies or {}).items():
            if extent[2] <= mode_energy <= extent[3]:  # one outside would stretch the energy axis
                ax.axhline(mode_energy, color="white", lw=0.6, ls=":")
                ax.text(extent[0], mode_energy, f" {name}", color="white", va="bottom", fontsize="small")
    axes[0].set_ylabel(_axis_label(raw_profile.axes_manager.signal_axes[1], "Energy"))
    return figure


def _position_label(axis):
    units = _units(axis)
    return f"Position along the line ({units})" if units else "Position along the line"


def plot_feature_along_line(lines, expected=None, ylabel=None, title=None, figsize=None, tolerance=None, units=None):
    """A feature's energy (or width, area) along a line, one curve per spectrum image.

    Parameters
    ----------
    lines : dict of str to Signal1D
        Label -> output of :func:`hyperspy_eelspecnet.analysis.feature_along_line`, all on
        the same line; labels ``"input"``, ``"EELSpecNet"``, ``"Richardson-Lucy..."`` and
        ``"ground truth"`` get the colours of the other figures (a second curve of one
        colour is dashed).
    expected : float, optional
        A horizontal dotted line, e.g. the true phonon energy.
    ylabel, title : str, optional
    figsize : (float, float), optional
        By default 7 inches wide, and tall enough for the legend below the axes.
    tolerance : float, optional
        With a ``"ground truth"`` line: each other curve's legend gives the share of the
        positions where it lies within this distance of the truth
        (:func:`~hyperspy_eelspecnet.analysis.feature_agreement`). Otherwise a legend gives
        the share of the positions with a feature in the window at all.
    units : str, optional
        The quantity's units (``"eV"`` for energies), given with ``tolerance`` in the legend.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; the legend (``figure.legends[0]``) lies below it, off the curves. Positions
        without a feature in the window are gaps in the curve.
    """
    from matplotlib.figure import Figure

    from .analysis import feature_agreement

    colours = {"input": COLOURS["input"], "eelspecnet": COLOURS["restored"],
               "richardson-lucy": COLOURS["richardson_lucy"], "ground truth": COLOURS["truth"]}
    truth = lines.get("ground truth")
    figure = Figure(figsize=figsize or (7, 3.6 + 0.2 * len(lines)), layout="constrained")
    ax = figure.subplots()
    used = set()
    for label, line in lines.items():
        axis = line.axes_manager.signal_axes[0]
        colour = next((c for key, c in colours.items() if label.lower().startswith(key)), None)
        style = "x--" if colour is not None and colour in used else ".-"
        used.add(colour)
        if tolerance is not None and truth is not None and line is not truth:
            share = feature_agreement(line, truth, tolerance)
            legend = (
                f"{label} (within {tolerance:g}{f' {units}' if units else ''} of the truth "
                f"at {100 * share:.0f} % of positions)"
            )
        else:
            legend = f"{label} (a feature at {100 * np.isfinite(line.data).mean():.0f} % of positions)"
        ax.plot(axis.axis, line.data, style, color=colour, lw=1, ms=4, label=legend)
    if expected is not None:
        ax.axhline(expected, color="grey", ls=":", lw=1)
    first = next(iter(lines.values()))
    ax.set_xlabel(_position_label(first.axes_manager.signal_axes[0]))
    ax.set_ylabel(ylabel or "Feature energy")
    ax.set_title(title or first.metadata.General.title.strip(), fontsize="medium")
    # Below the axes, not on them: inside, it hid most of a curve near the axes' edge.
    figure.legend(loc="outside lower center", fontsize="small")
    return figure
