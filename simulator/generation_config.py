"""The generator's configuration: what determines a synthetic store's data, and its command-line flags.

:class:`GenerationConfig` holds the generation's own settings (rooms, frames, seed, kernels, split)
and the three configurations a worker builds rooms from - ``simulation``
(:class:`simulator.recording.SimulationConfig`), ``room_sampler`` (:class:`rooms.RoomSamplerConfig`)
and ``subject_sampler`` (:class:`bodies.SubjectSamplerConfig`) - instead of copies of their fields.

:data:`DATA_FLAGS` is the one table of the data flags of ``python -m simulator.generate``: each
flag's option string, the name it has in ``GenerationConfig(**kwargs)`` and in the store's recorded
``generator_config``, the field it sets (a field of the config, or of one of the three it holds),
its type and help. The command line, the keyword arguments, the flat attributes
(``config.max_order`` reads ``config.simulation.max_order``), the recorded identity and the flag
named in an error all come from it.

``--rig-file FILE`` (``rig_file``) simulates a user's own rig instead of drawn ones: the file
(:mod:`rooms.rig_file`) is read and checked when the config is built, and the config holds and
records its content (:class:`rooms.rig_file.RigFile`), not its path.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

import numpy as np

from bodies import ACTIVITIES, SubjectSamplerConfig
from core.checks import check_choice, check_number, check_whole
from core.errors import InputError
from rooms import RoomGeometryError, RoomSamplerConfig
from rooms.rig import CameraRig
from rooms.rig_file import RigFile, read_rig_file
from simulator.realism import REALISM, REALISM_EFFECTS, realism_effects
from simulator.recording import SimulationConfig
from simulator.signals import ChirpPlan

__all__ = ["DATA_FLAGS", "Flag", "GenerationConfig", "GenerationError", "MAX_FRAMES", "MAX_IMAGE_ORDER", "MAX_ROOMS",
           "MAX_SEED", "MAX_SUBJECTS_PER_ROOM", "RIGS", "recorded_identity", "room_split"]

RIGS = ("mixed", "co-located", "separated")
# The room sampler's probability of a co-located rig, for each --rig.
COLOCATED_PROBABILITY = {"co-located": 1.0, "separated": 0.0, "mixed": 0.5}

# Upper bounds that catch typos before they cost anything. Each reader keeps per-frame index and
# label arrays in memory and a frame's kernels take ~150 kB uncompressed (16 pairs x 4800
# float16), so 10^7 frames (a thousand times the paper's ~10,000) is already ~1.5 TB of kernels; a
# mistyped --rooms 1000000000000 used to try to allocate terabytes for the room flags alone.
MAX_ROOMS = 10**6
MAX_FRAMES = 10**7
MAX_SUBJECTS_PER_ROOM = 1000
# Image sources of order n lie at least n x 2.2 m away (the lowest ceiling the room sampler
# allows), so beyond order 50 (110 m) they arrive long after the room response the recorder keeps
# (simulator.recording.SimulationConfig.room_response_s, 0.15 s ~ 51 m); a higher order only costs
# time, which grows with the cube of the order.
MAX_IMAGE_ORDER = 50
MAX_SEED = 2**63 - 1          # numpy seeds take any non-negative integer; the store's JSON keeps 64 bits


class GenerationError(InputError):
    """A generation argument or the output store is unusable; the message says how to fix it."""


@dataclass(frozen=True)
class Flag:
    """One data flag: ``option`` sets ``GenerationConfig(key=...)``, stored in ``config`` field ``field``.

    ``config`` None: a field of GenerationConfig itself (named ``key``); else 'simulation',
    'room_sampler' or 'subject_sampler'. ``negated``: a ``--no-...`` switch that sets the field False.
    """

    option: str
    key: str
    help: str
    config: str | None = None
    field: str | None = None
    type: type | None = None
    choices: tuple | None = None
    nargs: int | str | None = None
    metavar: tuple | str | None = None
    negated: bool = False


# In the order of the command line's help and of the recorded generator_config.
DATA_FLAGS = (
    Flag("--rooms", "rooms", f"number of rooms (at most {MAX_ROOMS:,})", type=int),
    Flag("--frames-per-room", "frames_per_room", "frames in each room", type=int),
    Flag("--subjects-per-room", "subjects_per_room", "people per room (frames alternate between them)", type=int),
    Flag("--seed", "seed", "dataset seed (>= 0)", type=int),
    Flag("--rig", "rig", "co-located speaker/microphone pairs (real dataset), separated, or mixed per room",
         choices=RIGS),
    Flag("--rig-file", "rig_file", "your own rig and camera instead of drawn ones, carried by the camera into every "
         "room: a raw capture's calibration.json (docs/raw_capture_format.md) or a PoseKernel environment's "
         "audio_sensor_loc.npy (co-located pairs, the default camera); positions are stored as the file gives them",
         metavar="FILE"),
    Flag("--realism", "realism", "realistic (the default): also draw per room what real rigs record (coloured noise, "
         "tones and impulses; each device's response, latency and directivity; paths between wall images; the "
         "empty room in other air; simulator/realism.py lists the effects); ideal: the clean simulation of "
         "earlier stores (resume a store written before --realism existed with --realism ideal)",
         choices=REALISM),
    Flag("--without-effects", "without_effects", "effects the realistic preset leaves out, for ablations (which "
         "effect costs what); the rooms, people and detections stay those of the full preset",
         nargs="+", choices=REALISM_EFFECTS, metavar="EFFECT"),
    Flag("--minor-fraction", "minor_fraction", "share of minors", "subject_sampler", "minor_fraction", float),
    Flag("--activities", "activities", "activities to draw", nargs="+"),
    Flag("--min-floor-m", "min_floor_m", "smallest floor side (m)", "room_sampler", "min_floor_side_m", float),
    Flag("--max-floor-m", "max_floor_m", "largest floor side (m)", "room_sampler", "max_floor_side_m", float),
    Flag("--max-order", "max_order", f"image-source order (at most {MAX_IMAGE_ORDER})", "simulation", "max_order",
         int),
    Flag("--snr-db", "snr_db", "sensor noise SNR (dB)", "simulation", "snr_db", float),
    Flag("--clock-offset-max-samples", "clock_offset_max_samples", "largest playback/capture clock offset (samples)",
         "simulation", "clock_offset_max_samples", float),
    Flag("--no-transducer-responses", "transducer_responses", "ideal speakers and microphones", "simulation",
         "transducer_responses", negated=True),
    Flag("--no-multipath", "multipath", "leave out body-room multipath", "simulation", "body_room_multipath",
         negated=True),
    Flag("--no-shadow", "shadowing", "leave out the body's shadow on room paths", "simulation", "shadowing",
         negated=True),
    Flag("--kernel-samples", "kernel_samples", "stored kernel length (at most one chirp period)", type=int),
    Flag("--kernel-dtype", "kernel_dtype", "stored kernel precision", choices=("float16", "float32")),
    Flag("--keep-recordings", "keep_recordings",
         "also store raw recordings and ground-truth kernels (about 3x larger)"),
    Flag("--split", "split", "room proportions of the splits", type=float, nargs=3, metavar=("TRAIN", "VAL", "TEST")),
)
_FLAG_OF_KEY = {flag.key: flag for flag in DATA_FLAGS}
_HELD = ("simulation", "room_sampler", "subject_sampler")


def generation_simulation_config() -> SimulationConfig:
    """The simulation a store is recorded with unless told otherwise: the real rig's small
    playback/capture clock offset and its transducers' frequency responses (a bare
    ``SimulationConfig`` leaves both out, for tests of the physics)."""
    return SimulationConfig(clock_offset_max_samples=0.5, transducer_responses=True)


@dataclass(init=False)
class GenerationConfig:
    """Everything that determines the data (the store records it; a resumed run must match it).

    Built as ``GenerationConfig(rooms=..., max_order=..., ...)`` with the keys of :data:`DATA_FLAGS`
    (the flat names the command line and the stored ``generator_config`` use), and optionally the
    held configurations themselves (``simulation=SimulationConfig(...)``, ...); a flat key given
    too overrides the field it names. ``rig`` sets ``room_sampler.colocated_probability``. The flat
    names of held fields read as attributes (``config.multipath`` is
    ``config.simulation.body_room_multipath``).

    Every field is checked when the config is built, with the flag that sets it named, and so are
    the held configurations, so that a bad argument fails in the first second, before any store
    exists; a rig file must also fit in a room (:meth:`check_rig_fits`).

    Attributes:
        rooms: number of rooms (tasks), at most ``MAX_ROOMS``.
        frames_per_room: frames recorded in each room (~20: 500 rooms give the paper's ~10,000);
            rooms x frames_per_room is at most ``MAX_FRAMES``.
        subjects_per_room: distinct people per room; frames alternate between them.
        seed: the dataset's seed (>= 0).
        rig: 'co-located' (the real dataset's 4 speaker/microphone pairs), 'separated', or
            'mixed' (each room draws one, half and half). With a rig file, the file's kind
            ('co-located' when its microphones are its speakers, else 'separated').
        rig_file: a user's rig, fixed in the camera frame (:class:`rooms.rig_file.RigFile`), or None.
            Given as a path (read and checked at once), a RigFile, or its ``to_dict()`` (a store's
            record). Every room carries it with the camera (``room_sampler.camera_rig``, the
            file's camera if it has one, ``n_speakers`` / ``n_microphones`` and the chirp plan's
            speaker count follow it), and the stored ``speaker_pos`` / ``mic_pos`` are the file's
            numbers.
        activities: activities drawn uniformly per frame.
        kernel_samples: length of each stored pose kernel (4800 = 50 ms = 17 m of round trip), at
            most one chirp period.
        kernel_dtype: 'float16' (default, normalised kernels) or 'float32'.
        keep_recordings: also store the raw recordings and the ground-truth kernels.
        split: proportions of train / val / test rooms (split by room).
        realism: 'realistic' (default) or 'ideal' (:mod:`simulator.realism`): the effects of real rigs the
            simulation draws per room (``simulation.noise``, ``devices``, ``directivity``, ``image_image_paths``,
            ``drift``, ...); 'ideal' reproduces stores written before the presets existed, bit for bit.
        without_effects: effects of :data:`simulator.realism.REALISM_EFFECTS` the realistic preset leaves out
            (ablations); () draws them all.
        simulation: how frames are recorded (max_order at most ``MAX_IMAGE_ORDER``).
        room_sampler: how rooms are drawn (floor side range 5 m and up by default, the paper's
            assumption; its rig size and camera image size shape the store).
        subject_sampler: how subjects are drawn (minor_fraction: probability of a minor, 5-17 years).
    """

    rooms: int = 500
    frames_per_room: int = 20
    subjects_per_room: int = 2
    seed: int = 0
    rig: str = "mixed"
    activities: tuple[str, ...] = ACTIVITIES
    kernel_samples: int = 4800
    kernel_dtype: str = "float16"
    keep_recordings: bool = False
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    rig_file: RigFile | None = None
    realism: str = "realistic"
    without_effects: tuple[str, ...] = ()
    simulation: SimulationConfig = field(default_factory=generation_simulation_config)
    room_sampler: RoomSamplerConfig = field(default_factory=RoomSamplerConfig)
    subject_sampler: SubjectSamplerConfig = field(default_factory=SubjectSamplerConfig)

    def __init__(self, simulation: SimulationConfig | None = None, room_sampler: RoomSamplerConfig | None = None,
                 subject_sampler: SubjectSamplerConfig | None = None, **values):
        held = {"simulation": simulation if simulation is not None else generation_simulation_config(),
                "room_sampler": room_sampler if room_sampler is not None else RoomSamplerConfig(),
                "subject_sampler": subject_sampler if subject_sampler is not None else SubjectSamplerConfig()}
        extra = {key: values.pop(key) for key in list(values) if key.partition(".")[0] in _HELD}
        unknown = sorted(set(values) - set(_FLAG_OF_KEY))
        if unknown:
            raise TypeError(f"GenerationConfig() got unexpected keyword argument(s) {', '.join(unknown)}")
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name not in _HELD}
        flat = {}
        for flag in DATA_FLAGS:
            default = defaults[flag.key] if flag.config is None else getattr(held[flag.config], flag.field)
            flat[flag.key] = values.get(flag.key, default)
        flat = _checked_flat(flat)
        for key, value in flat.items():
            if _FLAG_OF_KEY[key].config is None:
                setattr(self, key, value)
        self._hold(held, flat, extra)
        self.check_rig_fits()

    def _hold(self, held: dict, flat: dict, extra: dict) -> None:
        """The held configurations with the flat keys' values (and 'config.field' extras) put in."""
        changes = {name: {} for name in _HELD}
        for flag in DATA_FLAGS:
            if flag.config is not None:
                changes[flag.config][flag.field] = flat[flag.key]
        changes["room_sampler"]["colocated_probability"] = COLOCATED_PROBABILITY[self.rig]
        for key, value in extra.items():
            name, _, field_name = key.partition(".")
            if field_name == "chirp_plan" and isinstance(value, dict):
                value = ChirpPlan.from_dict(value)
            elif field_name == "camera_rig" and isinstance(value, dict):
                value = _built(lambda v=value: CameraRig(**v))
            elif isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            changes[name][field_name] = value
        if self.rig_file is not None:
            self._follow_rig_file(held, changes)
        changes["simulation"].update(realism_effects(self.realism, self.without_effects))
        for name in _HELD:
            setattr(self, name, _built(lambda n=name: dataclasses.replace(held[n], **changes[n])))
        period = self.simulation.chirp_plan.n_samples
        self.kernel_samples = check_whole("--kernel-samples", self.kernel_samples, 1, error=GenerationError)
        if self.kernel_samples > period:
            plan = self.simulation.chirp_plan
            raise GenerationError(
                f"--kernel-samples = {self.kernel_samples}: at most {period}, one chirp period "
                f"({plan.duration_s * 1e3:g} ms at {plan.sample_rate_hz / 1e3:g} kHz), the longest kernel a frame can "
                f"be deconvolved into")

    def _follow_rig_file(self, held: dict, changes: dict) -> None:
        """The held fields a rig file sets: the camera rig, its counts, its camera, the chirps' speaker count."""
        rig_file, rig = self.rig_file, self.rig_file.rig
        changes["room_sampler"].update(camera_rig=rig, n_speakers=rig.n_speakers, n_microphones=rig.n_microphones)
        if rig_file.intrinsics is not None:
            changes["room_sampler"].update(camera_intrinsics=rig_file.intrinsics, image_size_px=rig_file.image_size_px)
        plan = changes["simulation"].get("chirp_plan", held["simulation"].chirp_plan)
        if isinstance(plan, ChirpPlan) and plan.n_speakers != rig.n_speakers:
            try:
                changes["simulation"]["chirp_plan"] = dataclasses.replace(plan, n_speakers=rig.n_speakers)
            except InputError as err:
                raise GenerationError(f"--rig-file {rig_file.source}: {rig.n_speakers} speakers cannot each have a "
                                      f"sub-band of the chirp plan ({err})") from None

    def check_rig_fits(self) -> None:
        """Refuse a rig file whose rig fits in no room, before any work.

        A rig far larger than the largest room (positions in millimetres, say) is refused at once;
        otherwise room 0's scene is drawn as its worker will draw it (a few tens of milliseconds;
        the room sampler's ``max_attempts`` scenes, about a second, when the rig fits nowhere).
        """
        if self.rig_file is None:
            return
        sampler = self.room_sampler
        points = np.vstack([np.zeros((1, 3)), self.rig_file.rig.positions_m()])   # the camera and the rig
        span = float(np.max(np.linalg.norm(points[:, None] - points[None], axis=-1)))
        diagonal = float(np.sqrt(2 * sampler.max_floor_side_m ** 2 + sampler.height_range_m[1] ** 2))
        where = f"--rig-file {self.rig_file.source}"
        if span >= diagonal:
            raise GenerationError(f"{where}: its camera and transducers span {span:.3g} m, more than the largest "
                                  f"room's diagonal ({diagonal:.3g} m): give positions in metres (camera frame), or "
                                  f"raise --max-floor-m")
        from rooms import RoomSampler

        try:
            RoomSampler(sampler).sample(np.random.default_rng([self.seed, 0]))
        except RoomGeometryError as err:
            raise GenerationError(f"{where}: {err}") from None

    def simulation_config(self) -> SimulationConfig:
        """The :class:`simulator.recording.SimulationConfig` every room is recorded with."""
        return self.simulation

    def room_sampler_config(self) -> RoomSamplerConfig:
        """The :class:`rooms.RoomSamplerConfig` every room is drawn from."""
        return self.room_sampler

    def subject_sampler_config(self) -> SubjectSamplerConfig:
        """The :class:`bodies.SubjectSamplerConfig` every subject is drawn from."""
        return self.subject_sampler

    def identity(self) -> dict:
        """JSON form, compared with a store's to refuse mixing datasets.

        The flat keys of :data:`DATA_FLAGS`, then 'config.field' for each other field of a held
        configuration that differs from the generator's default (none for a command-line run, so
        stores written before the configurations were held resume).
        """
        d = {flag.key: getattr(self, flag.key) for flag in DATA_FLAGS}
        d["activities"] = list(self.activities)
        d["split"] = list(self.split)
        d["without_effects"] = list(self.without_effects)
        if not self.without_effects:
            del d["without_effects"]    # stores written before --without-effects record none, and resume
        flagged = {(flag.config, flag.field) for flag in DATA_FLAGS} | {("room_sampler", "colocated_probability")}
        flagged |= {("simulation", name) for name in realism_effects("realistic")}
        if self.rig_file is None:
            del d["rig_file"]   # stores written before --rig-file existed record none, and resume
        else:
            d["rig_file"] = self.rig_file.to_dict()   # the content: the same rig from another path is the same data
            flagged |= {("room_sampler", name) for name in ("camera_rig", "n_speakers", "n_microphones")}
            if self.rig_file.intrinsics is not None:
                flagged |= {("room_sampler", "camera_intrinsics"), ("room_sampler", "image_size_px")}
        base = {"simulation": generation_simulation_config(), "room_sampler": RoomSamplerConfig(),
                "subject_sampler": SubjectSamplerConfig()}
        for name in _HELD:
            for f in dataclasses.fields(getattr(self, name)):
                value, default = getattr(getattr(self, name), f.name), getattr(base[name], f.name)
                if (name, f.name) not in flagged and value != default:
                    d[f"{name}.{f.name}"] = _jsonable(value)
        return d


def _flat_property(flag: Flag) -> property:
    def get(self):
        return getattr(getattr(self, flag.config), flag.field)

    def set_(self, value):
        setattr(self, flag.config, dataclasses.replace(getattr(self, flag.config), **{flag.field: value}))

    return property(get, set_, doc=f"``{flag.config}.{flag.field}`` (flag {flag.option}).")


for _flag in DATA_FLAGS:
    if _flag.config is not None:
        setattr(GenerationConfig, _flag.key, _flat_property(_flag))


def _jsonable(value):
    if isinstance(value, ChirpPlan):
        return value.to_dict()
    if isinstance(value, CameraRig):
        return {name: [list(p) for p in getattr(value, name)]
                for name in ("speaker_positions_m", "microphone_positions_m")}
    return json.loads(json.dumps(value, default=lambda v: np.asarray(v).tolist()))


def _built(make):
    """``make()``, its InputError restated with the flag that set the field at fault."""
    try:
        return make()
    except InputError as err:
        text = str(err)
        flags = {flag.field: flag.option for flag in DATA_FLAGS if flag.config is not None}
        flags["colocated_probability"] = "--rig"
        flag = next((f for name, f in flags.items() if name in text), "the generator's configuration")
        raise GenerationError(f"{flag}: {text}") from None


def _checked_flat(v: dict) -> dict:
    """The flat values checked in the order of the command line, each error naming its flag."""
    E = GenerationError
    v["rooms"] = check_whole("--rooms", v["rooms"], 1, MAX_ROOMS, error=E)
    v["frames_per_room"] = check_whole("--frames-per-room", v["frames_per_room"], 1, MAX_FRAMES, error=E)
    if v["rooms"] * v["frames_per_room"] > MAX_FRAMES:
        raise E(f"--rooms {v['rooms']} x --frames-per-room {v['frames_per_room']} = "
                f"{v['rooms'] * v['frames_per_room']:,} frames: a store holds at most {MAX_FRAMES:,}; give fewer "
                f"rooms or frames per room (or write several stores)")
    v["subjects_per_room"] = check_whole("--subjects-per-room", v["subjects_per_room"], 1, MAX_SUBJECTS_PER_ROOM,
                                         error=E)
    v["seed"] = check_whole("--seed", v["seed"], 0, MAX_SEED, error=E)
    check_choice("--rig", v["rig"], RIGS, error=E)
    check_choice("--realism", v["realism"], REALISM, error=E)
    v["without_effects"] = _checked_without_effects(v["without_effects"], v["realism"])
    v["rig_file"] = _checked_rig_file(v["rig_file"])
    if v["rig_file"] is not None:
        kind = "co-located" if v["rig_file"].rig.colocated else "separated"
        if v["rig"] not in ("mixed", kind):
            raise E(f"--rig {v['rig']}: the rig file {v['rig_file'].source} holds a {kind} rig; drop --rig (the rig "
                    f"file decides)")
        v["rig"] = kind
    v["minor_fraction"] = check_number("--minor-fraction", v["minor_fraction"], 0.0, 1.0, error=E)
    v["activities"] = _checked_activities(v["activities"])
    v["min_floor_m"] = check_number("--min-floor-m", v["min_floor_m"], 2.5, error=E)
    v["max_floor_m"] = check_number("--max-floor-m", v["max_floor_m"], 2.5, error=E)
    if v["max_floor_m"] < v["min_floor_m"]:
        raise E(f"--max-floor-m = {v['max_floor_m']:g} is below --min-floor-m = {v['min_floor_m']:g}; give "
                f"--max-floor-m >= --min-floor-m")
    v["max_order"] = check_whole("--max-order", v["max_order"], 0, MAX_IMAGE_ORDER, error=E)
    if v["snr_db"] is not None:
        v["snr_db"] = check_number("--snr-db", v["snr_db"], error=E)
    v["clock_offset_max_samples"] = check_number("--clock-offset-max-samples", v["clock_offset_max_samples"],
                                                 0.0, error=E)
    for name, flag in (("transducer_responses", "--no-transducer-responses"), ("multipath", "--no-multipath"),
                       ("shadowing", "--no-shadow"), ("keep_recordings", "--keep-recordings")):
        if not isinstance(v[name], (bool, np.bool_)):
            raise E(f"{flag}: {name} = {v[name]!r}; give True or False")
        v[name] = bool(v[name])
    check_choice("--kernel-dtype", v["kernel_dtype"], ("float16", "float32"), error=E)
    v["split"] = _checked_split(v["split"])
    return v


def _checked_rig_file(value) -> RigFile | None:
    """A path (the file is read and checked now), a RigFile, its to_dict() (a store's record), or None."""
    if value is None or isinstance(value, RigFile):
        return value
    if isinstance(value, dict):
        try:
            return RigFile.from_dict(value, "rig_file (recorded)")
        except InputError as err:
            raise GenerationError(f"--rig-file: {err}") from None
    if isinstance(value, (str, os.PathLike)):
        try:
            return read_rig_file(value)
        except InputError as err:
            raise GenerationError(f"--rig-file {err}") from None
    raise GenerationError(f"--rig-file = {value!r}: give the path of a calibration.json or an audio_sensor_loc.npy")


def _checked_without_effects(names, realism: str) -> tuple[str, ...]:
    """The effects to leave out, in the preset's order, each named once."""
    names = (names,) if isinstance(names, str) else tuple(names or ())
    unknown = [name for name in names if name not in REALISM_EFFECTS]
    if unknown:
        raise GenerationError(f"--without-effects {' '.join(map(str, unknown))}: choose from "
                              f"{', '.join(REALISM_EFFECTS)}")
    if names and realism != "realistic":
        raise GenerationError(f"--without-effects {' '.join(names)}: the {realism} preset draws no effects; use "
                              f"--realism realistic")
    if set(names) == set(REALISM_EFFECTS):
        raise GenerationError("--without-effects names every effect: use --realism ideal")
    return tuple(name for name in REALISM_EFFECTS if name in names)


def _checked_activities(activities) -> tuple[str, ...]:
    if isinstance(activities, str):
        activities = (activities,)
    activities = tuple(activities)
    unknown = [a for a in activities if a not in ACTIVITIES]
    if unknown or not activities:
        raise GenerationError(f"--activities {unknown if unknown else '(none)'}: choose from {', '.join(ACTIVITIES)}")
    return activities


def _checked_split(split) -> tuple[float, float, float]:
    split = tuple(split) if isinstance(split, (tuple, list, np.ndarray)) else (split,)
    text = f"--split = {tuple(split)}: give three proportions (train val test), each in [0, 1], summing to 1"
    if len(split) != 3:
        raise GenerationError(text)
    try:
        split = tuple(check_number("--split", x, 0.0, 1.0, error=GenerationError) for x in split)
    except GenerationError:
        raise GenerationError(text) from None
    if abs(sum(split) - 1.0) > 1e-6:
        raise GenerationError(text)
    return split


def room_split(config: GenerationConfig, room: int) -> int:
    """Split (0 train, 1 val, 2 test) of a room: fixed by the seed and the room, never by the frames."""
    u = np.random.default_rng([config.seed, room, 7]).random()
    return int(np.searchsorted(np.cumsum(config.split), u, side="right").clip(0, 2))


def recorded_identity(recorded: dict | None) -> dict:
    """A store's recorded ``generator_config`` as :meth:`GenerationConfig.identity` writes it today: stores
    written before the realism presets existed, and ideal stores of the versions that left the key out, record
    no ``realism`` and are ideal."""
    recorded = dict(recorded or {})
    recorded.setdefault("realism", "ideal")
    return recorded
