"""Re-export: the deconvolution lives in :mod:`simulator.deconvolution` (generation needs it below the pipeline)."""
from simulator.deconvolution import (  # noqa: F401
    DEFAULT_BAND_TAPER_HZ, DEFAULT_KERNEL_SAMPLES, DEFAULT_MAX_TONES, DEFAULT_REGULARIZATION,
    DEFAULT_TONE_THRESHOLD_DB, DeconvolutionInputError, band_limit, band_taper, deconvolve, deconvolve_recording,
    estimate_clock_offset, estimate_emission_offset, fractional_shift, normalize_kernels, remove_tones,
)
from simulator.deconvolution import __all__  # noqa: F401
