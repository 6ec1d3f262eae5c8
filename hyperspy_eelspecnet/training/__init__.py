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

# The function, not its module: ``hyperspy_eelspecnet.training.finetune(vacuum, out)`` (documented
# in :mod:`.finetune`, hence not in ``__all__``).
from .finetune import finetune  # noqa: E402

__all__ = [
    "PRESETS",
    "GeneratorConfig",
    "SpectrumBatch",
    "generate_batch",
    "preset",
    "quasi_dirac_zlp",
]
