"""rooms: the acoustic and visual environment of a capture.

Rooms (shoebox or any closed mesh) with furniture and octave-band materials, air (speed of
sound, ISO 9613-1 absorption), the transducer rig, the camera, and a sampler of random
furnished rooms. Room (world) frame: metres, z up, origin on the floor at a room corner; camera
frame: OpenCV (x right, y down, z forward). SI units, unit in every name.

The public names are listed in ``__all__``; each module's docstring says what it holds.
"""

from .air import (
    air_absorption_db_per_m,
    air_absorption_energy_per_m,
    relaxation_frequencies_hz,
    speed_of_sound_m_s,
)
from .camera import AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX, AZURE_KINECT_COLOR_1080P_INTRINSICS, Camera, project_points
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
    "project_points",
    "relaxation_frequencies_hz",
    "sample_rig",
    "sample_transducer_positions",
    "segments_hit_triangles",
    "separated_rig",
    "speed_of_sound_m_s",
    "validate_body_inside",
    "validate_inside",
]
