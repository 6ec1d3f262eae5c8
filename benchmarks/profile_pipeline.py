"""Where the time of ``eelspecnet_deconvolve`` goes: each stage of the pipeline, timed alone.

    python benchmarks/profile_pipeline.py [--spectra 2048] [--batch N] [--model PATH]

Stages, in the order ``s.eelspecnet_deconvolve()`` runs them, on the same spectra
(``instrument`` preset, 1e6 counts, 2048 channels), all public functions of
:mod:`hyperspy_eelspecnet.restoration`:

1. diagnosis, once over the whole signal (``diagnose_spectra``), and validation of those
   diagnostics against the model contract (``EELSpecNetDeconvolution.validate``);
2. then, on each block (``restore_block``), the engine's ``run``: the spectra padded on both
   sides to a length the network takes and scaled to unit area (``to_network_input``), the
   network (``predict_spectra``, at the batch size ``run`` uses for that length; also traced
   with XLA, ``jit_compile=True``, to see whether it pays) and the padding cut off again with
   the input's counts restored (``from_network_output``);
3. and Richardson-Lucy: the PSF of each spectrum's own ZLP (``own_zlp_psf``, used when no
   ``psf=`` is given) and 50 iterations (``richardson_lucy``, one FFT thread, as
   ``restore_block`` calls it).

The whole ``restore_block`` call (the stages of 2 and 3 in one) is timed as well, as a check
that the stages add up, and the stages' restoration is compared with ``engine.run``'s, as a
check that they are the stages ``run`` runs. The script also counts the network's
floating-point operations per spectrum at the padded length (multiply-adds of every
convolution, x2), so a throughput converts into FLOP/s and a fraction of a device's peak.
"""

import argparse
import time
import warnings


import numpy as np  # noqa: E402

from hyperspy_eelspecnet.model import core_of, predict_spectra  # noqa: E402
from hyperspy_eelspecnet.restoration import (  # noqa: E402
    EELSpecNetDeconvolution,
    default_batch_size,
    diagnose_spectra,
    from_network_output,
    own_zlp_psf,
    restore_block,
    to_network_input,
)
from hyperspy_eelspecnet.richardson_lucy import richardson_lucy  # noqa: E402
from hyperspy_eelspecnet.training import generate_batch, preset  # noqa: E402
from hyperspy_eelspecnet.training.trainer import hardware_description  # noqa: E402

COUNTS = 1e6
RL_ITERATIONS = 50


def network_batch_size(batch: int, length: int) -> int:
    """Spectra per network call ``EELSpecNetDeconvolution.run`` uses for padded spectra of
    ``length`` channels: ``batch`` scaled down so a batch holds the activations of ``batch``
    2048-channel spectra (the same rule as ``run``; it has no public name of its own)."""
    return max(1, batch * 2048 // max(length, 2048))


def network_flops_per_spectrum(model, length: int) -> float:
    """2 x multiply-adds of every (transposed) convolution of the network, per spectrum of
    ``length`` channels.

    The network is fully convolutional (its layers' lengths are unknown until it is called),
    so its core is cloned on an input of ``length`` channels to read each layer's length; the
    clone's weights are never used.
    """
    import keras

    core = core_of(model)
    fixed = keras.models.clone_model(core, input_tensors=keras.Input((length,)))
    flops = 0.0
    for layer in fixed.layers:
        if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv1DTranspose)):
            kernel = layer.kernel.shape  # (width, in, out)
            positions = layer.output.shape[1]
            if isinstance(layer, keras.layers.Conv1DTranspose):
                positions = layer.input.shape[1]  # each input position writes width outputs
            flops += 2.0 * kernel[0] * kernel[1] * kernel[2] * positions
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
    seconds, _ = timed(lambda: quietly(lambda: engine.validate(diagnostics)))
    rows.append(("engine.validate (checks, contract warnings)", seconds))
    seconds, (padded, start) = timed(lambda: to_network_input(spectra, contract.length_multiple))
    rows.append(("to_network_input (pad, unit area)", seconds))
    length = padded.shape[1]
    network_batch = network_batch_size(batch, length)
    seconds, restored_padded = timed(lambda: predict_spectra(model, padded, network_batch))
    rows.append((f"network (predict_spectra, batch {network_batch})", seconds))
    network_seconds = seconds

    xla = tf.function(lambda x: model(x, training=False), jit_compile=True)

    def run_xla():
        return np.concatenate([np.asarray(xla(padded[i: i + network_batch]))
                               for i in range(0, len(padded), network_batch)])

    xla_seconds, xla_out = timed(run_xla)
    rows.append(("  the same network traced with XLA (jit_compile)", xla_seconds))
    seconds, restored = timed(lambda: from_network_output(restored_padded, spectra, start))
    rows.append(("from_network_output (cut padding, input's counts)", seconds))
    seconds, psf = timed(lambda: own_zlp_psf(spectra))
    rows.append(("own_zlp_psf (RL's PSF without psf=)", seconds))
    seconds, _ = timed(lambda: richardson_lucy(spectra, psf, RL_ITERATIONS, workers=1), repeats=1)
    rows.append((f"richardson_lucy ({RL_ITERATIONS} iterations, 1 FFT thread)", seconds))
    seconds, (block_restored, _) = timed(lambda: restore_block(spectra, engine, None, RL_ITERATIONS), repeats=1)
    rows.append((f"  restore_block (engine.run + RL-{RL_ITERATIONS}, one call)", seconds))

    flops = network_flops_per_spectrum(model, length)
    print(f"device: {hardware_description()}; TensorFlow {tf.__version__}; model {contract.name} {contract.version}")
    print(f"{args.spectra} spectra of {spectra.shape[1]} channels, padded to {length} for the network "
          f"(spectra on channels {start}-{start + spectra.shape[1] - 1}); best of 3 runs "
          "(RL and restore_block: 1 run)\n")
    print(f"  {'stage':<56}{'ms/spectrum':>12}{'spectra/s':>12}{'share':>8}")
    pipeline = sum(s for name, s in rows if not name.startswith("  "))
    for name, seconds in rows:
        share = "" if name.startswith("  ") else f"{100 * seconds / pipeline:7.1f}%"
        print(f"  {name:<56}{1000 * seconds / args.spectra:12.3f}{args.spectra / seconds:12.0f}{share:>8}")
    print(f"\n  network: {flops / 1e9:.2f} GFLOP per spectrum of {length} channels -> "
          f"{flops * args.spectra / network_seconds / 1e9:.0f} GFLOP/s achieved; XLA / plain time "
          f"{xla_seconds / network_seconds:.2f}, max relative difference "
          f"{np.max(np.abs(xla_out - restored_padded)) / np.max(np.abs(restored_padded)):.1e}")
    print(f"  stages vs restore_block's restoration: max relative difference "
          f"{np.max(np.abs(restored - block_restored)) / np.max(np.abs(block_restored)):.1e}")


if __name__ == "__main__":
    main()
