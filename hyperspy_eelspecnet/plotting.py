"""Figures comparing input, EELSpecNet restoration and Richardson-Lucy deconvolution.

Static figures are plain matplotlib (they work with the Agg backend) and return the
:class:`matplotlib.figure.Figure`; :func:`plot_interactive_comparison` uses HyperSpy's
navigator to browse a spectrum image.
"""

from __future__ import annotations

import numpy as np

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
#: The log panels show this many decades below the input's maximum.
LOG_DECADES = 6


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


def _axis_label(axis):
    return f"{axis.name} ({axis.units})" if axis.units else str(axis.name)


def plot_comparison(signals, index=None, energy_range=None, truth=None, figsize=(11, 4)):
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
        Energy-axis limits; the whole axis by default.
    truth : EELSSpectrum, optional
        A known ground truth of the same shape (synthetic data), drawn dashed.
    figsize : (float, float)

    Returns
    -------
    matplotlib.figure.Figure
        Axes: [navigator,] linear, log. Each spectrum axis has one line per signal, in the
        order input, restored, Richardson-Lucy, ground truth.
    """
    from matplotlib.figure import Figure

    signals = (*_as_triple(signals), truth)
    raw = signals[0]
    if index is not None:
        signals = tuple(None if s is None else s.inav[tuple(index)] for s in signals)
    navigation_dimension = signals[0].axes_manager.navigation_dimension
    figure = Figure(figsize=figsize, layout="constrained")
    n_panels = 2 if navigation_dimension == 0 else 3
    axes = figure.subplots(1, n_panels)
    if navigation_dimension:
        _plot_navigator(axes[0], raw)
        axes = axes[1:]
    energy_axis = raw.axes_manager.signal_axes[0]
    energy = energy_axis.axis
    roles = ("input", "restored", "richardson_lucy", "truth")
    for signal, role in zip(signals, roles):
        if signal is None:
            continue
        data = np.asarray(signal.data, dtype=float).reshape(-1, energy.size)
        spectrum = data[0] if data.shape[0] == 1 else finite_mean(data, axis=0)
        style = "--" if role == "truth" else "-"
        for ax in axes:
            ax.plot(energy, spectrum, style, color=COLOURS[role], lw=1.0, label=_label(signal, role))
    peak = float(np.nanmax(signals[0].data))
    axes[1].set_yscale("log")
    axes[1].set_ylim(peak * 10.0**-LOG_DECADES, peak * 2.0)
    what = "mean spectrum" if navigation_dimension else "spectrum"
    if index is not None:
        what = f"pixel {tuple(index)}"
    for ax, scale in zip(axes, ("linear", "log")):
        ax.set_xlabel(_axis_label(energy_axis))
        ax.set_ylabel(f"Intensity ({scale})")
        if energy_range is not None:
            ax.set_xlim(*energy_range)
    axes[0].set_title(f"{raw.metadata.General.title}: {what}", fontsize="medium")
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
        ax.set_ylabel(_axis_label(y_axis))
    else:
        ax.plot(navigation_axes[0].axis, total.ravel(), color="k")
        ax.set_ylabel("Counts")
    ax.set_xlabel(_axis_label(navigation_axes[0]))
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
        windows (a line scan's maps are drawn as strips along the line).
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
    """
    from matplotlib.figure import Figure

    names = raw_maps.metadata.get_item("Signal.window_names")
    ranges = raw_maps.metadata.get_item("Signal.window_ranges")
    units = raw_maps.metadata.get_item("Signal.window_units", "")
    columns = [raw_maps, restored_maps] + ([] if truth_maps is None else [truth_maps])
    if any(maps.metadata.get_item("Signal.window_names") != names for maps in columns):
        raise ValueError("All maps must have the same energy windows (energy_filtered_maps with one windows dict).")
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
            ax.set_title(f"{title}: {name} ({low:g}-{high:g} {units})", fontsize="medium")
            if not shared_scale:
                figure.colorbar(image, ax=ax, label="Counts")
        if shared_scale:
            figure.colorbar(image, ax=axes[row].tolist(), label="Counts")
    for ax in axes[-1]:
        ax.set_xlabel(_axis_label(x_axis))
    for ax in axes[:, 0]:
        if line:
            ax.set_yticks([])
        else:
            ax.set_ylabel(_axis_label(y_axis))
    return figure


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
        Energies shown; the whole axis by default. Each panel's colour scale spans the
        0.5-99.5 percentiles of its own data in this range (the input's is dominated by the
        zero-loss tail; a shared scale would hide the others).
    mode_energies : dict of str to float, optional
        Labelled dotted lines at these energies, e.g. ``{"Ph": 0.1, "SP1": 0.35}``.
    log_intensity : bool
        Logarithmic colour scale, which shows features on the input's zero-loss tail.
    titles : sequence of str
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
        Image axes (raw, restored[, truth]), each followed by its colour bar.
    """
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure

    profiles = [raw_profile, restored_profile] + ([] if truth_profile is None else [truth_profile])
    figure = Figure(figsize=figsize or (5 * len(profiles), 5), layout="constrained")
    axes = figure.subplots(1, len(profiles), sharey=True)
    for ax, profile, title in zip(axes, profiles, titles):
        position_axis, energy_axis = profile.axes_manager.signal_axes
        energy = energy_axis.axis
        rows = np.ones(energy.size, bool)
        if energy_range is not None:
            rows = (energy >= energy_range[0]) & (energy <= energy_range[1])
            if not rows.any():
                raise ValueError(
                    f"energy_range {tuple(energy_range)} holds no channel of the profile's energy axis "
                    f"({energy[0]:g} to {energy[-1]:g} {energy_axis.units}); give it in the axis' units."
                )
        data = np.asarray(profile.data, dtype=float)[rows]
        kept = energy[rows]
        extent = (*_extent(position_axis), kept[0] - 0.5 * energy_axis.scale, kept[-1] + 0.5 * energy_axis.scale)
        vmin, vmax = _robust_limits(data[data > 0] if log_intensity else data)
        norm = LogNorm(vmin, vmax) if log_intensity else Normalize(vmin, vmax)
        image = ax.imshow(data, origin="lower", aspect="auto", extent=extent, norm=norm, cmap="inferno")
        figure.colorbar(image, ax=ax, label="Counts")
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(f"Position along the line ({position_axis.units})")
        for name, mode_energy in (mode_energies or {}).items():
            ax.axhline(mode_energy, color="white", lw=0.6, ls=":")
            ax.text(extent[0], mode_energy, f" {name}", color="white", va="bottom", fontsize="small")
    axes[0].set_ylabel(_axis_label(raw_profile.axes_manager.signal_axes[1]))
    return figure


def plot_feature_along_line(lines, expected=None, ylabel=None, title=None, figsize=(7, 4), tolerance=None):
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
    figsize : (float, float)
    tolerance : float, optional
        With a ``"ground truth"`` line: each other curve's legend gives the share of the
        positions where it lies within this distance of the truth
        (:func:`~hyperspy_eelspecnet.analysis.feature_agreement`). Otherwise a legend gives
        the share of the positions with a feature in the window at all.

    Returns
    -------
    matplotlib.figure.Figure
        Positions without a feature in the window are gaps in the curve.
    """
    from matplotlib.figure import Figure

    from .analysis import feature_agreement

    colours = {"input": COLOURS["input"], "eelspecnet": COLOURS["restored"],
               "richardson-lucy": COLOURS["richardson_lucy"], "ground truth": COLOURS["truth"]}
    truth = lines.get("ground truth")
    figure = Figure(figsize=figsize, layout="constrained")
    ax = figure.subplots()
    used = set()
    for label, line in lines.items():
        axis = line.axes_manager.signal_axes[0]
        colour = next((c for key, c in colours.items() if label.lower().startswith(key)), None)
        style = "x--" if colour is not None and colour in used else ".-"
        used.add(colour)
        if tolerance is not None and truth is not None and line is not truth:
            share = feature_agreement(line, truth, tolerance)
            legend = f"{label} (within {tolerance:g} of the truth at {100 * share:.0f} % of positions)"
        else:
            legend = f"{label} (a feature at {100 * np.isfinite(line.data).mean():.0f} % of positions)"
        ax.plot(axis.axis, line.data, style, color=colour, lw=1, ms=4, label=legend)
    if expected is not None:
        ax.axhline(expected, color="grey", ls=":", lw=1)
    first = next(iter(lines.values()))
    ax.set_xlabel(f"Position along the line ({first.axes_manager.signal_axes[0].units})")
    ax.set_ylabel(ylabel or "Feature energy")
    ax.set_title(title or first.metadata.General.title, fontsize="medium")
    ax.legend(fontsize="small")
    return figure
