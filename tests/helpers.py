"""Helpers shared by several test modules: scenes and bodies to simulate, the PoseKernel dataset layout
written with known values, and the configuration of the session's tiny synthetic store.

Test modules import shared helpers from here (or from ``tests.cli_harness``), never from each other.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from bodies import Subject
from bodies.model import PosedBody
from rooms import BodyRegion, Camera, RoomScene, ShoeboxRoom, colocated_rig, get_material, make_seat, separated_rig

FS = 96_000.0

# -- scenes and bodies to simulate ------------------------------------------------------------------------------
CO_LOCATED = colocated_rig([[0.3, 3.5, 1.2], [5.7, 3.5, 1.4], [3.0, 0.3, 1.6], [3.0, 6.7, 1.1]])
SEPARATED = separated_rig([[0.3, 3.5, 1.2], [5.7, 3.0, 1.4], [2.0, 0.3, 1.6], [4.0, 6.7, 1.1]],
                          [[0.3, 2.5, 1.5], [5.7, 4.0, 1.0], [4.0, 0.3, 1.3], [2.0, 6.7, 1.7]])


def make_scene(rig, dimensions=(6.0, 7.0, 3.0), material="painted_plaster", temperature_c=20.0) -> RoomScene:
    """A shoebox room with one seat, a camera on the y = 0.3 m wall and the person's region in the middle."""
    room = ShoeboxRoom(dimensions, get_material(material))
    seat = make_seat((1.0, 1.0), 0.0)
    room = room.with_furniture([seat])
    camera = Camera.look_at((3.0, 0.3, 1.5), (3.0, 4.0, 1.0))
    region = BodyRegion((1.5, 2.0), (4.5, 5.5))
    return RoomScene(room, rig, camera, temperature_c, 50.0, region, seat)


def sphere_body(centre, radius=0.15, subdivisions=4) -> PosedBody:
    """A rigid sphere posing as a body (every joint at its centre): its echo has an exact solution."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    vertices = np.asarray(mesh.vertices) + centre
    return PosedBody(vertices=vertices, faces=np.asarray(mesh.faces), joints=np.tile(centre, (15, 1)),
                     stature_m=1.7, subject=Subject(30, "male", 1.7), activity="standing")


# -- the PoseKernel dataset layout ------------------------------------------------------------------------------
SPEED_OF_SOUND_M_S = 343.2
T_RIR = 2400
SENSORS = {"environment1": np.array([[-1.5, 0.2, 1.0], [1.5, 0.3, 1.2], [-1.0, -0.4, 4.5], [1.2, -0.3, 4.8]]),
           "environment2": np.array([[-2.0, 0.0, 0.5], [2.0, 0.1, 0.6], [-1.8, -0.5, 5.0], [1.9, -0.2, 5.2]])}


def gnd49(frame: int, env: int) -> np.ndarray:
    """(49, 3) joints whose every row is distinct: row j = (0.01 j - 0.2, 0.02 j - 0.5, 3 + 0.005 j) + shift."""
    j = np.arange(49)[:, None]
    return np.hstack([0.01 * j - 0.2, 0.02 * j - 0.5, 3 + 0.005 * j]) + [0.1 * frame, 0.0, 0.2 * env]


def reflector_kernel(sensors: np.ndarray, point: np.ndarray) -> np.ndarray:
    """(4, T) monostatic echo of a point reflector: amplitude 1 / d^2 at the round trip 2 d / c."""
    rir = np.zeros((len(sensors), T_RIR))
    d = np.linalg.norm(sensors - point, axis=1)
    rir[np.arange(len(sensors)), np.round(2 * d / SPEED_OF_SOUND_M_S * FS).astype(int)] = 1 / d**2
    return rir


def write_posekernel_layout(root: Path, frames: dict[str, list[str]]) -> Path:
    """Write ``root/environmentN/<frame>/{rir,gnd}.npy`` for ``frames`` (environment -> frame folder names):
    the joints of frame f of environment N are ``gnd49(f, N)``, the kernels a point reflector at the pelvis."""
    for env, names in frames.items():
        e = int(env.removeprefix("environment"))
        (root / env).mkdir(parents=True)
        np.save(root / env / "audio_sensor_loc.npy", SENSORS[env])
        for name in names:
            folder = root / env / name
            folder.mkdir()
            joints = gnd49(int(name), e)
            np.save(folder / "gnd.npy", joints)
            np.save(folder / "rir.npy", reflector_kernel(SENSORS[env], joints[39]))   # reflector at the pelvis
    return root


# -- the session's tiny synthetic store (tests/conftest.py: ``tiny_store``) -----------------------------------
#: 2 rooms x 2 frames, image sources to order 1, generated in-process: small and quick, but every array
#: of the store contract is there (its seed gives an all-False chunk, which some integrity tests need).
TINY_STORE_CONFIG = dict(rooms=2, frames_per_room=2, max_order=1, kernel_samples=2400, seed=0, realism="ideal")
