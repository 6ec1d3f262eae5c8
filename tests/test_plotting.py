"""hyperspy_eelspecnet.plotting and EELSpecNetResult.plot, under the Agg backend."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import exspy
from matplotlib.figure import Figure

from hyperspy_eelspecnet import EELSpecNetResult
from hyperspy_eelspecnet.analysis import energy_filtered_maps, feature_along_line, modal_evolution
from hyperspy_eelspecnet.plotting import (
    COLOURS,
    plot_comparison,
    plot_feature_along_line,
    plot_interactive_comparison,
    plot_maps_side_by_side,
    plot_modal_evolution,
)


def eels(data, title):
    signal = exspy.signals.EELSSpectrum(np.asarray(data, dtype=float))
    for axis, name in zip(signal.axes_manager.navigation_axes, "xy"):
        axis.name, axis.scale, axis.units = name, 5.0, "nm"
    energy = signal.axes_manager.signal_axes[0]
    energy.name, energy.scale, energy.offset, energy.units = "Energy loss", 0.005, -0.5, "eV"
    signal.metadata.General.title = title
    return signal


@pytest.fixture
def triple(gaussian_zlp_spectra):
    """Input, 'restored' and 'RL' spectrum images (3 x 4 pixels, 300 channels), RL with metadata."""
    rng = np.random.default_rng(1)
    raw = gaussian_zlp_spectra(300, 100 + rng.uniform(-1, 1, 12), fwhm=12).reshape(3, 4, 300)
    restored = gaussian_zlp_spectra(300, np.full(12, 100.0), fwhm=3).reshape(3, 4, 300)
    restored[..., 250:] = np.nan  # as outside a model window
    rl = 0.5 * (raw + restored)
    signals = eels(raw, "raw"), eels(restored, "restored"), eels(rl, "rl")
    signals[2].metadata.set_item("Signal.EELSpecNet.richardson_lucy.iterations", 50)
    return signals


def line_data(ax):
    return [line.get_ydata() for line in ax.get_lines()]


def test_single_spectrum_comparison(triple):
    raw, restored, rl = (s.inav[1, 2] for s in triple)
    figure = plot_comparison((raw, restored, rl), energy_range=(-0.2, 0.5))
    assert isinstance(figure, Figure)
    linear, log = figure.axes
    for ax in (linear, log):
        for drawn, signal in zip(line_data(ax), (raw, restored, rl)):
            np.testing.assert_array_equal(drawn, signal.data)
        np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), raw.axes_manager.signal_axes[0].axis)
        assert ax.get_xlim() == (-0.2, 0.5)
    assert linear.get_yscale() == "linear" and log.get_yscale() == "log"
    legend = [text.get_text() for text in linear.get_legend().get_texts()]
    assert legend == ["input", "EELSpecNet", "Richardson-Lucy (50 it.)"]
    assert len(plot_comparison((raw, restored)).axes[0].get_lines()) == 2


def test_pixel_of_a_spectrum_image_and_truth(triple):
    truth = triple[1].deepcopy()
    figure = plot_comparison(triple, index=(3, 1), truth=truth)
    assert len(figure.axes) == 2
    drawn = line_data(figure.axes[0])
    assert len(drawn) == 4
    np.testing.assert_array_equal(drawn[0], triple[0].inav[3, 1].data)
    np.testing.assert_array_equal(drawn[3], truth.inav[3, 1].data)
    assert figure.axes[0].get_lines()[3].get_linestyle() == "--"


def test_spectrum_image_means_and_navigator(triple):
    figure = plot_comparison(EELSpecNetResult(triple[1], triple[2], input=triple[0]))
    navigator, linear, log = figure.axes[:3]
    np.testing.assert_allclose(navigator.get_images()[0].get_array(), triple[0].data.sum(-1))
    drawn = line_data(linear)
    np.testing.assert_allclose(drawn[0], triple[0].data.mean(axis=(0, 1)))
    np.testing.assert_allclose(drawn[1][:250], triple[1].data[..., :250].mean(axis=(0, 1)))
    assert np.isnan(drawn[1][250:]).all()  # NaN channels stay NaN, not zero


def test_result_keeps_input_outside_the_tuple(triple):
    raw, restored, rl = triple
    result = EELSpecNetResult(restored, rl, input=raw)
    first, second = result
    assert first is restored and second is rl and result.input is raw
    assert len(result) == 2 and result == (restored, rl)
    assert EELSpecNetResult(restored, None).input is None
    with pytest.raises(ValueError, match="input"):
        EELSpecNetResult(restored, rl).plot()
    with pytest.raises(ValueError, match="input"):
        plot_comparison(EELSpecNetResult(restored, rl))


def test_result_plot_single_spectrum_is_static(triple):
    raw, restored, rl = (s.inav[0, 0] for s in triple)
    figure = EELSpecNetResult(restored, rl, input=raw).plot(energy_range=(-0.1, 0.1))
    assert isinstance(figure, Figure) and len(figure.axes) == 2


def test_result_plot_spectrum_image_follows_the_navigator(triple):
    raw, restored, rl = triple
    figure = EELSpecNetResult(restored, rl, input=raw).plot()
    try:
        ax = raw._plot.signal_plot.ax
        assert figure is ax.figure
        assert [line.get_label() for line in ax.get_lines()] == ["input", "EELSpecNet", "Richardson-Lucy (50 it.)"]
        raw.axes_manager.indices = (2, 1)
        for drawn, signal in zip(line_data(ax), triple):
            np.testing.assert_array_equal(drawn, signal.inav[2, 1].data)
    finally:
        raw._plot.close()


def test_interactive_comparison_without_rl(triple):
    raw, restored, _ = triple
    plot_interactive_comparison(raw, restored)
    try:
        assert len(raw._plot.signal_plot.ax.get_lines()) == 2
    finally:
        raw._plot.close()


WINDOWS = {"ZLP": (-0.02, 0.02), "loss": (0.1, 0.4)}


@pytest.mark.parametrize("shared_scale", [True, False])
def test_maps_side_by_side(triple, shared_scale):
    raw_maps, restored_maps, truth_maps = (energy_filtered_maps(s, WINDOWS) for s in triple)
    figure = plot_maps_side_by_side(raw_maps, restored_maps, shared_scale=shared_scale)
    images = [ax.get_images()[0] for ax in figure.axes if ax.get_images()]
    assert len(images) == 4  # 2 windows x (raw, restored)
    assert len(figure.axes) == 4 + (2 if shared_scale else 4)  # colour bars
    for row in range(2):
        left, right = images[2 * row], images[2 * row + 1]
        np.testing.assert_allclose(left.get_array(), raw_maps.data[row])
        np.testing.assert_allclose(right.get_array(), restored_maps.data[row])
        assert (left.get_clim() == right.get_clim()) == shared_scale
    three = plot_maps_side_by_side(raw_maps, restored_maps, truth_maps)
    assert sum(bool(ax.get_images()) for ax in three.axes) == 6


def test_maps_side_by_side_needs_the_same_windows(triple):
    with pytest.raises(ValueError, match="same energy windows"):
        plot_maps_side_by_side(energy_filtered_maps(triple[0], WINDOWS), energy_filtered_maps(triple[1], {"a": (0, 1)}))


def test_modal_evolution_side_by_side(triple):
    profiles = [modal_evolution(s, (0.0, 5.0), (15.0, 5.0), width=3) for s in triple[:2]]
    figure = plot_modal_evolution(*profiles, energy_range=(-0.1, 0.2), mode_energies={"ZLP": 0.0}, log_intensity=True)
    images = [ax.get_images()[0] for ax in figure.axes if ax.get_images()]
    assert len(images) == 2 and len(figure.axes) == 4  # two images, two colour bars
    energy = profiles[0].axes_manager.signal_axes[1].axis
    rows = (energy >= -0.1) & (energy <= 0.2)
    for image, profile in zip(images, profiles):
        np.testing.assert_allclose(image.get_array().filled(np.nan), profile.data[rows])
        left, right, bottom, top = image.get_extent()
        assert (left, right) == (-2.5, 17.5)  # 4 positions, 5 nm apart, pixel edges
        assert bottom == pytest.approx(energy[rows][0] - 0.0025) and top == pytest.approx(energy[rows][-1] + 0.0025)
    assert figure.axes[0].texts[0].get_text().strip() == "ZLP"
    assert len(plot_modal_evolution(*profiles, profiles[1]).axes) == 6
    with pytest.raises(ValueError, match="lies outside the energy axis"):  # e.g. meV on an eV axis
        plot_modal_evolution(*profiles, energy_range=(20.0, 50.0))


def test_line_scan_maps_drawn_as_strips(triple):
    line = triple[0].inav[:, 2]  # a line scan: one navigation axis
    maps = energy_filtered_maps(line, WINDOWS)
    figure = plot_maps_side_by_side(maps, maps, shared_scale=False)
    images = [ax.get_images()[0] for ax in figure.axes if ax.get_images()]
    assert len(images) == 2 * len(WINDOWS)
    np.testing.assert_allclose(images[0].get_array().filled(np.nan), maps.data[:1])


def test_feature_along_line_curves(triple):
    # Lines as feature_along_line returns them (4 positions, 5 nm apart), values set by hand;
    # NaN where no feature was found.
    profiles = [modal_evolution(s, (0.0, 5.0), (15.0, 5.0), width=1) for s in triple[:2]]
    lines = {"input": feature_along_line(profiles[0], (0.3, 0.4)),
             "EELSpecNet": feature_along_line(profiles[1], (0.3, 0.4))}
    lines["input"].data[:] = [0.31, np.nan, 0.32, 0.33]
    lines["EELSpecNet"].data[:] = [0.315, 0.318, np.nan, np.nan]
    figure = plot_feature_along_line(lines, expected=0.32, ylabel="Phonon energy (eV)")
    ax = figure.axes[0]
    curves, expected = ax.get_lines()[:2], ax.get_lines()[2]
    for curve, line, colour in zip(curves, lines.values(), (COLOURS["input"], COLOURS["restored"])):
        np.testing.assert_array_equal(curve.get_xdata(), [0.0, 5.0, 10.0, 15.0])
        np.testing.assert_array_equal(curve.get_ydata(), line.data)
        assert curve.get_color() == colour
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [
        "input (a feature at 75 % of positions)", "EELSpecNet (a feature at 50 % of positions)",
    ]
    assert expected.get_ydata()[0] == 0.32 and ax.get_ylabel() == "Phonon energy (eV)"
    assert ax.get_xlabel() == "Position along the line (nm)"

    # Against a truth: the legends count the positions within the tolerance of it, and a
    # second curve of one colour is dashed.
    lines["EELSpecNet, blind"] = lines["EELSpecNet"].deepcopy()
    lines["EELSpecNet, blind"].data[:] = [0.33, 0.32, 0.32, np.nan]
    lines["ground truth"] = lines["input"].deepcopy()
    lines["ground truth"].data[:] = [0.32, 0.32, np.nan, 0.32]
    figure = plot_feature_along_line(lines, tolerance=0.006, units="eV")
    ax = figure.axes[0]
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [
        "input (within 0.006 eV of the truth at 0 % of positions)",
        "EELSpecNet (within 0.006 eV of the truth at 67 % of positions)",
        "EELSpecNet, blind (within 0.006 eV of the truth at 33 % of positions)",
        "ground truth (a feature at 75 % of positions)",
    ]
    tuned, blind = ax.get_lines()[1:3]
    assert tuned.get_color() == blind.get_color() == COLOURS["restored"]
    assert (tuned.get_linestyle(), blind.get_linestyle()) == ("-", "--")


def test_eelspecnet_deconvolve_result_knows_its_input(identity_model, gaussian_zlp_spectra):
    signal = eels(gaussian_zlp_spectra(400, np.full(4, 120.0), fwhm=12).reshape(2, 2, 400), "synthetic")
    result = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=5)
    restored, rl = result
    assert result.input is signal
    figure = result.plot()
    try:
        assert len(figure.axes[0].get_lines()) == 3
    finally:
        signal._plot.close()


def test_comparison_intensity_limits_span_every_spectrum_in_the_range(triple):
    raw, restored, rl = (s.inav[1, 2] for s in triple)
    truth = restored.deepcopy()
    truth.data *= 1.2  # the tallest peak: not the input's
    linear, log = plot_comparison((raw, restored, rl), truth=truth).axes
    tallest = np.nanmax(truth.data)
    assert log.get_ylim()[1] >= tallest > 2 * np.nanmax(raw.data)  # was 2 x the input's: truth off the top
    assert linear.get_ylim()[1] >= tallest
    # Away from the ZLP: the limits of what is drawn there, not of the ZLP outside the range.
    linear, log = plot_comparison((raw, restored, rl), truth=truth, energy_range=(0.2, 0.7)).axes
    energy = raw.axes_manager.signal_axes[0].axis
    inside = (energy >= 0.2) & (energy <= 0.7)
    highest = max(np.nanmax(s.data[inside]) for s in (raw, restored, rl, truth))
    assert highest <= linear.get_ylim()[1] <= 1.2 * highest
    assert highest <= log.get_ylim()[1] <= 3 * highest
    lowest = min(np.nanmin(s.data[inside]) for s in (raw, restored, rl, truth))
    assert 0.1 * lowest <= log.get_ylim()[0] <= lowest  # not six decades of nothing below the spectra


@pytest.mark.parametrize(
    "energy_range, message",
    [((20.0, 50.0), "lies outside the energy axis"),  # meV on an eV axis
     ((-300.0, 1400.0), "times as wide as the energy axis"),  # meV on an eV axis, around it
     ((0.5, -0.2), "reversed"),
     ((0.1001, 0.1002), "holds no channel")],
)
def test_comparison_refuses_an_energy_range_off_the_axis(triple, energy_range, message):
    with pytest.raises(ValueError, match=message) as error:
        plot_comparison(triple, index=(1, 2), energy_range=energy_range)
    assert "\n" not in str(error.value)


def test_modal_evolution_refuses_a_reversed_range_as_reversed(triple):
    profiles = [modal_evolution(s, (0.0, 5.0), (15.0, 5.0), width=3) for s in triple[:2]]
    with pytest.raises(ValueError, match=r"energy_range \(0.2, -0.1\) is reversed.*low < high"):
        plot_modal_evolution(*profiles, energy_range=(0.2, -0.1))


def test_modal_evolution_mode_lines_outside_the_range_leave_the_energy_axis_alone(triple):
    profiles = [modal_evolution(s, (0.0, 5.0), (15.0, 5.0), width=3) for s in triple[:2]]
    figure = plot_modal_evolution(*profiles, energy_range=(-0.1, 0.2), mode_energies={"ZLP": 0.0, "far": 0.8})
    image_axes = [ax for ax in figure.axes if ax.get_images()]
    for ax in image_axes:
        bottom, top = ax.get_images()[0].get_extent()[2:]
        assert ax.get_ylim() == pytest.approx((bottom, top))  # not stretched to 0.8 eV
        assert [text.get_text().strip() for text in ax.texts] == ["ZLP"]


def test_comparison_labels_name_the_restorations(triple):
    labels = ("input", "EELSpecNet, fine-tuned", "Richardson-Lucy, vacuum PSF")
    figure = plot_comparison(triple, index=(1, 2), labels=labels, truth=triple[1])
    assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == [*labels, "ground truth"]
    with pytest.raises(ValueError, match="one label per signal: 3 signals, 2 labels"):
        plot_comparison(triple, labels=labels[:2])


def test_maps_of_one_window_name_at_other_energies_are_refused(triple):
    ph = energy_filtered_maps(triple[0], {"Ph": (0.05, 0.1)})
    elsewhere = energy_filtered_maps(triple[1], {"Ph": (0.1, 0.15)})
    with pytest.raises(ValueError, match=r"same energy windows.*Ph 0.05-0.1 and Ph 0.1-0.15"):
        plot_maps_side_by_side(ph, elsewhere)


def test_legend_along_the_line_hides_no_curve(triple):
    profiles = [modal_evolution(s, (0.0, 5.0), (15.0, 5.0), width=1) for s in triple[:2]]
    lines = {label: feature_along_line(profiles[0], (0.3, 0.4)) for label in ("input", "EELSpecNet", "ground truth")}
    for k, line in enumerate(lines.values()):
        line.data[:] = [0.3, 0.31, 0.32, 0.33 + 0.01 * k]
    figure = plot_feature_along_line(lines, tolerance=0.006)
    figure.draw_without_rendering()  # lays it out
    legend = (figure.legends or [figure.axes[0].get_legend()])[0].get_window_extent()
    ax = figure.axes[0].get_window_extent()
    assert legend.y1 < ax.y0  # below the axes, not over the curves


def uncalibrated(signal):
    """The same data with no axis names, units or title (a raw array given to HyperSpy)."""
    out = exspy.signals.EELSSpectrum(np.asarray(signal.data))
    out.axes_manager.signal_axes[0].offset = -100.0  # the ZLP at 0, in channels
    return out


def test_uncalibrated_axes_get_plain_labels_and_a_title(triple):
    raw, restored = (uncalibrated(s) for s in triple[:2])
    texts = []
    for figure in (plot_comparison((raw, restored), index=(1, 2)), plot_comparison((raw, restored))):
        texts += [text for ax in figure.axes for text in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title())]
    assert plot_comparison((raw, restored), index=(1, 2)).axes[0].get_title() == "Pixel (1, 2)"
    assert plot_comparison((raw, restored)).axes[1].get_xlabel() == "Energy"
    maps = [energy_filtered_maps(s, {"loss": (20.0, 60.0)}) for s in (raw, restored)]
    figure = plot_maps_side_by_side(*maps)
    assert figure.axes[0].get_title() == "input: loss (20-60)"
    texts += [text for ax in figure.axes for text in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title())]
    profiles = [modal_evolution(s, (0.0, 1.0), (3.0, 1.0), width=1) for s in (raw, restored)]
    figure = plot_modal_evolution(*profiles, energy_range=(-20.0, 60.0))
    assert figure.axes[0].get_xlabel() == "Position along the line"
    texts += [text for ax in figure.axes for text in (ax.get_xlabel(), ax.get_ylabel())]
    figure = plot_feature_along_line({"input": feature_along_line(profiles[0], (20.0, 60.0))})
    texts += [figure.axes[0].get_xlabel()]
    assert texts and not [text for text in texts if "undefined" in text or text.startswith(":")]
