"""Does averaging the network over whole-channel shifts of its input cut the ZLP width error?

    python research/shift_averaging.py [--model PATH] [--n-spectra N] [--shifts 0 32 ...]

The network is strided (six halvings: its lengths are multiples of 64), so it is not exactly
shift-equivariant: the same spectrum, moved by whole channels in the padded input, gives a
slightly different restoration. If the ZLP width error of the public path came from that, the
mean of the restorations of the input moved by a few whole channels (each moved back; nothing
resampled) would be better. This judges, with ``evaluation.report.evaluate`` on the
``reference`` set and the 640-channel window (the worst SSIM), the public path
(``EELSpecNetDeconvolution.run``) and that mean, side by side. Not a product option: the
docs quote the outcome (``docs/science.md``, "Averaging over shifts").
"""

import argparse

import numpy as np

from hyperspy_eelspecnet.evaluation import report
from hyperspy_eelspecnet.model import predict_spectra
from hyperspy_eelspecnet.restoration import (
    NETWORK_MARGIN, EELSpecNetDeconvolution, from_network_output, to_network_input,
)

SETS = ("reference", "reference, 640 ch, ZLP at 40")
ROWS = ("fwhm_relative_error", "fwtm_relative_error", "fwhm_recovery", "ssim")


def public_path_input(engine, spectra):
    """(spectra, their rows, what the public path feeds the network), as
    ``EELSpecNetDeconvolution.run`` prepares them (``_matched``: a fine-tuned model's input
    matched to its Gaussian first)."""
    engine._check_model_kind()
    spectra = np.asarray(spectra, dtype=float)
    flat = spectra.reshape(-1, spectra.shape[-1])
    return spectra, flat, engine._matched(flat)


class ShiftAveraged(EELSpecNetDeconvolution):
    """The public path, run once per whole-channel shift of the padded input and averaged.

    ``margin``: channels of padding on each side (default: the public path's and the largest
    shift). A fine-tuned model's input is matched to its Gaussian first, as the public path does.
    """

    def __init__(self, model=None, shifts=(0,), margin=None):
        super().__init__(model)
        self.shifts = tuple(int(s) for s in shifts)
        self.margin = NETWORK_MARGIN + max(self.shifts) if margin is None else int(margin)

    def run(self, spectra):
        spectra, flat, network_input = public_path_input(self, spectra)
        padded, start = to_network_input(network_input, self.contract.length_multiple, self.margin)
        restored = np.zeros_like(flat)
        for shift in self.shifts:
            moved = np.roll(padded, shift, axis=1)
            moved[:, :shift] = padded[:, :1]  # the low-energy padding is constant
            restored += from_network_output(predict_spectra(self.model, moved), flat, start + shift)
        return (restored / len(self.shifts)).reshape(spectra.shape)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--n-spectra", type=int, default=300, help="spectra per set (default 300)")
    parser.add_argument("--shifts", type=int, nargs="+", default=[0, 32], help="whole-channel shifts (default 0 32)")
    args = parser.parse_args(argv)
    for shifts in ((0,), tuple(args.shifts)):
        engine = ShiftAveraged(args.model, shifts)
        results = report.evaluate(engine, presets=SETS, n_spectra=args.n_spectra, rl_iterations=(10,), windows=False)
        for name, result in results["presets"].items():
            summary = result["summary"]
            figures = ", ".join(f"{row} {summary[row][report.NETWORK]['median']:.6g}" for row in ROWS)
            print(f"shifts {list(shifts)} | {name}: {figures}", flush=True)


if __name__ == "__main__":
    main()
