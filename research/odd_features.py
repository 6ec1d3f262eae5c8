"""The fine-tune trained on loss features odd in the energy transfer (not adopted).

    python research/odd_features.py --out runs/odd_a --minutes 20      # options of finetune_recipe.py

A bosonic loss function is odd in the energy transfer ``E`` times detailed balance: it vanishes
at ``E = 0`` and ``S(-E) = exp(-E / kT) S(E)`` channel by channel. The demo's phonon is drawn so
(``_antisymmetric_lorentzian``). The fine-tune's generator draws each feature as a Lorentzian
switched off within about two channels of the ZLP, and its gain-side twin as the same
Lorentzian weighted at the feature centre's energy. This runs ``research/finetune_recipe.py``
with the generator's truths of spectra that have a temperature replaced by the odd form: each
Lorentzian at ``E`` minus its mirror at ``-E`` above the ZLP, and below it that difference
mirrored and weighted by ``exp(-|E| / kT)`` per channel. ``docs/science.md`` ("The demo's
phonon, placed by distance") gives the outcome.
"""

import sys
from pathlib import Path

import numpy as np

from hyperspy_eelspecnet.training import generator
from hyperspy_eelspecnet.training.generator import BOLTZMANN_EV_PER_K, _lorentzian_sum, quasi_dirac_zlp

sys.path.insert(0, str(Path(__file__).parent))
import finetune_recipe  # noqa: E402

product_true_spectra = generator._true_spectra


def odd_true_spectra(channels, zlp_centre, losses, config):
    """The generator's truth, its features odd in the energy transfer where a temperature is drawn."""
    if losses["temperature"] is None:
        return product_true_spectra(channels, zlp_centre, losses, config)
    truth = quasi_dirac_zlp(channels, zlp_centre, config.zlp_fwhm)
    above = losses["active"] & (losses["distances"] > 0)  # features at or below the ZLP have no loss side
    odd = _lorentzian_sum(
        channels, zlp_centre[:, None] + losses["distances"], losses["fwhms"], losses["heights"], above
    ) - _lorentzian_sum(channels, zlp_centre[:, None] - losses["distances"], losses["fwhms"], losses["heights"], above)
    energy = (channels[None, :] - zlp_centre[:, None]) * config.dispersion
    kt = BOLTZMANN_EV_PER_K * losses["temperature"][:, None]
    truth += np.clip(np.where(energy >= 0, odd, -odd * np.exp(np.minimum(energy, 0.0) / kt)), 0.0, None)
    if losses["continuum"] is not None:
        truth += losses["continuum_level"][:, None] * generator._continuum(channels, zlp_centre, losses["continuum"])
    return truth


if __name__ == "__main__":
    generator._true_spectra = odd_true_spectra
    sys.exit(finetune_recipe.main())
