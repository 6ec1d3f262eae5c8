"""Benchmark EELSpecNet restoration: throughput, memory of lazy maps, dask.distributed.

    python benchmarks/run.py [--quick] [--json OUT] [--model PATH] [--batch-size N]

One run on one synthetic spectrum image (benchmarks/_lazy_map.py) measures

1. throughput, eager, in spectra/s: the network alone (``predict_spectra`` on spectra already
   padded by ``to_network_input``), the whole ``s.eelspecnet_deconvolve()`` (network + Richardson-Lucy, 50
   iterations, measured-vacuum-like PSF given by ``psf=``), our batched RL alone, and exspy's
   ``richardson_lucy_deconvolution(psf, iterations=50)`` on a subset (a per-spectrum loop),
   with the ratios of time per spectrum, ours / exspy;
2. the peak resident memory of lazy restorations (``lazy_output=True``, network only) of two
   maps, one four times the other, each in a fresh interpreter, the result reduced by a
   sum over navigation so that it is never in memory whole;
3. the same lazy restoration (network + RL) through a ``dask.distributed.LocalCluster`` of 2
   single-threaded workers, its throughput and its agreement with the local threaded path.

Sizes (full / --quick): throughput 64x64 / 16x16 spectra, exspy 256 / 64 spectra, lazy maps
256x256 and 128x128 in 32x32-pixel blocks / 64x64 and 32x32 in 16x16 blocks, distributed
32x32 / 8x8. See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings


import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402

from _lazy_map import N_CHANNELS, eels_signal, lazy_spectrum_image, vacuum_psf  # noqa: E402
from hyperspy_eelspecnet.model import predict_spectra  # noqa: E402
from hyperspy_eelspecnet.restoration import EELSpecNetDeconvolution, default_batch_size, to_network_input  # noqa: E402
from hyperspy_eelspecnet.richardson_lucy import richardson_lucy  # noqa: E402
from hyperspy_eelspecnet.vacuum import prepare_vacuum_psfs  # noqa: E402

RL_ITERATIONS = 50
#: The distributed result must equal the local one to this relative difference.
DISTRIBUTED_TOLERANCE = 1e-6
MIB = 2**20


@dataclasses.dataclass
class Scale:
    """Sizes of one run; sides are in navigation pixels (maps are square)."""

    throughput_side: int
    exspy_spectra: int
    map_side: int  # the larger lazy map; the other has half its side
    chunk_side: int
    distributed_side: int


FULL = Scale(throughput_side=64, exspy_spectra=256, map_side=256, chunk_side=32, distributed_side=32)
QUICK = Scale(throughput_side=16, exspy_spectra=64, map_side=64, chunk_side=16, distributed_side=8)


def _timed(function):
    """(result, seconds) of ``function()``."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def network_batch_size(batch: int, length: int) -> int:
    """Spectra per network call ``EELSpecNetDeconvolution.run`` uses for padded spectra of
    ``length`` channels: ``batch`` scaled down so a batch holds the activations of ``batch``
    2048-channel spectra (the same rule as ``run``; it has no public name of its own)."""
    return max(1, batch * 2048 // max(length, 2048))


def _quietly(function):
    """``function()`` without the model-contract warnings (this benchmark times, it does not score)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return function()


# --------------------------------------------------------------------------- environment


def describe_device() -> dict:
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpus = tf.config.list_physical_devices("GPU")
    gpu = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name) if gpus else None
    return {"cpu": cpu, "cpu_cores": os.cpu_count(), "gpu": gpu, "network_runs_on": gpu or "CPU"}


def describe_versions() -> dict:
    import distributed
    import exspy
    import hyperspy
    import keras
    import tensorflow

    import hyperspy_eelspecnet

    modules = (np, tensorflow, keras, hyperspy, exspy, dask, distributed, hyperspy_eelspecnet)
    return {"python": platform.python_version(), **{module.__name__: module.__version__ for module in modules}}


# --------------------------------------------------------------------------- 1. throughput


def measure_throughput(engine, psf, scale: Scale, batch_size: int) -> dict:
    """Eager spectra/s of the network, the whole method, our RL and exspy's RL on one map.

    The map is the top-left corner of the lazy maps of :func:`measure_memory` (same blocks).
    The network alone runs on the spectra as ``EELSpecNetDeconvolution.run`` gives them to it
    (padded by ``to_network_input``, at the batch size ``run`` uses for that length). It is
    traced on one batch first; the other calls run once each, untimed warm-up being
    unnecessary for NumPy code.
    """
    data = lazy_spectrum_image(scale.throughput_side, scale.chunk_side).compute()
    signal = eels_signal(data)
    flat = data.reshape(-1, N_CHANNELS)
    n_spectra = flat.shape[0]
    contract = engine.contract

    padded, _ = to_network_input(flat, contract.length_multiple)
    network_batch = network_batch_size(batch_size, padded.shape[1])
    predict_spectra(engine.model, padded[:network_batch], network_batch)  # trace the graph
    _, network_s = _timed(lambda: predict_spectra(engine.model, padded, network_batch))

    _, method_s = _timed(lambda: _quietly(lambda: signal.eelspecnet_deconvolve(
        model=engine, rl_iterations=RL_ITERATIONS, psf=psf, batch_size=batch_size,
        show_progressbar=False, lazy_output=False,
    )))

    psf_unit = prepare_vacuum_psfs(psf.data).psfs[0]  # the unit-sum PSF eelspecnet_deconvolve(psf=) uses
    _, our_rl_s = _timed(lambda: richardson_lucy(flat, psf_unit, RL_ITERATIONS))

    exspy_spectra = min(scale.exspy_spectra, n_spectra)
    subset = eels_signal(flat[:exspy_spectra])
    _, exspy_s = _timed(lambda: subset.richardson_lucy_deconvolution(
        psf, iterations=RL_ITERATIONS, show_progressbar=False
    ))

    rate = {
        "network": n_spectra / network_s,
        "eelspecnet_deconvolve": n_spectra / method_s,
        "our_richardson_lucy": n_spectra / our_rl_s,
        "exspy_richardson_lucy": exspy_spectra / exspy_s,
    }
    return {
        "map_shape": [scale.throughput_side, scale.throughput_side, N_CHANNELS],
        "spectra": n_spectra,
        "network_input_channels": int(padded.shape[1]),
        "network_batch_size": network_batch,
        "exspy_spectra": exspy_spectra,
        "rl_iterations": RL_ITERATIONS,
        "seconds": {"network": network_s, "eelspecnet_deconvolve": method_s,
                    "our_richardson_lucy": our_rl_s, "exspy_richardson_lucy": exspy_s},
        "spectra_per_s": rate,
        # Time per spectrum, ours / exspy's: below 1 means ours is faster.
        "time_ratio_eelspecnet_deconvolve_over_exspy": rate["exspy_richardson_lucy"] / rate["eelspecnet_deconvolve"],
        "time_ratio_our_rl_over_exspy": rate["exspy_richardson_lucy"] / rate["our_richardson_lucy"],
    }


# --------------------------------------------------------------------------- 2. memory


def _peak_rss_mib() -> float:
    """Peak resident memory of this process (MiB).

    On Linux, ``VmHWM`` of ``/proc/self/status``: ``ru_maxrss`` keeps, across ``exec``, the
    resident size of the forked parent, so a child started by a parent of 2.3 GiB reports
    2.3 GiB whatever it does (seen in the first recorded runs). Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def child_memory(side: int, chunk_side: int, batch_size: int, model) -> dict:
    """Restore a lazy ``side x side`` map in this (fresh) process; figures for its memory.

    The baseline is the peak after importing, loading the model and tracing it on one batch:
    what any restoration costs whatever the map. The restored map is reduced by a sum over
    navigation (every channel is restored, none is NaN), computed by dask's threaded
    scheduler, so neither input nor result is ever whole in memory.
    """
    engine = _warm_up_worker(model, batch_size)
    baseline = _peak_rss_mib()
    signal = eels_signal(lazy_spectrum_image(side, chunk_side))

    def restore_and_reduce():
        restored, _ = signal.eelspecnet_deconvolve(
            model=engine, rl_iterations=0, batch_size=batch_size, show_progressbar=False, lazy_output=True
        )
        return da.sum(restored.data, axis=(0, 1)).compute()

    total, seconds = _timed(lambda: _quietly(restore_and_reduce))
    peak = _peak_rss_mib()
    chunk = min(chunk_side, side)
    return {
        "map_shape": [side, side, N_CHANNELS],
        "spectra": side * side,
        "map_mib": side * side * N_CHANNELS * 4 / MIB,
        "chunk_shape": [chunk, chunk, N_CHANNELS],
        "chunk_mib": chunk * chunk * N_CHANNELS * 4 / MIB,
        "chunks": int(np.prod(signal.data.numblocks)),
        "dask_threads": dask.system.CPU_COUNT,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "peak_above_baseline_mib": peak - baseline,
        "seconds": seconds,
        "restored_total_counts": float(np.sum(total)),
    }


def measure_memory(side: int, chunk_side: int, batch_size: int, model) -> dict:
    """:func:`child_memory` in a fresh interpreter running this script, so peaks do not mix."""
    command = [sys.executable, os.path.abspath(__file__), "--child-memory", str(side),
               "--chunk-side", str(chunk_side), "--batch-size", str(batch_size)]
    if model is not None:
        command += ["--model", str(model)]
    child = subprocess.run(command, capture_output=True, text=True)
    if child.returncode:
        raise RuntimeError(f"The memory run for {side}x{side} failed:\n{child.stderr[-4000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- 3. distributed


def _warm_up_worker(model_path, batch_size):
    """Load the model and trace it in a worker, so the timing does not include it.

    ``engine.run`` on one batch of flat spectra of the map's length traces the network on the
    padded length and batch size of the restoration's full batches.
    """
    engine = EELSpecNetDeconvolution(model_path, batch_size)
    engine.run(np.ones((batch_size, N_CHANNELS)))
    return engine


def measure_distributed(engine, psf, side: int, batch_size: int) -> dict:
    """Lazy restoration (network + RL) of a small map: local threads, then a LocalCluster.

    The input is computed first and given to dask as an in-memory array, so both paths time
    the restoration, not the generator. Each path runs twice and the second run is timed
    (the first loads and traces the model where it runs).
    """
    from dask.distributed import Client, LocalCluster

    chunk_side = max(1, side // 2)  # four blocks: work for both workers
    data = lazy_spectrum_image(side, chunk_side).compute()
    signal = eels_signal(da.from_array(data, chunks=(chunk_side, chunk_side, -1)))

    def restore():
        restored, rl = signal.eelspecnet_deconvolve(
            model=engine, rl_iterations=RL_ITERATIONS, psf=psf, batch_size=batch_size,
            show_progressbar=False, lazy_output=True,
        )
        return dask.compute(restored.data, rl.data)

    with dask.config.set(scheduler="threads"):
        _quietly(restore)
        local, local_s = _timed(lambda: _quietly(restore))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(_warm_up_worker, str(engine.path), batch_size)
        _quietly(restore)
        remote, remote_s = _timed(lambda: _quietly(restore))

    difference = {
        name: _relative_difference(remote_part, local_part)
        for name, remote_part, local_part in zip(("restored", "richardson_lucy"), remote, local)
    }
    n_spectra = side * side
    return {
        "map_shape": [side, side, N_CHANNELS],
        "chunk_shape": [chunk_side, chunk_side, N_CHANNELS],
        "spectra": n_spectra,
        "cluster": "LocalCluster(n_workers=2, threads_per_worker=1, processes=True)",
        "rl_iterations": RL_ITERATIONS,
        "seconds": {"local_threads": local_s, "distributed": remote_s},
        "spectra_per_s": {"local_threads": n_spectra / local_s, "distributed": n_spectra / remote_s},
        "max_relative_difference": difference,
        "tolerance": DISTRIBUTED_TOLERANCE,
        "equal": all(value <= DISTRIBUTED_TOLERANCE for value in difference.values()),
    }


def _relative_difference(values, reference) -> float:
    """Largest |values - reference| over the largest |reference|; inf where NaNs differ."""
    values, reference = np.asarray(values, float), np.asarray(reference, float)
    if not np.array_equal(np.isnan(values), np.isnan(reference)):
        return float("inf")
    return float(np.nanmax(np.abs(values - reference)) / np.nanmax(np.abs(reference)))


# --------------------------------------------------------------------------- report


def _table(header, rows) -> str:
    """Rows of strings, first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = [str(cell).ljust(widths[0]) if i == 0 else str(cell).rjust(widths[i]) for i, cell in enumerate(row)]
        return "  " + "  ".join(cells)

    return "\n".join([line(header), "  " + "-" * (sum(widths) + 2 * (len(widths) - 1)), *map(line, rows)])


def report(results: dict) -> str:
    device, versions, settings = results["device"], results["versions"], results["settings"]
    throughput, memory, distributed = results["throughput"], results["memory"], results["distributed"]
    rate = throughput["spectra_per_s"]
    n_rl = throughput["rl_iterations"]
    side = throughput["map_shape"][0]
    network_input = (f"; the network gets them padded to {throughput['network_input_channels']} channels, "
                     f"{throughput['network_batch_size']} per call")
    lines = [
        "",
        f"Device: {device['cpu']}, {device['cpu_cores']} cores; network on {device['network_runs_on']}",
        "Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
        f"Model: {settings['model']}; batch size {settings['batch_size']}; RL {n_rl} iterations; "
        f"data: {settings['data']}",
        "",
        f"Throughput, eager, {side} x {side} = {throughput['spectra']} spectra of {N_CHANNELS} channels"
        + network_input,
        _table(
            ["", "spectra/s", "ms/spectrum", "time ours/exspy"],
            [
                ["network alone (predict_spectra, padded input)", f"{rate['network']:.1f}",
                 f"{1e3 / rate['network']:.3f}", ""],
                [f"eelspecnet_deconvolve (network + RL-{n_rl})", f"{rate['eelspecnet_deconvolve']:.1f}",
                 f"{1e3 / rate['eelspecnet_deconvolve']:.3f}",
                 f"{throughput['time_ratio_eelspecnet_deconvolve_over_exspy']:.4f}"],
                [f"our RL-{n_rl} alone (batched FFT)", f"{rate['our_richardson_lucy']:.1f}",
                 f"{1e3 / rate['our_richardson_lucy']:.3f}", f"{throughput['time_ratio_our_rl_over_exspy']:.4f}"],
                [f"exspy RL-{n_rl} ({throughput['exspy_spectra']}-spectrum subset)",
                 f"{rate['exspy_richardson_lucy']:.1f}", f"{1e3 / rate['exspy_richardson_lucy']:.3f}", "1"],
            ],
        ),
        "  exspy's richardson_lucy_deconvolution loops over spectra (np.convolve per spectrum and iteration),",
        f"  so it is timed on the first {throughput['exspy_spectra']} spectra only; its rate is per spectrum.",
        "",
        "Peak resident memory, lazy restoration in a fresh process (rl_iterations=0, lazy_output=True,",
        "result reduced by a sum over navigation; the data are generated block by block, never whole)",
        _table(
            ["map", "spectra", "map MiB", "chunks", "chunk MiB", "baseline MiB", "peak MiB", "peak-baseline",
             "s"],
            [
                [f"{m['map_shape'][0]} x {m['map_shape'][1]} x {m['map_shape'][2]}", m["spectra"],
                 f"{m['map_mib']:.1f}", m["chunks"], f"{m['chunk_mib']:.1f}", f"{m['baseline_rss_mib']:.0f}",
                 f"{m['peak_rss_mib']:.0f}", f"{m['peak_above_baseline_mib']:.0f}", f"{m['seconds']:.1f}"]
                for m in memory
            ],
        ),
        f"  dask threaded scheduler, {memory[0]['dask_threads']} threads; baseline = peak after imports, model "
        "load and one traced batch.",
        "",
        f"dask.distributed, {distributed['cluster']}, "
        f"{distributed['map_shape'][0]} x {distributed['map_shape'][1]} map in "
        f"{distributed['chunk_shape'][0]} x {distributed['chunk_shape'][1]} blocks, network + RL-{n_rl}",
        _table(
            ["", "spectra/s", "s"],
            [
                ["local threads", f"{distributed['spectra_per_s']['local_threads']:.1f}",
                 f"{distributed['seconds']['local_threads']:.2f}"],
                ["LocalCluster", f"{distributed['spectra_per_s']['distributed']:.1f}",
                 f"{distributed['seconds']['distributed']:.2f}"],
            ],
        ),
        "  max relative difference to the local path: "
        + ", ".join(f"{name} {value:.2e}" for name, value in distributed["max_relative_difference"].items())
        + f" (tolerance {distributed['tolerance']:g}): {'EQUAL' if distributed['equal'] else 'DIFFERENT'}",
        "",
    ]
    return "\n".join(lines)


def run(scale: Scale, batch_size: int, model) -> dict:
    engine = EELSpecNetDeconvolution(model)
    psf = vacuum_psf()
    results = {
        "device": describe_device(),
        "versions": describe_versions(),
        "settings": {
            "scale": dataclasses.asdict(scale),
            "batch_size": batch_size,
            "model": f"{engine.contract.name} v{engine.contract.version} ({engine.path})",
            "data": "generator preset 'instrument', 1e6 counts/spectrum, 5 meV/channel, ZLP at channel 400",
            "psf": "synthetic vacuum ZLP, 1e8 counts, clipped at 0 (one spectrum for all pixels)",
        },
    }
    print(f"[1/3] throughput on {scale.throughput_side} x {scale.throughput_side} spectra "
          f"(exspy on {scale.exspy_spectra}) ...", flush=True)
    results["throughput"] = measure_throughput(engine, psf, scale, batch_size)
    results["memory"] = []
    for side in (scale.map_side // 2, scale.map_side):
        print(f"[2/3] peak memory of a lazy {side} x {side} restoration (fresh process) ...", flush=True)
        results["memory"].append(measure_memory(side, scale.chunk_side, batch_size, model))
    print(f"[3/3] dask.distributed on {scale.distributed_side} x {scale.distributed_side} spectra ...", flush=True)
    results["distributed"] = measure_distributed(engine, psf, scale.distributed_side, batch_size)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes on 2 CPU cores)")
    parser.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    parser.add_argument("--model", default=None, help="model file (default: bundled)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="spectra per network call (default: the package's choice for this device)")
    sizes = parser.add_argument_group("size overrides, for developing this script")
    sizes.add_argument("--throughput-side", type=int)
    sizes.add_argument("--exspy-spectra", type=int)
    sizes.add_argument("--map-size", type=int, help="side of the larger lazy map (the other is half)")
    sizes.add_argument("--chunk-side", type=int)
    sizes.add_argument("--distributed-side", type=int)
    parser.add_argument("--child-memory", type=int, metavar="SIDE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch_size is None:
        args.batch_size = default_batch_size()

    scale = QUICK if args.quick else FULL
    overrides = {
        "throughput_side": args.throughput_side, "exspy_spectra": args.exspy_spectra,
        "map_side": args.map_size, "chunk_side": args.chunk_side, "distributed_side": args.distributed_side,
    }
    scale = dataclasses.replace(scale, **{k: v for k, v in overrides.items() if v is not None})

    if args.child_memory is not None:
        print(json.dumps(child_memory(args.child_memory, scale.chunk_side, args.batch_size, args.model)))
        return
    results = run(scale, args.batch_size, args.model)
    print(report(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
        print(f"Figures written to {args.json}")


if __name__ == "__main__":
    main()
