"""The bundled example end to end: ``eelspecnet demo [--instrument]``.

The synthetic silver nanowire of :func:`hyperspy_eelspecnet.data.silver_nanowire` (the
reference work's Figs. 7-8) is restored blind with a model (the bundled one by default) and by
Richardson-Lucy; with ``instrument=True`` the model is first fine-tuned on the microscope's
vacuum reference (:func:`hyperspy_eelspecnet.data.silver_nanowire_vacuum`), and Richardson-Lucy
uses that vacuum spectrum as its PSF. Every result is saved, drawn, and scored against the
ground truth on the phonon under the ZLP tail (:func:`phonon_figures`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .analysis import energy_filtered_maps, feature_agreement, feature_along_line, feature_map, modal_evolution
from .data._silver_nanowire import KT_EV
from .features import find_loss_features, strongest_in_window
from .io import folder_problem
from .training.generator import BOLTZMANN_EV_PER_K

__all__ = ["run_demo", "phonon_figures", "DEMO_WINDOWS", "PHONON_TOLERANCE_CHANNELS"]

#: Energy windows (eV) of the demo's energy-filtered maps: the SiN phonon and the SP modes.
DEMO_WINDOWS = {"Ph": (0.07, 0.13), "SP1": (0.30, 0.40), "SP2": (0.57, 0.67), "SP3": (0.80, 0.92), "SP4": (1.02, 1.14)}
#: Energies shown in the demo's figures (eV).
DEMO_ENERGY_RANGE = (-0.3, 1.4)
#: A restored phonon is found where its maximum lies within this many channels of the truth's.
PHONON_TOLERANCE_CHANNELS = 1.5
#: Pixels averaged across the wire for its profile (the paper's 7 x 7 pixel averages).
PROFILE_WIDTH = 7
#: The temperature of the demo's gain side (detailed balance), K.
SIMULATED_TEMPERATURE_K = KT_EV / BOLTZMANN_EV_PER_K


def _wire_line(signal):
    """Start and end (navigation units) of the line along the wire, through its pixel row."""
    ground_truth = signal.metadata.Sample.ground_truth
    x_axis, y_axis = signal.axes_manager.navigation_axes
    row = y_axis.value2index(ground_truth.wire.start_nm[1])
    return (x_axis.low_value, y_axis.axis[row]), (x_axis.high_value, y_axis.axis[row])


def phonon_figures(restored, truth, window=DEMO_WINDOWS["Ph"]) -> dict:
    """How well a restoration of the demo shows its phonon, against the ground truth.

    Parameters
    ----------
    restored : EELSSpectrum or dict of EELSSpectrum
        A restoration of :func:`~hyperspy_eelspecnet.data.silver_nanowire`, or several by label
        (the truth's profile, maps and pixels are then computed once for all of them).
    truth : EELSSpectrum
        Its ground truth.
    window : (float, float)
        The phonon's energy window, eV.

    Returns
    -------
    dict
        ``found_along_wire``: share of the positions along the wire (7-pixel profiles) whose
        strongest feature in the window lies within :data:`PHONON_TOLERANCE_CHANNELS` of the
        truth's; ``found_in_membrane``: the same pixel by pixel, over the membrane outside the
        hole (the wire's own pixels, where the surface plasmons are strongest, are a few of
        them); ``false_in_hole``: share of the pixels of the hole in the membrane (no phonon)
        showing a feature in the window; ``map_correlation``: Pearson correlation of the
        window's energy-filtered map with the truth's; ``sp_map_correlation``: the same for
        SP1-SP4; ``gain_loss_ratio`` and ``temperature_K``: the restored intensity in the
        mirrored window on the energy-gain side over that in the window, averaged over the
        membrane, and the temperature detailed balance gives for it at the window's centre.
        For a dict of restorations, a dict of these by label.
    """
    start, end = _wire_line(truth)
    windows = {name: DEMO_WINDOWS[name] for name in ("SP1", "SP2", "SP3", "SP4")} | {"Ph": window}
    hole = np.asarray(truth.metadata.Sample.ground_truth.hole_map, bool)
    energy = truth.axes_manager.signal_axes[0].axis
    tolerance = PHONON_TOLERANCE_CHANNELS * truth.axes_manager.signal_axes[0].scale

    def parts(s):
        """The wire's profile, the membrane's pixels and the energy-filtered maps of one signal."""
        line = feature_along_line(modal_evolution(s, start, end, width=PROFILE_WIDTH), window).data
        return line, feature_map(s, window).data[~hole], energy_filtered_maps(s, windows).data

    true_line, true_pixels, true_maps = parts(truth)

    def score(s):
        line, pixels, maps = parts(s)
        table = find_loss_features(np.asarray(s.data)[hole], energy)
        correlation = {
            name: float(np.corrcoef(maps[k].ravel(), true_maps[k].ravel())[0, 1]) for k, name in enumerate(windows)
        }
        low, high = window
        data = np.asarray(s.data)[~hole]
        loss = data[:, (energy >= low) & (energy <= high)].sum()
        gain = data[:, (energy >= -high) & (energy <= -low)].sum()
        ratio = gain / loss if loss > 0 else np.nan
        centre = 0.5 * (low + high)
        temperature = centre / (BOLTZMANN_EV_PER_K * np.log(1.0 / ratio)) if 0 < ratio < 1 else np.nan
        return {
            "found_along_wire": feature_agreement(line, true_line, tolerance),
            "found_in_membrane": feature_agreement(pixels, true_pixels, tolerance),
            "false_in_hole": float(np.isfinite(strongest_in_window(table, window)).mean()),
            "map_correlation": correlation.pop("Ph"),
            "sp_map_correlation": correlation,
            "gain_loss_ratio": float(ratio),
            "temperature_K": float(temperature),
        }

    if isinstance(restored, dict):
        return {label: score(s) for label, s in restored.items()}
    return score(restored)


def _check_output_folder(out) -> Path:
    """``out`` as a Path, if it is a folder that can be written or made; ValueError if not.

    Nothing is created: the first existing folder on the way must exist as a folder and
    allow writing.
    """
    out = Path(out)
    problem = folder_problem(out)
    if problem is None:
        return out
    kind, where = problem
    raise ValueError({
        "file": f"Output folder {out} is an existing file; give the path of a folder (existing or new).",
        "under_file": f"Output folder {out} cannot be made: {where} is a file; give a path under a folder.",
        "no_write": f"Output folder {out} cannot be written: {where} does not allow writing; give a folder you can write to.",
    }[kind])


def run_demo(
    out, model=None, instrument: bool = False, minutes: float | None = None, verbose: bool = True,
    show_progressbar: bool | None = None,
) -> dict:
    """Restore the synthetic nanowire, save the signals and figures, score the phonon.

    Parameters
    ----------
    out : path
        Output folder.
    model : path, optional
        Model restoring blind (default: the bundled one), and the start of the fine-tune.
    instrument : bool
        Also fine-tune ``model`` on the demo's vacuum reference (``out/finetuned/``), restore
        with it, and compare with Richardson-Lucy using the vacuum spectrum as its PSF.
    minutes : float, optional
        The fine-tune's wall-clock budget (default
        :data:`~hyperspy_eelspecnet.training.finetuning.FINETUNE_MINUTES`).
    verbose : bool
        Print where each file goes and the phonon figures.
    show_progressbar : bool, optional
        dask's progress bars for the restorations (default: HyperSpy's preference).

    Returns
    -------
    dict
        ``files`` (what -> path) and ``phonon`` (method -> :func:`phonon_figures`).

    Raises
    ------
    FileNotFoundError, ValueError
        ``model`` is missing or not a model, ``minutes`` is given without ``instrument``, or
        ``out`` is a file, lies under a file or cannot be written; checked before anything is
        computed or written.
    """
    from .data import silver_nanowire, silver_nanowire_vacuum
    from .plotting import plot_comparison, plot_feature_along_line, plot_maps_side_by_side, plot_modal_evolution
    from .restoration import EELSpecNetDeconvolution

    if minutes is not None and not instrument:
        raise ValueError(
            "minutes (--minutes) is the budget of the fine-tune on the vacuum reference and applies only "
            "with instrument=True (--instrument); add that or leave minutes out."
        )
    out = _check_output_folder(out)
    EELSpecNetDeconvolution(model)  # a missing or broken model is refused before anything is written
    say = print if verbose else (lambda *args, **kwargs: None)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # e.g. a read-only file system
        raise ValueError(f"Output folder {out} cannot be made ({error.strerror}); give a folder you can write to.") from None
    signal, truth = silver_nanowire(return_ground_truth=True)
    files = {}

    def save(name, what, spectra):
        spectra.save(out / name, overwrite=True)
        files[what] = out / name
        say(f"{what}: {out / name}")

    save("silver_nanowire.hspy", "input (synthetic)", signal)
    save("silver_nanowire_truth.hspy", "ground truth", truth)
    restored, rl = signal.eelspecnet_deconvolve(model=model, rl_iterations=50, show_progressbar=show_progressbar)
    save("silver_nanowire_eelspecnet.hspy", "EELSpecNet restoration", restored)
    save("silver_nanowire_richardson_lucy.hspy", "Richardson-Lucy deconvolution (50 iterations)", rl)
    results = {"EELSpecNet": restored, "Richardson-Lucy (50 it.)": rl}
    if instrument:
        from .training.finetuning import FINETUNE_MINUTES, finetune

        vacuum = silver_nanowire_vacuum()
        save("silver_nanowire_vacuum.hspy", "vacuum reference (synthetic)", vacuum)
        say(f"Fine-tuning on the vacuum reference into {out / 'finetuned'}:")
        tuned = finetune(
            files["vacuum reference (synthetic)"], out / "finetuned", specimen=files["input (synthetic)"],
            model=model, minutes=FINETUNE_MINUTES if minutes is None else minutes, verbose=int(verbose),
        )
        restored_tuned, rl_vacuum = signal.eelspecnet_deconvolve(
            model=tuned, rl_iterations=50, psf=vacuum, show_progressbar=show_progressbar
        )
        save("silver_nanowire_eelspecnet_finetuned.hspy", "EELSpecNet restoration, fine-tuned on the vacuum", restored_tuned)
        save("silver_nanowire_richardson_lucy_vacuum.hspy", "Richardson-Lucy with the vacuum PSF (50 iterations)", rl_vacuum)
        results = {
            "EELSpecNet, fine-tuned": restored_tuned,
            "EELSpecNet, blind": restored,
            "Richardson-Lucy, vacuum PSF": rl_vacuum,
            "Richardson-Lucy, own ZLP": rl,
        }
    # What the single pixel and the maps show: the first restoration and the Richardson-Lucy
    # of the same knowledge (its own ZLP blind; the vacuum PSF with --instrument).
    best_label = next(iter(results))
    best = results[best_label]
    rl_label = next(label for label in results if label.startswith("Richardson-Lucy"))

    ground_truth = signal.metadata.Sample.ground_truth
    start, end = _wire_line(signal)
    profiles = {label: modal_evolution(s, start, end, width=PROFILE_WIDTH) for label, s in results.items()}
    truth_profile = modal_evolution(truth, start, end, width=PROFILE_WIDTH)
    input_profile = modal_evolution(signal, start, end, width=PROFILE_WIDTH)
    x_axis, y_axis = signal.axes_manager.navigation_axes
    tip = (x_axis.value2index(ground_truth.wire.start_nm[0]), y_axis.value2index(ground_truth.wire.start_nm[1]))
    phonon_windows = {"Ph": DEMO_WINDOWS["Ph"], "SP1": DEMO_WINDOWS["SP1"]}
    figures = {
        "modal_evolution.png": (
            "modal evolution along the wire (input, restored, truth)",
            plot_modal_evolution(
                input_profile, profiles[best_label], truth_profile,
                energy_range=(0.03, DEMO_ENERGY_RANGE[1]),
                mode_energies=ground_truth.mode_energies_eV.as_dictionary(), log_intensity=True,
                titles=("input", best_label, "ground truth"),
            ),
        ),
        # Own colour scales: the raw phonon window is ~100 times brighter (zero-loss tail) and
        # would leave the restored map black on a shared scale.
        "energy_filtered_maps.png": (
            "Ph and SP1 energy-filtered maps (input, restored, truth)",
            plot_maps_side_by_side(
                *(energy_filtered_maps(s, phonon_windows) for s in (signal, best, truth)), shared_scale=False,
                titles=("input", best_label, "ground truth"),
            ),
        ),
        "phonon_along_wire.png": (
            "phonon energy along the wire (7-pixel averages)",
            plot_feature_along_line(
                {
                    "input": feature_along_line(input_profile, DEMO_WINDOWS["Ph"]),
                    **{label: feature_along_line(p, DEMO_WINDOWS["Ph"]) for label, p in profiles.items()},
                    "ground truth": feature_along_line(truth_profile, DEMO_WINDOWS["Ph"]),
                },
                expected=ground_truth.mode_energies_eV.Ph,
                tolerance=PHONON_TOLERANCE_CHANNELS * signal.axes_manager.signal_axes[0].scale,
                units=signal.axes_manager.signal_axes[0].units,
                ylabel="Phonon energy (eV)",
                title=f"Strongest feature in {DEMO_WINDOWS['Ph'][0]:g}-{DEMO_WINDOWS['Ph'][1]:g} eV along the wire",
            ),
        ),
        "single_pixel.png": (
            f"spectra at the wire tip, pixel {tip}",
            plot_comparison(
                (signal, best, results[rl_label]), index=tip, energy_range=DEMO_ENERGY_RANGE, truth=truth,
                labels=("input", best_label, rl_label),
            ),
        ),
    }
    for name, (what, figure) in figures.items():
        figure.savefig(out / name, dpi=120)
        files[what] = out / name
        say(f"{what}: {out / name}")

    phonon = phonon_figures({**results, "ground truth": truth}, truth)
    # The same estimate on the truth itself is what a restoration can reach: the estimator's own
    # bias puts it ~9 K above the simulated temperature (not the drift: aligned spectra give the same).
    truth_figures = phonon.pop("ground truth")
    truth_ratio, truth_temperature = truth_figures["gain_loss_ratio"], truth_figures["temperature_K"]
    say(f"The phonon at {ground_truth.mode_energies_eV.Ph:g} eV (tolerance {PHONON_TOLERANCE_CHANNELS:g} channels):")
    for label, figures_of in phonon.items():
        sp = figures_of["sp_map_correlation"].values()
        say(
            f"  {label}: found at {100 * figures_of['found_along_wire']:.0f} % of positions along the wire "
            f"({100 * figures_of['found_in_membrane']:.0f} % of the membrane's pixels), "
            f"false in {100 * figures_of['false_in_hole']:.0f} % of the hole's pixels, map correlation "
            f"{figures_of['map_correlation']:.3f} (SP1-SP4 maps {min(sp):.4f}-{max(sp):.4f}), "
            f"gain/loss {figures_of['gain_loss_ratio']:.3g} "
            f"(truth {truth_ratio:.3g}): {figures_of['temperature_K']:.0f} K (the same estimate on the truth: "
            f"{truth_temperature:.0f} K; simulated at {SIMULATED_TEMPERATURE_K:.0f} K)"
        )
    return {"files": files, "phonon": phonon}
