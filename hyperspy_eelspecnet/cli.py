"""Command line: eelspecnet train | finetune | evaluate | deconvolve | demo.

Each sub-command is a thin wrapper over a Python function of the package.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path


def _positive_minutes(text):
    """``--minutes``: a wall-clock budget, a positive number of minutes."""
    try:
        minutes = float(text)
    except ValueError:
        minutes = math.nan
    if not (math.isfinite(minutes) and minutes > 0):
        raise argparse.ArgumentTypeError(f"give a positive number of minutes (e.g. 20), not {text!r}")
    return minutes


def _positive_int(text):
    """A count (``--n-spectra``, ``--rl-iterations``, ...): a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"give a positive whole number (e.g. 8), not {text!r}")
    return value


def _seed(text):
    """``--seed``: a whole number of 0 or more (NumPy's seeds are)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"give a whole number of 0 or more (e.g. 5), not {text!r}")
    return value


def _train(args):
    from .training.trainer import TrainConfig, train

    try:
        config = TrainConfig.from_yaml(args.config)
        if args.max_minutes is not None:
            config.max_minutes = args.max_minutes
        path = train(config, args.out, resume=args.resume)
    except (ValueError, TypeError, FileNotFoundError) as error:  # the configuration and the run's folder
        raise _InputError(str(error)) from error
    print(f"Model written to {path}")


def _finetune(args):
    from .training.finetuning import FINETUNE_MINUTES, finetune

    try:
        path = finetune(
            args.vacuum, args.out, minutes=FINETUNE_MINUTES if args.minutes is None else args.minutes,
            model=args.model, specimen=args.specimen, dispersion=args.dispersion, resume=args.resume, seed=args.seed,
            force=args.force,
        )
    except (ValueError, FileNotFoundError) as error:
        raise _InputError(str(error)) from error
    print(f"Fine-tuned model written to {path}; restore with s.eelspecnet_deconvolve(model={str(path)!r})")


def _evaluate(args):
    from .evaluation.report import evaluate_command

    try:
        evaluate_command(args)  # checks every input before any work
    except (ValueError, FileNotFoundError) as error:
        raise _InputError(str(error)) from error


class _InputError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


def _load_spectra(path, dispersion=None, offset=None, vacuum=False):
    """The spectra in ``path`` (anything ``hs.load`` reads, text or .npy) as an EELS signal."""
    from .io import read_signal

    try:
        return read_signal(path, dispersion, offset, vacuum=vacuum)
    except (ValueError, FileNotFoundError) as error:
        raise _InputError(str(error)) from error


def _written_path(path):
    """The file HyperSpy writes for ``path``: a name without an extension gets ``.hspy``."""
    return path if path.suffix else path.with_suffix(".hspy")


def _richardson_lucy_path(path):
    return path.with_name(f"{path.stem}_richardson_lucy{path.suffix}")


def _check_writable(path, signal):
    """Refuse, before any work, an output file HyperSpy cannot write ``signal``'s shape to."""
    from rsciio import IO_PLUGINS

    shape = [signal.axes_manager.signal_dimension, signal.axes_manager.navigation_dimension]

    def writes(plugin):
        return plugin["writes"] is True or bool(plugin["writes"]) and shape in plugin["writes"]

    extension = path.suffix[1:].lower() or "hspy"  # HyperSpy saves a name without one as .hspy
    if not any(writes(plugin) for plugin in IO_PLUGINS if extension in plugin["file_extensions"]):
        able = sorted({p["file_extensions"][p["default_extension"]].lower() for p in IO_PLUGINS if writes(p)})
        raise _InputError(
            f"HyperSpy cannot write spectra of navigation dimension {shape[1]} to {path.name}; choose an "
            f"output with -o ending in .hspy (or one of {', '.join('.' + e for e in able)})."
        )


def _save(signal, path):
    """``signal.save(path)``, a writer's failure reported as one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        signal.save(path, overwrite=True)
    except Exception as error:  # rosettasciio's writers raise many types
        from .io import _reason

        raise _InputError(f"cannot write {path}: {_reason(error)}; choose another output with -o.") from error


def _deconvolve(args):
    from .plotting import plot_comparison

    source = Path(args.input)
    out = _written_path(Path(args.output)) if args.output else source.with_name(f"{source.stem}_eelspecnet.hspy")
    rl_path = _richardson_lucy_path(out) if args.rl_iterations else None
    for path in filter(None, (out, rl_path)):
        if path.resolve() == source.resolve():
            raise _InputError(f"writing {path} would overwrite the input; choose another output with -o.")
    signal = _load_spectra(source, args.dispersion, args.offset)
    _check_writable(out, signal)
    if args.plot:
        from matplotlib.figure import Figure

        formats = Figure().canvas.get_supported_filetypes()
        if Path(args.plot).suffix and Path(args.plot).suffix[1:].lower() not in formats:
            raise _InputError(
                f"cannot draw a figure to {args.plot}; end --plot in .png (or one of "
                f"{', '.join('.' + f for f in formats)})."
            )
    psf = _load_spectra(args.psf, args.dispersion, vacuum=True) if args.psf else None
    try:
        result = signal.eelspecnet_deconvolve(
            model=args.model, rl_iterations=args.rl_iterations, psf=psf, force=args.force,
            show_progressbar=_progressbar_setting(),
        )
    except (ValueError, TypeError, FileNotFoundError) as error:
        raise _InputError(str(error)) from error
    _save(result.restored, out)
    print(f"EELSpecNet restoration written to {out}")
    if rl_path is not None:
        _save(result.richardson_lucy, rl_path)
        print(f"Richardson-Lucy deconvolution ({args.rl_iterations} iterations) written to {rl_path}")
    elif _richardson_lucy_path(out).exists():
        print(
            f"{_richardson_lucy_path(out)} is left from an earlier run (--rl-iterations 0 writes no "
            "Richardson-Lucy result): it does not belong to this restoration."
        )
    if args.plot:
        plot_comparison(result).savefig(args.plot, dpi=150)
        print(f"Comparison figure written to {args.plot}")


def _progressbar_setting():
    """dask's bar (on stderr) redraws itself with carriage returns: on a terminal, HyperSpy's
    preference; in a log file, none."""
    return None if sys.stderr.isatty() else False


def _demo(args):
    from .demo import run_demo

    try:
        run_demo(
            args.out, model=args.model, instrument=args.instrument, minutes=args.minutes,
            show_progressbar=_progressbar_setting(),
        )
    except (ValueError, FileNotFoundError) as error:  # checked before anything is written
        raise _InputError(str(error)) from error


_TRACEBACK_HELP = "on an error, show Python's full traceback instead of the one-line message (for bug reports)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eelspecnet", description=__doc__.splitlines()[0])
    parser.add_argument("--traceback", action="store_true", help=_TRACEBACK_HELP)
    # --traceback after the sub-command too; there it leaves the value before it alone when absent.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS, help=_TRACEBACK_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, **kwargs):
        return sub.add_parser(name, parents=[common], **kwargs)

    p = command("train", help="train a model on generated spectra")
    p.add_argument("--config", required=True, help="training configuration (YAML)")
    p.add_argument("--out", required=True,
                   help="output folder (model, card, checkpoints); one that holds a finished run is refused "
                        "without --resume")
    p.add_argument("--resume", action="store_true", help="continue from OUT/backup")
    p.add_argument("--max-minutes", type=_positive_minutes, default=None,
                   help="wall-clock limit in minutes, checked at the end of each epoch (a run may go on for up "
                        "to an epoch more; with 'schedule: minutes', after each step); default: the "
                        "configuration's max_minutes")
    p.set_defaults(func=_train)

    p = command(
        "finetune", help="fine-tune a model on your microscope's vacuum zero-loss peak (its own PSF)"
    )
    p.add_argument("vacuum", nargs="+",
                   help="vacuum spectra: .dm3/.dm4/.hspy/.msa (a spectrum image gives one PSF per pixel), text or .npy")
    p.add_argument("--out", required=True, help="output folder (eelspecnet.keras, its contract, MODEL_CARD.md)")
    p.add_argument("--minutes", type=_positive_minutes, default=None,
                   help="wall-clock budget of the training (default: 20); loading, checks and the card's "
                        "validation add half a minute to two minutes")
    p.add_argument("--model", default=None,
                   help="model to start from: a .keras file or the folder train or finetune wrote (default: the bundled model)")
    p.add_argument("--specimen", nargs="+", default=None,
                   help="specimen spectra to restore: the training noise matches their counts, their dispersion and ZLP "
                        "width are checked against the vacuum's")
    p.add_argument("--dispersion", type=float, default=None,
                   help="eV per channel, where the files do not say (text, .npy); default: the specimen "
                        "files', else the base model's (a line or a warning says which)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT/training")
    p.add_argument("--seed", type=_seed, default=0, help="root seed of the generated spectra (0 or more)")
    p.add_argument("--force", action="store_true",
                   help="fine-tune anyway (with a warning) on vacuum spectra with loss features, a vacuum ZLP "
                        "wider than the specimen's, or a calibrated window without 0 eV or a zero-loss peak")
    p.set_defaults(func=_finetune)

    p = command("evaluate", help="compare a model with Richardson-Lucy on generated spectra")
    p.add_argument("--model", default=None, help="model file (default: the bundled model)")
    p.add_argument("--out", required=True, help="output folder for JSON, Markdown and figures")
    p.add_argument("--n-spectra", type=_positive_int, default=2000, help="spectra per evaluation set (default: 2000)")
    p.add_argument("--presets", nargs="*", default=["reference", "instrument"],
                   help="generator presets to judge on (default: reference instrument); give none to skip them: "
                        "the other windows still run unless --no-windows, and --vacuum adds the near-ZLP sets")
    p.add_argument("--rl-iterations", type=_positive_int, nargs="+", default=[10, 25, 50, 100],
                   help="Richardson-Lucy iteration counts to report, 1 or more (default: 10 25 50 100)")
    p.add_argument("--seed", type=_seed, default=None,
                   help="root seed of the evaluation sets, 0 or more (default: 20221014, the card's)")
    p.add_argument("--no-windows", action="store_true",
                   help="skip the sets of the reference physics in other windows (640-4096 channels)")
    p.add_argument("--vacuum", nargs="+", default=None,
                   help="measured vacuum spectra: add the sets of a loss feature 15-60 channels from the ZLP under them")
    p.add_argument("--compare", nargs="+", default=None,
                   help="other models judged on the --vacuum near-ZLP sets too (e.g. one fine-tuned on the vacuum)")
    p.add_argument("--near-zlp-spectra", type=_positive_int, default=None,
                   help="spectra in each --vacuum near-ZLP set (default: 500)")
    p.add_argument("--card", default=None,
                   help="model card whose '## Evaluation' section is replaced (added at the end if it has none)")
    p.set_defaults(func=_evaluate)

    p = command("deconvolve", help="restore a file of near-zero-loss spectra (and compare with Richardson-Lucy)")
    p.add_argument("input",
                   help="spectra or spectrum image: any file hs.load reads (.dm3, .dm4, .hspy, .msa, ...), or "
                        "text (.txt, .dat, .csv, .tsv) or .npy with one spectrum per row (then give --dispersion)")
    p.add_argument("-o", "--output", default=None,
                   help="restored signal (default: INPUT stem + '_eelspecnet.hspy'; a name without an extension "
                        "gets .hspy); Richardson-Lucy goes beside it with the suffix '_richardson_lucy'")
    p.add_argument("--rl-iterations", type=int, default=50, help="Richardson-Lucy iterations (default 50; 0 skips it)")
    p.add_argument("--psf", default=None,
                   help="measured vacuum zero-loss peak for Richardson-Lucy, a file as INPUT (default: each "
                        "spectrum's own ZLP)")
    p.add_argument("--dispersion", type=float, default=None,
                   help="eV per channel of text and .npy files (and uncalibrated ones), which do not say; "
                        "0 eV is put at the ZLP's maximum unless --offset is given")
    p.add_argument("--offset", type=float, default=None,
                   help="energy of the first channel's centre in eV, for the files --dispersion calibrates (e.g. -0.9275): "
                        "then a window without a zero-loss peak is recognised (default: 0 eV at each spectrum's maximum)")
    p.add_argument("--plot", default=None, help="also draw input, restored and Richardson-Lucy to this image file")
    p.add_argument("--force", action="store_true",
                   help="restore anyway (with a warning) what a check refuses but may be right: a ZLP already "
                        "narrower than the model's restored ZLP, a signal restored already, a maximum far from 0 eV "
                        "or a window without it, a model fine-tuned at another dispersion, a --psf with loss features")
    p.add_argument("--model", default=None, help="model file (default: the bundled model)")
    p.set_defaults(func=_deconvolve)

    p = command("demo", help="restore a synthetic silver-nanowire spectrum image and draw the results")
    p.add_argument("--out", default="eelspecnet_demo", help="output folder (default: ./eelspecnet_demo)")
    p.add_argument("--model", default=None, help="model file (default: the bundled model)")
    p.add_argument("--instrument", action="store_true",
                   help="also fine-tune the model on the demo microscope's vacuum reference and restore with it")
    p.add_argument("--minutes", type=_positive_minutes, default=None,
                   help="the --instrument fine-tune's wall-clock budget (default: 20)")
    p.set_defaults(func=_demo)
    return parser


def main(argv=None):
    # Before TensorFlow is imported: its C++ start-up logs are not ours to show (see __init__).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = parser.parse_args(argv)
    # The sub-command's arguments, recorded with the numbers they produce (model card); global
    # options (--traceback, before or after the sub-command) take no value and change no number.
    args.argv = [a for a in argv[argv.index(args.command) + 1:] if a != "--traceback"]
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(args.command)
        try:
            args.func(args)
        except _InputError as error:
            if args.traceback:
                raise error.__cause__ or error
            parser.exit(2, f"eelspecnet {args.command}: error: {error}\n")


def _warning_printer(command):
    """``warnings.showwarning`` for the command line: 'eelspecnet COMMAND: warning: MESSAGE' on
    one line, without Python's source location (ours and other packages' warnings alike)."""

    def show(message, category, filename, lineno, file=None, line=None):
        stream = sys.stderr if file is None else file
        text = " ".join(str(message).split())
        try:
            stream.write(f"eelspecnet {command}: warning: {text}\n")
        except OSError:  # no stream to write to (as Python's own printer does)
            pass

    return show


if __name__ == "__main__":
    sys.exit(main())
