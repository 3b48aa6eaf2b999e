"""Echo of a body: time-domain physical optics (Kirchhoff approximation) over a triangle mesh.

Conventions (shared with the room simulation, pyroomacoustics, and ``sphere_exact``)
------------------------------------------------------------------------------------
* A source is a point monopole whose free-field impulse response at distance d is
  ``delta(t - d / c) / (4 pi d)`` (frequency response ``exp(-j k d) / (4 pi d)``, time
  dependence ``exp(+j omega t)``, ``H(f) = integral h(t) exp(-j 2 pi f t) dt``). The room
  responses of ``simulator.room_response`` carry the same ``1 / (4 pi d)`` (pyroomacoustics 0.10's
  own ``compute_rir`` leaves out the 4 pi), so body echoes and room responses add.
* Impulse responses are discrete-time, at ``sample_rate_hz``, with t = 0 at emission:
  sample n is t = n / fs. They are band-limited versions of the continuous response,
  ``h[n] = (1 / fs) * (h_c * lowpass)(n / fs)``, whose DTFT equals the continuous frequency
  response H(f) for f <= 0.4 fs (38.4 kHz at 96 kHz) and rolls off with a raised cosine to 0 at
  Nyquist (see ``output_lowpass``). A direct path is thus a band-limited delta whose taps sum to
  1 / (4 pi d), the same as pyroomacoustics' fractional-delay taps. Multiply by the source
  signal (convolution) to get pressure at the receiver.

Physics
-------
At 19-32 kHz (wavelength 1.1-1.8 cm) the body is many wavelengths large, so the Kirchhoff
(physical-optics) approximation applies: on the surface lit by the transmitter s and seen by
the receiver r, the pressure is (1 + R) times the incident pressure and its normal derivative
(1 - R) times the incident one. Inserted in the Helmholtz-Kirchhoff integral, in the
high-frequency form (k |x - s|, k |x - r| >> 1; the dropped 1/(kR) terms are < 0.5 % beyond
0.5 m at 19 kHz) and written reciprocally, the scattered frequency response is

    H(f) = (j k / (16 pi^2)) * integral_lit R (n.u_s + n.u_r) exp(-j k (R_s + R_r)) / (R_s R_r) dS,

with R_s = |x - s|, R_r = |x - r|, u_s, u_r unit vectors from x towards s and r, n the outward
normal. For an infinite rigid plane (R = 1) its stationary-phase value is exactly the image
source, exp(-j k L) / (4 pi L) with L the mirrored path. Since j k = j omega / c is d/dt / c, the
impulse response is the time derivative of the weighted delay-area distribution (the time-domain
form of Gordon's facet integral):

    h(t) = (1 / (16 pi^2 c)) d/dt integral_lit w(x) delta(t - tau(x)) dS,
    w = R (n.u_s + n.u_r) / (R_s R_r),   tau = (R_s + R_r) / c.

Over a flat triangle tau is (to well under a sample) linear, so each facet's delay-area
distribution is a linear B-spline whose knots are the delays of its three vertices: a facet is
spread over its delay span, not treated as a point. Facets where tau departs from linear by more
than ``max_delay_error_s`` are split in four recursively (large flat facets close to the
transducers). The distributions of all facets are summed on a grid oversampled ``oversampling``
times, pre-filtered by a hat (exact integration, ``_kernels``), then one FFT per output channel
applies d/dt, the hat compensation and the band limit and decimates to ``sample_rate_hz``.
The aliasing of the oversampled grid falls with ``oversampling``; the README gives its level.

Meshes: a body is a closed surface with outward normals (faces counter-clockwise seen from
outside). ``FacetMesh`` refuses a mesh that is open, wound inconsistently or inside out, and the
echo refuses a transducer inside the body: for any of these the model would silently give no echo
(every facet facing away, or hidden). A thin open surface (a plate, a wall panel) is modelled too,
one-sided, when built with ``open_surface=True``; then its winding is the caller's to get right.

Hidden surfaces: a facet counts for a pair only if it faces both transducers and its centroid
is the first hit of the rays cast from each transducer (trimesh ray casting, Embree when
embreex is installed). Shadowed paths and room reflections are not handled here.

Reflection coefficient: skin's characteristic impedance (~1.6 MRayl) against air's (413 Rayl)
gives |R| = 0.9995; clothing (thin porous textile on skin) absorbs roughly 10-30 % of the
incident energy at 20-30 kHz, |R| = sqrt(1 - alpha) ~ 0.85-0.95. The default,
``DEFAULT_REFLECTION_COEFFICIENT = 0.9``, stands for a lightly clothed body; pass 1 for a rigid
body, or one value per facet (F,) to mark skin and clothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import scipy.fft
import trimesh

from core.checks import check_whole

from . import _kernels
from .errors import SimulationInputError

__all__ = [
    "DEFAULT_REFLECTION_COEFFICIENT",
    "PASSBAND_FRACTION",
    "BodyEcho",
    "FacetMesh",
    "body_impulse_responses",
    "output_lowpass",
    "point_impulse_response",
]

#: Pressure reflection coefficient of a lightly clothed body (see module docstring).
DEFAULT_REFLECTION_COEFFICIENT = 0.9
#: Output impulse responses are exact (flat low-pass) up to this fraction of Nyquist.
PASSBAND_FRACTION = 0.8
#: Samples of padding around each channel's echo window, covering the low-pass kernel's tails
#: (tails beyond 48 samples are below 3e-5 of the peak).
_WINDOW_PAD_SAMPLES = 48
#: Positions per Embree call in ``FacetMesh.lit_facets``: bounds its (positions x facets) arrays.
_LIT_BLOCK_POSITIONS = 64
#: Relative slack of ``FacetMesh.facing``'s fast sign test (see there): over ten times its rounding bound.
_FACING_SLACK = 1e-14
#: Absolute slack added to it, for scales down in the subnormal range (where relative bounds fail).
_TINY_SLACK = 1e-290


def output_lowpass(frequencies_hz: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """Gain of the output band limit: 1 up to 0.4 fs, raised cosine to 0 at fs / 2.

    frequencies_hz: any shape; returns the same shape.
    """
    f = np.abs(np.asarray(frequencies_hz, dtype=float)) / (sample_rate_hz / 2)
    gain = np.zeros_like(f)
    gain[f <= PASSBAND_FRACTION] = 1.0
    roll = (f > PASSBAND_FRACTION) & (f < 1.0)
    gain[roll] = 0.5 * (1.0 + np.cos(np.pi * (f[roll] - PASSBAND_FRACTION) / (1.0 - PASSBAND_FRACTION)))
    return gain


def point_impulse_response(
    delays_s: np.ndarray,
    amplitudes: np.ndarray,
    n_samples: int,
    sample_rate_hz: float,
) -> np.ndarray:
    """Band-limited impulse response of point paths sum_i a_i delta(t - delay_i).

    Same band limit as ``body_impulse_responses`` (``output_lowpass``), so e.g. a direct path
    (delay d / c, amplitude 1 / (4 pi d)) or an image source can be added to a body echo.

    delays_s, amplitudes: (K,). Returns (n_samples,) float64.
    """
    delays_s = np.atleast_1d(np.asarray(delays_s, dtype=float))
    amplitudes = np.atleast_1d(np.asarray(amplitudes, dtype=float))
    n_fft = scipy.fft.next_fast_len(int(n_samples) + 2 * _WINDOW_PAD_SAMPLES, real=True)
    f_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)
    spectrum = (amplitudes[:, None] * np.exp(-2j * np.pi * f_hz * delays_s[:, None])).sum(axis=0)
    return np.fft.irfft(spectrum * output_lowpass(f_hz, sample_rate_hz), n_fft)[:n_samples]


@dataclass
class FacetMesh:
    """A triangle mesh prepared for echo simulation (geometry + ray intersector).

    Build once per posed body and reuse it for every call (direct and image-source pairs).

    A closed mesh is required unless ``open_surface`` is set: the mesh must be closed (every
    edge shared by two faces), consistently wound and not inside out (positive signed volume),
    or SimulationInputError says which and how to fix it. The check costs a sort of the edges,
    a small fraction of one echo.

    Attributes:
        vertices_m: (V, 3) float64, metres.
        faces: (F, 3) int64, counter-clockwise seen from outside (normals point outwards).
        open_surface: True for a thin open surface such as a plate (reflecting on the side its
            normals point to); the closed-surface checks, and the check that transducers lie
            outside, are then skipped.
        normals: (F, 3) unit outward normals (zero for degenerate faces).
        areas_m2: (F,) facet areas.
        centroids_m: (F, 3).
        max_edges_m: (F,) longest edge of each facet.
    """

    vertices_m: np.ndarray
    faces: np.ndarray
    open_surface: bool = False
    normals: np.ndarray = field(init=False, repr=False)
    areas_m2: np.ndarray = field(init=False, repr=False)
    centroids_m: np.ndarray = field(init=False, repr=False)
    max_edges_m: np.ndarray = field(init=False, repr=False)
    _intersector: object = field(default=None, init=False, repr=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)   # per-mesh derived arrays

    def __post_init__(self) -> None:
        vertices = np.asarray(self.vertices_m, dtype=float)
        faces = np.asarray(self.faces)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 3:
            raise SimulationInputError(f"vertices_m has shape {vertices.shape}; pass a (V, 3) array of metres, V >= 3.")
        if not np.all(np.isfinite(vertices)):
            raise SimulationInputError("vertices_m contains NaN or infinite coordinates; pass finite metres.")
        if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) < 1:
            raise SimulationInputError(f"faces has shape {faces.shape}; pass a (F, 3) integer array of vertex indices.")
        if not np.issubdtype(faces.dtype, np.integer):
            raise SimulationInputError(f"faces has dtype {faces.dtype}; pass integer vertex indices.")
        if faces.min() < 0 or faces.max() >= len(vertices):
            raise SimulationInputError(
                f"faces index vertices in [{faces.min()}, {faces.max()}] but vertices_m has "
                f"{len(vertices)} rows; fix the face indices."
            )
        self.vertices_m = np.ascontiguousarray(vertices)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        triangles = self.vertices_m[self.faces]
        cross = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
        doubled_area = np.linalg.norm(cross, axis=1)
        self.areas_m2 = 0.5 * doubled_area
        nondegenerate = doubled_area[:, None] > 0
        self.normals = np.divide(cross, doubled_area[:, None], out=np.zeros_like(cross), where=nondegenerate)
        # triangles.mean(axis=1) bit for bit (a sum of the three, in order, over 3), without its reduction's overhead
        self.centroids_m = (triangles[:, 0] + triangles[:, 1] + triangles[:, 2]) / 3.0
        edges = triangles - np.roll(triangles, 1, axis=1)
        self.max_edges_m = np.sqrt(np.einsum("fkd,fkd->fk", edges, edges).max(axis=1))
        if not isinstance(self.open_surface, (bool, np.bool_)):
            raise SimulationInputError(f"open_surface = {self.open_surface!r}; pass True or False.")
        if not self.open_surface:
            self._check_closed(cross)

    def _check_closed(self, cross: np.ndarray) -> None:
        """Refuse an open, inconsistently wound or inside-out mesh (see the class docstring).

        cross: (F, 3) the faces' unnormalised normals (twice the area, outward if wound right).
        """
        n_open, n_misoriented = _edge_defects_cached(self.faces, len(self.vertices_m))
        if n_open:
            raise SimulationInputError(
                f"mesh is open ({n_open} boundary edges): close it (e.g. trimesh.repair.fill_holes, after "
                "mesh.merge_vertices() if it is split at seams) or, for a thin open surface such as a plate, "
                "build FacetMesh(..., open_surface=True)")
        if n_misoriented:
            raise SimulationInputError(
                f"mesh is wound inconsistently ({n_misoriented} edges shared by faces wound the same way): "
                "orient its faces outwards (e.g. trimesh.repair.fix_winding, then fix_inversion)")
        # Signed volume by the divergence theorem, about the mean vertex (numerically steadier).
        volume_m3 = np.einsum("fd,fd->", self.centroids_m - self.vertices_m.mean(axis=0), cross) / 6.0
        if volume_m3 < 0:
            raise SimulationInputError(
                f"mesh is inside out (negative signed volume, {volume_m3:.3g} m^3): flip its faces "
                "(faces[:, ::-1], or trimesh's mesh.invert())")

    def check_outside(self, name: str, positions_m: np.ndarray) -> None:
        """Refuse a transducer inside this closed mesh: it would see no facet and hear no echo.

        name: how the caller calls the positions (``speaker_positions_m``); positions_m: (N, 3).
        Only points within the mesh's bounding box are tested (by ray casting), so points that
        are clearly outside, such as image sources, cost nothing.
        """
        points = _as_points(name, positions_m)
        if self.open_surface:
            return
        low, high = self.vertices_m.min(axis=0), self.vertices_m.max(axis=0)
        near = np.flatnonzero(np.all((points >= low) & (points <= high), axis=1))
        if len(near) == 0:
            return
        inside = near[np.asarray(self.intersector.contains_points(points[near]), dtype=bool)]
        if len(inside):
            x, y, z = points[inside[0]]
            raise SimulationInputError(
                f"{name}[{inside[0]}] = ({x:.3f}, {y:.3f}, {z:.3f}) lies inside the body mesh: move it outside")

    @classmethod
    def from_trimesh(cls, mesh: trimesh.Trimesh, open_surface: bool = False) -> "FacetMesh":
        """Wrap a trimesh.Trimesh (its vertices and faces are copied)."""
        return cls(np.asarray(mesh.vertices, dtype=float), np.asarray(mesh.faces, dtype=np.int64), open_surface)

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    @property
    def intersector(self):
        """trimesh ray intersector over this mesh (Embree if available), built on first use."""
        if self._intersector is None:
            mesh = trimesh.Trimesh(self.vertices_m, self.faces, process=False)
            try:
                from trimesh.ray.ray_pyembree import RayMeshIntersector
            except ImportError:  # pragma: no cover - embreex missing: slow pure-numpy fallback
                from trimesh.ray.ray_triangle import RayMeshIntersector
            self._intersector = RayMeshIntersector(mesh)
        return self._intersector

    def patches(self, patch_size_m: float) -> np.ndarray:
        """(F,) patch label of every facet: facets whose centroids share a cube of ``patch_size_m``.

        The cube's three integer coordinates become one integer key (C order), so one 1-D sort groups
        them (a row-wise ``np.unique(axis=0)`` sorts the rows lexicographically, several times slower).
        """
        cells = np.floor(self.centroids_m / float(patch_size_m)).astype(np.int64)
        cells -= cells.min(axis=0)
        key = np.ravel_multi_index(cells.T, tuple(cells.max(axis=0) + 1))
        return np.unique(key, return_inverse=True)[1].ravel()

    def lit_facets(self, positions_m: np.ndarray, patch_size_m: float | None = None) -> np.ndarray:
        """Facets that face each position and are not hidden by other facets.

        A facet counts as seen from p when its normal points towards p and the ray from p
        through the facet centroid first hits that facet.

        With ``patch_size_m``, facets are grouped into patches (the facets whose centroids share
        a cube of that size) and one ray per patch decides for every facing facet of the patch:
        about four times fewer rays at 2.5 cm on a body mesh, errors only along silhouettes.
        Meant for weak paths such as body-room multipath, where the exact test costs most.
        The ray of a patch goes through the centroid of its facing facet of lowest index.

        The positions are handled in blocks of ``_LIT_BLOCK_POSITIONS`` (one Embree call per
        block); every facing test, ray and hit is the one a position-by-position loop would give
        (``tests/test_body_echo.py`` keeps such a loop and checks the masks are identical).

        positions_m: (N, 3). Returns (N, F) bool.
        """
        positions = _as_points("positions_m", positions_m)
        lit = np.zeros((len(positions), self.n_faces), dtype=bool)
        grouping = None if patch_size_m is None else self._patch_grouping(patch_size_m)
        for first in range(0, len(positions), _LIT_BLOCK_POSITIONS):
            block = slice(first, first + _LIT_BLOCK_POSITIONS)
            lit[block] = self._lit_block(positions[block], grouping)
        return lit

    def _lit_block(self, positions: np.ndarray, grouping) -> np.ndarray:
        """``lit_facets`` of (n, 3) positions, ``grouping`` from ``_patch_grouping`` or None (exact)."""
        facing = self.facing(positions)
        if grouping is None:
            ray_position, cast = np.nonzero(facing)   # position-major, facets ascending: the loop's order
        else:
            patch, order, group_start = grouping
            ray_position, cast = _first_of_each_group(facing[:, order], group_start)
            cast = order[cast]   # the facing facet of lowest index of each patch
        if len(cast) == 0:   # nothing faces any of these positions
            return facing
        # The same float64 arithmetic as one position at a time: centroid - p, divided by its norm
        # (row by row, so the rays do not depend on which other positions share the call).
        directions = self.centroids_m[cast] - positions[ray_position]
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        hit = self.intersector.intersects_first(positions[ray_position], directions)
        seen = hit == cast
        if grouping is None:
            lit = np.zeros_like(facing)
            lit[ray_position[seen], cast[seen]] = True
            return lit
        visible_patch = np.zeros((len(positions), group_start.size), dtype=bool)
        visible_patch[ray_position[seen], patch[cast[seen]]] = True
        return facing & visible_patch[:, patch]

    def facing(self, positions_m: np.ndarray) -> np.ndarray:
        """(N, F) bool: facet f faces position p, i.e. (centroid_f - p) . normal_f < 0.

        The booleans are those of ``np.einsum("ij,ij->i", centroids_m - p, normals) < 0``, one
        position at a time (degenerate facets, of zero normal, face nothing). They are computed as
        centroid.normal - p.normal, one matrix product for all positions, with a bound on the
        rounding error of both forms: c.n - p.n and the per-position sum each err by at most
        4 u (|c|.|n| + |p|.|n|) (u = 2^-53: three products and their sum), and
        |c|.|n| + |p|.|n| <= max_f |c_f|.|n_f| + sum|p| as |n| <= 1 per component. So wherever
        the fast value's magnitude exceeds ``_FACING_SLACK`` (over ten times the sum of both
        errors) times that scale, both have the exact value's sign. The few facets within the
        slack (a plane that nearly passes through p) are computed the per-position way.

        positions_m: (N, 3) metres, finite.
        """
        positions = np.asarray(positions_m, dtype=float).reshape(-1, 3)
        centroid_dot_normal, scale = self._facing_terms()
        scores = positions @ self.normals.T
        np.subtract(centroid_dot_normal, scores, out=scores)   # in place: these arrays are large
        slack = _FACING_SLACK * (scale + np.abs(positions).sum(axis=1, keepdims=True)) + _TINY_SLACK
        facing = scores < -slack
        unsure = np.abs(scores, out=scores) <= slack
        if unsure.any():
            rows, cols = np.nonzero(unsure)
            to_facet = self.centroids_m[cols] - positions[rows]
            facing[rows, cols] = np.einsum("ij,ij->i", to_facet, self.normals[cols]) < 0
        return facing

    def _facing_terms(self) -> tuple[np.ndarray, float]:
        """((F,) centroid . normal, max_f |centroid_f| . |normal_f|), cached: ``facing``'s terms."""
        terms = self._cache.get("facing")
        if terms is None:
            terms = (np.einsum("fd,fd->f", self.centroids_m, self.normals),
                     float(np.einsum("fd,fd->f", np.abs(self.centroids_m), np.abs(self.normals)).max()))
            self._cache["facing"] = terms
        return terms

    def slab_boxes(self, n_slabs: int, margin_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Bounding boxes of the mesh and of its faces in z slabs, for pruning segments before ray casting.

        Returns (lo (3,), hi (3,), slab_lo (K, 3), slab_hi (K, 3)): the mesh's bounding box grown by
        ``margin_m``; ``n_slabs`` equal z slabs between lo[2] and hi[2]; for each slab that a face's z
        range reaches (K <= n_slabs, ascending z), the bounding box of those faces grown by ``margin_m``,
        its z range clipped to the slab's (grown by ``margin_m``). A face of z range [zl, zh] reaches
        slab [z0, z1] when zh >= z0 and zl <= z1. Conservative: every face lies in the boxes of the slabs
        it reaches. Only minima, maxima and the margin's one addition: the numbers of a plain per-slab loop,
        bit for bit (``tests/test_body_echo.py``), which the shadowing's pruning used before.

        Computed once per (n_slabs, margin_m) and mesh; the arrays returned are copies.
        n_slabs: >= 1. margin_m: >= 0, metres.
        """
        key = ("slab_boxes", int(n_slabs), float(margin_m))
        boxes = self._cache.get(key)
        if boxes is None:
            boxes = _slab_boxes(self.vertices_m[self.faces], int(n_slabs), float(margin_m))
            self._cache[key] = boxes
        return tuple(array.copy() for array in boxes)

    def _patch_grouping(self, patch_size_m: float):
        """(patch (F,), order (F,), group_start (P,)) for ``patch_size_m``, cached.

        ``order`` lists the facets by patch, ascending index within a patch (a stable sort), so
        patch k's facets are order[group_start[k]: group_start[k + 1]] (to the end for the last).
        """
        key = ("patches", float(patch_size_m))
        grouping = self._cache.get(key)
        if grouping is None:
            patch = self.patches(patch_size_m)
            order = np.argsort(patch, kind="stable")
            group_start = np.concatenate([[0], np.cumsum(np.bincount(patch))[:-1]])
            grouping = (patch, order, group_start)
            self._cache[key] = grouping
        return grouping


def _slab_boxes(triangles: np.ndarray, n_slabs: int, margin_m: float):
    """``FacetMesh.slab_boxes`` of (F, 3, 3) triangles: each face's slabs found by bisection, then one
    sorted reduction per slab instead of a pass over all faces per slab."""
    face_lo = np.minimum(np.minimum(triangles[:, 0], triangles[:, 1]), triangles[:, 2])   # exact, as .min(axis=1)
    face_hi = np.maximum(np.maximum(triangles[:, 0], triangles[:, 1]), triangles[:, 2])
    lo = face_lo.min(axis=0) - margin_m
    hi = face_hi.max(axis=0) + margin_m
    edges = np.linspace(lo[2], hi[2], n_slabs + 1)   # slab k is [edges[k], edges[k + 1]]
    first = np.searchsorted(edges[1:], face_lo[:, 2], side="left")        # lowest k with edges[k + 1] >= zl
    last = np.searchsorted(edges[:-1], face_hi[:, 2], side="right") - 1   # highest k with edges[k] <= zh
    count = np.maximum(last - first + 1, 0)
    face = np.repeat(np.arange(len(triangles)), count)
    slab = np.repeat(first, count) + np.arange(len(face)) - np.repeat(np.cumsum(count) - count, count)
    order = np.argsort(slab, kind="stable")
    slab, face = slab[order], face[order]
    present, start = np.unique(slab, return_index=True)
    slab_lo = np.minimum.reduceat(face_lo[face], start, axis=0) - margin_m
    slab_hi = np.maximum.reduceat(face_hi[face], start, axis=0) + margin_m
    slab_lo[:, 2] = np.maximum(slab_lo[:, 2], edges[present] - margin_m)
    slab_hi[:, 2] = np.minimum(slab_hi[:, 2], edges[present + 1] + margin_m)
    return lo, hi, slab_lo, slab_hi


def _first_of_each_group(flags: np.ndarray, group_start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the first True of each row within each group of consecutive columns.

    flags: (N, F) bool; the groups are the columns from group_start[k] (ascending, from 0) to
    the next start, each non-empty. Row-major order: by row, then by group.
    """
    n_columns = flags.shape[1]
    column = np.where(flags, np.arange(n_columns, dtype=np.int32), np.int32(n_columns))
    first = np.minimum.reduceat(column, group_start, axis=1)   # (N, groups); n_columns: none True
    rows, _ = np.nonzero(first < n_columns)
    return rows, first[first < n_columns].astype(np.int64)


@dataclass(frozen=True)
class BodyEcho:
    """Impulse responses of a body's echo.

    Attributes:
        impulse_responses: (C, T) float64, one row per output channel (by default one per
            (tx, rx) pair, pair p = tx * M + rx), t = 0 at emission, normalisation as in the
            module docstring.
        pairs: (P, 2) int64 (tx index, rx index) of each pair.
        channels: (P,) int64 output row of each pair (pairs sharing a row are summed).
        n_lit_facets: (P,) int64 facets seen by both transducers of each pair.
        sample_rate_hz, speed_of_sound_m_s: as used.
    """

    impulse_responses: np.ndarray
    pairs: np.ndarray
    channels: np.ndarray
    n_lit_facets: np.ndarray
    sample_rate_hz: float
    speed_of_sound_m_s: float


#: Topologies (n_vertices, faces) found closed and consistently wound, most recent last: a posed body keeps
#: its model's faces from frame to frame, so the edge sort runs once per topology, not once per frame.
_CLOSED_TOPOLOGIES: list[tuple[int, np.ndarray]] = []
_CLOSED_TOPOLOGIES_KEPT = 4


def _edge_defects_cached(faces: np.ndarray, n_vertices: int) -> tuple[int, int]:
    """``_edge_defects``, remembering the last few topologies that had none (compared element by element)."""
    for known_vertices, known_faces in reversed(_CLOSED_TOPOLOGIES):
        if known_vertices == n_vertices and known_faces.shape == faces.shape and np.array_equal(known_faces, faces):
            return 0, 0
    defects = _edge_defects(faces, n_vertices)
    if defects == (0, 0):
        _CLOSED_TOPOLOGIES.append((n_vertices, faces.copy()))
        del _CLOSED_TOPOLOGIES[:-_CLOSED_TOPOLOGIES_KEPT]
    return defects


def _edge_defects(faces: np.ndarray, n_vertices: int) -> tuple[int, int]:
    """(edges on a boundary, edges whose faces are wound the same way) of a triangle mesh.

    In a closed, consistently wound mesh every edge a-b of one face appears as b-a in exactly one
    other. Each directed edge is keyed as (undirected edge) * 2 + (a < b); sorted, such a mesh's
    keys come in pairs (2u, 2u + 1), which one sort and one comparison confirm. Only a mesh that
    fails this is counted edge by edge.
    """
    a = faces.ravel()
    b = faces[:, [1, 2, 0]].ravel()
    keys = (np.minimum(a, b) * np.int64(n_vertices) + np.maximum(a, b)) * 2 + (a < b)
    keys.sort()
    if len(keys) % 2 == 0 and np.all(keys[1::2] == keys[0::2] + 1) and np.all(keys[0::2] % 2 == 0):
        return 0, 0
    edges, start, count = np.unique(keys >> 1, return_index=True, return_counts=True)
    forward = np.add.reduceat(keys & 1, start)  # faces that run the edge from lower to higher index
    n_open = int(np.count_nonzero(count % 2 == 1))  # shared by one face (or by three, five...)
    n_misoriented = int(np.count_nonzero((count % 2 == 0) & (2 * forward != count)))
    return n_open, n_misoriented


def _as_points(name: str, value) -> np.ndarray:
    points = np.asarray(value, dtype=float)
    if points.ndim == 1 and points.shape == (3,):
        points = points[None, :]
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 1:
        raise SimulationInputError(f"{name} has shape {np.shape(value)}; pass an (N, 3) array of positions in metres.")
    if not np.all(np.isfinite(points)):
        raise SimulationInputError(f"{name} contains NaN or infinite coordinates; pass finite metres.")
    return np.ascontiguousarray(points)


def _positive(name: str, value, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) or value <= 0:
        raise SimulationInputError(f"{name} = {value!r} must be a positive finite number, e.g. {example}.")
    return float(value)


def body_impulse_responses(
    mesh: FacetMesh | trimesh.Trimesh,
    tx_positions_m: np.ndarray,
    rx_positions_m: np.ndarray,
    n_samples: int,
    *,
    sample_rate_hz: float = 96_000.0,
    speed_of_sound_m_s: float = 343.0,
    reflection_coefficient: float | np.ndarray = DEFAULT_REFLECTION_COEFFICIENT,
    pairs: np.ndarray | None = None,
    channels: np.ndarray | None = None,
    n_channels: int | None = None,
    pair_gains: np.ndarray | None = None,
    lit: np.ndarray | None = None,
    oversampling: int = 8,
    max_delay_error_s: float | None = None,
    facet_gains: np.ndarray | None = None,
) -> BodyEcho:
    """Physical-optics echo of a mesh for transmitter/receiver pairs.

    Args:
        mesh: ``FacetMesh`` (reuse it across calls) or ``trimesh.Trimesh``; closed, normals out
            (see ``FacetMesh``; a thin plate: ``FacetMesh(..., open_surface=True)``).
        tx_positions_m: (S, 3) transmitter (speaker or image-speaker) positions, metres.
        rx_positions_m: (M, 3) receiver (microphone or image-microphone) positions, metres.
        n_samples: T, length of each impulse response (t = 0 at emission).
        sample_rate_hz: fs of the output.
        speed_of_sound_m_s: c.
        reflection_coefficient: pressure reflection coefficient R in [-1, 1], scalar or (F,).
        pairs: (P, 2) int (tx, rx) indices; default all S x M pairs, p = tx * M + rx.
        channels: (P,) int output row of each pair; pairs sharing a row are summed (e.g. the
            image-source paths reaching one microphone). Default: row p for pair p.
        n_channels: number of output rows C; default max(channels) + 1.
        pair_gains: (P,) real gain per pair (e.g. a wall's reflection coefficient); default 1.
        lit: optional precomputed ``mesh.lit_facets(np.vstack([tx, rx]))``, (S + M, F) bool.
        oversampling: Q of the internal time grid (>= 4; default 8, see the README for its aliasing).
        max_delay_error_s: split facets whose delay departs from linear by more than this;
            default 0.02 / fs.
        facet_gains: optional (S + M, F) real gain of each transmitter's and receiver's transducer
            towards each facet (its directivity, ``simulator.directivity.gain`` towards the centroid, at one
            frequency of the caller's choosing): a facet's contribution to pair (s, r) is multiplied by
            facet_gains[s, f] * facet_gains[S + r, f] (frequency independent: the echo is accumulated in
            time). None: gain 1 (omni), the weights exactly as without.
    Returns:
        BodyEcho with impulse_responses of shape (C, T).
    Raises:
        SimulationInputError: a bad argument, a mesh that is not a closed outward surface, or
            a transducer inside the mesh (each would otherwise give a silent, all-zero echo).
    """
    mesh, tx, rx = _checked_geometry(mesh, tx_positions_m, rx_positions_m)
    n_samples, fs, c, oversampling, max_delay_error_s = _checked_numbers(
        n_samples, sample_rate_hz, speed_of_sound_m_s, oversampling, max_delay_error_s)
    reflection = _checked_reflection(mesh, reflection_coefficient)
    pairs, channels, n_channels, gains = _checked_pairs(pairs, channels, n_channels, pair_gains, len(tx), len(rx))
    positions = np.vstack([tx, rx])
    lit = _checked_lit(lit, positions, mesh)
    # last, as it casts rays (only for points within the mesh's bounding box)
    mesh.check_outside("tx_positions_m", tx)
    mesh.check_outside("rx_positions_m", rx)

    lit = np.ascontiguousarray(_lit_by_both(mesh, positions) if lit is None else lit)
    pair_tx = np.ascontiguousarray(pairs[:, 0], dtype=np.int64)
    pair_rx = np.ascontiguousarray(pairs[:, 1], dtype=np.int64) + len(tx)
    pair_channel = np.ascontiguousarray(channels, dtype=np.int64)

    used = np.zeros(len(positions), dtype=bool)
    used[pair_tx] = True
    used[pair_rx] = True
    vertex_distance = _kernels.vertex_distances(mesh.vertices_m, positions, used)
    bounds, n_lit = _kernels.pair_delay_bounds(
        mesh.faces, mesh.normals, mesh.centroids_m, mesh.max_edges_m, lit, positions, vertex_distance,
        pair_tx, pair_rx, fs / c,
    )
    out = np.zeros((n_channels, n_samples))
    result = BodyEcho(out, pairs.astype(np.int64), pair_channel, n_lit, fs, c)
    windows = _echo_windows(bounds, pair_channel, n_channels, n_samples)
    if windows is None:
        return result
    active, start, stop, window = windows
    active_channels = np.flatnonzero(active)
    row_of_channel = np.full(n_channels, -1, dtype=np.int64)
    row_of_channel[active_channels] = np.arange(len(active_channels))
    keep = active[pair_channel]
    grid = np.zeros((len(active_channels), window * oversampling))
    deposit_args = (pair_tx[keep], pair_rx[keep], row_of_channel[pair_channel[keep]], np.ascontiguousarray(gains[keep]))
    if facet_gains is None:
        groups = [(reflection, np.ones(len(deposit_args[0]), dtype=bool))]
    else:  # one deposit per run of pairs with the same (tx, rx), in the pairs' order (so all-ones gains change no
        # bit): the facets' reflection coefficients carry both transducers' gains
        facet_gains = _checked_facet_gains(facet_gains, len(positions), mesh.n_faces)
        tx_rx = deposit_args[0] * len(positions) + deposit_args[1]
        starts = np.flatnonzero(np.r_[True, tx_rx[1:] != tx_rx[:-1]]) if len(tx_rx) else np.zeros(0, dtype=np.int64)
        bounds = np.r_[starts, len(tx_rx)]
        groups = []
        for first, last in zip(bounds[:-1], bounds[1:]):
            mine = np.zeros(len(tx_rx), dtype=bool)
            mine[first:last] = True
            t, r = deposit_args[0][first], deposit_args[1][first]
            groups.append((np.ascontiguousarray(reflection * facet_gains[t] * facet_gains[r]), mine))
    for facet_reflection, mine in groups:
        _kernels.deposit_pair_echoes(  # the facets' delay-area densities on the fine grid
            mesh.vertices_m, mesh.faces, mesh.normals, mesh.areas_m2, mesh.centroids_m, mesh.max_edges_m,
            facet_reflection, lit, positions, vertex_distance, *(np.ascontiguousarray(a[mine]) for a in deposit_args),
            fs * oversampling / c, grid, start[active_channels] * oversampling, max_delay_error_s * fs * oversampling,
        )
    _add_band_limited(out, grid, active_channels, start, stop, window, oversampling, fs, c)
    return result


def _checked_geometry(mesh, tx_positions_m, rx_positions_m) -> tuple[FacetMesh, np.ndarray, np.ndarray]:
    """The mesh as a ``FacetMesh`` and the transmitters (S, 3) and receivers (M, 3)."""
    if isinstance(mesh, trimesh.Trimesh):
        mesh = FacetMesh.from_trimesh(mesh)
    if not isinstance(mesh, FacetMesh):
        raise SimulationInputError(f"mesh is a {type(mesh).__name__}; pass a FacetMesh or a trimesh.Trimesh.")
    return mesh, _as_points("tx_positions_m", tx_positions_m), _as_points("rx_positions_m", rx_positions_m)


def _checked_numbers(n_samples, sample_rate_hz, speed_of_sound_m_s, oversampling, max_delay_error_s):
    """(n_samples, fs, c, oversampling, max_delay_error_s) checked, the delay error defaulted."""
    n_samples = check_whole("n_samples", n_samples, 1, error=SimulationInputError)
    fs = _positive("sample_rate_hz", sample_rate_hz, "96000")
    c = _positive("speed_of_sound_m_s", speed_of_sound_m_s, "343")
    oversampling = check_whole("oversampling", oversampling, 4, error=SimulationInputError)
    max_delay_error_s = 0.02 / fs if max_delay_error_s is None else max_delay_error_s
    _positive("max_delay_error_s", max_delay_error_s, "2e-7")
    return n_samples, fs, c, oversampling, max_delay_error_s


def _lit_by_both(mesh: FacetMesh, positions: np.ndarray) -> np.ndarray:
    """(N, F) facets lit from each position: hidden-surface removal, one ray fan per distinct position."""
    unique_positions, inverse = np.unique(positions, axis=0, return_inverse=True)
    return mesh.lit_facets(unique_positions)[inverse.ravel()]


def _checked_reflection(mesh: FacetMesh, reflection_coefficient) -> np.ndarray:
    """(F,) pressure reflection coefficient of every face, in [-1, 1]."""
    reflection = np.asarray(reflection_coefficient, dtype=float)
    if reflection.ndim == 0:
        reflection = np.full(mesh.n_faces, float(reflection))
    if reflection.shape != (mesh.n_faces,):
        raise SimulationInputError(
            f"reflection_coefficient has shape {reflection.shape}; "
            f"pass a scalar or one value per face ({mesh.n_faces},)."
        )
    if not np.all(np.isfinite(reflection)) or np.any(np.abs(reflection) > 1):
        raise SimulationInputError("reflection_coefficient must lie in [-1, 1] (pressure reflection coefficient).")
    return reflection


def _checked_pairs(pairs, channels, n_channels, pair_gains, n_tx: int, n_rx: int):
    """(pairs (P, 2), channels (P,), n_channels, gains (P,)) with their defaults filled in."""
    if pairs is None:
        pairs = np.stack(np.meshgrid(np.arange(n_tx), np.arange(n_rx), indexing="ij"), -1).reshape(-1, 2)
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
        raise SimulationInputError(
            f"pairs has shape {pairs.shape} / dtype {pairs.dtype}; pass a (P, 2) integer array of (tx, rx)."
        )
    if len(pairs) and (pairs.min() < 0 or pairs[:, 0].max() >= n_tx or pairs[:, 1].max() >= n_rx):
        raise SimulationInputError(f"pairs index beyond the {n_tx} transmitters / {n_rx} receivers; fix pairs.")
    n_pairs = len(pairs)
    channels = np.arange(n_pairs) if channels is None else np.asarray(channels)
    if channels.shape != (n_pairs,) or (n_pairs and not np.issubdtype(channels.dtype, np.integer)):
        raise SimulationInputError(
            f"channels has shape {channels.shape}; pass one integer output row per pair ({n_pairs},).")
    if n_pairs and channels.min() < 0:
        raise SimulationInputError("channels must be >= 0 (output rows).")
    n_channels = (int(channels.max()) + 1 if n_pairs else 0) if n_channels is None else \
        check_whole("n_channels", n_channels, 0, error=SimulationInputError)
    if n_pairs and channels.max() >= n_channels:
        raise SimulationInputError(f"channels reach {channels.max()} but n_channels = {n_channels}; raise n_channels.")
    gains = np.ones(n_pairs) if pair_gains is None else np.asarray(pair_gains, dtype=float)
    if gains.shape != (n_pairs,) or not np.all(np.isfinite(gains)):
        raise SimulationInputError(f"pair_gains has shape {gains.shape}; pass one finite gain per pair ({n_pairs},).")
    return pairs, channels, n_channels, gains


def _checked_lit(lit, positions: np.ndarray, mesh: FacetMesh) -> np.ndarray | None:
    if lit is None:
        return None
    lit = np.asarray(lit, dtype=bool)
    if lit.shape != (len(positions), mesh.n_faces):
        raise SimulationInputError(
            f"lit has shape {lit.shape}; pass mesh.lit_facets(vstack([tx, rx])), "
            f"shape ({len(positions)}, {mesh.n_faces})."
        )
    return lit


def _checked_facet_gains(facet_gains, n_positions: int, n_faces: int) -> np.ndarray:
    gains = np.asarray(facet_gains, dtype=float)
    if gains.shape != (n_positions, n_faces) or not np.all(np.isfinite(gains)):
        raise SimulationInputError(
            f"facet_gains has shape {gains.shape}; pass one finite gain per transducer (tx then rx) and facet, "
            f"shape ({n_positions}, {n_faces}).")
    return gains


def _echo_windows(bounds: np.ndarray, pair_channel: np.ndarray, n_channels: int, n_samples: int):
    """Echo window of each channel in output samples, from the pairs' delay bounds (P, 2):
    (active (C,) bool, start (C,), stop (C,), FFT window length), or None when no echo arrives."""
    lo = np.full(n_channels, np.inf)
    hi = np.full(n_channels, -np.inf)
    np.minimum.at(lo, pair_channel, bounds[:, 0])
    np.maximum.at(hi, pair_channel, bounds[:, 1])
    active = np.isfinite(lo) & (lo < n_samples + _WINDOW_PAD_SAMPLES)
    if not np.any(active):
        return None
    start = np.where(active, np.floor(np.where(active, lo, 0)) - _WINDOW_PAD_SAMPLES, 0).astype(np.int64)
    stop = np.where(active, np.ceil(np.minimum(np.where(active, hi, 0), n_samples)) + _WINDOW_PAD_SAMPLES, 0)
    # the extra pad keeps the circular wrap of the band-limiting filter below 3e-5
    window = scipy.fft.next_fast_len(int((stop - start)[active].max()) + _WINDOW_PAD_SAMPLES + 1, real=True)
    window += window % 2
    return active, start, stop, window


def _add_band_limited(out, grid, active_channels, start, stop, window: int, oversampling: int, fs: float,
                      c: float) -> None:
    """Turn the fine grid's second differences (rows of ``active_channels``) into densities, then
    d/dt, hat compensation, band limit and decimation (one FFT per channel), added into ``out`` (C, T)."""
    n_samples = out.shape[1]
    grid = np.cumsum(np.cumsum(grid, axis=1), axis=1)  # second differences -> densities
    for row, ch in enumerate(active_channels):  # echoes arriving after the output ends
        grid[row, int(stop[ch] - start[ch]) * oversampling :] = 0.0
    spectrum = scipy.fft.rfft(grid, axis=1)[:, : window // 2 + 1]
    f_hz = np.arange(window // 2 + 1) * fs / window
    hat_gain = np.sinc(f_hz / (fs * oversampling)) ** 2
    transfer = (2j * np.pi * f_hz / c) / (16 * np.pi**2) * output_lowpass(f_hz, fs) / hat_gain
    responses = scipy.fft.irfft(spectrum * transfer, window, axis=1)
    for row, ch in enumerate(active_channels):
        first = max(start[ch], 0)
        last = min(start[ch] + window, n_samples)
        if last > first:
            out[ch, first:last] += responses[row, first - start[ch] : last - start[ch]]
