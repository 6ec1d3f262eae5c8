"""EELSpecNet: restore near-zero-loss EELS spectra with a compact U-shaped CNN."""
__version__ = "0.1.0"
