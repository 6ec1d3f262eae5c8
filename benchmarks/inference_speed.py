"""Print the network's inference throughput (spectra/s) on this machine's CPU or GPU.

    python benchmarks/inference_speed.py [--model PATH] [--batch 256] [--spectra 4096]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from hyperspy_eelspecnet.model import load_model, predict_spectra  # noqa: E402
from hyperspy_eelspecnet.training import generate_batch, preset  # noqa: E402
from hyperspy_eelspecnet.training.trainer import hardware_description  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: bundled)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--spectra", type=int, default=4096)
    args = parser.parse_args()
    import tensorflow as tf

    model, contract = load_model(args.model)
    spectra = generate_batch(preset("reference"), args.spectra, seed=0).distorted
    predict_spectra(model, spectra[: args.batch], args.batch)  # trace and warm up
    start = time.perf_counter()
    predict_spectra(model, spectra, args.batch)
    elapsed = time.perf_counter() - start
    print(f"model {contract.name} {contract.version}: {model.count_params():,} parameters")
    print(f"device: {hardware_description()}; TensorFlow {tf.__version__}")
    print(f"{args.spectra / elapsed:.0f} spectra/s ({args.spectra} spectra of {contract.n_channels} channels, batch {args.batch})")


if __name__ == "__main__":
    main()
