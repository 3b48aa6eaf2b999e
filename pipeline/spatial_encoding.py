"""Spatial encoding of pose kernels (paper eq. 5-7).

A chirp from a speaker at s reflects off a body point X and reaches a microphone at m after

    t_X = (|s - X| + |m - X|) / v                                              (eq. 5)

so a pose kernel k(t) = sum_X A(X) delta(t - t_X) (eq. 6) can be read out on a voxel grid as

    K(X) = k(t_X)                                                              (eq. 7)

Every point of an ellipsoid with foci s and m (a sphere when s = m) gets the same value. The
network consumes the *envelope* of each kernel (the magnitude of its analytic signal), which
removes the 19-32 kHz carrier so that a reflector gives one smooth shell instead of a fringe
pattern at the 1-2 cm wavelength, far below the 5 cm voxel.

Time axis: kernel sample n is at time n / sample_rate_hz + start_time_s after emission
(start_time_s = 0 for the project's kernels and the PoseKernel dataset's rir.npy).

Both functions are plain differentiable torch operations; run them on the device of the network.
"""
from __future__ import annotations

import math

import torch

from core.errors import InputError

# Pairs are processed in chunks so that each chunk's (B, pairs, voxels) work tensors hold at most
# this many elements (~16 MB of float32 each); the full 70 x 70 x 50 grid with 16 pairs is 3.9 M.
DEFAULT_MAX_CHUNK_ELEMENTS = 4_000_000


class EncodingInputError(InputError):
    """An encoding was given tensors of the wrong shape or impossible values."""


def kernel_envelope(kernels: torch.Tensor) -> torch.Tensor:
    """Envelope of each kernel: the magnitude of its analytic signal (FFT Hilbert transform).

    Same definition as ``abs(scipy.signal.hilbert(x))``: one-sided spectrum doubled, no padding.

    Args:
        kernels: (..., T) real kernels, time on the last axis (e.g. (B, P, T)).
    Returns:
        (..., T) non-negative envelopes, same dtype.
    """
    if kernels.is_complex() or kernels.ndim < 1 or kernels.shape[-1] < 1:
        raise EncodingInputError(f"kernels must be a real tensor (..., T), got {kernels.dtype} {tuple(kernels.shape)}")
    n = kernels.shape[-1]
    spectrum = torch.fft.fft(kernels, dim=-1)
    weights = torch.zeros(n, dtype=kernels.dtype, device=kernels.device)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[n // 2] = 1.0
        weights[1:n // 2] = 2.0
    else:
        weights[1:(n + 1) // 2] = 2.0
    analytic = torch.fft.ifft(spectrum * weights, dim=-1)
    return analytic.abs()


def round_trip_delay_s(speaker_pos_m: torch.Tensor, mic_pos_m: torch.Tensor, points_m: torch.Tensor,
                       speed_of_sound_m_s: torch.Tensor) -> torch.Tensor:
    """Eq. 5: speaker -> point -> microphone travel time.

    Args:
        speaker_pos_m: (B, P, 3) speaker of each pair.
        mic_pos_m: (B, P, 3) microphone of each pair.
        points_m: (B or 1, N, 3) points.
        speed_of_sound_m_s: (B,) speed of sound.
    Returns:
        (B, P, N) delays in seconds.
    """
    to_speaker = torch.linalg.vector_norm(points_m[:, None, :, :] - speaker_pos_m[:, :, None, :], dim=-1)
    to_mic = torch.linalg.vector_norm(points_m[:, None, :, :] - mic_pos_m[:, :, None, :], dim=-1)
    return (to_speaker + to_mic) / speed_of_sound_m_s[:, None, None]


def _sample_linear(signals: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of signals (B, P, T) at fractional sample positions (B, P, N);
    positions outside [0, T - 1] give 0."""
    num_samples = signals.shape[-1]
    inside = (position >= 0) & (position <= num_samples - 1)
    position = position.clamp(0, num_samples - 1)
    left = position.floor().clamp(max=max(num_samples - 2, 0)).long()
    right = (left + 1).clamp(max=num_samples - 1)
    frac = position - left.to(position.dtype)
    value = (1 - frac) * signals.gather(-1, left) + frac * signals.gather(-1, right)
    return value * inside.to(value.dtype)


def _speeds(speed_of_sound_m_s, envelopes: torch.Tensor, batch: int) -> torch.Tensor:
    """(B,) positive speeds of sound (one float for the whole batch is broadcast), dtype and device of ``envelopes``."""
    speed = torch.as_tensor(speed_of_sound_m_s, dtype=envelopes.dtype, device=envelopes.device).reshape(-1)
    if speed.numel() == 1:
        speed = speed.expand(batch)
    if speed.shape != (batch,) or not bool(torch.all(speed > 0)):
        raise EncodingInputError(f"speed_of_sound_m_s must be positive, one per frame (B = {batch},), got {tuple(speed.shape)}")
    return speed


def spatial_encoding(envelopes: torch.Tensor, speaker_pos_m: torch.Tensor, mic_pos_m: torch.Tensor,
                     voxel_centers_m: torch.Tensor, speed_of_sound_m_s, sample_rate_hz: float,
                     start_time_s: float = 0.0,
                     max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS) -> torch.Tensor:
    """Eq. 7: each pair's envelope read at every voxel's round-trip delay.

    Linear interpolation in time; a delay before the first or after the last sample gives 0.
    Differentiable with respect to the envelopes and the positions.

    Args:
        envelopes: (B, P, T) kernel envelopes (or raw kernels), one per speaker-microphone pair.
        speaker_pos_m: (B, P, 3) speaker of each pair, camera frame.
        mic_pos_m: (B, P, 3) microphone of each pair, camera frame (equal to the speaker for a
            co-located pair).
        voxel_centers_m: (B or 1, X, Y, Z, 3) voxel centres, camera frame.
        speed_of_sound_m_s: (B,) tensor or a float for the whole batch.
        sample_rate_hz: sampling rate of the kernels.
        start_time_s: time of sample 0 after emission.
        max_chunk_elements: bound on B * pairs * voxels per chunk of pairs (memory).
    Returns:
        (B, P, X, Y, Z) encodings, dtype and device of ``envelopes``.
    """
    if envelopes.ndim != 3:
        raise EncodingInputError(f"envelopes must have shape (B, P, T), got {tuple(envelopes.shape)}")
    batch, num_pairs, num_samples = envelopes.shape
    for name, pos in (("speaker_pos_m", speaker_pos_m), ("mic_pos_m", mic_pos_m)):
        if tuple(pos.shape) != (batch, num_pairs, 3):
            raise EncodingInputError(
                f"{name} must have shape (B, P, 3) = ({batch}, {num_pairs}, 3) to match envelopes, got {tuple(pos.shape)}"
            )
    if voxel_centers_m.ndim != 5 or voxel_centers_m.shape[-1] != 3 or voxel_centers_m.shape[0] not in (1, batch):
        raise EncodingInputError(
            f"voxel_centers_m must have shape (B or 1, X, Y, Z, 3) with B = {batch}, got {tuple(voxel_centers_m.shape)}"
        )
    if sample_rate_hz <= 0:
        raise EncodingInputError(f"sample_rate_hz={sample_rate_hz} must be positive")
    speed = _speeds(speed_of_sound_m_s, envelopes, batch)

    grid_shape = voxel_centers_m.shape[1:4]
    points = voxel_centers_m.reshape(voxel_centers_m.shape[0], -1, 3).to(envelopes.dtype)
    num_points = points.shape[1]
    speaker = speaker_pos_m.to(envelopes.dtype)
    mic = mic_pos_m.to(envelopes.dtype)

    pairs_per_chunk = max(1, max_chunk_elements // max(1, batch * num_points))
    chunks = []
    for first in range(0, num_pairs, pairs_per_chunk):
        pairs = slice(first, first + pairs_per_chunk)
        delay = round_trip_delay_s(speaker[:, pairs], mic[:, pairs], points, speed)  # (B, p, N)
        position = (delay - start_time_s) * sample_rate_hz
        chunks.append(_sample_linear(envelopes[:, pairs].contiguous(), position))
    return torch.cat(chunks, dim=1).reshape(batch, num_pairs, *grid_shape)


def spatial_encoding_indexed(envelopes: torch.Tensor, pair_index: torch.Tensor, speaker_pos_m: torch.Tensor,
                             mic_pos_m: torch.Tensor, points_m: torch.Tensor, speed_of_sound_m_s, sample_rate_hz: float,
                             start_time_s: float = 0.0,
                             max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS) -> torch.Tensor:
    """:func:`spatial_encoding` for a rig given as its transducers and the pairs' indices into them.

    Each transducer's distance to every point is computed once and shared by all its pairs (a rig of 4
    speakers and 4 microphones has 8 distance fields, not 2 x 16); the values equal :func:`spatial_encoding`'s
    with the pairs' gathered positions.

    Args:
        envelopes: (B, P, T) one envelope per pair.
        pair_index: (B, P, 2) (speaker, microphone) index of each pair; indices are clamped into range, so
            padded pairs read a real transducer (mask them afterwards).
        speaker_pos_m: (B, S, 3) speakers; mic_pos_m: (B, M, 3) microphones, camera frame.
        points_m: (B or 1, *G, 3) points (any number of grid axes).
        speed_of_sound_m_s, sample_rate_hz, start_time_s, max_chunk_elements: as for :func:`spatial_encoding`.
    Returns:
        (B, P, *G) encodings, dtype and device of ``envelopes``.
    """
    if envelopes.ndim != 3 or pair_index.shape != (*envelopes.shape[:2], 2):
        raise EncodingInputError(f"envelopes (B, P, T) and pair_index (B, P, 2) must agree, got "
                                 f"{tuple(envelopes.shape)} and {tuple(pair_index.shape)}")
    batch, num_pairs = envelopes.shape[:2]
    speed = _speeds(speed_of_sound_m_s, envelopes, batch)
    grid_shape = points_m.shape[1:-1]
    points = points_m.reshape(points_m.shape[0], -1, 3).to(envelopes.dtype)

    def distances(transducers: torch.Tensor, column: int) -> torch.Tensor:     # (B, P, N) via (B, S, N)
        fields = torch.cdist(transducers.to(envelopes.dtype), points.expand(batch, -1, -1),
                              compute_mode="donot_use_mm_for_euclid_dist")   # exact, not |a|^2 + |b|^2 - 2ab
        index = pair_index[..., column].long().clamp(0, transducers.shape[1] - 1)
        return fields, index

    speaker_fields, speaker_index = distances(speaker_pos_m, 0)
    mic_fields, mic_index = distances(mic_pos_m, 1)
    scale = (sample_rate_hz / speed)[:, None, None]
    pairs_per_chunk = max(1, max_chunk_elements // max(1, batch * points.shape[1]))
    chunks = []
    for first in range(0, num_pairs, pairs_per_chunk):
        pairs = slice(first, first + pairs_per_chunk)
        path = (torch.gather(speaker_fields, 1, speaker_index[:, pairs, None].expand(-1, -1, points.shape[1]))
                + torch.gather(mic_fields, 1, mic_index[:, pairs, None].expand(-1, -1, points.shape[1])))
        chunks.append(_sample_linear(envelopes[:, pairs].contiguous(), path * scale - start_time_s * sample_rate_hz))
    return torch.cat(chunks, dim=1).reshape(batch, num_pairs, *grid_shape)


def antialiased_envelope(envelopes: torch.Tensor, voxel_size_m: float, speed_of_sound_m_s: float,
                         sample_rate_hz: float) -> torch.Tensor:
    """Envelopes widened by a sliding maximum so that a voxel grid cannot step over their peaks.

    A voxel centre lies within half a voxel diagonal, sqrt(3)/2 * a, of any point of its voxel, and a
    round-trip delay changes by at most 2/c per metre moved (|grad t_X| = |u_s + u_m| / c <= 2 / c,
    with u_s, u_m the unit vectors to the speaker and microphone). So the delay at the voxel nearest
    to a reflector differs from the reflector's by at most sqrt(3) * a / c, and the maximum of the
    envelope over that many samples either side of each sample keeps the reflector's full peak at its
    nearest voxel. Without it a 3 kHz-wide pulse (a few centimetres of range) falls between the
    centres of 11 cm voxels.

    Args:
        envelopes: (B, P, T) kernel envelopes.
        voxel_size_m: voxel edge of the grid the envelopes will be read on.
        speed_of_sound_m_s: the lowest speed of sound of the batch (the widest window).
        sample_rate_hz: sampling rate of the kernels.
    Returns:
        (B, P, T) widened envelopes (unchanged when the window is under one sample).
    """
    if envelopes.ndim != 3:
        raise EncodingInputError(f"envelopes must have shape (B, P, T), got {tuple(envelopes.shape)}")
    if not voxel_size_m > 0 or not speed_of_sound_m_s > 0 or not sample_rate_hz > 0:
        raise EncodingInputError(f"voxel_size_m={voxel_size_m!r}, speed_of_sound_m_s={speed_of_sound_m_s!r} and "
                                 f"sample_rate_hz={sample_rate_hz!r} must all be positive")
    half_width = int(math.ceil(math.sqrt(3.0) * voxel_size_m / speed_of_sound_m_s * sample_rate_hz))
    if half_width < 1:
        return envelopes
    b, p, t = envelopes.shape
    widened = torch.nn.functional.max_pool1d(envelopes.reshape(b * p, 1, t), kernel_size=2 * half_width + 1,
                                             stride=1, padding=half_width)
    return widened.reshape(b, p, t)


def pair_statistics(encodings: torch.Tensor, pair_mask: torch.Tensor, log_floor: float = 1e-3) -> torch.Tensor:
    """Order-invariant statistics over the pairs present: max, mean, standard deviation, mean of logs.

    Any number and order of pairs gives the same four channels, and the cost of what follows does not
    grow with the pair count. The mean of logs is the log of the geometric mean: large only where
    every pair agrees that something reflects (an intersection of shells), which the max and the mean
    cannot say.

    Args:
        encodings: (B, P, ...) each pair's encoding (e.g. (B, P, X, Y, Z) from :func:`spatial_encoding`).
        pair_mask: (B, P) bool, True for the pairs present.
        log_floor: added before the logarithm (envelopes are normalised to about unit RMS).
    Returns:
        (B, 4, ...) channels max, mean, std, mean of log(floor + value); zeros for a frame with no pair.
    """
    if pair_mask.shape != encodings.shape[:2]:
        raise EncodingInputError(f"pair_mask has shape {tuple(pair_mask.shape)}; it must be (B, P) = "
                                 f"{tuple(encodings.shape[:2])} to match the encodings")
    shape = (*pair_mask.shape, *([1] * (encodings.ndim - 2)))
    weight = pair_mask.reshape(shape).to(encodings.dtype)
    count = weight.sum(1).clamp(min=1.0)
    mean = (encodings * weight).sum(1) / count
    variance = (((encodings - mean[:, None]) ** 2) * weight).sum(1) / count
    maximum = torch.where(weight.bool(), encodings, torch.full_like(encodings, -torch.inf)).amax(1)
    maximum = torch.where(torch.isfinite(maximum), maximum, torch.zeros_like(maximum))
    logs = (torch.log(log_floor + encodings.clamp(min=0)) * weight).sum(1) / count
    return torch.stack([maximum, mean, variance.clamp(min=0).sqrt(), logs], dim=1)
