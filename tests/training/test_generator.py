"""The spectrum generator: reproducibility, physics of each step, presets, YAML round trip."""

import dataclasses

import numpy as np
import pytest

from hyperspy_eelspecnet.evaluation.metrics import fwhm
from hyperspy_eelspecnet.training import GeneratorConfig, generate_batch, preset
from hyperspy_eelspecnet.vacuum import match_to_gaussian, prepare_vacuum_psfs
from hyperspy_eelspecnet.spectral import (
    MIN_CHANNELS_ABOVE_ZLP, MIN_CHANNELS_BELOW_ZLP, half_maximum_centre, locate_zlp,
)


def test_same_seed_same_batch_and_different_seed_differs():
    config = preset("reference")
    a = generate_batch(config, 16, seed=123)
    b = generate_batch(config, 16, seed=123)
    c = generate_batch(config, 16, seed=124)
    np.testing.assert_array_equal(a.distorted, b.distorted)
    np.testing.assert_array_equal(a.ground_truth, b.ground_truth)
    assert not np.allclose(a.distorted, c.distorted)


@pytest.mark.parametrize("name", ["reference", "instrument"])
def test_batches_are_finite_and_unit_area(name):
    batch = generate_batch(preset(name), 64, seed=1)
    assert batch.distorted.shape == batch.ground_truth.shape == (64, 2048)
    assert np.isfinite(batch.distorted).all() and np.isfinite(batch.ground_truth).all()
    measured_area = np.where(batch.measured, batch.distorted, 0).sum(axis=1)
    np.testing.assert_allclose(measured_area, 1.0, rtol=1e-4)
    np.testing.assert_allclose(np.where(batch.measured, batch.ground_truth, 0).sum(axis=1), 1.0, rtol=1e-4)
    assert (batch.ground_truth >= 0).all()


def test_reference_ground_truth_zlp_is_the_quasi_dirac_at_channel_400():
    batch = generate_batch(preset("reference"), 32, seed=2, zlp_only=True)
    assert (np.argmax(batch.ground_truth, axis=1) == 400).all()
    # Sampled Gaussian of FWHM 3 channels, widths measured with linear interpolation.
    np.testing.assert_allclose(fwhm(batch.ground_truth), 3.056, atol=0.01)


def test_blur_widens_the_zlp_by_at_least_the_psf_width():
    batch = generate_batch(preset("reference"), 64, seed=3, zlp_only=True)
    widths = fwhm(batch.noise_free)
    assert (widths > 0.9 * batch.parameters["psf_fwhm"]).all()
    # Blur conserves counts: the noise-free spectrum is as wide as the PSF convolved with jitter,
    # and its area equals the truth's up to the noise's mean.
    assert np.corrcoef(widths, batch.parameters["psf_fwhm"])[0, 1] > 0.8


def test_reference_noise_is_gaussian_with_drawn_amplitude():
    config = preset("reference")
    batch = generate_batch(config, 64, seed=4, zlp_only=True)
    noise = batch.distorted - batch.noise_free
    peak = batch.noise_free.max(axis=1)
    measured_std = noise.std(axis=1) / peak
    np.testing.assert_allclose(measured_std, batch.parameters["noise_amplitude"], rtol=0.1)
    assert (batch.parameters["noise_amplitude"] >= 1e-8).all()
    assert (batch.parameters["noise_amplitude"] <= 1e-3).all()


def test_zlp_only_switch():
    config = preset("instrument")
    empty = generate_batch(config, 32, seed=5, zlp_only=True)
    assert empty.zlp_only.all() and (empty.parameters["n_peaks"] == 0).all()
    full = generate_batch(config, 32, seed=5, zlp_only=False)
    assert (full.parameters["n_peaks"] >= 1).all()


def test_instrument_preset_has_counting_noise_continua_drift_and_windows():
    batch = generate_batch(preset("instrument"), 256, seed=6)
    p = batch.parameters
    assert np.ptp(p["zlp_drift"]) > 20  # tens of channels around the nominal ZLP channel
    assert (p["continuum_level"] > 0).mean() > 0.4
    assert (p["window_stop"] < 2048).any()
    # Energy zero is the recorded ZLP: the truth's ZLP sits at the located maximum of the
    # recorded spectrum (sub-channel), which stays on its own channels, drift and all.
    np.testing.assert_allclose(p["zlp_position"], locate_zlp(batch.distorted), atol=1e-9)
    assert (np.abs(np.argmax(batch.ground_truth, axis=1) - p["zlp_position"]) <= 0.5 + 1e-3).all()
    assert np.ptp(p["zlp_position"]) > 20
    # Continua reach the far end of the window.
    with_continuum = p["continuum_level"] > 0
    assert (batch.ground_truth[with_continuum, -50:].mean(axis=1) > 0).all()
    # Loss features vanish on the energy-gain side.
    far_gain = batch.ground_truth[:, :300]
    assert far_gain.max() < 1e-6


def test_aligned_truth_keeps_each_feature_at_its_energy_loss_from_the_zlp():
    # Bimodal jitter of up to 12 channels puts the recorded ZLP's maximum on one of its two
    # humps, channels from the true ZLP. Every recorded feature is a copy of the same jitter
    # pattern, so its hump sits at its energy loss from the ZLP's hump: the truth must put
    # the feature at that loss from its ZLP (at the recorded maximum), not shifted by the
    # jitter's offset.
    config = preset("instrument")
    config.n_peaks, config.peak_fwhm, config.peak_ratio = (1, 1), (3.0, 3.0), (300.0, 300.0)
    config.peak_channel, config.continuum_probability, config.window_probability = (900, 1500), 0.0, 0.0
    config.jitter_amplitude, config.jitter_distributions = (10.0, 12.0), ["bimodal"]
    config.psf_fwhm, config.psf_asymmetry, config.total_counts = (3.0, 3.0), (1.0, 1.0), (1e12, 1e12)
    batch = generate_batch(config, 32, seed=3)
    centres = batch.parameters["peak_centres"][:, 0]
    rows = np.arange(32)
    near = np.round(centres).astype(int)[:, None] + np.arange(-25, 26)
    zlp = np.round(batch.parameters["zlp_position"]).astype(int)
    true_loss = near[rows, np.argmax(batch.ground_truth[rows[:, None], near], axis=1)] - zlp
    # The recorded loss: the shift that best lays the recorded ZLP's jitter pattern onto the
    # recorded feature.
    offsets = np.arange(-30, 31)
    pattern = batch.noise_free[rows[:, None], zlp[:, None] + offsets]
    overlap = np.einsum("io,ilo->il", pattern, batch.noise_free[rows[:, None, None], near[:, :, None] + offsets])
    recorded_loss = near[rows, np.argmax(overlap, axis=1)] - zlp
    assert (np.argmax(batch.noise_free, axis=1) == np.argmax(batch.ground_truth, axis=1)).all()
    np.testing.assert_allclose(true_loss, np.round(centres) - zlp, atol=1)
    # The humps are 20-24 channels apart: the test would see a truth moved by the jitter.
    assert np.abs(recorded_loss - true_loss).max() <= 1


def test_unaligned_truth_follows_the_drift():
    config = preset("instrument")
    config.align_zlp = False
    batch = generate_batch(config, 64, seed=6)
    shifted = np.argmax(batch.ground_truth, axis=1) - 400
    np.testing.assert_allclose(shifted, np.round(batch.parameters["zlp_drift"]), atol=1)
    np.testing.assert_allclose(batch.parameters["zlp_position"], 400 + batch.parameters["zlp_drift"])


def test_poisson_noise_scales_with_counts():
    config = preset("instrument")
    config.window_probability = 0.0
    config.read_noise = (0.0, 0.0)
    config.dark_level = (0.0, 0.0)
    config.total_counts = (1e4, 1e4)
    low = generate_batch(config, 16, seed=7, zlp_only=True)
    config.total_counts = (1e8, 1e8)
    high = generate_batch(config, 16, seed=7, zlp_only=True)
    rel_noise = lambda b: np.abs(b.distorted - b.noise_free).mean() / b.noise_free.mean()
    # Relative Poisson noise falls as 1/sqrt(counts): 100x for 1e4x the counts.
    assert rel_noise(low) / rel_noise(high) > 30


def test_measured_psfs_are_used_as_blur():
    channels = np.arange(512)
    vacuum = np.exp(-0.5 * ((channels - 100) / 12.0) ** 2) + 1e-3 / (1 + ((channels - 100) / 40.0) ** 2)
    # The generator's kernels span offsets -n ... n - 1: PSFs prepared to 2 n channels.
    kernels = prepare_vacuum_psfs(vacuum * 1e6, 4096).psfs
    assert kernels.shape == (1, 4096) and np.argmax(kernels[0]) == 2048
    np.testing.assert_allclose(kernels.sum(), 1.0)
    config = preset("reference")
    config.measured_psf_extra_fwhm = (0.0, 0.0)
    config.jitter_amplitude = (0.0, 0.0)
    with pytest.raises(ValueError, match="prepare_vacuum_psfs"):
        generate_batch(config, 2, seed=8, measured_psfs=prepare_vacuum_psfs(vacuum, 2048).psfs)
    batch = generate_batch(config, 8, seed=8, measured_psfs=kernels, zlp_only=True)
    assert batch.parameters["measured_psf"].all()
    # Blurring the 3-channel quasi-Dirac with a 28-channel Gaussian gives ~28 channels.
    np.testing.assert_allclose(fwhm(batch.noise_free), 2.3548 * np.hypot(12.0, 3 / 2.3548), rtol=0.03)


def test_yaml_round_trip_and_bad_settings(tmp_path):
    config = preset("instrument")
    path = tmp_path / "gen.yaml"
    config.to_yaml(path)
    again = GeneratorConfig.from_yaml(path)
    assert again == config
    with pytest.raises(ValueError, match="Unknown generator setting"):
        GeneratorConfig.from_dict({"psf_width": (1, 2)})
    with pytest.raises(ValueError, match="psf_shape"):
        GeneratorConfig(psf_shape="gaussian")
    with pytest.raises(ValueError, match="Unknown preset"):
        preset("paper")


def test_features_near_the_zlp():
    config = preset("instrument")
    near = dataclasses.replace(config, peak_near_zlp_fraction=0.5, peak_near_zlp_distance=(8.0, 100.0))
    # Off by default, and then the random stream is the one of earlier versions (same batch).
    plain = generate_batch(config, 256, seed=5)
    distance = plain.parameters["peak_centres"] - config.zlp_channel
    assert np.nanmean(distance <= 100) < 0.1
    moved = generate_batch(near, 256, seed=5)
    distance = moved.parameters["peak_centres"] - config.zlp_channel
    close = distance[np.isfinite(distance)] <= 100.0
    assert 0.45 < close.mean() < 0.6  # half drawn near, plus the few uniform draws there
    # Log-uniform over 8-100 channels: median ~28 (a uniform draw there would give ~54).
    assert 20 < np.median(distance[np.isfinite(distance) & (distance <= 100)]) < 36
    with pytest.raises(ValueError, match="peak_near_zlp_fraction"):
        dataclasses.replace(config, peak_near_zlp_fraction=1.5)


def test_blur_is_the_linear_convolution_even_where_jitter_stretches_the_psf_tail():
    from hyperspy_eelspecnet.training.generator import blur_spectra

    rng = np.random.default_rng(3)
    n = 64
    truth = rng.random((3, n))
    offsets = np.arange(2 * n) - n
    psf = 1.0 / (1.0 + (offsets / 3.0) ** 2)  # heavy tails out to +-n
    psf = (psf / psf.sum())[None, :]
    shifts = np.array([[0.0, 2.5, -7.25], [0.0, 0.0, 0.0], [0.0, 11.0, -11.0]])
    blurred, kernel = blur_spectra(truth, psf, shifts)

    # Direct sum: channel i of the truth goes to i + offset + shift, weights split linearly.
    expected = np.zeros((3, n))
    for row in range(3):
        for shift in shifts[row]:
            lower = int(np.floor(shift))
            for part, weight in ((lower, 1 - (shift - lower)), (lower + 1, shift - lower)):
                full = np.convolve(truth[row], psf[0]) * weight / shifts.shape[1]  # offsets -n ... 2n - 2
                for i in range(n):
                    source = i + n - part  # index in `full` of output channel i
                    if 0 <= source < full.size:
                        expected[row, i] += full[source]
    np.testing.assert_allclose(blurred, expected, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(kernel.sum(axis=1), 1.0)


def test_matched_batches_are_the_recorded_spectra_matched_within_their_windows():
    # What a model fine-tuned with match_to_gaussian sees in training is what its restoration
    # feeds it: each recorded window, padded with its edge level, matched from the vacuum PSF.
    channels = np.arange(1024)
    vacuum = np.exp(-0.5 * ((channels - 300) / 5.0) ** 2) + 2e-3 / (1 + ((channels - 306) / 15.0) ** 2)
    config = dataclasses.replace(
        preset("instrument"), n_channels=1024, zlp_channel=200, peak_channel=(180, 1000), zlp_drift=(-50.0, 100.0),
        window_probability=1.0, window_start=(0, 100), window_stop=(600, 1024), zlp_centre="half_maximum",
        align_zlp=True, measured_psf_probability=1.0,
    )
    psfs = prepare_vacuum_psfs(1e7 * vacuum, 2048).psfs
    plain = generate_batch(config, 16, seed=5, measured_psfs=psfs)
    matched = generate_batch(config, 16, seed=5, measured_psfs=psfs, match_psf=psfs[0])  # the same draws
    np.testing.assert_array_equal(plain.measured, matched.measured)
    by_hand = match_to_gaussian(plain.distorted, psfs[0])
    for row in range(16):
        inside = plain.measured[row]
        ratio = matched.distorted[row, inside] / by_hand[row, inside]
        big = by_hand[row, inside] > 1e-3 * by_hand[row].max()
        np.testing.assert_allclose(ratio[big], np.median(ratio[big]), rtol=2e-3)
    # The truth's ZLP follows the matched recording's half-maximum centre.
    np.testing.assert_allclose(matched.parameters["zlp_position"], half_maximum_centre(matched.distorted), atol=1e-3)


def test_half_maximum_alignment_puts_the_truths_zlp_at_the_recorded_half_maximum_centre():
    # An asymmetric PSF (loss side 2.5 times wider) moves the half-maximum centre of the
    # recorded ZLP towards the loss side of its maximum: the two conventions differ by
    # channels, and each puts the truth's ZLP where it says.
    config = preset("instrument")
    config.window_probability, config.psf_asymmetry, config.psf_fwhm = 0.0, (2.5, 2.5), (20.0, 30.0)
    config.total_counts = (1e9, 1e9)
    by_half_maximum = generate_batch(dataclasses.replace(config, zlp_centre="half_maximum"), 32, seed=11, zlp_only=True)
    by_maximum = generate_batch(config, 32, seed=11, zlp_only=True)  # the same draws
    np.testing.assert_array_equal(by_half_maximum.distorted, by_maximum.distorted)

    recorded_centre = half_maximum_centre(by_half_maximum.distorted)
    np.testing.assert_allclose(by_half_maximum.parameters["zlp_position"], recorded_centre, atol=1e-3)
    np.testing.assert_allclose(by_maximum.parameters["zlp_position"], locate_zlp(by_maximum.distorted), atol=1e-3)
    # The truth's own ZLP (a symmetric quasi-Dirac) is centred there, measured independently.
    np.testing.assert_allclose(half_maximum_centre(by_half_maximum.ground_truth), recorded_centre, atol=0.02)
    np.testing.assert_allclose(locate_zlp(by_maximum.ground_truth), by_maximum.parameters["zlp_position"], atol=0.05)
    shift = by_half_maximum.parameters["zlp_position"] - by_maximum.parameters["zlp_position"]
    assert np.median(shift) > 1.0  # towards the wide (loss) side
    with pytest.raises(ValueError, match="zlp_centre"):
        GeneratorConfig(zlp_centre="centroid")


def test_windowed_spectra_keep_the_zlp_inside_and_pad_the_rest_with_the_edge_level():
    config = preset("instrument")
    config.window_probability = 1.0
    config.window_start, config.window_stop = (100, 400), (700, 1200)
    batch = generate_batch(config, 64, seed=12)
    p = batch.parameters
    start, stop = p["window_start"], p["window_stop"]
    channels = np.arange(2048)
    np.testing.assert_array_equal(batch.measured, (channels >= start[:, None]) & (channels < stop[:, None]))
    assert (stop < 2048).all() and (start > 0).any()
    # The ZLP keeps the channels a restoration needs on both sides inside the window.
    assert (p["zlp_position"] - start >= MIN_CHANNELS_BELOW_ZLP).all()
    assert (stop - p["zlp_position"] >= MIN_CHANNELS_ABOVE_ZLP).all()
    # Unit area over the measured channels, for the recording and the truth alike.
    np.testing.assert_allclose(np.where(batch.measured, batch.distorted, 0).sum(axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(np.where(batch.measured, batch.ground_truth, 0).sum(axis=1), 1.0, rtol=1e-4)
    # Outside the window: the mean of the 8 nearest measured channels, constant.
    for row in range(8):
        s, e, spectrum = start[row], stop[row], batch.distorted[row].astype(float)
        np.testing.assert_allclose(spectrum[e:], spectrum[e - 8: e].mean(), rtol=1e-5)
        np.testing.assert_allclose(spectrum[:s], spectrum[s: s + 8].mean(), rtol=1e-5)


def test_gain_side_twins_follow_detailed_balance():
    # One narrow feature 20 channels (0.1 eV) above a ZLP on channel 400; loss features only
    # above the ZLP, so the truth 20 channels below it is the twin alone.
    config = preset("reference")
    config.n_peaks, config.peak_channel, config.peak_fwhm = (1, 1), (420, 420), (3.0, 3.0)
    config.peak_ratio, config.loss_only_above_zlp = (1000.0, 1000.0), True
    plain = generate_batch(config, 16, seed=13)
    assert plain.parameters["temperature"] is None
    assert plain.ground_truth[:, 380].max() < 1e-9 * plain.ground_truth[:, 420].min()

    config.gain_side_temperature = (100.0, 2000.0)
    batch = generate_batch(config, 16, seed=13)
    temperature = batch.parameters["temperature"]
    assert temperature.min() >= 100.0 and temperature.max() <= 2000.0 and np.ptp(temperature) > 300
    energy = 20 * config.dispersion
    expected = np.exp(-energy / (8.617333e-5 * temperature))
    ratio = batch.ground_truth[:, 380].astype(float) / batch.ground_truth[:, 420]
    np.testing.assert_allclose(ratio, expected, rtol=1e-4)
    # The twin peaks 20 channels below the ZLP, and none without a temperature.
    assert (np.argmax(batch.ground_truth[:, 370:391], axis=1) == 10).all()
    with pytest.raises(ValueError, match="gain_side_temperature"):
        GeneratorConfig(gain_side_temperature=(0.0, 300.0))


def test_analytic_psfs_have_the_drawn_width_and_asymmetry():
    from hyperspy_eelspecnet.training.generator import analytic_psfs

    offsets = (np.arange(4096) - 2048)[None, :].astype(float)
    config = preset("instrument")
    config.psf_asymmetry = (2.0, 2.0)
    kernels, widths = analytic_psfs(np.random.default_rng(0), config, 16, offsets)
    assert kernels.shape == (16, 4096) and np.argmax(kernels, axis=1).tolist() == [2048] * 16
    np.testing.assert_allclose(kernels.sum(axis=1), 1.0)
    assert widths.min() >= 3.0 and widths.max() <= 40.0
    np.testing.assert_allclose(fwhm(kernels), widths, rtol=0.03, atol=0.15)
    # Half the maximum at -fwhm/3 on the gain side and +2 fwhm/3 on the loss side (crossings
    # interpolated between the sampled channels).
    for kernel, width in zip(kernels, widths):
        above = np.flatnonzero(kernel >= 0.5 * kernel.max())
        gain_side = np.interp(0.5 * kernel.max(), kernel[above[0] - 1: above[0] + 1], offsets[0, above[0] - 1: above[0] + 1])
        loss_side = np.interp(-0.5 * kernel.max(), -kernel[above[-1]: above[-1] + 2], offsets[0, above[-1]: above[-1] + 2])
        assert gain_side == pytest.approx(-width / 3, abs=0.25)
        assert loss_side == pytest.approx(2 * width / 3, abs=0.25)


@pytest.mark.parametrize("distribution", ["uniform", "gaussian", "arcsine", "bimodal"])
def test_jitter_shifts_stay_within_their_amplitude(distribution):
    from hyperspy_eelspecnet.training.generator import jitter_shifts

    config = preset("reference")
    config.jitter_amplitude, config.jitter_distributions, config.n_jitter_copies = (2.0, 8.0), [distribution], 400
    shifts, amplitude = jitter_shifts(np.random.default_rng(1), config, 32)
    assert shifts.shape == (32, 400) and (shifts[:, 0] == 0).all()  # copy 0 unshifted
    assert amplitude.min() >= 2.0 and amplitude.max() <= 8.0
    reach = np.abs(shifts).max(axis=1) / amplitude
    # Uniform and arcsine reach the amplitude; the Gaussian is clipped at two; the bimodal
    # humps sit at 0.8 amplitude with a spread of 0.15.
    limit = {"uniform": 1.0, "gaussian": 2.0, "arcsine": 1.0, "bimodal": 1.8}[distribution]
    assert (reach <= limit + 1e-9).all() and (reach > 0.6).all()
    if distribution == "bimodal":
        assert np.mean(np.abs(shifts[:, 1:]) / amplitude[:, None] < 0.3) < 0.01  # few near zero


@pytest.mark.parametrize("setting, match", [
    ({"psf_fwhm": [40, 3]}, "low <= high"),
    ({"n_peaks": [3]}, "pair of numbers"),
    ({"n_peaks": "3-10"}, "pair of numbers"),
    ({"total_counts": [-10, 100]}, "must be positive"),
    ({"psf_fwhm": [-5, 10]}, "must be positive"),
    ({"n_peaks": [-3, -1]}, "must not be negative"),
    ({"window_probability": 1.5}, "probability"),
    ({"continuum_probability": -0.5}, "probability"),
    ({"zlp_drift": [-390, 0]}, r"zlp_drift=\[-390, 0\] moves the ZLP .* channels 10\.\.400"),
    ({"zlp_drift": [0, 1600]}, r"stay within 32\.\.1983"),
    ({"zlp_drift": [0, 1584]}, r"channels 400\.\.1984"),  # 63 channels above it: one short
    ({"n_channels": 512, "peak_channel": [380, 510], "zlp_drift": [-30, 100]}, r"channels 370\.\.500"),
])
def test_settings_that_cannot_be_drawn_are_refused_by_name(setting, match):
    values = {**preset("instrument").to_dict(), **setting}
    with pytest.raises(ValueError, match=match):
        GeneratorConfig.from_dict(values)
