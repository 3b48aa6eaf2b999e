"""Random rooms for data generation: :class:`RoomSampler` makes :class:`RoomScene` objects.

A scene is a furnished shoebox room, its air (temperature, humidity, hence speed of
sound and absorption), a transducer rig, a camera, and the floor region where the
person stands (``body_region``), which the camera sees whole.

How a scene is drawn (all randomness from the one ``np.random.Generator`` passed in,
so the same seed gives the same scene on any machine):

1. Floor sides uniform in [min_floor_side_m, max_floor_side_m] (default 5-10 m: the
   paper assumes rooms larger than 5 x 5 m so that the body's shadow is negligible;
   lower ``min_floor_side_m`` to study the shadow effect), height in 2.4-4 m, one
   material per surface from plausible lists, temperature and humidity.
2. A camera on a wall at 1-2 m height, looking at a square body region 1.5-3 m wide
   2.5-4.5 m away, shrunk until a person 1.95 m tall standing anywhere in it (plus a
   0.35 m reach around) projects inside the image.
3. A seat inside the body region, facing the camera (+-45 degrees); shelves against
   the walls; tables elsewhere, none of them hiding the body region from the camera.
4. A rig (co-located with probability ``colocated_probability``) on walls, shelves and
   tables around the body region.

With ``camera_rig`` (a :class:`rooms.rig.CameraRig`, a user's rig known in the camera frame) no
rig is drawn: step 2 keeps only a camera and body region for which the rig, carried by the camera,
lies in the room (``CAMERA_RIG_WALL_MARGIN_M`` from the shell) and every transducer stands
``CAMERA_RIG_CLEARANCE_M`` away from the body region on the floor plan (the region shrinks as for
the view); a rig reaching behind the camera moves the camera off its wall by as much. Furniture
keeps clear of the transducers, and a scene whose rig still ends up inside furniture is drawn again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .air import air_absorption_db_per_m, speed_of_sound_m_s
from .camera import AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX, AZURE_KINECT_COLOR_1080P_INTRINSICS, Camera
from .errors import RoomGeometryError, RoomInputError
from .furniture import Furniture, make_seat, make_shelf, make_table
from .materials import CEILING_MATERIALS, FLOOR_MATERIALS, FURNITURE_MATERIALS, WALL_MATERIALS, get_material
from .polygons import convex_polygons_overlap, segments_hit_triangles
from .rig import MOUNTS, CameraRig, TransducerRig, sample_rig
from .shapes import Room, ShoeboxRoom
from .validation import validate_body_inside, validate_inside

#: A camera rig's transducers must lie this far inside the room's shell (m): a speaker on a wall
#: stands a few centimetres off it, and a co-located microphone is simulated 2 cm above its speaker.
CAMERA_RIG_WALL_MARGIN_M = 0.05
#: ... and this far from the body region on the floor plan (m): the person's pelvis stays at least
#: this far from every transducer, so that a body does not walk into a speaker.
CAMERA_RIG_CLEARANCE_M = 0.6
#: Furniture keeps this far from a camera rig's transducers on the floor plan (m, half a side).
_CAMERA_RIG_STAND_HALF_M = 0.15
#: The camera stands this far from its wall (m), or further when a camera rig reaches behind it.
_CAMERA_WALL_OFFSET_M = 0.05

# Wall name -> (fixed axis, value is at 0 or at the room length, inward normal on the floor).
_WALLS = {
    "west": (0, 0, np.array([1.0, 0.0])),
    "east": (0, 1, np.array([-1.0, 0.0])),
    "south": (1, 0, np.array([0.0, 1.0])),
    "north": (1, 1, np.array([0.0, -1.0])),
}


@dataclass(frozen=True, eq=False)
class BodyRegion:
    """Axis-aligned rectangle on the floor where the person may stand (room frame, m).

    Attributes:
        xy_min_m: (2,) lower corner.
        xy_max_m: (2,) upper corner.
    """

    xy_min_m: np.ndarray
    xy_max_m: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "xy_min_m", np.asarray(self.xy_min_m, dtype=float).reshape(2))
        object.__setattr__(self, "xy_max_m", np.asarray(self.xy_max_m, dtype=float).reshape(2))

    @property
    def center_xy_m(self) -> np.ndarray:
        return (self.xy_min_m + self.xy_max_m) / 2

    @property
    def size_m(self) -> np.ndarray:
        return self.xy_max_m - self.xy_min_m

    def corners_xy(self, grow_m: float = 0.0) -> np.ndarray:
        """(4, 2) corners, grown outwards by ``grow_m``."""
        lo, hi = self.xy_min_m - grow_m, self.xy_max_m + grow_m
        return np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])

    def contains_xy(self, points_xy_m) -> np.ndarray:
        xy = np.asarray(points_xy_m, dtype=float).reshape(-1, 2)
        return np.all((xy >= self.xy_min_m) & (xy <= self.xy_max_m), axis=1)


@dataclass(frozen=True, eq=False)
class RoomScene:
    """One sampled environment.

    Attributes:
        room: the furnished room (``room.furniture`` includes the seat).
        rig: speakers and microphones.
        camera: the camera, seeing all of ``body_region``.
        temperature_c: air temperature, degrees C.
        relative_humidity_pct: relative humidity, percent.
        body_region: where the person stands.
        seat: the seat a sitting person uses (one of ``room.furniture``).
    """

    room: Room
    rig: TransducerRig
    camera: Camera
    temperature_c: float
    relative_humidity_pct: float
    body_region: BodyRegion
    seat: Furniture

    @property
    def speed_of_sound_m_s(self) -> float:
        return speed_of_sound_m_s(self.temperature_c)

    @property
    def seat_position_m(self) -> np.ndarray:
        """(3,) centre of the seat surface (its z is the seat height)."""
        return self.seat.seat_point_m.copy()

    @property
    def seat_facing_xy(self) -> np.ndarray:
        """(2,) unit direction a person sitting on the seat faces."""
        return self.seat.facing_xy.copy()

    def air_absorption_db_per_m(self, frequency_hz):
        """ISO 9613-1 absorption of this scene's air at ``frequency_hz``, dB/m."""
        return air_absorption_db_per_m(frequency_hz, self.temperature_c, self.relative_humidity_pct)

    def sample_body_position(self, rng: np.random.Generator, footprint_radius_m: float = 0.3, max_tries: int = 2000) -> np.ndarray:
        """A floor point (2,) in ``body_region`` where a body whose footprint is a disc of
        ``footprint_radius_m`` touches neither a wall nor any furniture."""
        if not footprint_radius_m >= 0:
            raise RoomInputError(f"footprint_radius_m = {footprint_radius_m}; give a radius >= 0 in metres.")
        batch = 256  # candidates tested at once (the clearances are vectorised)
        for _ in range(-(-max_tries // batch)):
            xy = rng.uniform(self.body_region.xy_min_m, self.body_region.xy_max_m, size=(batch, 2))
            free = (self.room.horizontal_clearance_m(xy) >= footprint_radius_m) & (
                self.room.furniture_clearance_m(xy) >= footprint_radius_m)
            if free.any():
                return xy[int(np.argmax(free))]
        raise RoomGeometryError(
            f"no free floor point for a body of footprint_radius_m = {footprint_radius_m} in the body region "
            f"{self.body_region.xy_min_m.round(2).tolist()}-{self.body_region.xy_max_m.round(2).tolist()}; use a smaller radius."
        )

    def validate_body(self, body_vertices_m, field_name: str = "body_vertices_m") -> None:
        """Raise if a posed body (room-frame vertices or joints) goes through a wall or furniture."""
        validate_body_inside(self.room, body_vertices_m, field_name)

    def to_pyroomacoustics(self, fs_hz: float = 96_000.0, max_order: int = 17, include_furniture: bool = False, **kwargs):
        """The room for pyroomacoustics with this scene's air (see ``Room.to_pyroomacoustics``).

        Furniture is left out by default so the fast shoebox engine can run at high order.
        """
        return self.room.to_pyroomacoustics(
            fs_hz, max_order, self.temperature_c, self.relative_humidity_pct, include_furniture=include_furniture, **kwargs
        )


@dataclass(frozen=True)
class RoomSamplerConfig:
    """Ranges of everything the sampler draws. Lengths in metres.

    ``camera_rig``: a rig fixed to the camera (:class:`rooms.rig.CameraRig`) placed in every scene
    with the camera instead of a drawn rig (``n_speakers`` / ``n_microphones`` must be its counts;
    ``colocated_probability`` and the transducer mount and height ranges are then not used).
    """

    min_floor_side_m: float = 5.0
    max_floor_side_m: float = 10.0
    height_range_m: tuple[float, float] = (2.4, 4.0)
    temperature_range_c: tuple[float, float] = (16.0, 30.0)
    relative_humidity_range_pct: tuple[float, float] = (20.0, 80.0)
    floor_materials: tuple[str, ...] = FLOOR_MATERIALS
    wall_materials: tuple[str, ...] = WALL_MATERIALS
    ceiling_materials: tuple[str, ...] = CEILING_MATERIALS
    furniture_materials: tuple[str, ...] = FURNITURE_MATERIALS  # seats draw from all; tables, shelves use the first
    seat_height_range_m: tuple[float, float] = (0.40, 0.55)
    n_tables_range: tuple[int, int] = (0, 2)
    n_shelves_range: tuple[int, int] = (0, 2)
    n_speakers: int = 4
    n_microphones: int = 4
    colocated_probability: float = 0.5
    transducer_mounts: tuple[str, ...] = MOUNTS
    transducer_height_range_m: tuple[float, float] = (0.7, 2.2)
    camera_height_range_m: tuple[float, float] = (1.0, 2.0)
    camera_distance_range_m: tuple[float, float] = (2.5, 4.5)
    camera_intrinsics: tuple = tuple(map(tuple, AZURE_KINECT_COLOR_1080P_INTRINSICS))
    image_size_px: tuple[int, int] = AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX
    body_region_side_range_m: tuple[float, float] = (1.5, 3.0)
    wall_clearance_m: float = 0.5
    person_height_m: float = 1.95
    person_reach_m: float = 0.35
    image_margin_px: float = 10.0
    max_attempts: int = 500
    camera_rig: CameraRig | None = None

    def __post_init__(self):
        def check_range(name, low_limit=None):
            low, high = getattr(self, name)
            if not (np.isfinite(low) and np.isfinite(high) and low <= high):
                raise RoomInputError(f"{name} = {getattr(self, name)!r}; give (low, high) with low <= high.")
            if low_limit is not None and low < low_limit:
                raise RoomInputError(f"{name} = {getattr(self, name)!r}; its low end must be >= {low_limit}.")

        if not (np.isfinite(self.max_floor_side_m) and 2.5 <= self.min_floor_side_m <= self.max_floor_side_m):
            raise RoomInputError(
                f"min_floor_side_m = {self.min_floor_side_m}, max_floor_side_m = {self.max_floor_side_m}; need "
                f"finite sides with 2.5 <= min <= max (a smaller floor cannot hold a camera and a standing person)."
            )
        check_range("height_range_m", 2.2)
        check_range("temperature_range_c", -20.0)
        check_range("relative_humidity_range_pct", 0.0)
        if self.relative_humidity_range_pct[1] > 100:
            raise RoomInputError("relative_humidity_range_pct must lie within 0-100 %.")
        check_range("camera_height_range_m", 0.3)
        check_range("camera_distance_range_m", 0.5)
        check_range("body_region_side_range_m", 0.3)
        check_range("transducer_height_range_m", 0.1)
        check_range("n_tables_range", 0)
        check_range("n_shelves_range", 0)
        if not (0.0 <= self.colocated_probability <= 1.0):
            raise RoomInputError(f"colocated_probability = {self.colocated_probability}; give a probability in [0, 1].")
        if self.n_speakers < 1 or self.n_microphones < 1:
            raise RoomInputError("n_speakers and n_microphones must be >= 1.")
        if self.camera_rig is not None:
            if not isinstance(self.camera_rig, CameraRig):
                raise RoomInputError(f"camera_rig = {self.camera_rig!r}; give a rooms.rig.CameraRig or None.")
            if (self.n_speakers, self.n_microphones) != (self.camera_rig.n_speakers, self.camera_rig.n_microphones):
                raise RoomInputError(
                    f"n_speakers = {self.n_speakers}, n_microphones = {self.n_microphones} but camera_rig has "
                    f"{self.camera_rig.n_speakers} speakers and {self.camera_rig.n_microphones} microphones; "
                    f"make them equal.")
        elif self.colocated_probability > 0 and self.n_speakers != self.n_microphones:
            raise RoomInputError(
                "a co-located rig needs n_microphones == n_speakers; make them equal or set colocated_probability = 0."
            )
        for name in ("floor_materials", "wall_materials", "ceiling_materials", "furniture_materials"):
            for material in getattr(self, name):
                get_material(material)  # raises with the list of known names


class RoomSampler:
    """Draws :class:`RoomScene` objects from a :class:`RoomSamplerConfig`.

    Example::

        sampler = RoomSampler()                       # floors >= 5 x 5 m
        scene = sampler.sample(np.random.default_rng(0))
        small = RoomSampler(RoomSamplerConfig(min_floor_side_m=3.0, max_floor_side_m=4.0))
    """

    def __init__(self, config: RoomSamplerConfig | None = None):
        self.config = RoomSamplerConfig() if config is None else config

    # -- public ----------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> RoomScene:
        """One scene; every random number comes from ``rng``."""
        if not isinstance(rng, np.random.Generator):
            raise RoomInputError("rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed).")
        cfg = self.config
        for _ in range(cfg.max_attempts):
            scene = self._try_sample(rng)
            if scene is not None:
                return scene
        if cfg.camera_rig is not None:
            raise RoomGeometryError(
                f"could not fit the camera rig in a scene in {cfg.max_attempts} attempts: its transducers must lie "
                f"in the room ({CAMERA_RIG_WALL_MARGIN_M:g} m from every surface), {CAMERA_RIG_CLEARANCE_M:g} m "
                f"clear of where the person stands, with the camera on a wall looking at the person; allow larger "
                f"rooms (max_floor_side_m = {cfg.max_floor_side_m:g}, height_range_m = {cfg.height_range_m}) or "
                f"check that the rig's positions are in metres, camera frame.")
        raise RoomGeometryError(
            f"could not lay out a scene in {cfg.max_attempts} attempts; allow larger rooms "
            f"(min_floor_side_m = {cfg.min_floor_side_m}) or a shorter camera_distance_range_m."
        )

    # -- steps ------------------------------------------------------------------------------
    def _try_sample(self, rng: np.random.Generator) -> RoomScene | None:
        cfg = self.config
        dims = np.array(
            [
                rng.uniform(cfg.min_floor_side_m, cfg.max_floor_side_m),
                rng.uniform(cfg.min_floor_side_m, cfg.max_floor_side_m),
                rng.uniform(*cfg.height_range_m),
            ]
        )
        materials = {
            "floor": cfg.floor_materials[rng.integers(len(cfg.floor_materials))],
            "ceiling": cfg.ceiling_materials[rng.integers(len(cfg.ceiling_materials))],
        }
        for wall in ("west", "east", "south", "north"):
            materials[wall] = cfg.wall_materials[rng.integers(len(cfg.wall_materials))]
        temperature_c = float(rng.uniform(*cfg.temperature_range_c))
        humidity_pct = float(rng.uniform(*cfg.relative_humidity_range_pct))
        empty = ShoeboxRoom(dims, materials)

        placed = self._place_camera_and_region(empty, rng)
        if placed is None:
            return None
        camera, region, camera_wall = placed

        fixed_rig = None if cfg.camera_rig is None else cfg.camera_rig.placed(camera)
        stands = None if fixed_rig is None else _stand_squares(fixed_rig)

        seat = self._place_seat(region, camera, rng)
        if seat is None:
            return None
        furniture = [seat]
        furniture += self._place_shelves(empty, region, camera, camera_wall, furniture, rng, stands)
        furniture += self._place_tables(empty, region, camera, furniture, rng, stands)
        room = empty.with_furniture(furniture)

        if fixed_rig is not None:
            try:
                fixed_rig.validate_in(room, CAMERA_RIG_WALL_MARGIN_M)
            except RoomInputError:  # a transducer inside furniture: draw the scene again
                return None
            rig = fixed_rig
        else:
            colocated = bool(rng.random() < cfg.colocated_probability)
            try:
                rig = sample_rig(
                    room,
                    rng,
                    cfg.n_speakers,
                    cfg.n_microphones,
                    colocated,
                    around_xy_m=region.center_xy_m,
                    height_range_m=cfg.transducer_height_range_m,
                    mounts=cfg.transducer_mounts,
                )
            except RoomInputError:
                return None
        validate_inside(room, camera.position_m, "camera position")
        return RoomScene(room, rig, camera, temperature_c, humidity_pct, region, seat)

    def _view_points(self, region: BodyRegion) -> np.ndarray:
        """Points a person anywhere in the region may occupy: grown corners at floor and head height."""
        cfg = self.config
        corners = region.corners_xy(cfg.person_reach_m)
        return np.concatenate([np.c_[corners, np.zeros(4)], np.c_[corners, np.full(4, cfg.person_height_m)]])

    def _place_camera_and_region(self, room: ShoeboxRoom, rng: np.random.Generator):
        cfg = self.config
        dims = room.dimensions_m
        name = list(_WALLS)[rng.integers(4)]
        axis, at_far_side, inward = _WALLS[name]
        along = 1 - axis
        position = np.zeros(3)
        offset = _CAMERA_WALL_OFFSET_M
        if cfg.camera_rig is not None:  # a rig reaching behind the camera takes the camera off its wall
            offset = max(offset, 2 * _CAMERA_WALL_OFFSET_M - float(cfg.camera_rig.positions_m()[:, 2].min()))
            if offset > dims[axis] / 2:
                return None
        position[axis] = dims[axis] - offset if at_far_side else offset
        position[along] = rng.uniform(0.3, dims[along] - 0.3)
        position[2] = rng.uniform(*cfg.camera_height_range_m)
        yaw = rng.uniform(-math.radians(35), math.radians(35))
        direction = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]) @ inward
        distance = rng.uniform(*cfg.camera_distance_range_m)
        side = rng.uniform(*cfg.body_region_side_range_m)
        center = position[:2] + distance * direction

        low = np.full(2, cfg.wall_clearance_m)
        high = dims[:2] - cfg.wall_clearance_m
        intrinsics = np.array(cfg.camera_intrinsics, dtype=float)
        while side >= cfg.body_region_side_range_m[0] * 0.5:
            region = BodyRegion(np.maximum(center - side / 2, low), np.minimum(center + side / 2, high))
            if np.all(region.size_m >= 0.8):
                target = np.r_[region.center_xy_m, cfg.person_height_m / 2]
                camera = Camera.look_at(position, target, intrinsics, cfg.image_size_px)
                if np.all(camera.in_view(self._view_points(region), cfg.image_margin_px)) and \
                        self._camera_rig_fits(room, camera, region):
                    return camera, region, name
            side *= 0.85
        return None

    def _camera_rig_fits(self, room: ShoeboxRoom, camera: Camera, region: BodyRegion) -> bool:
        """Does the camera rig, carried by ``camera``, lie in the (empty) room and clear of the body region?
        True when there is no camera rig."""
        if self.config.camera_rig is None:
            return True
        points = camera.camera_to_world(self.config.camera_rig.positions_m())
        if not np.all(room.signed_distance_to_shell_m(points) >= CAMERA_RIG_WALL_MARGIN_M):
            return False
        outside = np.maximum(np.maximum(region.xy_min_m - points[:, :2], points[:, :2] - region.xy_max_m), 0.0)
        return bool(np.all(np.linalg.norm(outside, axis=1) >= CAMERA_RIG_CLEARANCE_M))

    def _place_seat(self, region: BodyRegion, camera: Camera, rng: np.random.Generator) -> Furniture | None:
        cfg = self.config
        margin = np.minimum(0.4, region.size_m / 2 - 0.01)
        xy = rng.uniform(region.xy_min_m + margin, region.xy_max_m - margin)
        to_camera = camera.position_m[:2] - xy
        yaw = math.atan2(to_camera[1], to_camera[0]) + rng.uniform(-math.radians(45), math.radians(45))
        material = cfg.furniture_materials[rng.integers(len(cfg.furniture_materials))]
        return make_seat(xy, yaw, seat_height_m=rng.uniform(*cfg.seat_height_range_m), material=material)

    def _blocks(self, item: Furniture, region: BodyRegion, camera: Camera, others, stands=None) -> bool:
        """Does ``item`` overlap the grown body region, other furniture, the camera, a camera rig's
        transducer (``stands``: their squares on the floor plan), or hide the region?"""
        cfg = self.config
        outline = item.footprint_xy()
        if convex_polygons_overlap(outline, region.corners_xy(cfg.person_reach_m)):
            return True
        if stands is not None and any(convex_polygons_overlap(outline, square) for square in stands):
            return True
        camera_square = camera.position_m[:2] + 0.5 * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
        if convex_polygons_overlap(outline, camera_square):
            return True
        if any(convex_polygons_overlap(outline, other.footprint_xy(), clearance_m=0.1) for other in others):
            return True
        # line of sight from the camera to the region
        targets = np.concatenate(
            [np.c_[region.corners_xy(), np.full(4, z)] for z in (0.05, 1.0, cfg.person_height_m)]
            + [np.r_[region.center_xy_m, 0.05][None], np.r_[region.center_xy_m, 1.0][None]]
        )
        triangles = np.concatenate([s.triangles_m for s in item.surfaces("probe")])
        starts = np.repeat(camera.position_m[None], len(targets), axis=0)
        return bool(segments_hit_triangles(starts, targets, triangles).any())

    def _place_shelves(self, room, region, camera, camera_wall, furniture, rng, stands=None):
        cfg = self.config
        dims = room.dimensions_m
        placed = []
        for _ in range(rng.integers(cfg.n_shelves_range[0], cfg.n_shelves_range[1] + 1)):
            for _attempt in range(10):
                name = list(_WALLS)[rng.integers(4)]
                axis, at_far_side, inward = _WALLS[name]
                along = 1 - axis
                width, depth, height = rng.uniform(0.6, 1.2), rng.uniform(0.3, 0.45), rng.uniform(0.8, 2.0)
                if dims[along] < width + 0.2:
                    continue
                center = np.zeros(2)
                center[axis] = (dims[axis] - 0.01 - depth / 2) if at_far_side else (0.01 + depth / 2)
                center[along] = rng.uniform(width / 2 + 0.05, dims[along] - width / 2 - 0.05)
                # box +y (front) must face the room: yaw turns +y onto the inward normal
                yaw = math.atan2(inward[1], inward[0]) - math.pi / 2
                material = cfg.furniture_materials[0]
                shelf = make_shelf(center, yaw, (width, depth), height, material)
                if name == camera_wall or self._blocks(shelf, region, camera, furniture + placed, stands):
                    continue
                placed.append(shelf)
                break
        return placed

    def _place_tables(self, room, region, camera, furniture, rng, stands=None):
        cfg = self.config
        dims = room.dimensions_m
        placed = []
        for _ in range(rng.integers(cfg.n_tables_range[0], cfg.n_tables_range[1] + 1)):
            for _attempt in range(10):
                size = (rng.uniform(0.8, 1.8), rng.uniform(0.6, 0.9))
                reach = 0.5 * math.hypot(*size) + 0.3
                if np.any(dims[:2] < 2 * reach + 0.1):
                    break
                center = rng.uniform(np.full(2, reach), dims[:2] - reach)
                yaw = rng.uniform(0, math.pi)
                table = make_table(center, yaw, size, rng.uniform(0.7, 0.78), material=cfg.furniture_materials[0])
                if self._blocks(table, region, camera, furniture + placed, stands):
                    continue
                placed.append(table)
                break
        return placed


def _stand_squares(rig: TransducerRig) -> list[np.ndarray]:
    """(4, 2) squares on the floor plan around each transducer of ``rig``, kept free of furniture."""
    corners = _CAMERA_RIG_STAND_HALF_M * np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    points = np.vstack([rig.speaker_positions_m, rig.microphone_positions_m])
    return [point[:2] + corners for point in points]
