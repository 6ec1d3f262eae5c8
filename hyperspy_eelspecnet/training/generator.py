"""Seeded, vectorised generator of distorted / ground-truth near-zero-loss EELS spectra.

The forward model follows Mousavi et al., Sci. Rep. 12, 17462 (2022) ("generalised learning"):

    ground truth  = quasi-Dirac ZLP + loss features
    distorted     = ground truth (*) jitter (*) PSF + noise

where ``(*)`` is a linear convolution. Every step works on a whole batch at once (NumPy
broadcasting and FFT convolution); there is no per-spectrum Python loop.

Two named presets exist (:func:`preset`):

``reference``
    The paper's generator exactly as the reference code encodes it (``docs/science.md``,
    "``reference`` preset").
``instrument``
    What real microscopes do and the reference generator does not: Poisson counting noise,
    read noise and dark level, asymmetric pseudo-Voigt PSFs, non-uniform jitter, ZLP drift,
    continuum loss spectra (band-gap onsets, backgrounds, Drude plasmons) reaching the far end
    of the window, and short acquisition windows padded the way the restoration pads them.

All widths and positions are in channels, so one preset covers every dispersion whose
physical ranges map into those channel ranges (see the model card).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import fft as sp_fft
import yaml

from ..spectral import (
    MIN_CHANNELS_ABOVE_ZLP, MIN_CHANNELS_BELOW_ZLP, half_maximum_centre, linear_resample, locate_zlp, pad_outside_window,
)
from ..vacuum import match_to_gaussian

__all__ = [
    "GeneratorConfig",
    "SpectrumBatch",
    "preset",
    "PRESETS",
    "generate_batch",
    "quasi_dirac_zlp",
    "analytic_psfs",
    "jitter_shifts",
    "blur_spectra",
]

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: How ``GeneratorConfig.zlp_centre`` may locate energy zero in a recorded spectrum.
ZLP_CENTRES = ("maximum", "half_maximum")
#: Boltzmann's constant in eV per kelvin.
BOLTZMANN_EV_PER_K = 8.617333e-5


@dataclass
class GeneratorConfig:
    """Ranges of the simulated physics; all widths and positions are in channels.

    A ``(low, high)`` pair means a uniform draw in that range unless the field's name ends in
    ``_log`` in its documentation below, where the draw is uniform in the logarithm.

    Attributes
    ----------
    n_channels : int
        Spectrum length.
    zlp_channel : int
        Channel of 0 eV (the ground-truth ZLP centre before drift).
    dispersion : float
        eV per channel of the nominal axis (used only to report energies).
    zlp_fwhm : float
        FWHM of the quasi-Dirac ground-truth ZLP (Gaussian), in channels.
    n_peaks : (int, int)
        Inclusive range of the number of Lorentzian loss features.
    peak_channel : (int, int)
        Inclusive range of feature centres (channel index, integer draw as in the reference).
    peak_near_zlp_fraction : float
        Fraction of the features whose centre is drawn instead at a log-uniform distance
        ``peak_near_zlp_distance`` (channels) above the ZLP: phonons and low-energy plasmons sit
        within tens of channels of the ZLP, on its tail, where a uniform draw over the window
        rarely puts a feature. 0 (the presets) draws no extra random numbers.
    peak_near_zlp_distance : (float, float)
        Distance range, channels, of those features from the ZLP.
    peak_fwhm : (float, float)
        Feature FWHM range in channels.
    peak_fwhm_log : bool
        Draw feature widths log-uniformly.
    peak_ratio : (float, float)
        Features have height ``1 / r`` of the ZLP height with ``r`` in this range.
    loss_only_above_zlp : bool
        Switch loss features off smoothly below 0 eV (the loss function of a material vanishes
        at zero energy transfer); the reference lets Lorentzian tails run onto the gain side.
    gain_side_temperature : (float, float)
        Specimen temperature range, kelvin (log-uniform, one per spectrum). Where it is above 0,
        every loss feature at energy loss ``E`` gets its energy-gain twin at ``-E``, weighted by
        detailed balance ``exp(-E / kT)`` (``E`` in eV from ``dispersion``): the anti-Stokes
        side of phonons, from which vibrational EELS reads the local temperature. ``(0, 0)``
        (the presets): no gain-side features, and no random numbers drawn.
    continuum_probability : float
        Probability that a spectrum gets a continuum (onset, background, Drude plasmon).
    continuum_ratio : (float, float)
        Continuum level at its maximum is ``1 / r`` of the ZLP height (log-uniform draw).
    n_jitter_copies : int
        Copies of the spectrum averaged to model the source's energy jitter (copy 0 unshifted).
    jitter_amplitude : (float, float)
        Range of the jitter half-amplitude (channels); each spectrum draws one amplitude.
    jitter_distributions : list of str
        Shapes the shifts are drawn from: ``uniform``, ``gaussian``, ``arcsine`` (a sinusoidal
        ripple such as mains hum) or ``bimodal``.
    psf_shape : str
        ``lorentzian`` (the reference) or ``pseudo_voigt`` (asymmetric, instrument-like).
    psf_fwhm : (float, float)
        PSF FWHM range in channels (log-uniform when ``psf_fwhm_log``).
    psf_fwhm_log : bool
        Draw PSF widths log-uniformly.
    psf_asymmetry : (float, float)
        Ratio of the loss-side to the gain-side half width (pseudo-Voigt only; log-uniform).
    psf_lorentz_fraction : (float, float)
        Pseudo-Voigt mixing parameter eta (0 Gaussian, 1 Lorentzian).
    psf_lorentz_fraction_log : bool
        Draw eta log-uniformly. Measured vacuum ZLPs (the WS2 set in the tests) have far tails
        like eta ~ 0.1 (2e-4 of the peak at 12 FWHM); a uniform eta (median 0.5) makes most
        training tails five times heavier, and a blind network then takes a real loss
        continuum for ZLP tail and removes it.
    measured_psf_probability : float
        Probability of using a measured PSF instead of the analytic one, when measured PSFs
        are given to :func:`generate_batch`.
    measured_psf_extra_fwhm : (float, float)
        Extra Gaussian broadening (FWHM, channels) applied to a measured PSF.
    zlp_drift : (float, float)
        Shift of the whole spectrum (ZLP and features, ground truth too), channels.
    zlp_centre : {"maximum", "half_maximum"}
        Where ``align_zlp`` puts energy zero in the recorded spectrum: its located maximum
        (:func:`~hyperspy_eelspecnet.spectral.locate_zlp`, the vertex of the parabola through the
        highest channel and its neighbours) or the midpoint of its half-maximum crossings
        (:func:`~hyperspy_eelspecnet.spectral.half_maximum_centre`), which noise moves six times
        less and a network can therefore learn to find.
    align_zlp : bool
        Prepare each distorted spectrum as the restoration prepares real data: locate its ZLP
        (:func:`hyperspy_eelspecnet.spectral.locate_zlp`), shift it by linear interpolation so
        the located ZLP sits on ``zlp_channel``, and put the true ZLP exactly there, the loss
        features keeping their energies relative to it. Energy zero is then where the measured
        ZLP is, the convention of every low-loss analysis; without it, the true sub-channel
        position is unknowable from the data and a network trained on it blurs the ZLP.
    noise_model : str
        ``gaussian`` (reference) or ``poisson`` (counting noise with read noise and dark level).
    gaussian_noise_std : (float, float)
        Gaussian noise standard deviation as a fraction of the spectrum maximum.
    gaussian_noise_mean : (float, float)
        Gaussian noise mean ("dark"), absolute, on a ZLP of height 1.
    total_counts : (float, float)
        Poisson model: electrons per spectrum (log-uniform).
    read_noise : (float, float)
        Poisson model: read-noise standard deviation, counts per channel.
    dark_level : (float, float)
        Poisson model: residual dark level after subtraction, counts per channel.
    window_probability : float
        Probability that the acquisition covers only part of the model window.
    window_start : (int, int)
        First measured channel when windowed.
    window_stop : (int, int)
        One past the last measured channel when windowed.
    """

    n_channels: int = 2048
    zlp_channel: int = 400
    dispersion: float = 0.005
    zlp_fwhm: float = 3.0
    n_peaks: tuple[int, int] = (0, 15)
    peak_channel: tuple[int, int] = (400, 2046)
    peak_near_zlp_fraction: float = 0.0
    peak_near_zlp_distance: tuple[float, float] = (8.0, 300.0)
    peak_fwhm: tuple[float, float] = (10.0, 300.0)
    peak_fwhm_log: bool = False
    peak_ratio: tuple[float, float] = (300.0, 4000.0)
    loss_only_above_zlp: bool = False
    gain_side_temperature: tuple[float, float] = (0.0, 0.0)
    continuum_probability: float = 0.0
    continuum_ratio: tuple[float, float] = (300.0, 30000.0)
    n_jitter_copies: int = 25
    jitter_amplitude: tuple[float, float] = (10.0, 10.0)
    jitter_distributions: list[str] = field(default_factory=lambda: ["uniform"])
    psf_shape: str = "lorentzian"
    psf_fwhm: tuple[float, float] = (7.0, 40.0)
    psf_fwhm_log: bool = False
    psf_asymmetry: tuple[float, float] = (1.0, 1.0)
    psf_lorentz_fraction: tuple[float, float] = (1.0, 1.0)
    psf_lorentz_fraction_log: bool = False
    measured_psf_probability: float = 0.0
    measured_psf_extra_fwhm: tuple[float, float] = (0.0, 6.0)
    zlp_drift: tuple[float, float] = (0.0, 0.0)
    zlp_centre: str = "maximum"
    align_zlp: bool = False
    noise_model: str = "gaussian"
    gaussian_noise_std: tuple[float, float] = (1e-8, 1e-3)
    gaussian_noise_mean: tuple[float, float] = (0.0, 1e-7)
    total_counts: tuple[float, float] = (1e4, 1e8)
    read_noise: tuple[float, float] = (0.0, 5.0)
    dark_level: tuple[float, float] = (-1.0, 3.0)
    window_probability: float = 0.0
    window_start: tuple[int, int] = (0, 0)
    window_stop: tuple[int, int] = (2048, 2048)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list) and f.name != "jitter_distributions":
                setattr(self, f.name, tuple(value))
        self.validate()

    def validate(self):
        """Raise ``ValueError`` if the configuration is inconsistent."""
        self._validate_ranges()
        if self.n_channels < 64:
            raise ValueError(f"n_channels={self.n_channels} is too small; use at least 64.")
        if not 0 <= self.zlp_channel < self.n_channels:
            raise ValueError(
                f"zlp_channel={self.zlp_channel} lies outside 0..{self.n_channels - 1}."
            )
        lowest, highest = self.zlp_channel + self.zlp_drift[0], self.zlp_channel + self.zlp_drift[1]
        # The restoration needs MIN_CHANNELS_ABOVE_ZLP channels from the ZLP to the last channel.
        last = self.n_channels - 1 - MIN_CHANNELS_ABOVE_ZLP
        if lowest < MIN_CHANNELS_BELOW_ZLP or highest > last:
            raise ValueError(
                f"zlp_drift={list(self.zlp_drift)} moves the ZLP (zlp_channel={self.zlp_channel}) to channels "
                f"{lowest:g}..{highest:g}; it must keep {MIN_CHANNELS_BELOW_ZLP} channels below it and "
                f"{MIN_CHANNELS_ABOVE_ZLP} above it in the {self.n_channels}-channel window, i.e. stay within "
                f"{MIN_CHANNELS_BELOW_ZLP}..{last}. Narrow zlp_drift or "
                "move zlp_channel."
            )
        if self.psf_shape not in ("lorentzian", "pseudo_voigt"):
            raise ValueError(f"psf_shape must be 'lorentzian' or 'pseudo_voigt', not {self.psf_shape!r}.")
        if self.zlp_centre not in ZLP_CENTRES:
            raise ValueError(f"zlp_centre must be one of {ZLP_CENTRES}, not {self.zlp_centre!r}.")
        if self.noise_model not in ("gaussian", "poisson"):
            raise ValueError(f"noise_model must be 'gaussian' or 'poisson', not {self.noise_model!r}.")
        unknown = set(self.jitter_distributions) - set(_JITTER_SAMPLERS)
        if unknown:
            raise ValueError(
                f"Unknown jitter distribution(s) {sorted(unknown)}; choose from {sorted(_JITTER_SAMPLERS)}."
            )
        if not 0.0 <= self.peak_near_zlp_fraction <= 1.0:
            raise ValueError(f"peak_near_zlp_fraction={self.peak_near_zlp_fraction} must lie in [0, 1].")
        if not 0 < self.peak_near_zlp_distance[0] <= self.peak_near_zlp_distance[1]:
            raise ValueError(f"peak_near_zlp_distance={self.peak_near_zlp_distance} must be (low, high) with 0 < low <= high.")
        if self.n_jitter_copies < 1:
            raise ValueError("n_jitter_copies must be at least 1.")
        low, high = self.gain_side_temperature
        if not (low == high == 0 or 0 < low <= high):
            raise ValueError(
                f"gain_side_temperature={self.gain_side_temperature} must be (0, 0) (no gain-side "
                "features) or (low, high) kelvin with 0 < low <= high."
            )

    def _validate_ranges(self):
        """Every ``(low, high)`` setting two numbers with low <= high, probabilities in [0, 1],
        and the ranges that are widths, heights or counts positive."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not str(f.type).startswith("tuple"):
                continue
            if (
                not isinstance(value, tuple) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value)
            ):
                raise ValueError(f"{f.name} must be a (low, high) pair of numbers, e.g. [3, 40]; got {value!r}.")
            if value[0] > value[1]:
                raise ValueError(f"{f.name}={list(value)} must be (low, high) with low <= high.")
        for name in ("peak_near_zlp_fraction", "continuum_probability", "measured_psf_probability", "window_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} is a probability: it must lie in [0, 1].")
        for name in ("psf_fwhm", "peak_fwhm", "peak_ratio", "continuum_ratio", "total_counts", "psf_asymmetry"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"{name}={list(getattr(self, name))} must be positive.")
        for name in ("n_peaks", "jitter_amplitude", "measured_psf_extra_fwhm", "read_noise", "gaussian_noise_std",
                     "window_start"):
            if getattr(self, name)[0] < 0:
                raise ValueError(f"{name}={list(getattr(self, name))} must not be negative.")
        if not 0.0 <= self.psf_lorentz_fraction[0] <= self.psf_lorentz_fraction[1] <= 1.0:
            raise ValueError(f"psf_lorentz_fraction={list(self.psf_lorentz_fraction)} must lie in [0, 1].")

    def to_dict(self) -> dict:
        """Plain-Python dictionary (lists for ranges) that :meth:`from_dict` reads back."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, (tuple, list)) else value
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "GeneratorConfig":
        """Build a configuration from a dictionary; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown generator setting(s): {sorted(unknown)}.")
        return cls(**values)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Serialise to YAML; also write it to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> "GeneratorConfig":
        """Read a configuration from a YAML string or file."""
        path = Path(text_or_path)
        text = path.read_text() if path.suffix in (".yaml", ".yml") and path.exists() else str(text_or_path)
        return cls.from_dict(yaml.safe_load(text) or {})

    @property
    def energy_axis(self) -> np.ndarray:
        """Nominal energy of each channel in eV (0 eV at ``zlp_channel``)."""
        return (np.arange(self.n_channels) - self.zlp_channel) * self.dispersion


def _reference() -> GeneratorConfig:
    # PROTOCOL.md section 2, converted to channels at 5 meV/channel: feature FWHM 0.05-1.5 eV
    # = 10-300 channels, jitter +-0.05 eV = +-10 channels, PSF FWHM 0.035-0.2 eV = 7-40 channels.
    return GeneratorConfig()


def _instrument() -> GeneratorConfig:
    return GeneratorConfig(
        peak_channel=(380, 2046),
        peak_fwhm=(3.0, 400.0),
        peak_fwhm_log=True,
        peak_ratio=(100.0, 10000.0),
        loss_only_above_zlp=True,
        continuum_probability=0.7,
        continuum_ratio=(300.0, 30000.0),
        n_jitter_copies=25,
        jitter_amplitude=(0.0, 12.0),
        jitter_distributions=["uniform", "gaussian", "arcsine", "bimodal"],
        psf_shape="pseudo_voigt",
        psf_fwhm=(3.0, 40.0),
        psf_fwhm_log=True,
        psf_asymmetry=(0.8, 2.5),
        psf_lorentz_fraction=(0.01, 1.0),
        psf_lorentz_fraction_log=True,
        zlp_drift=(-30.0, 30.0),
        align_zlp=True,
        noise_model="poisson",
        window_probability=0.4,
        window_start=(0, 300),
        window_stop=(1200, 2048),
    )


PRESETS = {"reference": _reference, "instrument": _instrument}


def preset(name: str) -> GeneratorConfig:
    """Return a fresh copy of a named configuration (``reference`` or ``instrument``)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"Unknown preset {name!r}; choose from {sorted(PRESETS)}.") from None


@dataclass
class SpectrumBatch:
    """One generated batch; every array has shape ``(batch, n_channels)`` unless stated.

    Attributes
    ----------
    distorted : ndarray
        What the detector records, unit area over the measured window.
    ground_truth : ndarray
        The reality the network must restore, unit area over the measured window.
    noise_free : ndarray
        ``distorted`` without noise, on the same scale as ``distorted``.
    measured : ndarray of bool
        Channels the acquisition covers; outside them ``distorted`` holds the padding the
        restoration itself would put there, and nothing is known of the truth.
    zlp_only : ndarray of bool, shape (batch,)
        Spectra with no loss feature and no continuum.
    parameters : dict of ndarray
        Per-spectrum draws (``psf_fwhm``, ``noise_amplitude``, ``zlp_drift``, ``n_peaks``, ...);
        ``zlp_position`` is the true ZLP's channel in the returned arrays.
    psf : ndarray or None
        With ``return_psf=True``: each spectrum's whole blur (jitter and PSF combined), unit
        sum, zero shift at channel ``n_channels // 2``; the true PSF a deconvolution needs.
    """

    distorted: np.ndarray
    ground_truth: np.ndarray
    noise_free: np.ndarray
    measured: np.ndarray
    zlp_only: np.ndarray
    parameters: dict
    psf: np.ndarray | None = None


def quasi_dirac_zlp(channels: np.ndarray, centre, fwhm: float = 3.0) -> np.ndarray:
    """Gaussian of height 1 and ``fwhm`` channels: the restored ("real") zero-loss peak."""
    sigma = fwhm * FWHM_TO_SIGMA
    return np.exp(-0.5 * ((channels - np.asarray(centre)[..., None]) / sigma) ** 2)


def _uniform(rng, low_high, size, log=False):
    low, high = low_high
    if log:
        return np.exp(rng.uniform(np.log(low), np.log(high), size))
    return rng.uniform(low, high, size)


def _lorentzian_sum(channels, centres, fwhms, heights, active):
    """Sum of the active Lorentzians of each spectrum; inputs have shape (batch, k).

    Only active peaks are evaluated (in float32, in place): this is the generator's hot spot.
    """
    out = np.zeros((centres.shape[0], channels.size))
    rows, cols = np.nonzero(active)
    if rows.size == 0:
        return out
    half_sq = (0.25 * fwhms[rows, cols] ** 2).astype(np.float32)[:, None]
    profile = channels.astype(np.float32)[None, :] - centres[rows, cols].astype(np.float32)[:, None]
    np.multiply(profile, profile, out=profile)
    profile += half_sq
    np.divide((heights[rows, cols][:, None] * half_sq).astype(np.float32), profile, out=profile)
    first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    out[rows[first]] = np.add.reduceat(profile, first, axis=0)
    return out


def _draw_continua(rng, config, batch_size) -> dict:
    """Random shapes of the loss continua of :func:`_continuum` (all of shape ``(batch, 1)``
    except the ``(batch, 3)`` weights)."""
    span = float(config.n_channels - config.zlp_channel)
    shape = (batch_size, 1)
    onset = rng.uniform(20.0, 0.8 * span, shape)
    power = np.where(rng.random(shape) < 0.5, 0.5, 1.5)
    saturation = rng.uniform(0.2, 2.0, shape) * span
    plasmon_energy = rng.uniform(0.1, 1.5, shape) * span
    damping = rng.uniform(0.3, 1.5, shape) * plasmon_energy
    rise = rng.uniform(5.0, 100.0, shape)
    slope = rng.uniform(-0.6, 0.6, shape)
    weights = rng.dirichlet(np.ones(3), batch_size) * (rng.random((batch_size, 3)) < 0.7)
    weights[weights.sum(axis=1) == 0, 0] = 1.0
    return {
        "onset": onset, "power": power, "saturation": saturation, "plasmon_energy": plasmon_energy,
        "damping": damping, "rise": rise, "slope": slope, "weights": weights, "span": span,
    }


def _continuum(channels, zlp_centre, shapes):
    """Slowly varying loss continua reaching the far end of the window, height 1 at max.

    Each spectrum that gets one sums a band-gap onset ``(E - Eg)^p`` (p = 0.5 or 1.5, direct
    allowed / forbidden transitions) that saturates, a broad Drude plasmon
    ``E Gamma Ep^2 / ((E^2 - Ep^2)^2 + (E Gamma)^2)`` and a flat-to-sloped background that rises
    smoothly from the ZLP, each with a random weight (shapes from :func:`_draw_continua`).
    """
    energy = np.maximum(channels - zlp_centre[:, None], 0.0)  # channels above the ZLP
    above = np.maximum(energy - shapes["onset"], 0.0)
    band_gap = (above / (above + shapes["saturation"])) ** shapes["power"]

    plasmon_energy, damping = shapes["plasmon_energy"], shapes["damping"]
    drude = energy * damping * plasmon_energy**2 / (
        (energy**2 - plasmon_energy**2) ** 2 + (energy * damping) ** 2
    )
    drude /= np.maximum(drude.max(axis=1, keepdims=True), 1e-30)

    background = (1.0 - np.exp(-energy / shapes["rise"])) * np.clip(
        1.0 + shapes["slope"] * energy / shapes["span"], 0.0, None
    )
    weights = shapes["weights"]
    total = weights[:, :1] * band_gap + weights[:, 1:2] * drude + weights[:, 2:] * background
    return total / np.maximum(total.max(axis=1, keepdims=True), 1e-30)


def _jitter_uniform(rng, amplitude, shape):
    return rng.uniform(-1.0, 1.0, shape) * amplitude


def _jitter_gaussian(rng, amplitude, shape):
    return np.clip(rng.normal(0.0, 0.5, shape), -2.0, 2.0) * amplitude


def _jitter_arcsine(rng, amplitude, shape):
    return np.sin(rng.uniform(0.0, 2.0 * np.pi, shape)) * amplitude


def _jitter_bimodal(rng, amplitude, shape):
    side = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return (side * 0.8 + rng.normal(0.0, 0.15, shape)) * amplitude


_JITTER_SAMPLERS = {
    "uniform": _jitter_uniform,
    "gaussian": _jitter_gaussian,
    "arcsine": _jitter_arcsine,
    "bimodal": _jitter_bimodal,
}


def jitter_shifts(rng, config, batch_size):
    """Energy shifts (channels, fractional) of each spectrum's ``n_jitter_copies`` copies, and
    the jitter amplitudes, drawn from ``config``'s jitter ranges with the NumPy ``Generator``
    ``rng``. Copy 0 is unshifted, as in the reference generator."""
    amplitude = _uniform(rng, config.jitter_amplitude, (batch_size, 1))
    kind = rng.integers(0, len(config.jitter_distributions), batch_size)
    shifts = np.zeros((batch_size, config.n_jitter_copies))
    for index, name in enumerate(config.jitter_distributions):
        rows = kind == index
        if rows.any():
            shifts[rows] = _JITTER_SAMPLERS[name](
                rng, amplitude[rows], (int(rows.sum()), config.n_jitter_copies)
            )
    shifts[:, 0] = 0.0
    return shifts, amplitude[:, 0]


def _jitter_kernels(shifts, length):
    """Real FFTs of the jitter kernels: the mean of unit impulses at ``shifts`` (zero shift at
    index 0, negative shifts wrapped to the end); each fractional shift is deposited on its two
    neighbouring channels with linear weights."""
    batch_size, copies = shifts.shape
    lower = np.floor(shifts)
    upper_weight = shifts - lower
    kernel = np.zeros((batch_size, length))
    rows = np.repeat(np.arange(batch_size), copies)
    np.add.at(kernel, (rows, (lower.ravel().astype(int)) % length), (1.0 - upper_weight).ravel())
    np.add.at(kernel, (rows, (lower.ravel().astype(int) + 1) % length), upper_weight.ravel())
    return np.fft.rfft(kernel / copies, axis=1)


def analytic_psfs(rng, config, batch_size, offsets):
    """``batch_size`` PSF kernels of ``config``'s family (unit sum) on ``offsets`` (channels from
    the centre, shape ``(1, m)``), and their FWHMs; ``rng`` is a NumPy ``Generator``."""
    fwhm = _uniform(rng, config.psf_fwhm, (batch_size, 1), log=config.psf_fwhm_log)
    if config.psf_shape == "lorentzian":
        half = 0.5 * fwhm
        kernel = half**2 / (half**2 + offsets**2)
    else:
        asymmetry = _uniform(rng, config.psf_asymmetry, (batch_size, 1), log=True)
        eta = _uniform(rng, config.psf_lorentz_fraction, (batch_size, 1), log=config.psf_lorentz_fraction_log)
        # The loss side (positive offsets) gets half width fwhm * a / (1 + a), the gain side
        # fwhm / (1 + a): the FWHM stays ``fwhm`` while the tails become asymmetric.
        half = np.where(offsets > 0, fwhm * asymmetry / (1 + asymmetry), fwhm / (1 + asymmetry))
        scaled = offsets / half
        kernel = eta / (1.0 + scaled**2) + (1.0 - eta) * np.exp(-np.log(2.0) * scaled**2)
    return kernel / kernel.sum(axis=1, keepdims=True), fwhm[:, 0]


def _measured_psf_kernels(rng, config, batch_size, measured_psfs):
    """Random measured PSFs (centred on ``n // 2``), shifted sub-channel and broadened."""
    choice = rng.integers(0, measured_psfs.shape[0], batch_size)
    source = measured_psfs[choice]
    n = source.shape[1]
    extra = _uniform(rng, config.measured_psf_extra_fwhm, (batch_size, 1)) * FWHM_TO_SIGMA
    shift = rng.uniform(-1.0, 1.0, (batch_size, 1))
    frequency = np.fft.rfftfreq(n)[None, :]
    transfer = np.exp(-2.0 * (np.pi * frequency * extra) ** 2 - 2j * np.pi * frequency * shift)
    kernel = np.clip(np.fft.irfft(np.fft.rfft(source, axis=1) * transfer, n, axis=1), 0.0, None)
    return kernel / kernel.sum(axis=1, keepdims=True)


def blur_spectra(truth, psf, jitter_shifts):
    """Linear convolution of spectra with their PSF and energy-jitter kernels.

    Parameters
    ----------
    truth : ndarray, shape (batch, n)
    psf : ndarray, shape (batch or 1, 2 n)
        PSF kernels on channel offsets ``-n ... n - 1`` (zero shift at index ``n``): their tails
        reach from any channel of the spectrum to the far end.
    jitter_shifts : ndarray, shape (batch, copies)
        Shifts of the jittered copies, in channels (:func:`jitter_shifts`).

    Returns
    -------
    blurred : ndarray, shape (batch, n)
        Clipped at zero (FFT round-off).
    combined_kernel : ndarray, shape (batch, length)
        PSF and jitter combined (unit sum, zero shift at index 0, negative shifts wrapped to
        the end of its ``length`` channels).

    Notes
    -----
    The combined kernel spans shifts ``k`` in ``[-n - J, n + J]`` (``J`` the largest jitter
    shift). One FFT product of length ``L >= 2 n + J + 2`` is exact for the n outputs kept:
    channel ``i`` goes to ``i + k`` in ``[-n - J, 2 n + J - 1)``; what wraps from below lands at
    ``L - n - J >= n`` or later, and nothing reaches ``L``. A 4 n product would do the same
    work twice over.
    """
    n = truth.shape[1]
    reach = int(np.ceil(np.abs(jitter_shifts).max(initial=0.0)))
    length = sp_fft.next_fast_len(2 * n + reach + 2, real=True)
    padded = np.zeros((psf.shape[0], length))
    padded[:, : 2 * n] = psf
    transfer = _jitter_kernels(jitter_shifts, length) * np.fft.rfft(np.roll(padded, -n, axis=1), axis=1)
    blurred = np.fft.irfft(np.fft.rfft(truth, length, axis=1) * transfer, length, axis=1)[:, :n]
    return np.clip(blurred, 0.0, None), np.fft.irfft(transfer, length, axis=1)


def _fwhm_of_kernels(kernel):
    """FWHM in channels of centred kernels, from the number of channels above half maximum."""
    peak = kernel.max(axis=1, keepdims=True)
    return (kernel >= 0.5 * peak).sum(axis=1).astype(float)


def _true_spectra(channels, zlp_centre, losses, config) -> np.ndarray:
    """The ground truth with its quasi-Dirac ZLP at ``zlp_centre`` (channels, per spectrum) and
    the drawn loss features and continua at their energy losses above it."""
    truth = quasi_dirac_zlp(channels, zlp_centre, config.zlp_fwhm)
    features = _lorentzian_sum(
        channels, zlp_centre[:, None] + losses["distances"], losses["fwhms"], losses["heights"], losses["active"]
    )
    if config.loss_only_above_zlp:
        features *= np.clip(np.tanh((channels - zlp_centre[:, None]) / config.zlp_fwhm), 0.0, None)
    truth += features
    if losses["temperature"] is not None:
        # Detailed balance: the twin at -E of a feature at energy loss E is exp(-E / kT) as strong.
        energy = np.clip(losses["distances"], 0.0, None) * config.dispersion
        weight = np.exp(-energy / (BOLTZMANN_EV_PER_K * losses["temperature"][:, None]))
        twins = _lorentzian_sum(
            channels, zlp_centre[:, None] - losses["distances"], losses["fwhms"], losses["heights"] * weight,
            losses["active"] & (losses["distances"] > 0),
        )
        truth += twins * np.clip(np.tanh((zlp_centre[:, None] - channels) / config.zlp_fwhm), 0.0, None)
    if losses["continuum"] is not None:
        truth += losses["continuum_level"][:, None] * _continuum(channels, zlp_centre, losses["continuum"])
    return truth


def generate_batch(
    config: GeneratorConfig,
    batch_size: int,
    seed: int | np.random.SeedSequence | None = None,
    measured_psfs=None,
    zlp_only: bool | None = None,
    dtype=np.float32,
    return_psf: bool = False,
    match_psf=None,
) -> SpectrumBatch:
    """Generate one batch of distorted spectra and their ground truth.

    Parameters
    ----------
    config : GeneratorConfig
        Physics ranges, e.g. ``preset("reference")``.
    batch_size : int
        Number of spectra.
    seed : int or SeedSequence, optional
        The same seed gives the same batch on any machine (NumPy PCG64 streams).
    measured_psfs : ndarray, shape (m, 2 * n_channels), optional
        Measured vacuum ZLPs prepared as PSFs
        (:func:`~hyperspy_eelspecnet.vacuum.prepare_vacuum_psfs` with ``length=2 * n_channels``),
        used with probability ``config.measured_psf_probability`` (or always, when that
        probability is 0 and PSFs are given).
    zlp_only : bool, optional
        Force spectra with (False) or without (True) loss features; default draws as configured.
    dtype : numpy dtype
        Output dtype (the maths runs in float64).
    return_psf : bool
        Also return each spectrum's combined jitter and PSF kernel (``SpectrumBatch.psf``).
    match_psf : ndarray, shape (m,), optional
        A vacuum PSF (prepared as ``measured_psfs``): the recorded spectra (each within its
        acquisition window) are matched to a Gaussian of its FWHM after the noise
        (:func:`~hyperspy_eelspecnet.vacuum.match_to_gaussian`), as the restoration with a
        model fine-tuned so matches its input; the ZLP is then located on the matched
        spectrum. The returned ``psf`` kernels are those before the matching.

    Returns
    -------
    SpectrumBatch
    """
    rng = np.random.default_rng(seed)
    n = config.n_channels
    channels = np.arange(n, dtype=float)
    # PSF kernels span +-n channels, so a ZLP anywhere in the window keeps its whole tail out
    # to the far end (an n-channel kernel would cut the tail n/2 channels from the ZLP and leave
    # a step of ~1e-4 of the peak, the size of the weakest loss features).
    kernel_length = 2 * n

    drift = _uniform(rng, config.zlp_drift, batch_size)
    zlp_centre = config.zlp_channel + drift

    low, high = config.n_peaks
    n_peaks = rng.integers(low, high + 1, batch_size)
    if zlp_only is True:
        n_peaks[:] = 0
    elif zlp_only is False:
        n_peaks = np.maximum(n_peaks, 1)
    k_max = max(int(n_peaks.max(initial=0)), 1)
    active = np.arange(k_max)[None, :] < n_peaks[:, None]
    centres = rng.integers(config.peak_channel[0], config.peak_channel[1] + 1, (batch_size, k_max))
    if config.peak_near_zlp_fraction > 0:  # no draws otherwise: older configurations replay exactly
        near = rng.random((batch_size, k_max)) < config.peak_near_zlp_fraction
        distance = _uniform(rng, config.peak_near_zlp_distance, (batch_size, k_max), log=True)
        centres = np.where(near, config.zlp_channel + distance, centres)
    losses = {
        # Feature centres as energy losses (channels above the ZLP): they move with the ZLP.
        "distances": centres - float(config.zlp_channel),
        "fwhms": _uniform(rng, config.peak_fwhm, (batch_size, k_max), log=config.peak_fwhm_log),
        "active": active,
    }
    losses["heights"] = active / _uniform(rng, config.peak_ratio, (batch_size, k_max))

    has_continuum = rng.random(batch_size) < config.continuum_probability
    if zlp_only is True:
        has_continuum[:] = False
    losses["continuum_level"] = has_continuum / _uniform(rng, config.continuum_ratio, batch_size, log=True)
    losses["continuum"] = _draw_continua(rng, config, batch_size) if has_continuum.any() else None
    losses["temperature"] = None
    if config.gain_side_temperature[1] > 0:  # no draws otherwise: older configurations replay exactly
        losses["temperature"] = _uniform(rng, config.gain_side_temperature, batch_size, log=True)
    truth = _true_spectra(channels, zlp_centre, losses, config)

    offsets = (np.arange(kernel_length) - n)[None, :].astype(float)
    psf, psf_fwhm = analytic_psfs(rng, config, batch_size, offsets)
    use_measured = np.zeros(batch_size, bool)
    if measured_psfs is not None:
        measured_psfs = np.asarray(measured_psfs, dtype=float)
        if measured_psfs.ndim != 2 or measured_psfs.shape[1] != kernel_length:
            raise ValueError(
                f"Measured PSFs must come as prepared by prepare_vacuum_psfs(spectra, length={kernel_length}) "
                f"(two n_channels); got shape {measured_psfs.shape}."
            )
        probability = config.measured_psf_probability or 1.0
        use_measured = rng.random(batch_size) < probability
        if use_measured.any():
            kernels = _measured_psf_kernels(rng, config, int(use_measured.sum()), measured_psfs)
            psf[use_measured] = kernels
            psf_fwhm[use_measured] = _fwhm_of_kernels(kernels)

    shifts, jitter_amplitude = jitter_shifts(rng, config, batch_size)
    blurred, combined_kernel = blur_spectra(truth, psf, shifts)
    blur_kernel = None
    if return_psf:
        # Shifts -n/2 ... n/2 - 1 of the combined kernel, zero shift at index n // 2.
        blur_kernel = np.roll(combined_kernel, n // 2, axis=1)[:, :n]
        blur_kernel /= blur_kernel.sum(axis=1, keepdims=True)

    if config.noise_model == "gaussian":
        peak = blurred.max(axis=1, keepdims=True)
        noise_std = _uniform(rng, config.gaussian_noise_std, (batch_size, 1)) * peak
        noise_mean = _uniform(rng, config.gaussian_noise_mean, (batch_size, 1))
        noisy = blurred + noise_mean + noise_std * rng.standard_normal((batch_size, n))
        noise_free = blurred + noise_mean
        noise_amplitude = noise_std[:, 0] / peak[:, 0]
    else:
        counts = _uniform(rng, config.total_counts, (batch_size, 1), log=True)
        expected = blurred / blurred.sum(axis=1, keepdims=True) * counts
        read = _uniform(rng, config.read_noise, (batch_size, 1))
        dark = _uniform(rng, config.dark_level, (batch_size, 1))
        noisy = rng.poisson(expected) + dark + read * rng.standard_normal((batch_size, n))
        noise_free = expected + dark
        noise_amplitude = np.sqrt(expected.max(axis=1) + read[:, 0] ** 2) / expected.max(axis=1)

    start = np.zeros(batch_size, int)
    stop = np.full(batch_size, n)
    windowed = rng.random(batch_size) < config.window_probability
    if windowed.any():
        start[windowed] = rng.integers(config.window_start[0], config.window_start[1] + 1, windowed.sum())
        stop[windowed] = rng.integers(config.window_stop[0], config.window_stop[1] + 1, windowed.sum())
        # Keep the ZLP with the channels the restoration needs around it inside the window
        # (MIN_CHANNELS_BELOW_ZLP, MIN_CHANNELS_ABOVE_ZLP, with a few channels to spare: the
        # measured maximum may sit a few channels from the true ZLP).
        start = np.minimum(start, np.floor(zlp_centre - MIN_CHANNELS_BELOW_ZLP - 4).astype(int)).clip(0)
        stop = np.maximum(stop, np.ceil(zlp_centre + MIN_CHANNELS_ABOVE_ZLP + 4).astype(int)).clip(max=n)
    if match_psf is not None:
        noisy = match_to_gaussian(pad_outside_window(noisy, start, stop)[0], match_psf)
        noise_free = match_to_gaussian(pad_outside_window(noise_free, start, stop)[0], match_psf)
    zlp_position = zlp_centre
    if config.align_zlp:
        # Energy zero is where the measured ZLP is, the convention of every low-loss analysis
        # and of the restoration: the truth's ZLP goes to the located maximum of the distorted
        # spectrum (sub-channel), and its loss features keep their energy loss, their distance
        # to it. The distorted spectrum stays on its channels. Jitter and an asymmetric blur put
        # the measured maximum a few channels from the true ZLP, which no restoration can see.
        inside = (channels >= start[:, None]) & (channels < stop[:, None])
        if config.zlp_centre == "maximum":
            located = locate_zlp(np.where(inside, noisy, -np.inf))
        else:
            located = half_maximum_centre(np.where(inside, noisy, 0.0))
        truth = _true_spectra(channels, located, losses, config)
        zlp_position = located
        if blur_kernel is not None:
            # Relative to the truth at the located ZLP the blur is shifted by (true - located).
            blur_kernel, _ = linear_resample(blur_kernel, channels[None, :] - (zlp_centre - located)[:, None])
    noisy, measured = pad_outside_window(noisy, start, stop)
    noise_free, _ = pad_outside_window(noise_free, start, stop)

    # Unit area over the measured channels: the distorted and the true spectrum carry the
    # same number of electrons, so the network has to move counts, not create them.
    area = np.where(measured, noisy, 0.0).sum(axis=1, keepdims=True)
    area = np.where(np.abs(area) > 0, area, 1.0)
    truth_area = np.where(measured, truth, 0.0).sum(axis=1, keepdims=True)

    parameters = {
        "zlp_drift": drift,
        "zlp_position": zlp_position,
        "n_peaks": n_peaks,
        "peak_centres": np.where(active, zlp_position[:, None] + losses["distances"], np.nan),
        "peak_fwhms": np.where(active, losses["fwhms"], np.nan),
        "peak_heights": np.where(active, losses["heights"], 0.0),
        "continuum_level": losses["continuum_level"],
        "temperature": losses["temperature"],
        "psf_fwhm": psf_fwhm,
        "measured_psf": use_measured,
        "jitter_amplitude": jitter_amplitude,
        "noise_amplitude": noise_amplitude,
        "window_start": start,
        "window_stop": stop,
    }
    return SpectrumBatch(
        distorted=(noisy / area).astype(dtype),
        ground_truth=(truth / truth_area).astype(dtype),
        noise_free=(noise_free / area).astype(dtype),
        measured=measured,
        zlp_only=(n_peaks == 0) & ~has_continuum,
        parameters=parameters,
        psf=None if blur_kernel is None else blur_kernel.astype(dtype),
    )
