"""Realism presets: which of the effects a real rig records a simulation draws, per room.

``ideal`` is the clean simulation (white sensor noise at ``snr_db``, identical flat-ish devices, the empty room
recorded in the same air, furniture unheard, still bodies of one reflection coefficient): it reproduces earlier
stores bit for bit. ``realistic`` (the generator's default) adds every effect below, drawn per room (clothing per
subject, motion per frame) from random streams of their own (``numpy.random.default_rng([seed, room,
REALISM_STREAM])``, motion ``[seed, room, REALISM_STREAM, 1]``), so that the rest of a room (its scene, people,
detections) is the same under both presets:

=======================  =================================================  ==========================================
effect                   model (ranges: the classes' defaults)              checked against (tests)
=======================  =================================================  ==========================================
noise                    :class:`simulator.noise.NoiseModel`: coloured      spectrum slope within 0.1 dB of the
                         ambient noise (-6..0 dB/octave), 0-2 tones in       power law; in-band power; tone power
                         band, impulsive events, in-band SNR 10-40 dB        A^2/2; deconvolved noise = time-bandwidth
                         drawn per room; the empty room the mean of 10       prediction; the mean of P periods = the
                         periods (as a user's empty.wav is averaged)         definition, power 1 / P
                                                                             (``tests/test_noise.py``)
devices                  :class:`simulator.transducers.TransducerModel`:    a reflector's kernel = delta * g_s * g_m in
                         per-device resonance 20-30 kHz (Q 2-8), tilt,       amplitude and group delay; latency L
                         gain spread, latency 0-0.2 ms                       biases range by c L / 2
image-to-image paths     speaker image -> body -> microphone image across   against the exact sphere series between
                         any two walls (``image_image_paths``), R1 R2        the images: the same error as the direct
                                                                             echo's to 0.02 dB (``tests/test_recording``)
directivity              :class:`simulator.directivity.DirectivityModel`:   with cardioids, pyroomacoustics' own
                         baffled-piston tweeters (radius 0.8-3 cm), omni     directional shoebox RIR within 2 % in
                         or cardioid-family microphones (p 0.25-0.75),       band; a sphere on a piston's axis
                         aimed at the body region's centre with 15 deg       unchanged, 30 deg off scaled by 2 J1(x)/x
                         jitter; every image path (first leg / image),       at the sub-band centre
                         body facet and multipath image, mirrored aims       (``tests/test_directivity_recording.py``)
empty-room drift         :class:`simulator.room_drift.DriftModel`: the      one image path's residual = |1 - exp(-j 2
                         empty room recorded in air dT (+-0.5 K) warmer,     pi f L (1/c1 - 1/c0))| / (4 pi L) within
                         one dT per room, its paths re-synthesised at        1 %; the empty room's direct path at L /
                         c(T + dT); generation stretches it back to the      c1; stretched back, the kernel's error
                         frame's speed of sound before subtracting           falls 58 -> 0.017 (separated), 57 -> 1.6
                                                                             (co-located) (``tests/test_room_drift``,
                                                                             ``tests/test_recording``)
clothing                 :class:`simulator.clothing.ClothingModel`: per     a sphere's surface moved out by d echoes
                         subject, per-region |R| (skin 0.97-1, garments      2 d / c earlier (0.1 sample); R = 0 hands
                         0.6-0.95, shoes 0.85-1), garments 0-2 cm off the    remove exactly their delays' echo
                         skin                                                (``tests/test_clothing.py``)
furniture                :mod:`simulator.clutter` (``clutter``): first-     the seat echo at |image - mic| / c (0.1
                         order reflections and shadows in the empty room,    sample) and R / (4 pi L) (1 %); a body on
                         body paths by way of furniture faces, furniture     it removes exactly that path
                         paths the body blocks                               (``tests/test_clutter.py``)
motion                   :class:`bodies.velocities.MotionModel`: vertex     a sphere at +-1 m/s shifts each band's
                         velocities from a pose trajectory (walking 0.5-    kernel by v f_c / beta within 2 cm; at rest
                         1.5 m/s, hands <= 2 m/s) per frame; the echo with   bit for bit (``tests/test_motion_echo.py``,
                         time-varying delays (:mod:`simulator.motion_echo`)  ``tests/test_velocities.py``)
=======================  =================================================  ==========================================

``--without-effects EFFECT ...`` (``GenerationConfig(without_effects=...)``) leaves named effects out of the realistic
preset, for ablations: ``python -m experiments.realism_ablation`` builds paired test stores, one effect at a time, and
measures what each costs a trained network.

What each effect costs per frame is measured by ``python -m experiments.profile_generation --realism realistic``
(a stage per effect; the figures are in the README and ``experiments/results/generation/profile_realistic.md``).
"""
from __future__ import annotations

from bodies.velocities import MotionModel
from simulator.clothing import ClothingModel
from simulator.directivity import DirectivityModel
from simulator.noise import NoiseModel
from simulator.room_drift import DriftModel
from simulator.transducers import TransducerModel

__all__ = ["REALISM", "REALISM_EFFECTS", "REALISM_STREAM", "realism_effects"]

REALISM = ("ideal", "realistic")


def _realistic_effects() -> dict:
    """Every effect of the realistic preset: {SimulationConfig field: value}, in the order they draw."""
    return {"noise": NoiseModel(), "devices": TransducerModel(), "image_image_paths": True,
            "directivity": DirectivityModel(), "drift": DriftModel(), "clothing": ClothingModel(), "clutter": True,
            "motion": MotionModel()}


#: The effects of the realistic preset, by their :class:`simulator.recording.SimulationConfig` field names.
REALISM_EFFECTS = tuple(_realistic_effects())
#: The third word of a room's realism seed: [seed, room, REALISM_STREAM].
REALISM_STREAM = 14


def realism_effects(preset: str, without: tuple[str, ...] = ()) -> dict:
    """The :class:`simulator.recording.SimulationConfig` fields a preset sets ({} for ``ideal``).

    ``without``: effects of :data:`REALISM_EFFECTS` the realistic preset leaves out, for ablations (which effect
    costs what). The effects left in draw from the same per-room stream in the same order, so leaving one out
    changes the later effects' draws (the rooms, people and detections stay the ideal store's).
    """
    unknown = [name for name in without if name not in REALISM_EFFECTS]
    if unknown:
        raise ValueError(f"realism effects {unknown}: choose from {', '.join(REALISM_EFFECTS)}")
    if preset == "ideal":
        if without:
            raise ValueError("the ideal preset draws no effect to leave out: use the realistic preset")
        return {}
    if preset == "realistic":
        return {name: value for name, value in _realistic_effects().items() if name not in without}
    raise ValueError(f"realism preset {preset!r}: choose one of {REALISM}")
