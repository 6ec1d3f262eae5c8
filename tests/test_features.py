"""hyperspy_eelspecnet.features: loss features of spectra given as arrays (their HyperSpy
glue, feature_table and feature_map, is tested in test_analysis.py)."""

import numpy as np
import pytest

from hyperspy_eelspecnet.features import (
    FEATURE_DTYPE,
    find_loss_features,
    strongest_in_window,
)
from hyperspy_eelspecnet.training.generator import generate_batch, preset

DISPERSION = 0.005  # eV per channel
N_CHANNELS = 2048
ZLP_CHANNEL = 100
ENERGY = (np.arange(N_CHANNELS) - ZLP_CHANNEL) * DISPERSION


def gaussian_zlp(fwhm_channels=6.0):
    sigma = fwhm_channels / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    return np.exp(-0.5 * ((np.arange(N_CHANNELS) - ZLP_CHANNEL) / sigma) ** 2)


def lorentzian(energy, centre, fwhm, height):
    half = 0.5 * np.asarray(fwhm)
    return height * half**2 / ((energy - np.asarray(centre)) ** 2 + half**2)


def test_two_lorentzians_on_a_gaussian_zlp():
    # Far apart, so that each feature's own tail at the minima beside it (which lies under
    # the prominence base and is not counted in its area) stays below 0.5 % of its height.
    centres, fwhms, heights = np.array([0.5013, 4.0021]), np.array([0.06, 0.1]), np.array([0.02, 0.005])
    spectrum = gaussian_zlp() + lorentzian(ENERGY[:, None], centres, fwhms, heights).sum(axis=1)

    table = find_loss_features(spectrum, dispersion=DISPERSION, offset=ENERGY[0], max_features=4)

    assert table.dtype == FEATURE_DTYPE and table.shape == (4,)
    assert table["valid"].tolist() == [True, True, False, False]  # the ZLP is not a feature
    found = table[table["valid"]]
    np.testing.assert_allclose(found["energy"], centres, atol=0.2 * DISPERSION)
    np.testing.assert_allclose(found["fwhm"], fwhms, rtol=0.05)
    # Area over centre +- FWHM: a Lorentzian keeps arctan(2) * height * FWHM of its area there.
    np.testing.assert_allclose(found["area"], np.arctan(2.0) * heights * fwhms, rtol=0.05)
    np.testing.assert_allclose(found["height"], heights, rtol=0.02)
    assert np.all(np.isnan(table["energy"][~table["valid"]]))


def test_features_above_the_prominence_threshold_only():
    spectrum = gaussian_zlp() + lorentzian(ENERGY, 1.0, 0.05, 5e-5)
    assert not find_loss_features(spectrum, dispersion=DISPERSION)["valid"].any()
    assert find_loss_features(spectrum, dispersion=DISPERSION, min_height_ratio=1e-5)["valid"].sum() == 1


def test_keeps_the_most_prominent_when_there_are_more_than_max_features():
    heights = np.array([1e-3, 4e-3, 2e-3])
    centres = np.array([0.5, 1.0, 1.5])
    spectrum = gaussian_zlp() + lorentzian(ENERGY[:, None], centres, 0.02, heights).sum(axis=1)
    table = find_loss_features(spectrum, ENERGY, max_features=2)
    np.testing.assert_allclose(table["energy"], [1.0, 1.5], atol=0.2 * DISPERSION)  # sorted by energy


def true_displacement_of_maxima(centres, fwhms, heights):
    """Channels by which the other features' tails move each Lorentzian's maximum (Newton step).

    The maximum of ``L_j + B`` (B the sum of the other Lorentzians) lies near
    ``c_j - B'(c_j) / (L_j''(c_j) + B''(c_j))``; inputs and output have shape (n, k).
    """
    half = 0.5 * fwhms[:, None, :]
    offset = centres[:, :, None] - centres[:, None, :]  # [i, j, k]: from feature k to feature j
    others = ~np.eye(centres.shape[1], dtype=bool) & np.isfinite(offset)
    denominator = offset**2 + half**2
    amplitude = heights[:, None, :] * half**2
    slope = np.where(others, -2.0 * amplitude * offset / denominator**2, 0.0).sum(axis=2)
    curvature = np.where(others, 2.0 * amplitude * (3 * offset**2 - half**2) / denominator**3, 0.0).sum(axis=2)
    curvature -= 2.0 * heights / (0.5 * fwhms) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return -slope / curvature


def hit_rates(methods, n_spectra=300, busiest=None, seed=20261121):
    """Fractions of the generator's true loss features found within one channel, per method:
    of the ``detectable`` ones (at least 1/1000 of the ZLP, farther than 0.2 eV from it,
    resolvable) and of the ``isolated`` ones among them (whose maxima no neighbour moves by
    half a channel), with their counts. ``busiest``: judge only the that many spectra with the
    most detectable features (chosen from the truth, before any method runs)."""
    config = preset("reference")
    batch = generate_batch(config, n_spectra, seed=seed, zlp_only=False)

    centres = batch.parameters["peak_centres"]  # channels, NaN-padded (n, k)
    fwhms = batch.parameters["peak_fwhms"]
    heights = batch.parameters["peak_heights"]  # relative to the ZLP height
    distance = np.abs(centres[:, :, None] - centres[:, None, :])
    diagonal = np.arange(centres.shape[1])
    distance[:, diagonal, diagonal] = np.inf
    half_widest = 0.5 * np.maximum(fwhms[:, :, None], fwhms[:, None, :])
    # Two Lorentzians closer than half the wider FWHM merge into one maximum: not resolvable.
    resolvable = ~np.any(distance <= half_widest, axis=2)
    # The rule: at least 1/1000 of the ZLP, farther than 0.2 eV from it, resolvable.
    detectable = (heights >= 1e-3) & (np.abs(centres - config.zlp_channel) > 0.2 / config.dispersion) & resolvable
    # Features whose neighbours' sloping tails move their maximum by less than half a channel:
    # the only ones the maxima method can place within a channel.
    isolated = detectable & (np.abs(true_displacement_of_maxima(centres, fwhms, heights)) < 0.5)
    true_energy = (centres - config.zlp_channel) * config.dispersion
    rows = np.arange(n_spectra) if busiest is None else np.argsort(-detectable.sum(axis=1), kind="stable")[:busiest]
    detectable, isolated, true_energy = detectable[rows], isolated[rows], true_energy[rows]

    rates = {}
    for method in methods:
        table = find_loss_features(batch.ground_truth[rows], config.energy_axis, method=method)
        error = np.abs(table["energy"][:, None, :] - true_energy[:, :, None])
        with np.errstate(invalid="ignore"):
            nearest = np.min(np.where(table["valid"][:, None, :], error, np.inf), axis=2) / config.dispersion
        hits = nearest <= 1.0
        rates[method] = {"detectable": hits[detectable].mean(), "isolated": hits[isolated].mean()}
        print(
            f"\n{method}: hit rate (within 1 channel) {rates[method]['isolated']:.3f} of {isolated.sum()} "
            f"isolated features; {rates[method]['detectable']:.3f} of {detectable.sum()} resolvable ones"
        )
    return rates, int(detectable.sum()), int(isolated.sum())


def test_hit_rate_on_generator_ground_truth_quick():
    # The maxima method is fast: the whole validation set; the fit on a few of its spectra.
    rates, detectable, isolated = hit_rates(["maxima"])
    assert detectable >= 100 and isolated >= 50
    assert rates["maxima"]["isolated"] >= 0.95
    rates, detectable, _ = hit_rates(["lorentzian"], busiest=6)
    assert detectable >= 15
    assert rates["lorentzian"]["detectable"] >= 0.9


@pytest.mark.slow
def test_hit_rate_on_generator_ground_truth():
    # Validation grade: the fit on 300 spectra (about 100 ms each).
    rates, detectable, isolated = hit_rates(["maxima", "lorentzian"])
    assert detectable >= 100 and isolated >= 50
    assert rates["lorentzian"]["detectable"] >= 0.95  # the rule: all resolvable
    assert rates["maxima"]["isolated"] >= 0.95


def test_fit_separates_overlapping_lorentzians_that_move_each_others_maxima():
    # A weak broad feature on the flank of a strong one: the strong one's sloping tail moves
    # the weak one's maximum by several channels; the fit recovers both centres.
    centres, fwhms, heights = np.array([1.0, 1.45]), np.array([0.25, 0.6]), np.array([0.01, 0.002])
    spectrum = gaussian_zlp() + lorentzian(ENERGY[:, None], centres, fwhms, heights).sum(axis=1)
    shift = true_displacement_of_maxima(centres[None] / DISPERSION, fwhms[None] / DISPERSION, heights[None])[0]
    assert np.abs(shift[1]) > 1.0  # the maximum of the sum is off the weak feature's centre

    fitted = find_loss_features(spectrum, ENERGY, method="lorentzian")
    maxima = find_loss_features(spectrum, ENERGY)  # the default
    fitted, maxima = fitted[fitted["valid"]], maxima[maxima["valid"]]

    assert fitted.size == 2
    np.testing.assert_allclose(fitted["energy"], centres, atol=0.2 * DISPERSION)
    np.testing.assert_allclose(fitted["fwhm"], fwhms, rtol=0.01)
    np.testing.assert_allclose(fitted["prominence"], heights, rtol=0.01)  # the component's own height
    weak_found_by_maxima = np.abs(maxima["energy"] - centres[1])
    assert weak_found_by_maxima.min() > 1.0 * DISPERSION


def test_poisson_noise_keeps_the_strong_features():
    rng = np.random.default_rng(7)
    centres, fwhms, heights = np.array([0.8, 2.5, 5.0]), np.array([0.1, 0.3, 0.5]), np.array([0.02, 0.01, 0.005])
    clean = gaussian_zlp() + lorentzian(ENERGY[:, None], centres, fwhms, heights).sum(axis=1)
    counts = 1e6
    noisy = rng.poisson(clean * counts) / counts

    fitted = find_loss_features(noisy, ENERGY, min_height_ratio=1e-3, method="lorentzian")
    found = fitted["energy"][fitted["valid"]]
    assert np.all(np.abs(found[None, :] - centres[:, None]).min(axis=1) <= 2.0 * DISPERSION), found
    # Noise moves the maxima of the broad features; the narrow strong one stays in place.
    maxima = find_loss_features(noisy, ENERGY, method="maxima", min_height_ratio=1e-3)
    assert np.abs(maxima["energy"][maxima["valid"]] - centres[0]).min() <= 2.0 * DISPERSION


def test_strongest_in_window_picks_the_most_prominent():
    table = np.zeros((1, 3), FEATURE_DTYPE)
    table["energy"], table["prominence"], table["valid"] = [0.1, 0.2, 0.3], [1.0, 3.0, 2.0], True
    table["fwhm"] = [10.0, 20.0, 30.0]
    assert strongest_in_window(table, (0.15, 0.35), "fwhm")[0] == 20.0
    table["valid"][0, 1] = False
    assert strongest_in_window(table, (0.15, 0.35))[0] == 0.3


def test_missing_channels_and_featureless_spectra_give_invalid_rows():
    phonon = gaussian_zlp() + lorentzian(ENERGY, 1.0, 0.05, 0.01)
    window = phonon.copy()
    window[:50] = window[900:] = np.nan  # a restoration's NaN outside its window
    beyond_gap = phonon.copy()
    beyond_gap[200:210] = np.nan  # the feature lies beyond a gap: not searched
    spectra = np.stack([
        window, beyond_gap, gaussian_zlp(), np.full(N_CHANNELS, np.nan), np.zeros(N_CHANNELS),
    ])

    table = find_loss_features(spectra, ENERGY, max_features=2)

    assert table.shape == (5, 2)
    assert table["valid"].sum(axis=1).tolist() == [1, 0, 0, 0, 0]
    assert table["energy"][0, 0] == pytest.approx(1.0, abs=0.2 * DISPERSION)
    assert np.all(np.isnan(table["energy"][1:]))


def test_invalid_arguments():
    spectrum = gaussian_zlp()
    with pytest.raises(ValueError, match="either"):
        find_loss_features(spectrum, ENERGY, dispersion=DISPERSION)
    with pytest.raises(ValueError, match="increase"):
        find_loss_features(spectrum, ENERGY[::-1])
    with pytest.raises(ValueError, match="method"):
        find_loss_features(spectrum, ENERGY, method="gauss")
    with pytest.raises(ValueError, match="quantity"):
        strongest_in_window(find_loss_features(spectrum), (0, 1), "position")


@pytest.mark.parametrize("fwhm_channels", [2.0, 3.0, 6.0])
@pytest.mark.parametrize("off_channel", [0.0, 0.5])
def test_fitted_height_is_the_model_at_the_feature_not_between_channels(fwhm_channels, off_channel):
    """A narrow Lorentzian half a channel off a channel read 20 % low off the sampled model."""
    channels = np.arange(512, dtype=float)
    zlp = np.exp(-4 * np.log(2) * ((channels - 100) / 3.0) ** 2)
    feature = 1e-2 / (1 + ((channels - 300 - off_channel) / (fwhm_channels / 2)) ** 2)
    table = find_loss_features(zlp + feature, method="lorentzian")
    found = table[table["valid"]]
    assert found.size == 1
    assert found["energy"][0] == pytest.approx(300 + off_channel, abs=1e-3)
    assert found["height"][0] == pytest.approx(1e-2, rel=1e-3)
