"""The NumPy engine: diagnostics, pre-processing and its inverse, the model cache and pickling."""

import pickle
import warnings

import numpy as np
import pytest
from conftest import IDENTITY_CHANNELS, IDENTITY_ZLP_CHANNEL, gaussian_zlp_spectra

from hyperspy_eelspecnet.model import ModelContract
from hyperspy_eelspecnet.restoration import (
    MIN_CHANNELS_AFTER_ZLP,
    MIN_CHANNELS_BEFORE_ZLP,
    EELSpecNetDeconvolution,
    check_spectra,
    contract_warnings,
    diagnose_spectra,
    from_model_window,
    locate_zlp,
    own_zlp_psf,
    to_model_window,
    zlp_fwhm,
)


# --------------------------------------------------------------------------- diagnostics


@pytest.mark.parametrize("centre", [100.0, 100.3, 100.5, 99.8])
def test_locate_zlp_finds_sub_channel_position(centre):
    spectra = gaussian_zlp_spectra(300, [centre], fwhm=12.0, loss_level=0.0)
    assert locate_zlp(spectra)[0] == pytest.approx(centre, abs=0.05)


def test_locate_zlp_is_vectorised_over_leading_axes():
    centres = np.array([[80.0, 90.25], [100.5, 120.75]])
    spectra = gaussian_zlp_spectra(300, centres, fwhm=12.0, loss_level=0.0)
    assert spectra.shape == (2, 2, 300)
    np.testing.assert_allclose(locate_zlp(spectra), centres, atol=0.05)


def test_zlp_fwhm_of_gaussian_and_of_a_spectrum_without_peak():
    spectra = gaussian_zlp_spectra(300, [150.2], fwhm=16.0, loss_level=0.0)
    assert zlp_fwhm(spectra)[0] == pytest.approx(16.0, abs=0.2)
    decay = np.exp(-np.arange(300) / 30.0)  # core-loss-like: maximum at the first channel
    assert np.isnan(zlp_fwhm(decay))


def test_diagnose_spectra_fields():
    spectra = gaussian_zlp_spectra(300, [100.0, 150.0], fwhm=10.0)
    spectra[1, 5] = np.nan
    d = diagnose_spectra(spectra)
    assert d.shape == (2, 7)
    np.testing.assert_array_equal(d[:, 0], [0, 1])  # non-finite counts
    np.testing.assert_allclose(d[0, 1], spectra[0].sum())
    np.testing.assert_allclose(d[:, 3], [100.0, 150.0], atol=0.05)
    np.testing.assert_allclose(d[:, 4], 10.0, atol=0.2)
    np.testing.assert_allclose(d[:, 5] + d[:, 6], 299.0)


def test_diagnose_refuses_complex():
    with pytest.raises(TypeError, match="complex"):
        diagnose_spectra(np.ones((2, 100), complex))


def test_check_spectra_names_nonfinite_count_and_indices():
    spectra = gaussian_zlp_spectra(300, np.full((3, 4), 100.0))
    spectra[1, 2, 7] = np.nan
    spectra[2, 0, 9] = np.inf
    spectra[2, 0, 10] = np.inf
    with pytest.raises(ValueError) as info:
        check_spectra(diagnose_spectra(spectra))
    message = str(info.value)
    assert "3 NaN or infinite values" in message
    assert "2 spectra" in message
    assert "(2, 1)" in message and "(0, 2)" in message  # s.inav order: (x, y)
    assert "Replace them" in message


def test_check_spectra_refuses_zero_and_negative_spectra():
    spectra = gaussian_zlp_spectra(300, [100.0, 100.0, 100.0])
    spectra[1] = 0.0
    spectra[2] = -spectra[2]
    with pytest.raises(ValueError, match=r"No positive area.*2 spectra.*\(1,\), \(2,\)"):
        check_spectra(diagnose_spectra(spectra))


def test_check_spectra_refuses_missing_zlp():
    decay = 1e4 * np.exp(-np.arange(300) / 30.0)[None, :].repeat(2, 0)
    with pytest.raises(ValueError, match="No zero-loss peak found in 2 spectra"):
        check_spectra(diagnose_spectra(decay))


@pytest.mark.parametrize(
    "n_channels, centre",
    [(300, MIN_CHANNELS_BEFORE_ZLP - 10), (300, 299 - (MIN_CHANNELS_AFTER_ZLP - 10))],
)
def test_check_spectra_refuses_too_few_channels_around_zlp(n_channels, centre):
    spectra = gaussian_zlp_spectra(n_channels, [centre], fwhm=6.0, loss_level=0.0)
    with pytest.raises(ValueError, match=f"at least {MIN_CHANNELS_BEFORE_ZLP} channels below and {MIN_CHANNELS_AFTER_ZLP} above"):
        check_spectra(diagnose_spectra(spectra))


def test_contract_warnings_fwhm_dispersion_and_coverage():
    contract = ModelContract(n_channels=512, zlp_channel=128, dispersion=0.005, psf_fwhm_channels=(7.0, 40.0))
    d = diagnose_spectra(gaussian_zlp_spectra(700, [150.0, 160.0], fwhm=4.0, loss_level=0.0))
    texts = contract_warnings(d, contract, dispersion=0.02)
    assert len(texts) == 3
    assert "FWHM of 2 of 2 spectra" in texts[0] and "7-40 channels" in texts[0] and "eelspecnet train" in texts[0]
    assert "factor 4" in texts[1] and "rebin" in texts[1].lower()
    # ZLP at 160 -> 32 + 16 edge channels below the window; 699 - 150 - 367 = 182 above it.
    assert "48 channels below" in texts[2] and "182 channels above" in texts[2] and "NaN" in texts[2]
    d = diagnose_spectra(gaussian_zlp_spectra(400, [100.0], fwhm=12.0))
    assert contract_warnings(d, contract, dispersion=0.005) == []


# --------------------------------------------------------------------------- window mapping


def test_window_puts_zlp_on_model_channel_pads_and_normalises():
    spectra = gaussian_zlp_spectra(400, [100.0, 140.3], fwhm=12.0)
    window, measured = to_model_window(spectra, np.array([100.0, 140.3]), 512, 128)
    assert window.shape == (2, 512) and window.dtype == np.float32
    np.testing.assert_allclose(locate_zlp(window), 128.0, atol=0.1)
    np.testing.assert_allclose(np.where(measured, window, 0).sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(window >= 0)
    # Integer shift: channel 100 -> 128, the 28 window channels below are padding equal to the
    # mean of the first 8 measured ones; the window ends 399 - 100 + 128 = 427.
    assert measured[0].sum() == 400 and not measured[0, :28].any() and not measured[0, 428:].any()
    np.testing.assert_allclose(window[0, :28], window[0, 28:36].mean(), rtol=1e-6)
    np.testing.assert_allclose(window[0, 428:], window[0, 420:428].mean(), rtol=1e-6)


def test_window_round_trip_is_exact_for_whole_channel_shifts():
    spectra = gaussian_zlp_spectra(400, [100.0, 112.0])
    positions = np.array([100.0, 112.0])
    window, _ = to_model_window(spectra, positions, 512, 128)
    back = from_model_window(window, spectra, positions, 128)
    np.testing.assert_allclose(back, spectra, rtol=1e-5, atol=1e-9 * spectra.max())  # float32 window


def test_window_round_trip_conserves_counts_and_blanks_uncovered_channels():
    spectra = gaussian_zlp_spectra(700, [150.4, 160.7])
    positions = locate_zlp(spectra)
    window, _ = to_model_window(spectra, positions, 512, 128)
    back = from_model_window(window, spectra, positions, 128)
    covered = np.isfinite(back)
    # Channels below ZLP - 112 and above ZLP + 367 are outside the window's usable part.
    for row, position in enumerate(positions):
        channels = np.arange(700)
        expected = (channels >= position - 112) & (channels <= position + 367)
        np.testing.assert_array_equal(covered[row], expected)
    np.testing.assert_allclose(np.nansum(back, axis=1), np.where(covered, spectra, 0).sum(axis=1), rtol=1e-9)
    assert np.nanmin(back) >= 0


def test_own_zlp_psf_is_the_mirrored_gain_side():
    spectra = gaussian_zlp_spectra(400, [100.0], fwhm=12.0, loss_level=0.0)[0]
    spectra[150:] += 5e-3 * spectra.max()  # a loss plateau above the 1e-3 threshold
    psf = own_zlp_psf(spectra)
    peak = spectra.argmax()
    # The loss plateau is not part of the PSF; the PSF is symmetric about the ZLP maximum.
    assert psf[150:].max() < 1e-3 * psf.max()
    np.testing.assert_allclose(psf[peak + 1: peak + 40], psf[peak - 1: peak - 40: -1])
    inside = spectra[: peak + 1] >= 1e-3 * spectra.max()
    np.testing.assert_array_equal(psf[: peak + 1] > 0, inside)
    assert psf.sum() == pytest.approx(1.0)
    assert psf.argmax() == peak


# --------------------------------------------------------------------------- engine


def test_engine_identity_model_returns_input_and_conserves_counts(identity_model):
    engine = EELSpecNetDeconvolution(identity_model)
    spectra = gaussian_zlp_spectra(400, np.array([[90.0, 100.0, 111.0], [95.0, 105.0, 111.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fully covered, in range: no warning
        restored = engine.restore(spectra, dispersion=0.005, zlp_channel=np.round(locate_zlp(spectra)))
    assert restored.shape == spectra.shape
    np.testing.assert_allclose(restored, spectra, rtol=1e-5, atol=1e-6 * spectra.max())
    np.testing.assert_allclose(restored.sum(-1), spectra.sum(-1), rtol=1e-3)


def test_engine_warns_and_blanks_channels_beyond_window(identity_model):
    engine = EELSpecNetDeconvolution(identity_model)
    spectra = gaussian_zlp_spectra(700, [150.0, 150.0], loss_level=0.0)
    with pytest.warns(UserWarning, match="38 channels below and 182 channels above"):
        restored = engine.restore(spectra, dispersion=0.005)
    assert np.isnan(restored[:, :38]).all() and np.isnan(restored[:, -182:]).all()
    assert np.isfinite(restored[:, 38:-182]).all()
    np.testing.assert_allclose(np.nansum(restored, -1), spectra[:, 38:-182].sum(-1), rtol=1e-3)


def test_engine_converts_integers_and_refuses_complex(identity_model):
    engine = EELSpecNetDeconvolution(identity_model)
    counts = np.round(gaussian_zlp_spectra(400, [100.0, 105.0])).astype(np.int32)
    restored = engine.restore(counts)
    assert restored.dtype == np.float64
    np.testing.assert_allclose(restored.sum(-1), counts.sum(-1), rtol=1e-3)
    with pytest.raises(TypeError, match="complex"):
        engine.restore(counts.astype(complex))


def test_engine_caches_model_and_pickles_by_path(identity_model):
    first = EELSpecNetDeconvolution(identity_model)
    second = EELSpecNetDeconvolution(str(identity_model))
    assert first.model is second.model  # loaded once per process
    payload = pickle.dumps(first)
    assert len(payload) < 1000  # the path, not the weights
    clone = pickle.loads(payload)
    assert clone.path == first.path and clone.contract == first.contract
    spectra = gaussian_zlp_spectra(400, [120.0, 125.5])
    np.testing.assert_array_equal(clone.restore(spectra), first.restore(spectra))
    assert len(first.sha256) == 64


def test_engine_accepts_loaded_model(identity_model):
    from hyperspy_eelspecnet.model import load_model

    engine = EELSpecNetDeconvolution(load_model(identity_model))
    assert engine.path is None and engine.sha256 is None
    assert engine.contract.n_channels == IDENTITY_CHANNELS
    assert engine.contract.zlp_channel == IDENTITY_ZLP_CHANNEL


def test_engine_model_errors(tmp_path, identity_model):
    with pytest.raises(FileNotFoundError, match="No model file"):
        EELSpecNetDeconvolution(tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip archive")
    ModelContract().to_json(junk.with_suffix(".json"))
    with pytest.raises(ValueError, match="not a loadable Keras model"):
        EELSpecNetDeconvolution(junk)
    with pytest.raises(TypeError, match="model must be None"):
        EELSpecNetDeconvolution(42)


def test_default_model_restores_sharper_zlp(default_model):
    engine = EELSpecNetDeconvolution(None)
    spectra = gaussian_zlp_spectra(2000, [186.0, 200.5], fwhm=16.0, loss_level=3e-3)
    restored = engine.restore(spectra, dispersion=0.005)
    covered = np.isfinite(restored)
    assert np.all(restored[covered] >= 0)
    assert np.all(zlp_fwhm(np.where(covered, restored, 0)) < 16.0 / 3)
    np.testing.assert_allclose(np.nansum(restored, -1), np.where(covered, spectra, 0).sum(-1), rtol=1e-3)
