"""EELSpecNet: restore near-zero-loss EELS spectra with a compact U-shaped CNN.

Importing the package gives every EELS signal (``exspy.signals.EELSSpectrum`` and its lazy
twin, e.g. what ``hs.load("x.dm4")`` returns) the method ``eelspecnet_deconvolve``.
"""
__version__ = "0.1.0"

import os
import warnings

# TensorFlow, imported when a model is first loaded, logs its start-up from C++ (oneDNN, CPU
# instructions, and on machines without a GPU a "failed call to cuInit" error line): noise to a
# microscopist. Our own messages are Python warnings and exceptions; set the variable before
# importing this package to see TensorFlow's logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

with warnings.catch_warnings():
    # exspy imports HyperSpy's lazy signal classes from the modules HyperSpy 2.x moved them out
    # of, and HyperSpy reports each such import as deprecated: nothing a user can act on.
    warnings.filterwarnings("ignore", message="Importing `Lazy")
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
