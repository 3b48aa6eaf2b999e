"""Clothing: what a body's surface is made of, region by region, and where a loose garment's surface lies.

Skin is acoustically hard: its characteristic impedance (~1.6 MRayl) against air's (413 Rayl) gives a pressure
reflection coefficient |R| = 0.9995. A textile on skin is a thin porous layer that absorbs 10-60 % of the incident
energy at 20-30 kHz, |R| = sqrt(1 - alpha) ~ 0.6-0.95, and a loose garment moves the reflecting surface
outwards by up to a few centimetres (the skin behind it still reflects what the textile passes; at 1-2 cm
the two echoes are 0.06-0.12 ms apart, within one band-limited pulse of a 3 kHz sub-band, so one surface
at the garment with the textile's coefficient stands for both).

The model, per subject:

* every facet belongs to a region (:data:`REGIONS`) of the 15-joint skeleton: the region of the bone
  segment nearest its centroid; beyond the wrist a forearm's facets are the hand's, beyond the ankle a
  shin's are the foot's (:func:`facet_regions`);
* a drawn outfit (:class:`ClothingModel`, :class:`ClothingDraw`): a top (sleeveless, short or long sleeves),
  a bottom (shorts or trousers) and shoes, each garment with a reflection coefficient and (top and bottom) an
  offset of its surface from the skin; uncovered regions (head, hands, bare arms and legs) are skin;
* :func:`dress` gives the mesh's vertices moved out along their normals by the garment offsets (a vertex
  takes the largest offset among its facets, so a hem is a short ramp, not a crack) and each facet's
  reflection coefficient, for :func:`simulator.body_echo.body_impulse_responses`.

Limits: a garment offset follows the skin's normals, so where two body parts touch (an arm against the
torso) the offset surfaces may cross each other; hair is skin here.

Checks (``tests/test_clothing.py``): a sphere's monostatic echo scales by exactly the coefficient of the
region facing the rig; an offset d moves a sphere's echo to the delay of a sphere of radius a + d (closed
form, within 0.1 sample); every region of a posed Anny body is found where its joints are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bodies.joints import JOINT_INDEX, JOINT_NAMES
from core.checks import check_finite_array
from simulator.directivity import _row_norms
from simulator.errors import SimulationInputError

__all__ = ["REGIONS", "SLEEVES", "BOTTOMS", "ClothingDraw", "ClothingModel", "dress", "facet_regions",
           "vertex_normals"]

REGIONS = ("head", "torso", "upper_arms", "forearms", "hands", "thighs", "shins", "feet")
SLEEVES = ("sleeveless", "short", "long")
BOTTOMS = ("shorts", "trousers")
_R = {name: i for i, name in enumerate(REGIONS)}

# (joint a, joint b, region of the segment, region of what lies beyond b)
_BONES = (
    ("neck", "head", "head", "head"),
    ("pelvis", "neck", "torso", "torso"),
    ("neck", "r_shoulder", "torso", "torso"), ("neck", "l_shoulder", "torso", "torso"),
    ("pelvis", "r_hip", "torso", "torso"), ("pelvis", "l_hip", "torso", "torso"),
    ("r_shoulder", "r_elbow", "upper_arms", "upper_arms"), ("l_shoulder", "l_elbow", "upper_arms", "upper_arms"),
    ("r_elbow", "r_wrist", "forearms", "hands"), ("l_elbow", "l_wrist", "forearms", "hands"),
    ("r_hip", "r_knee", "thighs", "thighs"), ("l_hip", "l_knee", "thighs", "thighs"),
    ("r_knee", "r_ankle", "shins", "feet"), ("l_knee", "l_ankle", "shins", "feet"),
)
_ERROR = SimulationInputError


def facet_regions(vertices_m, faces, joints_m) -> np.ndarray:
    """(F,) int index into :data:`REGIONS` of every facet: the region of the skeleton bone nearest its centroid.

    Args:
        vertices_m: (V, 3) mesh vertices; faces: (F, 3) vertex indices; joints_m: (15, 3) in
            :data:`bodies.joints.JOINT_NAMES` order, the same frame as the vertices.
    """
    vertices = check_finite_array("vertices_m", vertices_m, shape=(None, 3), error=_ERROR)
    joints = check_finite_array("joints_m", joints_m, shape=(len(JOINT_NAMES), 3), error=_ERROR)
    faces = np.asarray(faces)
    # the mean of the three corners, (v0 + v1 + v2) / 3 as mean(axis=1) sums them, without the (F, 3, 3) copy
    corners = [np.take(vertices, faces[:, k], axis=0) for k in range(3)]
    centroids = (corners[0] + corners[1] + corners[2]) / 3.0                          # (F, 3)
    rows = centroids.T.copy()   # (3, F): the per-bone arithmetic below runs along contiguous rows
    distance = np.full(len(faces), np.inf)
    region = np.zeros(len(faces), dtype=np.int64)
    for a_name, b_name, inside, beyond in _BONES:
        a, b = joints[JOINT_INDEX[a_name]], joints[JOINT_INDEX[b_name]]
        axis = b - a
        length2 = float(axis @ axis)
        t = (centroids - a) @ axis / length2 if length2 > 0 else np.zeros(len(faces))
        # distance to the nearest point of the bone: the same products and sums as np.linalg.norm(..., axis=1)
        # of the (F, 3) differences, bit for bit, coordinate by coordinate
        r = rows - (a[:, None] + axis[:, None] * np.clip(t, 0.0, 1.0))
        d = np.sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2])
        closer = d < distance  # strictly: of equally near bones the first keeps the facet
        np.copyto(distance, d, where=closer)
        np.copyto(region, np.where(t > 1.0, _R[beyond], _R[inside]), where=closer)
    return region


def vertex_normals(vertices_m: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit outward normals of a closed mesh's vertices: the area-weighted mean of their facets'."""
    v = np.asarray(vertices_m, float)
    cross = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])   # 2 x area x normal
    # Sum of the facets' cross products at each corner vertex; bincount adds them in the order
    # np.add.at(normals, faces[:, k], cross) for k = 0, 1, 2 would (the same sums, bit for bit), much faster.
    corner = np.asarray(faces).T.ravel()
    normals = np.stack([np.bincount(corner, weights=np.tile(cross[:, axis], 3), minlength=len(v))
                        for axis in range(3)], axis=1)
    length = _row_norms(normals)[:, None]
    return normals / np.where(length > 0, length, 1.0)


@dataclass(frozen=True)
class ClothingDraw:
    """One subject's outfit.

    Attributes:
        sleeves: one of :data:`SLEEVES`; bottom: one of :data:`BOTTOMS`.
        region_reflection: (len(REGIONS),) pressure reflection coefficient of each region's surface.
        region_offset_m: (len(REGIONS),) distance of each region's surface from the skin (0 for skin, shoes).
    """

    sleeves: str
    bottom: str
    region_reflection: tuple[float, ...]
    region_offset_m: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"sleeves": self.sleeves, "bottom": self.bottom,
                "region_reflection": dict(zip(REGIONS, self.region_reflection)),
                "region_offset_m": dict(zip(REGIONS, self.region_offset_m))}


def _check_range(name: str, value, low: float, high: float) -> tuple[float, float]:
    pair = check_finite_array(name, value, error=_ERROR).ravel()
    if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
        raise _ERROR(f"{name} = {value!r}: give (low, high) with {low:g} <= low <= high <= {high:g}")
    return float(pair[0]), float(pair[1])


@dataclass(frozen=True)
class ClothingModel:
    """How outfits are drawn (defaults: everyday indoor clothing).

    Attributes:
        skin_reflection_range: |R| of bare skin (and hair), drawn once per subject.
        garment_reflection_range: |R| of each garment (top, bottom), drawn per garment.
        shoe_reflection_range: |R| of the shoes (leather, rubber: hard).
        garment_offset_m_range: a top's and a bottom's distance from the skin, drawn per garment.
        sleeve_probabilities: of sleeveless, short and long sleeves; trousers_probability: else shorts.
    """

    skin_reflection_range: tuple[float, float] = (0.97, 1.0)
    garment_reflection_range: tuple[float, float] = (0.6, 0.95)
    shoe_reflection_range: tuple[float, float] = (0.85, 1.0)
    garment_offset_m_range: tuple[float, float] = (0.0, 0.02)
    sleeve_probabilities: tuple[float, float, float] = (0.15, 0.45, 0.4)
    trousers_probability: float = 0.7

    def __post_init__(self) -> None:
        for name in ("skin_reflection_range", "garment_reflection_range", "shoe_reflection_range"):
            object.__setattr__(self, name, _check_range(name, getattr(self, name), 0.0, 1.0))
        object.__setattr__(self, "garment_offset_m_range",
                           _check_range("garment_offset_m_range", self.garment_offset_m_range, 0.0, 0.05))
        p = check_finite_array("sleeve_probabilities", self.sleeve_probabilities, shape=(3,), error=_ERROR)
        if np.any(p < 0) or abs(p.sum() - 1.0) > 1e-9:
            raise _ERROR(f"sleeve_probabilities = {self.sleeve_probabilities!r}: give three non-negative "
                         "probabilities (sleeveless, short, long) summing to 1")
        object.__setattr__(self, "sleeve_probabilities", tuple(float(x) for x in p))
        q = self.trousers_probability
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
            raise _ERROR(f"trousers_probability = {q!r}: give a probability in [0, 1], e.g. 0.7")

    def draw(self, rng: np.random.Generator) -> ClothingDraw:
        """One outfit."""
        if not isinstance(rng, np.random.Generator):
            raise _ERROR(f"rng = {rng!r}: pass a numpy.random.Generator, e.g. np.random.default_rng(0)")
        sleeves = SLEEVES[int(rng.choice(3, p=self.sleeve_probabilities))]
        bottom = "trousers" if rng.uniform() < self.trousers_probability else "shorts"
        skin = rng.uniform(*self.skin_reflection_range)
        top_r, bottom_r = rng.uniform(*self.garment_reflection_range, size=2)
        top_d, bottom_d = rng.uniform(*self.garment_offset_m_range, size=2)
        shoes = rng.uniform(*self.shoe_reflection_range)
        reflection = dict.fromkeys(REGIONS, skin)
        offset = dict.fromkeys(REGIONS, 0.0)
        top = ["torso"] + {"sleeveless": [], "short": ["upper_arms"], "long": ["upper_arms", "forearms"]}[sleeves]
        legs = ["thighs"] + (["shins"] if bottom == "trousers" else [])
        for regions, r, d in ((top, top_r, top_d), (legs, bottom_r, bottom_d)):
            for name in regions:
                reflection[name], offset[name] = r, d
        reflection["feet"] = shoes
        return ClothingDraw(sleeves, bottom, tuple(float(reflection[n]) for n in REGIONS),
                            tuple(float(offset[n]) for n in REGIONS))


def dress(vertices_m, faces, joints_m, draw: ClothingDraw) -> tuple[np.ndarray, np.ndarray]:
    """((V, 3) vertices of the dressed surface, (F,) reflection coefficient of every facet).

    Vertices move out along :func:`vertex_normals` by the largest garment offset of their facets; facets
    keep the region of the undressed body (:func:`facet_regions`).
    """
    if not isinstance(draw, ClothingDraw):
        raise _ERROR(f"draw = {draw!r}: pass a simulator.clothing.ClothingDraw (ClothingModel().draw(rng))")
    faces = np.asarray(faces)
    region = facet_regions(vertices_m, faces, joints_m)
    reflection = np.asarray(draw.region_reflection, float)[region]
    facet_offset = np.asarray(draw.region_offset_m, float)[region]
    vertices = np.asarray(vertices_m, float)
    if not facet_offset.any():
        return vertices.copy(), reflection
    # each vertex takes the largest offset of its facets: a handful of distinct offsets (one per garment),
    # assigned in increasing order, so the last one written at a vertex is its largest
    offset = np.zeros(len(vertices))
    for value in np.unique(facet_offset[facet_offset > 0]):
        offset[faces[facet_offset == value].ravel()] = value
    return vertices + offset[:, None] * vertex_normals(vertices, faces), reflection
