"""Judge restorations: the protocol's metrics and the EELSpecNet-versus-Richardson-Lucy report."""

from .metrics import (
    feature_free_positions,
    fwhm,
    fwtm,
    mse,
    noise_variance_reduction,
    peak_position_error,
    peak_width,
    recovery_rate,
    region_variance,
    relative_error,
    resolvable_features,
    shows_peak,
    ssim_1d,
)

__all__ = [
    "peak_width",
    "fwhm",
    "fwtm",
    "recovery_rate",
    "relative_error",
    "resolvable_features",
    "region_variance",
    "noise_variance_reduction",
    "ssim_1d",
    "mse",
    "peak_position_error",
    "shows_peak",
    "feature_free_positions",
]
