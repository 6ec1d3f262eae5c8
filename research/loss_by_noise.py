"""Where the training loss of a model sits: its compressed error by the noise of the spectrum.

    python research/loss_by_noise.py [--model PATH] [--n-spectra 512] [--preset instrument]

Not a timing, and not the public path: this is about the network's training loss, so it runs
the bare network (the model's core, ``core_of(model)``) on what the trainer feeds it, the
compressed generated window, and scores it as the loss does. That is right for a training
loss; what users get (``EELSpecNetDeconvolution.run``: padding, the network over the
spectrum's own channels, counts restored) is judged by the other scripts and ``eelspecnet
evaluate``. Generates ``--n-spectra`` spectra of a preset in the evaluation's and the
training's energy-zero convention (``evaluation_set(preset)``: the truth's ZLP at the recorded
ZLP's half-maximum centre, the recorded spectrum on its own channels; seed
``SeedSequence([7, 7])``), and prints, for each fifth of the spectra ordered by their noise
power in compressed intensities (mean squared difference between the compressed input and the
compressed noise-free input over the measured channels, as ``spectrum_noise_weights``), the
mean noise power, the mean compressed error of the restoration (the loss's compressed term,
unweighted) and that fifth's share of the summed error. This is what ``noise_weight_exponent``
in a training configuration answers (docs/science.md, "Intensity scaling and loss").
"""

import argparse
import sys


import numpy as np  # noqa: E402

from hyperspy_eelspecnet.evaluation.metrics import mse  # noqa: E402
from hyperspy_eelspecnet.evaluation.report import evaluation_set  # noqa: E402
from hyperspy_eelspecnet.model import core_of, load_model  # noqa: E402
from hyperspy_eelspecnet.model.layers import compress_intensity  # noqa: E402
from hyperspy_eelspecnet.training import generate_batch  # noqa: E402
from hyperspy_eelspecnet.training.generator import PRESETS  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: the bundled model)")
    parser.add_argument("--n-spectra", type=int, default=512)
    parser.add_argument("--preset", default="instrument", choices=list(PRESETS))
    args = parser.parse_args(argv)
    model, contract = load_model(args.model)
    batch = generate_batch(evaluation_set(args.preset), args.n_spectra, np.random.SeedSequence([7, 7]))
    z_in, peak = compress_intensity(batch.distorted, contract.epsilon)
    z_truth, _ = compress_intensity(batch.ground_truth, contract.epsilon, peak=peak)
    z_noise_free, _ = compress_intensity(batch.noise_free, contract.epsilon, peak=peak)
    z_out = core_of(model).predict(z_in, batch_size=128, verbose=0)
    error = mse(z_out, z_truth, mask=batch.measured)  # the loss's compressed term, per spectrum
    noise = mse(z_in, z_noise_free, mask=batch.measured)  # as training.trainer.spectrum_noise_weights
    print(f"{args.preset}: {args.n_spectra} spectra, model {contract.name} {contract.version}"
          f" ({args.model or 'bundled'}), the bare network on the compressed window")
    print("fifth by noise  noise power  restoration error  share of the error")
    for k, part in enumerate(np.array_split(np.argsort(noise), 5)):
        share = error[part].sum() / error.sum()
        print(f"  {k + 1}             {noise[part].mean():9.2e}    {error[part].mean():9.2e}          {share:5.2f}")


if __name__ == "__main__":
    sys.exit(main())
