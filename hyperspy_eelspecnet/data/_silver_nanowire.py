"""A synthetic near-zero-loss spectrum image of a silver nanowire on a SiN membrane.

Modelled on the experiment of Mousavi et al. (Sci. Rep. 2022, Figs. 7-8): a silver nanowire
drop-cast on a 30 nm SiN membrane, monochromated STEM-EELS at 80 kV. The physics is built in
channel space with the training generator's own pieces (quasi-Dirac ZLP, pseudo-Voigt PSF,
jitter kernels), so the data lie inside what the bundled model was trained on:

* **Ground truth** per pixel: a quasi-Dirac zero-loss peak (Gaussian, 3 channels FWHM,
  height 1) plus loss features of heights given relative to it:

  - Fabry-Perot surface-plasmon modes SP1..SP4 of the wire. Mode ``m`` has ``m + 1`` intensity
    maxima along the wire, ``cos^2(m pi s)`` at fractional position ``s``, enhanced towards
    the two ends (where the EELS of such antennas is strongest) and decaying as
    ``exp(-d / SP_DECAY_PIXELS)`` with the distance ``d`` from the wire surface;
  - the SiN substrate phonon, the same on every pixel (the membrane lies under the wire too);
  - the silver bulk plasmon, weighted by the path length through the wire (only on it).

  Each feature is a Lorentzian made antisymmetric in energy, ``L(E - E0) - L(E + E0)``, which
  vanishes at zero energy transfer as a loss function must, and appears on the gain side
  (``E < 0``) weighted by the detailed-balance factor ``exp(-|E| / kT)`` at room temperature.
* **Instrument**: each pixel is shifted by a ZLP drift (a slow oscillation along the scan plus
  a random part), blurred by an energy jitter kernel (mean of shifted copies) and by an
  asymmetric pseudo-Voigt PSF, scaled to its number of electrons (fewer on the wire, where
  more electrons are scattered out of the window) and given Poisson counting noise.

The ground truth shares the drift (the restoration keeps each spectrum on its own channels),
so ``restored - truth`` compares like with like, pixel by pixel.
"""

from __future__ import annotations

import numpy as np

from ..training.generator import GeneratorConfig, analytic_psfs, jitter_shifts, blur_spectra, quasi_dirac_zlp

__all__ = ["silver_nanowire", "silver_nanowire_vacuum", "membrane_hole"]

#: Navigation shape (x, y) in pixels, pixel size (nm) and the energy axis.
NAVIGATION_SHAPE = (48, 16)
PIXEL_SIZE_NM = 20.0
N_CHANNELS = 1024
DISPERSION_EV = 0.005
ZLP_CHANNEL = 200  # channel of 0 eV before drift: the axis offset is -1.0 eV
#: Wire axis from (x, y) = WIRE_START to WIRE_END in pixel coordinates, and its radius.
WIRE_START = (5.0, 7.5)
WIRE_END = (42.0, 7.5)
WIRE_RADIUS_PIXELS = 1.5
#: A hole in the membrane, a disk of pixels beside the wire (centre (x, y) and radius in pixels):
#: no SiN there, so no phonon, only the wire's aloof surface plasmons; the control region where
#: a restoration must not show a phonon.
HOLE_CENTRE = (24.0, 13.0)
HOLE_RADIUS_PIXELS = 3.0
#: Decay length of the surface-plasmon fields away from the wire surface.
SP_DECAY_PIXELS = 2.0
#: Fraction of the wire length over which the mode intensity is enhanced at each end.
SP_END_LENGTH = 0.08

#: Loss features: energy (eV), FWHM (eV), height relative to the true ZLP maximum where the
#: feature is strongest. Energies and widths are chosen, not computed, to resemble Fig. 7d of
#: the paper; the phonon is 50 meV wide (10 channels), the narrowest feature of the paper's
#: generator (the bundled model's training went down to 3 channels).
SURFACE_PLASMONS = {
    "SP1": (0.35, 0.060, 1 / 350),
    "SP2": (0.62, 0.070, 1 / 600),
    "SP3": (0.86, 0.085, 1 / 900),
    "SP4": (1.08, 0.100, 1 / 1300),
}
PHONON = ("Ph", 0.10, 0.050, 1 / 1500)
BULK_PLASMON = ("Ag bulk plasmon", 3.80, 0.40, 1 / 2500)
#: kT at 295 K, for the gain side.
KT_EV = 8.617e-5 * 295.0

#: Instrument: PSF FWHM (channels), loss-side/gain-side half-width ratio, Lorentzian fraction.
PSF_FWHM_CHANNELS = 13.0
PSF_ASYMMETRY = 1.3
PSF_LORENTZ_FRACTION = 0.3
#: Jitter half-amplitude (channels, uniform shifts) and ZLP drift (channels).
JITTER_AMPLITUDE_CHANNELS = 2.0
DRIFT_SCAN_AMPLITUDE_CHANNELS = 1.5
DRIFT_RANDOM_AMPLITUDE_CHANNELS = 1.0
#: Fraction of the electrons lost from the window at the wire's centre line.
WIRE_COUNT_LOSS = 0.4


def _antisymmetric_lorentzian(energy, centre, fwhm):
    """Lorentzian loss feature of height ~1 at ``centre``, zero at ``energy = 0``, with gain side."""
    half_sq = (0.5 * fwhm) ** 2
    magnitude = np.abs(energy)
    response = half_sq / ((magnitude - centre) ** 2 + half_sq) - half_sq / ((magnitude + centre) ** 2 + half_sq)
    return np.where(energy >= 0, response, response * np.exp(-magnitude / KT_EV))


def _wire_geometry(nx, ny):
    """Fractional position along the wire, distance from its surface and path length through it.

    Returns arrays of shape ``(ny, nx)``: ``s`` in [0, 1] (clipped beyond the tips), the
    distance ``d`` (pixels) from the wire surface (0 on the wire) and the chord through the
    wire relative to its diameter (1 on the axis, 0 off the wire).
    """
    iy, ix = np.mgrid[0:ny, 0:nx].astype(float)
    (x0, y0), (x1, _) = WIRE_START, WIRE_END
    s = np.clip((ix - x0) / (x1 - x0), 0.0, 1.0)
    distance_to_axis = np.hypot(ix - np.clip(ix, x0, x1), iy - y0)
    surface_distance = np.clip(distance_to_axis - WIRE_RADIUS_PIXELS, 0.0, None)
    chord = np.sqrt(np.clip(1.0 - (distance_to_axis / WIRE_RADIUS_PIXELS) ** 2, 0.0, None))
    return s, surface_distance, chord


def membrane_hole(nx=NAVIGATION_SHAPE[0], ny=NAVIGATION_SHAPE[1]):
    """Pixels of the hole in the membrane, a boolean map of shape ``(ny, nx)`` (no phonon there)."""
    iy, ix = np.mgrid[0:ny, 0:nx].astype(float)
    return np.hypot(ix - HOLE_CENTRE[0], iy - HOLE_CENTRE[1]) <= HOLE_RADIUS_PIXELS


def _mode_pattern(order, s, surface_distance):
    """Relative intensity (max 1) of Fabry-Perot mode ``order`` over the map."""
    ends = np.exp(-s / SP_END_LENGTH) + np.exp(-(1.0 - s) / SP_END_LENGTH)
    pattern = np.cos(order * np.pi * s) ** 2 * (1.0 + ends) * np.exp(-surface_distance / SP_DECAY_PIXELS)
    return pattern / pattern.max()


def _instrument_blur(rng, truth):
    """The demo instrument's blur of ``truth (m, n)``: one asymmetric pseudo-Voigt PSF for all
    spectra (the training generator's family, fixed parameters) and each spectrum's own
    energy jitter (uniform shifts, as in the generator)."""
    n = truth.shape[1]
    instrument = GeneratorConfig(
        n_channels=n,
        zlp_channel=ZLP_CHANNEL,
        dispersion=DISPERSION_EV,
        psf_shape="pseudo_voigt",
        psf_fwhm=(PSF_FWHM_CHANNELS, PSF_FWHM_CHANNELS),
        psf_asymmetry=(PSF_ASYMMETRY, PSF_ASYMMETRY),
        psf_lorentz_fraction=(PSF_LORENTZ_FRACTION, PSF_LORENTZ_FRACTION),
        jitter_amplitude=(JITTER_AMPLITUDE_CHANNELS, JITTER_AMPLITUDE_CHANNELS),
    )
    # The PSF spans +-n channels, so that its Lorentzian tails reach across the whole spectrum
    # (a shorter kernel leaves a step where it ends).
    offsets = (np.arange(2 * n) - n)[None, :].astype(float)
    psf, _ = analytic_psfs(rng, instrument, 1, offsets)
    shifts, _ = jitter_shifts(rng, instrument, truth.shape[0])
    blurred, _ = blur_spectra(truth, psf, shifts)
    return blurred


def _simulate(rng, counts_per_spectrum):
    """Measured counts, ground truth (both ``(ny, nx, n)``) and the per-pixel ZLP drift."""
    nx, ny = NAVIGATION_SHAPE
    n = N_CHANNELS
    n_pixels = nx * ny
    channels = np.arange(n, dtype=float)

    scan_phase = 2.0 * np.pi * np.arange(n_pixels) / n_pixels
    drift = DRIFT_SCAN_AMPLITUDE_CHANNELS * np.sin(scan_phase) + rng.uniform(
        -DRIFT_RANDOM_AMPLITUDE_CHANNELS, DRIFT_RANDOM_AMPLITUDE_CHANNELS, n_pixels
    )
    zlp_centre = ZLP_CHANNEL + drift
    energy = (channels[None, :] - zlp_centre[:, None]) * DISPERSION_EV

    s, surface_distance, chord = _wire_geometry(nx, ny)
    truth = quasi_dirac_zlp(channels, zlp_centre)
    for order, (centre, fwhm, height) in enumerate(SURFACE_PLASMONS.values(), start=1):
        weight = height * _mode_pattern(order, s, surface_distance).reshape(-1, 1)
        truth += weight * _antisymmetric_lorentzian(energy, centre, fwhm)
    _, centre, fwhm, height = PHONON
    membrane = ~membrane_hole(nx, ny).reshape(-1, 1)
    truth += height * membrane * _antisymmetric_lorentzian(energy, centre, fwhm)
    _, centre, fwhm, height = BULK_PLASMON
    truth += height * chord.reshape(-1, 1) * _antisymmetric_lorentzian(energy, centre, fwhm)

    blurred = _instrument_blur(rng, truth)

    electrons = counts_per_spectrum * (1.0 - WIRE_COUNT_LOSS * chord.reshape(-1, 1))
    expected = blurred / blurred.sum(axis=1, keepdims=True) * electrons
    measured = rng.poisson(expected).astype(np.float32)
    truth = (truth / truth.sum(axis=1, keepdims=True) * electrons).astype(np.float32)
    shape = (ny, nx, n)
    return measured.reshape(shape), truth.reshape(shape), drift.reshape(ny, nx)


def _ground_truth_record(seed, counts_per_spectrum):
    """Plain metadata describing every simulated ingredient (saved with the signal)."""

    def feature(centre, fwhm, height):
        return {"energy_eV": centre, "fwhm_eV": fwhm, "height_relative_to_zlp": height}

    modes = {name: feature(*values) for name, values in SURFACE_PLASMONS.items()}
    return {
        "seed": int(seed),
        "mode_energies_eV": {PHONON[0]: PHONON[1], **{name: values[0] for name, values in SURFACE_PLASMONS.items()}},
        "surface_plasmons": modes,
        "phonon": {"name": "SiN substrate phonon", **feature(*PHONON[1:])},
        "bulk_plasmon": {"name": BULK_PLASMON[0], **feature(*BULK_PLASMON[1:])},
        "feature_shape": "antisymmetric Lorentzian L(E-E0) - L(E+E0); gain side times exp(-|E|/kT), T = 295 K",
        "zlp": "quasi-Dirac Gaussian, FWHM 3 channels (the model's target)",
        "hole": {
            "centre_nm": [c * PIXEL_SIZE_NM for c in HOLE_CENTRE],
            "radius_nm": HOLE_RADIUS_PIXELS * PIXEL_SIZE_NM,
            "what": "no membrane: no phonon (the control region); same counts",
        },
        "wire": {
            "start_nm": [c * PIXEL_SIZE_NM for c in WIRE_START],
            "end_nm": [c * PIXEL_SIZE_NM for c in WIRE_END],
            "diameter_nm": 2 * WIRE_RADIUS_PIXELS * PIXEL_SIZE_NM,
            "sp_decay_length_nm": SP_DECAY_PIXELS * PIXEL_SIZE_NM,
        },
        "psf": {
            "shape": "asymmetric pseudo-Voigt",
            "fwhm_eV": PSF_FWHM_CHANNELS * DISPERSION_EV,
            "loss_to_gain_half_width_ratio": PSF_ASYMMETRY,
            "lorentz_fraction": PSF_LORENTZ_FRACTION,
        },
        "jitter_half_amplitude_eV": JITTER_AMPLITUDE_CHANNELS * DISPERSION_EV,
        "zlp_drift_channels": "1.5 sin(2 pi scan index / n pixels) + uniform(-1, 1)",
        "counts_per_spectrum": float(counts_per_spectrum),
        "counts_lost_on_wire_axis": WIRE_COUNT_LOSS,
        "noise": "Poisson",
    }


def silver_nanowire(seed=0, counts_per_spectrum=5e6, return_ground_truth=False):
    """Synthetic near-zero-loss EELS spectrum image of a silver nanowire on a SiN membrane.

    A 48 x 16 pixel map (20 nm pixels) of 1024-channel spectra at 5 meV per channel from -1.0
    eV, a silver nanowire lying along x across the middle rows. It shows the surface-plasmon
    standing waves SP1..SP4 (0.35, 0.62, 0.86, 1.08 eV; mode m has m + 1 maxima along the
    wire, strongest at the ends), the SiN phonon at 0.10 eV on every pixel but those of a hole
    in the membrane beside the wire (:func:`membrane_hole`, the control region), the silver bulk
    plasmon at 3.8 eV on the wire, all buried under an asymmetric pseudo-Voigt zero-loss peak
    (a PSF of 65 meV FWHM, 13 channels; with the energy jitter the measured ZLP is about 70 meV,
    14 channels, wide), with a ZLP drift of a few channels from pixel to pixel and Poisson
    noise. See the module documentation for the model.

    Parameters
    ----------
    seed : int
        Seed of the random draws (drift, jitter, noise); the same seed gives the same data.
    counts_per_spectrum : float
        Electrons per spectrum on the bare membrane (fewer on the wire).
    return_ground_truth : bool
        Also return the noise-free, unblurred spectra.

    Returns
    -------
    signal : exspy.signals.EELSSpectrum
        Counts, navigation shape (48, 16), energy axis in eV, x and y in nm. Every simulated
        parameter is in ``metadata.Sample.ground_truth`` (mode energies in
        ``metadata.Sample.ground_truth.mode_energies_eV``).
    truth : exspy.signals.EELSSpectrum
        Only with ``return_ground_truth``: the quasi-Dirac ZLP plus loss features of each
        pixel, with the same drift and the same counts per spectrum as ``signal``.

    Examples
    --------
    >>> from hyperspy_eelspecnet.data import silver_nanowire
    >>> s, truth = silver_nanowire(return_ground_truth=True)  # doctest: +SKIP
    >>> restored, rl = s.eelspecnet_deconvolve()  # doctest: +SKIP
    """
    from exspy.signals import EELSSpectrum

    rng = np.random.default_rng(seed)
    measured, truth, drift = _simulate(rng, counts_per_spectrum)
    record = _ground_truth_record(seed, counts_per_spectrum)

    def as_signal(data, title):
        nx, ny = NAVIGATION_SHAPE
        axes = [
            {"name": "y", "size": ny, "scale": PIXEL_SIZE_NM, "offset": 0.0, "units": "nm"},
            {"name": "x", "size": nx, "scale": PIXEL_SIZE_NM, "offset": 0.0, "units": "nm"},
            {
                "name": "Energy loss",
                "size": N_CHANNELS,
                "scale": DISPERSION_EV,
                "offset": -ZLP_CHANNEL * DISPERSION_EV,
                "units": "eV",
            },
        ]
        signal = EELSSpectrum(data, axes=axes)
        signal.metadata.General.title = title
        signal.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 80.0)
        signal.metadata.set_item(
            "Sample.description",
            "Synthetic data: silver nanowire on a 30 nm SiN membrane, simulated by "
            "hyperspy_eelspecnet.data.silver_nanowire (not a measurement).",
        )
        signal.metadata.set_item("Sample.ground_truth", record)
        signal.metadata.set_item("Sample.ground_truth.zlp_drift_map_channels", drift)
        signal.metadata.set_item("Sample.ground_truth.hole_map", membrane_hole())
        return signal

    signal = as_signal(measured, "Silver nanowire on SiN (synthetic)")
    if not return_ground_truth:
        return signal
    return signal, as_signal(truth, "Silver nanowire on SiN (synthetic), ground truth")


def silver_nanowire_vacuum(seed=1, n_spectra=32, counts_per_spectrum=5e7):
    """Vacuum reference spectra of the :func:`silver_nanowire` microscope.

    Recorded, as a microscopist would, through a hole with the same settings: the demo's
    asymmetric pseudo-Voigt PSF and its energy jitter (each spectrum its own jitter draw and ZLP
    drift), Poisson noise, and nothing else: no loss features. The input of
    ``eelspecnet finetune`` for the demo.

    Parameters
    ----------
    seed : int
        Seed of the random draws (another stream than the map's default).
    n_spectra : int
        Number of vacuum spectra.
    counts_per_spectrum : float
        Electrons per spectrum (vacuum references are recorded long: ten times the map's).

    Returns
    -------
    exspy.signals.EELSSpectrum
        ``n_spectra`` spectra on the demo's energy axis (1024 channels, 5 meV, from -1.0 eV).
    """
    from exspy.signals import EELSSpectrum

    rng = np.random.default_rng(seed)
    n = N_CHANNELS
    drift = rng.uniform(-DRIFT_RANDOM_AMPLITUDE_CHANNELS, DRIFT_RANDOM_AMPLITUDE_CHANNELS, n_spectra)
    truth = quasi_dirac_zlp(np.arange(n, dtype=float), ZLP_CHANNEL + drift)
    blurred = _instrument_blur(rng, truth)
    measured = rng.poisson(blurred / blurred.sum(axis=1, keepdims=True) * counts_per_spectrum).astype(np.float32)
    axes = [
        {"name": "Spectrum", "size": n_spectra, "navigate": True},
        {"name": "Energy loss", "size": n, "scale": DISPERSION_EV, "offset": -ZLP_CHANNEL * DISPERSION_EV, "units": "eV"},
    ]
    signal = EELSSpectrum(measured, axes=axes)
    signal.metadata.General.title = "Silver nanowire microscope: vacuum reference (synthetic)"
    signal.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 80.0)
    signal.metadata.set_item(
        "Sample.description",
        "Synthetic vacuum spectra (no specimen) with the PSF and jitter of "
        "hyperspy_eelspecnet.data.silver_nanowire, simulated by silver_nanowire_vacuum.",
    )
    return signal
