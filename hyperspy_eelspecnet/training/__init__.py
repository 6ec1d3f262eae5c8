"""Training data and training loop for EELSpecNet models.

The generator (:mod:`.generator`) knows nothing of Keras; the trainer (:mod:`.trainer`) imports
TensorFlow only when called. :func:`finetune` (``eelspecnet finetune``) trains a model further
on a microscope's measured vacuum spectra.
"""

from .generator import (
    PRESETS,
    GeneratorConfig,
    SpectrumBatch,
    generate_batch,
    preset,
    quasi_dirac_zlp,
)

# ``hyperspy_eelspecnet.training.finetune(vacuum, out)``, documented in :mod:`.finetuning`.
from .finetuning import finetune  # noqa: E402

__all__ = [
    "PRESETS",
    "GeneratorConfig",
    "SpectrumBatch",
    "finetune",
    "generate_batch",
    "preset",
    "quasi_dirac_zlp",
]
