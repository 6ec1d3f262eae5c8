"""Model files: a ``.keras`` file (weights and architecture) with its contract beside it."""

from __future__ import annotations

from pathlib import Path

from .backend import import_keras
from .contract import ModelContract, contract_path, default_model_path

__all__ = ["save_model", "load_model"]


def save_model(model, path, contract: ModelContract) -> Path:
    """Save the full model (weights and architecture, no optimizer state) and its contract."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Model files end in '.keras'; got {path.name!r}.")
    if model.input_shape[-1] not in (None, contract.n_channels):
        raise ValueError(
            f"The model takes {model.input_shape[-1]} channels but the contract says {contract.n_channels}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)  # exported models are never compiled: no optimizer state is written
    contract.to_json(contract_path(path))
    return path


def load_model(path=None):
    """Load a model file and its contract.

    Parameters
    ----------
    path : str or Path, optional
        A ``.keras`` file with its ``.json`` sidecar; ``None`` loads the bundled default.

    Returns
    -------
    model : keras.Model
        Full model, spectra in, restored spectra out.
    contract : ModelContract

    Raises
    ------
    FileNotFoundError
        The file or its sidecar is missing.
    ValueError
        The file is not a Keras model, or its channel count disagrees with the sidecar.
    """
    path = Path(default_model_path() if path is None else path)
    if not path.exists():
        raise FileNotFoundError(
            f"No model file at {path}. Pass model=None for the bundled default, or the path of a "
            "'.keras' file written by 'eelspecnet train'."
        )
    sidecar = contract_path(path)
    if not sidecar.exists():
        raise FileNotFoundError(
            f"Model {path.name} has no contract file {sidecar.name} beside it; models written by "
            "'eelspecnet train' always have one (it records the channel count and ZLP channel)."
        )
    contract = ModelContract.from_json(sidecar)
    keras = import_keras()
    from . import layers  # noqa: F401 (registers the custom layers the file names)

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises several types for a bad archive
        raise ValueError(f"{path} is not a loadable Keras model: {error}") from error
    if model.input_shape[-1] not in (None, contract.n_channels):
        raise ValueError(
            f"Model {path.name} takes {model.input_shape[-1]} channels but its contract says "
            f"{contract.n_channels}; the files do not belong together."
        )
    if contract.length_multiple and model.input_shape[-1] is not None:
        raise ValueError(
            f"Model {path.name} takes a fixed {model.input_shape[-1]} channels but its contract says it "
            "takes any length; the files do not belong together."
        )
    return model, contract
