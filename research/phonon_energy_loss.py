"""The demo's phonon placement measured two ways: absolute energy and energy loss.

    python research/phonon_energy_loss.py DEMO_DIR [RESULT.hspy ...]

DEMO_DIR is what ``eelspecnet demo --instrument --out DEMO_DIR`` wrote
(``silver_nanowire_truth.hspy`` and the restorations; by default the fine-tuned one,
``silver_nanowire_eelspecnet_finetuned.hspy``). For each restoration it prints

- how far its ZLP (half-maximum centre) stands from the truth's, along the wire's 7-pixel
  profiles and pixel by pixel;
- the demo's found rates (the phonon's strongest feature within 1.5 channels of the truth's)
  on the absolute energy axis, as ``demo.phonon_figures`` scores them, and on the energy loss,
  each feature's energy less its own spectrum's ZLP position (truth and restoration alike),
  with the median offset of the phonon from the truth's.
"""

import sys

import hyperspy.api as hs
import numpy as np

import hyperspy_eelspecnet  # noqa: F401  (registers the signal types)
from hyperspy_eelspecnet.analysis import feature_agreement, feature_along_line, feature_map, modal_evolution
from hyperspy_eelspecnet.demo import DEMO_WINDOWS, PHONON_TOLERANCE_CHANNELS, PROFILE_WIDTH, _wire_line
from hyperspy_eelspecnet.spectral import half_maximum_centre


def main():
    run = sys.argv[1]
    names = sys.argv[2:] or ["silver_nanowire_eelspecnet_finetuned.hspy"]
    truth = hs.load(f"{run}/silver_nanowire_truth.hspy")
    axis = truth.axes_manager.signal_axes[0]
    tolerance = PHONON_TOLERANCE_CHANNELS * axis.scale
    window = DEMO_WINDOWS["Ph"]
    hole = np.asarray(truth.metadata.Sample.ground_truth.hole_map, bool)
    start, end = _wire_line(truth)

    def zlp_energy(data):
        """Half-maximum centre of each spectrum (energy axis last), in eV."""
        flat = np.asarray(data, float).reshape(-1, axis.size)
        return (axis.offset + axis.scale * half_maximum_centre(flat)).reshape(np.shape(data)[:-1])

    def parts(signal):
        profile = modal_evolution(signal, start, end, width=PROFILE_WIDTH)
        profile_data = np.asarray(profile.data)  # (position, energy) or (energy, position)
        profile_data = profile_data if profile_data.shape[-1] == axis.size else profile_data.T
        return (feature_along_line(profile, window).data, feature_map(signal, window).data,
                zlp_energy(profile_data), zlp_energy(signal.data))

    true_line, true_pixels, true_line_zlp, true_pixel_zlp = parts(truth)
    for name in names:
        line, pixels, line_zlp, pixel_zlp = parts(hs.load(f"{run}/{name}"))
        print(f"{name}: its ZLP from the truth's: along the wire {np.median(line_zlp - true_line_zlp) / axis.scale:+.2f} "
              f"channels, pixels {np.median((pixel_zlp - true_pixel_zlp)[~hole]) / axis.scale:+.2f}")
        print(f"  absolute energy: found along the wire {feature_agreement(line, true_line, tolerance):.1%}, over the "
              f"membrane {feature_agreement(pixels[~hole], true_pixels[~hole], tolerance):.1%}; the phonon "
              f"{np.nanmedian(line - true_line) / axis.scale:+.2f} channels from the truth's along the wire")
        loss, true_loss = line - line_zlp, true_line - true_line_zlp
        pixel_loss, true_pixel_loss = (pixels - pixel_zlp)[~hole], (true_pixels - true_pixel_zlp)[~hole]
        print(f"  energy loss:     found along the wire {feature_agreement(loss, true_loss, tolerance):.1%}, over the "
              f"membrane {feature_agreement(pixel_loss, true_pixel_loss, tolerance):.1%}; the phonon "
              f"{np.nanmedian(loss - true_loss) / axis.scale:+.2f} channels from the truth's along the wire")


if __name__ == "__main__":
    sys.exit(main())
