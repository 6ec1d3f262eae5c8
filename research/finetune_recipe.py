"""Try a change to the fine-tune's recipe on the demo: phonon figures and near-ZLP detection.

    python research/finetune_recipe.py --out runs/ft_lr5e-5 --minutes 15 --set learning_rate=5e-5
    python research/finetune_recipe.py --out runs/ft_narrow --minutes 20 --override "peak_fwhm=(3.0, 40.0)"

Runs :func:`hyperspy_eelspecnet.training.finetune` on the demo's vacuum reference
(``silver_nanowire_vacuum()``, the demo map as ``specimen``) with
:func:`~hyperspy_eelspecnet.training.finetuning.finetune_config`'s result changed by each
``--set KEY=VALUE`` (a ``TrainConfig`` field) and its generator's settings changed by each
``--override KEY=VALUE`` (a ``GeneratorConfig`` field; without any of either, the product's
recipe), then prints

- the demo's phonon figures (:func:`hyperspy_eelspecnet.demo.phonon_figures`) of the
  fine-tuned restoration, ``s.eelspecnet_deconvolve(model=...)``;
- the found and false rates of a loss feature 15-60 channels from the ZLP under the same
  vacuum spectra (:func:`hyperspy_eelspecnet.evaluation.report.near_zlp_significance`, 500
  spectra and their twins), for the fine-tuned model, the bundled blind one and Richardson-Lucy
  (50 iterations) with the vacuum PSF.
"""

import argparse
import ast
import dataclasses
import sys
import warnings
from pathlib import Path

import numpy as np

from hyperspy_eelspecnet import EELSpecNetDeconvolution  # noqa: E402
from hyperspy_eelspecnet.data import silver_nanowire, silver_nanowire_vacuum  # noqa: E402
from hyperspy_eelspecnet.demo import phonon_figures  # noqa: E402
from hyperspy_eelspecnet.evaluation.report import near_zlp_significance  # noqa: E402
from hyperspy_eelspecnet.training import finetune, finetuning  # noqa: E402


def parse_settings(pairs):
    settings = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            settings[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            settings[key] = value
    return settings


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="TrainConfig fields to change")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE",
                        help="GeneratorConfig fields to change in the fine-tune's mixture")
    parser.add_argument("--model", default=None, help="base model (default: the bundled one)")
    parser.add_argument("--reuse", action="store_true", help="measure the model already in OUT/finetuned")
    args = parser.parse_args()
    settings = parse_settings(args.set)
    overrides = parse_settings(args.override)

    product_config = finetuning.finetune_config

    def changed_config(*a, **k):
        config = product_config(*a, **k)
        mixture = [dataclasses.replace(m, overrides={**m.overrides, **overrides}) for m in config.mixture]
        return dataclasses.replace(config, mixture=mixture, **settings)

    finetuning.finetune_config = changed_config
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    signal, truth = silver_nanowire(return_ground_truth=True)
    vacuum = silver_nanowire_vacuum()
    vacuum.save(out / "vacuum.hspy", overwrite=True)
    signal.save(out / "specimen.hspy", overwrite=True)
    print(f"Fine-tune, {args.minutes:g} min, changes: {settings or 'none'}, generator: {overrides or 'none'}", flush=True)
    tuned = out / "finetuned" / "eelspecnet.keras"
    if not args.reuse:
        tuned = finetune(
            out / "vacuum.hspy", out / "finetuned", minutes=args.minutes, specimen=out / "specimen.hspy",
            model=args.model, verbose=1,
        )
        print()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        restored, _ = signal.eelspecnet_deconvolve(model=tuned, show_progressbar=False)
    figures = phonon_figures(restored, truth)
    print("Demo, fine-tuned:", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()})

    engines = {"fine-tuned": EELSpecNetDeconvolution(tuned), "bundled (blind)": EELSpecNetDeconvolution()}
    near = near_zlp_significance(engines, np.asarray(vacuum.data, float), n_spectra=500)
    print("Loss feature 15-60 channels from the ZLP, 500 spectra and their twins:")
    for label, row in near["methods"].items():
        error = row["position_error"]
        print(f"  {label}: found {100 * row['found']:.1f} %, false {100 * row['false']:.1f} %, "
              f"position error {'-' if error is None else f'{error:.2f}'} channels")


if __name__ == "__main__":
    sys.exit(main())
