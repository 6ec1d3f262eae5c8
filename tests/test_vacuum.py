"""Measured vacuum ZLPs prepared as PSFs: checked, dark offset removed, centred sub-channel."""

from pathlib import Path

import numpy as np
import pytest

from hyperspy_eelspecnet.spectral import fwhm, locate_zlp
from hyperspy_eelspecnet.vacuum import LOSS_FEATURE_RISE_LIMIT, loss_feature_rise, match_to_gaussian, prepare_vacuum_psfs

WS2 = Path(__file__).parent / "data" / "eelsfitter_ws2"


@pytest.fixture(scope="module")
def ws2_vacuum():
    return np.array([np.loadtxt(path) for path in sorted(WS2.glob("Position-*-Vacuum_*.txt"))])


@pytest.fixture(scope="module")
def ws2_specimen():
    return np.array([np.loadtxt(path) for path in sorted(WS2.glob("Position-*-Specimen_*.txt"))])


def pseudo_voigt(positions, n=512, fwhm_channels=12.0):
    channels = np.arange(n)[None, :]
    offset = (channels - np.asarray(positions, float)[:, None]) / (0.5 * fwhm_channels)
    return 1e6 * (0.3 / (1 + offset**2) + 0.7 * np.exp(-np.log(2) * offset**2))


def test_measured_vacuum_is_centred_on_its_located_maximum_with_its_width_kept(ws2_vacuum):
    prepared = prepare_vacuum_psfs(ws2_vacuum, length=4096)
    assert prepared.psfs.shape == (2, 4096)
    np.testing.assert_allclose(locate_zlp(prepared.psfs), 2048, atol=1e-3)
    np.testing.assert_allclose(prepared.psfs.sum(axis=1), 1.0)
    assert prepared.psfs.min() >= 0
    np.testing.assert_allclose(fwhm(prepared.psfs), fwhm(ws2_vacuum), atol=0.1)
    np.testing.assert_allclose(prepared.zlp_position, locate_zlp(ws2_vacuum))
    # The recorded window is 2000 channels around a ZLP on channel 186: its far tails come along.
    assert prepared.psfs[0, 2048 + 1500] > 0


@pytest.mark.parametrize("position", [200.0, 200.3, 200.5, 200.8])
def test_sub_channel_zlps_are_shifted_to_the_same_place(position):
    prepared = prepare_vacuum_psfs(pseudo_voigt([position]), length=512)
    np.testing.assert_allclose(locate_zlp(prepared.psfs), 256, atol=1e-3)
    reference = prepare_vacuum_psfs(pseudo_voigt([200.0]), length=512).psfs
    assert np.abs(prepared.psfs - reference).max() < 2e-3 * reference.max()


def test_a_dark_level_subtracted_too_large_is_added_back(ws2_vacuum):
    oversubtracted = ws2_vacuum[:1] - 400.0  # the far tails (~150-200 counts) go negative
    prepared = prepare_vacuum_psfs(oversubtracted, length=2000)
    assert 150 < prepared.dark_offset[0] < 450
    # The tails are back above zero, not clipped flat.
    tail = prepared.psfs[0, 1000 + 800: 1000 + 900]
    assert (tail > 0).mean() > 0.9


def test_unusable_vacuum_spectra_are_refused_by_name(ws2_vacuum):
    names = ["vacuum_a.txt", "vacuum_b.txt"]
    with_nan = ws2_vacuum.copy()
    with_nan[1, 10] = np.nan
    with pytest.raises(ValueError, match=r"vacuum_b\.txt.*NaN"):
        prepare_vacuum_psfs(with_nan, names=names)
    with pytest.raises(ValueError, match="no positive counts"):
        prepare_vacuum_psfs(np.zeros((1, 100)))
    with pytest.raises(ValueError, match="cut by the energy window"):
        prepare_vacuum_psfs(ws2_vacuum[:, 180:], names=names)
    with pytest.raises(ValueError, match="shape"):
        prepare_vacuum_psfs(np.ones((2, 3, 100)))


def test_loss_features_tell_a_specimen_from_a_vacuum(ws2_vacuum, ws2_specimen):
    assert (loss_feature_rise(ws2_vacuum) < LOSS_FEATURE_RISE_LIMIT).all()
    assert (loss_feature_rise(ws2_specimen) > LOSS_FEATURE_RISE_LIMIT).all()


def test_counting_noise_of_a_clean_low_count_vacuum_is_not_a_loss_feature():
    from hyperspy_eelspecnet.data import silver_nanowire_vacuum

    shape = np.asarray(silver_nanowire_vacuum(n_spectra=1).data, float)[0]
    shape /= shape.max()
    rng = np.random.default_rng(3)
    clean = rng.poisson(1e4 * shape, size=(20, shape.size)) + rng.normal(0.0, 3.0, size=(20, shape.size))
    assert (loss_feature_rise(clean) < LOSS_FEATURE_RISE_LIMIT).all()
    # A real feature rising above the tail is still seen through the same noise.
    channels = np.arange(shape.size)
    bump = 3e-3 * np.exp(-0.5 * ((channels - np.argmax(shape) - 150) / 10.0) ** 2)
    specimen_like = rng.poisson(1e5 * (shape + bump), size=(5, shape.size)).astype(float)
    assert (loss_feature_rise(specimen_like) > LOSS_FEATURE_RISE_LIMIT).all()


def test_a_dead_channel_does_not_pass_for_the_foot_of_a_cut_zlp(ws2_vacuum):
    cut = ws2_vacuum[:1, 183:].copy()  # cut near the maximum (channel 186): no gain side left
    cut[0, 0] = 0.0  # one dead channel
    with pytest.raises(ValueError, match="cut by the energy window"):
        prepare_vacuum_psfs(cut)


def test_a_positive_dark_level_is_named_when_the_zlp_seems_cut(ws2_vacuum):
    with pytest.raises(ValueError, match="dark level"):
        prepare_vacuum_psfs(ws2_vacuum[:1] + 0.02 * ws2_vacuum[:1].max())


def test_one_negative_channel_is_not_taken_for_a_dark_level(ws2_vacuum):
    spiked = ws2_vacuum[:1].copy()
    spiked[0, 1500] = -0.1 * spiked.max()
    prepared = prepare_vacuum_psfs(spiked, length=2000)
    reference = prepare_vacuum_psfs(ws2_vacuum[:1], length=2000)
    assert prepared.dark_offset[0] < 1e-3 * spiked.max()
    # The PSF's weight far from the ZLP stays what the clean recording gives.
    far = np.abs(np.arange(2000) - 1000) > 50
    assert prepared.psfs[0, far].sum() == pytest.approx(reference.psfs[0, far].sum(), rel=0.05)


def power_law_psf(n, left=4.0, right=6.5, exponent=2.5):
    """Unit-sum kernel on offsets -n/2 ... n/2 - 1 with power-law tails, the loss side wider."""
    offsets = np.arange(n) - n // 2
    kernel = 1.0 / (1.0 + np.abs(offsets / np.where(offsets > 0, right, left)) ** exponent)
    return kernel / kernel.sum()


def test_matching_gives_the_spectrum_a_gaussian_psf_of_the_vacuum_width_would():
    n = 1024
    channels = np.arange(n)
    # A quasi-Dirac ZLP, a phonon 24 channels above it at 1/300 of it, a flat floor.
    truth = np.exp(-0.5 * ((channels - 200) / 0.8) ** 2) + 3e-3 * np.exp(-0.5 * ((channels - 224) / 3) ** 2) + 1e-4
    vacuum = prepare_vacuum_psfs(power_law_psf(2 * n)[None]).psfs[0]
    width = fwhm(vacuum[None])[0]
    gaussian = np.exp(-4 * np.log(2) * ((np.arange(2 * n) - n) / width) ** 2)
    gaussian /= gaussian.sum()

    def blur(kernel):  # the circle is long enough that nothing wraps into the window
        return np.fft.irfft(np.fft.rfft(np.pad(truth, (n, n)), 4 * n) * np.fft.rfft(np.roll(np.pad(kernel, (n, n)), -2 * n)), 4 * n)[n: 2 * n]

    recorded, wanted = blur(vacuum), blur(gaussian)
    matched = match_to_gaussian(np.stack([recorded, 3 * recorded]), vacuum)
    np.testing.assert_allclose(matched[1], 3 * matched[0], rtol=1e-9, atol=1e-12)  # linear
    assert np.abs(matched[0] - wanted).max() < 2e-4 * wanted.max()
    assert matched[0].sum() == pytest.approx(recorded.sum(), rel=1e-3)  # counts kept
    # On the vacuum's tail the phonon is a shoulder; matched, it is a maximum of its own, in place.
    assert not np.any(np.diff(np.sign(np.diff(recorded[205:240]))) < 0)
    segment = matched[0, 205:240]
    maxima = 205 + 1 + np.flatnonzero((segment[1:-1] > segment[:-2]) & (segment[1:-1] > segment[2:]))
    assert maxima.tolist() == [224]


def test_zero_mean_read_noise_leaves_no_pedestal_under_the_psf():
    """A correctly dark-subtracted vacuum: its far tails are read noise around zero, not PSF."""
    channels = np.arange(2048)
    rng = np.random.default_rng(0)
    zlp = 1e4 * np.exp(-4 * np.log(2) * ((channels - 1000.3) / 4.0) ** 2)
    prepared = prepare_vacuum_psfs(zlp + rng.normal(0.0, 10.0, (3, channels.size)))
    clean = prepare_vacuum_psfs(zlp)
    assert (prepared.dark_offset == 0).all()
    far = np.abs(channels - 1024) > 40  # beyond 10 FWHM: no signal
    assert clean.psfs[0, far].sum() < 1e-4
    # Clipped channel by channel, the noise gave 15-22 % of the PSF out there.
    assert (prepared.psfs[:, far].sum(axis=1) < 2e-3).all()


def test_a_saturated_vacuum_zlp_is_refused():
    channels = np.arange(512)
    zlp = 1e5 * np.exp(-4 * np.log(2) * ((channels - 200.0) / 8.0) ** 2) + 1.0
    with pytest.raises(ValueError, match=r"row 0\) is flat at its maximum .* 60000 counts.*saturated"):
        prepare_vacuum_psfs(np.minimum(zlp, 6e4))
    assert prepare_vacuum_psfs(zlp).psfs.shape == (1, 512)


def test_a_clean_vacuum_of_a_few_hundred_counts_is_not_taken_for_a_specimen():
    channels = np.arange(2048)
    shape = np.exp(-4 * np.log(2) * ((channels - 400.3) / 4.0) ** 2) + 1e-3 / (1 + ((channels - 400.3) / 4.0) ** 2)
    rng = np.random.default_rng(1)
    vacuum = rng.poisson(300 * shape, (50, channels.size)).astype(float)  # tails of 0 and 1 counts
    assert (loss_feature_rise(vacuum) < LOSS_FEATURE_RISE_LIMIT).mean() >= 0.96


def test_a_cosmic_ray_does_not_hide_a_specimens_loss_features(ws2_specimen):
    spiked = ws2_specimen[:1].copy()
    spiked[0, 1500] += 1e5  # 2 % of the ZLP maximum, one channel
    assert loss_feature_rise(spiked)[0] > LOSS_FEATURE_RISE_LIMIT


def test_three_equal_counts_at_the_top_of_a_low_count_zlp_are_not_saturation():
    channels = np.arange(512)
    zlp = np.round(300 * np.exp(-4 * np.log(2) * ((channels - 200.0) / 16.0) ** 2))
    zlp[198:204] = [287, 279, 289, 289, 289, 269]  # counting noise, as recorded
    assert prepare_vacuum_psfs(zlp).psfs.shape == (1, 512)
