"""Print the network's inference throughput (spectra/s) on this machine's CPU or GPU.

    python benchmarks/inference_speed.py [--model PATH] [--batch N] [--spectra 4096]

The spectra (``reference`` preset, 2048 channels) are given to the network as the restoration
gives them (``to_network_input``: padded on both sides to a length the network takes, unit
area), by default at the batch size ``EELSpecNetDeconvolution.run`` uses for that length on
this device. A model of the fixed-window kind (before hyperspy-eelspecnet 0.5.0, which the
restoration refuses) is timed on the 2048-channel spectra as they are.
"""

import argparse
import time



from hyperspy_eelspecnet.model import load_model, predict_spectra  # noqa: E402
from hyperspy_eelspecnet.restoration import default_batch_size, to_network_input  # noqa: E402
from hyperspy_eelspecnet.training import generate_batch, preset  # noqa: E402
from hyperspy_eelspecnet.training.trainer import hardware_description  # noqa: E402


def network_batch_size(batch: int, length: int) -> int:
    """Spectra per network call ``EELSpecNetDeconvolution.run`` uses for padded spectra of
    ``length`` channels (the same rule as ``run``; it has no public name of its own)."""
    return max(1, batch * 2048 // max(length, 2048))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: bundled)")
    parser.add_argument("--batch", type=int, default=None,
                        help="spectra per network call (default: the restoration's for this device and length)")
    parser.add_argument("--spectra", type=int, default=4096)
    args = parser.parse_args()
    import tensorflow as tf

    model, contract = load_model(args.model)
    spectra = generate_batch(preset("reference"), args.spectra, seed=0).distorted
    if contract.length_multiple:
        spectra, _ = to_network_input(spectra, contract.length_multiple)
        kind = "padded by to_network_input"
    else:
        kind = "fixed-window model: unpadded"
    batch = args.batch or network_batch_size(default_batch_size(), spectra.shape[1])
    predict_spectra(model, spectra[:batch], batch)  # trace and warm up
    start = time.perf_counter()
    predict_spectra(model, spectra, batch)
    elapsed = time.perf_counter() - start
    print(f"model {contract.name} {contract.version}: {model.count_params():,} parameters")
    print(f"device: {hardware_description()}; TensorFlow {tf.__version__}")
    print(f"{args.spectra / elapsed:.0f} spectra/s ({args.spectra} spectra of {contract.n_channels} channels, "
          f"{kind} to {spectra.shape[1]}, batch {batch})")


if __name__ == "__main__":
    main()
