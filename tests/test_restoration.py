"""The NumPy engine: diagnostics and refusals, the padding to the network's length and its
inverse, Richardson-Lucy beside the network, the model cache and pickling, and the bundled
model on generated spectra."""

import contextlib
import dataclasses
import pickle
import warnings

import numpy as np
import pytest

from hyperspy_eelspecnet.model import ModelContract, load_model
from hyperspy_eelspecnet.restoration import (
    DIAGNOSTICS,
    NETWORK_MARGIN,
    EELSpecNetDeconvolution,
    check_spectra,
    check_zlp_width,
    contract_warnings,
    diagnose_spectra,
    from_network_output,
    own_zlp_psf,
    restore_block,
    to_network_input,
)
from hyperspy_eelspecnet.spectral import (
    MIN_CHANNELS_ABOVE_ZLP,
    MIN_CHANNELS_BELOW_ZLP,
    PAD_EDGE_CHANNELS,
    fwhm,
    locate_zlp,
)

#: A contract like the identity model's (tests/conftest.py): trained ZLP widths 3-40 channels, a
#: restored ZLP of 3 channels, no counts range.
CONTRACT = ModelContract(
    n_channels=512, length_multiple=64, zlp_channel=128, psf_fwhm_channels=(3.0, 40.0), name="test-model"
)


@pytest.fixture(scope="module")
def identity_engine(identity_model):
    return EELSpecNetDeconvolution(identity_model)


@contextlib.contextmanager
def no_warnings():
    """A context in which any warning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --------------------------------------------------------------------------- diagnostics


def test_diagnostics_measure_each_spectrum(gaussian_zlp_spectra):
    spectra = gaussian_zlp_spectra(600, [[100.0, 150.25, 211.7], [300.0, 80.4, 99.9]], fwhm=10.0)
    spectra[1, 2, 5] = np.nan
    spectra[1, 2, 500:503] = np.inf
    d = diagnose_spectra(spectra)
    assert d.dtype == DIAGNOSTICS and d.shape == (2, 3)
    np.testing.assert_array_equal(d["n_nonfinite"], [[0, 0, 0], [0, 0, 4]])
    # Non-finite values count as zero in the other measurements.
    finite = np.where(np.isfinite(spectra), spectra, 0.0)
    np.testing.assert_allclose(d["area"], finite.sum(-1), rtol=1e-12)
    np.testing.assert_allclose(d["peak"], finite.max(-1), rtol=1e-12)
    np.testing.assert_allclose(d["zlp_position"], [[100.0, 150.25, 211.7], [300.0, 80.4, 99.9]], atol=0.01)
    np.testing.assert_allclose(d["zlp_fwhm"], 10.0, atol=0.1)
    np.testing.assert_array_equal(d["channels_below"], d["zlp_position"])
    np.testing.assert_allclose(d["channels_below"] + d["channels_above"], 599.0)


def test_diagnostics_of_one_spectrum_and_of_integer_counts(gaussian_zlp_spectra):
    spectrum = np.round(gaussian_zlp_spectra(400, [120.0])[0]).astype(np.int64)
    d = diagnose_spectra(spectrum)
    assert d.shape == ()
    assert d["area"] == spectrum.sum() and d["zlp_position"] == pytest.approx(120.0, abs=0.01)


def test_complex_spectra_are_refused_with_the_fix():
    with pytest.raises(TypeError, match=r"complex.*s\.real or abs\(s\)"):
        diagnose_spectra(np.ones((2, 100), complex))


def test_check_spectra_names_nonfinite_count_and_navigation_indices(gaussian_zlp_spectra):
    spectra = gaussian_zlp_spectra(300, np.full((3, 4), 100.0))
    spectra[1, 2, 7] = np.nan
    spectra[2, 0, 9] = np.inf
    spectra[2, 0, 10] = -np.inf
    with pytest.raises(ValueError) as info:
        check_spectra(diagnose_spectra(spectra))
    message = str(info.value)
    assert "3 NaN or infinite values" in message and "2 spectra" in message
    assert "(2, 1)" in message and "(0, 2)" in message  # s.inav order: (x, y)
    assert "Replace them" in message


def test_check_spectra_refuses_zero_and_negative_spectra(gaussian_zlp_spectra):
    spectra = gaussian_zlp_spectra(300, [100.0, 100.0, 100.0])
    spectra[1] = 0.0
    spectra[2] = -spectra[2]
    with pytest.raises(ValueError, match=r"No positive area.*2 spectra.*\(1,\), \(2,\)"):
        check_spectra(diagnose_spectra(spectra))


def test_check_spectra_refuses_spectra_without_a_zlp():
    # Core-loss-like: the maximum sits on the first channel and never falls to half before it.
    decay = 1e4 * np.exp(-np.arange(300) / 30.0)[None, :].repeat(2, 0)
    with pytest.raises(ValueError, match="No zero-loss peak found in 2 spectra"):
        check_spectra(diagnose_spectra(decay))


@pytest.mark.parametrize(
    "zlp, accepted",
    [
        (MIN_CHANNELS_BELOW_ZLP, True),
        (MIN_CHANNELS_BELOW_ZLP - 0.4, False),
        (511 - MIN_CHANNELS_ABOVE_ZLP, True),
        (511 - MIN_CHANNELS_ABOVE_ZLP + 0.4, False),
    ],
)
def test_check_spectra_needs_channels_below_and_above_the_zlp(gaussian_zlp_spectra, zlp, accepted):
    # Symmetric noiseless Gaussians: their located ZLP is exact, so the limits are exact too.
    spectra = gaussian_zlp_spectra(512, [zlp], fwhm=8.0, loss_level=0.0)
    if accepted:
        check_spectra(diagnose_spectra(spectra))
        return
    message = (
        f"at least {MIN_CHANNELS_BELOW_ZLP} channels below and {MIN_CHANNELS_ABOVE_ZLP} above the ZLP"
    )
    with pytest.raises(ValueError, match=f"Too few channels around the zero-loss peak.*{message}"):
        check_spectra(diagnose_spectra(spectra))


def test_too_few_channels_reports_the_refused_spectra_rounded_down(gaussian_zlp_spectra):
    # Spectrum 0 has room; spectrum 1's ZLP lies half-way between channels 447 and 448, 63.5
    # channels from the last (not 64), spectrum 2's 31.5 channels from the first (not 32).
    d = diagnose_spectra(gaussian_zlp_spectra(512, [100.0, 447.5, 31.5], fwhm=8.0, loss_level=0.0))
    np.testing.assert_allclose([d["channels_above"][1], d["channels_below"][2]], [63.5, 31.5], atol=1e-9)
    with pytest.raises(ValueError, match=r"in 2 spectra .*\(1,\), \(2,\)\)") as info:
        check_spectra(d)
    message = str(info.value)
    assert "(as few as 31.5 channels below it and as few as 63.5 channels above it)" in message
    assert "located, sub-channel position" in message


def test_a_spike_taken_for_the_zlp_is_named_with_the_fix(gaussian_zlp_spectra):
    spectra = gaussian_zlp_spectra(512, [100.0, 101.0, 102.0], fwhm=10.0)
    one = spectra.copy()
    one[1, 470] = 2 * one[1].max()  # a cosmic ray, higher than the ZLP, 41 channels from the end
    for data, where in ((one, r"1 spectrum .*\(1,\)\)"), (one[1], "the spectrum")):
        with pytest.raises(ValueError, match=f"{where} is likely a spike") as info:
            check_spectra(diagnose_spectra(data))
        assert "channel 470.0 (1.0 channels FWHM)" in str(info.value)
        assert "too few channels" in str(info.value) and "s.spikes_removal_tool()" in str(info.value)
    # Two channels wide, far from the other spectra's ZLP: not "narrower ... force=True".
    two = spectra.copy()
    two[1, 300:302] = 2 * two[1].max()
    d = diagnose_spectra(two)
    check_spectra(d)
    with pytest.raises(ValueError, match=r"\(1,\)\) is likely a spike.*channel 300\.5.*median ZLP") as info:
        check_zlp_width(d, CONTRACT)
    assert "s.spikes_removal_tool()" in str(info.value)
    # A ZLP that drifted keeps its width: a short window, no spike.
    with pytest.raises(ValueError, match=r"Too few channels .*\(2,\)\) \(as few as 50\.9 channels above"):
        check_spectra(diagnose_spectra(gaussian_zlp_spectra(512, [100.0, 101.0, 460.0], fwhm=10.0)))


def test_a_zlp_narrower_than_the_restored_one_is_refused_unless_forced(gaussian_zlp_spectra):
    d = diagnose_spectra(gaussian_zlp_spectra(400, [100.0, 150.0], fwhm=2.5))
    with pytest.raises(ValueError, match="zero-loss peak of 2 spectra") as info:
        check_zlp_width(d, CONTRACT)
    assert "3-channel ZLP the model 'test-model' restores" in str(info.value)
    assert "force=True" in str(info.value) and "spike" not in str(info.value)
    check_zlp_width(d, CONTRACT, force=True)
    check_zlp_width(diagnose_spectra(gaussian_zlp_spectra(400, [100.0], fwhm=3.5)), CONTRACT)
    # A map whose ZLPs are all 1.2 channels wide (a coarse dispersion) holds no spikes.
    with pytest.raises(ValueError, match="already narrower") as info:
        check_zlp_width(diagnose_spectra(gaussian_zlp_spectra(400, [100.0, 100.3, 100.6], fwhm=1.2)), CONTRACT)
    assert "spike" not in str(info.value)


# --------------------------------------------------------------------------- contract warnings


def test_a_wide_zlp_is_told_the_binning_factor_that_brings_it_into_range(gaussian_zlp_spectra):
    d = diagnose_spectra(gaussian_zlp_spectra(1000, [300.0, 300.0, 300.0], fwhm=[[20.0], [90.0], [130.0]]))
    texts = contract_warnings(d, CONTRACT)
    assert len(texts) == 1
    # The widest ZLP, 130 channels, needs 4 to come within 40 channels (3 gives 43).
    assert "2 of 3 spectra is wider than the 40 channels FWHM" in texts[0]
    assert "Bin the energy axis by 4 (s.rebin(scale=(1, ..., 4))" in texts[0]


def test_a_zlp_narrower_than_the_trained_range_is_told_to_fine_tune(gaussian_zlp_spectra):
    contract = dataclasses.replace(CONTRACT, psf_fwhm_channels=(7.0, 40.0))
    texts = contract_warnings(diagnose_spectra(gaussian_zlp_spectra(400, [100.0, 150.0], fwhm=5.0)), contract)
    assert len(texts) == 1
    assert "narrower than the 7 channels FWHM" in texts[0] and "eelspecnet finetune" in texts[0]


@pytest.mark.parametrize("total, noise", [(3e3, "higher"), (1e9, "lower")])
def test_counts_outside_the_trained_range_warn(gaussian_zlp_spectra, total, noise):
    contract = dataclasses.replace(CONTRACT, counts_range=(1e4, 1e8))
    d = diagnose_spectra(gaussian_zlp_spectra(400, [100.0, 120.0], total=total))
    texts = contract_warnings(d, contract)
    assert len(texts) == 1
    assert "2 of 2 spectra hold" in texts[0] and f"their noise is {noise}" in texts[0]
    assert contract_warnings(diagnose_spectra(gaussian_zlp_spectra(400, [100.0], total=1e6)), contract) == []


def test_widths_in_range_in_channels_warn_at_any_dispersion(gaussian_zlp_spectra):
    # Ranges are judged in channels: the contract's dispersion does not enter.
    d = diagnose_spectra(gaussian_zlp_spectra(600, [100.0, 300.0], fwhm=[[4.0], [39.0]]))
    for dispersion in (0.001, 0.005, 0.1):
        assert contract_warnings(d, dataclasses.replace(CONTRACT, dispersion=dispersion)) == []


# --------------------------------------------------------------------------- the network's input


@pytest.mark.parametrize("n_channels", [512, 1000, 2048])
def test_network_input_pads_to_the_length_multiple_around_the_unit_area_spectrum(gaussian_zlp_spectra, n_channels):
    spectra = gaussian_zlp_spectra(n_channels, [40.0, n_channels / 2 + 0.3], total=5e5)
    spectra += np.linspace([30.0, 5.0], [10.0, 50.0], n_channels).T  # edges of their own
    padded, start = to_network_input(spectra, 64)
    length = padded.shape[1]
    assert padded.dtype == np.float32 and padded.shape[0] == 2
    assert length % 64 == 0 and length - 64 < n_channels + 2 * NETWORK_MARGIN <= length
    assert start >= NETWORK_MARGIN and length - (start + n_channels) >= NETWORK_MARGIN
    # Every length starts at the same place, so a window cut shorter stays where it was on the grid.
    assert start == NETWORK_MARGIN and to_network_input(spectra[:, :-5], 64)[1] == start
    # The spectra sit unshifted at unit area; either side the mean of their 8 outermost channels.
    inside = padded[:, start: start + n_channels]
    np.testing.assert_allclose(inside, spectra / spectra.sum(-1, keepdims=True), rtol=1e-6, atol=1e-12)
    first = inside[:, :PAD_EDGE_CHANNELS].mean(-1, keepdims=True)
    last = inside[:, -PAD_EDGE_CHANNELS:].mean(-1, keepdims=True)
    np.testing.assert_allclose(padded[:, :start], np.broadcast_to(first, (2, start)), rtol=1e-6)
    stop = start + n_channels
    np.testing.assert_allclose(padded[:, stop:], np.broadcast_to(last, (2, length - stop)), rtol=1e-6)


def test_network_output_is_cut_back_to_the_input_channels_with_its_counts(gaussian_zlp_spectra):
    spectra = gaussian_zlp_spectra(700, [100.0, 212.6], total=2e6)
    padded, start = to_network_input(spectra, 64)
    np.testing.assert_allclose(from_network_output(padded, spectra, start), spectra, rtol=1e-6, atol=1e-9)
    # A restoration with other counts (or padding that took counts) comes back with the input's.
    restored = from_network_output(3.0 * padded + 1e-4, spectra, start)
    assert restored.shape == spectra.shape and restored.dtype == np.float64
    np.testing.assert_allclose(restored.sum(-1), spectra.sum(-1), rtol=1e-12)


def test_own_zlp_psf_is_the_mirrored_gain_side(gaussian_zlp_spectra):
    spectrum = gaussian_zlp_spectra(400, [100.0], fwhm=12.0, loss_level=0.0)[0]
    spectrum[150:] += 5e-3 * spectrum.max()  # a loss plateau above the 1e-3 threshold
    psf = own_zlp_psf(spectrum)
    peak = spectrum.argmax()
    # The loss plateau is not part of the PSF; the PSF is symmetric about the ZLP maximum.
    assert psf[150:].max() < 1e-3 * psf.max()
    np.testing.assert_allclose(psf[peak + 1: peak + 40], psf[peak - 1: peak - 40: -1])
    inside = spectrum[: peak + 1] >= 1e-3 * spectrum.max()
    np.testing.assert_array_equal(psf[: peak + 1] > 0, inside)
    assert psf.sum() == pytest.approx(1.0) and psf.argmax() == peak


# --------------------------------------------------------------------------- the engine (identity model)


@pytest.mark.parametrize("n_channels", [512, 1000, 2048, 8192])
def test_every_channel_is_restored_unshifted_with_its_counts(identity_engine, gaussian_zlp_spectra, n_channels):
    """The identity network gives the input back: padding and unpadding are exact, and the
    spectrum is neither shifted nor resampled, wherever its ZLP lies."""
    zlps = [float(MIN_CHANNELS_BELOW_ZLP), 77.4, n_channels / 2 - 0.3, n_channels / 2]
    spectra = gaussian_zlp_spectra(n_channels, zlps, total=1e6)
    with no_warnings():
        restored = identity_engine.restore(spectra)
    assert restored.shape == spectra.shape and restored.dtype == np.float64
    assert np.isfinite(restored).all()
    np.testing.assert_allclose(restored.sum(-1), spectra.sum(-1), rtol=1e-9)
    np.testing.assert_allclose(restored, spectra, rtol=1e-5, atol=1e-6 * spectra.max())
    np.testing.assert_allclose(locate_zlp(restored), locate_zlp(spectra), atol=1e-4)


def test_navigation_shapes_single_spectra_and_integer_counts(identity_engine, gaussian_zlp_spectra):
    spectra = gaussian_zlp_spectra(600, np.linspace(40.0, 300.0, 6).reshape(2, 3))
    restored = identity_engine.restore(spectra)
    assert restored.shape == (2, 3, 600)
    np.testing.assert_allclose(restored, spectra, rtol=1e-5, atol=1e-6 * spectra.max())
    one = spectra[1, 2]
    np.testing.assert_allclose(identity_engine.restore(one), one, rtol=1e-5, atol=1e-6 * one.max())
    counts = np.round(spectra[0]).astype(np.int32)
    restored = identity_engine.restore(counts)
    assert restored.dtype == np.float64
    np.testing.assert_allclose(restored.sum(-1), counts.sum(-1), rtol=1e-9)
    assert identity_engine.run(np.empty((0, 600))).shape == (0, 600)


def test_bad_input_is_refused_naming_the_problem(identity_engine, gaussian_zlp_spectra):
    spectra = gaussian_zlp_spectra(600, [100.0, 200.0])
    with pytest.raises(TypeError, match="complex"):
        identity_engine.restore(spectra.astype(complex))
    with_nan = spectra.copy()
    with_nan[1, 400] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite values in 1 spectrum .*\(1,\)"):
        identity_engine.restore(with_nan)
    with pytest.raises(ValueError, match="No zero-loss peak"):
        identity_engine.restore(1e4 * np.exp(-np.arange(600) / 50.0))
    with pytest.raises(ValueError, match="Too few channels"):
        identity_engine.restore(gaussian_zlp_spectra(600, [20.0, 200.0]))
    with pytest.raises(ValueError, match="Too few channels"):
        identity_engine.restore(gaussian_zlp_spectra(600, [560.0]))
    narrow = gaussian_zlp_spectra(600, [100.0, 200.0], fwhm=2.5)
    with pytest.raises(ValueError, match="already narrower"):
        identity_engine.restore(narrow)
    # Forced, it is restored, with the warning that it is narrower than the trained range.
    with pytest.warns(UserWarning, match="narrower than the 3 channels FWHM"):
        restored = identity_engine.restore(narrow, force=True)
    np.testing.assert_allclose(restored, narrow, rtol=1e-5, atol=1e-6 * narrow.max())


def test_wide_zlps_are_restored_with_the_binning_advice(identity_engine, gaussian_zlp_spectra):
    spectra = gaussian_zlp_spectra(1000, [300.0, 310.0], fwhm=60.0)
    with pytest.warns(UserWarning, match=r"Bin the energy axis by 2 "):
        restored = identity_engine.restore(spectra)
    assert np.isfinite(restored).all() and restored.shape == spectra.shape


def test_a_fixed_window_model_of_before_0_5_0_is_refused(identity_model, gaussian_zlp_spectra):
    model, contract = load_model(identity_model)
    engine = EELSpecNetDeconvolution((model, dataclasses.replace(contract, length_multiple=0)))
    spectra = gaussian_zlp_spectra(600, [100.0])
    for method in (engine.restore, engine.run):
        with pytest.raises(ValueError, match=r"only a 512-channel window with the ZLP on channel 128.*before 0\.5\.0"):
            method(spectra)
    with pytest.raises(ValueError, match="before 0.5.0"):
        restore_block(spectra, engine)


# --------------------------------------------------------------------------- restore_block


def test_restore_block_runs_the_network_and_richardson_lucy_beside_it(identity_engine, gaussian_zlp_spectra):
    spectra = gaussian_zlp_spectra(500, [[100.0, 140.0, 180.5], [120.0, 160.0, 200.0]], fwhm=12.0)
    restored, rl = restore_block(spectra, identity_engine)
    assert rl is None
    np.testing.assert_array_equal(restored, identity_engine.run(spectra))

    # One PSF for all spectra: a Gaussian of 8 channels FWHM, maximum on its middle channel.
    offsets = np.arange(-40, 41)
    psf = np.exp(-0.5 * (offsets / (8.0 / 2.3548)) ** 2)
    psf /= psf.sum()
    restored, rl = restore_block(spectra, identity_engine, psf, rl_iterations=20)
    np.testing.assert_array_equal(restored, identity_engine.run(spectra))
    assert rl.shape == spectra.shape and np.isfinite(rl).all() and rl.min() >= 0
    assert np.all(fwhm(rl) < fwhm(spectra) - 1.0)  # deblurred
    np.testing.assert_allclose(locate_zlp(rl), locate_zlp(spectra), atol=0.1)
    # One PSF per spectrum, all the same: the same result.
    _, rl_each = restore_block(spectra, identity_engine, np.broadcast_to(psf, (2, 3, psf.size)), 20)
    np.testing.assert_allclose(rl_each, rl, rtol=1e-10, atol=1e-12 * rl.max())
    # A PSF without blur: nothing to deconvolve, the spectra come back.
    _, rl_delta = restore_block(spectra, identity_engine, [0.0, 0.0, 1.0, 0.0, 0.0], 20)
    np.testing.assert_allclose(rl_delta, spectra, rtol=1e-9, atol=1e-12 * spectra.max())


def test_restore_block_uses_each_spectrums_own_zlp_without_a_psf(identity_engine, gaussian_zlp_spectra):
    # A pure Gaussian ZLP is its own mirrored gain side: RL with it sharpens the ZLP in place.
    spectra = gaussian_zlp_spectra(400, [90.0, 150.0], fwhm=[[10.0], [16.0]], loss_level=0.0)
    _, rl = restore_block(spectra, identity_engine, None, rl_iterations=10)
    assert rl.shape == spectra.shape
    assert np.all(fwhm(rl) < 0.8 * fwhm(spectra))
    np.testing.assert_allclose(locate_zlp(rl), [90.0, 150.0], atol=0.1)


# --------------------------------------------------------------------------- model cache, pickling


def test_engine_caches_the_model_and_pickles_by_path(identity_model, identity_engine, gaussian_zlp_spectra):
    second = EELSpecNetDeconvolution(str(identity_model))
    assert second.model is identity_engine.model  # loaded once per process
    assert second.path == identity_model.absolute() and len(second.sha256) == 64
    payload = pickle.dumps(identity_engine)
    assert len(payload) < 1000  # the path, not the weights
    clone = pickle.loads(payload)
    assert clone.path == identity_engine.path and clone.contract == identity_engine.contract
    spectra = gaussian_zlp_spectra(500, [120.0, 125.5])
    np.testing.assert_array_equal(clone.restore(spectra), identity_engine.restore(spectra))


def test_a_worker_refuses_a_model_file_other_than_the_one_the_restoration_started_with(
    identity_model, tmp_path, gaussian_zlp_spectra
):
    import shutil

    copy = tmp_path / identity_model.name
    shutil.copy(identity_model, copy)
    shutil.copy(identity_model.with_suffix(".json"), copy.with_suffix(".json"))
    payload = pickle.dumps(EELSpecNetDeconvolution(copy))
    with open(copy, "ab") as changed:  # the file changes between the client and a worker
        changed.write(b"\0")
    with pytest.raises(ValueError, match="not the one the restoration was started with"):
        pickle.loads(payload).restore(gaussian_zlp_spectra(256, [80.0]))
    # The bundled model travels as a marker and is found where the worker has it installed.
    bundled = pickle.loads(pickle.dumps(EELSpecNetDeconvolution()))
    assert bundled.path == EELSpecNetDeconvolution().path


def test_batch_size_changes_nothing_but_the_batches(identity_engine, gaussian_zlp_spectra):
    spectra = gaussian_zlp_spectra(500, np.linspace(40.0, 250.0, 7))
    small = identity_engine.with_batch_size(3)
    assert small.batch_size == 3 and identity_engine.batch_size is None and small.model is identity_engine.model
    np.testing.assert_array_equal(small.run(spectra), identity_engine.run(spectra))
    assert pickle.loads(pickle.dumps(small)).batch_size == 3
    for bad in (0, -2, 2.5, True, "8"):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            identity_engine.with_batch_size(bad)


def test_engine_takes_the_folder_written_by_train_or_finetune(identity_model, tmp_path, gaussian_zlp_spectra):
    folder = tmp_path / "finetuned"  # as 'eelspecnet finetune --out finetuned' writes it
    folder.mkdir()
    (folder / "eelspecnet.keras").write_bytes(identity_model.read_bytes())
    (folder / "eelspecnet.json").write_bytes(identity_model.with_suffix(".json").read_bytes())
    engine = EELSpecNetDeconvolution(folder)
    assert engine.path == (folder / "eelspecnet.keras").absolute()
    assert engine.sha256 == EELSpecNetDeconvolution(identity_model).sha256
    spectra = gaussian_zlp_spectra(500, [120.0])
    np.testing.assert_allclose(engine.restore(spectra), spectra, rtol=1e-5, atol=1e-6 * spectra.max())
    with pytest.raises(FileNotFoundError, match=r"holds no eelspecnet\.keras.*finetune --out DIR"):
        EELSpecNetDeconvolution(tmp_path)


def test_engine_from_a_loaded_model_and_model_errors(identity_model, tmp_path):
    engine = EELSpecNetDeconvolution(load_model(identity_model))
    assert engine.path is None and engine.sha256 is None
    assert engine.contract.name == "identity-test" and engine.contract.length_multiple == 64
    with pytest.raises(FileNotFoundError, match="No model file"):
        EELSpecNetDeconvolution(tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip archive")
    ModelContract().to_json(junk.with_suffix(".json"))
    with pytest.raises(ValueError, match="not a loadable Keras model"):
        EELSpecNetDeconvolution(junk)
    with pytest.raises(TypeError, match="model must be None"):
        EELSpecNetDeconvolution(42)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        EELSpecNetDeconvolution(identity_model, batch_size=0)


# --------------------------------------------------------------------------- the bundled model

#: Generated spectra for the bundled model: the ``reference`` preset's ZLP lies on channel 400
#: of 2048 (seed 1: ZLPs of 27-29 channels FWHM, inside the trained 3-40), scaled to 1e6 counts
#: (inside the trained counts range).
BUNDLED_SEED = 1
BUNDLED_COUNTS = 1e6


@pytest.fixture(scope="module")
def bundled_engine(default_model):
    return EELSpecNetDeconvolution(default_model)


@pytest.fixture(scope="module")
def generated():
    from hyperspy_eelspecnet.evaluation.report import evaluation_set
    from hyperspy_eelspecnet.training.generator import generate_batch

    # The evaluation's sets: the truth's ZLP at the recorded ZLP's half-maximum centre, the
    # energy zero the restoration keeps (jitter moves the recorded ZLP off channel 400).
    batch = generate_batch(evaluation_set("reference"), 3, seed=BUNDLED_SEED)
    truth = batch.ground_truth.astype(float)
    return batch.distorted.astype(float) * BUNDLED_COUNTS, truth, locate_zlp(truth)


def assert_sharpened(restored, distorted, truth, zlp):
    """Finite, non-negative, the input's counts, and a ZLP as narrow as the truth's where it is."""
    assert restored.shape == distorted.shape
    assert np.isfinite(restored).all() and restored.min() >= 0
    np.testing.assert_allclose(restored.sum(-1), distorted.sum(-1), rtol=1e-9)
    restored_fwhm = fwhm(restored)
    assert np.all(restored_fwhm < 0.5 * fwhm(distorted))
    np.testing.assert_allclose(restored_fwhm, fwhm(truth), atol=0.5)
    np.testing.assert_allclose(locate_zlp(restored), zlp, atol=0.5)


@pytest.mark.parametrize(
    "window",
    # The whole spectrum, and a 1024-channel window with the ZLP near its channel 336.
    [slice(0, 2048), slice(64, 1088)],
    ids=["2048-channels", "1024-channel-window"],
)
def test_bundled_model_sharpens_the_zlp_of_generated_spectra(bundled_engine, generated, window):
    distorted, truth, zlp = generated
    assert distorted.shape == (3, 2048) and np.all(np.abs(zlp - 400) < 4)
    with no_warnings():  # inside every trained range
        restored = bundled_engine.restore(distorted[:, window])
    assert_sharpened(restored, distorted[:, window], truth[:, window], zlp - window.start)


def test_the_engine_docstring_example_runs(bundled_engine):
    import doctest

    [example] = doctest.DocTestFinder(recurse=False).find(EELSpecNetDeconvolution, globs={})
    for line in example.examples:
        line.options = {}  # run every line, SKIP directives included
    results = doctest.DocTestRunner().run(example)
    assert results.failed == 0 and results.attempted == 7


def test_bundled_model_sharpens_a_1024_channel_window_with_the_zlp_at_channel_100(bundled_engine, generated):
    distorted, truth, zlp = generated
    window = slice(300, 1324)
    restored = bundled_engine.restore(distorted[:, window])
    assert_sharpened(restored, distorted[:, window], truth[:, window], zlp - 300)


def test_where_the_loss_end_is_cut_does_not_change_the_restoration(bundled_engine, generated):
    # The network is not exactly shift-equivariant: were the spectrum placed on its grid by the
    # window's length, cutting the loss end shorter would move every channel on the grid and
    # change the ZLP's height by about 1 % and the loss region by 1-3 %.
    distorted = generated[0]
    whole = bundled_engine.run(distorted)
    for cut in (1, 2, 5, 17, 40):
        shorter = bundled_engine.run(distorted[:, :-cut])
        np.testing.assert_allclose(shorter.max(-1), whole.max(-1), rtol=1e-3)
        # The loss region, 20 channels above the ZLP to 300 below the uncut end (the high-energy
        # padding, the mean of the last 8 channels, changes with the cut and reaches that far).
        loss = slice(420, 2048 - 300)
        change = np.abs(shorter[:, loss] - whole[:, loss]).sum(-1) / whole[:, loss].sum(-1)
        assert change.max() < 3e-3, (cut, change)
