"""Command line: ``eelspecnet train | evaluate``.

Each sub-command is a thin wrapper over a Python function of the package.
"""

from __future__ import annotations

import argparse
import os
import sys


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
    p.add_argument("--seed", type=int, default=20221014, help="root seed of the evaluation sets")
    p.set_defaults(func=_evaluate)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
