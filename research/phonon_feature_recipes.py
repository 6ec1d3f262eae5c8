"""Run a research script with the fine-tune's training features drawn like phonons, in units of the vacuum FWHM.

    python research/phonon_feature_recipes.py research/instrument_phonons.py --out DIR --minutes 20
    MIX=0.5 python research/phonon_feature_recipes.py research/finetune_recipe.py --out DIR --minutes 20

:func:`~hyperspy_eelspecnet.training.finetuning.finetune_config` is wrapped: with ``w`` the median
ZLP FWHM of the prepared vacuum spectra, the features are drawn ``NEAR_FRACTION`` of them
``NEAR_DIST`` w above the ZLP (log-uniform; the rest anywhere), ``WIDTH`` w wide (uniform) and
``RATIO`` of the ZLP (uniform in the ratio). With ``MIX`` below 1 the fine-tune's mixture keeps
the product's component at weight ``1 - MIX`` beside these features at weight ``MIX``. Every
setting comes from the environment:

- ``MIX`` (1.0), ``NEAR_FRACTION``, ``NEAR_DIST`` ("low,high"), ``WIDTH`` and ``RATIO``; the
  last four default to the product's (``finetuning.PHONON_*``: 0.75, "1,5", "0.4,1.5", "300,3000").

The product's fine-tune is this recipe at its default settings with ``MIX=0.5`` (adopted; its
second mixture component is the one changed here). The outcomes are in ``docs/science.md``,
"Fine-tuning on the microscope's vacuum ZLP" and "Half the product's features, half
phonon-like".
"""

import dataclasses
import os
import runpy
import sys

import numpy as np

from hyperspy_eelspecnet.training import finetuning


def _pair(name, default):
    """A (low, high) pair from the environment, or the product's ``default``."""
    value = os.environ.get(name)
    return tuple(float(x) for x in value.split(",")) if value else tuple(default)


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return
    product_config = finetuning.finetune_config
    mix = float(os.environ.get("MIX", 1.0))
    near_fraction = float(os.environ.get("NEAR_FRACTION", finetuning.PHONON_NEAR_FRACTION))
    distance = _pair("NEAR_DIST", finetuning.PHONON_DISTANCE_FWHM)
    width = _pair("WIDTH", finetuning.PHONON_WIDTH_FWHM)
    ratio = _pair("RATIO", finetuning.PHONON_RATIO)

    def phonon_config(base_config, vacuum_fwhm, *args, **kwargs):
        config = product_config(base_config, vacuum_fwhm, *args, **kwargs)
        w = float(np.median(vacuum_fwhm))
        phonons = {
            "peak_near_zlp_fraction": near_fraction,
            "peak_near_zlp_distance": (distance[0] * w, distance[1] * w),
            "peak_fwhm": (width[0] * w, width[1] * w),
            "peak_fwhm_log": False,
            "peak_ratio": ratio,
        }
        print(f"Phonon-like features, vacuum FWHM {w:.2f} ch, weight {mix:g}: {phonons}", flush=True)
        product, phonon_like = config.mixture  # the recipe adopted: these settings at MIX=0.5
        mixture = [dataclasses.replace(phonon_like, weight=mix, overrides={**phonon_like.overrides, **phonons})]
        if mix < 1.0:
            mixture.insert(0, dataclasses.replace(product, weight=1.0 - mix))
        return dataclasses.replace(config, mixture=mixture)

    finetuning.finetune_config = phonon_config
    sys.argv.pop(0)
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
