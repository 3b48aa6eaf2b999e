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
is not taken per octave band: at ultrasound it changes too fast within a band (more than
doubles between 19 and 32 kHz; see the README for figures). So the response is synthesised on
*synthesis nodes* f_k (the octave centres below 16 kHz, every 1 kHz from 16 to 36 kHz, then
Nyquist) with piecewise-linear hats H_k(f) (a partition of unity) and each node carries the exact
ISO energy coefficient a(f_k) (``rooms.air.air_absorption_energy_per_m``) for the scene's
temperature and humidity, and the attenuation is interpolated linearly between nodes 1 kHz apart.

Note on amplitudes: pyroomacoustics 0.10's ``compute_rir`` weights a path by
damping / d, without the 1 / (4 pi) of the free-field Green's function; the responses here carry
the 1 / (4 pi d) of ``body_echo`` (pyroomacoustics' RIR = 4 pi x these, 40 samples later,
checked in the tests).

Directivity
-----------
With ``directivity`` (a :class:`simulator.directivity.DirectivityDraw`: one pattern and aim per speaker and
microphone) every path's amplitude at every synthesis node f_k is multiplied by
g_speaker(u_first, f_k) * g_microphone(u_image, f_k): u_first the direction of the path's first leg out of the
speaker (equivalently the image's mirrored aim towards the microphone; in a shoebox, mic - image with the
components of odd lattice index flipped; in a general room, from the traced legs,
``path_legs.departure_directions``), u_image from the microphone towards the image. The gains are real and
interpolated between nodes like the rest of the amplitude (1 kHz apart in band: a 3 cm piston's gain errs by
at most 0.0016 there). ``paths.band_amplitudes`` then include them, so ``shadow_correction`` removes a blocked
path with the gains it was added with. Checked against pyroomacoustics' own directional ``compute_rir``
(``tests/test_directivity_recording.py``).

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
body (which fills the shadow in over about a Fresnel zone) is not modelled.

Code map: :mod:`simulator.room_acoustics` (``RoomAcoustics``: synthesis, shadowing, first-order
images), :mod:`simulator.image_paths` (path data), :mod:`simulator.path_legs` (polylines),
:mod:`simulator.room_synthesis` (band-limited synthesis), :mod:`simulator._room_kernels` (numba);
this module builds a ``RoomAcoustics`` from a room and a rig, in named steps.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from rooms.air import air_absorption_energy_per_m
from rooms.geometry import Room
from rooms.validation import validate_inside

from .directivity import DirectivityDraw, path_gains
from .errors import SimulationInputError
from .image_paths import FirstOrderImages, ImagePaths, assemble_paths
from .path_legs import departure_directions, earliest_arrival_of_order, shoebox_images, shoebox_legs, traced_legs
from .room_acoustics import ECHO_BAND_HZ, RoomAcoustics
from .room_synthesis import KERNEL_HALF_WIDTH, fft_length, hats, octave_band_gains, synthesis_nodes_hz

__all__ = [
    "ECHO_BAND_HZ",
    "MIN_TRANSDUCER_DISTANCE_M",
    "FirstOrderImages",
    "ImagePaths",
    "RoomAcoustics",
    "compute_room_acoustics",
    "synthesis_nodes_hz",
]

#: A speaker and a microphone closer than this are rejected (pyroomacoustics divides by d).
MIN_TRANSDUCER_DISTANCE_M = 0.005
#: Largest number of image sources per speaker allowed in the general (non-shoebox) model.
_MAX_GENERAL_IMAGES = 2_000_000


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
    directivity: DirectivityDraw | None = None,
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
        directivity: the rig's speakers and microphones (:class:`simulator.directivity.DirectivityDraw`, one
            transducer per speaker and per microphone): every path's amplitude at every synthesis node is
            multiplied by the speaker's gain along the path's first leg and the microphone's gain towards the
            path's image source (section "Directivity" above). None: omni everywhere (gains of exactly 1).

    Warns (RuntimeWarning) when a shoebox's order max_order + 1 paths would arrive inside the
    window: the late part of the responses then lacks reflections.
    """
    import pyroomacoustics as pra

    fs, max_order, n_samples = _check_settings(room, sample_rate_hz, max_order, n_samples)
    speakers, microphones, distances = _checked_rig(room, speaker_positions_m, microphone_positions_m)
    _check_directivity(directivity, len(speakers), len(microphones))
    pra_room = room.to_pyroomacoustics(
        fs, max_order, temperature_c, relative_humidity_pct, air_absorption=True, include_furniture=include_furniture
    )
    is_shoebox = isinstance(pra_room, pra.ShoeBox)
    _check_window_and_cost(pra_room, distances, fs, n_samples, max_order, is_shoebox)
    for s in speakers:
        pra_room.add_source(s)
    pra_room.add_microphone_array(np.ascontiguousarray(microphones.T))
    pra_room.image_source_model()

    grid = _synthesis_grid(pra_room, fs, n_samples, temperature_c, relative_humidity_pct, air_absorption)
    surfaces = room.all_surfaces(include_furniture) if not is_shoebox else list(room.surfaces)
    wall_absorption = np.stack(
        [np.asarray(w.absorption, dtype=float) * np.ones(len(grid.octave_centers_hz)) for w in pra_room.walls]
    )
    if not is_shoebox and len(surfaces) != len(pra_room.walls):  # pragma: no cover - defensive
        raise RuntimeError("room surfaces and pyroomacoustics walls differ; cannot trace paths.")

    per_pair = []
    for si, source in enumerate(pra_room.sources):
        for mi, mic in enumerate(microphones):
            if is_shoebox:
                entry = _shoebox_pair_paths(source, speakers[si], mic, room.dimensions_m, grid)
            else:
                entry = _general_pair_paths(pra_room, si, mi, speakers[si], mic, surfaces, grid)
            if entry is not None:
                departures, entry = entry[0], entry[1:]
                if directivity is not None:  # the transducers' gains at every synthesis node
                    images, amplitudes = entry[0], entry[3]
                    gains = path_gains(directivity.speakers[si], directivity.microphones[mi], departures,
                                       images - mic, grid.nodes_hz, grid.speed_of_sound_m_s)
                    entry = (*entry[:3], amplitudes * gains, *entry[4:])
            per_pair.append(entry)
    paths = assemble_paths(per_pair, len(speakers), len(microphones), grid.speed_of_sound_m_s, grid.nodes_hz,
                           len(grid.nodes_hz))
    acoustics = _room_acoustics(room, pra_room, paths, speakers, microphones, grid, max_order, temperature_c,
                                relative_humidity_pct, include_furniture, wall_absorption)
    if is_shoebox:
        _warn_if_order_too_low(room, speakers, microphones, distances, grid, max_order, wall_absorption,
                               temperature_c, relative_humidity_pct, air_absorption)
    return acoustics


# --------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SynthesisGrid:
    """What every pair's paths are weighted with: the air, the octave bands and the nodes."""

    sample_rate_hz: float
    n_samples: int
    speed_of_sound_m_s: float
    octave_centers_hz: np.ndarray  # (B,)
    n_fft: int
    band_gains: np.ndarray  # (B, n_fft // 2 + 1) G_b(f)^2
    nodes_hz: np.ndarray  # (N,) synthesis nodes
    grid_hz: np.ndarray  # (n_fft // 2 + 1,)
    node_weights: np.ndarray  # (B, N) G_b(f_k)^2
    air_energy_per_m: np.ndarray  # (N,) exact ISO coefficient at each node (zeros without air)

    @property
    def max_delay_samples(self) -> int:
        """Paths arriving later than this cannot reach the window (kernel half width included)."""
        return self.n_samples + KERNEL_HALF_WIDTH


def _check_settings(room, sample_rate_hz, max_order, n_samples) -> tuple[float, int, int]:
    """(fs, max_order, n_samples) as float, int, int, or SimulationInputError naming the field."""
    if not isinstance(room, Room):
        raise SimulationInputError(f"room is a {type(room).__name__}; pass a rooms.ShoeboxRoom or rooms.PolyhedralRoom.")
    if isinstance(max_order, bool) or not isinstance(max_order, (int, np.integer)) or max_order < 0:
        raise SimulationInputError(
            f"max_order = {max_order!r}; give a non-negative integer (17 for a shoebox, 2-4 otherwise).")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise SimulationInputError(f"n_samples = {n_samples!r}; give a positive integer number of samples, e.g. 9600.")
    if (
        isinstance(sample_rate_hz, bool)
        or not np.isscalar(sample_rate_hz)
        or not np.isfinite(sample_rate_hz)
        or sample_rate_hz < 1000
        or float(sample_rate_hz) != int(sample_rate_hz)
    ):
        raise SimulationInputError(f"sample_rate_hz = {sample_rate_hz!r}; give an integer sample rate in Hz, e.g. 96000.")
    return float(sample_rate_hz), int(max_order), int(n_samples)


def _checked_rig(room, speaker_positions_m, microphone_positions_m):
    """Speakers (S, 3), microphones (M, 3) inside the room's air and their distances (S, M)."""
    speakers = validate_inside(room, speaker_positions_m, "speaker_positions_m")
    microphones = validate_inside(room, microphone_positions_m, "microphone_positions_m")
    distances = np.linalg.norm(speakers[:, None, :] - microphones[None, :, :], axis=2)
    too_close = np.argwhere(distances < MIN_TRANSDUCER_DISTANCE_M)
    if len(too_close):
        s, m = too_close[0]
        p = microphones[m]
        raise SimulationInputError(
            f"microphone_positions_m[{m}] = ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) is {distances[s, m] * 1000:.1f} mm "
            f"from speaker_positions_m[{s}]; the image-source model divides by that distance. Offset the "
            f"microphone from its speaker by at least {MIN_TRANSDUCER_DISTANCE_M * 1000:.0f} mm (2 cm is usual)."
        )
    return speakers, microphones, distances


def _check_window_and_cost(pra_room, distances, fs, n_samples, max_order, is_shoebox) -> None:
    """Refuse a window shorter than the direct paths, and a general ISM too large to run."""
    c = float(pra_room.c)
    latest_direct = distances.max() / c * fs
    if latest_direct >= n_samples:
        raise SimulationInputError(
            f"n_samples = {n_samples} is too short: the longest direct path ({distances.max():.2f} m) arrives at "
            f"sample {latest_direct:.0f}; give at least {int(latest_direct) + KERNEL_HALF_WIDTH + 1} samples."
        )
    if not is_shoebox:
        n_walls = len(pra_room.walls)
        n_images = n_walls * max(n_walls - 1, 1) ** max(max_order - 1, 0) if max_order > 0 else 1
        if n_images > _MAX_GENERAL_IMAGES:
            raise SimulationInputError(
                f"max_order = {max_order} with {n_walls} reflecting surfaces means up to {n_images:.2g} image sources "
                f"per speaker in the general image-source model; lower max_order (2-4), or pass "
                f"include_furniture=False for a shoebox (fast model, order 17 is fine)."
            )


def _synthesis_grid(pra_room, fs, n_samples, temperature_c, relative_humidity_pct, air_absorption) -> _SynthesisGrid:
    bands = pra_room.octave_bands
    centers = np.asarray(bands.centers, dtype=float)
    n_fft = fft_length(n_samples)
    band_gains = octave_band_gains(bands, n_fft, fs, len(centers))
    nodes = synthesis_nodes_hz(centers, fs)
    grid_hz = np.fft.rfftfreq(n_fft, 1.0 / fs)
    node_weights = np.stack([np.interp(nodes, grid_hz, g) for g in band_gains])  # (B, N) G_b(f_k)^2
    air = air_absorption_energy_per_m(nodes, temperature_c, relative_humidity_pct)  # (N,) exact ISO
    if not air_absorption:
        air = np.zeros_like(air)
    return _SynthesisGrid(fs, n_samples, float(pra_room.c), centers, n_fft, band_gains, nodes, grid_hz,
                          node_weights, air)


def _kept_paths(images, damping, orders, mic, grid: _SynthesisGrid):
    """Paths that reach the window: (keep (K,) bool, images, length, orders, amplitudes (K', N))."""
    length = np.linalg.norm(images - mic, axis=1)
    keep = (length / grid.speed_of_sound_m_s * grid.sample_rate_hz < grid.max_delay_samples) & (length > 0)
    images, damping, length, orders = images[keep], damping[keep], length[keep], orders[keep]
    air = grid.air_energy_per_m
    amplitudes = (damping @ grid.node_weights) * np.exp(-0.5 * air[None, :] * length[:, None]) / (
        4.0 * np.pi * length[:, None]
    )
    return keep, images, length, orders, amplitudes


def _shoebox_pair_paths(source, speaker, mic, dims, grid: _SynthesisGrid):
    """One pair's kept paths in a shoebox, legs by unfolding (an ``assemble_paths`` entry)."""
    orders_xyz = np.asarray(source.orders_xyz, dtype=np.int64).T  # (K, 3)
    images = shoebox_images(speaker, dims, orders_xyz)
    damping = np.asarray(source.damping, dtype=float).T  # (K, B)
    orders = np.abs(orders_xyz).sum(axis=1)
    keep, images, length, orders, amplitudes = _kept_paths(images, damping, orders, mic, grid)
    legs = shoebox_legs(images, orders_xyz[keep], mic, dims)
    # the first leg leaves the speaker along (mic - image) mirrored once per odd count of hits on each axis
    departures = np.where(np.abs(orders_xyz[keep]) % 2 == 1, -1.0, 1.0) * (mic - images)
    return (departures, images, length, orders, amplitudes, *legs)


def _general_pair_paths(pra_room, si, mi, speaker, mic, surfaces, grid: _SynthesisGrid):
    """One pair's visible, kept paths in a general room, legs traced back (or None: no path)."""
    source = pra_room.sources[si]
    visible = np.asarray(pra_room.visibility[si][mi], dtype=bool)
    if source.images is None or visible.size == 0 or not visible.any():
        return None
    images = np.asarray(source.images, dtype=float).T[visible]
    damping = np.asarray(source.damping, dtype=float).T[visible]
    gen_walls = np.asarray(source.walls, dtype=np.int64)[visible]
    orders = np.asarray(source.orders, dtype=np.int64)[visible]
    keep, images, length, orders, amplitudes = _kept_paths(images, damping, orders, mic, grid)
    legs = traced_legs(images, gen_walls[keep], orders, speaker, mic, surfaces)
    departures = departure_directions(*legs, len(images), speaker, mic - images)
    return (departures, images, length, orders, amplitudes, *legs)


def _check_directivity(directivity, n_speakers: int, n_microphones: int) -> None:
    if directivity is None:
        return
    if not isinstance(directivity, DirectivityDraw):
        raise SimulationInputError(f"directivity is a {type(directivity).__name__}; pass a simulator.directivity."
                                   "DirectivityDraw (DirectivityModel().draw(...)) or None (omni).")
    if len(directivity.speakers) != n_speakers or len(directivity.microphones) != n_microphones:
        raise SimulationInputError(
            f"directivity has {len(directivity.speakers)} speakers and {len(directivity.microphones)} microphones but "
            f"the rig {n_speakers} and {n_microphones}; draw one transducer per device.")


def _room_acoustics(room, pra_room, paths, speakers, microphones, grid: _SynthesisGrid, max_order, temperature_c,
                    relative_humidity_pct, include_furniture, wall_absorption) -> RoomAcoustics:
    """The ``RoomAcoustics`` of the kept paths, its ``impulse_responses`` synthesised from all of them."""
    acoustics = RoomAcoustics(
        impulse_responses=np.zeros((len(speakers), len(microphones), grid.n_samples)),
        paths=paths,
        speaker_positions_m=speakers,
        microphone_positions_m=microphones,
        sample_rate_hz=grid.sample_rate_hz,
        speed_of_sound_m_s=grid.speed_of_sound_m_s,
        n_samples=grid.n_samples,
        max_order=max_order,
        temperature_c=float(temperature_c),
        relative_humidity_pct=float(relative_humidity_pct),
        include_furniture=bool(include_furniture),
        wall_names=tuple(w.name for w in pra_room.walls),
        wall_absorption=wall_absorption,
        shell_polygons_m=tuple(np.array(s.polygon_m, dtype=float) for s in room.surfaces),
        shell_normals=np.stack([np.asarray(s.normal, dtype=float) for s in room.surfaces]),
        _n_fft=grid.n_fft,
        _band_gains=grid.band_gains,
        _synthesis_gains=hats(grid.nodes_hz, grid.grid_hz),
    )
    acoustics.impulse_responses = acoustics.path_impulse_responses(np.arange(paths.n_paths), 1.0)
    return acoustics


def _warn_if_order_too_low(room, speakers, microphones, distances, grid: _SynthesisGrid, max_order, wall_absorption,
                           temperature_c, relative_humidity_pct, air_absorption) -> None:
    """RuntimeWarning when a shoebox's first missing order arrives inside the window, loud enough to matter."""
    c, fs, n_samples = grid.speed_of_sound_m_s, grid.sample_rate_hz, grid.n_samples
    earliest_m = earliest_arrival_of_order(speakers, microphones, room.dimensions_m, max_order + 1)
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
            stacklevel=3,
        )
