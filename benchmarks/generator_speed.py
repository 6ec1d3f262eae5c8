"""Print the spectrum generator's throughput on one core.

    python benchmarks/generator_speed.py [--batch 512] [--repeats 8]
"""

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import time  # noqa: E402

from hyperspy_eelspecnet.training import generate_batch, preset  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    for name in ("reference", "instrument"):
        config = preset(name)
        generate_batch(config, args.batch, seed=0)  # warm-up
        start = time.perf_counter()
        for seed in range(args.repeats):
            generate_batch(config, args.batch, seed=seed)
        rate = args.batch * args.repeats / (time.perf_counter() - start)
        print(f"{name:>10}: {rate:8.0f} spectra/s of {config.n_channels} channels (one core, batch {args.batch})")


if __name__ == "__main__":
    main()
