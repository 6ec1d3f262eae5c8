"""The contract of a model file: what the network expects, stored beside it as JSON.

Every model file carries a JSON sidecar (``<name>.json``) with the channel counts, the
dispersion and the ranges it was trained on (:class:`ModelContract`);
:func:`~hyperspy_eelspecnet.model.files.load_model` refuses a model whose file and sidecar
disagree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_EPSILON", "ModelContract", "contract_path", "default_model_path", "file_sha256"]

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
    vacuum_psf : list of float or None
        For a model fine-tuned with its inputs matched to a Gaussian (``eelspecnet finetune``):
        the vacuum PSF they are matched from
        (:func:`~hyperspy_eelspecnet.vacuum.match_to_gaussian`), which the restoration applies
        to every input before the network. None for models that take spectra as recorded.
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
    vacuum_psf: list | None = None

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
