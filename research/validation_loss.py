"""A model's training loss on a configuration's validation set: trained models compared on one set.

    python research/validation_loss.py --config CONFIG.yaml --seed SEED MODEL.keras [MODEL.keras ...]

Not a timing. The trainer reports each run's best validation loss on that run's own validation
set (``SeedSequence([config.seed, 1])``); runs with other seeds or loss settings are not
comparable that way. This rebuilds the validation set of ``CONFIG`` with ``--seed`` in place of
its own seed (``--seed`` of a stage gives that stage's set) and prints each model's loss on it,
with the loss settings of ``CONFIG``.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hyperspy_eelspecnet.model import core_of, load_model  # noqa: E402
from hyperspy_eelspecnet.training.trainer import TrainConfig, training_loss, validation_batch  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="training configuration: mixture, loss, validation size")
    parser.add_argument("--seed", type=int, default=None, help="seed of the validation set (default: the config's)")
    parser.add_argument("models", nargs="+", help="model files")
    args = parser.parse_args(argv)
    config = TrainConfig.from_yaml(args.config)
    seed = config.seed if args.seed is None else args.seed
    if config.measured_psfs:
        parser.error(f"{args.config} trains on measured PSFs; this script covers the analytic generators only")
    z_in, target = validation_batch(config, seed=seed)
    loss = training_loss(config)
    print(f"validation set of {args.config} with seed {seed} ({config.validation_size} spectra)")
    for path in args.models:
        core = core_of(load_model(path)[0])
        core.compile(loss=loss)
        value = core.evaluate(z_in, target, batch_size=config.batch_size, verbose=0)
        print(f"  {value:.5f}  {path}")


if __name__ == "__main__":
    sys.exit(main())
