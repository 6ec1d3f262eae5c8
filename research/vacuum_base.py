"""A base for the vacuum route: the fine-tune's recipe, trained once on Gaussian PSFs of many widths.

    python research/vacuum_base.py --out runs/vacuum_base --minutes 60
    eelspecnet finetune VACUUM --model runs/vacuum_base/eelspecnet.keras --out DIR --minutes 20

A fine-tune (:func:`hyperspy_eelspecnet.training.finetune`) matches every recorded spectrum
to a Gaussian of the vacuum's FWHM and trains the bundled blind model to undo that Gaussian,
features near the ZLP included, in 20 minutes. Most of those minutes go to learning what
every instrument shares (a Gaussian ZLP leaves a feature 1-5 FWHM out standing on its own)
rather than this instrument's leftovers. This script trains that shared part once: the
fine-tune's mixture (:func:`~hyperspy_eelspecnet.training.finetuning.finetune_config`: half
the product's features, half phonon-like ones in units of the ZLP width) repeated for four
bands of Gaussian PSF widths, with a little jitter, no measured PSF and no matching (the
inputs are Gaussian-blurred already), starting from the bundled model. The question it
answers: does a 20-minute fine-tune from this base place a phonon 1.5 FWHM from the ZLP more
reliably than one from the bundled model?
"""

import argparse
import warnings

import numpy as np

from hyperspy_eelspecnet.model import load_model
from hyperspy_eelspecnet.model.contract import default_model_path
from hyperspy_eelspecnet.training import finetuning
from hyperspy_eelspecnet.training.trainer import MixtureComponent, train

#: Gaussian PSF widths (channels) of the four bands.
BANDS = ((5.0, 8.0), (8.0, 12.0), (12.0, 17.0), (17.0, 24.0))


def base_config(minutes, seed=0, n_channels=1024):
    base = default_model_path()
    _, contract = load_model(base)
    mixture = []
    config = None
    for low, high in BANDS:
        width = np.sqrt(low * high)
        config = finetuning.finetune_config(
            contract.training["config"], [width - 0.5, width + 0.5], 0.005, finetuning.DEFAULT_COUNTS,
            seed, minutes, n_channels=n_channels,
        )
        for component in config.mixture:
            overrides = dict(component.overrides)
            for key in ("measured_psf_probability", "measured_psf_extra_fwhm"):
                overrides.pop(key)
            overrides.update(
                psf_shape="pseudo_voigt", psf_fwhm=[low, high], psf_fwhm_log=False, psf_asymmetry=[1.0, 1.0],
                psf_lorentz_fraction=[0.0, 0.0], psf_lorentz_fraction_log=False,
            )
            mixture.append(MixtureComponent("instrument", component.weight / len(BANDS), overrides))
    config.mixture = mixture
    config.match_to_gaussian = False
    config.measured_psfs = []
    config.initial_model = str(base.absolute())
    config.name = "eelspecnet-vacuum-base"
    config.validation_size = 512
    config.steps_per_epoch = 200
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    config = base_config(args.minutes, args.seed)
    print(train(config, args.out, resume=args.resume, verbose=1))


if __name__ == "__main__":
    main()
