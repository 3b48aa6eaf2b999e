"""The empty-room acoustics of one room and rig, and what a body changes in them.

:class:`RoomAcoustics` (built by :func:`simulator.room_response.compute_room_acoustics`) holds
the empty room's responses and every kept image-source path; it synthesises any subset of the
paths, finds the paths a body blocks (legs pruned by the body's sliced bounding boxes, then ray
cast through ``FacetMesh.intersector``) and returns the shadow correction and the first-order
mirror images for the body-room multipath. Conventions: :mod:`simulator.room_response`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh

from ._room_kernels import segments_near_body
from .body_echo import FacetMesh
from .errors import SimulationInputError
from .image_paths import FirstOrderImages, ImagePaths
from .room_synthesis import synthesize

__all__ = ["ECHO_BAND_HZ", "RoomAcoustics"]

#: The chirps' band (Hz); used for band-averaged wall reflection coefficients.
ECHO_BAND_HZ = (19_000.0, 32_000.0)
#: Number of z slices of the body's bounding box used to prune legs before ray casting.
_BODY_SLICES = 8


@dataclass(eq=False)
class RoomAcoustics:
    """Empty-room acoustics of one room and rig: computed once, reused for every frame.

    Attributes:
        impulse_responses: (S, M, T) float64 empty-room responses (conventions: ``simulator.room_response``).
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
        return synthesize(self, idx, weights, period)

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
                raise SimulationInputError(f"max_order = {max_order!r}; give a non-negative integer or None (all orders).")
            leg_mask = paths.order[paths.leg_path] <= int(max_order)
        box_lo, box_hi, slice_lo, slice_hi = mesh.slab_boxes(_BODY_SLICES, 1e-6)
        near = segments_near_body(paths.leg_start_m, paths.leg_end_m, box_lo, box_hi, slice_lo, slice_hi, leg_mask)
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
            raise SimulationInputError(f"attenuation = {attenuation!r}; give a number in [0, 1] (1 removes blocked paths).")
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



def _as_facet_mesh(body_mesh) -> FacetMesh:
    if isinstance(body_mesh, FacetMesh):
        return body_mesh
    if isinstance(body_mesh, trimesh.Trimesh):
        return FacetMesh.from_trimesh(body_mesh)
    raise SimulationInputError(
        f"body_mesh is a {type(body_mesh).__name__}; pass a trimesh.Trimesh or a FacetMesh (room frame, metres)."
    )
