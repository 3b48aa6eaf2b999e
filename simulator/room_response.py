"""Empty-room impulse responses (image-source model) and the body's shadow on them.

One :class:`RoomAcoustics` is computed per room scene and rig by :func:`compute_room_acoustics`
and reused for every frame (every body pose) of that scene:

* ``impulse_responses`` (S, M, T): the empty room's response from every speaker to every
  microphone, with the conventions of ``simulator.body_echo`` (t = 0 at emission, sample n is
  t = n / fs, a direct path is a band-limited delta of area 1 / (4 pi d), band limit
  ``output_lowpass``: flat to 0.4 fs, raised cosine to Nyquist), so body echoes add to it.
* ``paths``: every image-source path kept (direct path included) with its polyline from the
  speaker through its reflection points to the microphone, so that the body can remove it.
* :meth:`RoomAcoustics.shadow_correction`: the response to add because a body blocks paths.
* :meth:`RoomAcoustics.first_order_images`: mirror images of the transducers across the walls,
  for the body-room multipath computed by the caller.

Physics (pyroomacoustics' image-source model)
---------------------------------------------
The image sources, their reflection orders and their per-octave-band wall damping
(product of sqrt(1 - alpha_b) over the walls hit) come from pyroomacoustics' ISM
(``room.image_source_model()``; ``pra.ShoeBox`` for shoeboxes, the general visibility-checked
``pra.Room`` otherwise), with the room built by ``Room.to_pyroomacoustics`` (9 octave bands
125 Hz - 32 kHz, ISO 9613-1 air absorption, c from the temperature). The responses are then
synthesised here, with pyroomacoustics' own per-path formula and band split, but in float64, at
this package's band limit and without pyroomacoustics' 40-sample filter delay:

    H_path(f) = exp(-j 2 pi f d / c) / (4 pi d) * sum_k H_k(f) damping(f_k) exp(-a(f_k) d / 2) * LP(f)

where d is the image-to-microphone distance and LP = ``output_lowpass``. The wall damping
damping(f) = sum_b G_b(f)^2 damping_b blends the octave bands as pyroomacoustics' (Antoni)
filter bank does (G_b^2 its zero-phase band responses, summing to 1). Air absorption, though,
is not taken per octave band: at ultrasound it changes too fast within a band (ISO 9613-1 at
20 C, 50 % RH: 0.48 dB/m at 19 kHz, 1.02 dB/m at 32 kHz; pyroomacoustics' octave value at
32 kHz would over-attenuate a 27 kHz path 5 m long by ~1 dB). So the response is synthesised on
*synthesis nodes* f_k (the octave centres below 16 kHz, every 1 kHz from 16 to 36 kHz, then
Nyquist) with piecewise-linear hats H_k(f) (a partition of unity) and each node carries the exact
ISO energy coefficient a(f_k) (``rooms.air.air_absorption_energy_per_m``) for the scene's
temperature and humidity: between nodes 1 kHz apart the interpolated attenuation is exact to
well under 0.1 dB for paths up to 30 m.

Note on amplitudes: pyroomacoustics 0.10's ``compute_rir`` weights a path by
damping / d, without the 1 / (4 pi) of the free-field Green's function; the responses here carry
the 1 / (4 pi d) of ``body_echo`` (pyroomacoustics' RIR = 4 pi x these, 40 samples later,
checked in the tests).

Only paths that arrive inside the window (d / c * fs < n_samples + 48, the low-pass kernel's
half width) are kept: later ones cannot contribute to the T samples returned.

Shadowing
---------
Every kept path has legs (straight segments between the speaker, the reflection points and
the microphone). In a shoebox they come from unfolding: the straight line from the image source
to the microphone crosses the cell boundaries x = k Lx, y = k Ly, z = k Lz at the reflections,
and folding the line back into the room gives the polyline. In a general room they are traced
back from the microphone: the segment towards the image leaves the room through its generating
wall (pyroomacoustics' ``walls``), the image's parent is its mirror across that wall, and so on
down to the speaker. A path is blocked when one of its legs crosses the body mesh (ray casting
with Embree through ``FacetMesh.intersector``, after a cheap pruning of the legs by the body's
bounding boxes sliced in z). ``shadow_correction`` returns -attenuation x the sum of the blocked
paths' responses, synthesised by the very same code as ``impulse_responses`` (so attenuation = 1
cancels them exactly, at all frequencies). This is geometric shadowing: diffraction around the
body (which fills the shadow in over ~ a Fresnel zone, a few cm at 25 kHz) is not modelled.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
import trimesh
from numba import njit

from rooms.air import air_absorption_energy_per_m
from rooms.geometry import Room
from rooms.validation import validate_inside

from .body_echo import PASSBAND_FRACTION, FacetMesh

__all__ = [
    "ECHO_BAND_HZ",
    "MIN_TRANSDUCER_DISTANCE_M",
    "FirstOrderImages",
    "ImagePaths",
    "RoomAcoustics",
    "compute_room_acoustics",
]

#: The chirps' band (Hz); used for band-averaged wall reflection coefficients.
ECHO_BAND_HZ = (19_000.0, 32_000.0)
#: A speaker and a microphone closer than this are rejected (pyroomacoustics divides by d).
MIN_TRANSDUCER_DISTANCE_M = 0.005
#: Half width (samples) of the band-limited delta kernel; its tails beyond are < 1e-4.
_KERNEL_HALF_WIDTH = 48
#: Number of z slices of the body's bounding box used to prune legs before ray casting.
_BODY_SLICES = 8
#: An image chain traced back must land on its speaker within this distance (m).
_TRACE_TOLERANCE_M = 1e-3
#: Largest number of image sources per speaker allowed in the general (non-shoebox) model.
_MAX_GENERAL_IMAGES = 2_000_000


# --------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------


@njit(cache=True)
def _deposit_paths(out, channels, delays_samples, amplitudes, weights, half_width, lp_a, lp_b):
    """Add band-limited deltas to ``out`` (C, B, N), circularly (negative times wrap).

    The kernel is the impulse response of ``output_lowpass`` (a raised-cosine spectrum, flat to
    ``lp_a - lp_b`` and zero beyond ``lp_a + lp_b`` in units of fs), sampled at n - delay:
    h(u) = lp_a sinc(lp_a u) cos(pi lp_b u) / (1 - (2 lp_b u)^2).
    """
    n_fft = out.shape[2]
    n_bands = out.shape[1]
    for k in range(len(delays_samples)):
        w = weights[k]
        if w == 0.0:
            continue
        c = channels[k]
        x = delays_samples[k]
        n0 = int(math.floor(x))
        for n in range(n0 - half_width + 1, n0 + half_width + 1):
            u = n - x
            au = lp_a * u
            if abs(au) < 1e-12:
                sinc = 1.0
            else:
                sinc = math.sin(math.pi * au) / (math.pi * au)
            den = 1.0 - (2.0 * lp_b * u) ** 2
            if abs(den) < 1e-9:
                taper = math.pi / 4.0
            else:
                taper = math.cos(math.pi * lp_b * u) / den
            tap = w * lp_a * sinc * taper
            idx = n % n_fft
            for b in range(n_bands):
                out[c, b, idx] += tap * amplitudes[k, b]


@njit(cache=True)
def _segment_hits_box(sx, sy, sz, ex, ey, ez, lo, hi):
    t0 = 0.0
    t1 = 1.0
    s = (sx, sy, sz)
    e = (ex, ey, ez)
    for d in range(3):
        dd = e[d] - s[d]
        if abs(dd) < 1e-15:
            if s[d] < lo[d] or s[d] > hi[d]:
                return False
        else:
            ta = (lo[d] - s[d]) / dd
            tb = (hi[d] - s[d]) / dd
            if ta > tb:
                ta, tb = tb, ta
            if ta > t0:
                t0 = ta
            if tb < t1:
                t1 = tb
            if t0 > t1:
                return False
    return True


@njit(cache=True)
def _segments_near_body(starts, ends, box_lo, box_hi, slice_lo, slice_hi, leg_mask):
    """(L,) bool: legs (with leg_mask) crossing the body's box and one of its z slices."""
    n = starts.shape[0]
    hit = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if not leg_mask[i]:
            continue
        sx, sy, sz = starts[i, 0], starts[i, 1], starts[i, 2]
        ex, ey, ez = ends[i, 0], ends[i, 1], ends[i, 2]
        if not _segment_hits_box(sx, sy, sz, ex, ey, ez, box_lo, box_hi):
            continue
        for j in range(slice_lo.shape[0]):
            if _segment_hits_box(sx, sy, sz, ex, ey, ez, slice_lo[j], slice_hi[j]):
                hit[i] = True
                break
    return hit


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePaths:
    """All image-source paths kept, for all pairs, sorted by pair (p = speaker * M + microphone).

    Attributes:
        pair: (P,) int64 pair index of each path; ``pair_offsets`` (S*M + 1,) delimit each
            pair's paths (``pair_offsets[p]:pair_offsets[p + 1]``).
        speaker, microphone: (P,) int64.
        order: (P,) int64 reflection order (0 = direct path).
        image_m: (P, 3) image-source position (room frame, metres).
        length_m: (P,) path length d = |image - microphone|; delay_s = d / c.
        delay_s: (P,) arrival time.
        band_amplitudes: (P, N) amplitude of the path at each synthesis node
            (``band_centers_hz``): damping(f_k) * exp(-a(f_k) d / 2) / (4 pi d).
        band_centers_hz: (N,) the synthesis nodes (Hz).
        leg_start_m, leg_end_m: (L, 3) the legs of all paths (speaker -> reflection points ->
            microphone for shoeboxes; traced back from the microphone in general rooms, the
            direction does not matter); ``leg_path`` (L,) the path of each leg.
    """

    pair: np.ndarray
    pair_offsets: np.ndarray
    speaker: np.ndarray
    microphone: np.ndarray
    order: np.ndarray
    image_m: np.ndarray
    length_m: np.ndarray
    delay_s: np.ndarray
    band_amplitudes: np.ndarray
    band_centers_hz: np.ndarray
    leg_start_m: np.ndarray
    leg_end_m: np.ndarray
    leg_path: np.ndarray

    @property
    def n_paths(self) -> int:
        return len(self.pair)

    def of_pair(self, speaker: int, microphone: int, n_microphones: int) -> slice:
        """Slice of the paths of one (speaker, microphone) pair."""
        p = int(speaker) * int(n_microphones) + int(microphone)
        return slice(int(self.pair_offsets[p]), int(self.pair_offsets[p + 1]))

    def legs_of(self, path: int) -> tuple[np.ndarray, np.ndarray]:
        """(start (n, 3), end (n, 3)) of the legs of one path (n = order + 1)."""
        sel = self.leg_path == int(path)
        return self.leg_start_m[sel], self.leg_end_m[sel]


@dataclass(frozen=True)
class FirstOrderImages:
    """Mirror images of the transducers across the room's shell walls.

    Attributes:
        speaker_images_m: (S, W, 3) mirror of each speaker across each wall's plane.
        microphone_images_m: (M, W, 3) same for the microphones.
        wall_reflection: (W,) pressure reflection coefficient of each wall in ``ECHO_BAND_HZ``:
            the band average of the image-source model's own gain,
            mean_f sum_b G_b(f)^2 sqrt(1 - alpha_b) over 19-32 kHz (alpha per pyroomacoustics
            octave band; this is sqrt(1 - alpha) with alpha interpolated between the 16 and
            32 kHz bands the way the room response interpolates it).
        wall_names: (W,) surface names (shoebox: west x=0, east x=Lx, south y=0, north y=Ly,
            floor z=0, ceiling z=Lz).
        wall_points_m: (W, 3) a point of each wall's plane; wall_normals: (W, 3) unit normals
            pointing out of the room.
        wall_polygons_m: tuple of (K_w, 3) wall polygons. An image across wall w is a real
            first-order path only if the specular point lies on the polygon: always true for a
            shoebox (and any convex room with both points inside); in non-convex rooms the
            caller must check (``specular_points_m``).
    """

    speaker_images_m: np.ndarray
    microphone_images_m: np.ndarray
    wall_reflection: np.ndarray
    wall_names: tuple[str, ...]
    wall_points_m: np.ndarray
    wall_normals: np.ndarray
    wall_polygons_m: tuple[np.ndarray, ...]

    def specular_points_m(self, image_m: np.ndarray, point_m: np.ndarray, wall: int) -> np.ndarray:
        """Where the segment from ``image_m`` (N, 3), mirrored across ``wall``, to ``point_m``
        (N, 3) meets the wall's plane: the reflection point of that first-order path."""
        image = np.atleast_2d(np.asarray(image_m, dtype=float))
        point = np.atleast_2d(np.asarray(point_m, dtype=float))
        n = self.wall_normals[wall]
        num = (self.wall_points_m[wall] - point) @ n
        den = (image - point) @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = num / den
        return point + t[:, None] * (image - point)


@dataclass(eq=False)
class RoomAcoustics:
    """Empty-room acoustics of one room and rig: computed once, reused for every frame.

    Attributes:
        impulse_responses: (S, M, T) float64 empty-room responses (conventions: module docstring).
        paths: :class:`ImagePaths` of all pairs (the paths summed in ``impulse_responses``).
        speaker_positions_m: (S, 3); microphone_positions_m: (M, 3).
        sample_rate_hz, speed_of_sound_m_s, n_samples, max_order, temperature_c,
        relative_humidity_pct, include_furniture: as used.
        wall_names: (W,) names of the surfaces the image-source model used (pyroomacoustics'
            walls: the room's shell first, then furniture faces when include_furniture).
        wall_absorption: (W, B) their energy absorption per octave band.
        shell_polygons_m: the room shell's wall polygons (K_w, 3) (the first W_shell walls),
            shell_normals (W_shell, 3) unit, out of the room.

    Plain numpy data only (no room object), so it pickles (e.g. to Ray workers).
    """

    impulse_responses: np.ndarray
    paths: ImagePaths
    speaker_positions_m: np.ndarray
    microphone_positions_m: np.ndarray
    sample_rate_hz: float
    speed_of_sound_m_s: float
    n_samples: int
    max_order: int
    temperature_c: float
    relative_humidity_pct: float
    include_furniture: bool
    wall_names: tuple[str, ...]
    wall_absorption: np.ndarray
    shell_polygons_m: tuple[np.ndarray, ...]
    shell_normals: np.ndarray
    _n_fft: int = field(repr=False)
    _band_gains: np.ndarray = field(repr=False)  # (B, n_fft // 2 + 1) G_b(f)^2 on the FFT grid
    _synthesis_gains: np.ndarray = field(repr=False)  # (N, n_fft // 2 + 1) hats H_k(f)

    @property
    def n_speakers(self) -> int:
        return len(self.speaker_positions_m)

    @property
    def n_microphones(self) -> int:
        return len(self.microphone_positions_m)

    # -- synthesis -----------------------------------------------------------------------

    def band_gains(self, frequencies_hz) -> np.ndarray:
        """(B, F) G_b(f)^2: weight of octave band b at each frequency (they sum to 1)."""
        f = np.abs(np.asarray(frequencies_hz, dtype=float))
        grid = np.fft.rfftfreq(self._n_fft, 1.0 / self.sample_rate_hz)
        return np.stack([np.interp(f, grid, g) for g in self._band_gains])

    def path_impulse_responses(self, path_indices, weights=1.0, period: int | None = None) -> np.ndarray:
        """(S, M, T) sum of weights_k x (response of path k), with exactly the synthesis of
        ``impulse_responses`` (all paths with weight 1 give ``impulse_responses``).

        path_indices: (K,) indices into ``paths`` (or a (P,) bool mask); weights: scalar or (K,).
        period: if given, the responses are returned folded into this many samples (the
            steady state of a signal repeated every ``period`` samples), computed directly on
            that circular grid and only within the chirps' band: the synthesis nodes from 16 to
            36 kHz, so the result equals the folded full synthesis between 17 and 35 kHz and is
            zero below 8 kHz (where the 16 kHz node's hat starts). Several times faster: for
            per-frame corrections.
        """
        idx = np.asarray(path_indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).ravel()
        weights = np.broadcast_to(np.asarray(weights, dtype=float), idx.shape)
        return _synthesize(self, idx, weights, period)

    # -- shadowing -----------------------------------------------------------------------

    def blocked_paths(self, body_mesh, *, max_order: int | None = None) -> np.ndarray:
        """(P,) bool: paths with a leg that crosses the body mesh.

        body_mesh: ``trimesh.Trimesh`` or ``FacetMesh`` in the room frame (metres).
        max_order: only paths up to this reflection order are tested (None: all kept paths).
        """
        mesh = _as_facet_mesh(body_mesh)
        paths = self.paths
        blocked = np.zeros(paths.n_paths, dtype=bool)
        if paths.n_paths == 0:
            return blocked
        if max_order is None:
            leg_mask = np.ones(len(paths.leg_path), dtype=bool)
        else:
            if isinstance(max_order, bool) or not isinstance(max_order, (int, np.integer)) or max_order < 0:
                raise ValueError(f"max_order = {max_order!r}; give a non-negative integer or None (all orders).")
            leg_mask = paths.order[paths.leg_path] <= int(max_order)
        box_lo, box_hi, slice_lo, slice_hi = _body_boxes(mesh)
        near = _segments_near_body(paths.leg_start_m, paths.leg_end_m, box_lo, box_hi, slice_lo, slice_hi, leg_mask)
        candidates = np.flatnonzero(near)
        if len(candidates) == 0:
            return blocked
        starts = paths.leg_start_m[candidates]
        vectors = paths.leg_end_m[candidates] - starts
        lengths = np.linalg.norm(vectors, axis=1)
        ok = lengths > 1e-9
        candidates, starts, vectors, lengths = candidates[ok], starts[ok], vectors[ok], lengths[ok]
        if len(candidates) == 0:
            return blocked
        directions = vectors / lengths[:, None]
        _, ray_index, locations = mesh.intersector.intersects_id(
            starts, directions, multiple_hits=False, return_locations=True
        )
        if len(ray_index) == 0:
            return blocked
        hit_distance = np.linalg.norm(locations - starts[ray_index], axis=1)
        hit_rays = ray_index[hit_distance < lengths[ray_index]]
        blocked[paths.leg_path[candidates[hit_rays]]] = True
        return blocked

    def shadow_correction(self, body_mesh, *, attenuation: float = 1.0, max_order: int | None = None,
                          period: int | None = None) -> np.ndarray:
        """(S, M, T) response to ADD to ``impulse_responses`` because the body blocks paths.

        Every image-source path (direct path included) whose polyline crosses the body
        contributes -attenuation x its own response (attenuation = 1 removes it, 0.5 halves it).

        body_mesh: ``trimesh.Trimesh`` or ``FacetMesh``, room frame, metres. Pass a
            ``FacetMesh`` when you also compute the body echo: its ray intersector is reused.
        attenuation: in [0, 1], fraction of the blocked paths' pressure removed.
        max_order: test only paths up to this reflection order (None: every kept path).
        period: return the correction folded into this many samples, in band only (see
            ``path_impulse_responses``); (S, M, period).
        """
        if isinstance(attenuation, bool) or not np.isscalar(attenuation) or not (0.0 <= float(attenuation) <= 1.0):
            raise ValueError(f"attenuation = {attenuation!r}; give a number in [0, 1] (1 removes blocked paths).")
        blocked = self.blocked_paths(body_mesh, max_order=max_order)
        if float(attenuation) == 0.0 or not blocked.any():
            length = self.n_samples if period is None else int(period)
            return np.zeros((self.n_speakers, self.n_microphones, length))
        return self.path_impulse_responses(np.flatnonzero(blocked), -float(attenuation), period)

    # -- first-order images --------------------------------------------------------------

    def wall_reflection_at(self, frequencies_hz) -> np.ndarray:
        """(W_shell, F) pressure reflection coefficient of each shell wall at ``frequencies_hz``,
        as the image-source model interpolates it: sum_b G_b(f)^2 sqrt(1 - alpha_b)."""
        n_shell = len(self.shell_polygons_m)
        gains = self.band_gains(frequencies_hz)  # (B, F)
        return np.sqrt(np.clip(1.0 - self.wall_absorption[:n_shell], 0.0, 1.0)) @ gains

    def first_order_images(self) -> FirstOrderImages:
        """Mirror images of speakers and microphones across every wall of the room's shell
        (not furniture), with each wall's band-averaged reflection coefficient (19-32 kHz)."""
        normals = self.shell_normals
        points = np.stack([polygon[0] for polygon in self.shell_polygons_m])

        def mirror(positions):
            dist = np.einsum("pwd,wd->pw", positions[:, None, :] - points[None], normals)
            return positions[:, None, :] - 2.0 * dist[..., None] * normals[None]

        band = np.linspace(ECHO_BAND_HZ[0], ECHO_BAND_HZ[1], 131)
        return FirstOrderImages(
            speaker_images_m=mirror(self.speaker_positions_m),
            microphone_images_m=mirror(self.microphone_positions_m),
            wall_reflection=self.wall_reflection_at(band).mean(axis=1),
            wall_names=self.wall_names[: len(points)],
            wall_points_m=points,
            wall_normals=normals,
            wall_polygons_m=self.shell_polygons_m,
        )


# --------------------------------------------------------------------------------------
# construction
# --------------------------------------------------------------------------------------


def compute_room_acoustics(
    room: Room,
    speaker_positions_m,
    microphone_positions_m,
    *,
    sample_rate_hz: float = 96_000.0,
    n_samples: int,
    max_order: int = 17,
    temperature_c: float = 20.0,
    relative_humidity_pct: float = 50.0,
    include_furniture: bool = False,
    air_absorption: bool = True,
) -> RoomAcoustics:
    """Image-source responses of an empty room for every speaker-microphone pair.

    Args:
        room: a ``rooms`` room (``ShoeboxRoom`` uses pyroomacoustics' fast shoebox ISM; other
            rooms, and shoeboxes with ``include_furniture=True``, the general ISM whose cost
            grows as (walls)**order: keep ``max_order`` at 2-4 there).
        speaker_positions_m: (S, 3) room frame; microphone_positions_m: (M, 3). All inside the
            room's air; a microphone less than 5 mm from a speaker is rejected (offset
            co-located microphones, e.g. by 2 cm).
        sample_rate_hz: output sample rate (an integer number of Hz).
        n_samples: T, length of the responses; must hold every direct path. Paths arriving
            after T are dropped.
        max_order: highest reflection order (>= 0).
        temperature_c, relative_humidity_pct: air (speed of sound, ISO 9613-1 absorption).
        include_furniture: furniture surfaces reflect too (general ISM).
        air_absorption: ISO 9613-1 air absorption (exact per synthesis node); False for none.

    Warns (RuntimeWarning) when a shoebox's order max_order + 1 paths would arrive inside the
    window: the late part of the responses then lacks reflections.
    """
    import pyroomacoustics as pra

    if not isinstance(room, Room):
        raise ValueError(f"room is a {type(room).__name__}; pass a rooms.ShoeboxRoom or rooms.PolyhedralRoom.")
    if isinstance(max_order, bool) or not isinstance(max_order, (int, np.integer)) or max_order < 0:
        raise ValueError(f"max_order = {max_order!r}; give a non-negative integer (17 for a shoebox, 2-4 otherwise).")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples = {n_samples!r}; give a positive integer number of samples, e.g. 9600.")
    if (
        isinstance(sample_rate_hz, bool)
        or not np.isscalar(sample_rate_hz)
        or not np.isfinite(sample_rate_hz)
        or sample_rate_hz < 1000
        or float(sample_rate_hz) != int(sample_rate_hz)
    ):
        raise ValueError(f"sample_rate_hz = {sample_rate_hz!r}; give an integer sample rate in Hz, e.g. 96000.")
    fs = float(sample_rate_hz)
    max_order = int(max_order)
    n_samples = int(n_samples)
    speakers = validate_inside(room, speaker_positions_m, "speaker_positions_m")
    microphones = validate_inside(room, microphone_positions_m, "microphone_positions_m")
    distances = np.linalg.norm(speakers[:, None, :] - microphones[None, :, :], axis=2)
    too_close = np.argwhere(distances < MIN_TRANSDUCER_DISTANCE_M)
    if len(too_close):
        s, m = too_close[0]
        p = microphones[m]
        raise ValueError(
            f"microphone_positions_m[{m}] = ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) is {distances[s, m] * 1000:.1f} mm "
            f"from speaker_positions_m[{s}]; the image-source model divides by that distance. Offset the "
            f"microphone from its speaker by at least {MIN_TRANSDUCER_DISTANCE_M * 1000:.0f} mm (2 cm is usual)."
        )

    pra_room = room.to_pyroomacoustics(
        fs, max_order, temperature_c, relative_humidity_pct, air_absorption=True, include_furniture=include_furniture
    )
    c = float(pra_room.c)
    latest_direct = distances.max() / c * fs
    if latest_direct >= n_samples:
        raise ValueError(
            f"n_samples = {n_samples} is too short: the longest direct path ({distances.max():.2f} m) arrives at "
            f"sample {latest_direct:.0f}; give at least {int(latest_direct) + _KERNEL_HALF_WIDTH + 1} samples."
        )
    if not isinstance(pra_room, pra.ShoeBox):
        n_walls = len(pra_room.walls)
        n_images = n_walls * max(n_walls - 1, 1) ** max(max_order - 1, 0) if max_order > 0 else 1
        if n_images > _MAX_GENERAL_IMAGES:
            raise ValueError(
                f"max_order = {max_order} with {n_walls} reflecting surfaces means up to {n_images:.2g} image sources "
                f"per speaker in the general image-source model; lower max_order (2-4), or pass "
                f"include_furniture=False for a shoebox (fast model, order 17 is fine)."
            )
    for s in speakers:
        pra_room.add_source(s)
    pra_room.add_microphone_array(np.ascontiguousarray(microphones.T))
    pra_room.image_source_model()

    bands = pra_room.octave_bands
    centers = np.asarray(bands.centers, dtype=float)
    n_bands = len(centers)
    n_fft = _fft_length(n_samples)
    band_gains = _octave_band_gains(bands, n_fft, fs, n_bands)
    nodes = synthesis_nodes_hz(centers, fs)
    grid_hz = np.fft.rfftfreq(n_fft, 1.0 / fs)
    node_weights = np.stack([np.interp(nodes, grid_hz, g) for g in band_gains])  # (B, N) G_b(f_k)^2
    air = air_absorption_energy_per_m(nodes, temperature_c, relative_humidity_pct)  # (N,) exact ISO
    if not air_absorption:
        air = np.zeros_like(air)
    is_shoebox = isinstance(pra_room, pra.ShoeBox)
    surfaces = room.all_surfaces(include_furniture) if not is_shoebox else list(room.surfaces)
    wall_names = tuple(w.name for w in pra_room.walls)
    wall_absorption = np.stack([np.asarray(w.absorption, dtype=float) * np.ones(n_bands) for w in pra_room.walls])
    if not is_shoebox and len(surfaces) != len(pra_room.walls):  # pragma: no cover - defensive
        raise RuntimeError("room surfaces and pyroomacoustics walls differ; cannot trace paths.")

    max_delay = n_samples + _KERNEL_HALF_WIDTH
    n_mics = len(microphones)
    per_pair = []
    for si, source in enumerate(pra_room.sources):
        for mi in range(n_mics):
            mic = microphones[mi]
            if is_shoebox:
                orders_xyz = np.asarray(source.orders_xyz, dtype=np.int64).T  # (K, 3)
                images = _shoebox_images(speakers[si], room.dimensions_m, orders_xyz)
                damping = np.asarray(source.damping, dtype=float).T  # (K, B)
                gen_walls = None
            else:
                visible = np.asarray(pra_room.visibility[si][mi], dtype=bool)
                if source.images is None or visible.size == 0 or not visible.any():
                    per_pair.append(None)
                    continue
                images = np.asarray(source.images, dtype=float).T[visible]
                damping = np.asarray(source.damping, dtype=float).T[visible]
                orders_xyz = None
                gen_walls = np.asarray(source.walls, dtype=np.int64)[visible]
                orders = np.asarray(source.orders, dtype=np.int64)[visible]
            length = np.linalg.norm(images - mic, axis=1)
            keep = (length / c * fs < max_delay) & (length > 0)
            if is_shoebox:
                orders = np.abs(orders_xyz).sum(axis=1)
            images, damping, length, orders = images[keep], damping[keep], length[keep], orders[keep]
            amplitudes = (damping @ node_weights) * np.exp(-0.5 * air[None, :] * length[:, None]) / (
                4.0 * np.pi * length[:, None]
            )
            if is_shoebox:
                leg_s, leg_e, leg_p = _shoebox_legs(images, orders_xyz[keep], mic, room.dimensions_m)
            else:
                leg_s, leg_e, leg_p = _traced_legs(images, gen_walls[keep], orders, speakers[si], mic, surfaces)
            per_pair.append((images, length, orders, amplitudes, leg_s, leg_e, leg_p))

    paths = _assemble_paths(per_pair, len(speakers), n_mics, c, nodes, len(nodes))
    acoustics = RoomAcoustics(
        impulse_responses=np.zeros((len(speakers), n_mics, n_samples)),
        paths=paths,
        speaker_positions_m=speakers,
        microphone_positions_m=microphones,
        sample_rate_hz=fs,
        speed_of_sound_m_s=c,
        n_samples=n_samples,
        max_order=max_order,
        temperature_c=float(temperature_c),
        relative_humidity_pct=float(relative_humidity_pct),
        include_furniture=bool(include_furniture),
        wall_names=wall_names,
        wall_absorption=wall_absorption,
        shell_polygons_m=tuple(np.array(s.polygon_m, dtype=float) for s in room.surfaces),
        shell_normals=np.stack([np.asarray(s.normal, dtype=float) for s in room.surfaces]),
        _n_fft=n_fft,
        _band_gains=band_gains,
        _synthesis_gains=_hats(nodes, grid_hz),
    )
    acoustics.impulse_responses = acoustics.path_impulse_responses(np.arange(paths.n_paths), 1.0)

    if is_shoebox:
        earliest_m = _earliest_arrival_of_order(speakers, microphones, room.dimensions_m, max_order + 1)
        earliest = earliest_m / c * fs
        # Level of the first missing reflection against the shortest direct path: the most
        # reflective wall at every bounce, ISO air at the band's bottom (the least absorbed).
        best_reflection = float(np.sqrt(np.clip(1.0 - wall_absorption.min(axis=0), 0.0, 1.0)).max())
        missing_level = (
            best_reflection ** (max_order + 1)
            * math.exp(-0.5 * float(air_absorption_energy_per_m(ECHO_BAND_HZ[0], temperature_c, relative_humidity_pct))
                       * earliest_m * float(air_absorption))
            * distances.min() / earliest_m
        )
        if earliest < n_samples and missing_level > 1e-2:  # -40 dB: under the default sensor noise
            warnings.warn(
                f"max_order = {max_order} is too low for n_samples = {n_samples}: reflections of order "
                f"{max_order + 1} arrive from sample {earliest:.0f} on at up to {20 * math.log10(missing_level):.0f} dB "
                f"of the direct path and are missing; raise max_order or shorten n_samples.",
                RuntimeWarning,
                stacklevel=2,
            )
    return acoustics


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _fft_length(n_samples: int) -> int:
    # Twice the window: the low octave bands' zero-phase filters have tails of ~1/(band overlap)
    # (tens of ms) that must not wrap around into the window.
    n = scipy.fft.next_fast_len(2 * (n_samples + 2 * _KERNEL_HALF_WIDTH), real=True)
    while n % 2:
        n = scipy.fft.next_fast_len(n + 1, real=True)
    return n


def synthesis_nodes_hz(octave_centers_hz: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """Frequencies (Hz) at which path amplitudes are evaluated: octave centres below 16 kHz,
    every 1 kHz from 16 to 36 kHz (the chirps' band with margins), and Nyquist."""
    nyquist = sample_rate_hz / 2
    fine = np.arange(16_000.0, min(36_000.0, nyquist) + 1.0, 1_000.0)
    coarse = np.asarray(octave_centers_hz, dtype=float)
    return np.unique(np.r_[coarse[coarse < fine[0]], fine, nyquist])


def _hats(nodes_hz: np.ndarray, grid_hz: np.ndarray) -> np.ndarray:
    """(N, F) piecewise-linear interpolation basis on ``nodes_hz``: sum_k H_k(f) = 1 for every f."""
    eye = np.eye(len(nodes_hz))
    return np.ascontiguousarray(np.stack([np.interp(grid_hz, nodes_hz, row) for row in eye]))


def _octave_band_gains(bands, n_fft: int, fs: float, n_bands: int) -> np.ndarray:
    """(B, n_fft // 2 + 1) zero-phase gain of each pyroomacoustics octave band on the rfft grid.

    pyroomacoustics' Antoni filter bank analyses and re-synthesises with the window G_b, so a
    band's signal is G_b(f)^2 X(f) (sum_b G_b^2 = 1). Older filter banks (time-domain FIR
    applied in 'same' mode) are supported through their zero-phase frequency response.
    """
    if hasattr(bands, "_make_window_function"):
        window, *_ = bands._make_window_function(n_fft)
        gains = np.asarray(window, dtype=float) ** 2
    else:  # pragma: no cover - pyroomacoustics < 0.8
        filters = np.asarray(bands.filters, dtype=float)  # (K, B)
        k = filters.shape[0]
        padded = np.zeros((n_fft, filters.shape[1]))
        padded[:k] = filters
        padded = np.roll(padded, -((k - 1) // 2), axis=0)
        gains = np.real(np.fft.rfft(padded, axis=0)).T
    if gains.shape != (n_bands, n_fft // 2 + 1):  # pragma: no cover - defensive
        raise RuntimeError(f"unexpected octave band gains of shape {gains.shape}")
    return np.ascontiguousarray(gains)


def _synthesize(acoustics: RoomAcoustics, idx: np.ndarray, weights: np.ndarray, period: int | None = None) -> np.ndarray:
    S, M = acoustics.n_speakers, acoustics.n_microphones
    T = acoustics.n_samples if period is None else int(period)
    out = np.zeros((S * M, T))
    if len(idx) == 0:
        return out.reshape(S, M, T)
    paths = acoustics.paths
    n_fft = acoustics._n_fft
    gains = acoustics._synthesis_gains
    node_mask = np.ones(len(paths.band_centers_hz), dtype=bool)
    if period is not None:  # deposit circularly on the period, band nodes only (see path_impulse_responses)
        n_fft = T
        node_mask = (paths.band_centers_hz >= 16_000.0) & (paths.band_centers_hz <= 36_000.0)
        grid_hz = np.fft.rfftfreq(T, 1.0 / acoustics.sample_rate_hz)
        gains = _hats(paths.band_centers_hz, grid_hz)
    lp_a = 0.5 * (1.0 + PASSBAND_FRACTION)
    lp_b = 0.5 * (1.0 - PASSBAND_FRACTION)
    # One pair at a time: the per-node grid of all pairs at once would take hundreds of MB.
    for pair in np.unique(paths.pair[idx]):
        mine = paths.pair[idx] == pair
        sel, w = idx[mine], weights[mine]
        used = np.flatnonzero(np.any(paths.band_amplitudes[sel] != 0.0, axis=0) & node_mask)
        grid = np.zeros((1, len(used), n_fft))
        _deposit_paths(
            grid,
            np.zeros(len(sel), dtype=np.int64),
            paths.delay_s[sel] * acoustics.sample_rate_hz,
            np.ascontiguousarray(paths.band_amplitudes[sel][:, used]),
            np.ascontiguousarray(w, dtype=float),
            _KERNEL_HALF_WIDTH,
            lp_a,
            lp_b,
        )
        spectrum = np.einsum("bf,bf->f", scipy.fft.rfft(grid[0], axis=-1), gains[used])
        out[pair] = scipy.fft.irfft(spectrum, n_fft)[:T]
    return out.reshape(S, M, T)


def _shoebox_images(source: np.ndarray, dims: np.ndarray, orders_xyz: np.ndarray) -> np.ndarray:
    """(K, 3) float64 image positions for lattice indices (K, 3) (pyroomacoustics' formula)."""
    odd = (np.abs(orders_xyz) % 2) == 1
    return orders_xyz * dims + np.where(odd, dims - source, source)


def _fold(points: np.ndarray, dims: np.ndarray) -> np.ndarray:
    r = np.mod(points, 2.0 * dims)
    return np.where(r > dims, 2.0 * dims - r, r)


def _shoebox_legs(images: np.ndarray, orders_xyz: np.ndarray, mic: np.ndarray, dims: np.ndarray):
    """Legs of shoebox paths by unfolding: the line image -> mic crosses the cell walls at the
    reflections; folding its pieces back into the room gives the polyline."""
    n_paths = len(images)
    if n_paths == 0:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    orders = np.abs(orders_xyz).sum(axis=1)
    n_axis = max(int(np.abs(orders_xyz).max()), 1)
    j = np.arange(n_axis)
    direction = mic[None, :] - images  # (K, 3)
    ts = np.full((n_paths, 3, n_axis), np.inf)
    for d in range(3):
        n = orders_xyz[:, d][:, None]
        plane = np.where(n > 0, 1 + j[None, :], -j[None, :]) * dims[d]  # (K, n_axis)
        valid = j[None, :] < np.abs(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (plane - images[:, d][:, None]) / direction[:, d][:, None]
        ts[:, d, :] = np.where(valid, t, np.inf)
    ts = np.sort(ts.reshape(n_paths, -1), axis=1)[:, : max(int(orders.max()), 0)]
    ts = np.where(np.isfinite(ts), ts, 1.0)
    ts = np.concatenate([np.zeros((n_paths, 1)), ts, np.ones((n_paths, 1))], axis=1)  # (K, O + 2)
    points = _fold(images[:, None, :] + ts[..., None] * direction[:, None, :], dims)
    starts, ends = points[:, :-1], points[:, 1:]
    leg_index = np.arange(ts.shape[1] - 1)
    valid = leg_index[None, :] <= orders[:, None]
    path_of = np.broadcast_to(np.arange(n_paths)[:, None], valid.shape)
    return starts[valid], ends[valid], path_of[valid].astype(np.int64)


def _plane_frames(surfaces):
    """Per surface: origin, unit normal, in-plane axes u, v, and the polygon in (u, v)."""
    frames = []
    for surface in surfaces:
        poly = np.asarray(surface.polygon_m, dtype=float)
        n = np.asarray(surface.normal, dtype=float)
        origin = poly[0]
        u = poly[1] - poly[0]
        u = u - (u @ n) * n
        u /= np.linalg.norm(u)
        v = np.cross(n, u)
        frames.append((origin, n, u, v, np.stack([(poly - origin) @ u, (poly - origin) @ v], axis=1)))
    return frames


def _inside_polygon(points_2d: np.ndarray, polygon_2d: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Crossing-number point-in-polygon (N,) bool, with points within ``tol`` of an edge inside."""
    x, y = points_2d[:, 0][:, None], points_2d[:, 1][:, None]
    a = polygon_2d
    b = np.roll(polygon_2d, -1, axis=0)
    ax, ay, bx, by = a[:, 0][None], a[:, 1][None], b[:, 0][None], b[:, 1][None]
    straddle = (ay > y) != (by > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = ax + (y - ay) * (bx - ax) / (by - ay)
    inside = (np.sum(straddle & (x < x_cross), axis=1) % 2) == 1
    # distance to edges
    ex, ey = bx - ax, by - ay
    length2 = np.maximum(ex * ex + ey * ey, 1e-30)
    t = np.clip(((x - ax) * ex + (y - ay) * ey) / length2, 0.0, 1.0)
    dist2 = (x - ax - t * ex) ** 2 + (y - ay - t * ey) ** 2
    return inside | (dist2.min(axis=1) < tol * tol)


def _traced_legs(images, gen_walls, orders, source, mic, surfaces):
    """Legs of general-room paths, traced back from the microphone.

    The segment from the current point towards the current image leaves the room through the
    image's generating wall (pyroomacoustics' ``walls`` for the first step, the first wall
    polygon crossed afterwards); the reflection point is that crossing and the image's parent
    its mirror across the wall.
    """
    n_paths = len(images)
    if n_paths == 0:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    frames = _plane_frames(surfaces)
    origins = np.stack([f[0] for f in frames])
    normals = np.stack([f[1] for f in frames])
    current = np.repeat(mic[None, :], n_paths, axis=0)
    image = images.copy()
    wall = gen_walls.copy()
    remaining = orders.copy()
    previous = np.full(n_paths, -1, dtype=np.int64)
    starts, ends, owners = [], [], []
    first = True
    while np.any(remaining > 0):
        active = np.flatnonzero(remaining > 0)
        x, p = current[active], image[active]
        if first:
            w = wall[active]
        else:
            w = _first_wall_crossed(x, p, previous[active], frames, origins, normals)
        n, o = normals[w], origins[w]
        den = np.einsum("kd,kd->k", p - x, n)
        t = np.einsum("kd,kd->k", o - x, n) / np.where(np.abs(den) > 1e-12, den, 1e-12)
        q = x + np.clip(t, 0.0, 1.0)[:, None] * (p - x)
        starts.append(x)
        ends.append(q)
        owners.append(active)
        image[active] = p - 2.0 * np.einsum("kd,kd->k", p - o, n)[:, None] * n
        current[active] = q
        previous[active] = w
        remaining[active] -= 1
        first = False
    starts.append(current)
    ends.append(np.repeat(source[None, :], n_paths, axis=0))
    owners.append(np.arange(n_paths))
    starts, ends, owners = np.concatenate(starts), np.concatenate(ends), np.concatenate(owners).astype(np.int64)
    failed = np.flatnonzero(np.linalg.norm(image - source, axis=1) > _TRACE_TOLERANCE_M)
    if len(failed) == 0:
        return starts, ends, owners
    # Paths through an edge or a corner (two reflections at one point, common with co-located
    # transducers) or grazing furniture: search the reflection sequence path by path.
    n_lost = 0
    replaced_starts, replaced_ends, replaced_owners = [], [], []
    for k in failed:
        legs = _trace_one(mic, images[k], int(gen_walls[k]), int(orders[k]), source, frames, origins, normals)
        if legs is None:  # keep the vectorised (approximate) legs
            n_lost += 1
            continue
        replaced_starts.append(np.array([a for a, _ in legs]))
        replaced_ends.append(np.array([b for _, b in legs]))
        replaced_owners.append(np.full(len(legs), k, dtype=np.int64))
    if replaced_owners:
        keep = ~np.isin(owners, np.concatenate(replaced_owners))
        starts = np.concatenate([starts[keep]] + replaced_starts)
        ends = np.concatenate([ends[keep]] + replaced_ends)
        owners = np.concatenate([owners[keep]] + replaced_owners)
    if n_lost:
        warnings.warn(
            f"{n_lost} image-source paths could not be traced back to their speaker; their legs are approximate.",
            RuntimeWarning,
            stacklevel=3,
        )
    order = np.argsort(owners, kind="stable")
    return starts[order], ends[order], owners[order]


def _trace_one(mic, image, gen_wall, order, source, frames, origins, normals):
    """Legs [(start, end), ...] of one path by depth-first search over the walls crossed
    (ties at edges and corners included), or None."""

    def crossings(x, p, previous):
        seg = p - x
        found = []
        for wi, (origin, n, u, v, poly2d) in enumerate(frames):
            den = seg @ n
            if wi == previous or den <= 1e-12:
                continue
            t = ((origin - x) @ n) / den
            slack = 1e-4 / max(float(np.linalg.norm(seg)), 1e-9)  # 0.1 mm: pyroomacoustics' images are float32
            if t < -slack or t > 1.0 + slack:
                continue
            q = x + t * seg
            rel = q - origin
            if _inside_polygon(np.array([[rel @ u, rel @ v]]), poly2d, tol=1e-4)[0]:
                found.append((t, wi, q))
        found.sort(key=lambda item: item[0])
        return found

    def search(x, p, previous, remaining, forced):
        if remaining == 0:
            return [(x, source.copy())] if np.linalg.norm(p - source) <= _TRACE_TOLERANCE_M else None
        options = crossings(x, p, previous)
        if forced is not None:
            options = [item for item in options if item[1] == forced]
        for _, wi, q in options:
            n, o = normals[wi], origins[wi]
            parent = p - 2.0 * ((p - o) @ n) * n
            rest = search(q, parent, wi, remaining - 1, None)
            if rest is not None:
                return [(x, q)] + rest
        return None

    return search(np.asarray(mic, dtype=float), np.asarray(image, dtype=float), -1, order, gen_wall)


def _first_wall_crossed(x, p, previous, frames, origins, normals):
    """(K,) index of the first wall polygon the segments x -> p cross outwards."""
    k = len(x)
    best_t = np.full(k, np.inf)
    best_w = np.full(k, -1, dtype=np.int64)
    fallback_t = np.full(k, np.inf)
    fallback_w = np.zeros(k, dtype=np.int64)
    seg = p - x
    for wi, (origin, n, u, v, poly2d) in enumerate(frames):
        den = seg @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((origin - x) @ n) / den
        ok = (den > 1e-12) & (t > 1e-9) & (t <= 1.0 + 1e-9) & (previous != wi)
        if not ok.any():
            continue
        better_fallback = ok & (t < fallback_t)
        fallback_t[better_fallback] = t[better_fallback]
        fallback_w[better_fallback] = wi
        q = x + t[:, None] * seg
        rel = q - origin
        inside = np.zeros(k, dtype=bool)
        inside[ok] = _inside_polygon(np.stack([rel[ok] @ u, rel[ok] @ v], axis=1), poly2d)
        better = inside & (t < best_t)
        best_t[better] = t[better]
        best_w[better] = wi
    return np.where(best_w >= 0, best_w, fallback_w)


def _assemble_paths(per_pair, n_speakers, n_mics, c, centers, n_bands) -> ImagePaths:
    offsets = [0]
    fields = {k: [] for k in ("pair", "image", "length", "order", "amp", "ls", "le", "lp")}
    total = 0
    for p, entry in enumerate(per_pair):
        if entry is None:
            offsets.append(total)
            continue
        images, length, orders, amplitudes, leg_s, leg_e, leg_p = entry
        fields["pair"].append(np.full(len(length), p, dtype=np.int64))
        fields["image"].append(images)
        fields["length"].append(length)
        fields["order"].append(orders.astype(np.int64))
        fields["amp"].append(amplitudes)
        fields["ls"].append(leg_s)
        fields["le"].append(leg_e)
        fields["lp"].append(leg_p + total)
        total += len(length)
        offsets.append(total)

    def cat(name, shape):
        return np.concatenate(fields[name]) if fields[name] else np.zeros(shape)

    pair = cat("pair", (0,)).astype(np.int64)
    length = cat("length", (0,))
    return ImagePaths(
        pair=pair,
        pair_offsets=np.asarray(offsets, dtype=np.int64),
        speaker=pair // n_mics,
        microphone=pair % n_mics,
        order=cat("order", (0,)).astype(np.int64),
        image_m=cat("image", (0, 3)),
        length_m=length,
        delay_s=length / c,
        band_amplitudes=np.ascontiguousarray(cat("amp", (0, n_bands))),
        band_centers_hz=centers,
        leg_start_m=np.ascontiguousarray(cat("ls", (0, 3))),
        leg_end_m=np.ascontiguousarray(cat("le", (0, 3))),
        leg_path=cat("lp", (0,)).astype(np.int64),
    )


def _earliest_arrival_of_order(speakers, microphones, dims, order: int) -> float:
    """Shortest path length (m) of any shoebox image of exactly ``order`` over all pairs."""
    r = np.arange(-order, order + 1)
    nx, ny, nz = np.meshgrid(r, r, r, indexing="ij")
    lattice = np.stack([nx.ravel(), ny.ravel(), nz.ravel()], axis=1)
    lattice = lattice[np.abs(lattice).sum(axis=1) == order]
    best = np.inf
    for s in speakers:
        images = _shoebox_images(s, dims, lattice)
        d = np.linalg.norm(images[:, None, :] - microphones[None, :, :], axis=2)
        best = min(best, float(d.min()))
    return best


def _as_facet_mesh(body_mesh) -> FacetMesh:
    if isinstance(body_mesh, FacetMesh):
        return body_mesh
    if isinstance(body_mesh, trimesh.Trimesh):
        return FacetMesh.from_trimesh(body_mesh)
    raise ValueError(f"body_mesh is a {type(body_mesh).__name__}; pass a trimesh.Trimesh or a FacetMesh (room frame, metres).")


def _body_boxes(mesh: FacetMesh):
    """Bounding box of the mesh and the bounding boxes of its faces in z slices (conservative)."""
    triangles = mesh.vertices_m[mesh.faces]  # (F, 3, 3)
    face_lo = triangles.min(axis=1)
    face_hi = triangles.max(axis=1)
    eps = 1e-6
    lo = face_lo.min(axis=0) - eps
    hi = face_hi.max(axis=0) + eps
    edges = np.linspace(lo[2], hi[2], _BODY_SLICES + 1)
    slice_lo, slice_hi = [], []
    for z0, z1 in zip(edges[:-1], edges[1:]):
        sel = (face_hi[:, 2] >= z0) & (face_lo[:, 2] <= z1)
        if not sel.any():
            continue
        a = face_lo[sel].min(axis=0) - eps
        b = face_hi[sel].max(axis=0) + eps
        a[2] = max(a[2], z0 - eps)
        b[2] = min(b[2], z1 + eps)
        slice_lo.append(a)
        slice_hi.append(b)
    return lo, hi, np.array(slice_lo), np.array(slice_hi)
