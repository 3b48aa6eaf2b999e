"""Profile: where a generation frame's time goes, stage by stage.

    python -m experiments.profile_generation [--rooms 2] [--frames-per-room 5] [--realism ideal|realistic]
        [--seed 0] [--max-order N] [--kernel-samples N] [--no-warmup] [--note TEXT]
        [--json OUT] [--markdown OUT]

Generates ``--rooms`` rooms in this process exactly as a generation worker does
(``RoomGenerator(config).simulate(room)`` then ``write_room`` into a fresh store in a temporary folder,
one thread: ``torch.set_num_threads(1)``, ``OMP_NUM_THREADS=1``, ``NUMBA_NUM_THREADS=1``) and
attributes the wall time to the stages of :data:`STAGE_OF`.

Method: for the run, every function named in :data:`STAGE_OF` is replaced (monkeypatched; restored
afterwards) by a wrapper that times it with ``time.perf_counter``. Time is *exclusive*: a function's
time minus the time of the timed functions it calls, so nothing is counted twice, and the code a timed
function runs itself (outside the functions named) counts in its own stage. The outermost timed
functions (``RoomGenerator.simulate``, ``write_room``) hold everything else: their remainder is reported
as the "other" stages, never dropped. The stages must add up to the wall time measured around each
room's ``simulate`` + ``write_room`` to within ``--tolerance`` (asserted); the residual is the loop and
the wrappers' own overhead.

Room-level stages (scene draw, room response, realism draws, store write, the room's glue) run once per
room and are amortised over its frames; at the default 20 frames per room they would weigh
``frames_per_room / 20`` times what they weigh here (the summary gives that projection).

Two numba kernels of the body echo, ``pair_delay_bounds`` and ``deposit_pair_echoes``, are each called on
all transmitter-receiver pairs at once (direct, one-wall multipath and, with ``--realism realistic``,
image-to-image pairs). To give each kind its own stage the wrapper calls the original kernel once per kind
of pair, on that kind's contiguous block of pairs, in the original order: every facet deposit happens in
the same order on the same grid, so the arrays are bit for bit those of an unprofiled run
(``tests/test_profile_generation.py`` checks it).

A first room (``--rooms`` as its index, one frame, not in the table) warms up the numba kernels' cache,
Embree and imports, as a long-running worker has after its first room; ``--no-warmup`` leaves it out.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402

from experiments.bench_encodings import machine_name  # noqa: E402


# -- the stages -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Within:
    """``default`` unless called (at any depth) inside one of ``inside``'s stages: then the stage given there."""

    default: str
    inside: dict


@dataclass(frozen=True)
class ByArgument:
    """``if_none`` when positional argument ``index`` (``self`` is 0) / keyword ``name`` is None or absent,
    else ``otherwise``."""

    index: int
    name: str
    if_none: str
    otherwise: str


@dataclass(frozen=True)
class PairSplit:
    """A numba kernel over (transmitter, receiver) pairs, called once per kind of pair (direct, one wall,
    two walls: how many of the pair's ends are wall images), each call timed as ``stages[kind]``.

    ``positions``, ``pair_args``: positional indices of the positions array (transmitters then receivers)
    and of the per-pair arrays; ``combine``: 'concat' (the kernel returns per-pair arrays) or 'inplace'
    (the kernel accumulates into an argument and returns None)."""

    stages: tuple
    positions: int
    pair_args: tuple
    combine: str


@dataclass(frozen=True)
class FirstUse:
    """A lazily built attribute (a property that fills ``self.<cache>`` on first use): timed as ``stage`` only
    while ``self.<cache>`` is None; later accesses are not timed (their microseconds stay in the caller's stage)."""

    stage: str
    cache: str


@dataclass(frozen=True)
class Rig:
    """Times as ``stage`` and remembers the simulator's rig (speakers, microphones) for :class:`PairSplit`."""

    stage: str


#: Every stage, in frame order: (name, level). 'room' stages run once per room (amortised over its frames),
#: 'frame' stages once per frame. A stage with no timed function in a run (realism stages of an ideal run)
#: shows 0.
STAGES = [
    ("room: scene draw (room, rig, camera, subjects)", "room"),
    ("room: response (image sources, synthesis, empty recording)", "room"),
    ("realism: per-room draws (noise, devices, directivity) and device responses", "room"),
    ("realism: directivity gains of the room's image paths", "room"),
    ("realism: furniture reflections and shadows of the room (clutter)", "room"),
    ("realism: empty room re-synthesised in drifted air", "room"),
    ("room: other (glue: detector model, stacking the frames)", "room"),
    ("pose sampling", "frame"),
    ("realism: motion, velocities (the pose a step before and after)", "frame"),
    ("placement (floor point, seat, collision checks)", "frame"),
    ("body checks (in room, closed mesh, transducers outside)", "frame"),
    ("ray casting: BVH build (trimesh mesh + Embree scene)", "frame"),
    ("visibility ray casts: transducers", "frame"),
    ("multipath: wall images", "frame"),
    ("multipath: visibility ray casts (wall images, patches)", "frame"),
    ("realism: directivity gains of the body's facets", "frame"),
    ("realism: clothing (regions, dressed surface)", "frame"),
    ("realism: furniture, body paths by way of furniture faces", "frame"),
    ("body echo: set-up (checks, vertex distances, echo windows)", "frame"),
    ("facet accumulation: direct paths (delay bounds + deposit)", "frame"),
    ("multipath: facet accumulation, one wall (delay bounds + deposit)", "frame"),
    ("realism: image-to-image paths, facet accumulation (delay bounds + deposit)", "frame"),
    ("body echo: band limit + decimation (all paths)", "frame"),
    ("body echo: air absorption (all paths)", "frame"),
    ("shadowing: ray casts (blocked image paths)", "frame"),
    ("shadowing: responses of blocked paths", "frame"),
    ("realism: furniture, the body's shadow on furniture paths", "frame"),
    ("realism: motion, moving echo synthesis", "frame"),
    ("recording: convolution (chirps, transducer and device responses)", "frame"),
    ("recording: white noise + clock offset", "frame"),
    ("realism: coloured, tonal, impulsive noise", "frame"),
    ("recording: other (glue)", "frame"),
    ("deconvolution (+ normalisation)", "frame"),
    ("realism: drift-aware deconvolution (empty room stretched)", "frame"),
    ("detector: occlusion ray casts", "frame"),
    ("detector: keypoints", "frame"),
    ("frame: other (glue: camera transforms, config, arrays)", "frame"),
    ("store write", "room"),
    ("profiler: pair-splitting overhead", "frame"),
]

_ROOM_RESPONSE = "room: response (image sources, synthesis, empty recording)"
_PLACEMENT = "placement (floor point, seat, collision checks)"
_OCCLUSION = "detector: occlusion ray casts"
_BODY_CHECKS = "body checks (in room, closed mesh, transducers outside)"

#: Which function counts as which stage: "module:attribute" as the caller looks it up (a function imported
#: with ``from X import f`` is patched where it is used) -> stage, or a rule (:class:`Within`,
#: :class:`ByArgument`, :class:`PairSplit`, :class:`FirstUse`, :class:`Rig`). Time is exclusive (see the module docstring).
STAGE_OF = {
    # room level
    "simulator.room_generation:RoomGenerator.simulate": "room: other (glue: detector model, stacking the frames)",
    "rooms.sampler:RoomSampler.sample": "room: scene draw (room, rig, camera, subjects)",
    "bodies.subjects:SubjectSampler.sample": "room: scene draw (room, rig, camera, subjects)",
    "simulator.recording:RoomSimulator.__init__": _ROOM_RESPONSE,
    "simulator.noise:NoiseModel.draw": "realism: per-room draws (noise, devices, directivity) and device responses",
    "simulator.transducers:TransducerModel.draw": "realism: per-room draws (noise, devices, directivity) and device responses",
    "simulator.recording:RoomSimulator._device_responses":
        "realism: per-room draws (noise, devices, directivity) and device responses",
    "simulator.directivity:DirectivityModel.draw":
        "realism: per-room draws (noise, devices, directivity) and device responses",
    "simulator.room_response:path_gains": "realism: directivity gains of the room's image paths",
    "simulator.recording:compute_clutter": "realism: furniture reflections and shadows of the room (clutter)",
    "simulator.recording:resynthesized_empty_room": "realism: empty room re-synthesised in drifted air",
    "bodies:with_velocities": "realism: motion, velocities (the pose a step before and after)",
    "simulator.recording:dress": "realism: clothing (regions, dressed surface)",
    "simulator.clutter:FurnitureImages.body_paths": "realism: furniture, body paths by way of furniture faces",
    "simulator.recording:facets_hidden_by_furniture": "realism: furniture, body paths by way of furniture faces",
    "simulator.recording:body_shadow_correction": "realism: furniture, the body's shadow on furniture paths",
    "simulator.recording:moving_echo_signals": "realism: motion, moving echo synthesis",
    "simulator.deconvolution:stretch_to_speed": "realism: drift-aware deconvolution (empty room stretched)",
    "simulator.room_generation:write_room": "store write",
    # frame: the person
    "simulator.room_generation:RoomGenerator._frame": "frame: other (glue: camera transforms, config, arrays)",
    "simulator.room_generation:RoomGenerator._compose": _PLACEMENT,
    "simulator.scene:compose_scene": _PLACEMENT,
    "bodies.poses:PoseSampler.sample": "pose sampling",
    "rooms.sampler:RoomScene.validate_body": Within(_BODY_CHECKS, {_PLACEMENT: _PLACEMENT}),
    # frame: recording
    "simulator.recording:RoomSimulator.record": "recording: other (glue)",
    "simulator.recording:RoomSimulator._body_response": Rig("recording: other (glue)"),
    "simulator.body_echo:FacetMesh.__init__": _BODY_CHECKS,
    "simulator.body_echo:FacetMesh.check_outside": _BODY_CHECKS,
    "simulator.body_echo:FacetMesh.intersector": FirstUse("ray casting: BVH build (trimesh mesh + Embree scene)",
                                                          "_intersector"),
    "trimesh.ray.ray_pyembree:_EmbreeWrap.__init__":
        Within("ray casting: BVH build (trimesh mesh + Embree scene)", {_OCCLUSION: _OCCLUSION}),
    "simulator.body_echo:FacetMesh.lit_facets": ByArgument(
        2, "patch_size_m", "visibility ray casts: transducers", "multipath: visibility ray casts (wall images, patches)"),
    "simulator.room_acoustics:RoomAcoustics.first_order_images": "multipath: wall images",
    "simulator.recording:body_impulse_responses": "body echo: set-up (checks, vertex distances, echo windows)",
    "simulator.recording:RoomSimulator._facet_gains": "realism: directivity gains of the body's facets",
    "simulator._kernels:vertex_distances": "body echo: set-up (checks, vertex distances, echo windows)",
    "simulator._kernels:pair_delay_bounds": PairSplit(
        ("facet accumulation: direct paths (delay bounds + deposit)",
         "multipath: facet accumulation, one wall (delay bounds + deposit)",
         "realism: image-to-image paths, facet accumulation (delay bounds + deposit)"),
        positions=5, pair_args=(7, 8), combine="concat"),
    "simulator._kernels:deposit_pair_echoes": PairSplit(
        ("facet accumulation: direct paths (delay bounds + deposit)",
         "multipath: facet accumulation, one wall (delay bounds + deposit)",
         "realism: image-to-image paths, facet accumulation (delay bounds + deposit)"),
        positions=8, pair_args=(10, 11, 12, 13), combine="inplace"),
    "simulator.body_echo:_add_band_limited": "body echo: band limit + decimation (all paths)",
    "simulator.recording:apply_air_absorption": "body echo: air absorption (all paths)",
    "simulator.room_acoustics:RoomAcoustics.shadow_correction": "shadowing: ray casts (blocked image paths)",
    "simulator.room_acoustics:RoomAcoustics.blocked_paths": "shadowing: ray casts (blocked image paths)",
    "simulator.room_acoustics:RoomAcoustics.path_impulse_responses":
        Within("shadowing: responses of blocked paths", {_ROOM_RESPONSE: _ROOM_RESPONSE}),
    "simulator.recording:RoomSimulator._convolve":
        Within("recording: convolution (chirps, transducer and device responses)", {_ROOM_RESPONSE: _ROOM_RESPONSE}),
    "simulator.recording:RoomSimulator._finish": "recording: white noise + clock offset",
    "simulator.recording:render_noise": "realism: coloured, tonal, impulsive noise",
    # frame: after the recording
    "simulator.deconvolution:deconvolve": "deconvolution (+ normalisation)",
    "simulator.deconvolution:normalize_kernels": "deconvolution (+ normalisation)",
    "simulator.detector:occluded_joints": _OCCLUSION,
    "simulator.detector:DetectorModel.detect": "detector: keypoints",
    "simulator.detector:DetectorModel.__init__": "room: other (glue: detector model, stacking the frames)",
}

#: What the stages cannot separate, said with every table.
NOT_SEPARATED = [
    "With clutter (realistic) the body's paths by way of a furniture face are deposited with the one-wall pairs "
    "(one end an image): their deposit is inside 'multipath: facet accumulation, one wall'; finding them (which "
    "facets each furniture image reaches) is the 'realism: furniture, body paths' row.",
    "Device responses (realistic) are applied per frame as one complex multiplication inside the convolution "
    "(chirp spectra and microphone responses precomputed per room): their per-frame cost is inside "
    "'recording: convolution'; drawing them and their frequency responses is the per-room realism row.",
    "Realistic noise still draws the frame's white-noise numbers (to keep the ideal and realistic stores "
    "paired): that draw stays in 'recording: white noise + clock offset'.",
    "Image-to-image paths reuse the wall images' visibility (no rays of their own); their set-up, band "
    "limiting and air absorption are shared with the other paths in the 'body echo' rows (one array, one FFT per "
    "channel); only their delay bounds and facet deposits are a row of their own.",
    "The body-echo set-up row holds the argument checks, the per-vertex distances of every position used "
    "(direct and image), the echo windows and the fine-grid allocation; 'body checks' holds the transducer-inside-"
    "body ray casts (contains_points), 'ray casting: BVH build' the first-use construction of the body's Embree "
    "scene (the detector's own mesh and scene are in the detector row).",
    "Directivity (realistic) weights every facet deposit: with it the deposit kernel runs once per "
    "(transmitter, receiver) run of pairs with that run's facet weights, built in 'body echo: set-up'; the "
    "weighted deposits stay in the facet-accumulation rows of their kind of path. In the room response, only "
    "the transducers' gains of the image paths (path_gains) are a row of their own; applying them is in "
    "'room: response'.",
    "'profiler: pair-splitting overhead' is this script's own cost of splitting the body-echo kernels' pairs "
    "by kind (it would not exist unprofiled); the other wrappers' overhead (two perf_counter calls each) stays in "
    "the calling stage, microseconds per call.",
    "'room: response' includes the empty room's recording (one convolution per room) and the transducer "
    "frequency responses; the person's subject draw is in the room's scene draw (two subjects per room).",
    "Glue rows ('... other') are the timed functions' own code outside the functions named: e.g. the frame's "
    "camera transforms, GenerationConfig.simulation_config() and the values dict; the recorder's vstack of "
    "positions and adding the room to the body response.",
]


# -- the timer --------------------------------------------------------------------------------------------------
class StageTimer:
    """Exclusive wall time and call counts per stage, over nested timed calls."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.functions: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))  # stage -> fn -> [n, s]
        self.stack: list[list] = []   # [stage, seconds spent in timed children]
        self.rigs: list[tuple[int, np.ndarray]] = []

    def run(self, stage: str, target: str, fn, args, kwargs):
        self.stack.append([stage, 0.0])
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            _, children = self.stack.pop()
            self.seconds[stage] += elapsed - children
            self.calls[stage] += 1
            own = self.functions[stage][target]
            own[0] += 1
            own[1] += elapsed - children
            if self.stack:
                self.stack[-1][1] += elapsed

    def enclosing(self, names) -> str | None:
        for stage, _ in reversed(self.stack):
            if stage in names:
                return stage
        return None


def _resolve(target: str):
    """(owner, attribute name, raw attribute) of "module:Class.attr" / "module:function"."""
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    raw = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if raw is None:
        raise AttributeError(f"STAGE_OF names {target}, which does not exist (the code moved?): update STAGE_OF")
    return owner, name, raw


def _pair_kinds(positions, pair_tx, pair_rx, rig) -> np.ndarray | None:
    """0 direct, 1 one end an image (a wall's or a furniture face's), 2 both; None when the pairs cannot be told
    apart. The receivers start where the real microphones are found in ``positions`` (transmitters first)."""
    if rig is None:
        return None
    n_speakers, microphones = rig
    positions, n_microphones = np.asarray(positions), len(microphones)
    starts = [i for i in range(n_speakers, len(positions) - n_microphones + 1)
              if np.array_equal(positions[i:i + n_microphones], microphones)]
    if len(starts) != 1:
        return None
    n_tx = starts[0]
    return (np.asarray(pair_tx) >= n_speakers).astype(int) + (np.asarray(pair_rx) >= n_tx + n_microphones)


def _wrapper(timer: StageTimer, target: str, rule, fn):
    timed = f"{target}"

    def stage_of(args, kwargs):
        if isinstance(rule, str):
            return rule
        if isinstance(rule, (Rig, FirstUse)):
            return rule.stage
        if isinstance(rule, Within):
            return rule.inside.get(timer.enclosing(rule.inside), rule.default)
        if isinstance(rule, ByArgument):
            value = args[rule.index] if len(args) > rule.index else kwargs.get(rule.name)
            return rule.if_none if value is None else rule.otherwise
        raise TypeError(rule)

    if isinstance(rule, PairSplit):
        def split(*args, **kwargs):   # the splitting's own time is a stage of its own, not the caller's
            return timer.run("profiler: pair-splitting overhead", timed, split_calls, args, kwargs)

        def split_calls(*args, **kwargs):
            kinds = _pair_kinds(args[rule.positions], args[rule.pair_args[0]], args[rule.pair_args[1]],
                                timer.rigs[-1] if timer.rigs else None)
            if kinds is None or kwargs or np.any(np.diff(kinds) < 0):   # not contiguous blocks: one call
                stage = rule.stages[0] + " [unsplit]"
                return timer.run(stage, timed, fn, args, kwargs)
            outputs = []
            for kind in np.unique(kinds):
                block = np.flatnonzero(kinds == kind)
                sub = list(args)
                for index in rule.pair_args:
                    sub[index] = np.ascontiguousarray(args[index][block[0]:block[-1] + 1])
                outputs.append(timer.run(rule.stages[kind], timed, fn, sub, {}))
            if rule.combine == "inplace":
                return None
            if not outputs:   # no pairs: the kernel's own empty answer
                return fn(*args)
            return tuple(np.concatenate(parts) for parts in zip(*outputs))
        return split

    def wrapped(*args, **kwargs):
        if isinstance(rule, FirstUse) and getattr(args[0], rule.cache) is not None:
            return fn(*args, **kwargs)
        stage = stage_of(args, kwargs)
        if isinstance(rule, Rig):
            simulator = args[0]
            timer.rigs.append((len(simulator.speakers), np.asarray(simulator.microphones)))
            try:
                return timer.run(stage, timed, fn, args, kwargs)
            finally:
                timer.rigs.pop()
        return timer.run(stage, timed, fn, args, kwargs)

    wrapped.__wrapped__ = fn
    wrapped.__name__ = getattr(fn, "__name__", "wrapped")
    return wrapped


class Patched:
    """Context manager: every function of :data:`STAGE_OF` timed by ``timer``; all restored on exit."""

    def __init__(self, timer: StageTimer, stage_of: dict | None = None):
        self.timer = timer
        self.stage_of = STAGE_OF if stage_of is None else stage_of
        self.saved = []

    def __enter__(self):
        names = {name for name, _ in STAGES}
        try:
            for target, rule in self.stage_of.items():
                stages = rule.stages if isinstance(rule, PairSplit) else (
                    [rule] if isinstance(rule, str) else [rule.stage] if isinstance(rule, (Rig, FirstUse)) else
                    [rule.default, *rule.inside.values()] if isinstance(rule, Within) else [rule.if_none, rule.otherwise])
                unknown = set(stages) - names
                if unknown:
                    raise ValueError(f"STAGE_OF[{target!r}] names stages not in STAGES: {sorted(unknown)}")
                owner, name, raw = _resolve(target)
                own = isinstance(owner, type) and name in owner.__dict__ or not isinstance(owner, type)
                if isinstance(raw, property):
                    new = property(_wrapper(self.timer, target, rule, raw.fget), raw.fset, raw.fdel, raw.__doc__)
                elif isinstance(raw, (staticmethod, classmethod)):
                    raise TypeError(f"{target}: static and class methods are not supported; add support or drop it")
                else:
                    new = _wrapper(self.timer, target, rule, raw)
                self.saved.append((owner, name, raw, own))
                setattr(owner, name, new)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        while self.saved:
            owner, name, raw, own = self.saved.pop()
            if own:
                setattr(owner, name, raw)
            else:
                delattr(owner, name)
        return False


# -- the run ----------------------------------------------------------------------------------------------------
@dataclass
class Profile:
    """A profiled run: per-stage exclusive seconds and calls, the measured wall time, the rooms' results."""

    config: object
    rooms: list
    frames: int
    measured_s: float
    seconds: dict
    calls: dict
    functions: dict
    room_seconds: list = field(default_factory=list)
    results: list = field(default_factory=list)
    warmup_s: float | None = None
    body_model_s: float | None = None


def generation_config(rooms: int, frames_per_room: int, realism: str, seed: int = 0, **overrides):
    """The GenerationConfig of ``python -m simulator.generate`` with these arguments (defaults otherwise)."""
    from simulator.generate import GenerationConfig

    return GenerationConfig(rooms=rooms, frames_per_room=frames_per_room, realism=realism, seed=seed, **overrides)


def profile_rooms(config, rooms, body_model=None, warmup: bool = True, keep_results: bool = False,
                  stage_of: dict | None = None) -> Profile:
    """Simulate and write ``rooms`` of ``config`` as a worker does (into a temporary store), timed by stage."""
    import torch
    import zarr

    from simulator import room_generation
    from simulator.generation_store import open_or_create_store
    from simulator.room_generation import RoomGenerator

    threads = torch.get_num_threads()
    body_model_s = None
    try:
        if body_model is None:
            from bodies import load_body_model

            t = time.perf_counter()
            body_model = load_body_model("anny")
            body_model_s = time.perf_counter() - t
        generator = RoomGenerator(config, body_model=body_model)     # sets torch.set_num_threads(1)
        warmup_s = None
        if warmup:   # numba cache loading, Embree, lazy imports: what a worker's first room pays once
            warm_config = type(config)(**{**config.identity(), "frames_per_room": 1})
            t = time.perf_counter()
            RoomGenerator(warm_config, body_model=body_model).simulate(max(rooms) + 1)
            warmup_s = time.perf_counter() - t
        timer = StageTimer()
        measured = 0.0
        room_seconds, results = [], []
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "profile.zarr")
            open_or_create_store(out, config)
            root = zarr.open_group(out, mode="r+")
            with Patched(timer, stage_of):
                for room in rooms:
                    t = time.perf_counter()
                    result = generator.simulate(room)
                    room_generation.write_room(root, config, room, result)   # looked up now: the timed one
                    seconds = time.perf_counter() - t
                    measured += seconds
                    room_seconds.append(seconds)
                    if keep_results:
                        results.append(result)
        assert not timer.stack, "a timed call did not return"
    finally:
        torch.set_num_threads(threads)
    return Profile(config=config, rooms=list(rooms), frames=len(rooms) * config.frames_per_room, measured_s=measured,
                   seconds=dict(timer.seconds), calls=dict(timer.calls),
                   functions={stage: {target: {"calls": n, "seconds": t} for target, (n, t) in by.items()}
                              for stage, by in timer.functions.items()}, room_seconds=room_seconds,
                   results=results, warmup_s=warmup_s, body_model_s=body_model_s)


def summarize(profile: Profile, tolerance: float = 0.03) -> dict:
    """Per-stage rows (every stage of STAGES, plus any '[unsplit]' fallback) and totals; asserts the sum."""
    frames = profile.frames
    names = [name for name, _ in STAGES]
    levels = dict(STAGES)
    extra = [s for s in profile.seconds if s not in levels]       # '[unsplit]' fallbacks
    for stage in extra:
        levels[stage] = "frame"
    total = sum(profile.seconds.values())
    rows = []
    for stage in names + extra:
        seconds = profile.seconds.get(stage, 0.0)
        rows.append({
            "stage": stage, "level": levels[stage], "seconds_total": seconds,
            "seconds_per_frame": seconds / frames, "share": seconds / profile.measured_s if profile.measured_s else 0.0,
            "calls": profile.calls.get(stage, 0), "calls_per_frame": profile.calls.get(stage, 0) / frames,
            "functions": profile.functions.get(stage, {}),
        })
    residual = profile.measured_s - total
    assert all(r["seconds_total"] >= -1e-6 for r in rows), "a negative stage time: the timing is broken"
    assert abs(residual) <= tolerance * profile.measured_s, (
        f"the stages add up to {total:.3f} s but {profile.measured_s:.3f} s were measured "
        f"({100 * residual / profile.measured_s:+.1f} %, more than {100 * tolerance:g} %)")
    per_room = profile.config.frames_per_room
    room_level = sum(r["seconds_total"] for r in rows if r["level"] == "room")
    frame_level = sum(r["seconds_total"] for r in rows if r["level"] == "frame")
    per_frame = profile.measured_s / frames
    at_20 = (frame_level + residual) / frames + room_level / len(profile.rooms) / 20
    return {
        "rows": rows,
        "frames": frames, "rooms": len(profile.rooms), "frames_per_room": per_room,
        "measured_s": profile.measured_s, "stages_sum_s": total, "residual_s": residual,
        "residual_share": residual / profile.measured_s if profile.measured_s else 0.0,
        "seconds_per_frame": per_frame,
        "frame_level_seconds_per_frame": frame_level / frames,
        "room_level_seconds_per_room": room_level / len(profile.rooms),
        "room_level_seconds_per_frame": room_level / frames,
        "frames_per_s_per_core": 1.0 / per_frame if per_frame else None,
        "seconds_per_frame_at_20_frames_per_room": at_20,
        "frames_per_s_per_core_at_20_frames_per_room": 1.0 / at_20 if at_20 else None,
        "room_seconds": profile.room_seconds,
        "warmup_room_s": profile.warmup_s, "body_model_build_s": profile.body_model_s,
    }




def markdown(summary: dict, header: str) -> str:
    lines = [header, "",
             f"{summary['rooms']} rooms x {summary['frames_per_room']} frames = {summary['frames']} frames; "
             f"room-level stages amortised over {summary['frames_per_room']} frames per room; "
             "exclusive wall time, one thread.", "",
             "| stage | level | s / frame | share | calls / frame |",
             "| --- | --- | ---: | ---: | ---: |"]
    for r in summary["rows"]:
        lines.append(f"| {r['stage']} | {r['level']} | {r['seconds_per_frame']:.4f} | {100 * r['share']:.1f} % "
                     f"| {r['calls_per_frame']:.2f} |")
    lines.append(f"| unattributed (loop, profiler overhead) | | {summary['residual_s'] / summary['frames']:.4f} "
                 f"| {100 * summary['residual_share']:.1f} % | |")
    lines.append(f"| **total (measured)** | | **{summary['seconds_per_frame']:.4f}** | 100.0 % | |")
    room_response = next(r for r in summary["rows"] if r["stage"] == _ROOM_RESPONSE)
    lines += ["",
              f"- frames/s per core: **{summary['frames_per_s_per_core']:.2f}** ({summary['seconds_per_frame']:.3f} s "
              f"per frame, room costs amortised over {summary['frames_per_room']} frames)",
              f"- per-frame stages {summary['frame_level_seconds_per_frame']:.3f} s/frame; room-level stages "
              f"{summary['room_level_seconds_per_room']:.3f} s per room ({summary['room_level_seconds_per_frame']:.3f} "
              f"s/frame here), of which the room response {room_response['seconds_total'] / summary['rooms']:.3f} s "
              f"per room ({100 * room_response['share']:.1f} % of the frame here)",
              f"- projected at the default 20 frames per room: {summary['seconds_per_frame_at_20_frames_per_room']:.3f} "
              f"s per frame, {summary['frames_per_s_per_core_at_20_frames_per_room']:.2f} frames/s per core",
              f"- stages sum to {summary['stages_sum_s']:.3f} s of {summary['measured_s']:.3f} s measured around "
              f"simulate + write_room (residual {100 * summary['residual_share']:+.2f} %); rooms took "
              + ", ".join(f"{s:.2f}" for s in summary["room_seconds"]) + " s"
              + (f"; warm-up room (1 frame, not counted) {summary['warmup_room_s']:.2f} s"
                 if summary.get("warmup_room_s") is not None else ""),
              "", "Not separated:"]
    lines += [f"- {note}" for note in NOT_SEPARATED]
    return "\n".join(lines) + "\n"


def mapping_markdown() -> str:
    """The function -> stage mapping as a markdown table."""
    rows = ["| function | stage |", "| --- | --- |"]
    for target, rule in STAGE_OF.items():
        if isinstance(rule, str):
            text = rule
        elif isinstance(rule, Rig):
            text = rule.stage
        elif isinstance(rule, FirstUse):
            text = f"{rule.stage} (first use only: while self.{rule.cache} is None)"
        elif isinstance(rule, Within):
            text = rule.default + "".join(f"; inside '{k}': {v}" for k, v in rule.inside.items())
        elif isinstance(rule, ByArgument):
            text = f"{rule.name} None: {rule.if_none}; else: {rule.otherwise}"
        else:
            text = "by pair: " + " / ".join(f"{k}: {s}" for k, s in zip(("direct", "one wall", "two walls"), rule.stages))
        rows.append(f"| `{target}` | {text} |")
    return "\n".join(rows) + "\n"


def main(argv=None, body_model=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=2)
    parser.add_argument("--frames-per-room", type=int, default=5)
    parser.add_argument("--realism", choices=("ideal", "realistic"), default="ideal")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-order", type=int, default=None, help="image-source order (default: the generator's)")
    parser.add_argument("--kernel-samples", type=int, default=None, help="(default: the generator's)")
    parser.add_argument("--no-warmup", action="store_true", help="count the first room's one-off costs too")
    parser.add_argument("--tolerance", type=float, default=0.03, help="largest |stages - measured| / measured")
    parser.add_argument("--note", default="", help="appended to the machine line of the markdown")
    parser.add_argument("--show-mapping", action="store_true", help="also print the function -> stage table")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)
    if args.rooms < 1 or args.frames_per_room < 1:
        parser.error("--rooms and --frames-per-room must be >= 1")

    overrides = {k: v for k, v in (("max_order", args.max_order), ("kernel_samples", args.kernel_samples))
                 if v is not None}
    config = generation_config(args.rooms, args.frames_per_room, args.realism, args.seed, **overrides)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    profile = profile_rooms(config, list(range(args.rooms)), body_model=body_model, warmup=not args.no_warmup)
    summary = summarize(profile, args.tolerance)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    command = "OMP_NUM_THREADS=1 python -m experiments.profile_generation " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    header = (f"Machine: {machine_name()}" + (f", load average {load:.1f} at start, {load_end:.1f} at end"
                                          if load is not None else "")
              + (f" ({args.note})" if args.note else "") + f". Command: `{command.strip()}`")
    text = markdown(summary, header)
    print(text)
    if args.show_mapping:
        print(mapping_markdown())
    results = {"machine": machine_name(), "command": command.strip(), "realism": args.realism,
               "config": config.identity(), "python": platform.python_version(),
               "load_average_start": load, "load_average_end": load_end,
               "stage_of": {k: v if isinstance(v, str) else repr(v) for k, v in STAGE_OF.items()},
               "not_separated": NOT_SEPARATED} | summary
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=float)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)
    return results


if __name__ == "__main__":
    main()
