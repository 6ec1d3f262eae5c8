"""Command line: ``eelspecnet train | evaluate | deconvolve | demo``.

Each sub-command is a thin wrapper over a Python function of the package.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: Energy windows (eV) of the demo's energy-filtered maps: the SiN phonon and the SP1 mode.
DEMO_WINDOWS = {"Ph": (0.07, 0.13), "SP1": (0.30, 0.40)}
#: Energies shown in the demo's figures (eV).
DEMO_ENERGY_RANGE = (-0.3, 1.4)


def _train(args):
    from .training.trainer import TrainConfig, train

    config = TrainConfig.from_yaml(args.config)
    if args.max_minutes is not None:
        config.max_minutes = args.max_minutes
    path = train(config, args.out, resume=args.resume)
    print(f"Model written to {path}")


def _evaluate(args):
    from .evaluation.report import evaluate_command

    evaluate_command(args)


class _InputError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


def _load_spectra(path):
    """The spectra in ``path`` (anything ``hs.load`` reads) as an EELS signal."""
    import hyperspy.api as hs

    try:
        signal = hs.load(path)
    except (OSError, ValueError) as error:
        raise _InputError(f"cannot read {path}: {error}") from error
    if isinstance(signal, list):
        raise _InputError(
            f"{path} holds {len(signal)} signals; save the near-zero-loss spectra alone "
            "(e.g. s.save('low_loss.hspy')) and pass that file."
        )
    if signal.axes_manager.signal_dimension != 1:
        raise _InputError(
            f"{path} holds a signal of signal dimension {signal.axes_manager.signal_dimension}; "
            "eelspecnet deconvolve needs spectra (one energy axis)."
        )
    if not hasattr(signal, "eelspecnet_deconvolve"):
        signal.set_signal_type("EELS")
    return signal


def _richardson_lucy_path(path):
    return path.with_name(f"{path.stem}_richardson_lucy{path.suffix}")


def _deconvolve(args):
    from .plotting import plot_comparison

    source = Path(args.input)
    out = Path(args.output) if args.output else source.with_name(f"{source.stem}_eelspecnet.hspy")
    rl_path = _richardson_lucy_path(out) if args.rl_iterations else None
    for path in filter(None, (out, rl_path)):
        if path.resolve() == source.resolve():
            raise _InputError(f"writing {path} would overwrite the input; choose another output with -o.")
    signal = _load_spectra(source)
    psf = _load_spectra(args.psf) if args.psf else None
    try:
        result = signal.eelspecnet_deconvolve(model=args.model, rl_iterations=args.rl_iterations, psf=psf)
    except (ValueError, TypeError, FileNotFoundError) as error:
        raise _InputError(str(error)) from error
    out.parent.mkdir(parents=True, exist_ok=True)
    result.restored.save(out, overwrite=True)
    print(f"EELSpecNet restoration written to {out}")
    if rl_path is not None:
        result.richardson_lucy.save(rl_path, overwrite=True)
        print(f"Richardson-Lucy deconvolution ({args.rl_iterations} iterations) written to {rl_path}")
    if args.plot:
        plot_comparison(result).savefig(args.plot, dpi=150)
        print(f"Comparison figure written to {args.plot}")


def _demo(args):
    from .analysis import energy_filtered_maps, feature_along_line, modal_evolution
    from .data import silver_nanowire
    from .plotting import plot_comparison, plot_feature_along_line, plot_maps_side_by_side, plot_modal_evolution

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    signal, truth = silver_nanowire(return_ground_truth=True)
    restored, rl = signal.eelspecnet_deconvolve(model=args.model, rl_iterations=50)
    signals = {
        "silver_nanowire.hspy": ("input (synthetic)", signal),
        "silver_nanowire_truth.hspy": ("ground truth", truth),
        "silver_nanowire_eelspecnet.hspy": ("EELSpecNet restoration", restored),
        "silver_nanowire_richardson_lucy.hspy": ("Richardson-Lucy deconvolution (50 iterations)", rl),
    }
    for name, (what, spectra) in signals.items():
        spectra.save(out / name, overwrite=True)
        print(f"{what}: {out / name}")

    ground_truth = signal.metadata.Sample.ground_truth
    x_axis, y_axis = signal.axes_manager.navigation_axes
    # Along the wire over the whole map, through the pixel row nearest its axis (a line through
    # pixel centres: the 7-pixel strip takes each row once).
    row = y_axis.value2index(ground_truth.wire.start_nm[1])
    start, end = (x_axis.low_value, y_axis.axis[row]), (x_axis.high_value, y_axis.axis[row])
    tip = (x_axis.value2index(ground_truth.wire.start_nm[0]), row)
    compared = (signal, restored, truth)
    profiles = {
        label: modal_evolution(spectra, start, end, width=7)
        for label, spectra in (("input", signal), ("EELSpecNet", restored),
                               ("Richardson-Lucy (50 it.)", rl), ("ground truth", truth))
    }
    phonon_energy = ground_truth.mode_energies_eV.Ph
    figures = {
        "modal_evolution.png": (
            "modal evolution along the wire (input, restored, truth)",
            plot_modal_evolution(
                profiles["input"], profiles["EELSpecNet"], profiles["ground truth"],
                energy_range=(0.03, DEMO_ENERGY_RANGE[1]),
                mode_energies=ground_truth.mode_energies_eV.as_dictionary(),
                log_intensity=True,
            ),
        ),
        # Own colour scales: the raw phonon window is ~100 times brighter (zero-loss tail) and
        # would leave the restored map black on a shared scale.
        "energy_filtered_maps.png": (
            "Ph and SP1 energy-filtered maps (input, restored, truth)",
            plot_maps_side_by_side(*(energy_filtered_maps(s, DEMO_WINDOWS) for s in compared), shared_scale=False),
        ),
        "phonon_along_wire.png": (
            "phonon energy along the wire (7-pixel averages)",
            plot_feature_along_line(
                {label: feature_along_line(profile, DEMO_WINDOWS["Ph"]) for label, profile in profiles.items()},
                expected=phonon_energy,
                ylabel="Phonon energy (eV)",
                title=f"Strongest feature in {DEMO_WINDOWS['Ph'][0]:g}-{DEMO_WINDOWS['Ph'][1]:g} eV along the wire",
            ),
        ),
        "single_pixel.png": (
            f"spectra at the wire tip, pixel {tip}",
            plot_comparison(
                (signal, restored, rl), index=tip, energy_range=DEMO_ENERGY_RANGE, truth=truth
            ),
        ),
    }
    for name, (what, figure) in figures.items():
        figure.savefig(out / name, dpi=120)
        print(f"{what}: {out / name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eelspecnet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model on generated spectra")
    p.add_argument("--config", required=True, help="training configuration (YAML)")
    p.add_argument("--out", required=True, help="output folder (model, card, checkpoints)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/backup")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock limit")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="compare a model with Richardson-Lucy on generated spectra")
    p.add_argument("--model", default=None, help="model file (default: the bundled model)")
    p.add_argument("--out", required=True, help="output folder for JSON, Markdown and figures")
    p.add_argument("--n-spectra", type=int, default=2000, help="spectra per evaluation set")
    p.add_argument("--presets", nargs="+", default=["reference", "instrument"])
    p.add_argument("--rl-iterations", type=int, nargs="+", default=[10, 25, 50, 100])
    p.add_argument("--seed", type=int, default=None,
                   help="root seed of the evaluation sets (default: evaluation.report.EVALUATION_SEED)")
    p.add_argument("--card", default=None, help="model card whose '## Evaluation' section is replaced")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("deconvolve", help="restore a file of near-zero-loss spectra (and compare with Richardson-Lucy)")
    p.add_argument("input", help="spectra or spectrum image: any file hs.load reads (.dm3, .dm4, .hspy, .msa, ...)")
    p.add_argument("-o", "--output", default=None,
                   help="restored signal (default: INPUT stem + '_eelspecnet.hspy'); Richardson-Lucy goes "
                        "beside it with the suffix '_richardson_lucy'")
    p.add_argument("--rl-iterations", type=int, default=50, help="Richardson-Lucy iterations (0 skips it)")
    p.add_argument("--psf", default=None,
                   help="measured vacuum zero-loss peak for Richardson-Lucy (default: each spectrum's own ZLP)")
    p.add_argument("--plot", default=None, help="also draw input, restored and Richardson-Lucy to this image file")
    p.add_argument("--model", default=None, help="model file (default: the bundled model)")
    p.set_defaults(func=_deconvolve)

    p = sub.add_parser("demo", help="restore a synthetic silver-nanowire spectrum image and draw the results")
    p.add_argument("--out", default="eelspecnet_demo", help="output folder (default: ./eelspecnet_demo)")
    p.add_argument("--model", default=None, help="model file (default: the bundled model)")
    p.set_defaults(func=_demo)
    return parser


def main(argv=None):
    # Before TensorFlow is imported: its C++ start-up logs are not ours to show (see __init__).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = parser.parse_args(argv)
    args.argv = argv[1:]  # recorded with the numbers it produces (model card)
    try:
        args.func(args)
    except _InputError as error:
        parser.exit(2, f"eelspecnet {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
