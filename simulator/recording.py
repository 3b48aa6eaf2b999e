"""What the microphones record: chirps through the room and the body, with and without the person.

For one room scene (room, rig, air) :class:`RoomSimulator` computes the room's response once
(pyroomacoustics' image-source model, :mod:`simulator.room_response`) and then records any number
of posed bodies in it. A frame's impulse response from speaker s to microphone m is

    h_sm = room_sm                      empty room (image sources, wall and air absorption)
         + body_sm                      the body's echo (physical optics, :mod:`simulator.body_echo`),
                                        attenuated by air absorption over its path length c t
         + multipath_sm                 the body lit through first-order wall images of the speaker,
                                        and seen through first-order images of the microphone
         + shadow_sm                    minus the room paths that the body blocks

(a body moving during the chirp, ``PosedBody.vertex_velocities_m_s``, hears body_sm and multipath_sm with
time-varying delays instead: :mod:`simulator.motion_echo`) and the microphone records, in the steady state of
chirps repeated every frame period,

    r_m = sum_s chirp_s (*) G_spk (*) G_mic (*) h_sm + noise     ((*): circular convolution)

The empty-room recording is the same with h_sm = room_sm and its own noise (realistic noise: the mean of
``NoiseModel.empty_room_periods`` periods, as a user's empty.wav is averaged). The speakers play
continuously (10 chirps a second), so one frame is one period and every convolution is circular:
the room's tail beyond a period folds back, as it does in a real capture.

The ground-truth pose kernel ``body_sm + multipath_sm + shadow_sm`` is kept with every recording,
so that the deconvolution of the recordings (pipeline) can be checked against it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.signal

from bodies.model import PosedBody
from core.checks import check_finite_array, check_number, check_whole
from rooms import RoomScene, air_absorption_energy_per_m
from bodies.velocities import MotionModel
from simulator.body_echo import DEFAULT_REFLECTION_COEFFICIENT, FacetMesh, body_impulse_responses
from simulator.clothing import ClothingDraw, ClothingModel, dress
from simulator.clutter import Clutter, body_shadow_correction, compute_clutter, facets_hidden_by_furniture
from simulator.directivity import DEFAULT_AIM_HEIGHT_M, DirectivityDraw, DirectivityModel, Transducer, gains_towards_points
from simulator.errors import SimulationInputError
from simulator.motion_echo import check_vertex_velocities, is_moving, moving_echo_signals
from simulator.noise import NoiseDraw, NoiseModel, render_noise
from simulator.room_drift import DriftModel, drift_speeds, resynthesized_empty_room
from simulator.transducers import DeviceResponses, TransducerModel, frequency_response
from simulator.room_response import RoomAcoustics, compute_room_acoustics
from simulator.signals import ChirpPlan

#: Highest image-source order accepted: image sources grow as the cube of the order, and beyond
#: this a room's response takes longer than any worker should spend on one room.
MAX_IMAGE_SOURCE_ORDER = 50
#: Room responses accepted, seconds. The shortest holds 17 m of travel, more than the longest
#: direct path of the sampler's default rooms (10 m floors); a response too short for a room's
#: longest direct path is refused again, with the room, when the room's response is computed.
#: The longest is bounded because the response is held per speaker-microphone pair.
ROOM_RESPONSE_RANGE_S = (0.05, 2.0)


@dataclass
class SimulationConfig:
    """How a frame is simulated. Defaults follow the paper's capture (section 4).

    Attributes:
        chirp_plan: the frequency-multiplexed chirps (19-32 kHz, 100 ms, 96 kHz).
        max_order: image-source order of the room response.
        room_response_s: length of the room's impulse response before it is folded into one
            frame period (air absorption makes the tail negligible beyond ~0.3 s at 20 kHz+).
        reflection_coefficient: pressure reflection coefficient of the body (skin and clothing).
        body_room_multipath: add first-order body-room paths (speaker->wall->body->microphone and
            speaker->body->wall->microphone).
        multipath_patch_m: visibility of the body from wall images is decided per patch of this
            size (see ``FacetMesh.lit_facets``); None casts one ray per facet.
        shadowing: remove the room paths that the body blocks.
        shadow_attenuation: 1 removes a blocked path, 0.5 halves it (diffraction fills part in).
        snr_db: sensor noise: the power of the chirps as heard 1 m from their speakers in free
            field, over the power of the microphone's white noise. A property of the hardware
            (speaker level, microphone self-noise), not of the room: a microphone 2 cm from its
            speaker hears that speaker 34 dB louder, but its noise stays the same. None: no noise.
        clock_offset_max_samples: each recording is shifted by a random offset in
            [-max, max] samples (a small clock offset between playback and capture), drawn
            independently for the recording and for the empty-room recording.
        transducer_responses: filter the chirps by a speaker response (2nd-order band-pass,
            ``speaker_band_hz``) and the recordings by a microphone response (1st-order low-pass
            at ``microphone_corner_hz``).
        colocated_microphone_offset_m: a co-located pair's microphone is simulated this far
            above its speaker (a real one sits beside it; at zero distance the direct path is
            infinite).
        image_image_paths: with ``body_room_multipath``, also the paths speaker image -> body -> microphone
            image (first-order images across any two walls, scaled by both walls' reflection coefficients):
            as strong as the single-wall paths when transducers hang a few centimetres off a wall. Off
            (the ideal data's choice): only one wall per body path.
        noise: realistic noise (:class:`simulator.noise.NoiseModel`: coloured ambient noise, tonal
            interferers, impulsive events, drawn per room); it replaces the white noise of
            ``snr_db``, and its SNR is in band (module docstring of :mod:`simulator.noise`). None:
            white noise at ``snr_db``, as before.
        devices: real transducers (:class:`simulator.transducers.TransducerModel`): each speaker and
            microphone of a room gets its own drawn response (a resonance, a tilt, a gain) and an
            uncalibrated latency, on top of ``transducer_responses``. None: identical ideal devices.
        directivity: speaker and microphone patterns and aims (:class:`simulator.directivity.DirectivityModel`:
            baffled-piston tweeters, omni or cardioid-family microphones, aimed at the body region's centre
            with jitter), drawn per room. Applied to every image-source path (the speaker's gain along the
            first leg times the microphone's towards the image, at every synthesis node), to every body facet
            (both gains towards the facet, at the speaker's sub-band centre: :meth:`RoomSimulator.body_response`)
            and, with mirrored aims, to the body-room multipath's images. None: omni everywhere (as before).
        drift: the empty room is recorded in other air (:class:`simulator.room_drift.DriftModel`): one
            temperature drift dT per room, the room's paths re-synthesised at c(T + dT) for every empty-room
            recording (``Recording.empty_speed_of_sound_m_s``). None: the same air (as before).
        clothing: what the body's surface is made of (:class:`simulator.clothing.ClothingModel`): an outfit drawn
            per subject (skin, a top, a bottom, shoes: per-region reflection coefficients and loose garments'
            offset surfaces), replacing ``reflection_coefficient``. None: one coefficient everywhere (as before).
        clutter: the furniture is heard (:mod:`simulator.clutter`): its first-order reflections and shadows in the
            empty room, the body lit and seen by way of furniture faces, the furniture's paths the body blocks, and
            body facets furniture hides from a transducer. The room's furniture as drawn (a sitting body's
            rebuilt seat is not re-simulated: the empty room has the drawn seat). False: furniture is
            acoustically invisible (as before).
        motion: how fast bodies move during the chirp (:class:`bodies.velocities.MotionModel`): the generator
            draws every frame's vertex velocities with it; any body with ``vertex_velocities_m_s`` is recorded
            moving (:mod:`simulator.motion_echo`), whatever this field. None: the generator's bodies are still.
    """

    chirp_plan: ChirpPlan = field(default_factory=ChirpPlan)
    max_order: int = 17
    room_response_s: float = 0.15
    reflection_coefficient: float = DEFAULT_REFLECTION_COEFFICIENT
    body_room_multipath: bool = True
    multipath_patch_m: float | None = 0.025
    shadowing: bool = True
    shadow_attenuation: float = 1.0
    snr_db: float | None = 40.0
    clock_offset_max_samples: float = 0.0
    transducer_responses: bool = False
    speaker_band_hz: tuple[float, float] = (15_000.0, 36_000.0)
    microphone_corner_hz: float = 30_000.0
    colocated_microphone_offset_m: float = 0.02
    image_image_paths: bool = False
    noise: NoiseModel | None = None
    devices: TransducerModel | None = None
    directivity: DirectivityModel | None = None
    drift: DriftModel | None = None
    clothing: ClothingModel | None = None
    clutter: bool = False
    motion: MotionModel | None = None

    def __post_init__(self) -> None:
        # Every field is checked here, not where it is first used: a generator builds its
        # configuration up front to refuse bad arguments before any work, so whatever would fail
        # later inside a worker must fail now, naming the field.
        def fail(name, why):
            raise SimulationInputError(f"{name} = {getattr(self, name)!r}: {why}")

        error = SimulationInputError
        if not isinstance(self.chirp_plan, ChirpPlan):
            fail("chirp_plan", "pass a simulator.signals.ChirpPlan")
        rate_hz = self.chirp_plan.sample_rate_hz
        if not float(rate_hz).is_integer() or rate_hz < 1000:
            raise error(f"chirp_plan.sample_rate_hz = {rate_hz!r}: the room simulation needs a whole number "
                        "of hertz >= 1000, e.g. 96000")
        self.max_order = check_whole("max_order", self.max_order, 0, MAX_IMAGE_SOURCE_ORDER, error=error)
        self.room_response_s = check_number("room_response_s", self.room_response_s, *ROOM_RESPONSE_RANGE_S,
                                            error=error)
        self.reflection_coefficient = check_number("reflection_coefficient", self.reflection_coefficient,
                                                   -1.0, 1.0, error=error)
        for name in ("body_room_multipath", "shadowing", "transducer_responses", "image_image_paths", "clutter"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                fail(name, "use True or False")
            setattr(self, name, bool(getattr(self, name)))
        if self.multipath_patch_m is not None:
            self.multipath_patch_m = check_number("multipath_patch_m", self.multipath_patch_m, 0.0, 0.5,
                                                  low_open=True, high_open=True, error=error)
        self.shadow_attenuation = check_number("shadow_attenuation", self.shadow_attenuation, 0.0, 1.0,
                                               error=error)
        if self.snr_db is not None:
            self.snr_db = check_number("snr_db", self.snr_db, error=error)
        self.clock_offset_max_samples = check_number("clock_offset_max_samples", self.clock_offset_max_samples,
                                                     0.0, 100.0, high_open=True, error=error)
        nyquist = rate_hz / 2
        band = check_finite_array("speaker_band_hz", self.speaker_band_hz, shape=(2,), error=error)
        if not 0 < band[0] < band[1] < nyquist:
            fail("speaker_band_hz", f"use 0 < low < high < Nyquist ({nyquist:g} Hz)")
        self.speaker_band_hz = (float(band[0]), float(band[1]))
        self.microphone_corner_hz = check_number("microphone_corner_hz", self.microphone_corner_hz, 0.0, nyquist,
                                                 low_open=True, high_open=True, error=error)
        self.colocated_microphone_offset_m = check_number(
            "colocated_microphone_offset_m", self.colocated_microphone_offset_m, 0.0, 0.2,
            low_open=True, high_open=True, error=error)
        if self.noise is not None and not isinstance(self.noise, NoiseModel):
            fail("noise", "pass a simulator.noise.NoiseModel, or None for white noise at snr_db")
        if self.devices is not None and not isinstance(self.devices, TransducerModel):
            fail("devices", "pass a simulator.transducers.TransducerModel, or None for ideal devices")
        if self.directivity is not None and not isinstance(self.directivity, DirectivityModel):
            fail("directivity", "pass a simulator.directivity.DirectivityModel, or None for omni devices")
        if self.drift is not None and not isinstance(self.drift, DriftModel):
            fail("drift", "pass a simulator.room_drift.DriftModel, or None for an empty room in the frame's air")
        if self.clothing is not None and not isinstance(self.clothing, ClothingModel):
            fail("clothing", "pass a simulator.clothing.ClothingModel, or None for one reflection coefficient")
        if self.motion is not None and not isinstance(self.motion, MotionModel):
            fail("motion", "pass a bodies.velocities.MotionModel, or None for still bodies")

    @property
    def realistic(self) -> bool:
        """True when a per-room effect is drawn (the recorder then needs a random generator)."""
        return (self.noise is not None or self.devices is not None or self.directivity is not None
                or self.drift is not None or self.clothing is not None or self.motion is not None)


@dataclass
class Recording:
    """One frame as the microphones hear it, with its ground truth.

    Attributes:
        recordings: (M, T) microphone signals with the person (pressure, arbitrary units).
        empty_recordings: (M, T) the same rig's recordings of the empty room.
        chirps: (S, T) the emitted signals (one frame period each).
        pose_kernels: (S, M, T) ground-truth impulse response of the person: body echo,
            body-room multipath and shadowing (before transducer responses and noise); None for a moving
            body recorded with ``ground_truth=False``.
        room_impulse_responses: (S, M, T) the empty room's response, folded into one period.
        speaker_positions_m, microphone_positions_m: (S, 3), (M, 3) as simulated, room frame.
        sample_rate_hz, speed_of_sound_m_s: of the recording.
        clock_offsets_samples: (2,) offsets applied to (recording, empty recording).
        empty_speed_of_sound_m_s: speed of sound of the empty-room recording's air (differs from
            ``speed_of_sound_m_s`` with ``SimulationConfig.drift``).
    """

    recordings: np.ndarray
    empty_recordings: np.ndarray
    chirps: np.ndarray
    pose_kernels: np.ndarray | None
    room_impulse_responses: np.ndarray
    speaker_positions_m: np.ndarray
    microphone_positions_m: np.ndarray
    sample_rate_hz: float
    speed_of_sound_m_s: float
    clock_offsets_samples: np.ndarray
    empty_speed_of_sound_m_s: float | None = None

    def __post_init__(self) -> None:
        if self.empty_speed_of_sound_m_s is None:
            self.empty_speed_of_sound_m_s = self.speed_of_sound_m_s


def apply_air_absorption(responses: np.ndarray, sample_rate_hz: float, speed_of_sound_m_s: float,
                         temperature_c: float, relative_humidity_pct: float, segment: int = 128) -> np.ndarray:
    """Attenuate (..., T) impulse responses (t = 0 at emission) by ISO 9613-1 air absorption.

    A path arriving at t has length c t, whatever its route, so the attenuation
    exp(-a(f) c t / 2) is a filter that changes with t. It is applied on short overlapping
    segments (periodic Hann windows, hop ``segment / 2``, summing to 1), each filtered with the
    zero-phase gain for the path length at its centre: within a segment (0.46 m of path at the
    default) the attenuation varies by under 0.5 dB even at 32 kHz.
    """
    responses = np.asarray(responses, float)
    T = responses.shape[-1]
    L, hop, margin = segment, segment // 2, segment
    window = np.sin(np.pi * np.arange(L) / L) ** 2  # periodic Hann: shifted by L/2 they sum to 1
    freqs = np.fft.rfftfreq(2 * L, 1.0 / sample_rate_hz)
    alpha = air_absorption_energy_per_m(freqs, temperature_c, relative_humidity_pct)
    flat = responses.reshape(-1, T)
    active = np.flatnonzero(np.abs(flat).max(axis=1) > 0)
    padded = np.zeros((len(active), T + 3 * margin))  # room for the last segments' filter spread
    padded[:, margin:margin + T] = flat[active]
    out = np.zeros_like(padded)
    buffer = np.zeros((len(active), 2 * L))
    for begin in range(margin - hop, margin + T, hop):
        chunk = padded[:, begin:begin + L] * window
        if not chunk.any():
            continue
        centre_s = (begin - margin + L / 2) / sample_rate_hz
        gain = np.exp(-0.5 * alpha * speed_of_sound_m_s * max(centre_s, 0.0))
        buffer[:] = 0.0
        buffer[:, L // 2:L // 2 + L] = chunk  # centred, so the zero-phase filter can spread both ways
        filtered = np.fft.irfft(np.fft.rfft(buffer, axis=-1) * gain, 2 * L, axis=-1)
        lo = begin - L // 2
        out[:, max(lo, 0):lo + 2 * L] += filtered[:, max(-lo, 0):]
    result = np.zeros_like(flat)
    result[active] = out[:, margin:margin + T]
    return result.reshape(responses.shape)


def fold_into_period(impulse_responses: np.ndarray, period: int) -> np.ndarray:
    """Sum the segments of length ``period`` of (..., L) responses: their circular equivalent."""
    length = impulse_responses.shape[-1]
    segments = -(-length // period)
    padded = np.zeros(impulse_responses.shape[:-1] + (segments * period,))
    padded[..., :length] = impulse_responses
    return padded.reshape(impulse_responses.shape[:-1] + (segments, period)).sum(-2)


def simulated_microphone_positions(scene: RoomScene, offset_m: float) -> np.ndarray:
    """Microphones as simulated: a co-located pair's microphone raised ``offset_m`` above its speaker."""
    microphones = np.array(scene.rig.microphone_positions_m, float)
    speakers = np.asarray(scene.rig.speaker_positions_m, float)
    for m in range(len(microphones)):
        if np.min(np.linalg.norm(speakers - microphones[m], axis=1)) < 0.005:
            microphones[m, 2] += offset_m
    return microphones


class RoomSimulator:
    """Records posed bodies in one room scene; the room's response is computed once.

    Example::

        simulator = RoomSimulator(scene)
        recording = simulator.record(body, np.random.default_rng(0))
    """

    def __init__(self, scene: RoomScene, config: SimulationConfig | None = None,
                 rng: np.random.Generator | None = None):
        """``rng`` draws the room's realistic effects (``config.noise``, ...): needed when the config has any."""
        self.scene = scene
        self.config = config or SimulationConfig()
        if self.config.realistic and not isinstance(rng, np.random.Generator):
            raise SimulationInputError("rng = None: a configuration with realistic effects (noise, ...) draws them "
                                       "per room; pass RoomSimulator(scene, config, rng=np.random.default_rng(seed))")
        self._realism_rng = rng
        #: the room's drawn noise (None: white noise at snr_db)
        self.noise_draw: NoiseDraw | None = self.config.noise.draw(rng) if self.config.noise is not None else None
        #: the room's drawn speakers and microphones, in that order (None: ideal devices)
        n_speakers, n_microphones = len(scene.rig.speaker_positions_m), len(scene.rig.microphone_positions_m)
        self.device_draw: DeviceResponses | None = (self.config.devices.draw(rng, n_speakers + n_microphones)
                                                    if self.config.devices is not None else None)
        self.speakers = np.asarray(scene.rig.speaker_positions_m, float)
        self.microphones = simulated_microphone_positions(scene, self.config.colocated_microphone_offset_m)
        #: the room's drawn speaker and microphone patterns and aims (None: omni), after the draws above
        self.directivity_draw: DirectivityDraw | None = (
            self.config.directivity.draw(rng, self.speakers, self.microphones, self.aim_point_m(scene))
            if self.config.directivity is not None else None)
        plan = self.config.chirp_plan
        self.sample_rate_hz = float(plan.sample_rate_hz)
        self.period = plan.n_samples
        self.chirps = plan.chirps()
        if len(self.chirps) != len(scene.rig.speaker_positions_m):
            raise SimulationInputError(
                f"chirp_plan.n_speakers = {plan.n_speakers} but the rig has "
                f"{len(scene.rig.speaker_positions_m)} speakers; make them equal")
        self.speed_of_sound_m_s = float(scene.speed_of_sound_m_s)
        self.acoustics: RoomAcoustics = compute_room_acoustics(
            scene.room, self.speakers, self.microphones, sample_rate_hz=self.sample_rate_hz,
            n_samples=int(round(self.config.room_response_s * self.sample_rate_hz)),
            max_order=int(self.config.max_order), temperature_c=scene.temperature_c,
            relative_humidity_pct=scene.relative_humidity_pct, directivity=self.directivity_draw,
        )
        #: the furniture's part of the empty room (None: furniture unheard)
        self.clutter: Clutter | None = (compute_clutter(scene.room, self.acoustics, directivity=self.directivity_draw)
                                        if self.config.clutter else None)
        room = self.acoustics.impulse_responses
        if self.clutter is not None:
            room = room + self.clutter.impulse_responses
            self._furniture_images = self.clutter.first_order_images()
        self.room_impulse_responses = fold_into_period(room, self.period)
        self._transducer_gain = self._transducer_frequency_response()
        self._speaker_responses, self._microphone_responses = self._device_responses()
        # Spectra of the chirps (through the speakers), reused for every frame.
        self._chirp_spectra = np.fft.rfft(self.chirps, axis=-1) * self._transducer_gain * self._speaker_responses
        #: the room's drawn temperature drift of the empty-room recording, K (None: the frame's air), drawn last
        self.temperature_drift_k: float | None = (self.config.drift.draw(rng) if self.config.drift is not None
                                                  else None)
        self.empty_speed_of_sound_m_s = self.speed_of_sound_m_s
        empty_room = self.room_impulse_responses
        if self.temperature_drift_k is not None:
            _, self.empty_speed_of_sound_m_s = drift_speeds(scene.temperature_c, self.temperature_drift_k)
            drifted = resynthesized_empty_room(self.acoustics, self.temperature_drift_k)
            if self.clutter is not None:   # the paths furniture blocks stay blocked; its reflections move too
                drifted = (resynthesized_empty_room(self.acoustics, self.temperature_drift_k,
                                                    np.flatnonzero(~self.clutter.room_paths_blocked))
                           + resynthesized_empty_room(self.clutter.reflections, self.temperature_drift_k))
            empty_room = fold_into_period(drifted, self.period)
        self._empty_clean = self._convolve(empty_room)
        # The chirps 1 m from their speakers in free field: the reference of snr_db.
        at_1m = np.fft.irfft(self._chirp_spectra.sum(0), self.period) / (4 * np.pi)
        self.reference_power = float(np.mean(at_1m**2))
        #: each subject's drawn outfit, in the order the subjects were first recorded (with ``config.clothing``)
        self.clothing_draws: dict[tuple, ClothingDraw] = {}

    @staticmethod
    def aim_point_m(scene: RoomScene) -> np.ndarray:
        """(3,) where a room's devices are aimed (before jitter): the body region's centre, ``DEFAULT_AIM_HEIGHT_M``
        above the floor (a torso)."""
        floor_z = float(np.asarray(scene.room.bounds_m)[0][2])
        return np.array([*scene.body_region.center_xy_m, floor_z + DEFAULT_AIM_HEIGHT_M], dtype=float)

    # -- building blocks ------------------------------------------------------------------------
    def _transducer_frequency_response(self) -> np.ndarray:
        """Speaker x microphone frequency response on the frame's rFFT grid (1 when disabled)."""
        freqs = np.fft.rfftfreq(self.period, 1.0 / self.sample_rate_hz)
        if not self.config.transducer_responses:
            return np.ones_like(freqs, dtype=complex)
        fs = self.sample_rate_hz
        b, a = scipy.signal.butter(2, self.config.speaker_band_hz, btype="bandpass", fs=fs)
        _, speaker = scipy.signal.freqz(b, a, worN=freqs, fs=fs)
        b, a = scipy.signal.butter(1, self.config.microphone_corner_hz, btype="lowpass", fs=fs)
        _, microphone = scipy.signal.freqz(b, a, worN=freqs, fs=fs)
        return speaker * microphone

    def _device_responses(self) -> tuple[np.ndarray | float, np.ndarray | float]:
        """(S, K) speaker and (M, K) microphone responses of the drawn devices on the frame's rFFT grid
        (1.0 and 1.0 without ``config.devices``)."""
        if self.device_draw is None:
            return 1.0, 1.0
        freqs = np.fft.rfftfreq(self.period, 1.0 / self.sample_rate_hz)
        responses = frequency_response(self.device_draw, freqs)
        return responses[:len(self.speakers)], responses[len(self.speakers):]

    def _convolve(self, impulse_responses: np.ndarray) -> np.ndarray:
        """(M, T) steady-state recordings for (S, M, T) impulse responses, no noise."""
        spectra = np.fft.rfft(impulse_responses, axis=-1)  # (S, M, K)
        received = np.einsum("sk,smk->mk", self._chirp_spectra, spectra) * self._microphone_responses
        return np.fft.irfft(received, self.period, axis=-1)

    def _finish(self, clean: np.ndarray, rng: np.random.Generator, empty: bool = False) -> tuple[np.ndarray, float]:
        """Apply a clock offset and sensor noise to (M, T) clean recordings; ``empty``: the empty room's, whose
        realistic noise is the mean of ``empty_room_periods`` periods (:mod:`simulator.noise`)."""
        offset = 0.0
        if self.config.clock_offset_max_samples > 0:
            offset = float(rng.uniform(-1, 1) * self.config.clock_offset_max_samples)
            freqs = np.fft.rfftfreq(self.period)
            clean = np.fft.irfft(np.fft.rfft(clean, axis=-1) * np.exp(-2j * np.pi * freqs * offset),
                                 self.period, axis=-1)
        if self.noise_draw is not None:
            # from the room's realism stream; the frame's own stream advances as it would for white noise, so
            # that a realistic store holds the ideal store's people and detections (paired stores)
            if self.config.snr_db is not None:
                rng.standard_normal(clean.shape)
            plan = self.config.chirp_plan
            clean = clean + render_noise(self.noise_draw, clean.shape[0], self.period, self.sample_rate_hz,
                                         self.reference_power, self._realism_rng, band_hz=plan.band_hz,
                                         periods=self.noise_draw.empty_room_periods if empty else 1)
        elif self.config.snr_db is not None:
            sigma = np.sqrt(self.reference_power / 10 ** (self.config.snr_db / 10))
            clean = clean + sigma * rng.standard_normal(clean.shape)
        return clean, offset

    def realism(self) -> dict:
        """This room's drawn effects as plain data (empty when the config draws none), for a store to keep."""
        out = {}
        if self.noise_draw is not None:
            out["noise"] = self.noise_draw.to_dict()
        if self.device_draw is not None:
            out["devices"] = self.device_draw.to_dict()     # speakers first, then microphones
        if self.directivity_draw is not None:
            out["directivity"] = self.directivity_draw.to_dict()
        if self.clothing_draws:
            out["clothing"] = [draw.to_dict() for draw in self.clothing_draws.values()]
        if self.temperature_drift_k is not None:
            out["drift"] = {"temperature_drift_k": self.temperature_drift_k,
                            "empty_speed_of_sound_m_s": self.empty_speed_of_sound_m_s}
        return out

    def body_response(self, body: PosedBody, room_scene: RoomScene | None = None) -> np.ndarray:
        """(S, M, T) the person's part of the impulse responses: echo + multipath + shadow.

        ``room_scene``: the scene the body is checked against (default: this simulator's); the
        same room with other furniture (a seat rebuilt for a sitting body) keeps the room's
        response, which is computed without furniture.
        """
        return self._body_response(body, room_scene)[0]

    def _body_response(self, body: PosedBody, room_scene: RoomScene | None = None, moving: bool = False,
                       static_echo: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """(:meth:`body_response`, its (S, M, T) shadow part, None); with ``moving`` and a body whose
        ``vertex_velocities_m_s`` are not all zero, the last is the (M, T) recording of the body's echo and
        multipath synthesised moving (:mod:`simulator.motion_echo`; the vertices are the body at its t0), and
        without ``static_echo`` the first is None (the static echo, then only a ground truth, is not computed)."""
        cfg = self.config
        velocities = None
        if moving and body.vertex_velocities_m_s is not None:
            velocities = check_vertex_velocities("body.vertex_velocities_m_s", body.vertex_velocities_m_s,
                                                 len(body.vertices))
            velocities = velocities if is_moving(velocities) else None  # at rest: the static echo, bit for bit
        (room_scene or self.scene).validate_body(body.vertices, "body.vertices")
        vertices, reflection = body.vertices.astype(float), cfg.reflection_coefficient
        if cfg.clothing is not None:
            vertices, reflection = dress(vertices, body.faces, body.joints, self.clothing_for(body.subject))
        mesh = FacetMesh(vertices, body.faces)  # refuses an open or inside-out body
        # A transducer inside the body would hear no echo at all: refuse it before casting rays.
        mesh.check_outside("speaker_positions_m", self.speakers)
        mesh.check_outside("microphone_positions_m", self.microphones)
        S, M = len(self.speakers), len(self.microphones)
        direct_pairs = np.array([(s, m) for s in range(S) for m in range(M)])
        tx, rx, pairs, channels, gains = [self.speakers], [self.microphones], [direct_pairs], [np.arange(S * M)], [np.ones(S * M)]
        draw = self.directivity_draw
        tx_devices = list(draw.speakers) if draw is not None else []   # transducer of every tx and rx position
        rx_devices = list(draw.microphones) if draw is not None else []
        tx_speaker = list(range(S))                                      # the real speaker of every tx position
        lit = mesh.lit_facets(np.vstack([self.speakers, self.microphones]))
        if self.clutter is not None:   # a facet behind a table is dark to the speaker under it
            lit &= ~facets_hidden_by_furniture(self.clutter.faces, mesh, np.vstack([self.speakers, self.microphones]))
        if cfg.body_room_multipath:
            images = self.acoustics.first_order_images()
            W = len(images.wall_reflection)
            speaker_images = images.speaker_images_m.reshape(-1, 3)     # index s * W + w
            microphone_images = images.microphone_images_m.reshape(-1, 3)  # index m * W + w
            tx.append(speaker_images)
            rx.append(microphone_images)
            tx_speaker += [s for s in range(S) for _ in range(W)]
            if draw is not None:  # an image radiates (hears) like its device with the aim mirrored in the wall
                normals = images.wall_normals
                tx_devices += [d.mirrored(normals[w]) for d in draw.speakers for w in range(W)]
                rx_devices += [d.mirrored(normals[w]) for d in draw.microphones for w in range(W)]
            image_lit = mesh.lit_facets(np.vstack([speaker_images, microphone_images]), cfg.multipath_patch_m)
            lit = np.vstack([lit[:S], image_lit[: S * W], lit[S:], image_lit[S * W:]])
            s_idx, m_idx, w_idx = np.meshgrid(np.arange(S), np.arange(M), np.arange(W), indexing="ij")
            s_idx, m_idx, w_idx = s_idx.ravel(), m_idx.ravel(), w_idx.ravel()
            # speaker image -> body -> microphone, and speaker -> body -> microphone image
            pairs.append(np.stack([S + s_idx * W + w_idx, m_idx], 1))
            pairs.append(np.stack([s_idx, M + m_idx * W + w_idx], 1))
            channels += [s_idx * M + m_idx] * 2
            gains += [images.wall_reflection[w_idx]] * 2
        if self.clutter is not None:   # speaker image -> body -> microphone (and back) by way of a furniture face
            n_tx, n_rx = sum(map(len, tx)), sum(map(len, rx))
            via = self._furniture_images.body_paths(mesh, tx_offset=n_tx, rx_offset=n_rx)
            tx.append(via.tx_positions_m)
            rx.append(via.rx_positions_m)
            pairs.append(via.pairs)
            channels.append(via.channels)
            gains.append(via.gains)
            tx_speaker += via.tx_speaker.tolist()
            if draw is not None:
                tx_devices += [draw.speakers[s].mirrored(n) for s, n in zip(via.tx_speaker, via.tx_normals)]
                rx_devices += [draw.microphones[m].mirrored(n) for m, n in zip(via.rx_microphone, via.rx_normals)]
            lit = np.vstack([lit[:n_tx], via.tx_lit, lit[n_tx:], via.rx_lit])
        if cfg.body_room_multipath and cfg.image_image_paths:   # speaker image -> body -> microphone image, two walls
            s4, m4, w1, w2 = (a.ravel() for a in np.meshgrid(np.arange(S), np.arange(M), np.arange(W), np.arange(W),
                                                             indexing="ij"))
            pairs.append(np.stack([S + s4 * W + w1, M + m4 * W + w2], 1))
            channels.append(s4 * M + m4)
            gains.append(images.wall_reflection[w1] * images.wall_reflection[w2])
        facet_gains = None if draw is None else self._facet_gains(mesh, np.vstack(tx + rx), tx_devices + rx_devices,
                                                                 tx_speaker, lit)
        response = None
        if velocities is None or static_echo:
            echo = body_impulse_responses(
                mesh, np.vstack(tx), np.vstack(rx), self.period, sample_rate_hz=self.sample_rate_hz,
                speed_of_sound_m_s=self.speed_of_sound_m_s, reflection_coefficient=reflection,
                pairs=np.vstack(pairs), channels=np.concatenate(channels), n_channels=S * M,
                pair_gains=np.concatenate(gains), lit=lit, facet_gains=facet_gains,
            )
            # Every body path (direct or via a wall) of length c t crosses air: ISO 9613-1 attenuation.
            response = apply_air_absorption(echo.impulse_responses.reshape(S, M, self.period), self.sample_rate_hz,
                                            self.speed_of_sound_m_s, self.scene.temperature_c,
                                            self.scene.relative_humidity_pct)
        shadow = np.zeros((S, M, self.period))
        if cfg.shadowing:
            shadow = (self.acoustics.shadow_correction(mesh, attenuation=cfg.shadow_attenuation, period=self.period)
                      if self.clutter is None else
                      body_shadow_correction(self.acoustics, self.clutter, mesh, attenuation=cfg.shadow_attenuation,
                                             period=self.period))
            response = None if response is None else response + shadow
        if velocities is None:
            return response, shadow, None
        received = moving_echo_signals(
            mesh, velocities, np.vstack(tx), np.vstack(rx), cfg.chirp_plan, pair_speakers=np.concatenate(channels) // M,
            speed_of_sound_m_s=self.speed_of_sound_m_s, reflection_coefficient=reflection,
            pairs=np.vstack(pairs), channels=np.concatenate(channels), n_channels=S * M,
            pair_gains=np.concatenate(gains), lit=lit, facet_gains=facet_gains,
            response_filter=lambda responses: apply_air_absorption(
                responses, self.sample_rate_hz, self.speed_of_sound_m_s, self.scene.temperature_c,
                self.scene.relative_humidity_pct),
        )
        return response, shadow, self._convolve_received(received.reshape(S, M, self.period))

    def clothing_for(self, subject) -> ClothingDraw:
        """The outfit of ``subject`` in this room (drawn from the room's realism stream the first time it is seen)."""
        key = repr(subject)
        if key not in self.clothing_draws:
            self.clothing_draws[key] = self.config.clothing.draw(self._realism_rng)
        return self.clothing_draws[key]

    def _convolve_received(self, received: np.ndarray) -> np.ndarray:
        """(M, T) recordings of (S, M, T) signals as they reach the microphones from each speaker (already the
        chirps, e.g. a moving echo): the speakers' and microphones' responses of :meth:`_convolve` applied."""
        emitted = np.broadcast_to(self._transducer_gain * self._speaker_responses, (len(received), self.period // 2 + 1))
        spectra = np.einsum("sk,smk->mk", emitted, np.fft.rfft(received, axis=-1)) * self._microphone_responses
        return np.fft.irfft(spectra, self.period, axis=-1)

    def _facet_gains(self, mesh: FacetMesh, positions: np.ndarray, devices: list[Transducer],
                     tx_speaker: list[int], lit: np.ndarray) -> np.ndarray:
        """(N, F) directivity gain of every tx then rx position's transducer towards every facet's centroid that
        the position lights (``lit`` (N, F)); 1 elsewhere, where no path uses it (a path needs both ends lit).

        The echo is accumulated in time, so each gain is taken at one frequency: a speaker's (or its image's)
        at the centre f_c of that speaker's sub-band, a microphone's at the centre of the whole chirp band (the
        drawn microphones, omni and cardioid family, do not depend on frequency, so theirs is exact).

        Error bound of a piston's gain, D(x_c) used for D(x_c f / f_c) across the sub-band, x_c = k_c a sin theta
        (computed on 401 frequencies x 1801 angles 0-90 deg, for the default plan's four 3.06 kHz sub-bands):
        at most 0.075 (19-22.1 kHz), 0.065, 0.056, 0.050 (28.9-32 kHz) in absolute gain re the axis for a 3 cm
        piston, and within its -6 dB beam (D >= 0.5) at most 0.059, 0.051, 0.045, 0.040. It depends only on x_c
        and the sub-band's relative width, so every drawn radius (8 mm - 3 cm) has the same bound; on the axis
        the error is exactly 0. Image sources of the room response do not use this: they take the exact gain at
        every synthesis node (1 kHz apart; linear interpolation between nodes errs by at most 0.0016).
        """
        plan = self.config.chirp_plan
        bands = np.asarray(plan.speaker_bands_hz(), float)
        centre_all = 0.5 * (plan.band_hz[0] + plan.band_hz[1])
        n_tx = len(tx_speaker)
        f_hz = np.where(np.arange(len(positions)) < n_tx, 0.0, centre_all)
        f_hz[:n_tx] = bands[np.asarray(tx_speaker, dtype=int)].mean(axis=1)
        return gains_towards_points(devices, positions, mesh.centroids_m, f_hz, self.speed_of_sound_m_s,
                                    where=np.asarray(lit, dtype=bool))

    def record(self, body: PosedBody, rng: np.random.Generator, room_scene: RoomScene | None = None,
               ground_truth: bool = True) -> Recording:
        """Record one frame of ``body`` (room frame) in this room, and the empty room beside it.

        ``room_scene``: see :meth:`body_response`. ``ground_truth``: False leaves ``pose_kernels`` None for a
        moving body, whose recording does not need the static echo (generation keeps no ground truth unless
        ``--keep-recordings``); the recordings are the same, bit for bit.

        A body with ``vertex_velocities_m_s`` (not all zero) moves during the chirp: its echo and body-room
        multipath are synthesised with the time-varying delays of :mod:`simulator.motion_echo` (its vertices are
        the body when the chirp's middle reaches it), while the shadowing of room paths stays that of the
        vertices' pose (static), and ``pose_kernels`` stays the static kernel of that pose. At rest (None, or
        all zero) the recording is the static one, bit for bit.
        """
        kernels, shadow, moving = self._body_response(body, room_scene, moving=True, static_echo=ground_truth)
        if moving is None:
            full, offset_full = self._finish(self._convolve(self.room_impulse_responses + kernels), rng)
        else:  # the echo moves during the chirp; the room paths the body hides are those of its t0 pose
            full, offset_full = self._finish(self._convolve(self.room_impulse_responses + shadow) + moving, rng)
        empty, offset_empty = self._finish(self._empty_clean.copy(), rng, empty=True)
        return Recording(
            recordings=full, empty_recordings=empty, chirps=self.chirps, pose_kernels=kernels,
            room_impulse_responses=self.room_impulse_responses, speaker_positions_m=self.speakers,
            microphone_positions_m=self.microphones, sample_rate_hz=self.sample_rate_hz,
            speed_of_sound_m_s=self.speed_of_sound_m_s,
            clock_offsets_samples=np.array([offset_full, offset_empty]),
            empty_speed_of_sound_m_s=self.empty_speed_of_sound_m_s,
        )
