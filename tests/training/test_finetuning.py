"""``eelspecnet finetune``: a few steps on a vacuum file, end to end, and its refusals."""

import dataclasses
import json
import warnings

import numpy as np
import pytest

import hyperspy_eelspecnet  # noqa: F401 (gives EELS signals eelspecnet_deconvolve)
from hyperspy_eelspecnet.data import silver_nanowire, silver_nanowire_vacuum
from hyperspy_eelspecnet.model import file_sha256, load_model
from hyperspy_eelspecnet.restoration import EELSpecNetDeconvolution
from hyperspy_eelspecnet.training import finetune
from hyperspy_eelspecnet.training.trainer import TrainConfig, _build_core, export_model
from hyperspy_eelspecnet.vacuum import match_to_gaussian


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A tiny fully convolutional model file (random weights) to fine-tune in seconds."""
    config = TrainConfig(filters=(4, 8), bottleneck_dilations=(1,), name="tiny-base", version="t")
    folder = tmp_path_factory.mktemp("base")
    return export_model(config, _build_core(config), folder)


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    silver_nanowire_vacuum(n_spectra=4).save(folder / "vacuum.hspy")
    silver_nanowire().inav[:6, :2].save(folder / "specimen.hspy")
    return folder / "vacuum.hspy", folder / "specimen.hspy"


def test_a_few_steps_write_a_model_that_restores_with_its_card(tmp_path, tiny_base, demo_files, monkeypatch):
    from hyperspy_eelspecnet.training import finetuning

    monkeypatch.setattr(finetuning, "VALIDATION_SPECTRA", 20)  # the card's figures, on fewer spectra
    vacuum, specimen = demo_files
    out = tmp_path / "tuned"
    # The base given as the folder that train wrote, as a user would pass it.
    path = finetune(vacuum, out, minutes=0.05, model=tiny_base.parent, specimen=specimen, verbose=0)
    assert path == out / "eelspecnet.keras"
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "eelspecnet.json", "eelspecnet.keras", "training"]
    model, contract = load_model(path)
    record = contract.training["finetune"]
    assert record["vacuum"][0]["sha256"] == file_sha256(vacuum)
    assert record["base_model"]["sha256"] == file_sha256(tiny_base)
    assert record["dispersion_eV"] == pytest.approx(0.005)
    low, high = record["vacuum_zlp_fwhm_channels"]
    assert 12 < low <= high < 15  # the demo's 13-channel PSF, jittered
    # The specimen's counts set the noise: 5e6 electrons per spectrum off the wire.
    assert record["counts"][0] < 5e6 < record["counts"][1]
    assert contract.training["steps"] >= 1
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Fine-tuning" in card and vacuum.name in card and "validation loss" in card
    assert "matched from the mean vacuum PSF to a Gaussian" in card
    assert file_sha256(vacuum) in card  # the whole hash, not a prefix
    # Validation figures a user can read: near-ZLP found and false rates, against the base model.
    near = record["validation"]["methods"]
    assert set(near) >= {"fine-tuned", "base model"}
    assert all(0.0 <= m["found"] <= 1.0 and 0.0 <= m["false"] <= 1.0 for m in near.values())
    assert "near the ZLP" in card and "the base model" in card
    # The fine-tuned model restores through the public path.
    import hyperspy.api as hs

    s = hs.load(specimen)
    restored, _ = s.eelspecnet_deconvolve(model=path, rl_iterations=0)
    assert restored.data.shape == s.data.shape and np.isfinite(restored.data).all()
    np.testing.assert_allclose(restored.data.sum(-1), s.data.sum(-1), rtol=1e-4)
    assert restored.metadata.Signal.EELSpecNet.model.name == "eelspecnet-finetuned"
    # The network was trained on inputs matched from the mean vacuum PSF to a Gaussian, and the
    # restoration feeds it the same: the contract carries that PSF.
    assert contract.training["config"]["match_to_gaussian"] is True
    psf = np.asarray(contract.vacuum_psf)
    assert psf.shape == (2 * 1024,) and psf.sum() == pytest.approx(1.0, rel=1e-4)
    assert abs(int(np.argmax(psf)) - 1024) <= 1
    spectra = s.data.reshape(-1, s.data.shape[-1])
    unmatched = EELSpecNetDeconvolution((model, dataclasses.replace(contract, vacuum_psf=None)))
    by_hand = unmatched.run(match_to_gaussian(spectra, psf))
    by_hand *= spectra.sum(-1, keepdims=True) / by_hand.sum(-1, keepdims=True)
    np.testing.assert_allclose(restored.data.reshape(spectra.shape), by_hand, rtol=1e-4, atol=1e-6 * spectra.max())
    assert not np.allclose(unmatched.run(spectra), by_hand, rtol=1e-2)
    # A run resumes where it stopped: its schedule's clock and its history go on.
    first = json.loads((out / "training" / "elapsed.json").read_text())["elapsed_s"]
    finetune(vacuum, out, minutes=0.08, model=tiny_base, specimen=specimen, resume=True, verbose=0)
    assert json.loads((out / "training" / "elapsed.json").read_text())["elapsed_s"] > first
    assert len((out / "training" / "history.csv").read_text().splitlines()) >= 3  # header and two epochs
    # The card counts the whole run, not the resumed part only.
    epochs = len((out / "training" / "history.csv").read_text().splitlines()) - 1
    assert load_model(path)[1].training["epochs_run"] == epochs
    assert not list(out.glob(".*partial"))
    # A resumed run must be given what the run was started with.
    other = tmp_path / "other_vacuum.hspy"
    silver_nanowire_vacuum(n_spectra=3).save(other)
    with pytest.raises(ValueError, match="vacuum_sha256"):
        finetune(other, out, minutes=0.1, model=tiny_base, specimen=specimen, resume=True, verbose=0)


def test_bad_vacuum_leaves_the_output_folder_untouched(tmp_path, tiny_base, demo_files):
    vacuum, specimen = demo_files
    out = tmp_path / "never"
    bad = tmp_path / "nan.npy"
    data = np.asarray(silver_nanowire_vacuum(n_spectra=2).data, float)
    data[1, 5] = np.nan
    np.save(bad, data)
    with pytest.raises(ValueError, match="NaN"):
        finetune(bad, out, minutes=0.05, model=tiny_base, verbose=0)
    cut = tmp_path / "cut.npy"
    np.save(cut, np.asarray(silver_nanowire_vacuum(n_spectra=2).data, float)[:, 195:])
    with pytest.raises(ValueError, match="cut by the energy window"):
        finetune(cut, out, minutes=0.05, model=tiny_base, verbose=0)
    coarse = silver_nanowire().inav[:2, :1]
    coarse.axes_manager.signal_axes[0].scale = 0.01
    coarse.save(tmp_path / "coarse.hspy")
    with pytest.raises(ValueError, match="dispersion"):
        finetune(vacuum, out, minutes=0.05, model=tiny_base, specimen=tmp_path / "coarse.hspy", verbose=0)
    # A specimen pixel with NaN would set the noise to NaN: refused before anything is written.
    holed = silver_nanowire().inav[:2, :1]
    holed.data[0, 1, 10] = np.nan
    holed.save(tmp_path / "holed.hspy")
    with pytest.raises(ValueError, match=r"specimen spectra .* NaN"):
        finetune(vacuum, out, minutes=0.05, model=tiny_base, specimen=tmp_path / "holed.hspy", verbose=0)
    with pytest.raises(ValueError, match="no fine-tune to resume"):
        finetune(vacuum, out, minutes=0.05, model=tiny_base, resume=True, verbose=0)
    assert not out.exists()


WS2 = "tests/data/eelsfitter_ws2/"
WS2_VACUUM = WS2 + "Position-2-Vacuum_EELS-Spectrum_m0d93eV-to-9d07eV.txt"
WS2_SPECIMEN = WS2 + "Position-5-Specimen_EELS-Spectrum_m0d93eV-to-9d07eV.txt"


def _broadened(path, to_fwhm, folder):
    """The measured spectrum convolved with a Gaussian to a ZLP of about ``to_fwhm`` channels (the
    same instrument at a coarser energy resolution), saved as .npy."""
    from scipy.ndimage import gaussian_filter1d

    from hyperspy_eelspecnet.spectral import fwhm

    spectrum = np.loadtxt(path)
    extra = np.sqrt(to_fwhm**2 - fwhm(spectrum[None])[0] ** 2) / 2.3548
    target = folder / f"broadened_{to_fwhm:g}.npy"
    np.save(target, gaussian_filter1d(spectrum, extra)[None])
    return target


def test_a_specimen_given_as_vacuum_is_refused_unless_forced(tmp_path):
    out = tmp_path / "out"
    # The reviewer's mix-up: a WS2 specimen spectrum as the vacuum, the vacuum as the specimen.
    with pytest.raises(ValueError) as refused:
        finetune(WS2_SPECIMEN, out, specimen=WS2_VACUUM, dispersion=0.005, model=tmp_path / "absent.keras")
    message = str(refused.value)
    assert "1 of the 1 vacuum spectra (Position-5-Specimen" in message and "by 0.00024 of the ZLP" in message
    assert "recorded through a hole" in message and "force=True (--force" in message and "\n" not in message
    assert not out.exists()
    # Forced: named in a warning, and the run goes on (here to the base model, which is absent).
    with pytest.warns(UserWarning, match=r"Position-5-Specimen.*loss features.*force=True"), pytest.raises(FileNotFoundError):
        finetune(WS2_SPECIMEN, out, specimen=WS2_VACUUM, dispersion=0.005, model=tmp_path / "absent.keras", force=True)
    assert not out.exists()


def test_a_vacuum_wider_than_the_specimen_is_refused_and_a_much_wider_specimen_warned_about(tmp_path):
    out, absent = tmp_path / "out", tmp_path / "absent.keras"
    wide_vacuum = _broadened(WS2_VACUUM, 21.0, tmp_path)  # the specimen's ZLP: 17.1 channels
    with pytest.raises(ValueError, match=r"vacuum ZLP is 20\.6 channels wide \(FWHM of the mean of the spectra aligned on their ZLP\), 1\.21 times the specimen's 17\.1"):
        finetune(wide_vacuum, out, specimen=WS2_SPECIMEN, dispersion=0.005, model=absent)
    with pytest.warns(UserWarning, match="cannot be wider"), pytest.raises(FileNotFoundError):
        finetune(wide_vacuum, out, specimen=WS2_SPECIMEN, dispersion=0.005, model=absent, force=True)
    # The measured pair passes (16.0 and 17.1 channels).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FileNotFoundError):
            finetune(WS2_VACUUM, out, specimen=WS2_SPECIMEN, dispersion=0.005, model=absent)
    # A specimen ZLP 1.6 times the vacuum's: drift or other settings, worth a word.
    wide_specimen = _broadened(WS2_SPECIMEN, 26.0, tmp_path)
    with pytest.warns(UserWarning, match=r"specimen's ZLP is 2\d\.\d channels wide .* 1\.[5-7]\d times the vacuum's 16\.0"):
        with pytest.raises(FileNotFoundError):
            finetune(WS2_VACUUM, out, specimen=wide_specimen, dispersion=0.005, model=absent)
    assert not out.exists()


def test_the_adopted_dispersion_is_said_with_its_source(tmp_path, capsys, tiny_base, load_ws2):
    out = tmp_path / "out"
    specimen = load_ws2("Specimen").inav[:1]  # calibrated: 0.005 eV per channel
    specimen.save(tmp_path / "specimen.hspy")
    with pytest.raises(FileNotFoundError):
        finetune(WS2_VACUUM, out, specimen=tmp_path / "specimen.hspy", model=tmp_path / "absent.keras")
    assert capsys.readouterr().out == (
        "Dispersion: 0.005 eV per channel, the specimen files' (the vacuum files do not say theirs; give "
        "--dispersion (dispersion=) to set it).\n"
    )
    # No file says one: the base model's, with a warning (here before the missing run is refused).
    dispersion = load_model(tiny_base)[1].dispersion
    with pytest.warns(UserWarning, match=f"the base model's {dispersion:g} eV per channel is taken"):
        with pytest.raises(ValueError, match="no fine-tune to resume"):
            finetune(WS2_VACUUM, out, model=tiny_base, resume=True)
    # Given, or stated by the vacuum: nothing to say.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="no fine-tune to resume"):
            finetune(WS2_VACUUM, out, model=tiny_base, dispersion=0.005, resume=True)
    assert capsys.readouterr().out == "" and not out.exists()


def test_a_core_loss_file_is_refused_as_a_window_without_zero_energy(tmp_path, data_dir):
    out = tmp_path / "out"
    for options in ({"vacuum": data_dir / "EELS_SI.dm4"}, {"vacuum": WS2_VACUUM, "specimen": data_dir / "EELS_SI.dm4"}):
        with pytest.raises(ValueError) as refused:
            finetune(options.pop("vacuum"), out, dispersion=1.0, model=tmp_path / "absent.keras", **options)
        message = str(refused.value)
        assert "EELS_SI.dm4 spans 300-2347 eV: the window does not contain 0 eV, and the maximum taken for" in message
        assert "If this window has no ZLP (a plasmon or core-loss window), it is not a low-loss spectrum" in message
        assert "s.align_zero_loss_peak(calibrate=True)" in message and "\n" not in message
        assert "--" not in message.replace("(--force", "")
    assert not out.exists()


def test_a_vacuum_only_off_zero_energy_is_warned_about_and_a_plasmon_window_refused(tmp_path):
    from exspy.signals import EELSSpectrum

    out, absent = tmp_path / "out", tmp_path / "absent.keras"
    # The WS2 vacuum with its axis off by 1 eV: 0.07-10.07 eV, the ZLP at 1 eV. The fine-tune
    # works in channels: a word about the calibration, and on (to the absent base model).
    shifted = EELSSpectrum(np.loadtxt(WS2_VACUUM))
    axis = shifted.axes_manager.signal_axes[0]
    axis.scale, axis.offset, axis.units = 0.005, 0.07, "eV"
    shifted.save(tmp_path / "offset.hspy")
    with pytest.warns(UserWarning, match=r"spans 0\.07-10\.07 eV: .* its maximum \(at 1 eV\) is a narrow peak like a zero"):
        with pytest.raises(FileNotFoundError):
            finetune(tmp_path / "offset.hspy", out, model=absent)
    # A plasmon window (5-25 eV, the plasmon on the ZLP's tail) is no ZLP off 0 eV: refused.
    energy = np.arange(5.0, 25.0, 0.02)
    plasmon = EELSSpectrum(1e5 / (1 + ((energy - 15) / 0.35) ** 2) + 5e3 * (5 / energy) ** 1.5)
    axis = plasmon.axes_manager.signal_axes[0]
    axis.scale, axis.offset, axis.units = 0.02, 5.0, "eV"
    plasmon.save(tmp_path / "plasmon.hspy")
    with pytest.raises(ValueError, match=r"spans 5-24\.98 eV: the window does not contain 0 eV, and the maximum .* \(at 15 eV\)"):
        finetune(tmp_path / "plasmon.hspy", out, model=absent)
    assert not out.exists()


def _low_count_vacuum(feature=0.0, seed=4):
    """200 vacuum spectra of 300 counts at their ZLP maximum (4-channel FWHM), with a loss
    feature of ``feature`` of the ZLP 300 channels above it."""
    channels = np.arange(2048)
    shape = np.exp(-4 * np.log(2) * ((channels - 400.3) / 4.0) ** 2) + 1e-3 / (1 + ((channels - 400.3) / 4.0) ** 2)
    shape = shape + feature * np.exp(-0.5 * ((channels - 700) / 15) ** 2)
    return np.random.default_rng(seed).poisson(300 * shape, (200, channels.size)).astype(float)


def test_a_few_noisy_vacuum_spectra_are_named_and_common_loss_features_refused(tmp_path):
    out, absent = tmp_path / "out", tmp_path / "absent.keras"
    # Clean, but one spectrum's counting noise rises past the limit: named, and the run goes on.
    np.save(tmp_path / "clean.npy", _low_count_vacuum())
    with pytest.warns(UserWarning, match=r"^1 of the 200 vacuum spectra \(clean\.npy row 149\) rise .* their mean aligned "
                      r"on the ZLP does not .* counting noise or a stray spike"):
        with pytest.raises(FileNotFoundError):
            finetune(tmp_path / "clean.npy", out, dispersion=0.005, model=absent)
    # A weak loss feature in every spectrum: a few rise on their own, their mean does.
    np.save(tmp_path / "weak.npy", _low_count_vacuum(feature=2e-4, seed=1))
    with pytest.raises(ValueError, match=r"^35 of the 200 vacuum spectra .* and their mean aligned on the ZLP by 0\.00016"):
        finetune(tmp_path / "weak.npy", out, dispersion=0.005, model=absent)
    # Specimen spectra given as the vacuum: more than half rise.
    np.save(tmp_path / "specimens.npy", np.stack([np.loadtxt(WS2_SPECIMEN), np.loadtxt(WS2_SPECIMEN.replace("5-S", "6-S")),
                                                 np.loadtxt(WS2_VACUUM)]))
    with pytest.raises(ValueError, match=r"^2 of the 3 vacuum spectra \(specimens\.npy row 0, specimens\.npy row 1\) rise"):
        finetune(tmp_path / "specimens.npy", out, dispersion=0.005, model=absent)
    assert not out.exists()


def test_low_count_specimen_spectra_do_not_make_the_vacuum_read_wider(tmp_path):
    out, absent = tmp_path / "out", tmp_path / "absent.keras"
    # The WS2 specimen thinned to 500 electrons a spectrum (~30 at the ZLP maximum), 100 pixels:
    # each one's FWHM reads low from its noise, their aligned mean's does not.
    specimen = np.loadtxt(WS2_SPECIMEN).astype(np.int64)
    thinned = np.random.default_rng(0).binomial(np.repeat(specimen[None], 100, axis=0), 500 / specimen.sum())
    np.save(tmp_path / "thin.npy", thinned.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FileNotFoundError):
            finetune(WS2_VACUUM, out, specimen=tmp_path / "thin.npy", dispersion=0.005, model=absent)
    # A vacuum truly wider is still refused against them.
    with pytest.raises(ValueError, match=r"vacuum ZLP is 2\d\.\d channels wide \(FWHM of the mean of the spectra aligned"):
        finetune(_broadened(WS2_VACUUM, 21.0, tmp_path), out, specimen=tmp_path / "thin.npy", dispersion=0.005, model=absent)
    assert not out.exists()


def test_half_the_training_spectra_hold_phonon_like_features_scaled_to_the_vacuum_width():
    from hyperspy_eelspecnet.training.finetuning import finetune_config
    from hyperspy_eelspecnet.training.generator import generate_batch

    widths = {}
    for vacuum_fwhm in (6.0, 14.0):
        config = finetune_config({}, np.array([vacuum_fwhm - 0.2, vacuum_fwhm + 0.2]), 0.005, (1e6, 1e7), n_channels=1024)
        product, phonon_like = (component.generator_config() for component in config.mixture)
        assert [component.weight for component in config.mixture] == [0.5, 0.5]
        assert product.peak_near_zlp_distance == (6.0, 300.0)
        batch = generate_batch(phonon_like, 512, seed=3)
        # Energy losses of the features (centres from each spectrum's ZLP), in vacuum FWHM.
        distance = (batch.parameters["peak_centres"] - batch.parameters["zlp_position"][:, None]) / vacuum_fwhm
        width = batch.parameters["peak_fwhms"] / vacuum_fwhm
        finite = np.isfinite(distance)
        near = (distance[finite] >= 1.0) & (distance[finite] <= 5.0)
        assert 0.7 < near.mean() < 0.85  # 75 % drawn there, plus a few of the uniform draws
        assert np.all((width[finite] >= 0.4 - 1e-9) & (width[finite] <= 1.5 + 1e-9))
        widths[vacuum_fwhm] = np.median(batch.parameters["peak_fwhms"][finite])
    # The same recipe in units of each instrument's ZLP width.
    assert widths[14.0] / widths[6.0] == pytest.approx(14.0 / 6.0, rel=0.1)
