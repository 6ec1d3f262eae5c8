"""The benchmark's synthetic spectrum image, built lazily block by block from a seeded generator.

Each block of navigation pixels is drawn by the training generator (preset ``instrument``:
Poisson counting noise, asymmetric PSFs, jitter, drift, continua; 2048 channels at 5 meV,
zero-loss peak aligned on channel 400) from a seed made of :data:`SEED` and the block's
position in the map. So the map is the same on every run and on every dask worker, a map is
never held in memory whole (a block exists only while a task needs it), and a smaller map
with the same block size is the top-left corner of a larger one.
"""

from __future__ import annotations

import dataclasses

import dask.array as da
import numpy as np
from exspy.signals import EELSSpectrum, LazyEELSSpectrum

from hyperspy_eelspecnet.training import generate_batch, preset

SEED = 20251121
#: Electrons per spectrum: the generator's Poisson noise is drawn at this dose and its
#: unit-area spectra are scaled back to counts.
COUNTS_PER_SPECTRUM = 1e6
#: Electrons in the vacuum zero-loss peak used as the measured PSF.
VACUUM_COUNTS = 1e8

_CONFIG = dataclasses.replace(preset("instrument"), total_counts=(COUNTS_PER_SPECTRUM, COUNTS_PER_SPECTRUM))
N_CHANNELS = _CONFIG.n_channels
ZLP_CHANNEL = _CONFIG.zlp_channel
DISPERSION_EV = _CONFIG.dispersion


#: Spectra generated per generator call. The generator works on complex FFTs four times the
#: spectrum length, ~0.5 GiB of temporaries for a 1024-spectrum block: drawn whole, the data
#: source, not the restoration, would set the benchmark's peak memory.
GENERATOR_BATCH = 128


def spectra_block(navigation_shape, location) -> np.ndarray:
    """Counts, shape ``navigation_shape + (N_CHANNELS,)`` float32, of the block at ``location``."""
    n_spectra = int(np.prod(navigation_shape))
    block = np.empty((n_spectra, N_CHANNELS), np.float32)
    for part, start in enumerate(range(0, n_spectra, GENERATOR_BATCH)):
        stop = min(start + GENERATOR_BATCH, n_spectra)
        batch = generate_batch(_CONFIG, stop - start, seed=(SEED, *location, part))
        block[start:stop] = batch.distorted * np.float32(COUNTS_PER_SPECTRUM)
    return block.reshape(*navigation_shape, N_CHANNELS)


def _map_block(block_info=None):
    info = block_info[None]
    return spectra_block(tuple(info["chunk-shape"][:-1]), tuple(info["chunk-location"][:-1]))


def lazy_spectrum_image(side: int, chunk_side: int) -> da.Array:
    """A ``side x side x N_CHANNELS`` float32 dask array in ``chunk_side x chunk_side`` pixel blocks."""
    full, rest = divmod(side, chunk_side)
    navigation_chunks = (chunk_side,) * full + ((rest,) if rest else ())
    return da.map_blocks(
        _map_block,
        chunks=(navigation_chunks, navigation_chunks, (N_CHANNELS,)),
        dtype=np.float32,
        meta=np.empty((0, 0, 0), np.float32),
    )


def eels_signal(data, title: str = "Synthetic low-loss spectrum image"):
    """An EELS signal (lazy for a dask array) of ``data`` on the generator's energy axis (eV)."""
    signal = LazyEELSSpectrum(data) if isinstance(data, da.Array) else EELSSpectrum(data)
    signal.metadata.General.title = title
    energy = signal.axes_manager.signal_axes[0]
    energy.name, energy.units = "Energy loss", "eV"
    energy.scale, energy.offset = DISPERSION_EV, -ZLP_CHANNEL * DISPERSION_EV
    return signal


def vacuum_psf():
    """A measured-vacuum-like zero-loss peak: one spectrum, no loss features, whole window.

    Drawn by the same generator at :data:`VACUUM_COUNTS` electrons and clipped at zero, as a
    dark-subtracted vacuum ZLP is before it serves as a PSF. It is one of the PSFs the
    generator draws, not the PSF of each pixel: the benchmark times deconvolution, it does not
    score it.
    """
    config = dataclasses.replace(_CONFIG, total_counts=(VACUUM_COUNTS, VACUUM_COUNTS), window_probability=0.0)
    batch = generate_batch(config, 1, seed=(SEED, 2**31 - 1), zlp_only=True)
    counts = np.clip(batch.distorted[0] * np.float32(VACUUM_COUNTS), 0.0, None)
    return eels_signal(counts, "Vacuum zero-loss peak (synthetic)")
