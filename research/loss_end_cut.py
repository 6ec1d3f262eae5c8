"""Does cutting a spectrum's loss end shorter change its restoration?

    python research/loss_end_cut.py [--model PATH] [--n-spectra N]

The network halves its length six times and is not exactly shift-equivariant. Since commit
``9cae3b5`` the public path puts every spectrum's first channel at the same place of the padded
input (``restoration.to_network_input``: ``start = NETWORK_MARGIN``), whatever its length.
Before, it centred the spectrum in the padded length, so a window cut one channel shorter
could move every channel one place on the network's grid. For generated ``instrument`` spectra
with features whose whole window is measured (the evaluation's set, seed 123), this prints, for
cuts of 1-500 channels at the loss end, the relative change of the restoration over the loss
region (20 channels above the ZLP to 300 below the cut; L1, median and 90th percentile over the
spectra) and of its ZLP maximum (median), for the public path and for the centred placement it
replaced. docs/science.md quotes the outcome.
"""

import argparse
import warnings

import numpy as np

from hyperspy_eelspecnet.evaluation.report import evaluation_set
from hyperspy_eelspecnet.model import predict_spectra
from hyperspy_eelspecnet.restoration import EELSpecNetDeconvolution, from_network_output, to_network_input
from hyperspy_eelspecnet.training.generator import generate_batch
from shift_averaging import public_path_input

CUTS = (1, 2, 4, 8, 16, 32, 63, 200, 500)


class Centred(EELSpecNetDeconvolution):
    """The public path with each spectrum centred in the padded input (before ``9cae3b5``)."""

    def run(self, spectra):
        spectra, flat, network_input = public_path_input(self, spectra)
        padded, start = to_network_input(network_input, self.contract.length_multiple)
        centred = (padded.shape[1] - flat.shape[1]) // 2
        moved = np.roll(padded, centred - start, axis=1)
        moved[:, :centred] = padded[:, :1]  # the low-energy padding is constant
        restored = predict_spectra(self.model, moved)
        return from_network_output(restored, flat, centred).reshape(spectra.shape)


def changes(engine, spectra):
    whole = engine.run(spectra)
    zlp = np.argmax(spectra, axis=1)
    n = spectra.shape[1]
    for cut in CUTS:
        shorter = engine.run(spectra[:, :-cut])
        loss = [slice(z + 20, n - cut - 300) for z in zlp]
        region = np.array([
            np.abs(shorter[i, s] - whole[i, s]).sum() / whole[i, s].sum() for i, s in enumerate(loss)
        ])
        peak = np.abs(shorter.max(1) - whole.max(1)) / whole.max(1)
        yield cut, np.median(region), np.percentile(region, 90), np.median(peak)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--n-spectra", type=int, default=64, help="spectra generated (default 64)")
    args = parser.parse_args(argv)
    batch = generate_batch(evaluation_set("instrument"), args.n_spectra, 123, zlp_only=False)
    spectra = batch.distorted.astype(float)[batch.measured.all(axis=1)] * 1e6
    print(f"{len(spectra)} spectra of {spectra.shape[1]} channels, whole window measured")
    print("cut (channels) | placement | loss region: median, 90th percentile | ZLP maximum: median")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, engine in (("fixed start (public path)", EELSpecNetDeconvolution(args.model)),
                              ("centred (before 9cae3b5)", Centred(args.model))):
            for cut, median, p90, peak in changes(engine, spectra):
                print(f"{cut} | {label} | {median:.5f}, {p90:.5f} | {peak:.5f}", flush=True)


if __name__ == "__main__":
    main()
