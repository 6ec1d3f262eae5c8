"""A model's training loss on a configuration's validation set: trained models compared on one set.

    python research/validation_loss.py [--config CONFIG.yaml] [--seed SEED] [MODEL.keras ...]

``--config`` defaults to ``configs/default.yaml`` (the bundled model's last stage), the models
to the bundled one.

Not a timing, and not the public path: a training loss is the bare network's (the model's
core, ``core_of(model)``) on the trainer's compressed windows, so that is what this runs and
scores, as the trainer does; what users get (``EELSpecNetDeconvolution.run``) is judged by the
other scripts and ``eelspecnet evaluate``.

The trainer reports each run's best validation loss on that run's own validation set
(``SeedSequence([config.seed, 1])``); runs with other seeds or loss settings are not comparable
that way. This rebuilds the validation set of ``CONFIG`` with ``--seed`` in place of its own
seed (``--seed`` of a stage gives that stage's set) and prints each model's loss on it, with the
loss settings of ``CONFIG`` (``training_loss(config)``). The set follows that configuration's
generators, their energy-zero convention included (the current stages: the truth's ZLP at the
recorded ZLP's half-maximum centre, the ZLP anywhere in the window), so a model trained under
another convention (0.4.0 and earlier) scores far worse on it than on its own stage's set as
it was generated then. Models of any kind load (the fixed-window 0.4.0 too: the loss needs no
public path). Configurations with measured PSFs are refused.
"""

import argparse
import sys
from pathlib import Path


from hyperspy_eelspecnet.model import core_of, default_model_path, load_model  # noqa: E402
from hyperspy_eelspecnet.training.trainer import TrainConfig, training_loss, validation_batch  # noqa: E402

#: The bundled model's training configuration (its last stage).
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG),
                        help="training configuration: mixture, loss, validation size (default: configs/default.yaml)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the validation set (default: the config's)")
    parser.add_argument("models", nargs="*", help="model files (default: the bundled model)")
    args = parser.parse_args(argv)
    config = TrainConfig.from_yaml(args.config)
    seed = config.seed if args.seed is None else args.seed
    if config.measured_psfs:
        parser.error(f"{args.config} trains on measured PSFs; this script covers the analytic generators only")
    z_in, target = validation_batch(config, seed=seed)
    loss = training_loss(config)
    print(f"validation set of {args.config} with seed {seed} ({config.validation_size} spectra)")
    for path in args.models or [str(default_model_path())]:
        core = core_of(load_model(path)[0])
        core.compile(loss=loss)
        value = core.evaluate(z_in, target, batch_size=config.batch_size, verbose=0)
        print(f"  {value:.5f}  {path}")


if __name__ == "__main__":
    sys.exit(main())
