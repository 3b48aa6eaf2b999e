"""rooms: the acoustic and visual environment of a capture.

Room (world) frame: metres, z up, origin on the floor at a room corner. Camera frame:
OpenCV (x right, y down, z forward). SI units everywhere, unit in every name.

Air (``rooms.air``)
    speed_of_sound_m_s(temperature_c) -> float                 331.3 * sqrt(1 + T / 273.15)
    air_absorption_db_per_m(frequency_hz, temperature_c=20, relative_humidity_pct=50,
                            pressure_kpa=101.325) -> alpha     ISO 9613-1, valid into ultrasound
    air_absorption_energy_per_m(...) -> m                      intensity ~ exp(-m d) (pyroomacoustics' unit)
    relaxation_frequencies_hz(temperature_c, relative_humidity_pct, pressure_kpa) -> (f_rO, f_rN)

Materials (``rooms.materials``)
    OCTAVE_BANDS_HZ = (125, 250, ..., 16000, 32000)
    Material(name, absorption: {band_hz: coefficient}, scattering)
        .absorption_coefficients (9,), .absorption_at_bands(centers_hz), .to_pyroomacoustics()
    MATERIALS (library: concrete, painted_plaster, gypsum_board, brick, wood_panel, glass_window,
               carpet_thin, carpet_tufted, curtain_heavy, acoustic_tile, upholstery_fabric, ...)
    get_material(name), flat_material(name, absorption), material_from_table(name, 7 values, kind),
    extend_to_ultrasound(7 values, "rigid" | "porous") -> 9 values

Geometry (``rooms.geometry``)
    ShoeboxRoom(dimensions_m, materials=Material | {west, east, south, north, floor, ceiling}, furniture=())
    PolyhedralRoom.from_trimesh(mesh, materials, furniture=())
    PolyhedralRoom.from_floor_polygon(floor_polygon_xy_m, height_m, wall_material, floor_material, ceiling_material)
    Room methods: contains(points) (N,) bool (in the air: inside the shell, outside furniture),
        signed_distance_to_shell_m(points), segment_hits_walls(starts, ends, include_furniture=True),
        floor_polygon_m (K, 2), bounds_m (2, 3), volume_m3, surfaces, all_surfaces(), triangles() (T, 3, 3),
        to_trimesh(), with_furniture(items), horizontal_clearance_m(xy), furniture_clearance_m(xy),
        to_pyroomacoustics(fs_hz=96000, max_order=17, temperature_c=20, relative_humidity_pct=50,
                           air_absorption=True, include_furniture=True) -> pra.ShoeBox | pra.Room
    Furniture(kind, boxes, material, seat_point_m, facing_xy); Box(center_m, size_m, yaw_rad)
    make_seat(position_xy_m, facing_yaw_rad, seat_height_m=0.45, ...), make_table(...), make_shelf(...)
    segments_hit_triangles(starts_m, ends_m, triangles_m) -> (N,) bool

Rigs (``rooms.rig``)
    TransducerRig(speaker_positions_m (S, 3), microphone_positions_m (M, 3), colocated)
        .pairs() (S*M, 2) [speaker, microphone], .colocated_pairs(), .pair_distances_m(),
        .validate_in(room), .in_camera_frame(world_to_cam)
    colocated_rig(positions_m), separated_rig(speaker_positions_m, microphone_positions_m)
    sample_transducer_positions(room, rng, n, around_xy_m, height_range_m=(0.7, 2.2), mounts=("wall", "shelf", "table"))
    sample_rig(room, rng, n_speakers=4, n_microphones=4, colocated=True, around_xy_m=None)

Camera (``rooms.camera``)
    Camera(intrinsics (3, 3), image_size_px (w, h), cam_to_world (4, 4)); Camera.look_at(eye_m, target_m)
        .world_to_camera(points), .camera_to_world(points), .project(points) -> (pixels, depth_m),
        .in_view(points, margin_px), .world_to_cam, .position_m
    AZURE_KINECT_COLOR_1080P_INTRINSICS (approximate), AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX

Sampling (``rooms.sampler``)
    RoomSampler(RoomSamplerConfig(min_floor_side_m=5, max_floor_side_m=10, ...)).sample(rng) -> RoomScene
    RoomScene(room, rig, camera, temperature_c, relative_humidity_pct, body_region, seat)
        .speed_of_sound_m_s, .seat_position_m, .seat_facing_xy, .sample_body_position(rng, footprint_radius_m),
        .validate_body(vertices), .to_pyroomacoustics(fs_hz, max_order), .air_absorption_db_per_m(f)

Validation (``rooms.validation``); errors (``rooms.errors``)
    validate_inside(room, points, field_name, margin_m=0), validate_body_inside(room, body_vertices_m, field_name)
    RoomInputError(ValueError), RoomGeometryError(RoomInputError)
"""

from .air import (
    air_absorption_db_per_m,
    air_absorption_energy_per_m,
    relaxation_frequencies_hz,
    speed_of_sound_m_s,
)
from .camera import AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX, AZURE_KINECT_COLOR_1080P_INTRINSICS, Camera
from .errors import RoomGeometryError, RoomInputError
from .geometry import (
    SHOEBOX_SURFACES,
    Box,
    Furniture,
    PolyhedralRoom,
    Room,
    ShoeboxRoom,
    Surface,
    make_seat,
    make_shelf,
    make_table,
    segments_hit_triangles,
)
from .materials import (
    MATERIALS,
    OCTAVE_BANDS_HZ,
    Material,
    extend_to_ultrasound,
    flat_material,
    get_material,
    material_from_table,
)
from .rig import TransducerRig, colocated_rig, sample_rig, sample_transducer_positions, separated_rig
from .sampler import BodyRegion, RoomSampler, RoomSamplerConfig, RoomScene
from .validation import validate_body_inside, validate_inside

__all__ = [
    "AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX",
    "AZURE_KINECT_COLOR_1080P_INTRINSICS",
    "MATERIALS",
    "OCTAVE_BANDS_HZ",
    "SHOEBOX_SURFACES",
    "BodyRegion",
    "Box",
    "Camera",
    "Furniture",
    "Material",
    "PolyhedralRoom",
    "Room",
    "RoomGeometryError",
    "RoomInputError",
    "RoomSampler",
    "RoomSamplerConfig",
    "RoomScene",
    "ShoeboxRoom",
    "Surface",
    "TransducerRig",
    "air_absorption_db_per_m",
    "air_absorption_energy_per_m",
    "colocated_rig",
    "extend_to_ultrasound",
    "flat_material",
    "get_material",
    "make_seat",
    "make_shelf",
    "make_table",
    "material_from_table",
    "relaxation_frequencies_hz",
    "sample_rig",
    "sample_transducer_positions",
    "segments_hit_triangles",
    "separated_rig",
    "speed_of_sound_m_s",
    "validate_body_inside",
    "validate_inside",
]
