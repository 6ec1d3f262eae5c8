"""Model files: a ``.keras`` file (weights and architecture) with its contract beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backend import import_keras
from .contract import ModelContract, contract_path, default_model_path

__all__ = ["save_model", "load_model", "model_file", "MODEL_FILE_NAME"]

#: The model file ``eelspecnet train`` and ``eelspecnet finetune`` write into their output folder.
MODEL_FILE_NAME = "eelspecnet.keras"


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


def model_file(path=None) -> Path:
    """The model file that ``path`` names.

    Parameters
    ----------
    path : str or Path, optional
        A ``.keras`` file, or a folder written by ``eelspecnet train`` or ``eelspecnet finetune
        --out DIR`` (its :data:`MODEL_FILE_NAME` is used); ``None`` for the bundled default.

    Returns
    -------
    Path
        The path as given for a file (existing or not), ``DIR/eelspecnet.keras`` for a folder.

    Raises
    ------
    FileNotFoundError
        A folder without :data:`MODEL_FILE_NAME`.
    """
    path = Path(default_model_path() if path is None else path).expanduser()
    if not path.is_dir():
        return path
    if not (path / MODEL_FILE_NAME).is_file():
        raise FileNotFoundError(
            f"The folder {path} holds no {MODEL_FILE_NAME}: give the '.keras' file itself, or a "
            "folder written by 'eelspecnet train' or 'eelspecnet finetune --out DIR'."
        )
    return path / MODEL_FILE_NAME


def load_model(path=None):
    """Load a model file and its contract.

    Parameters
    ----------
    path : str or Path, optional
        A ``.keras`` file with its ``.json`` sidecar, or a folder written by ``eelspecnet train``
        or ``eelspecnet finetune`` (:func:`model_file`); ``None`` loads the bundled default.

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
        The file is not a Keras model, or its channel count or length multiple disagrees with
        the sidecar.
    """
    path = model_file(path)
    if not path.exists():
        raise FileNotFoundError(
            f"No model file at {path}. Pass model=None (leave out --model on the command line) for the "
            "bundled default, or the path of a '.keras' file written by 'eelspecnet train' or 'eelspecnet "
            "finetune' (or their folder)."
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
    _check_length_multiple(model, contract, path)
    return model, contract


def _check_length_multiple(model, contract: ModelContract, path: Path) -> None:
    """Refuse a contract whose ``length_multiple`` the network does not take.

    One call on a single spectrum of an odd multiple (3) of ``length_multiple`` channels: a
    network that halves the length more often than the contract says fails on it (an even
    multiple could pass by chance). It costs one small forward pass, once per loaded model.
    """
    if not contract.length_multiple:
        return
    length = 3 * contract.length_multiple
    try:
        model(np.full((1, length), 1.0 / length, np.float32), training=False)
    except Exception as error:  # TensorFlow raises several types for mismatched lengths
        raise ValueError(
            f"Model {path.name} does not take spectra of {length} channels (3 times the "
            f"length_multiple {contract.length_multiple} of its contract {contract_path(path).name}): "
            "the network halves the length more often than its contract says, so the files do not "
            "belong together. Use the contract written with this model."
        ) from error
