"""One scene a person can look at: a room, its rig and camera, a posed body, and what is recorded.

    python -m simulator.scene --seed 0 --png scene.png [--activity sitting] [--age 8] [--json scene.json]
                              [--html scene.html] [--glb scene.glb]

draws the room from above and from the side with the speakers, microphones, camera and body; the
camera's view of the person; the recordings with and without the person; and the pose kernels
obtained by subtracting the empty room (eq. 4 of the paper, in each speaker's band), against the
simulator's ground truth. ``--html`` and ``--glb`` write the same scene (room, furniture, rig, camera,
body mesh and its true skeleton, room frame) as a picture one can turn around: a self-contained
page to open in a browser, and a glTF binary (y up) for any 3D viewer (:mod:`simulator.views`).

Every argument is checked and every output claimed before the body model is built or anything is
simulated: a bad number, a folder, or an existing file this command did not write is refused with
exit 2. Files are written whole or not at all; a second run replaces its own files.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass

import numpy as np

from bodies import ACTIVITIES, PoseSampler, SubjectSampler, load_body_model
from bodies.model import PosedBody
from bodies.subjects import MAX_AGE_YEARS, MIN_AGE_YEARS
from core.checks import check_choice, check_number, check_whole
from core.cli import run_command
from core.outputs import atomic_write, claim_output_file, png_metadata, write_json
from rooms import RoomGeometryError, RoomInputError, RoomSampler, RoomSamplerConfig, RoomScene, make_seat
from simulator.errors import SimulationInputError
from simulator.realism import REALISM, REALISM_STREAM, realism_effects
from simulator.recording import MAX_IMAGE_SOURCE_ORDER, Recording, RoomSimulator, SimulationConfig
from simulator.views import room_scene_view, write_scene_glb, write_scene_html

WRITER = "simulator.scene"
#: Floor sides accepted by --min-floor-m, metres: the room sampler needs 2.5 m for a camera and a
#: standing person; the upper end keeps every direct path well within the default room response
#: (SimulationConfig.room_response_s).
FLOOR_SIDE_RANGE_M = (2.5, 20.0)


@dataclass
class Scene:
    """A room scene with a person in it (room frame)."""

    room_scene: RoomScene
    body: PosedBody


def seat_for(scene: RoomScene, body: PosedBody) -> tuple[RoomScene, PosedBody]:
    """Sit ``body`` on the scene's seat: the body moves onto it, the seat takes the body's height.

    The body (posed sitting, facing the seat's direction) is moved so that its seat contact lies
    on the seat's centre; the seat is rebuilt as a stool whose top is the body's seat height.
    """
    seat_xy = scene.seat_position_m[:2]
    body = body.translated(seat_xy - body.seat_center_xy_m)
    facing = scene.seat_facing_xy
    seat = make_seat(seat_xy, float(np.arctan2(facing[1], facing[0])), seat_height_m=body.seat_height_m,
                     seat_depth_m=0.42, backrest_height_m=0.0, material=scene.seat.material)
    furniture = [f for f in scene.room.furniture if f is not scene.seat] + [seat]
    return dataclasses.replace(scene, room=scene.room.with_furniture(furniture), seat=seat), body


def free_floor_position(rng: np.random.Generator, room_scene: RoomScene, body: PosedBody,
                        clearance_m: float = 0.02, candidates: int = 512) -> np.ndarray:
    """A floor point (2,) of the scene's body region where ``body`` (its pelvis there) stays
    ``clearance_m`` clear of every wall and piece of furniture.

    The body's own outline on the floor (the convex hull of its vertices) is tested, not a disc
    around it: an outstretched arm needs room on one side only. Candidates are tested in batches.
    """
    from scipy.spatial import ConvexHull

    xy = body.vertices[:, :2].astype(float) - body.joint("pelvis")[:2]
    outline = xy[ConvexHull(xy).vertices]  # (H, 2) relative to the pelvis
    region = room_scene.body_region
    room = room_scene.room
    for _ in range(4):
        centres = rng.uniform(region.xy_min_m, region.xy_max_m, size=(candidates, 2))
        points = (centres[:, None, :] + outline[None]).reshape(-1, 2)
        clear = np.minimum(room.horizontal_clearance_m(points), room.furniture_clearance_m(points))
        ok = (clear.reshape(candidates, -1) >= clearance_m).all(axis=1)
        if ok.any():
            return centres[int(np.argmax(ok))]
    raise RoomGeometryError(f"no free floor point for this {body.activity} body (outline "
                            f"{np.ptp(outline[:, 0]):.2f} x {np.ptp(outline[:, 1]):.2f} m) in the body region")


def compose_scene(rng: np.random.Generator, room_scene: RoomScene, sampler: PoseSampler,
                  subject_sampler: SubjectSampler | None = None, activity: str | None = None,
                  age_years: float | None = None, max_tries: int = 20, subject=None) -> Scene:
    """Put a person into a room scene without touching walls or furniture.

    The person is ``subject`` or one drawn by ``subject_sampler``. Standing activities take a
    free floor point of the body region with a random heading; sitting uses the scene's seat.
    A pose that would collide is drawn again (``max_tries``).
    """
    if subject is None:
        subject = (subject_sampler or SubjectSampler()).sample(rng, age_years=age_years)
    activity = activity or sampler.random_activity(rng)
    last_error: Exception | None = None
    for _ in range(max_tries):
        try:
            if activity == "sitting":
                facing = room_scene.seat_facing_xy
                body = sampler.sample(rng, subject, activity, heading_rad=float(np.arctan2(facing[1], facing[0])))
                scene, body = seat_for(room_scene, body)
            else:
                body = sampler.sample(rng, subject, activity)
                body = body.translated(free_floor_position(rng, room_scene, body) - body.joint("pelvis")[:2])
                scene = room_scene
            scene.validate_body(body.vertices, "body.vertices")
        except RoomInputError as err:  # no room for this pose (RoomGeometryError is one): draw another
            last_error = err
            continue
        return Scene(scene, body)
    raise RoomGeometryError(f"no collision-free placement for a {activity} body in {max_tries} tries: {last_error}")


# -- the eq. 4 view used by the picture --------------------------------------------------------
def subtract_empty_room(recording: Recording, band_hz: np.ndarray) -> np.ndarray:
    """Pose kernels (S, M, T) as (R - R_empty) / S inside each speaker's band, zero outside.

    The plain form of the paper's eq. 4 for a picture; ``pipeline`` holds the regularised
    deconvolution used for data.
    """
    T = recording.recordings.shape[-1]
    freqs = np.fft.rfftfreq(T, 1.0 / recording.sample_rate_hz)
    difference = np.fft.rfft(recording.recordings - recording.empty_recordings, axis=-1)  # (M, K)
    chirp = np.fft.rfft(recording.chirps, axis=-1)  # (S, K)
    kernels = np.zeros((len(chirp), len(difference), T))
    for s, (lo, hi) in enumerate(band_hz):
        inside = (freqs >= lo) & (freqs <= hi)
        spectrum = np.zeros_like(difference)
        spectrum[:, inside] = difference[:, inside] / chirp[s, inside]
        kernels[s] = np.fft.irfft(spectrum, T, axis=-1)
    return kernels


def band_limited(kernels: np.ndarray, band_hz: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """(S, M, T) responses restricted to each speaker's band (row s to band s)."""
    T = kernels.shape[-1]
    freqs = np.fft.rfftfreq(T, 1.0 / sample_rate_hz)
    spectra = np.fft.rfft(kernels, axis=-1)
    for s, (lo, hi) in enumerate(band_hz):
        spectra[s, :, (freqs < lo) | (freqs > hi)] = 0
    return np.fft.irfft(spectra, T, axis=-1)


def envelope(x: np.ndarray) -> np.ndarray:
    import scipy.signal

    return np.abs(scipy.signal.hilbert(x, axis=-1))


# -- the picture -------------------------------------------------------------------------------
def draw_scene(scene: Scene, recording: Recording, band_hz: np.ndarray, path: str) -> None:
    """The six-panel picture, written to ``path`` as PNG (atomically, marked as this command's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(16, 9.5), dpi=100)
    grid = fig.add_gridspec(2, 3)
    _plan_panel(fig.add_subplot(grid[0, 0]), scene, recording)
    _side_panel(fig.add_subplot(grid[0, 1]), scene, recording)
    _camera_panel(fig.add_subplot(grid[0, 2]), scene)
    fs = recording.sample_rate_hz
    _recordings_panel(fig.add_subplot(grid[1, 0]), recording)
    estimate = subtract_empty_room(recording, band_hz)
    truth = band_limited(recording.pose_kernels, band_hz, fs)
    path_m = np.arange(estimate.shape[-1]) / fs * recording.speed_of_sound_m_s
    _kernels_panel(fig.add_subplot(grid[1, 1]), estimate, truth, path_m)
    _pairs_panel(fig.add_subplot(grid[1, 2]), estimate, path_m)
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", metadata=png_metadata(WRITER)))
    plt.close(fig)


def _plan_panel(ax, scene: Scene, recording: Recording) -> None:
    """(a) plan view: walls, furniture, body, transducers, camera and its field of view."""
    room, body, rs = scene.room_scene.room, scene.body, scene.room_scene
    spk, mic = recording.speaker_positions_m, recording.microphone_positions_m
    floor = np.vstack([room.floor_polygon_m, room.floor_polygon_m[:1]])
    ax.plot(floor[:, 0], floor[:, 1], "k-", lw=2)
    for item in room.furniture:
        for box in item.boxes:
            c, s = np.cos(box.yaw_rad), np.sin(box.yaw_rad)
            half = np.asarray(box.size_m[:2]) / 2
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]) * half
            xy = corners @ np.array([[c, s], [-s, c]]) + np.asarray(box.center_m[:2])
            ax.fill(xy[:, 0], xy[:, 1], color="0.8", ec="0.5")
            ax.text(*np.asarray(box.center_m[:2]), item.kind, fontsize=7, ha="center")
    ax.plot(body.vertices[::7, 0], body.vertices[::7, 1], ".", ms=1, color="tan")
    ax.plot(spk[:, 0], spk[:, 1], "v", color="tab:red", ms=9, label="speakers")
    ax.plot(mic[:, 0], mic[:, 1], "o", mfc="none", color="tab:blue", ms=11, label="microphones")
    cam = rs.camera.position_m
    look = rs.camera.cam_to_world[:3, 2]
    ax.plot(*cam[:2], "s", color="k", ms=8, label="camera")
    half_fov = np.arctan(rs.camera.image_size_px[0] / 2 / rs.camera.intrinsics[0, 0])
    for sign in (-1, 1):
        c, s = np.cos(sign * half_fov), np.sin(sign * half_fov)
        d = np.array([c * look[0] - s * look[1], s * look[0] + c * look[1]])
        ax.plot([cam[0], cam[0] + 3 * d[0]], [cam[1], cam[1] + 3 * d[1]], "k--", lw=0.8)
    ax.set_aspect("equal")
    ax.set_title(f"plan: {np.ptp(room.floor_polygon_m[:, 0]):.1f} x {np.ptp(room.floor_polygon_m[:, 1]):.1f} m, "
                 f"{rs.temperature_c:.0f} C, {rs.relative_humidity_pct:.0f} % RH")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def _side_panel(ax, scene: Scene, recording: Recording) -> None:
    """(b) side view (x, z): body, transducers, camera, floor and ceiling."""
    room, body, cam = scene.room_scene.room, scene.body, scene.room_scene.camera.position_m
    spk, mic = recording.speaker_positions_m, recording.microphone_positions_m
    ax.plot(body.vertices[::5, 0], body.vertices[::5, 2], ".", ms=1, color="tan")
    ax.plot(spk[:, 0], spk[:, 2], "v", color="tab:red", ms=9)
    ax.plot(mic[:, 0], mic[:, 2], "o", mfc="none", color="tab:blue", ms=11)
    ax.plot(cam[0], cam[2], "s", color="k", ms=8)
    zmax = room.bounds_m[1, 2]
    ax.axhline(0, color="k")
    ax.axhline(zmax, color="k")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    ax.set_title(f"side: {body.activity}, age {body.subject.age_years:.0f}, stature {body.stature_m:.2f} m")


def _camera_panel(ax, scene: Scene) -> None:
    """(c) the body and its skeleton projected through the scene's camera (pixels)."""
    from bodies.joints import SKELETON_EDGE_INDICES

    body, camera = scene.body, scene.room_scene.camera
    pixels, depth = camera.project(body.vertices[::3].astype(float))
    ax.scatter(pixels[:, 0], pixels[:, 1], s=0.3, c=depth, cmap="copper")
    jp, _ = camera.project(body.joints)
    for a, b in SKELETON_EDGE_INDICES:
        ax.plot(jp[[a, b], 0], jp[[a, b], 1], "-", color="tab:blue")
    w, h = camera.image_size_px
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_aspect("equal")
    ax.set_title("camera view (pixels)")


def _recordings_panel(ax, recording: Recording) -> None:
    """(d) microphone 0 with and without the person, and their difference."""
    t_ms = np.arange(recording.recordings.shape[-1]) / recording.sample_rate_hz * 1e3
    ax.plot(t_ms, recording.empty_recordings[0], lw=0.5, label="empty room")
    ax.plot(t_ms, recording.recordings[0], lw=0.5, alpha=0.7, label="with person")
    ax.plot(t_ms, 10 * (recording.recordings[0] - recording.empty_recordings[0]), lw=0.5,
            label="difference x10")
    ax.set_xlim(0, 20)
    ax.set_xlabel("time in frame (ms)")
    ax.set_title("microphone 0")
    ax.legend(fontsize=7)


def _kernels_panel(ax, estimate: np.ndarray, truth: np.ndarray, path_m: np.ndarray) -> None:
    """(e) estimated and true pose-kernel envelopes (S, M, T) of a few pairs along path length."""
    for k, s in enumerate(range(min(4, estimate.shape[0]))):
        m = s % estimate.shape[1]
        offset = 1.2 * k
        e_est, e_true = envelope(estimate[s, m]), envelope(truth[s, m])
        scale = max(e_true.max(), 1e-12)
        ax.plot(path_m, offset + e_est / scale, lw=0.8, color="tab:orange", label="(R - R_empty) / S" if k == 0 else None)
        ax.plot(path_m, offset + e_true / scale, lw=0.8, color="k", ls="--", label="ground truth" if k == 0 else None)
        ax.text(0.2, offset + 0.6, f"spk {s} -> mic {m}", fontsize=7)
    ax.set_xlim(0, 14)
    ax.set_xlabel("round-trip path |s - X| + |X - m| (m)")
    ax.set_title("pose kernel envelopes (eq. 4), normalised")
    ax.legend(fontsize=7, loc="upper right")


def _pairs_panel(ax, estimate: np.ndarray, path_m: np.ndarray) -> None:
    """(f) the envelope of every pair's estimated kernel (S, M, T) as an image."""
    env = envelope(estimate.reshape(-1, estimate.shape[-1]))
    upto = np.searchsorted(path_m, 14.0)
    ax.imshow(env[:, :upto], aspect="auto", extent=(0, path_m[upto - 1], env.shape[0] - 0.5, -0.5),
              cmap="magma", interpolation="nearest")
    ax.set_xlabel("round-trip path (m)")
    ax.set_ylabel("pair (speaker * M + microphone)")
    ax.set_title("all pairs, envelope of (R - R_empty) / S")


def write_views(scene: Scene, recording: Recording, html_path: str | None, glb_path: str | None) -> None:
    """The scene in 3D, room frame, to ``html_path`` and/or ``glb_path`` (each optional), marked as this
    command's. The rig is drawn where the recording put it, as in the PNG."""
    body = scene.body
    view = room_scene_view(
        scene.room_scene, body, speakers_m=recording.speaker_positions_m,
        microphones_m=recording.microphone_positions_m,
        title=f"{body.activity}, age {body.subject.age_years:.0f}, stature {body.stature_m:.2f} m (room frame, metres)")
    if html_path:
        write_scene_html(html_path, view, WRITER, flag="--html")
        print(f"wrote {html_path}")
    if glb_path:
        write_scene_glb(glb_path, view, WRITER, flag="--glb")
        print(f"wrote {glb_path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator.scene", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="random seed >= 0 (same seed, same scene)")
    parser.add_argument("--activity", default=None, help=f"one of {', '.join(ACTIVITIES)}; random if omitted")
    parser.add_argument("--age", type=float, default=None,
                        help=f"age in years ({MIN_AGE_YEARS:g}-{MAX_AGE_YEARS:g}); random if omitted")
    parser.add_argument("--rig", choices=("co-located", "separated"), default="separated",
                        help="co-located speaker/microphone pairs (the real dataset) or separated ones")
    parser.add_argument("--min-floor-m", type=float, default=5.0,
                        help=f"smallest floor side ({FLOOR_SIDE_RANGE_M[0]:g}-{FLOOR_SIDE_RANGE_M[1]:g} m)")
    parser.add_argument("--max-order", type=int, default=17,
                        help=f"image-source order of the room (0-{MAX_IMAGE_SOURCE_ORDER})")
    parser.add_argument("--snr-db", type=float, default=40.0, help="sensor noise (dB)")
    parser.add_argument("--no-multipath", action="store_true", help="leave out body-room multipath")
    parser.add_argument("--no-shadow", action="store_true", help="leave out the body's shadowing of room paths")
    parser.add_argument("--realism", choices=REALISM, default="realistic",
                        help="realistic (default): also what real rigs record (simulator/realism.py); ideal: the "
                             "clean simulation")
    parser.add_argument("--png", default="scene.png", help="picture of the scene and its signals (.png)")
    parser.add_argument("--json", default=None, help="scene summary (positions, timings) as JSON (.json)")
    parser.add_argument("--html", default=None,
                        help="the scene in 3D as one self-contained page to turn around in a browser (.html)")
    parser.add_argument("--glb", default=None, help="the scene in 3D as a glTF binary, y up, metres (.glb)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: _run(build_parser().parse_args(argv)),
                       interrupted="nothing was written; run the same command again")


def _check_arguments(args) -> tuple[int, RoomSamplerConfig, SimulationConfig]:
    """Every argument, as the flag the user typed, and every output: before any work."""
    seed = check_whole("--seed", args.seed, 0, error=SimulationInputError)
    if args.activity is not None:
        check_choice("--activity", args.activity, ACTIVITIES, error=SimulationInputError)
    if args.age is not None:
        check_number("--age", args.age, MIN_AGE_YEARS, MAX_AGE_YEARS, error=SimulationInputError)
    min_floor_m = check_number("--min-floor-m", args.min_floor_m, *FLOOR_SIDE_RANGE_M, error=SimulationInputError)
    check_whole("--max-order", args.max_order, 0, MAX_IMAGE_SOURCE_ORDER, error=SimulationInputError)
    check_number("--snr-db", args.snr_db, error=SimulationInputError)
    for flag, value, suffix in (("--png", args.png, ".png"), ("--json", args.json, ".json"),
                                ("--html", args.html, ".html"), ("--glb", args.glb, ".glb")):
        if value is not None:
            claim_output_file(value, flag, WRITER, (suffix,))
    room_config = RoomSamplerConfig(
        min_floor_side_m=min_floor_m, max_floor_side_m=max(min_floor_m, 10.0),
        colocated_probability=1.0 if args.rig == "co-located" else 0.0)
    config = SimulationConfig(max_order=args.max_order, snr_db=args.snr_db,
                              body_room_multipath=not args.no_multipath, shadowing=not args.no_shadow,
                              **realism_effects(args.realism))
    return seed, room_config, config


def _run(args) -> int:
    seed, room_config, config = _check_arguments(args)
    rng = np.random.default_rng(seed)
    room_scene = RoomSampler(room_config).sample(rng)
    t0 = time.perf_counter()
    sampler = PoseSampler(load_body_model("anny"))
    scene = compose_scene(rng, room_scene, sampler, activity=args.activity, age_years=args.age)
    t1 = time.perf_counter()
    simulator = RoomSimulator(scene.room_scene, config, rng=np.random.default_rng([seed, 0, REALISM_STREAM]))
    t2 = time.perf_counter()
    recording = simulator.record(scene.body, rng)
    t3 = time.perf_counter()
    band_hz = config.chirp_plan.speaker_bands_hz()
    draw_scene(scene, recording, band_hz, args.png)
    print(f"wrote {args.png}: {scene.body.activity}, stature {scene.body.stature_m:.2f} m; "
          f"room response {t2 - t1:.2f} s, frame {t3 - t2:.2f} s")
    if args.html or args.glb:
        write_views(scene, recording, args.html, args.glb)
    if args.json:
        summary = {
            "seed": seed, "body": scene.body.summary(),
            "speaker_positions_m": recording.speaker_positions_m.tolist(),
            "microphone_positions_m": recording.microphone_positions_m.tolist(),
            "speed_of_sound_m_s": recording.speed_of_sound_m_s,
            "room_bounds_m": scene.room_scene.room.bounds_m.tolist(),
            "timings_s": {"body": t1 - t0, "room_response": t2 - t1, "frame": t3 - t2},
            "realism": {"preset": args.realism, **simulator.realism()},
        }
        write_json(args.json, summary, WRITER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
