"""The EELSpecNet network and its model files.

- :mod:`.layers`: the intensity compression and expansion layers (imports Keras);
- :mod:`.unet`: the U-shaped network builder;
- :mod:`.contract`: the JSON contract beside every model file;
- :mod:`.files`: saving and loading a model file with its contract;
- :mod:`.inference`: running a model over spectra in batches.

Importing this package imports neither Keras nor TensorFlow; building, loading or running a
network does.
"""

from .contract import DEFAULT_EPSILON, ModelContract, default_model_path, file_sha256
from .files import load_model, save_model
from .inference import predict_spectra
from .unet import RESAMPLINGS, build_eelspecnet, build_unet_core, check_resampling, core_of, level_convolutions

__all__ = [
    "DEFAULT_EPSILON",
    "ModelContract",
    "RESAMPLINGS",
    "build_eelspecnet",
    "build_unet_core",
    "check_resampling",
    "core_of",
    "default_model_path",
    "file_sha256",
    "level_convolutions",
    "load_model",
    "predict_spectra",
    "save_model",
]
