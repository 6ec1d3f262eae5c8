"""Where fine-tuned models put a phonon: signed position errors, and energy zero's share of them.

    python research/phonon_positions.py MODEL [MODEL ...] [instrument options]
    python research/phonon_positions.py MODEL [MODEL ...] --demo

On the map of ``research/instrument_phonons.py`` (same options and seed) or on the demo
(``--demo``, the 7-pixel profiles along the wire), each model restores the specimen through
``s.eelspecnet_deconvolve``. Printed: the truth's phonon peak as a fraction of its ZLP maximum
(instrument map), the input's and each restoration's ZLP maximum against the truth's ZLP, and
the phonon's signed position error (restored minus true, channels) on the energy axis and
from each spectrum's own ZLP (how a phonon's energy is read; on the demo, each profile's).
Results: docs/science.md, "Fine-tuning on the microscope's vacuum ZLP".
"""

from __future__ import annotations

import warnings

import numpy as np

import hyperspy_eelspecnet  # noqa: F401
from hyperspy_eelspecnet.analysis import feature_along_line, modal_evolution
from hyperspy_eelspecnet.data import silver_nanowire
from hyperspy_eelspecnet.demo import DEMO_WINDOWS, PROFILE_WIDTH, _wire_line
from hyperspy_eelspecnet.features import find_loss_features, strongest_in_window
from hyperspy_eelspecnet.spectral import locate_zlp
from instrument_phonons import ZLP_CHANNEL, as_signal, instrument_parser, simulate


def zlp(signal):
    data = np.asarray(signal.data)
    return locate_zlp(data.reshape(-1, data.shape[-1]))


def spread(values):
    return f"median {np.nanmedian(values):+.2f} (10-90 % {np.nanpercentile(values, 10):+.2f} to {np.nanpercentile(values, 90):+.2f})"


def restored_by(signal, model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return signal.eelspecnet_deconvolve(model=model, rl_iterations=0, show_progressbar=False)[0]


def instrument(args):
    specimen, truth, _, has_phonon = simulate(args, np.random.default_rng(args.seed))
    s, t = as_signal(specimen, args.dispersion, "specimen"), as_signal(truth, args.dispersion, "truth")
    energy = t.axes_manager.signal_axes[0].axis
    half = 2.5 * args.phonon_fwhm * args.dispersion
    window = (args.phonon_ev - half, args.phonon_ev + half)
    flat = truth.reshape(-1, truth.shape[-1]).astype(float)
    has_phonon = has_phonon.ravel()
    at = ZLP_CHANNEL + int(round(args.phonon_ev / args.dispersion))
    near = flat[:, at - 3: at + 4].max(axis=1)
    share = (near - near[~has_phonon].mean()) / flat.max(axis=1)
    print(f"truth's phonon peak / ZLP maximum: 1/{1 / share[has_phonon].max():.0f} to "
          f"1/{1 / share[has_phonon].min():.0f}, median 1/{1 / np.median(share[has_phonon]):.0f}")
    true_zlp, true_phonon = zlp(t), strongest_in_window(find_loss_features(flat, energy), window)
    print(f"input ZLP maximum - truth's ZLP: {spread(zlp(s) - true_zlp)} ch")
    for model in args.models:
        r = restored_by(s, model)
        found = strongest_in_window(find_loss_features(np.asarray(r.data).reshape(flat.shape), energy), window)
        axis_error = ((found - true_phonon) / args.dispersion)[has_phonon]
        restored_zlp = zlp(r)
        own_error = axis_error - (restored_zlp - true_zlp)[has_phonon]
        print(f"{model}\n  ZLP offset {spread(restored_zlp - true_zlp)} ch\n"
              f"  phonon error on the energy axis {spread(axis_error)} ch, within 1.5: {np.mean(np.abs(axis_error) <= 1.5):.1%}\n"
              f"  phonon error from its own ZLP {spread(own_error)} ch, within 1.5: {np.mean(np.abs(own_error) <= 1.5):.1%}")


def demo(args):
    s, t = silver_nanowire(return_ground_truth=True)
    start, end = _wire_line(t)
    dispersion = t.axes_manager.signal_axes[0].scale

    def phonon_line(signal):
        """The phonon's energy along the wire, and each 7-pixel profile's ZLP maximum (channels)."""
        profile = modal_evolution(signal, start, end, width=PROFILE_WIDTH)
        return feature_along_line(profile, DEMO_WINDOWS["Ph"]).data, locate_zlp(np.asarray(profile.data).T)  # (energy, position)

    (true_line, true_line_zlp), true_zlp = phonon_line(t), zlp(t)
    on_wire = np.isfinite(true_line)
    print(f"input ZLP maximum - truth's ZLP: {spread(zlp(s) - true_zlp)} ch")
    for model in args.models:
        r = restored_by(s, model)
        line, line_zlp = phonon_line(r)
        error = ((line - true_line) / dispersion)[on_wire]
        own_error = error - (line_zlp - true_line_zlp)[on_wire]
        print(f"{model}\n  ZLP offset {spread(zlp(r) - true_zlp)} ch\n"
              f"  phonon error along the wire {spread(error)} ch, within 1.5: {np.mean(np.abs(error) <= 1.5):.1%}\n"
              f"  from its own ZLP {spread(own_error)} ch, within 1.5: {np.mean(np.abs(own_error) <= 1.5):.1%}")


def main():
    parser = instrument_parser(__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="models to restore with (.keras)")
    parser.add_argument("--demo", action="store_true", help="the demo's wire instead of the instrument map")
    args = parser.parse_args()
    (demo if args.demo else instrument)(args)


if __name__ == "__main__":
    main()
