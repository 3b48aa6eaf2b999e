"""Realism presets: which of the effects a real rig records a simulation draws, per room.

``ideal`` is the clean simulation (white sensor noise at ``snr_db``, identical flat-ish devices, the empty room
recorded in the same air): it reproduces earlier stores bit for bit. ``realistic`` adds the effects built so far,
each drawn per room from a random stream of its own (``numpy.random.default_rng([seed, room, REALISM_STREAM])``),
so that the rest of a room (its scene, people, detections) is the same under both presets:

=======================  =================================================  ==========================================
effect                   model (ranges: the classes' defaults)              checked against (tests)
=======================  =================================================  ==========================================
noise                    :class:`simulator.noise.NoiseModel`: coloured      spectrum slope within 0.1 dB of the
                         ambient noise (-6..0 dB/octave), 0-2 tones in       power law; in-band power; tone power
                         band, impulsive events, in-band SNR 10-40 dB        A^2/2; deconvolved noise = time-bandwidth
                         drawn per room                                      prediction (``tests/test_noise.py``)
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
=======================  =================================================  ==========================================

Added cost per frame, measured on this project's 2-core CPU (a 20,480-facet sphere, 4 x 4 rig, busy machine):
noise and devices are a few FFTs per frame (negligible); image-to-image paths add 0.23 s to the 0.29 s body
response (36 wall pairs per speaker-microphone pair).

Directivity adds about 0.1 s to that body response (each transducer's and wall image's gain towards every facet,
then one facet deposit per transducer pair; measured 0.60-0.71 s against 0.50-0.53 s, best of six, busy machine)
and nothing measurable to a room's construction (the path gains at the synthesis nodes).

The empty-room drift costs one re-synthesis of the room's paths per room (as much as the room's own response)
and one stretch of the empty recording per frame in generation (:func:`simulator.room_drift.stretch_to_speed`).
"""
from __future__ import annotations

from bodies.velocities import MotionModel
from simulator.clothing import ClothingModel
from simulator.directivity import DirectivityModel
from simulator.noise import NoiseModel
from simulator.room_drift import DriftModel
from simulator.transducers import TransducerModel

__all__ = ["REALISM", "REALISM_STREAM", "realism_effects"]

REALISM = ("ideal", "realistic")
#: The third word of a room's realism seed: [seed, room, REALISM_STREAM].
REALISM_STREAM = 14


def realism_effects(preset: str) -> dict:
    """The :class:`simulator.recording.SimulationConfig` fields a preset sets ({} for ``ideal``)."""
    if preset == "ideal":
        return {}
    if preset == "realistic":
        return {"noise": NoiseModel(), "devices": TransducerModel(), "image_image_paths": True,
                "directivity": DirectivityModel(), "drift": DriftModel(), "clothing": ClothingModel(), "clutter": True,
                "motion": MotionModel()}
    raise ValueError(f"realism preset {preset!r}: choose one of {REALISM}")
