"""What holds the phonon map of another instrument below r 0.95: noise, the window, or the network?

    python research/instrument_phonons.py --out DIR --minutes 20     # the map and its fine-tune
    python research/instrument_map.py DIR [instrument options, as given to instrument_phonons.py]

Regenerates the truth of ``instrument_phonons.py`` (same options, same seed), restores
``DIR/specimen.hspy`` with the fine-tuned model in ``DIR/finetuned`` and with Richardson-Lucy
(50 iterations, the vacuum spectra as PSF), and prints for energy-filtered "Ph" maps of
half-width 0.5, 1, 1.5 and 2.5 phonon FWHM about the phonon (2.5: the window of
``instrument_phonons.py``):

- the correlation of each method's map with the truth's, and of the input's;
- the noise floor: the truth's map plus the Poisson noise of the input window's counts (the
  best a per-pixel estimate can do when everything under the phonon is known), 200 draws;
- the fine-tuned map's gain on the truth's (a straight-line fit), the scatter about that line
  against the floor's, and its mean in the control pixels (no phonon) against the truth's;
- the truth's map in the control pixels: what of the window is not the phonon (the true ZLP's
  foot and the continuum).
"""

import sys
import warnings
from pathlib import Path

import numpy as np

import hyperspy.api as hs
from hyperspy_eelspecnet.analysis import energy_filtered_maps

sys.path.insert(0, str(Path(__file__).parent))
import instrument_phonons  # noqa: E402

HALF_WIDTHS_FWHM = (0.5, 1.0, 1.5, 2.5)


def main():
    parser = instrument_phonons.instrument_parser(__doc__.splitlines()[0])
    parser.add_argument("out", help="output folder of instrument_phonons.py")
    args = parser.parse_args()
    out = Path(args.out)
    _, truth, _, has_phonon = instrument_phonons.simulate(args, np.random.default_rng(args.seed))
    truth = instrument_phonons.as_signal(truth, args.dispersion, "truth")
    specimen = hs.load(out / "specimen.hspy")
    vacuum = hs.load(out / "vacuum.hspy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, richardson_lucy = specimen.eelspecnet_deconvolve(rl_iterations=50, psf=vacuum, show_progressbar=False)
        finetuned, _ = specimen.eelspecnet_deconvolve(
            model=out / "finetuned" / "eelspecnet.keras", rl_iterations=0, show_progressbar=False
        )
    methods = {"input": specimen, "fine-tuned": finetuned, "RL-50, vacuum PSF": richardson_lucy}
    control = ~has_phonon.ravel()
    print(f"Phonon at {args.phonon_ev:g} eV, {args.phonon_fwhm:g} channels wide; {int(has_phonon.sum())} phonon "
          f"and {int(control.sum())} control pixels")
    print("half-width (FWHM) | window (eV) | floor r | " + " | ".join(methods)
          + " | fine-tuned: gain, scatter / floor's, control mean / truth's | truth's control / phonon-pixel mean")
    for k in HALF_WIDTHS_FWHM:
        half = k * args.phonon_fwhm * args.dispersion
        window = {"Ph": (args.phonon_ev - half, args.phonon_ev + half)}
        true_map = energy_filtered_maps(truth, window).data[0].ravel().astype(float)
        maps = {name: energy_filtered_maps(s, window).data[0].ravel().astype(float) for name, s in methods.items()}
        rng = np.random.default_rng(0)
        noise = np.sqrt(maps["input"])
        floor = np.median([np.corrcoef(true_map, true_map + rng.normal(0.0, noise))[0, 1] for _ in range(200)])
        r = [np.corrcoef(true_map, m)[0, 1] for m in maps.values()]
        tuned = maps["fine-tuned"]
        gain, offset = np.polyfit(true_map, tuned, 1)
        scatter = np.std(tuned - (gain * true_map + offset)) / (abs(gain) * np.sqrt(np.mean(maps["input"])))
        print(f"{k:g} | {window['Ph'][0]:.3f}-{window['Ph'][1]:.3f} | {floor:.4f} | "
              + " | ".join(f"{v:.4f}" for v in r)
              + f" | {gain:.3f}, {scatter:.1f}, {tuned[control].mean():.4g} / {true_map[control].mean():.4g}"
              + f" | {true_map[control].mean():.4g} / {true_map[~control].mean():.4g}", flush=True)


if __name__ == "__main__":
    main()
