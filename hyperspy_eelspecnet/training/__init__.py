"""Training data and training loop for EELSpecNet models.

The generator (:mod:`.generator`) knows nothing of Keras; the trainer (:mod:`.trainer`) imports
TensorFlow only when called.
"""

from .generator import (
    PRESETS,
    GeneratorConfig,
    SpectrumBatch,
    generate_batch,
    preset,
    quasi_dirac_zlp,
)

__all__ = [
    "PRESETS",
    "GeneratorConfig",
    "SpectrumBatch",
    "generate_batch",
    "preset",
    "quasi_dirac_zlp",
]
