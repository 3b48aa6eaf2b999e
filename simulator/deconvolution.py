"""Pose kernels from recordings: the paper's eq. 4, k = F^-1{R / S - K_empty}, per speaker-microphone pair.

A microphone m records, in the steady state of chirps repeated every frame period T,

    r_m = sum_s c_s (*) (h_sm + k_sm) + noise          ((*): circular convolution over one period)

where c_s is speaker s's chirp, h_sm the empty room's impulse response and k_sm the person's (the pose
kernel). The empty-room recording is the same without k_sm. Because the speakers are frequency-division
multiplexed (each chirp sweeps its own sub-band), inside speaker s's band only c_s is heard, and

    K_sm(f) = W_s(f) (R_m(f) - E_m(f)) / C_s(f)         (= R/S - K_empty of eq. 4, with K_empty = E/S)

:func:`deconvolve` computes this with three safeguards:

* **Regularised division** (Wiener / Tikhonov): 1 / C becomes conj(C) / (|C|^2 + lambda max|C|^2), so
  frequencies where a chirp carries no energy (its tapered ends, the guard gaps, everything outside its
  band) are attenuated instead of amplified. With lambda = 1e-3 the in-band gain is exact to 0.1 %.
* **Band separation**: row s keeps only speaker s's band, weighted by :func:`band_taper`, a raised-cosine
  window that is 1 inside [low + taper, high - taper] and falls smoothly to 0 at the band's edges
  (``band_taper_hz`` = 300 Hz by default). The taper keeps the kernel's time-domain ringing short (a
  brick-wall band would ring with sinc side lobes) and stays *inside* the band, so the neighbouring
  speaker's chirp, which leaks a little across the guard gap, is not picked up.
* **Alignment**: a small clock offset between the recording and the empty-room recording (a frame cut a
  fraction of a sample later, a capture restarted) leaves the strong room response un-cancelled. The
  offset is estimated by cross-correlating the two recordings (:func:`estimate_clock_offset`: integer lag
  from the envelope of the band-limited cross-correlation, then sub-sample refinement from the phase
  slope of the cross-spectrum), and the recording is shifted by it (an exact fractional circular shift in
  the frequency domain) before subtracting. One offset per frame, shared by all microphones (they share a
  clock). The kernel's t = 0 is then the empty recording's: the absolute delay relative to emission is
  as good as the empty recording's synchronisation with the speakers (:func:`estimate_emission_offset`
  recovers it from the direct paths when unknown). The price of aligning: the body's own echo biases
  the offset estimate slightly (~4e-5 sample for a 15 cm sphere), leaving a room residual ~35 dB under
  the echo -- far under the sensor noise at 40 dB SNR. Pass ``align=False`` for sample-locked data.
* **Tone removal**: a steady narrowband interferer (an ultrasonic sensor, a switching supply) is not in the
  empty recording with the same phase, so it survives the subtraction and, divided by the chirp, becomes a
  sinusoid across the whole kernel: with the realistic preset's tones (0-20 dB over the ambient in-band power)
  it outweighs the body's echo by up to 20 dB. :func:`remove_tones` finds such lines in the difference
  R - E (a tone's power sits in one or two bins, broadband noise and echoes spread over the band's ~1300)
  and subtracts each as a fitted sinusoid; without one nothing is changed. ``remove_tones=False`` turns it off.

Kernels are in the units of the simulator's impulse responses (dimensionless pressure ratio) when the
chirps passed in are the emitted ones at the recording's scale; :func:`normalize_kernels` removes the
unknown overall gain of a real rig so that synthetic and real kernels can be compared.

Example::

    plan = ChirpPlan()
    kernels = deconvolve(rec.recordings, rec.empty_recordings, plan.chirps(), plan.speaker_bands_hz(),
                         plan.sample_rate_hz)                    # (S, M, 4800), t = 0 at emission
    normalized, scale = normalize_kernels(kernels, pair_axes=2)  # scale: ()
"""
from __future__ import annotations

from core.errors import InputError
import numpy as np

from simulator.room_drift import stretch_to_speed

__all__ = [
    "DeconvolutionInputError",
    "band_taper",
    "band_limit",
    "deconvolve",
    "deconvolve_recording",
    "estimate_clock_offset",
    "estimate_emission_offset",
    "fractional_shift",
    "normalize_kernels",
    "remove_tones",
]

DEFAULT_KERNEL_SAMPLES = 4800       # 50 ms at 96 kHz: echoes from up to ~8.5 m away (17 m of path)
DEFAULT_REGULARIZATION = 1e-3       # lambda, relative to the chirp's peak power spectrum
DEFAULT_BAND_TAPER_HZ = 300.0       # raised-cosine roll-off inside each band edge
DEFAULT_TONE_THRESHOLD_DB = 15.0    # a line this far over its band's median power is an interferer
_TONE_GUARD_BINS = 5                # the alignment ignores this many bins either side of a tone: its cross-power
                                    # leaks as 1 / (pi k)^4, 1.6e-5 of its peak five bins away
DEFAULT_MAX_TONES = 24              # lines per frame (an interferer in a drift-stretched empty room takes several)


class DeconvolutionInputError(InputError):
    """An input of the deconvolution is invalid; the message names the argument and the fix."""


# -- spectral helpers ---------------------------------------------------------------------------------
def band_taper(frequencies_hz: np.ndarray, band_hz, taper_hz: float = DEFAULT_BAND_TAPER_HZ) -> np.ndarray:
    """Raised-cosine band window, same shape as ``frequencies_hz``.

    1 on [low + taper, high - taper], 0.5 (1 - cos(pi (f - low) / taper)) on [low, low + taper] (mirrored at
    the high edge), 0 outside [low, high]. ``taper_hz = 0`` gives a brick-wall band.
    """
    low, high = float(band_hz[0]), float(band_hz[1])
    f = np.abs(np.asarray(frequencies_hz, dtype=float))
    if taper_hz <= 0:
        return ((f >= low) & (f <= high)).astype(float)
    inside_by_hz = np.minimum(f - low, high - f)  # distance inside the nearest edge (negative: outside)
    ramp = np.clip(inside_by_hz / taper_hz, 0.0, 1.0)
    return 0.5 * (1.0 - np.cos(np.pi * ramp))


def fractional_shift(signals: np.ndarray, shift_samples) -> np.ndarray:
    """Circularly delay (..., T) periodic signals by ``shift_samples`` (scalar or (...,) broadcastable
    against the leading axes), exactly, in the frequency domain: X(f) exp(-2 pi j f shift)."""
    signals = np.asarray(signals, dtype=float)
    T = signals.shape[-1]
    shift = np.asarray(shift_samples, dtype=float)[..., None]
    phase = np.exp(-2j * np.pi * np.fft.rfftfreq(T) * shift)
    return np.fft.irfft(np.fft.rfft(signals, axis=-1) * phase, T, axis=-1)


def band_limit(kernels: np.ndarray, bands_hz, sample_rate_hz: float,
               band_taper_hz: float = DEFAULT_BAND_TAPER_HZ) -> np.ndarray:
    """(..., S, M, T) impulse responses with row s restricted to band s by :func:`band_taper`.

    Makes a ground truth (e.g. ``Recording.pose_kernels``) comparable with :func:`deconvolve`'s output.
    """
    kernels = np.asarray(kernels, dtype=float)
    bands = np.asarray(bands_hz, dtype=float)
    T = kernels.shape[-1]
    freqs = np.fft.rfftfreq(T, 1.0 / sample_rate_hz)
    windows = np.stack([band_taper(freqs, band, band_taper_hz) for band in bands])  # (S, K)
    spectra = np.fft.rfft(kernels, axis=-1) * windows[:, None, :]
    return np.fft.irfft(spectra, T, axis=-1)


# -- validation ---------------------------------------------------------------------------------------
def _fail(name: str, message: str):
    raise DeconvolutionInputError(f"{name}: {message}")


def _finite_array(name: str, value, min_ndim: int, max_ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        _fail(name, f"cannot be read as a float array ({err}); pass a numpy array")
    if not min_ndim <= array.ndim <= max_ndim:
        _fail(name, f"has shape {array.shape}; expected {min_ndim} to {max_ndim} axes")
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        _fail(name, f"contains {int(bad.sum())} NaN/inf values (first at index {where}); "
                    f"drop or repair the frame before deconvolving")
    return array


def _check_bands(bands_hz, n_speakers: int, sample_rate_hz: float, band_taper_hz: float) -> np.ndarray:
    bands = _finite_array("bands_hz", bands_hz, 2, 2)
    if bands.shape != (n_speakers, 2):
        _fail("bands_hz", f"has shape {bands.shape} but chirps has {n_speakers} speakers; "
                          f"give one (low_hz, high_hz) row per speaker, e.g. ChirpPlan.speaker_bands_hz()")
    nyquist = sample_rate_hz / 2
    for s, (low, high) in enumerate(bands):
        if not 0 <= low < high:
            _fail("bands_hz", f"row {s} = ({low:g}, {high:g}) Hz must satisfy 0 <= low < high")
        if high > nyquist:
            _fail("bands_hz", f"row {s} = ({low:g}, {high:g}) Hz reaches above the Nyquist frequency "
                              f"{nyquist:g} Hz of sample_rate_hz = {sample_rate_hz:g}; check the sample rate "
                              f"or the band")
        if band_taper_hz > (high - low) / 2:
            _fail("band_taper_hz", f"{band_taper_hz:g} Hz is more than half of band {s}'s width "
                                   f"({high - low:g} Hz); use a smaller taper, e.g. {(high - low) / 10:g}")
    order = np.argsort(bands[:, 0])
    for a, b in zip(order[:-1], order[1:]):
        if bands[b, 0] < bands[a, 1]:
            _fail("bands_hz", f"speaker {a}'s band {tuple(bands[a])} overlaps speaker {b}'s {tuple(bands[b])}; "
                              f"frequency-multiplexed speakers need disjoint bands")
    return bands


# -- alignment ----------------------------------------------------------------------------------------
def estimate_clock_offset(recordings: np.ndarray, reference: np.ndarray, bands_hz, sample_rate_hz: float,
                          *, iterations: int = 3, exclude_hz=()) -> float:
    """Delay of ``recordings`` relative to ``reference``, in samples (positive: recordings are later).

    Args:
        recordings, reference: (M, T) one period of each microphone, same clock for all microphones.
        bands_hz: (S, 2) the bands that carry signal; only these frequencies are used.
        sample_rate_hz: of both recordings.
        exclude_hz: frequencies of interferers (:func:`remove_tones`): the bins within ``_TONE_GUARD_BINS`` of
            each are left out, as a tone heard in both recordings with unrelated phases would pull the estimate.

    Both recordings are dominated by the room (direct paths and wall echoes), which the person changes
    little, so their cross-spectrum X(f) = sum_m R_m(f) conj(E_m(f)) is |E|^2 exp(-2 pi j f d) up to a
    small term. The integer part of d is the peak of the envelope of the band-limited circular
    cross-correlation (the envelope, not the correlation itself, whose carrier ripples every ~3-5
    samples); the fractional part is the weighted least-squares slope of X's phase after removing the
    current estimate, iterated. Precision at 40 dB SNR: ~1e-4 samples.
    """
    recordings = np.atleast_2d(recordings)
    reference = np.atleast_2d(reference)
    T = recordings.shape[-1]
    freqs = np.fft.rfftfreq(T, 1.0 / sample_rate_hz)
    in_band = np.zeros(len(freqs), bool)
    for low, high in np.asarray(bands_hz, dtype=float):
        in_band |= (freqs >= low) & (freqs <= high)
    for f_hz in _finite_array("exclude_hz", np.atleast_1d(exclude_hz), 1, 1):
        in_band &= np.abs(freqs - f_hz) > _TONE_GUARD_BINS * sample_rate_hz / T
    cross = np.sum(np.fft.rfft(recordings, axis=-1) * np.conj(np.fft.rfft(reference, axis=-1)), axis=0)
    cross = np.where(in_band, cross, 0.0)
    # Analytic (one-sided) cross-correlation: its magnitude is the envelope, peaked at the delay.
    analytic = np.zeros(T, complex)
    analytic[: len(cross)] = cross
    envelope = np.abs(np.fft.ifft(analytic))
    if not envelope.any():
        return 0.0
    lag = float(np.argmax(envelope))
    if lag > T / 2:
        lag -= T
    omega = 2 * np.pi * np.arange(len(cross)) / T   # radians per sample
    weight = np.abs(cross)
    for _ in range(iterations):
        residual_phase = np.angle(cross * np.exp(1j * omega * lag))
        lag -= np.sum(weight * omega * residual_phase) / np.sum(weight * omega**2)
    return float(lag)


def estimate_emission_offset(empty_recordings: np.ndarray, chirps: np.ndarray, bands_hz, sample_rate_hz: float,
                             speaker_positions_m: np.ndarray, microphone_positions_m: np.ndarray,
                             speed_of_sound_m_s: float, *, band_taper_hz: float = DEFAULT_BAND_TAPER_HZ) -> float:
    """Where emission starts in a period of an empty-room recording cut at an unknown sample, from geometry.

    Args:
        empty_recordings: (M, T) one period of the empty room, cut anywhere in the chirp cycle.
        chirps: (S, T), bands_hz: (S, 2), sample_rate_hz: as for :func:`deconvolve`.
        speaker_positions_m, microphone_positions_m: (S, 3), (M, 3) in any common frame.
        speed_of_sound_m_s: of the air.

    Returns:
        L, samples in [0, T): the recording is the synchronised one delayed by L, so
        ``fractional_shift(empty_recordings, -L)`` has t = 0 at emission.

    The room's impulse response of every pair (the empty recording deconvolved by the chirps) has its
    direct path at d_sm / c: the earliest and (but for a blocked line of sight) the strongest arrival,
    a point source's, so its shape is known exactly -- the deconvolution's response g_s to an impulse
    (band s, taper, regularisation), with positive sign. L maximises the coherent matched-filter score

        score(L) = sum_sm Re <h_sm / |h_sm|, g_s(t - d_sm / c - L)>

    (each pair normalised, so that a co-located pair's huge direct path does not outvote the others):
    the best integer lag over the whole period, then Newton steps on the exact score for the fraction.
    Reflections arriving within a few samples of a direct path bias the result slightly; transducer
    group delays (a real speaker's and microphone's phase response) shift it by their delay.
    """
    empty = _finite_array("empty_recordings", empty_recordings, 2, 2)
    speakers = _finite_array("speaker_positions_m", speaker_positions_m, 2, 2)
    microphones = _finite_array("microphone_positions_m", microphone_positions_m, 2, 2)
    M, T = empty.shape
    if speakers.shape != (len(chirps), 3) or microphones.shape != (M, 3):
        _fail("speaker_positions_m / microphone_positions_m",
              f"shapes {speakers.shape} and {microphones.shape} must be (S, 3) = ({len(chirps)}, 3) and "
              f"(M, 3) = ({M}, 3)")
    responses = deconvolve(empty, np.zeros_like(empty), chirps, bands_hz, sample_rate_hz, kernel_samples=T,
                           align=False, band_taper_hz=band_taper_hz)               # (S, M, T)
    chirp_spectra = np.fft.rfft(np.asarray(chirps, float), axis=-1)
    freqs = np.fft.rfftfreq(T, 1.0 / sample_rate_hz)
    bands = np.asarray(bands_hz, float)
    windows = np.stack([band_taper(freqs, band, band_taper_hz) for band in bands])
    power = np.abs(chirp_spectra) ** 2
    peak = np.max(power * (windows > 0), axis=-1, keepdims=True)
    template_spectra = windows * power / (power + DEFAULT_REGULARIZATION * peak)      # (S, K), real
    spectra = np.fft.rfft(responses, axis=-1)                                        # (S, M, K)
    spectra /= np.maximum(np.linalg.norm(responses, axis=-1, keepdims=True), 1e-300)
    delays = np.linalg.norm(speakers[:, None] - microphones[None], axis=-1) / speed_of_sound_m_s * sample_rate_hz
    omega = 2 * np.pi * np.arange(len(freqs)) / T
    # score(L) = Re sum_k Y_k exp(j omega_k L), Y_k = sum_sm H_sm(k) G_s(k) exp(j omega_k d_sm): one irfft
    Y = np.einsum("smk,sk,smk->k", spectra, template_spectra, np.exp(1j * omega * delays[..., None]))
    score = np.fft.irfft(Y, T)                                                       # at integer L
    weights = np.full(len(freqs), 2.0)                                               # rfft bins -> full sum
    weights[0] = 1.0
    if T % 2 == 0:
        weights[-1] = 1.0
    Y = weights * Y
    lag = float(np.argmax(score))
    for _ in range(5):                                                               # Newton on the exact score
        phase = np.exp(1j * omega * lag)
        first = np.real(np.sum(1j * omega * Y * phase))
        second = np.real(np.sum(-(omega**2) * Y * phase))
        if second >= 0:
            break
        lag -= first / second
    return float(lag % T)


# -- narrowband interferers -----------------------------------------------------------------------------
def remove_tones(signals: np.ndarray, bands_hz, sample_rate_hz: float, *,
                 threshold_db: float = DEFAULT_TONE_THRESHOLD_DB,
                 max_tones: int = DEFAULT_MAX_TONES) -> tuple[np.ndarray, np.ndarray]:
    """One frame's (M, T) signals with their steady in-band tones subtracted, and the tones' frequencies (Hz).

    Model: x_m(t) = s_m(t) + sum_j a_mj cos(2 pi f_j t / fs + phi_mj), s broadband (echoes, noise), each
    frequency f_j shared by the microphones (one interferer heard by all) and anywhere (not on a bin), each
    amplitude and phase per microphone.

    Detection: P(k) = sum_m |X_m(k)|^2 on the rFFT bins of each band; a bin whose P exceeds its band's median
    by ``threshold_db`` holds a tone. For Gaussian broadband s, P is a sum of M exponentials; with M = 1 (the
    worst case) a bin passes 15 dB over the median with probability exp(-10^1.5 ln 2) = 3e-10, so a frame of
    a few thousand in-band bins sees a false tone about once in a million frames, and removing one costs the
    echo a sinusoid's worth of energy (one bin of a speaker's ~300). A tone 15 dB over the median of one bin
    carries about 7 % of the energy of its speaker's band: weaker tones are left, as they matter less than the
    broadband noise.

    Estimation, strongest line first: f_j maximises J(f) = sum_m |sum_t x_m(t) exp(-2 pi j f t / fs)|^2
    within one bin of the detected peak (bounded Brent search), then each microphone's cosine and sine at
    f_j by least squares (a 2 x 2 system), subtracted; then the spectrum is recomputed, so the leakage of an
    off-bin tone into its neighbours goes with it. At most ``max_tones`` lines per frame: an interferer heard in
    an empty room recorded in other air and stretched to the frame's (``deconvolve_recording``) is no longer
    one sinusoid but a comb of lines a few bins wide, each removed in turn.

    Returns:
        (cleaned (M, T), frequencies_hz (n_found,)); no line above the threshold: a copy of ``signals``.
    """
    from scipy.optimize import minimize_scalar

    x = _finite_array("signals", signals, 2, 2).copy()
    if not (np.isfinite(threshold_db) and threshold_db > 0):
        _fail("threshold_db", f"{threshold_db!r} must be a positive number of decibels, e.g. "
                              f"{DEFAULT_TONE_THRESHOLD_DB:g}")
    if isinstance(max_tones, bool) or int(max_tones) != max_tones or max_tones < 0:
        _fail("max_tones", f"{max_tones!r} must be a whole number >= 0, e.g. {DEFAULT_MAX_TONES}")
    M, T = x.shape
    bands = np.asarray(bands_hz, dtype=float)
    freqs = np.fft.rfftfreq(T, 1.0 / sample_rate_hz)
    band_bins = [np.flatnonzero((freqs >= low) & (freqs <= high)) for low, high in bands]
    band_bins = [bins for bins in band_bins if len(bins) >= 8]    # too few bins for a median to mean anything
    threshold = 10 ** (threshold_db / 10)
    t = np.arange(T)
    bin_hz = sample_rate_hz / T
    excluded = np.zeros(len(freqs), dtype=bool)
    found = []

    def captured(f_hz: float) -> float:          # -J(f): the energy a sinusoid at f_hz takes out
        return -float(np.sum(np.abs(x @ np.exp(-2j * np.pi * f_hz / sample_rate_hz * t)) ** 2))

    while len(found) < max_tones:
        power = np.sum(np.abs(np.fft.rfft(x, axis=-1)) ** 2, axis=0)
        medians = [np.median(power[bins]) for bins in band_bins]
        # a line under 1e-4 of a bin of the loudest band holds under 1e-6 of that band's energy: not worth a fit
        # (in a noiseless simulation the bands beside an echo hold only its leak across the guard, peaked at
        # the edge, which is no interferer)
        floor = 1e-4 * max(medians, default=0.0)
        best, best_ratio = -1, threshold
        for bins, median in zip(band_bins, medians):
            if median <= 0:
                continue
            ratio = np.where(excluded[bins] | (power[bins] <= floor), 0.0, power[bins] / median)
            k = int(np.argmax(ratio))
            if ratio[k] > best_ratio:
                best, best_ratio = int(bins[k]), float(ratio[k])
        if best < 0:
            break
        f_hz = minimize_scalar(captured, bounds=(freqs[best] - bin_hz, freqs[best] + bin_hz), method="bounded",
                               options={"xatol": 1e-6 * bin_hz}).x
        basis = np.stack([np.cos(2 * np.pi * f_hz / sample_rate_hz * t), np.sin(2 * np.pi * f_hz / sample_rate_hz * t)])
        coefficients = np.linalg.solve(basis @ basis.T, basis @ x.T)       # (2, M)
        x -= coefficients.T @ basis
        found.append(float(f_hz))
        if -captured(freqs[best]) > 0.5 * power[best]:   # not a sinusoid (the line stayed): not picked again
            excluded[max(best - 2, 0):best + 3] = True
    return x, np.array(found)


_remove_tones = remove_tones      # ``deconvolve``'s flag of the same name hides the function there


# -- eq. 4 ----------------------------------------------------------------------------------------------
def deconvolve(recordings: np.ndarray, empty_recordings: np.ndarray, chirps: np.ndarray, bands_hz,
               sample_rate_hz: float, *, kernel_samples: int = DEFAULT_KERNEL_SAMPLES,
               regularization: float = DEFAULT_REGULARIZATION, align: bool = True,
               band_taper_hz: float = DEFAULT_BAND_TAPER_HZ, return_offsets: bool = False,
               remove_tones: bool = True):
    """Pose kernels k_sm = F^-1{W_s (R_m - E_m) conj(C_s) / (|C_s|^2 + lambda max|C_s|^2)} (paper eq. 4).

    Args:
        recordings: (M, T) one period of every microphone with the person, or (F, M, T) for F frames.
        empty_recordings: (M, T) the empty room (e.g. an average of several periods), or (F, M, T).
        chirps: (S, T) the signal each speaker emits during one period (t = 0 at emission).
        bands_hz: (S, 2) each speaker's (low, high) band in Hz, disjoint, below Nyquist.
        sample_rate_hz: of recordings and chirps.
        kernel_samples: K, length of the returned kernels (1 <= K <= T); 4800 = 50 ms at 96 kHz.
        regularization: lambda >= 0, relative to each chirp's peak power spectrum.
        align: estimate the clock offset of each frame's recording against its empty recording
            (:func:`estimate_clock_offset`) and remove it before subtracting.
        band_taper_hz: raised-cosine roll-off inside each band edge (:func:`band_taper`).
        return_offsets: also return the offsets removed, samples, () or (F,) (zeros if not align).
        remove_tones: subtract the steady in-band tones of each frame's R - E (:func:`remove_tones`, module
            docstring) before dividing by the chirps; a frame without one is left as it is.

    Returns:
        (S, M, K) kernels, or (F, S, M, K) for batched input; with ``return_offsets`` a tuple
        (kernels, offsets_samples).
    """
    recordings = _finite_array("recordings", recordings, 2, 3)
    empty_recordings = _finite_array("empty_recordings", empty_recordings, 2, 3)
    chirps = _finite_array("chirps", chirps, 2, 2)
    if not (np.isfinite(sample_rate_hz) and sample_rate_hz > 0):
        _fail("sample_rate_hz", f"{sample_rate_hz!r} must be a positive number of hertz, e.g. 96000")
    batched = recordings.ndim == 3
    frames = recordings if batched else recordings[None]
    F, M, T = frames.shape
    if empty_recordings.shape[-2:] != (M, T) or (empty_recordings.ndim == 3 and len(empty_recordings) != F):
        _fail("empty_recordings", f"has shape {empty_recordings.shape}; recordings has {recordings.shape}; "
                                  f"give (M, T) = ({M}, {T}) or one per frame")
    empty = np.broadcast_to(empty_recordings, (F, M, T))
    S = len(chirps)
    if chirps.shape[-1] != T:
        _fail("chirps", f"has {chirps.shape[-1]} samples per period but recordings has T = {T}; cut the "
                        f"recordings into periods of the chirp's length")
    if isinstance(kernel_samples, bool) or int(kernel_samples) != kernel_samples or not 1 <= kernel_samples <= T:
        _fail("kernel_samples", f"{kernel_samples!r} must be an integer in [1, T = {T}]")
    if not (np.isfinite(regularization) and regularization >= 0):
        _fail("regularization", f"{regularization!r} must be >= 0, e.g. 1e-3")
    if not (np.isfinite(band_taper_hz) and band_taper_hz >= 0):
        _fail("band_taper_hz", f"{band_taper_hz!r} must be >= 0 Hz, e.g. 300")
    bands = _check_bands(bands_hz, S, sample_rate_hz, band_taper_hz)

    freqs = np.fft.rfftfreq(T, 1.0 / sample_rate_hz)
    chirp_spectra = np.fft.rfft(chirps, axis=-1)                               # (S, K)
    power = np.abs(chirp_spectra) ** 2
    windows = np.stack([band_taper(freqs, band, band_taper_hz) for band in bands])
    in_band_power = np.max(power * (windows > 0), axis=-1)
    for s in np.flatnonzero(in_band_power <= 1e-12 * max(power.max(), 1e-300)):
        _fail("chirps", f"row {s} has no energy in its band {tuple(bands[s])} Hz; check the chirp plan "
                        f"or the order of bands_hz")
    inverse = windows * np.conj(chirp_spectra) / (power + regularization * in_band_power[:, None])  # (S, K)

    offsets = np.zeros(F)
    if align:
        for f in range(F):
            # the tones, found before aligning (the room left unaligned is broadband), do not steer it
            lines = _remove_tones(frames[f] - empty[f], bands, sample_rate_hz)[1] if remove_tones else ()
            offsets[f] = estimate_clock_offset(frames[f], empty[f], bands, sample_rate_hz, exclude_hz=lines)
        frames = fractional_shift(frames, -offsets[:, None])
    difference = frames - empty
    if remove_tones:
        difference = np.stack([_remove_tones(d, bands, sample_rate_hz)[0] for d in difference])
    difference = np.fft.rfft(difference, axis=-1)                              # (F, M, K)
    spectra = inverse[None, :, None, :] * difference[:, None, :, :]             # (F, S, M, K)
    kernels = np.fft.irfft(spectra, T, axis=-1)[..., : int(kernel_samples)]
    if not batched:
        kernels, offsets = kernels[0], offsets[0]
    return (kernels, offsets) if return_offsets else kernels


# -- normalisation -------------------------------------------------------------------------------------
def deconvolve_recording(recording, bands_hz, *, kernel_samples: int = DEFAULT_KERNEL_SAMPLES) -> np.ndarray:
    """(S, M, K) the kernels of a simulator ``Recording`` (:func:`deconvolve`, aligned), drift-aware: an empty room
    recorded in other air (``SimulationConfig.drift``) is first brought to the frame's speed of sound
    (:func:`simulator.room_drift.stretch_to_speed`; the two speeds are what a thermometer beside the rig gives)."""
    empty = recording.empty_recordings
    if recording.empty_speed_of_sound_m_s != recording.speed_of_sound_m_s:
        empty = stretch_to_speed(empty, recording.empty_speed_of_sound_m_s, recording.speed_of_sound_m_s,
                                 recording.sample_rate_hz, recording.chirps, bands_hz)
    return deconvolve(recording.recordings, empty, recording.chirps, bands_hz, recording.sample_rate_hz,
                      kernel_samples=kernel_samples)


def normalize_kernels(kernels: np.ndarray, *, pair_axes: int = 1, eps: float = 0.0):
    """Divide each frame's kernels by one robust amplitude of that frame: scale-free kernels.

    Definition. For a frame with P pairs (``pair_axes`` axes before time: 1 for (P, T), 2 for (S, M, T)),

        scale = median over pairs p of  sqrt(mean_t k_p(t)^2)         (RMS of each pair's kernel)
        normalized = kernels / scale

    Leading axes beyond those are frames: (F, P, T) gives scale of shape (F,). A frame whose scale is 0
    (at least half of its pairs all zero) keeps scale 0 and is returned unchanged.

    Why. A real rig's kernels carry an unknown overall gain (speaker drive, microphone sensitivity,
    preamp, ADC full scale, the chirp file's amplitude) that the simulator does not share, while the
    *relative* amplitudes within a frame -- between pairs, and along time (echoes weaken as
    1 / (d_speaker d_microphone), so near and far reflectors differ) -- are physics that both share.
    One scale per frame removes the gain and keeps the relative information the network uses. The RMS
    (energy) of a kernel aggregates every echo of the body, so it is steadier from frame to frame than
    the peak, which one specular glint can dominate; the median over pairs ignores a single dead,
    clipped or badly subtracted pair. Per-transducer gain differences of a real rig are not removed
    (that needs a calibration), and a frame with no echo is normalised to its noise.

    Returns:
        (normalized, scale): normalized has the shape of ``kernels``; scale has its leading (frame) shape.
    """
    kernels = np.asarray(kernels, dtype=float)
    if isinstance(pair_axes, bool) or pair_axes not in (1, 2):
        _fail("pair_axes", f"{pair_axes!r}: use 1 for (..., P, T) kernels or 2 for (..., S, M, T)")
    if kernels.ndim < pair_axes + 1 or kernels.shape[-1] == 0:
        _fail("kernels", f"has shape {kernels.shape}; expected (..., P, T) (pair_axes=1) or (..., S, M, T) "
                         f"(pair_axes=2) with T >= 1")
    if not np.isfinite(kernels).all():
        _fail("kernels", "contains NaN/inf; deconvolve valid recordings first")
    frame_shape = kernels.shape[: kernels.ndim - 1 - pair_axes]
    rms = np.sqrt(np.mean(kernels**2, axis=-1)).reshape(frame_shape + (-1,))   # (..., P)
    scale = np.median(rms, axis=-1) + eps
    divisor = np.where(scale > 0, scale, 1.0).reshape(frame_shape + (1,) * (pair_axes + 1))
    return kernels / divisor, scale
