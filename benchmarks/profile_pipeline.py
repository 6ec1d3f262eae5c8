"""Where the time of ``eelspecnet_deconvolve`` goes: each stage of the pipeline, timed alone.

    python benchmarks/profile_pipeline.py [--spectra 2048] [--batch N] [--model PATH]

Stages, in the order ``s.eelspecnet_deconvolve()`` runs them, on the same spectra
(``instrument`` preset, 1e6 counts, 2048 channels), all public functions of
:mod:`hyperspy_eelspecnet.restoration`:

1. diagnosis, once over the whole signal (``diagnose_spectra``) and validation of those
   diagnostics against the model contract (``EELSpecNetDeconvolution.validate``);
2. then, on each block (``restore_block``), the engine's ``run``: the ZLP located again
   (``locate_zlp``), the shift into the model window (``to_model_window``), the network
   (``predict_spectra``; also traced with XLA, ``jit_compile=True``, to see whether it pays)
   and the way back to the input's channels (``from_model_window``);
3. and Richardson-Lucy: the PSF of each spectrum's own ZLP (``own_zlp_psf``, used when no
   ``psf=`` is given) and 50 iterations (``richardson_lucy``, one FFT thread, as
   ``restore_block`` calls it).

The whole ``restore_block`` call (the stages of 2 and 3 in one) is timed as well, as a check
that the stages add up. The script also counts the network's floating-point operations per
spectrum (multiply-adds of every convolution, x2), so a throughput converts into FLOP/s and a
fraction of a device's peak.
"""

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from hyperspy_eelspecnet.model import core_of, predict_spectra  # noqa: E402
from hyperspy_eelspecnet.restoration import (  # noqa: E402
    EELSpecNetDeconvolution,
    default_batch_size,
    diagnose_spectra,
    from_model_window,
    own_zlp_psf,
    restore_block,
    to_model_window,
)
from hyperspy_eelspecnet.richardson_lucy import richardson_lucy  # noqa: E402
from hyperspy_eelspecnet.spectral import locate_zlp  # noqa: E402
from hyperspy_eelspecnet.training import generate_batch, preset  # noqa: E402
from hyperspy_eelspecnet.training.trainer import hardware_description  # noqa: E402

COUNTS = 1e6
RL_ITERATIONS = 50


def network_flops_per_spectrum(model) -> float:
    """2 x multiply-adds of every (transposed) convolution of the network, per spectrum."""
    import keras

    flops = 0.0
    for layer in core_of(model).layers:
        if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv1DTranspose)):
            kernel = layer.kernel.shape  # (width, in, out)
            length = layer.output.shape[1]
            if isinstance(layer, keras.layers.Conv1DTranspose):
                length = layer.input.shape[1]  # each input position writes width outputs
            flops += 2.0 * kernel[0] * kernel[1] * kernel[2] * length
    return flops


def timed(function, repeats=3):
    """Best wall time of ``repeats`` calls (after one warm-up call) and the last result."""
    result = function()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def quietly(function):
    """``function()`` without the model-contract warnings (this script times, it does not score)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return function()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spectra", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=None, help="default: the package's choice for the device")
    parser.add_argument("--model", default=None, help="model file (default: bundled)")
    args = parser.parse_args()
    import tensorflow as tf

    batch = args.batch or default_batch_size()
    engine = EELSpecNetDeconvolution(args.model, batch_size=batch)
    model, contract = engine.model, engine.contract
    spectra = (generate_batch(preset("instrument"), args.spectra, seed=7).distorted * COUNTS).astype(np.float64)

    rows = []  # (name, seconds); names indented by two spaces are not stages of the pipeline
    seconds, diagnostics = timed(lambda: diagnose_spectra(spectra))
    rows.append(("diagnose_spectra", seconds))
    seconds, _ = timed(lambda: quietly(lambda: engine.validate(diagnostics, preset("instrument").dispersion)))
    rows.append(("engine.validate (check, contract warnings)", seconds))
    seconds, position = timed(lambda: locate_zlp(spectra))
    rows.append(("locate_zlp (in engine.run)", seconds))
    seconds, (window, _) = timed(lambda: to_model_window(spectra, position, contract.n_channels, contract.zlp_channel))
    rows.append(("to_model_window (shift, pad, unit area)", seconds))
    seconds, restored_window = timed(lambda: predict_spectra(model, window, batch))
    rows.append((f"network (predict_spectra, batch {batch})", seconds))
    network_seconds = seconds

    xla = tf.function(lambda x: model(x, training=False), jit_compile=True)

    def run_xla():
        return np.concatenate([np.asarray(xla(window[i: i + batch])) for i in range(0, len(window), batch)])

    xla_seconds, xla_out = timed(run_xla)
    rows.append(("  the same network traced with XLA (jit_compile)", xla_seconds))
    seconds, _ = timed(lambda: from_model_window(restored_window, spectra, position, contract.zlp_channel,
                                                 contract.edge_channels))
    rows.append(("from_model_window (shift back, NaN edges)", seconds))
    seconds, psf = timed(lambda: own_zlp_psf(spectra))
    rows.append(("own_zlp_psf (RL's PSF without psf=)", seconds))
    seconds, _ = timed(lambda: richardson_lucy(spectra, psf, RL_ITERATIONS, workers=1), repeats=1)
    rows.append((f"richardson_lucy ({RL_ITERATIONS} iterations, 1 FFT thread)", seconds))
    seconds, _ = timed(lambda: restore_block(spectra, engine, None, RL_ITERATIONS), repeats=1)
    rows.append((f"  restore_block (engine.run + RL-{RL_ITERATIONS}, one call)", seconds))

    flops = network_flops_per_spectrum(model)
    print(f"device: {hardware_description()}; TensorFlow {tf.__version__}; model {contract.name} {contract.version}")
    print(f"{args.spectra} spectra of {spectra.shape[1]} channels; best of 3 runs (RL and restore_block: 1 run)\n")
    print(f"  {'stage':<56}{'ms/spectrum':>12}{'spectra/s':>12}{'share':>8}")
    pipeline = sum(s for name, s in rows if not name.startswith("  "))
    for name, seconds in rows:
        share = "" if name.startswith("  ") else f"{100 * seconds / pipeline:7.1f}%"
        print(f"  {name:<56}{1000 * seconds / args.spectra:12.3f}{args.spectra / seconds:12.0f}{share:>8}")
    print(f"\n  network: {flops / 1e9:.2f} GFLOP per spectrum -> {flops * args.spectra / network_seconds / 1e9:.0f} "
          f"GFLOP/s achieved; XLA / plain time {xla_seconds / network_seconds:.2f}, "
          f"max relative difference {np.nanmax(np.abs(xla_out - restored_window)) / restored_window.max():.1e}")


if __name__ == "__main__":
    main()
