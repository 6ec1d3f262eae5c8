"""A model file and its contract: what the network expects, stored beside it as JSON.

Every model file carries a JSON sidecar (``<name>.json``) with the channel count, the channel
where the ZLP sat in training, the dispersion and the ranges it was trained on
(:class:`ModelContract`). :func:`load_model` refuses a model whose file and sidecar disagree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_EPSILON", "ModelContract", "contract_path", "save_model", "load_model", "default_model_path", "file_sha256",
]

#: The intensity compression's ``epsilon`` (:mod:`hyperspy_eelspecnet.model.layers`).
DEFAULT_EPSILON = 1e-4


@dataclass
class ModelContract:
    """What a model file expects of its input; stored beside it as JSON.

    Attributes
    ----------
    n_channels : int
        Channels of the spectra the network was trained on.
    length_multiple : int
        The network takes spectra of any length divisible by this number, with the ZLP
        anywhere (it is fully convolutional). 0 for models of hyperspy-eelspecnet before 0.5.0,
        which restore one window of ``n_channels`` with the ZLP on ``zlp_channel`` only; the
        restoration refuses them (fine-tune them with ``eelspecnet finetune --model``).
    zlp_channel : int
        Nominal ZLP channel of the training spectra.
    dispersion : float
        eV per channel the training ranges were expressed at (ranges are in channels, so other
        dispersions work where the physics maps into the same channel ranges).
    psf_fwhm_channels : (float, float)
        Range of distorted ZLP FWHM (channels) seen in training.
    zlp_fwhm_channels : float
        FWHM (channels) of the restored quasi-Dirac ZLP.
    counts_range : (float, float) or None
        Electrons per spectrum of the training spectra with counting noise (None: none had).
    epsilon : float
        Intensity-compression constant.
    name, version : str
        Identification recorded in the metadata of restored signals.
    preset : str
        Generator preset(s) the model was trained on.
    training : dict
        Free-form record (config, seeds, steps) written by the trainer.
    """

    n_channels: int = 2048
    length_multiple: int = 0
    zlp_channel: int = 400
    dispersion: float = 0.005
    psf_fwhm_channels: tuple = (7.0, 40.0)
    zlp_fwhm_channels: float = 3.0
    counts_range: tuple | None = None
    epsilon: float = DEFAULT_EPSILON
    name: str = "eelspecnet"
    version: str = "0"
    preset: str = "reference"
    training: dict = field(default_factory=dict)

    def to_json(self, path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, default=_json_default))

    @classmethod
    def from_json(cls, path) -> "ModelContract":
        """Read a contract; fields of older versions that no longer exist are ignored."""
        values = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in values.items() if key in known}
        values["psf_fwhm_channels"] = tuple(values.get("psf_fwhm_channels", (7.0, 40.0)))
        if values.get("counts_range") is not None:
            values["counts_range"] = tuple(values["counts_range"])
        return cls(**values)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def contract_path(path) -> Path:
    """The contract file beside a model file: same name, ``.json``."""
    return Path(path).with_suffix(".json")


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


def default_model_path() -> Path:
    """Path of the bundled default model."""
    return Path(__file__).parent.parent / "models" / "eelspecnet_default.keras"


def file_sha256(path) -> str:
    """SHA-256 of a file, recorded in the metadata of restored signals."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    from .backend import import_keras

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
