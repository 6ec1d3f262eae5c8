"""The intensity scaling of EELSpecNet: two Keras layers and their NumPy twins.

Loss features sit 1/300 to 1/10000 below the zero-loss peak. On linear, unit-area spectra a
mean-squared error is dominated by the ZLP and ignores them. The network therefore works on
*compressed* intensities

    z = asinh(x / (epsilon * peak)) / asinh(1 / epsilon)

where ``peak`` is the maximum of the input spectrum. ``z`` is linear for intensities below
``epsilon * peak`` (so noise around zero stays symmetric and bounded, unlike a log or a fourth
root whose slope diverges at zero) and logarithmic above: a feature at 1/4000 of the recorded
ZLP maximum has ``z ~ 0.17`` while the ZLP has ``z = 1`` (a 670-fold boost over the linear
scale), so both matter to the loss. The restored spectrum is
``epsilon * peak * sinh(z_out * asinh(1 / epsilon))`` with ``z_out > 0`` from a softplus, so the
output is non-negative by construction.

The two scalings are layers of the saved model (:class:`IntensityCompression`,
:class:`IntensityExpansion`), so a ``.keras`` file maps spectra of any scale to restored spectra
on the same scale, and it loads with ``safe_mode=True``. Importing this module imports Keras.
"""

from __future__ import annotations

import numpy as np

from .backend import import_keras
from .contract import DEFAULT_EPSILON

keras = import_keras()

__all__ = ["IntensityCompression", "IntensityExpansion", "compress_intensity", "expand_intensity"]


def compress_intensity(spectra, epsilon: float = DEFAULT_EPSILON, peak=None):
    """NumPy twin of :class:`IntensityCompression`; returns ``(z, peak)``."""
    spectra = np.asarray(spectra, dtype=np.float32)
    if peak is None:
        peak = np.maximum(spectra.max(axis=-1, keepdims=True), np.float32(1e-30))
    scale = np.float32(np.arcsinh(1.0 / epsilon))
    return np.arcsinh(spectra / (epsilon * peak)) / scale, peak


def expand_intensity(z, peak, epsilon: float = DEFAULT_EPSILON):
    """Inverse of :func:`compress_intensity`."""
    scale = np.arcsinh(1.0 / epsilon)
    return (epsilon * peak * np.sinh(np.asarray(z) * scale)).astype(np.float32)


@keras.saving.register_keras_serializable(package="hyperspy_eelspecnet")
class IntensityCompression(keras.layers.Layer):
    """``(spectra) -> (z, peak)``: asinh compression relative to each spectrum's maximum."""

    def __init__(self, epsilon=DEFAULT_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, spectra):
        ops = keras.ops
        peak = ops.maximum(ops.max(spectra, axis=-1, keepdims=True), 1e-30)
        scale = float(np.arcsinh(1.0 / self.epsilon))
        return ops.arcsinh(spectra / (self.epsilon * peak)) / scale, peak

    def compute_output_shape(self, input_shape):
        return input_shape, (*input_shape[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="hyperspy_eelspecnet")
class IntensityExpansion(keras.layers.Layer):
    """``(z, peak) -> spectra``: inverse of :class:`IntensityCompression`."""

    def __init__(self, epsilon=DEFAULT_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        z, peak = inputs
        scale = float(np.arcsinh(1.0 / self.epsilon))
        return self.epsilon * peak * keras.ops.sinh(z * scale)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
