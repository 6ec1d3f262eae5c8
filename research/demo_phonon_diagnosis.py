"""Why the demo's phonon is not brought back: noise, or what the network has learnt?

    eelspecnet demo --instrument --minutes 15 --out DEMO
    python research/demo_phonon_diagnosis.py DEMO [--model MODEL ...]

Reads the output folder of ``eelspecnet demo --instrument`` (input, truth, vacuum reference and
the fine-tuned model in ``DEMO/finetuned``) and prints

1. **Clean spectra.** 40 true membrane spectra of the demo blurred by the mean prepared vacuum
   spectrum (the PSF the fine-tune learnt, without any jitter difference), without noise and
   with Poisson noise at 3.5e7 (a 7-pixel profile) and 5e6 electrons (one pixel); each restored
   by the bundled model, the fine-tuned one and any ``--model``: the share whose highest
   channel at 0.04-0.18 eV lies inside that window, its median energy from the spectrum's own
   ZLP centre, and the share within 1.5 channels (7.5 meV) of the truth's phonon. A network
   that fails here without noise has not learnt the inversion; one that fails only with noise
   is noise-limited.
2. **The vacuum subtracted.** Each input spectrum minus the mean vacuum spectrum moved onto its
   ZLP's half-maximum centre (Fourier shift) and scaled to its 7 central ZLP channels: the mean
   residual over the membrane and over the hole (0-0.2 eV), and the demo's phonon figures
   (:func:`hyperspy_eelspecnet.demo.phonon_figures`) of that residual and of Richardson-Lucy
   (10 and 50 iterations, the vacuum PSF) run on it, negatives clipped.
3. **Distance from the ZLP.** The demo's phonon (its width, height and gain-side twin) moved
   to 20-50 channels from the ZLP, on 64 spectra each, blurred by the demo's own instrument
   (its PSF and each spectrum's jitter, :mod:`hyperspy_eelspecnet.data._silver_nanowire`),
   without noise and with Poisson noise at 5e6 electrons; restored by each model and by
   Richardson-Lucy (50 iterations, the mean vacuum PSF). Found: the restoration's highest
   channel between 0.4 and 1.8 times the distance is a local maximum within 1.5 channels of
   the truth's.
4. **Sharpening.** The restored phonon (the restoration with the phonon minus that without it,
   each scaled to its ZLP maximum; 32 noise-free spectra at 5e6 electrons each) against the
   truth's: its height and FWHM ratio at 40, 50 and 80 channels, and at 50 channels with the
   phonon 1, 3, 10 and 30 times as strong.
5. **Pixel by pixel.** The demo's saved restorations (fine-tuned, blind, both Richardson-Lucy
   runs): the share of membrane pixels whose strongest feature in the "Ph" window lies within
   1.5 channels of the truth's, by distance from the wire's axis.
6. **The phonon map's noise floor.** The correlation of the truth's "Ph" map with itself plus
   Poisson noise of the input window's counts (what a per-pixel estimate gets at best when the
   ZLP tail under the phonon is known exactly; 200 draws), against each saved restoration's:
   its gain on the truth's map (a straight-line fit) and the scatter about that line, in units
   of the floor's scatter scaled by the same gain.
7. **More counts, or the map denoised first.** The demo regenerated with 100 and 10,000 times
   its electrons (the same seed: the same drift, jitter and truth), and the demo's input
   denoised by principal components before the restoration (HyperSpy's
   ``decomposition(normalize_poissonian_noise=True)``, 16, 32 and 64 components kept,
   negatives clipped): the input's noise left in the "Ph" window (per channel and in the
   window's sum, against the 10,000-times input), and the demo's phonon figures of each
   restored by the fine-tuned model. Which noise limits the map: the counts', or what pooling pixels can remove?

8. **Placement by distance, shape and grid phase.** The demo's phonon (an odd Lorentzian, zero
   at 0 eV) and the same Lorentzian as the fine-tune's generator draws it (its low-energy wing
   switched off within 2 channels of the ZLP), each at 18-40 channels from the ZLP, 64 spectra
   at 5e6 electrons, restored by the fine-tuned model: found (%) and the median signed offset
   of the restored maximum from the truth's (channels). Then the same spectra placed at 0-56
   channels further into the network's input (its stride is 64 channels: whole-channel moves
   that are not multiples of it change where the phonon falls on the network's grid), at 20,
   25 and 30 channels. Is the placement set by the phonon's shape, its place on the grid, or
   its distance from the ZLP?

``--sections 56`` runs only the sections that read the saved restorations (seconds); section 7
restores the demo six times (about 15 s); section 8 about 15 s.
"""

import argparse
import warnings
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

import hyperspy.api as hs
from hyperspy_eelspecnet import EELSpecNetDeconvolution
from hyperspy_eelspecnet.data import _silver_nanowire as physics
from hyperspy_eelspecnet.demo import DEMO_WINDOWS, phonon_figures
from hyperspy_eelspecnet.restoration import NETWORK_MARGIN
from hyperspy_eelspecnet.richardson_lucy import richardson_lucy
from hyperspy_eelspecnet.spectral import fwhm, half_maximum_centre
from hyperspy_eelspecnet.training.generator import quasi_dirac_zlp
from hyperspy_eelspecnet.vacuum import prepare_vacuum_psfs

from shift_averaging import ShiftAveraged

WINDOW_EV = (0.04, 0.18)
TOLERANCE_CHANNELS = 1.5
DISTANCES_CHANNELS = (20, 25, 30, 35, 40, 50)
SAVED_RESTORATIONS = {
    "fine-tuned": "silver_nanowire_eelspecnet_finetuned.hspy",
    "bundled (blind)": "silver_nanowire_eelspecnet.hspy",
    "RL-50, vacuum PSF": "silver_nanowire_richardson_lucy_vacuum.hspy",
    "RL-50, own ZLP": "silver_nanowire_richardson_lucy.hspy",
}


def fourier_shift(spectrum, channels):
    spectrum_f = np.fft.rfft(spectrum)
    phase = np.exp(-2j * np.pi * np.fft.rfftfreq(spectrum.size) * channels)
    return np.fft.irfft(spectrum_f * phase, spectrum.size)


def brief(figures):
    return ", ".join(
        f"{key} {value:.3g}" for key, value in figures.items() if isinstance(value, float)
    )


def clean_spectra(truth, psf, engines, dispersion, energy):
    hole = np.asarray(truth.metadata.Sample.ground_truth.hole_map, bool)
    truths = np.asarray(truth.data, float)[~hole][:40]
    origin = int(np.argmax(psf))
    blurred = np.stack([fftconvolve(t, psf)[origin:origin + t.size] for t in truths])
    window = (energy > WINDOW_EV[0]) & (energy < WINDOW_EV[1])

    def phonon_energy(spectra):
        highest = np.argmax(np.where(window, spectra, -np.inf), axis=1)
        return (highest - half_maximum_centre(spectra)) * dispersion

    true_energy = phonon_energy(truths)
    rng = np.random.default_rng(0)
    print("1. Clean spectra: 40 true membrane spectra blurred by the mean vacuum spectrum")
    print(f"   truth's phonon {np.median(true_energy):.4f} eV from its ZLP centre")
    for counts in (None, 3.5e7, 5e6):
        spectra = blurred / blurred.sum(axis=1, keepdims=True) * (counts or 1e7)
        if counts:
            spectra = rng.poisson(spectra).astype(float)
        for label, engine in engines.items():
            restored = restore_quietly(engine, spectra.astype(np.float32))
            found = phonon_energy(restored)
            inside = (found > WINDOW_EV[0] + dispersion) & (found < WINDOW_EV[1] - dispersion)
            near = np.abs(found - true_energy) <= TOLERANCE_CHANNELS * dispersion
            median = f"{np.median(found[inside]):.4f} eV" if inside.any() else "-"
            print(f"   {'no noise' if counts is None else f'{counts:.1e} electrons'}, {label}: maximum inside the "
                  f"window {inside.mean():.0%}, median {median}, within 1.5 channels of the truth {near.mean():.0%}")


def vacuum_subtracted(signal, truth, psf, energy):
    data = np.asarray(signal.data, float)
    flat = data.reshape(-1, data.shape[-1])
    centres = half_maximum_centre(flat)
    psf_centre = half_maximum_centre(psf[None])[0]
    channels = np.arange(flat.shape[1])
    residual = np.empty_like(flat)
    for i, spectrum in enumerate(flat):
        moved = fourier_shift(psf, centres[i] - psf_centre)
        core = np.abs(channels - centres[i]) <= 3
        residual[i] = spectrum - spectrum[core].sum() / moved[core].sum() * moved
    hole = np.asarray(truth.metadata.Sample.ground_truth.hole_map, bool).ravel()
    shown = (energy > -0.02) & (energy < 0.2)
    print("2. The vacuum subtracted: mean residual (counts) at")
    print("   energy   ", " ".join(f"{x:6.3f}" for x in energy[shown][::2]))
    print("   membrane ", " ".join(f"{x:6.0f}" for x in residual[~hole].mean(0)[shown][::2]))
    print("   hole     ", " ".join(f"{x:6.0f}" for x in residual[hole].mean(0)[shown][::2]))
    as_signal = signal.deepcopy()
    as_signal.data = residual.reshape(data.shape)
    print("   residual:", brief(phonon_figures(as_signal, truth)))
    for iterations in (10, 50):
        as_signal.data = richardson_lucy(
            np.clip(residual, 0, None).astype(np.float32), psf.astype(np.float32), iterations
        ).reshape(data.shape)
        print(f"   RL-{iterations} of the residual:", brief(phonon_figures(as_signal, truth)))


def restored_maxima(restored, truth, centres, distance):
    """In the window 0.4-1.8 times ``distance`` above each ZLP centre: the restoration's highest
    channel minus the truth's, and whether that channel is a local maximum (not the window's edge)."""
    offsets, interior = [], []
    for spectrum, true, centre in zip(restored, truth, centres):
        low, high = int(round(centre + 0.4 * distance)), int(round(centre + 1.8 * distance))
        highest = int(np.argmax(spectrum[low:high]))
        offsets.append(highest - int(np.argmax(true[low:high])))
        interior.append(0 < highest < high - low - 1)
    return np.array(offsets), np.array(interior)


def found_at_distance(restored, truth, centres, distance):
    """Whether each restoration's highest channel between 0.4 and 1.8 times ``distance`` above
    its ZLP centre is a local maximum within 1.5 channels of the truth's."""
    offsets, interior = restored_maxima(restored, truth, centres, distance)
    return interior & (np.abs(offsets) <= TOLERANCE_CHANNELS)


def recorded(rng, spectra):
    """``spectra`` blurred by the demo's instrument (each its own jitter), at 5e6 electrons."""
    blurred = physics._instrument_blur(rng, spectra)
    return blurred / blurred.sum(axis=1, keepdims=True) * 5e6


def generator_lorentzian(energy, centre, fwhm):
    """The demo's phonon as the fine-tune's generator draws its features: a Lorentzian switched
    off within about 2 channels of the ZLP (``tanh``), its twin the same Lorentzian weighted by
    detailed balance at its centre's energy."""
    half_sq = (0.5 * fwhm) ** 2
    magnitude = np.abs(energy)
    response = half_sq / ((magnitude - centre) ** 2 + half_sq) * np.tanh(magnitude / (2 * physics.DISPERSION_EV))
    return np.where(energy >= 0, response, response * np.exp(-magnitude / physics.KT_EV))


def demo_spectra(rng, centres, distance, strength=1.0, shape=physics._antisymmetric_lorentzian):
    """Truth (ZLP and the demo's phonon ``distance`` channels out, ``strength`` times its
    height, of ``shape``), its ZLP alone, and the truth as :func:`recorded`."""
    channels = np.arange(physics.N_CHANNELS, dtype=float)
    _, _, phonon_fwhm, phonon_height = physics.PHONON
    energy = (channels[None, :] - centres[:, None]) * physics.DISPERSION_EV
    zlp = quasi_dirac_zlp(channels, centres)
    truth = zlp + strength * phonon_height * shape(energy, distance * physics.DISPERSION_EV, phonon_fwhm)
    return truth, zlp, recorded(rng, truth)


def restore_quietly(engine, spectra):
    """``engine.restore(spectra, force=True)`` without its UserWarnings (the same for every call)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return engine.restore(spectra, force=True)


def distance_from_zlp(engines, psf, n_spectra=64):
    rng = np.random.default_rng(5)
    psf_fwhm = physics.PSF_FWHM_CHANNELS
    print(f"3. Distance from the ZLP: the demo's phonon moved, {n_spectra} spectra each; found (%)")
    methods = [*engines, "RL-50, vacuum PSF"]
    print("   distance (ch, PSF FWHM) | counts | " + " | ".join(methods))
    for distance in DISTANCES_CHANNELS:
        centres = physics.ZLP_CHANNEL + rng.uniform(-1.5, 1.5, n_spectra)
        truth, _, blurred = demo_spectra(rng, centres, distance)
        for counts in (None, 5e6):
            spectra = rng.poisson(blurred).astype(float) if counts else blurred
            restored = {label: restore_quietly(engine, spectra) for label, engine in engines.items()}
            restored[methods[-1]] = richardson_lucy(spectra, psf, 50, origin=int(np.argmax(psf)))
            found = [100 * found_at_distance(restored[m], truth, centres, distance).mean() for m in methods]
            print(f"   {distance} ({distance / psf_fwhm:.2f}) | {'no noise' if counts is None else f'{counts:.0e}'} | "
                  + " | ".join(f"{f:.0f}" for f in found), flush=True)


def sharpening(engines, n_spectra=32):
    rng = np.random.default_rng(6)
    print(f"4. Sharpening: the restored phonon against the truth's, {n_spectra} noise-free spectra each")
    print("   distance (ch) | strength | " + " | ".join(f"{label}: height, FWHM" for label in engines))
    for distance, strength in ((40, 1), (50, 1), (80, 1), (50, 3), (50, 10), (50, 30)):
        centres = physics.ZLP_CHANNEL + rng.uniform(-1.5, 1.5, n_spectra)
        truth, zlp, with_phonon = demo_spectra(rng, centres, distance, strength)
        without = recorded(rng, zlp)
        true_phonon = (truth - zlp) / truth.max(axis=1, keepdims=True)
        low = np.round(centres + 0.4 * distance).astype(int)
        cells = []
        for engine in engines.values():
            restored, restored_zlp = (restore_quietly(engine, spectra) for spectra in (with_phonon, without))
            phonon = restored / restored.max(axis=1, keepdims=True) - restored_zlp / restored_zlp.max(axis=1, keepdims=True)
            parts = [(p[a: a + 2 * distance], t[a: a + 2 * distance]) for p, t, a in zip(phonon, true_phonon, low)]
            height = np.median([p.max() / t.max() for p, t in parts])
            widths = np.array([fwhm(p[None])[0] / fwhm(t[None])[0] for p, t in parts])
            width = np.median(widths[np.isfinite(widths)]) if np.isfinite(widths).any() else np.nan
            cells.append(f"{height:.2f}, {width:.2f}")
        print(f"   {distance} | x{strength} | " + " | ".join(cells), flush=True)


def by_distance_from_wire(demo, truth):
    """The demo's saved restorations, pixel by pixel: the phonon's position error by row."""
    from hyperspy_eelspecnet.analysis import feature_agreement, feature_map

    ground_truth = truth.metadata.Sample.ground_truth
    scale = truth.axes_manager.signal_axes[0].scale
    rows = truth.axes_manager.navigation_axes[1].axis
    distance = np.abs(rows - ground_truth.wire.start_nm[1])
    membrane = ~np.asarray(ground_truth.hole_map, bool)
    true_energy = feature_map(truth, DEMO_WINDOWS["Ph"]).data
    print("5. The demo's restorations, pixel by pixel: phonon within 1.5 channels of the truth's "
          f"(share of membrane pixels), by distance from the wire's axis (radius {ground_truth.wire.diameter_nm / 2:g} nm)")
    print("   distance (nm) | " + " | ".join(f"{d:g}" for d in np.unique(distance)) + " | all | >= 50 nm")
    for name, file in SAVED_RESTORATIONS.items():
        if not (demo / file).exists():
            continue
        energy = feature_map(hs.load(demo / file), DEMO_WINDOWS["Ph"]).data
        error = (energy - true_energy) / scale
        regions = [(distance == d)[:, None] & membrane for d in np.unique(distance)]
        regions += [membrane, (distance >= 50)[:, None] & membrane]
        # feature_agreement counts a missing feature (NaN) as missed, as phonon_figures does.
        cells = [feature_agreement(energy[r], true_energy[r], TOLERANCE_CHANNELS * scale) for r in regions]
        print(f"   {name} | " + " | ".join(f"{100 * c:.0f}" for c in cells)
              + (f" (median error {np.nanmedian(error[membrane]):+.2f} ch)" if np.isfinite(error[membrane]).any() else ""))


def map_noise_floor(demo, signal, truth, n_draws=200):
    """Section 6: the Ph map's correlation with the truth's, against the Poisson floor."""
    from hyperspy_eelspecnet.analysis import energy_filtered_maps

    window = {"Ph": DEMO_WINDOWS["Ph"]}
    true_map = energy_filtered_maps(truth, window).data[0].ravel()
    window_counts = energy_filtered_maps(signal, window).data[0].ravel()
    rng = np.random.default_rng(0)
    floor = [np.corrcoef(true_map, true_map + rng.normal(0.0, np.sqrt(window_counts)))[0, 1] for _ in range(n_draws)]
    low, high = np.percentile(floor, [5, 95])
    print(f"6. The Ph map's noise floor: truth + Poisson noise of the input window's counts gives r "
          f"{np.median(floor):.4f} [{low:.4f}, {high:.4f}] ({n_draws} draws)")
    print("   restoration | r | gain on the truth's map | scatter / floor's scatter at that gain")
    for name, file in SAVED_RESTORATIONS.items():
        if not (demo / file).exists():
            continue
        restored_map = energy_filtered_maps(hs.load(demo / file), window).data[0].ravel()
        gain, offset = np.polyfit(true_map, restored_map, 1)
        scatter = np.std(restored_map - (gain * true_map + offset))
        print(f"   {name} | {np.corrcoef(true_map, restored_map)[0, 1]:.4f} | {gain:.3f} | "
              f"{scatter / (abs(gain) * np.sqrt(np.mean(window_counts))):.2f}")


def counts_and_denoising(engine, signal, truth, components=(16, 32, 64)):
    """Section 7: the fine-tuned restoration's phonon figures at more counts and after PCA."""
    from hyperspy_eelspecnet.data import silver_nanowire

    inputs = {"the demo (5e6 electrons)": signal}
    for factor in (100, 10_000):
        inputs[f"{factor:,} times the electrons"] = silver_nanowire(counts_per_spectrum=5e6 * factor)
    work = signal.deepcopy()
    work.change_dtype("float64")
    work.decomposition(normalize_poissonian_noise=True, output_dimension=max(components) + 8, print_info=False)
    for k in components:
        denoised = work.get_decomposition_model(k)
        denoised.data = np.clip(denoised.data, 0.0, None)
        inputs[f"PCA, {k} components"] = denoised
    # The input's noise left in the Ph window: each input against the 10,000-times one, rescaled.
    energy = signal.axes_manager.signal_axes[0].axis
    window = (energy >= DEMO_WINDOWS["Ph"][0]) & (energy <= DEMO_WINDOWS["Ph"][1])
    noiseless = np.asarray(inputs["10,000 times the electrons"].data, float)[..., window] / 10_000
    print("7. The input's noise in the Ph window (against the 10,000-times input): per channel, window sum")
    for name, spectra in inputs.items():
        if name.startswith("the demo") or name.startswith("PCA"):
            residual = np.asarray(spectra.data, float)[..., window] - noiseless
            print(f"   {name}: {residual.std():.0f}, {residual.sum(axis=-1).std():.0f} counts")
    restored = {}
    for name, spectra in inputs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            restored[name] = spectra.eelspecnet_deconvolve(model=engine, rl_iterations=0, show_progressbar=False)[0]
    print("   The fine-tuned restoration with more counts, or of the PCA-denoised input:")
    for name, figures in phonon_figures(restored, truth).items():
        print(f"   {name}: {brief(figures)}")


def placement_cell(restored, truth, centres, distance):
    """"found %, median offset" of :func:`restored_maxima`."""
    offsets, _ = restored_maxima(restored, truth, centres, distance)
    return f"{100 * found_at_distance(restored, truth, centres, distance).mean():.0f}, {np.median(offsets):+.1f}"


def placement(model, n_spectra=64):
    """Section 8: the fine-tuned placement by distance, phonon shape and grid phase."""
    engine = EELSpecNetDeconvolution(model)
    shapes = {"odd (the demo's)": physics._antisymmetric_lorentzian, "generator's Lorentzian": generator_lorentzian}
    print(f"8. Placement: found (%) and median offset (channels), {n_spectra} spectra at 5e6 electrons")
    print("   distance (ch) | " + " | ".join(shapes))
    draws = {}
    for distance in (18, 20, 22, 25, 28, 30, 35, 40):
        cells = []
        for name, shape in shapes.items():
            rng = np.random.default_rng(5)
            centres = physics.ZLP_CHANNEL + rng.uniform(-1.5, 1.5, n_spectra)
            truth, _, blurred = demo_spectra(rng, centres, distance, shape=shape)
            spectra = rng.poisson(blurred).astype(float)
            draws[name, distance] = truth, centres, spectra
            restored = restore_quietly(engine, spectra)
            cells.append(placement_cell(restored, truth, centres, distance))
        print(f"   {distance} | " + " | ".join(cells), flush=True)
    shifts = (0, 8, 16, 24, 32, 40, 48, 56)
    print("   the demo's phonon moved on the network's grid by " + ", ".join(map(str, shifts)) + " channels:")
    for distance in (20, 25, 30):
        truth, centres, spectra = draws["odd (the demo's)", distance]
        cells = []
        for shift in shifts:
            # The input placed ``shift`` whole channels further into the network's padded input.
            restored = ShiftAveraged(model, (shift,), margin=NETWORK_MARGIN + 64).run(spectra)
            cells.append(placement_cell(restored, truth, centres, distance))
        print(f"   {distance} | " + " | ".join(cells), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo", help="output folder of eelspecnet demo --instrument")
    parser.add_argument("--model", nargs="*", default=[], help="other models to restore the clean spectra with")
    parser.add_argument("--sections", default="12345678", help="which sections to run, e.g. 56")
    args = parser.parse_args()
    demo = Path(args.demo)
    signal = hs.load(demo / "silver_nanowire.hspy")
    truth = hs.load(demo / "silver_nanowire_truth.hspy")
    vacuum = hs.load(demo / "silver_nanowire_vacuum.hspy")
    axis = truth.axes_manager.signal_axes[0]
    psf = prepare_vacuum_psfs(np.asarray(vacuum.data, float)).psfs.mean(axis=0)
    engines = {"bundled": EELSpecNetDeconvolution(), "fine-tuned": EELSpecNetDeconvolution(demo / "finetuned" / "eelspecnet.keras")}
    engines.update({path: EELSpecNetDeconvolution(path) for path in args.model})
    sections = {
        "1": lambda: clean_spectra(truth, psf, engines, axis.scale, axis.axis),
        "2": lambda: vacuum_subtracted(signal, truth, psf, axis.axis),
        "3": lambda: distance_from_zlp(engines, psf),
        "4": lambda: sharpening(engines),
        "5": lambda: by_distance_from_wire(demo, truth),
        "6": lambda: map_noise_floor(demo, signal, truth),
        "7": lambda: counts_and_denoising(engines["fine-tuned"], signal, truth),
        "8": lambda: placement(demo / "finetuned" / "eelspecnet.keras"),
    }
    for key in args.sections:
        sections[key]()


if __name__ == "__main__":
    main()
