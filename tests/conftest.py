"""Shared fixtures: real data from tests/data, the bundled model, and a tiny identity model."""

from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(__file__).parent / "data"
WS2_DIR = DATA_DIR / "eelsfitter_ws2"
WS2_DISPERSION = 0.005  # eV per channel
WS2_OFFSET = -0.93 + 0.5 * WS2_DISPERSION  # centre of channel 0 (the axis is in the file names)


@pytest.fixture(autouse=True)
def _quiet_progressbar():
    import hyperspy.api as hs

    previous = hs.preferences.General.show_progressbar
    hs.preferences.General.show_progressbar = False
    yield
    hs.preferences.General.show_progressbar = previous


def _load_ws2(kind="*"):
    """WS2 low-loss spectra (EELSfitter) as one EELSSpectrum with navigation shape (n_files,).

    ``kind`` is ``"Vacuum"``, ``"Specimen"`` or ``"*"`` (all six files, sorted by position).
    """
    import exspy

    files = sorted(WS2_DIR.glob(f"Position-*-{kind}_EELS-Spectrum_*.txt"))
    data = np.array([np.loadtxt(path).ravel() for path in files])
    signal = exspy.signals.EELSSpectrum(data)
    axis = signal.axes_manager.signal_axes[0]
    axis.scale, axis.offset, axis.units, axis.name = WS2_DISPERSION, WS2_OFFSET, "eV", "Energy loss"
    signal.metadata.General.title = f"WS2 {kind if kind != '*' else 'vacuum and specimen'}"
    return signal


@pytest.fixture(scope="session")
def load_ws2():
    """``load_ws2(kind)``: the WS2 spectra of one kind (``"Vacuum"``, ``"Specimen"`` or ``"*"``)."""
    return _load_ws2


@pytest.fixture
def ws2():
    return _load_ws2()


@pytest.fixture(scope="session")
def default_model():
    """Path of the bundled default model; tests that claim restoration quality need it."""
    from hyperspy_eelspecnet.model import default_model_path

    path = default_model_path()
    if not path.exists():
        pytest.skip(f"bundled default model {path.name} is not present")
    return path


IDENTITY_CHANNELS = 512
IDENTITY_ZLP_CHANNEL = 128
IDENTITY_LENGTH_MULTIPLE = 64


@pytest.fixture(scope="session")
def identity_model(tmp_path_factory):
    """An EELSpecNet-format model, fully convolutional like the real ones, whose network
    returns its input.

    Built from the real wrapper (intensity compression/expansion layers) around a 1x1
    convolution with weight 1 and ReLU, so restoration = pre-processing + its inverse: the
    plumbing (padding to the network's length, normalising, undoing both) is tested exactly
    and fast.
    """
    from hyperspy_eelspecnet.model.backend import import_keras

    keras = import_keras()

    from hyperspy_eelspecnet.model import ModelContract, build_eelspecnet, save_model

    z = keras.Input((None,), name="z")
    x = keras.layers.Reshape((-1, 1))(z)
    x = keras.layers.Conv1D(1, 1, activation="relu", kernel_initializer="ones", name="z_out")(x)
    core = keras.Model(z, keras.layers.Reshape((-1,))(x), name="identity_core")
    contract = ModelContract(
        n_channels=IDENTITY_CHANNELS,
        length_multiple=IDENTITY_LENGTH_MULTIPLE,
        zlp_channel=IDENTITY_ZLP_CHANNEL,
        dispersion=WS2_DISPERSION,
        psf_fwhm_channels=(3.0, 40.0),
        name="identity-test",
        version="test",
    )
    path = tmp_path_factory.mktemp("models") / "identity.keras"
    save_model(build_eelspecnet(core), path, contract)
    return path


@pytest.fixture(scope="session")
def gaussian_zlp_spectra():
    """``gaussian_zlp_spectra(n_channels, zlp_positions, fwhm=12, loss_level=2e-3, total=1e6)``:
    synthetic low-loss spectra, a Gaussian ZLP and a smooth loss onset, ``total`` counts each."""
    return _gaussian_zlp_spectra


def _gaussian_zlp_spectra(n_channels, zlp_positions, fwhm=12.0, loss_level=2e-3, total=1e6):
    """Synthetic low-loss spectra: Gaussian ZLP + a smooth loss onset, ``total`` counts each."""
    channels = np.arange(n_channels)
    zlp_positions = np.atleast_1d(np.asarray(zlp_positions, dtype=float))
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    offset = channels[None, :] - zlp_positions[..., None]
    spectra = np.exp(-0.5 * (offset / sigma) ** 2)
    spectra += loss_level * np.clip(offset / 50.0, 0.0, 1.0) ** 1.5
    return total * spectra / spectra.sum(axis=-1, keepdims=True)


@pytest.fixture
def data_dir():
    """``tests/data``: measured files with their sources and licences (``tests/data/README.md``)."""
    return DATA_DIR
