"""The HyperSpy glue: ``s.eelspecnet_deconvolve()`` on EELS signals, its results, its refusals,
eager/lazy/distributed alike, Richardson-Lucy with a measured vacuum PSF, and the bundled model
on the measured WS2 spectra."""

import dataclasses
from importlib.resources import files

import numpy as np
import pytest
import yaml

import hyperspy_eelspecnet  # first: it imports exspy without HyperSpy's deprecation noise
import hyperspy.api as hs
from exspy.signals import EELSSpectrum, LazyEELSSpectrum
from hyperspy_eelspecnet import EELSpecNetResult, EELSpecNetSpectrum, LazyEELSpecNetSpectrum
from hyperspy_eelspecnet.model import ModelContract, file_sha256, load_model
from hyperspy_eelspecnet.restoration import own_zlp_psf
from hyperspy_eelspecnet.richardson_lucy import richardson_lucy
from hyperspy_eelspecnet.spectral import fwhm, locate_zlp
from hyperspy_eelspecnet.vacuum import prepare_vacuum_psfs

REGISTERED = yaml.safe_load((files("hyperspy_eelspecnet") / "hyperspy_extension.yaml").read_text())["signals"]
DISPERSION = 0.005


@pytest.fixture(scope="module")
def synthetic(gaussian_zlp_spectra):
    """``synthetic(nav_shape, n_channels, zlp, fwhm)``: a calibrated EELS signal of Gaussian-ZLP
    spectra whose ZLP drifts by a few channels from pixel to pixel."""

    def make(nav_shape=(4, 3), n_channels=256, zlp=80.0, zlp_fwhm=12.0):
        positions = zlp + np.linspace(-2.3, 2.7, int(np.prod(nav_shape))).reshape(nav_shape)
        signal = EELSSpectrum(gaussian_zlp_spectra(n_channels, positions, fwhm=zlp_fwhm))
        for axis, name in zip(signal.axes_manager.navigation_axes, "xy"):
            axis.name, axis.scale, axis.offset, axis.units = name, 2.5, 10.0, "nm"
        energy = signal.axes_manager.signal_axes[0]
        energy.name, energy.scale, energy.offset, energy.units = "Energy loss", DISPERSION, -zlp * DISPERSION, "eV"
        signal.metadata.General.title = "synthetic"
        signal.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 60.0)
        return signal

    return make


def axes_of(signal):
    return [(a.name, a.size, a.units, a.navigate, a.axis.tolist()) for a in signal.axes_manager._axes]


def assert_unchanged(signal, before):
    np.testing.assert_array_equal(signal.data, before.data)
    assert signal.metadata.as_dictionary() == before.metadata.as_dictionary()
    assert axes_of(signal) == axes_of(before)


# --------------------------------------------------------------------------- the method exists


def test_eels_signals_gain_the_method_and_keep_their_class(synthetic, data_dir):
    signal = synthetic()
    assert type(signal) is EELSSpectrum
    assert signal.eelspecnet_deconvolve.__func__ is hyperspy_eelspecnet.signals.eelspecnet_deconvolve
    lazy = signal.as_lazy()
    assert isinstance(lazy, LazyEELSSpectrum) and callable(lazy.eelspecnet_deconvolve)
    for as_lazy in (False, True):  # a file HyperSpy reads as EELS
        loaded = hs.load(data_dir / "EELS_SI.dm4", lazy=as_lazy)
        assert isinstance(loaded, EELSSpectrum) and loaded._lazy is as_lazy
        assert callable(loaded.eelspecnet_deconvolve)


def test_a_lazy_map_chunked_along_energy_is_restored_in_blocks_of_bounded_size(synthetic, identity_model):
    from hyperspy_eelspecnet.signals.eelspecnet_spectrum import EAGER_CHUNK_SPECTRA

    signal = synthetic(nav_shape=(48, 48), n_channels=256)
    lazy = signal.as_lazy()
    lazy.data = lazy.data.rechunk((48, 48, 32))  # a file chunked along the energy axis
    restored, _ = lazy.eelspecnet_deconvolve(model=identity_model, rl_iterations=0, lazy_output=True)
    assert max(np.prod([max(c) for c in restored.data.chunks[:-1]]), 1) <= EAGER_CHUNK_SPECTRA
    eager, _ = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)
    np.testing.assert_allclose(restored.data.compute(), eager.data, rtol=1e-6)
    # A map chunked pixel by pixel is restored in blocks of many spectra, not one network call each.
    lazy.data = lazy.data.rechunk((1, 1, 256))
    restored, _ = lazy.eelspecnet_deconvolve(model=identity_model, rl_iterations=0, lazy_output=True)
    assert EAGER_CHUNK_SPECTRA // 4 <= np.prod([max(c) for c in restored.data.chunks[:-1]]) <= EAGER_CHUNK_SPECTRA
    np.testing.assert_allclose(restored.data.compute(), eager.data, rtol=1e-6)


def test_own_signal_type_is_registered_for_eager_and_lazy_signals():
    assert set(REGISTERED) == {"EELSpecNetSpectrum", "LazyEELSpecNetSpectrum"}
    signal = hs.signals.Signal1D(np.ones((2, 64)))
    signal.set_signal_type("EELSpecNet")  # the alias
    assert type(signal) is EELSpecNetSpectrum and signal.metadata.Signal.signal_type == "EELS_EELSpecNet"
    lazy = signal.as_lazy()
    assert type(lazy) is LazyEELSpecNetSpectrum
    lazy.compute()
    assert type(lazy) is EELSpecNetSpectrum


# --------------------------------------------------------------------------- results


def test_identity_model_gives_back_the_input_on_its_axes_with_a_record(synthetic, identity_model):
    signal = synthetic()
    before = signal.deepcopy()
    result = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=5)
    assert isinstance(result, EELSpecNetResult) and result.input is signal
    restored, rl = result
    assert_unchanged(signal, before)
    for out in (restored, rl):
        assert type(out) is EELSSpectrum and not out._lazy
        assert out.data.shape == (4, 3, 256) and out.data.dtype == np.float64
        assert axes_of(out) == axes_of(signal)
        assert out.metadata.Acquisition_instrument.TEM.beam_energy == 60.0
        assert np.isfinite(out.data).all()
        np.testing.assert_allclose(out.data.sum(-1), signal.data.sum(-1), rtol=1e-6)
    # The network returns its input: padding, normalisation and their inverses cancel exactly.
    np.testing.assert_allclose(restored.data, signal.data, rtol=1e-5, atol=1e-6 * signal.data.max())
    # Richardson-Lucy beside it, with each spectrum's own ZLP as its PSF.
    np.testing.assert_allclose(
        rl.data, richardson_lucy(signal.data, own_zlp_psf(signal.data), 5), rtol=1e-9, atol=1e-9 * signal.data.max()
    )
    assert np.all(fwhm(rl.data) < fwhm(signal.data) - 1)
    assert restored.metadata.General.title == "synthetic after EELSpecNet restoration (identity-test vtest)"
    assert rl.metadata.General.title == "synthetic after Richardson-Lucy deconvolution 5 iterations"

    record = restored.metadata.Signal.EELSpecNet
    assert record.result == "EELSpecNet restoration"
    assert rl.metadata.Signal.EELSpecNet.result == "Richardson-Lucy deconvolution"
    assert (record.model.name, record.model.version) == ("identity-test", "test")
    assert record.model.file == str(identity_model)
    assert record.model.sha256 == file_sha256(identity_model)
    assert record.model.n_channels == 512 and record.model.dispersion == DISPERSION
    assert record.preprocessing.input_dtype == "float64"
    assert record.preprocessing.zlp_fwhm_channels_median == pytest.approx(12.0, abs=0.2)
    assert record.preprocessing.zlp_position_channels_median == pytest.approx(80.2, abs=0.3)
    assert record.richardson_lucy.iterations == 5
    assert "own zero-loss peak" in record.richardson_lucy.psf_source


def test_the_record_and_axes_survive_saving(synthetic, identity_model, tmp_path):
    signal = synthetic(nav_shape=(2,))
    signal.change_dtype("int32")  # counts: restored as float64, the input left as it was
    restored, rl = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)
    assert rl is None and signal.data.dtype == np.int32 and restored.data.dtype == np.float64
    restored.save(tmp_path / "restored.hspy")
    loaded = hs.load(tmp_path / "restored.hspy")
    assert isinstance(loaded, EELSSpectrum) and axes_of(loaded) == axes_of(signal)
    record = loaded.metadata.Signal.EELSpecNet
    assert record.model.sha256 == file_sha256(identity_model)
    assert record.preprocessing.input_dtype == "int32"
    assert record.richardson_lucy.iterations == 0
    np.testing.assert_allclose(loaded.data, signal.data, rtol=1e-5, atol=1e-6 * signal.data.max())


def test_float16_input_comes_back_as_float32_without_overflow(synthetic, identity_model):
    signal = synthetic(nav_shape=(2,))
    signal.data *= 0.5  # ZLP maximum ~38000, inside float16; 10 RL iterations take it to ~71000
    signal.change_dtype("float16")
    restored, rl = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=10)
    assert signal.data.dtype == np.float16
    for out in (restored, rl):
        assert out.data.dtype == np.float32 and np.isfinite(out.data).all()
    assert rl.data.max() > np.finfo(np.float16).max
    np.testing.assert_allclose(restored.data, signal.data, rtol=2e-3, atol=1e-3 * signal.data.max())
    assert restored.metadata.Signal.EELSpecNet.preprocessing.input_dtype == "float16"


def test_a_fine_tuned_models_matching_to_a_gaussian_is_recorded(synthetic, identity_model):
    model, contract = load_model(identity_model)
    offsets = np.arange(65) - 32  # a vacuum PSF as prepare_vacuum_psfs gives it: maximum on 32
    vacuum_psf = np.exp(-0.5 * (offsets / 2.5) ** 2) + 0.05 * np.exp(-np.abs(offsets) / 6.0)
    vacuum_psf /= vacuum_psf.sum()
    fine_tuned = dataclasses.replace(contract, vacuum_psf=vacuum_psf.tolist())
    signal = synthetic(nav_shape=(2,))
    restored, _ = signal.eelspecnet_deconvolve(model=(model, fine_tuned), rl_iterations=0)
    matching = restored.metadata.Signal.EELSpecNet.preprocessing.gaussian_matching
    assert "match_to_gaussian" in matching.step
    assert matching.vacuum_psf_fwhm_channels == pytest.approx(float(fwhm(vacuum_psf[None])[0]))
    assert matching.vacuum_psf_channels == 65 and len(matching.vacuum_psf_sha256_16) == 16
    # A model that takes spectra as recorded says so.
    plain, _ = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)
    assert plain.metadata.Signal.EELSpecNet.preprocessing.gaussian_matching.startswith("none")


def test_own_signal_type_is_kept(synthetic, identity_model):
    signal = synthetic(nav_shape=(2,))
    signal.set_signal_type("EELSpecNet")
    restored, rl = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=2)
    assert type(restored) is EELSpecNetSpectrum and type(rl) is EELSpecNetSpectrum


@pytest.mark.parametrize("lazy_input, lazy_output", [(True, None), (True, False), (False, True)])
def test_lazy_results_equal_eager_ones(synthetic, identity_model, lazy_input, lazy_output):
    signal = synthetic()
    reference = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=5)
    source = signal.as_lazy() if lazy_input else signal
    if lazy_input:
        source.rechunk(nav_chunks=(2, 2))
    result = source.eelspecnet_deconvolve(model=identity_model, rl_iterations=5, lazy_output=lazy_output)
    expect_lazy = lazy_input if lazy_output is None else lazy_output
    for out, ref in zip(result, reference):
        assert out._lazy is expect_lazy and axes_of(out) == axes_of(ref)
        if expect_lazy:
            assert out.data.chunks[-1] == (256,)
            out.compute()
        np.testing.assert_allclose(out.data, ref.data, rtol=1e-9, atol=1e-12 * ref.data.max())


def test_a_window_without_the_zlp_at_0_ev_is_refused_unless_forced(synthetic, identity_model):
    import warnings

    signal = synthetic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # calibrated, the ZLP at 0 eV: no word
        signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)
    energy = signal.axes_manager.signal_axes[0]
    energy.offset = 12.0  # a plasmon window: 12-13.3 eV, its maximum at 12.4 eV
    with pytest.raises(ValueError, match=r"lies at 12\.4 to 12\.4 eV, not near 0 eV \(0 eV lies outside the window.*force=True"):
        signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)
    with pytest.warns(UserWarning, match=r"lies at 12\.4 .*Restored anyway"):
        restored, _ = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0, force=True)
    assert restored.data.shape == signal.data.shape
    energy.offset, energy.scale, energy.units = -9000.0, 40.0, "meV"  # -9 to 1.2 eV, the maximum at -5.8 eV
    with pytest.raises(ValueError, match=r"lies at -5\.89 to -5\.69 eV, not near 0 eV \(in 12 of 12 spectra"):
        signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)
    energy.units = "channels"  # not an energy: nothing known of where 0 eV is
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)


def test_a_restored_signal_is_not_restored_again_unless_forced(synthetic, identity_model):
    restored, rl = synthetic().eelspecnet_deconvolve(model=identity_model, rl_iterations=3)
    for result in (restored, rl):
        with pytest.raises(ValueError, match="is an EELSpecNet result already .*Restore the recorded signal"):
            result.eelspecnet_deconvolve(model=identity_model, rl_iterations=0)
    with pytest.warns(UserWarning, match="Restored anyway"):
        again, _ = restored.eelspecnet_deconvolve(model=identity_model, rl_iterations=0, force=True)
    np.testing.assert_allclose(again.data, restored.data, rtol=1e-5)  # the identity model (float32)


def test_a_fine_tuned_model_refuses_another_dispersion_than_its_vacuums(synthetic, identity_model, tmp_path):
    from hyperspy_eelspecnet.model import load_model

    model, contract = load_model(identity_model)
    contract.vacuum_psf = [0.0, 0.25, 0.5, 0.25, 0.0]  # as a fine-tune records it
    contract.dispersion = 0.005
    signal = synthetic()  # 0.005 eV per channel: restored
    signal.eelspecnet_deconvolve(model=(model, contract), rl_iterations=0)
    signal.axes_manager.signal_axes[0].scale = 0.01
    with pytest.raises(ValueError, match=r"fine-tuned on a vacuum ZLP at 0\.005 eV per channel, but this signal has 0\.01"):
        signal.eelspecnet_deconvolve(model=(model, contract), rl_iterations=0)
    signal.axes_manager.signal_axes[0].scale, signal.axes_manager.signal_axes[0].units = 5.0, "meV"
    signal.axes_manager.signal_axes[0].offset *= 1000
    signal.eelspecnet_deconvolve(model=(model, contract), rl_iterations=0)  # 5 meV: the same


def test_the_checks_reading_a_lazy_input_show_their_progress(synthetic, identity_model, capsys):
    lazy = synthetic().as_lazy()
    lazy.eelspecnet_deconvolve(model=identity_model, rl_iterations=0, show_progressbar=True)
    assert "Completed" in "".join(capsys.readouterr())  # the reading pass, before any restoration
    lazy.eelspecnet_deconvolve(model=identity_model, rl_iterations=0, show_progressbar=False)
    assert "Completed" not in "".join(capsys.readouterr())


def test_a_lazy_result_computes_only_itself(synthetic, identity_model, monkeypatch):
    from hyperspy_eelspecnet import restoration

    calls = {"network": 0, "richardson_lucy": 0}
    run, deconvolve = restoration.EELSpecNetDeconvolution.run, restoration.deconvolve_block

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(restoration.EELSpecNetDeconvolution, "run", counted("network", run))
    monkeypatch.setattr(restoration, "deconvolve_block", counted("richardson_lucy", deconvolve))
    source = synthetic().as_lazy()
    restored, rl = source.eelspecnet_deconvolve(model=identity_model, rl_iterations=5)
    assert calls == {"network": 0, "richardson_lucy": 0}
    blocks, rl_blocks = restored.data.npartitions, rl.data.npartitions
    restored.compute()
    assert calls == {"network": blocks, "richardson_lucy": 0}
    rl.compute()
    assert calls == {"network": blocks, "richardson_lucy": rl_blocks}


def test_dask_distributed_gives_the_eager_numbers(synthetic, identity_model):
    distributed = pytest.importorskip("distributed")
    signal = synthetic()
    reference = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=5)
    lazy = signal.as_lazy()
    lazy.rechunk(nav_chunks=(2, 2))
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        result = lazy.eelspecnet_deconvolve(model=identity_model, rl_iterations=5)
        for out in result:
            out.compute()
        assert client.run(lambda: 1)  # the cluster was up while computing
    for out, ref in zip(result, reference):
        np.testing.assert_allclose(out.data, ref.data, rtol=1e-9, atol=1e-12 * ref.data.max())


@pytest.mark.slow
def test_dask_distributed_worker_processes_load_the_model_by_path(synthetic, identity_model):
    """Worker processes get the engine pickled as its path and load the model themselves."""
    distributed = pytest.importorskip("distributed")
    signal = synthetic()
    reference = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=5)
    lazy = signal.as_lazy()
    lazy.rechunk(nav_chunks=(2, 2))
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster):
        result = lazy.eelspecnet_deconvolve(model=identity_model, rl_iterations=5)
        for out in result:
            out.compute()
    for out, ref in zip(result, reference):
        np.testing.assert_allclose(out.data, ref.data, rtol=1e-9, atol=1e-12 * ref.data.max())


# --------------------------------------------------------------------------- Richardson-Lucy with a vacuum PSF


def test_richardson_lucy_with_several_vacuum_spectra_as_one_psf(load_ws2, identity_model):
    specimen, vacuum = load_ws2("Specimen"), load_ws2("Vacuum")
    assert vacuum.axes_manager.navigation_shape != specimen.axes_manager.navigation_shape
    restored, rl = specimen.eelspecnet_deconvolve(model=identity_model, rl_iterations=10, psf=vacuum)
    # The two vacuum spectra, each centred on its maximum at unit sum, averaged into one PSF.
    psf = prepare_vacuum_psfs(vacuum.data).psfs.mean(axis=0)
    expected = richardson_lucy(specimen.data, psf, 10)
    np.testing.assert_allclose(rl.data, expected, rtol=1e-9, atol=1e-9 * expected.max())
    assert rl.data.shape == (4, 2000) and np.isfinite(rl.data).all() and rl.data.min() >= 0
    assert np.all(fwhm(rl.data) < 0.8 * fwhm(specimen.data))  # 16-17 channels measured
    np.testing.assert_allclose(np.abs(locate_zlp(rl.data) - locate_zlp(specimen.data)), 0, atol=1.0)
    source = rl.metadata.Signal.EELSpecNet.richardson_lucy.psf_source
    assert source.startswith("signal 'WS2 Vacuum': mean of 2 measured vacuum ZLPs")
    assert restored.metadata.Signal.EELSpecNet.richardson_lucy.psf_source == source


def test_one_vacuum_psf_per_spectrum(load_ws2, identity_model):
    specimen, vacuum = load_ws2("Specimen").inav[:2], load_ws2("Vacuum")
    _, rl = specimen.eelspecnet_deconvolve(model=identity_model, rl_iterations=6, psf=vacuum)
    psfs = prepare_vacuum_psfs(vacuum.data).psfs
    for row in range(2):
        expected = richardson_lucy(specimen.data[row], psfs[row], 6)
        np.testing.assert_allclose(rl.data[row], expected, rtol=1e-9, atol=1e-9 * expected.max())
    assert "measured vacuum ZLP, dark offset removed" in rl.metadata.Signal.EELSpecNet.richardson_lucy.psf_source


def test_a_specimen_spectrum_given_as_psf_is_refused_unless_forced(load_ws2, identity_model):
    specimen = load_ws2("Specimen")
    with pytest.raises(ValueError, match="1 of the 1 PSF spectra rise again.*loss features.*force=True"):
        specimen.eelspecnet_deconvolve(model=identity_model, rl_iterations=2, psf=specimen.inav[0])
    with pytest.warns(UserWarning, match="1 of the 1 PSF spectra rise again.*Restored anyway"):
        specimen.eelspecnet_deconvolve(model=identity_model, rl_iterations=2, psf=specimen.inav[0], force=True)


# --------------------------------------------------------------------------- refusals


def _nan(signal):
    signal.data[1, 2, 10] = np.nan
    return signal


def _short(signal):
    return signal.isig[: 80 + 40].deepcopy()  # 40 channels above the ZLP, 64 needed


def _image(signal):
    return signal.as_signal2D((0, 1))


def _non_uniform(signal):
    signal.axes_manager.signal_axes[0].convert_to_non_uniform_axis()
    return signal


def _no_counts(signal):
    signal.data[0, 1] = 0.0
    return signal


def _reversed(signal):
    return signal.isig[::-1]  # energy loss decreasing: a negative scale


@pytest.mark.parametrize(
    "spoil, pattern",
    [
        (_nan, r"1 NaN or infinite values in 1 spectrum \(navigation indices in s\.inav order: \(2, 1\)\)"),
        (_short, r"Too few channels around the zero-loss peak.*at least 32 channels below and 64 above"),
        (_image, r"signal dimension 2.*as_signal1D"),
        (_non_uniform, r"uniform energy axis"),
        (_no_counts, r"No positive area or maximum in 1 spectrum .*\(1, 0\)"),
        (_reversed, r"energy axis in increasing order.*negative scale -0\.005.*s = s\.isig\[::-1\]"),
    ],
    ids=["nan", "too-few-channels", "signal-dimension-2", "non-uniform-axis", "no-counts", "reversed-axis"],
)
def test_bad_input_is_refused_and_left_unchanged(synthetic, identity_model, spoil, pattern):
    signal = spoil(synthetic())
    before = signal.deepcopy()
    with pytest.raises(ValueError, match=pattern):
        # a signal of dimension 2 has no method: call the function
        hyperspy_eelspecnet.signals.eelspecnet_deconvolve(signal, model=identity_model)
    assert_unchanged(signal, before)


def test_nan_in_a_lazy_signal_is_refused_before_the_network(synthetic, identity_model):
    signal = _nan(synthetic()).as_lazy()
    with pytest.raises(ValueError, match="1 NaN or infinite values"):
        signal.eelspecnet_deconvolve(model=identity_model, lazy_output=True)


def test_core_loss_spectra_have_no_zlp(data_dir, identity_model):
    signal = hs.load(data_dir / "EELS_SI.dm4", lazy=True)
    with pytest.raises(ValueError, match=r"No zero-loss peak found in 4 spectra.*core-loss"):
        signal.eelspecnet_deconvolve(model=identity_model)


def test_a_zlp_narrower_than_the_restored_one_is_refused_unless_forced(synthetic, identity_model):
    signal = synthetic(nav_shape=(2,), zlp_fwhm=2.0)  # the identity contract restores 3 channels
    narrow = r"2 spectra .* already narrower \(as narrow as 2\.\d\d channels FWHM\).*force=True"
    with pytest.raises(ValueError, match=narrow):
        signal.eelspecnet_deconvolve(model=identity_model)
    with pytest.warns(UserWarning, match="narrower than the 3 channels FWHM.*fine-tune"):
        restored, _ = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0, force=True)
    assert np.isfinite(restored.data).all()
    np.testing.assert_allclose(restored.data.sum(-1), signal.data.sum(-1), rtol=1e-9)


def test_model_files_of_another_kind_are_refused(synthetic, identity_model, tmp_path):
    signal = synthetic(nav_shape=(2,))
    old = tmp_path / "fixed_window.keras"  # a model of before 0.5.0: one 512-channel window
    old.write_bytes(identity_model.read_bytes())
    contract = ModelContract.from_json(identity_model.with_suffix(".json"))
    dataclasses.replace(contract, length_multiple=0).to_json(old.with_suffix(".json"))
    with pytest.raises(ValueError, match=r"only a 512-channel window with the ZLP on channel 128.*finetune"):
        signal.eelspecnet_deconvolve(model=old)
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a keras archive")
    contract.to_json(junk.with_suffix(".json"))
    with pytest.raises(ValueError, match="not a loadable Keras model"):
        signal.eelspecnet_deconvolve(model=junk)
    with pytest.raises(FileNotFoundError, match="No model file"):
        signal.eelspecnet_deconvolve(model=tmp_path / "missing.keras")


def test_psf_of_another_energy_scale_or_cut_zlp_is_refused(synthetic, identity_model, gaussian_zlp_spectra):
    signal = synthetic()
    psf = hs.signals.Signal1D(gaussian_zlp_spectra(100, [50.0], fwhm=10.0, loss_level=0)[0])
    psf.axes_manager.signal_axes[0].scale = 2 * DISPERSION
    with pytest.raises(ValueError, match="rebin or interpolate the PSF"):
        signal.eelspecnet_deconvolve(model=identity_model, psf=psf)
    with pytest.raises(ValueError, match="cut by the energy window"):
        signal.eelspecnet_deconvolve(model=identity_model, psf=psf.data[:52])


def test_the_fix_for_a_reversed_axis_restores_as_the_increasing_axis(synthetic, identity_model):
    signal = synthetic(nav_shape=(2,))
    restored, rl = _reversed(signal).isig[::-1].eelspecnet_deconvolve(model=identity_model, rl_iterations=3)
    expected, expected_rl = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=3)
    assert axes_of(restored) == axes_of(signal)
    np.testing.assert_array_equal(restored.data, expected.data)
    np.testing.assert_array_equal(rl.data, expected_rl.data)


def test_a_psf_in_mev_on_a_signal_in_ev_is_compared_in_ev(synthetic, identity_model, gaussian_zlp_spectra):
    signal = synthetic(nav_shape=(2,))
    psf = hs.signals.Signal1D(gaussian_zlp_spectra(100, [50.0], fwhm=10.0, loss_level=0)[0])
    psf.axes_manager.signal_axes[0].units = "eV"
    psf.axes_manager.signal_axes[0].scale = DISPERSION
    _, expected = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=3, psf=psf)
    psf.axes_manager.signal_axes[0].convert_to_units("meV")  # 5 meV per channel: the same dispersion
    _, rl = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=3, psf=psf)
    np.testing.assert_array_equal(rl.data, expected.data)
    psf.axes_manager.signal_axes[0].scale = 10.0  # 10 meV: another dispersion
    with pytest.raises(ValueError, match=r"10 meV per channel \(= 0\.01 eV\) but the signal 0\.005 eV; rebin"):
        signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=3, psf=psf)


@pytest.mark.parametrize("psf", [1.0, "nonsense", ["a", "b"]])
def test_a_psf_that_is_not_numbers_along_an_axis_is_refused(synthetic, identity_model, psf):
    with pytest.raises(ValueError, match=r"psf must be None .*numbers along its last axis\); got"):
        synthetic(nav_shape=(2,)).eelspecnet_deconvolve(model=identity_model, rl_iterations=2, psf=psf)


def test_a_psf_on_a_non_uniform_axis_is_refused(synthetic, identity_model, gaussian_zlp_spectra):
    psf = hs.signals.Signal1D(gaussian_zlp_spectra(100, [50.0], fwhm=10.0, loss_level=0)[0])
    psf.axes_manager.signal_axes[0].scale = DISPERSION
    psf.axes_manager.signal_axes[0].convert_to_non_uniform_axis()
    with pytest.raises(ValueError, match=r"PSF's energy axis is non-uniform; interpolate"):
        synthetic(nav_shape=(2,)).eelspecnet_deconvolve(model=identity_model, rl_iterations=2, psf=psf)


def test_a_psf_without_richardson_lucy_warns_that_it_is_unused(synthetic, identity_model):
    signal = synthetic(nav_shape=(2,))
    with pytest.warns(UserWarning, match=r"psf is used only by Richardson-Lucy, which rl_iterations=0 skips"):
        restored, rl = signal.eelspecnet_deconvolve(model=identity_model, rl_iterations=0, psf=signal.inav[0])
    assert rl is None and restored.metadata.Signal.EELSpecNet.richardson_lucy.psf_source.startswith("none")


@pytest.mark.parametrize("kwargs", [{"rl_iterations": -1}, {"rl_iterations": 2.5}, {"batch_size": 0}])
def test_bad_arguments(synthetic, identity_model, kwargs):
    with pytest.raises(ValueError, match="must be a"):
        synthetic(nav_shape=(2,)).eelspecnet_deconvolve(model=identity_model, **kwargs)


def test_complex_data_are_refused(synthetic, identity_model):
    signal = synthetic(nav_shape=(2,))
    signal.change_dtype("complex128")
    with pytest.raises(TypeError, match="real part or the modulus"):
        hyperspy_eelspecnet.signals.eelspecnet_deconvolve(signal, model=identity_model)


# --------------------------------------------------------------------------- the bundled model, measured spectra


@pytest.fixture(scope="module")
def ws2_restored(load_ws2, default_model):
    """The six WS2 spectra (2 vacuum, 4 specimen; 2000 channels) and their restoration."""
    signal = load_ws2()
    before = signal.deepcopy()
    with pytest.warns(UserWarning, match=r"4 of 6 spectra hold .* counts.*outside the 1e\+04-1e\+08"):
        result = signal.eelspecnet_deconvolve(rl_iterations=20, show_progressbar=False)
    assert_unchanged(signal, before)
    return signal, result


def test_ws2_every_channel_restored_with_its_counts(ws2_restored, default_model):
    signal, (restored, rl) = ws2_restored
    for out in (restored, rl):
        assert out.data.shape == (6, 2000) and axes_of(out) == axes_of(signal)
        assert np.isfinite(out.data).all() and out.data.min() >= 0
    np.testing.assert_allclose(restored.data.sum(-1), signal.data.sum(-1), rtol=1e-3)
    assert np.all(fwhm(rl.data) < fwhm(signal.data))  # RL: own ZLP PSF, 20 iterations
    record = restored.metadata.Signal.EELSpecNet.model
    assert record.sha256 == file_sha256(default_model) and record.file == str(default_model)
    assert (record.name, record.version) == ("eelspecnet-default", load_model(default_model)[1].version)


def test_ws2_zlp_restored_to_a_few_channels_where_it_was(ws2_restored):
    signal, (restored, _) = ws2_restored
    measured = fwhm(signal.data)
    assert np.all((measured > 15) & (measured < 18))
    assert np.all(fwhm(restored.data) < 6), fwhm(restored.data)
    np.testing.assert_allclose(locate_zlp(restored.data), locate_zlp(signal.data), atol=1.0)
