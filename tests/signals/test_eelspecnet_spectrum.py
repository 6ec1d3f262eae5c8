"""The HyperSpy extension: registration, ``eelspecnet_deconvolve`` and its errors, real data."""

import copy
import warnings
from importlib.resources import files

import numpy as np
import pytest
import yaml
from conftest import DATA_DIR, IDENTITY_ZLP_CHANNEL, WS2_DISPERSION, gaussian_zlp_spectra, load_ws2

import exspy
import hyperspy.api as hs

import hyperspy_eelspecnet
from hyperspy_eelspecnet import EELSpecNetResult, EELSpecNetSpectrum, LazyEELSpecNetSpectrum
from hyperspy_eelspecnet.restoration import own_zlp_psf, zlp_fwhm

REGISTERED = yaml.safe_load((files("hyperspy_eelspecnet") / "hyperspy_extension.yaml").read_text())["signals"]


def synthetic_signal(nav_shape=(3, 4), n_channels=400, zlp=100.0, signal_type="EELS"):
    """An EELS signal of synthetic low-loss spectra (ZLP FWHM 12 channels, drifting a little)."""
    positions = zlp + np.linspace(-2.3, 2.7, int(np.prod(nav_shape))).reshape(nav_shape)
    signal = hs.signals.Signal1D(gaussian_zlp_spectra(n_channels, positions))
    signal.set_signal_type(signal_type)
    axis = signal.axes_manager.signal_axes[0]
    axis.scale, axis.offset, axis.units, axis.name = WS2_DISPERSION, -zlp * WS2_DISPERSION, "eV", "Energy loss"
    signal.metadata.General.title = "synthetic"
    return signal


def assert_unchanged(signal, before):
    np.testing.assert_array_equal(signal.data, before.data)
    assert signal.metadata.as_dictionary() == before.metadata.as_dictionary()


# --------------------------------------------------------------------------- registration


def test_yaml_registers_only_our_signal_type():
    assert set(REGISTERED) == {"EELSpecNetSpectrum", "LazyEELSpecNetSpectrum"}
    assert {spec["signal_type"] for spec in REGISTERED.values()} == {"EELS_EELSpecNet"}
    assert all(spec["signal_type_aliases"] == ["EELSpecNet"] for spec in REGISTERED.values())
    assert issubclass(EELSpecNetSpectrum, exspy.signals.EELSSpectrum)
    assert issubclass(LazyEELSpecNetSpectrum, exspy.signals.LazyEELSSpectrum)


@pytest.mark.parametrize("class_name", sorted(REGISTERED))
@pytest.mark.parametrize("signal_type", ["EELS_EELSpecNet", "EELSpecNet"])
def test_registered_classes_survive_set_signal_type_and_lazy_round_trips(class_name, signal_type):
    spec = REGISTERED[class_name]
    signal = hs.signals.Signal1D(np.random.default_rng(0).random((2, 3, 64)))
    if spec["lazy"]:
        signal = signal.as_lazy()
    signal.set_signal_type(signal_type)
    assert type(signal).__name__ == class_name
    assert signal.metadata.Signal.signal_type == "EELS_EELSpecNet"

    lazy = signal.as_lazy()
    assert isinstance(lazy, LazyEELSpecNetSpectrum)
    lazy.compute()
    assert type(lazy) is EELSpecNetSpectrum
    assert type(signal.deepcopy()) is type(signal)
    assert type(copy.deepcopy(signal)) is type(signal)
    mapped = signal.map(np.sqrt, inplace=False)
    assert isinstance(mapped, EELSpecNetSpectrum) and mapped._lazy == signal._lazy
    assert hasattr(signal, "eelspecnet_deconvolve")


def test_plain_eels_keeps_its_class_and_gains_the_method():
    signal = synthetic_signal()
    assert type(signal) is exspy.signals.EELSSpectrum
    assert signal.eelspecnet_deconvolve.__func__ is hyperspy_eelspecnet.signals.eelspecnet_deconvolve
    assert hasattr(signal.as_lazy(), "eelspecnet_deconvolve")


def test_dm4_loads_through_hs_load_with_the_method():
    for lazy in (False, True):
        signal = hs.load(DATA_DIR / "EELS_SI.dm4", lazy=lazy)
        assert isinstance(signal, exspy.signals.EELSSpectrum) and signal._lazy == lazy
        assert signal.metadata.Signal.signal_type == "EELS"
        assert signal.axes_manager.signal_shape == (2048,)
        assert callable(signal.eelspecnet_deconvolve)


# --------------------------------------------------------------------------- results


def test_result_signals_identity_model(identity_model):
    signal = synthetic_signal()
    before = signal.deepcopy()
    result = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=5)
    assert isinstance(result, EELSpecNetResult)
    restored, rl = result
    assert_unchanged(signal, before)
    for out in (restored, rl):
        assert type(out) is exspy.signals.EELSSpectrum and out.metadata.Signal.signal_type == "EELS"
        assert out.data.shape == signal.data.shape
        assert out.axes_manager.signal_axes[0].axis.tolist() == signal.axes_manager.signal_axes[0].axis.tolist()
        assert out.axes_manager.navigation_shape == signal.axes_manager.navigation_shape
        record = out.metadata.Signal.EELSpecNet
        assert record.model.name == "identity-test" and len(record.model.sha256) == 64
        assert record.model.file == str(identity_model)
        assert record.richardson_lucy.iterations == 5
        assert "own zero-loss peak" in record.richardson_lucy.psf_source
        assert "linear interpolation" in record.preprocessing.shift
    assert restored.metadata.General.title == "synthetic after EELSpecNet restoration (identity-test vtest)"
    assert rl.metadata.General.title == "synthetic after Richardson-Lucy deconvolution 5 iterations"
    # The identity network gives back the input, with counts conserved (ZLP at 97.7-102.7 and
    # 400 channels: every channel lies inside the window's usable 112 + 367 channels).
    assert np.isfinite(restored.data).all()
    np.testing.assert_allclose(restored.data.sum(-1), signal.data.sum(-1), rtol=1e-3)
    np.testing.assert_allclose(restored.data, signal.data, atol=0.02 * signal.data.max())


def test_rl_skipped_and_own_class_kept(identity_model):
    signal = synthetic_signal(signal_type="EELSpecNet")
    restored, rl = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)
    assert rl is None
    assert type(restored) is EELSpecNetSpectrum


def test_uncovered_channels_are_nan_with_warning(identity_model):
    signal = synthetic_signal(nav_shape=(2,), n_channels=700, zlp=200.0)
    with pytest.warns(UserWarning, match="channels below and .* channels above the zero-loss peak lie outside"):
        restored, _ = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)
    covered = np.isfinite(restored.data)
    assert not covered[:, :60].any() and not covered[:, -100:].any()
    np.testing.assert_allclose(
        np.nansum(restored.data, -1), np.where(covered, signal.data, 0).sum(-1), rtol=1e-3
    )


@pytest.mark.parametrize("lazy_input, lazy_output", [(False, None), (True, None), (True, False), (False, True)])
def test_laziness_of_results_and_same_numbers(identity_model, lazy_input, lazy_output):
    signal = synthetic_signal()
    reference = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=5)
    if lazy_input:
        signal = signal.as_lazy()
        signal.rechunk(nav_chunks=(2, 2))
    result = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=5, lazy_output=lazy_output)
    expect_lazy = lazy_input if lazy_output is None else lazy_output
    for out, ref in zip(result, reference):
        assert out._lazy == expect_lazy
        if expect_lazy:
            assert out.data.chunks[-1] == (400,)
            out.compute()
        np.testing.assert_allclose(out.data, ref.data, rtol=1e-6, atol=1e-6 * np.nanmax(ref.data))


def test_progressbar_and_batches(identity_model, capsys):
    signal = synthetic_signal()
    reference, _ = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)
    restored, _ = signal.eelspecnet_deconvolve(
        model=identity_model, rl_iterations=0, batch_size=5, show_progressbar=True
    )
    assert "3/3" in capsys.readouterr().err  # 12 spectra in batches of 5
    np.testing.assert_allclose(restored.data, reference.data, rtol=1e-6)


def test_integer_data_are_converted(identity_model):
    signal = synthetic_signal()
    signal.change_dtype("int32")
    restored, rl = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=3)
    assert restored.data.dtype == np.float64 and rl.data.dtype == np.float64
    assert restored.metadata.Signal.EELSpecNet.preprocessing.input_dtype == "int32"
    assert signal.data.dtype == np.int32


# --------------------------------------------------------------------------- Richardson-Lucy


def positive_ws2_specimen():
    """WS2 specimen spectra (all counts positive, so exspy's RL and ours see the same data)."""
    signal = load_ws2("Specimen")
    assert signal.data.min() > 0
    return signal


def vacuum_psf():
    vacuum = load_ws2("Vacuum").inav[0]
    vacuum.data = np.clip(vacuum.data, 0, None) / np.clip(vacuum.data, 0, None).sum()
    return vacuum


@pytest.mark.parametrize("lazy", [False, True])
def test_rl_matches_exspy_with_measured_psf(identity_model, lazy):
    signal = positive_ws2_specimen()
    psf = vacuum_psf()
    expected = signal.richardson_lucy_deconvolution(psf, iterations=10, show_progressbar=False)
    source = signal.as_lazy() if lazy else signal
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # channels beyond the identity model window
        _, rl = source.eelspecnet_deconvolve(model=identity_model, rl_iterations=10, psf=psf, lazy_output=False)
    np.testing.assert_allclose(rl.data, expected.data, rtol=1e-9, atol=1e-9 * expected.data.max())
    assert rl.metadata.Signal.EELSpecNet.richardson_lucy.psf_source == f"signal {psf.metadata.General.title!r}"


def test_rl_matches_exspy_with_own_zlp_psf_per_pixel(identity_model):
    signal = positive_ws2_specimen()
    psf = signal._deepcopy_with_new_data(own_zlp_psf(signal.data))
    expected = signal.richardson_lucy_deconvolution(psf, iterations=8, show_progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, own = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=8)
        _, per_pixel = signal.as_lazy().eelspecnet_deconvolve(model=identity_model, rl_iterations=8, psf=psf.data)
    np.testing.assert_allclose(own.data, expected.data, rtol=1e-9, atol=1e-9 * expected.data.max())
    per_pixel.compute()
    np.testing.assert_allclose(per_pixel.data, expected.data, rtol=1e-9, atol=1e-9 * expected.data.max())


def test_rl_accepts_shorter_psf_per_pixel_lazily(identity_model):
    signal = synthetic_signal()
    psf = gaussian_zlp_spectra(101, np.full((3, 4), 50.0), fwhm=8.0, loss_level=0)
    eager = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=4, psf=psf).richardson_lucy
    lazy = signal.as_lazy().eelspecnet_deconvolve(model=identity_model, rl_iterations=4, psf=psf).richardson_lucy
    lazy.compute()
    np.testing.assert_allclose(lazy.data, eager.data, rtol=1e-9)


# --------------------------------------------------------------------------- bad input


def test_core_loss_dm4_has_no_zlp(identity_model):
    signal = hs.load(DATA_DIR / "EELS_SI.dm4")
    before = signal.deepcopy()
    with pytest.raises(ValueError, match="No zero-loss peak found in 4 spectra.*core-loss"):
        signal.eelspecnet_deconvolve(model=identity_model)
    assert_unchanged(signal, before)


def test_core_loss_dm4_lazy_has_no_zlp(identity_model):
    signal = hs.load(DATA_DIR / "EELS_SI.dm4", lazy=True)
    with pytest.raises(ValueError, match="No zero-loss peak"):
        signal.eelspecnet_deconvolve(model=identity_model)


def _with_nan(signal):
    signal.data[1, 2, 10] = np.nan
    signal.data[0, 3, 11] = np.inf
    return signal


def _all_zero(signal):
    signal.data[2, 1] = 0.0
    return signal


def _negative(signal):
    signal.data[0, 0] *= -1.0
    return signal


def _short_after_zlp(signal):
    return signal.isig[: 120 + 40].deepcopy()


def _image(signal):
    # An EELS signal cannot have two signal axes, so this one is made of the spectra viewed as
    # images (the method is called as a function on it below).
    return signal.as_signal2D((0, 1))


def _non_uniform_axis(signal):
    signal.axes_manager.signal_axes[0].convert_to_non_uniform_axis()
    return signal


@pytest.mark.parametrize(
    "spoil, error, pattern",
    [
        (_with_nan, ValueError, r"2 NaN or infinite values in 2 spectra \(navigation indices in s\.inav order: \(3, 0\), \(2, 1\)\)"),
        (_all_zero, ValueError, r"No positive area or maximum in 1 spectrum .*\(1, 2\).*dark-reference"),
        (_negative, ValueError, r"No positive area or maximum in 1 spectrum .*\(0, 0\)"),
        (_short_after_zlp, ValueError, r"Too few channels around the zero-loss peak.*at least 32 channels below and 64 above"),
        (_image, ValueError, r"signal dimension 2.*as_signal1D"),
        (_non_uniform_axis, ValueError, r"uniform energy axis.*interpolate_on_axis"),
    ],
)
def test_bad_input_is_refused_and_left_unchanged(identity_model, spoil, error, pattern):
    signal = spoil(synthetic_signal())
    before = signal.deepcopy()
    with pytest.raises(error, match=pattern):
        hyperspy_eelspecnet.signals.eelspecnet_deconvolve(signal, model=identity_model)
    assert_unchanged(signal, before)


def test_nan_is_refused_for_lazy_signals(identity_model):
    signal = _with_nan(synthetic_signal()).as_lazy()
    with pytest.raises(ValueError, match="2 NaN or infinite values"):
        signal.eelspecnet_deconvolve(model=identity_model)


def test_complex_is_refused(identity_model):
    signal = synthetic_signal()
    signal.change_dtype("complex128")  # becomes a ComplexSignal1D: call the method as a function
    with pytest.raises(TypeError, match="complex.*real part or the modulus"):
        hyperspy_eelspecnet.signals.eelspecnet_deconvolve(signal, model=identity_model)


@pytest.mark.parametrize(
    "psf, pattern",
    [
        (np.ones((2, 50)), r"PSF has shape \(2, 50\).*navigation shape is \(3, 4\)"),
        (np.ones((4, 3, 50)), r"PSF has shape \(4, 3, 50\)"),
        (hs.signals.Signal1D(np.ones((2, 2, 50))), r"PSF has shape \(2, 2, 50\)"),
        (hs.signals.Signal2D(np.ones((50, 50))), "signal dimension 2"),
        (np.zeros(50), "no positive counts"),
    ],
)
def test_psf_mismatch_is_refused(identity_model, psf, pattern):
    signal = synthetic_signal()
    if hasattr(psf, "axes_manager") and psf.axes_manager.signal_dimension == 1:
        psf.axes_manager.signal_axes[0].scale = WS2_DISPERSION
    before = signal.deepcopy()
    with pytest.raises(ValueError, match=pattern):
        signal.eelspecnet_deconvolve(model=identity_model, psf=psf)
    assert_unchanged(signal, before)


def test_psf_with_other_energy_scale_is_refused(identity_model):
    psf = hs.signals.Signal1D(np.ones(50))
    psf.axes_manager.signal_axes[0].scale = 0.01
    with pytest.raises(ValueError, match="rebin or interpolate the PSF"):
        synthetic_signal().eelspecnet_deconvolve(model=identity_model, psf=psf)


def test_model_errors_surface(tmp_path, identity_model):
    from hyperspy_eelspecnet.model import ModelContract

    signal = synthetic_signal()
    with pytest.raises(FileNotFoundError, match="No model file"):
        signal.eelspecnet_deconvolve(model=tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a keras archive")
    ModelContract().to_json(junk.with_suffix(".json"))
    with pytest.raises(ValueError, match="not a loadable Keras model"):
        signal.eelspecnet_deconvolve(model=junk)
    other = tmp_path / "other.keras"
    other.write_bytes(identity_model.read_bytes())
    ModelContract(n_channels=1024).to_json(other.with_suffix(".json"))
    with pytest.raises(ValueError, match="takes 512 channels but its contract says 1024"):
        signal.eelspecnet_deconvolve(model=other)


def test_contract_warnings_reach_the_user(identity_model):
    signal = synthetic_signal()
    signal.axes_manager.signal_axes[0].scale = 0.05
    with pytest.warns(UserWarning, match="dispersion 0.05 eV/channel differs by a factor 10"):
        signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)


@pytest.mark.parametrize("kwargs", [{"rl_iterations": -1}, {"rl_iterations": 2.5}, {"batch_size": 0}])
def test_bad_arguments(identity_model, kwargs):
    with pytest.raises(ValueError, match="must be a"):
        synthetic_signal().eelspecnet_deconvolve(model=identity_model, **kwargs)


# --------------------------------------------------------------------------- real data, real model


def ws2_map():
    """A 4x3 map of the six WS2 spectra, each twice with slightly different scale."""
    ws2 = load_ws2()
    data = np.concatenate([ws2.data, ws2.data * 1.01]).reshape(4, 3, -1)
    out = ws2._deepcopy_with_new_data(data)
    return out


def test_ws2_restored_with_default_model(default_model):
    signal = load_ws2()
    before = signal.deepcopy()
    with pytest.warns(UserWarning, match="262 channels above"):  # 2000 channels, usable window to +1551
        restored, rl = signal.eelspecnet_deconvolve(rl_iterations=20)
    assert_unchanged(signal, before)
    data = restored.data
    covered = np.isfinite(data)
    assert covered[:, :1738].all() and not covered[:, 1738:].any()
    assert np.all(data[covered] >= 0)
    assert np.isfinite(rl.data).all() and np.all(rl.data >= 0)
    # ZLP at least three times narrower than measured (16-17 channels).
    assert np.all(zlp_fwhm(np.where(covered, data, 0)) * 3 <= zlp_fwhm(signal.data))
    # Counts conserved over the covered channels.
    np.testing.assert_allclose(np.nansum(data, -1), np.where(covered, signal.data, 0).sum(-1), rtol=1e-3)
    assert restored.metadata.Signal.EELSpecNet.model.sha256 == hyperspy_eelspecnet.model.file_sha256(default_model)


def test_ws2_loss_features_preserved_by_default_model(default_model):
    # Loss-feature preservation criterion (set by the lead, measured on the final model): on the
    # WS2 specimen spectra, the restored 2-8 eV integrated intensity stays within 25 % of the
    # input's. Do not weaken this tolerance to make an interim model pass.
    signal = load_ws2("Specimen")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        restored, _ = signal.eelspecnet_deconvolve(rl_iterations=0)
    energy = signal.axes_manager.signal_axes[0].axis
    # 2-8 eV, over the channels the restoration returns (the model's usable window ends at
    # 7.755 eV here; beyond it the output is NaN, see the model card's edge_channels).
    band = (energy >= 2.0) & (energy <= 8.0) & np.isfinite(restored.data).all(0)
    assert energy[band][-1] > 7.7
    ratio = restored.data[:, band].sum(-1) / signal.data[:, band].sum(-1)
    assert np.all(np.abs(ratio - 1) <= 0.25), f"2-8 eV restored/input intensity ratios: {ratio}"
    # ... and its shape: binned to 0.25 eV (50 channels, well above the noise), the restored
    # continuum follows the input's within 25 % in every bin, and the two are correlated.
    bins = band.nonzero()[0][: band.sum() // 50 * 50].reshape(-1, 50)
    restored_bins, input_bins = restored.data[:, bins].sum(-1), signal.data[:, bins].sum(-1)
    assert np.all(np.abs(restored_bins / input_bins - 1) <= 0.25), restored_bins / input_bins
    for restored_row, input_row in zip(restored_bins, input_bins):
        assert np.corrcoef(restored_row, input_row)[0, 1] > 0.9


def test_ws2_eager_lazy_distributed_identical(default_model):
    distributed = pytest.importorskip("distributed")
    signal = ws2_map()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        eager = signal.eelspecnet_deconvolve(rl_iterations=10)
        lazy_signal = signal.as_lazy()
        lazy_signal.rechunk(nav_chunks=(2, 3))
        lazy = lazy_signal.eelspecnet_deconvolve(rl_iterations=10, lazy_output=False)
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster, distributed.Client(cluster):
            remote = lazy_signal.eelspecnet_deconvolve(rl_iterations=10)
            for out in remote:
                out.compute()
    for result in (lazy, remote):
        for out, ref in zip(result, eager):
            scale = np.nanmax(ref.data)
            np.testing.assert_array_equal(np.isnan(out.data), np.isnan(ref.data))
            np.testing.assert_allclose(out.data, ref.data, rtol=1e-6, atol=1e-6 * scale)
