"""The fine-tune trained in mixed bfloat16 precision (not adopted).

    python research/mixed_precision.py --out runs/bf16_a --minutes 20    # options of finetune_recipe.py

Runs ``research/finetune_recipe.py`` with Keras's ``mixed_bfloat16`` policy while training (the
exported model is rebuilt in float32). On a CPU with bfloat16 matrix units (AMX) a training
step of the fine-tune's network is faster; ``docs/science.md`` ("The demo's phonon, placed by
distance") gives what it costs in the training loss.
"""

import sys
from pathlib import Path

from hyperspy_eelspecnet.model.backend import import_keras
from hyperspy_eelspecnet.training import trainer

sys.path.insert(0, str(Path(__file__).parent))
import finetune_recipe  # noqa: E402

keras = import_keras()
product_export = trainer.export_model


def export_in_float32(*args, **kwargs):
    keras.mixed_precision.set_global_policy("float32")
    return product_export(*args, **kwargs)


if __name__ == "__main__":
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    trainer.export_model = export_in_float32
    sys.exit(finetune_recipe.main())
