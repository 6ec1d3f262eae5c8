"""EELSpecNet: restore near-zero-loss EELS spectra with a compact U-shaped CNN.

Importing the package gives every EELS signal (``exspy.signals.EELSSpectrum`` and its lazy
twin, e.g. what ``hs.load("x.dm4")`` returns) the method ``eelspecnet_deconvolve``.
"""
__version__ = "0.1.0"

from exspy.signals import EELSSpectrum as _EELSSpectrum

from . import analysis, data, plotting
from .restoration import EELSpecNetDeconvolution
from .signals import EELSpecNetResult, EELSpecNetSpectrum, LazyEELSpecNetSpectrum, eelspecnet_deconvolve

# Plain EELS signals keep their class and signal type; they only gain the method.
_EELSSpectrum.eelspecnet_deconvolve = eelspecnet_deconvolve

__all__ = [
    "EELSpecNetDeconvolution",
    "EELSpecNetResult",
    "EELSpecNetSpectrum",
    "LazyEELSpecNetSpectrum",
    "__version__",
    "analysis",
    "data",
    "plotting",
]
