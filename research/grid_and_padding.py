"""Does the public path's error depend on where the ZLP falls on the network's grid, or on the padding?

    python research/grid_and_padding.py [--model PATH] [--n-spectra N] [--modulus M] [--phases 0 1 ...]
                                        [--seed S] [--sets NAME ...]
    python research/grid_and_padding.py --margins 64 96 128 256 [--model PATH] [--n-spectra N]

The network halves its length six times. The public path pads each spectrum by the same
amount, so the ZLP's whole channel falls on the grid wherever the input puts it. Here each
spectrum is moved by 0 to M - 1 whole channels in the padded input (nothing resampled; moved
back after) so that its ZLP maximum's channel is ``phase`` modulo ``M``, and the public-path
figures (``evaluation.report.evaluate`` on the ``reference`` set and the 640-channel window)
are printed per phase beside the public path's own. If one phase were better, putting every
ZLP there would be an integer-channel alignment, which issue 23 allows. ``--seed`` draws the
sets from another root seed than the evaluation's (to choose a phase on spectra the card is not
measured on) and ``--sets`` names other evaluation sets (e.g. ``instrument``).

With ``--margins``, the public path pads each spectrum by at least that many channels instead
of ``NETWORK_MARGIN`` (64), and besides the two sets it restores measured files and prints
restored over input counts in their last 100 channels and the 100 before them: the Al
low-loss spectrum of ``../shared/data`` (whole, and cut at 20 eV) and the WS2 specimen spectra of
``tests/data`` (whole, and cut at 4 eV). docs/science.md quotes the outcome. Since ``9cae3b5`` a
spectrum starts at the margin, so a margin that is not a multiple of 64 (96) also moves it on
the network's grid; 64, 128 and 256 keep it where the public path puts it.
"""

import argparse
import warnings
from pathlib import Path

import numpy as np

from hyperspy_eelspecnet.evaluation import report
from hyperspy_eelspecnet.model import predict_spectra
from hyperspy_eelspecnet.restoration import NETWORK_MARGIN, EELSpecNetDeconvolution, from_network_output, to_network_input
from hyperspy_eelspecnet.spectral import locate_zlp
from shift_averaging import ShiftAveraged, public_path_input

SETS = ("reference", "reference, 640 ch, ZLP at 40")
ROWS = ("fwhm_relative_error", "fwtm_relative_error", "fwhm_recovery", "ssim")


class GridPhase(EELSpecNetDeconvolution):
    """The public path with each spectrum's ZLP channel moved to ``phase`` modulo ``modulus``."""

    def __init__(self, model=None, phase=0, modulus=8):
        super().__init__(model)
        self.phase, self.modulus = int(phase), int(modulus)

    def run(self, spectra):
        spectra, flat, network_input = public_path_input(self, spectra)
        padded, start = to_network_input(network_input, self.contract.length_multiple, NETWORK_MARGIN + self.modulus)
        zlp_channel = start + np.floor(locate_zlp(network_input)).astype(int)
        shifts = (self.phase - zlp_channel) % self.modulus
        moved = np.empty_like(padded)
        for i, shift in enumerate(shifts):
            moved[i] = np.roll(padded[i], shift)
            moved[i, :shift] = padded[i, 0]  # the low-energy padding is constant
        restored = predict_spectra(self.model, moved)
        out = np.stack([
            from_network_output(restored[i: i + 1], flat[i: i + 1], start + shift)[0] for i, shift in enumerate(shifts)
        ])
        return out.reshape(spectra.shape)


def print_figures(label, engine, n_spectra, sets=SETS, seed=report.EVALUATION_SEED):
    results = report.evaluate(engine, presets=sets, n_spectra=n_spectra, rl_iterations=(10,), windows=False, seed=seed)
    for name, result in results["presets"].items():
        summary = result["summary"]
        figures = ", ".join(f"{row} {summary[row][report.NETWORK]['median']:.6g}" for row in ROWS)
        print(f"{label} | {name}: {figures}", flush=True)


def edge_ratios(engine):
    """Restored over input counts in the last 100 channels of measured spectra, and the 100
    before them, whole and cut short."""
    import hyperspy.api as hs

    repo = Path(__file__).resolve().parents[1]
    al = hs.load(repo.parent / "shared" / "data" / "AL-DFoffset0.00.dm3")
    al_energy, al_counts = al.axes_manager.signal_axes[0].axis, np.asarray(al.data, float)
    ws2 = np.array([np.loadtxt(p) for p in sorted((repo / "tests" / "data" / "eelsfitter_ws2").glob("*Specimen*.txt"))])
    ws2_energy = -0.93 + 0.005 * np.arange(ws2.shape[1])

    def ends(counts):
        """(last 100 channels, the 100 before them): restored / input counts."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            restored = engine.restore(counts)
        return tuple(
            np.round(restored[..., a:b].sum(-1) / counts[..., a:b].sum(-1), 3).tolist() for a, b in ((-100, None), (-200, -100))
        )

    return (f"Al (0.02 eV/ch) last 100 channels, 100 before: {ends(al_counts)}; cut at 20 eV: "
            f"{ends(al_counts[al_energy <= 20])}; WS2 specimens (0.005 eV/ch): {ends(ws2)}; cut at 4 eV: "
            f"{ends(ws2[:, ws2_energy < 4])}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--n-spectra", type=int, default=300, help="spectra per set (default 300)")
    parser.add_argument("--modulus", type=int, default=8, help="grid period the phase is taken modulo (default 8)")
    parser.add_argument("--phases", type=int, nargs="+", default=None, help="phases (default 0 .. modulus - 1)")
    parser.add_argument("--margins", type=int, nargs="+", default=None, help="paddings to compare instead of phases")
    parser.add_argument("--seed", type=int, default=report.EVALUATION_SEED, help="root seed of the sets (the evaluation's)")
    parser.add_argument("--sets", nargs="+", default=list(SETS), help=f"evaluation sets (default: {', '.join(SETS)})")
    args = parser.parse_args(argv)
    figures = dict(n_spectra=args.n_spectra, sets=tuple(args.sets), seed=args.seed)
    if args.margins:
        for margin in args.margins:
            engine = ShiftAveraged(args.model, (0,), margin)  # the public path, padded by at least `margin`
            print_figures(f"margin {margin}", engine, **figures)
            print(f"margin {margin} | measured: {edge_ratios(engine)}", flush=True)
        return
    phases = range(args.modulus) if args.phases is None else args.phases
    print_figures("public path", EELSpecNetDeconvolution(args.model), **figures)
    for p in phases:
        print_figures(f"phase {p} mod {args.modulus}", GridPhase(args.model, p, args.modulus), **figures)


if __name__ == "__main__":
    main()
