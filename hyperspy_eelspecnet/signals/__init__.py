"""HyperSpy signal classes of EELSpecNet (registered in ``hyperspy_extension.yaml``)."""

from .eelspecnet_spectrum import (
    EELSpecNetResult,
    EELSpecNetSpectrum,
    LazyEELSpecNetSpectrum,
    eelspecnet_deconvolve,
)

__all__ = ["EELSpecNetSpectrum", "LazyEELSpecNetSpectrum", "EELSpecNetResult", "eelspecnet_deconvolve"]
