"""Judge restorations: the protocol's metrics and the EELSpecNet-versus-Richardson-Lucy report."""

from .metrics import (
    feature_free_positions,
    found_at_false_rate,
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
    smoothed_peak_flags,
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
    "smoothed_peak_flags",
    "found_at_false_rate",
    "feature_free_positions",
]
