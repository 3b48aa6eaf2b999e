"""pipeline.real_captures: the PoseKernel dataset layout and raw captures, read back from folders the
tests write (a known point reflector and known joints; the simulator's recordings of a sphere)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import scipy.io.wavfile
import trimesh

from bodies.joints import JOINT_INDEX, JOINT_NAMES
from pipeline.real_captures import (
    CaptureCalibration, CaptureFormatError, PoseKernelDataset, RawCapture, write_raw_capture,
)
from pipeline.sample import Sample
from simulator.recording import RoomSimulator, SimulationConfig
from simulator.scene import envelope
from tests.helpers import (  # SENSORS, gnd49, reflector_kernel: also imported from here by test_train_evaluate
    CO_LOCATED, SENSORS, SEPARATED, T_RIR, gnd49, make_scene, reflector_kernel, sphere_body, write_posekernel_layout,
)

FS = 96_000.0
C = 343.2
K_AZURE = np.array([[914.0, 0, 957.0], [0, 914.0, 547.0], [0, 0, 1]])


# -- the PoseKernel dataset layout ---------------------------------------------------------------------
FRAMES = {"environment1": ["0", "2", "10"], "environment2": ["0", "1"]}


@pytest.fixture
def dataset_root(tmp_path):
    root = write_posekernel_layout(tmp_path / "PoseKernel", FRAMES)
    (root / "README.txt").write_text("not an environment")
    return root


def test_every_environment_and_frame_is_read_in_order_with_its_values(dataset_root):
    dataset = PoseKernelDataset(dataset_root, detector=None)
    assert len(dataset) == 5
    samples = list(dataset)
    assert [(s.room_name, s.frame_id) for s in samples] == [
        ("environment1", "0"), ("environment1", "2"), ("environment1", "10"),
        ("environment2", "0"), ("environment2", "1")]
    for s in samples:
        assert isinstance(s, Sample)
        env = int(s.room_name[-1])
        assert s.room_id == env
        sensors = SENSORS[s.room_name]
        np.testing.assert_array_equal(s.speaker_pos, sensors)
        np.testing.assert_array_equal(s.mic_pos, sensors)
        np.testing.assert_array_equal(s.pair_index, [[0, 0], [1, 1], [2, 2], [3, 3]])
        gnd = gnd49(int(s.frame_id), env)
        # the 15 joints are FrankMocap rows 39 (pelvis), 37 (neck), 43 (head), ... (design page)
        for name, row in [("pelvis", 39), ("neck", 37), ("head", 43), ("r_wrist", 31), ("l_ankle", 30)]:
            np.testing.assert_allclose(s.joints3d[JOINT_INDEX[name]], gnd[row])
        # kernels: normalised, the scale restores the file exactly, and the echo sits at 2 d / c
        np.testing.assert_allclose(s.kernels * s.kernel_scale, reflector_kernel(sensors, gnd[39]), rtol=1e-6)
        d = np.linalg.norm(sensors - gnd[39], axis=1)
        np.testing.assert_array_equal(np.argmax(np.abs(s.kernels), axis=1), np.round(2 * d / C * FS))
        # keypoints: the exact pinhole projection through the Azure Kinect defaults
        u = 914.0 * s.joints3d[:, 0] / s.joints3d[:, 2] + 957.0
        v = 914.0 * s.joints3d[:, 1] / s.joints3d[:, 2] + 547.0
        np.testing.assert_allclose(s.keypoints2d[:, :2], np.stack([u, v], 1), atol=1e-9)
        np.testing.assert_array_equal(s.keypoints2d[:, 2], 1.0)
        np.testing.assert_array_equal(s.intrinsics, K_AZURE)
        np.testing.assert_array_equal(s.image_size, [1920, 1080])
        assert s.sample_rate_hz == FS and s.has_ground_truth


def test_detector_noise_is_reproducible_and_detector_like(dataset_root):
    from simulator.detector import DetectorConfig

    a = PoseKernelDataset(dataset_root, seed=3)[1]
    b = PoseKernelDataset(dataset_root, seed=3)[1]
    c = PoseKernelDataset(dataset_root, seed=4)[1]
    exact = PoseKernelDataset(dataset_root, detector=None)[1].keypoints2d
    np.testing.assert_array_equal(a.keypoints2d, b.keypoints2d)
    assert not np.allclose(a.keypoints2d, c.keypoints2d)
    detected = a.keypoints2d[:, 2] > 0
    sigma = DetectorConfig().noise_sigma_px(a.joints3d[:, 2], 1080)
    error = np.linalg.norm(a.keypoints2d[:, :2] - exact[:, :2], axis=1)
    assert detected.sum() >= 10
    assert np.all(error[detected] < 6 * sigma[detected] + 1e-9) and error[detected].max() > 0


def test_kernels_are_cropped_or_padded_and_a_custom_camera_is_used(dataset_root):
    k = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    dataset = PoseKernelDataset(dataset_root, detector=None, kernel_samples=3000, intrinsics=k,
                                image_size_px=(640, 480), environments=["environment2"])
    assert len(dataset) == 2
    s = dataset[0]
    assert s.kernels.shape == (4, 3000) and not s.kernels[:, T_RIR:].any()
    np.testing.assert_allclose(s.keypoints2d[:, 0], 500 * s.joints3d[:, 0] / s.joints3d[:, 2] + 320)


@pytest.mark.parametrize("damage, match", [
    (lambda f: np.save(f / "rir.npy", np.zeros((T_RIR, 4)) + 1), r"rir\.npy.*\(4, T\).*transposed"),
    (lambda f: np.save(f / "rir.npy", np.full((4, 100), np.nan)), r"rir\.npy.*NaN"),
    (lambda f: np.save(f / "rir.npy", np.vstack([np.ones((3, 100)), np.zeros((1, 100))])), r"rir\.npy.*\[3\].*silent"),
    (lambda f: np.save(f / "gnd.npy", gnd49(0, 1) * 1000), r"gnd\.npy.*millimetres"),
    (lambda f: np.save(f / "gnd.npy", np.zeros((24, 3))), r"gnd\.npy.*\(49, 3\)"),
    (lambda f: (f / "gnd.npy").unlink(), r"gnd\.npy: missing"),
])
def test_broken_dataset_frames_are_refused_when_the_dataset_is_opened(dataset_root, damage, match):
    """Every frame is checked before any sample is read, and the message says which frame to re-copy."""
    damage(dataset_root / "environment1" / "2")
    with pytest.raises(CaptureFormatError, match=r"environment1/2/" + match):
        PoseKernelDataset(dataset_root, detector=None)
    PoseKernelDataset(dataset_root, detector=None, environments=["environment2"])   # the other one is fine


def test_a_frame_damaged_after_opening_is_named_not_read_as_numbers(dataset_root):
    from core.errors import DamagedDataError

    dataset = PoseKernelDataset(dataset_root, detector=None)
    path = dataset_root / "environment1" / "2" / "rir.npy"
    path.write_bytes(path.read_bytes()[:200])              # cut short while a training run reads the dataset
    dataset[0]
    with pytest.raises(DamagedDataError, match=r"environment1/2/rir\.npy: truncated"):
        dataset[1]
    np.save(path, np.full((4, 100), np.nan))
    with pytest.raises(DamagedDataError, match=r"environment1/2/rir\.npy: contains NaN.*changed on disk"):
        dataset[1]


def test_a_folder_without_environments_is_refused(tmp_path):
    with pytest.raises(CaptureFormatError, match="no environmentN folders"):
        PoseKernelDataset(tmp_path)
    (tmp_path / "environment1").mkdir()
    with pytest.raises(CaptureFormatError, match="audio_sensor_loc.npy: missing"):
        PoseKernelDataset(tmp_path)


# -- raw captures from the simulator ----------------------------------------------------------------------
CENTRES = np.array([[3.6, 4.3, 1.45], [2.5, 4.6, 1.3], [3.2, 3.8, 1.6]])
RADIUS = 0.15


def simulate_capture(rig, snr_db=80.0, frames=3):
    """Frames of a 15 cm sphere at CENTRES, their empty rooms, and the scene's calibration (camera frame)."""
    scene = make_scene(rig)
    sim = RoomSimulator(scene, SimulationConfig(snr_db=snr_db, body_room_multipath=False, shadowing=False))
    rng = np.random.default_rng(10)
    records = [sim.record(sphere_body(centre, RADIUS), rng) for centre in CENTRES[:frames]]
    camera = scene.camera
    calibration = CaptureCalibration(
        speaker_positions_m=camera.world_to_camera(sim.speakers),
        microphone_positions_m=camera.world_to_camera(sim.microphones),
        intrinsics=camera.intrinsics, image_size_px=camera.image_size_px, chirp_plan=sim.config.chirp_plan,
        speed_of_sound_m_s=sim.speed_of_sound_m_s, cam_to_world=camera.cam_to_world,
        environment_id=7, environment_name="test_room", height_m=1.7, activity="standing")
    joints = np.stack([camera.world_to_camera(np.tile(c, (15, 1))) for c in CENTRES[:frames]])
    pixels = np.stack([camera.project(np.tile(c, (15, 1)))[0] for c in CENTRES[:frames]])
    keypoints = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 0.9)], axis=-1)
    return sim, records, calibration, keypoints, joints


@pytest.fixture(scope="module")
def colocated_capture():
    return simulate_capture(CO_LOCATED)


def specular_delay_samples(speaker, microphone, centre, speed) -> float:
    points = trimesh.creation.icosphere(subdivisions=6, radius=RADIUS).vertices + centre
    path = np.linalg.norm(points - speaker, axis=1) + np.linalg.norm(points - microphone, axis=1)
    return path.min() / speed * FS


def peak(kernel) -> float:
    env = envelope(kernel)
    i = int(np.argmax(env))
    y0, y1, y2 = env[i - 1], env[i], env[i + 1]
    return i + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)


def check_echo_delays(capture: RawCapture, joints):
    """Every co-located (monostatic) pair's kernel peaks within 1 sample of the sphere's specular delay,
    computed in the camera frame from the sample's own positions."""
    assert len(capture) == len(joints)
    for f, sample in enumerate(capture):
        centre = joints[f, 0]
        kernels = sample.kernels * sample.kernel_scale
        monostatic = np.flatnonzero(sample.pair_index[:, 0] == sample.pair_index[:, 1])
        assert len(monostatic) == 4
        for p in monostatic:
            s, m = sample.pair_index[p]
            expected = specular_delay_samples(sample.speaker_pos[s], sample.mic_pos[m], centre, sample.speed_of_sound)
            assert abs(peak(kernels[p]) - expected) <= 1.0, (f, s, m, peak(kernels[p]), expected)


def test_a_simulated_capture_written_as_float_wavs_reads_back(tmp_path, colocated_capture):
    sim, records, calibration, keypoints, joints = colocated_capture
    folder = write_raw_capture(tmp_path / "cap", np.stack([r.recordings for r in records]),
                               np.stack([r.empty_recordings for r in records]), calibration, keypoints, joints)
    assert sorted(p.name for p in folder.iterdir()) == ["calibration.json", "empty.wav", "joints3d.npy",
                                                        "keypoints", "recording.wav"]
    rate, data = scipy.io.wavfile.read(folder / "recording.wav")
    assert rate == 96_000 and data.shape == (3 * 9600, 4) and data.dtype == np.float32
    capture = RawCapture(folder)
    check_echo_delays(capture, joints)
    sample = capture[1]
    assert sample.kernels.shape == (16, 4800) and sample.kernels.dtype == np.float32
    np.testing.assert_array_equal(sample.pair_index[:5], [[0, 0], [0, 1], [0, 2], [0, 3], [1, 0]])
    np.testing.assert_allclose(sample.speaker_pos, calibration.speaker_positions_m, atol=1e-12)
    np.testing.assert_allclose(sample.joints3d, joints[1], atol=1e-12)
    np.testing.assert_allclose(sample.keypoints2d, keypoints[1], atol=1e-3)   # OpenPose JSON, 3 decimals
    np.testing.assert_allclose(sample.cam_to_world, calibration.cam_to_world)
    assert (sample.room_id, sample.room_name, sample.activity, sample.height) == (7, "test_room", "standing", 1.7)
    # the reader's kernels are the deconvolution of that frame against the averaged empty room
    from simulator.deconvolution import deconvolve

    direct = deconvolve(records[1].recordings, np.mean([r.empty_recordings for r in records], 0),
                        records[1].chirps, calibration.chirp_plan.speaker_bands_hz(), FS)
    np.testing.assert_allclose(sample.kernels * sample.kernel_scale, direct.reshape(16, -1),
                               atol=1e-5 * np.abs(direct).max())


def test_int16_wavs_keep_the_echo(tmp_path):
    """16-bit WAVs (full scale recorded in calibration.json) of the separated rig: quantisation noise
    (~96 dB under the peak) leaves the echo delays intact."""
    sim, records, calibration, keypoints, joints = simulate_capture(SEPARATED, snr_db=None, frames=2)
    folder = write_raw_capture(tmp_path / "cap16", np.stack([r.recordings for r in records]),
                               records[0].empty_recordings, calibration, keypoints, joints, wav_format="int16")
    assert scipy.io.wavfile.read(folder / "empty.wav")[1].dtype == np.int16
    assert json.loads((folder / "calibration.json").read_text())["recording"]["wav_full_scale"] > 0
    check_echo_delays(RawCapture(folder), joints)


def test_wav_samples_are_brought_to_full_scale_by_their_bit_depth():
    from pipeline.real_captures import wav_to_full_scale

    np.testing.assert_array_equal(wav_to_full_scale(np.array([-32768, 0, 16384, 32767], np.int16)),
                                  [-1.0, 0.0, 0.5, 32767 / 32768])
    np.testing.assert_array_equal(wav_to_full_scale(np.array([-2**31, 2**30], np.int32)), [-1.0, 0.5])
    np.testing.assert_array_equal(wav_to_full_scale(np.array([0, 128, 192, 255], np.uint8)),
                                  [-1.0, 0.0, 0.5, 127 / 128])
    np.testing.assert_array_equal(wav_to_full_scale(np.array([-0.25, 3.5], np.float32)), [-0.25, 3.5])
    with pytest.raises(TypeError):
        wav_to_full_scale(np.array([1 + 1j]))


def test_a_16_bit_recording_with_a_float_empty_room_gives_the_float_captures_kernels(tmp_path, colocated_capture):
    """Integer PCM is divided by 2^15, not 32767: the empty room (the direct paths, ~60 dB over the echo of
    the co-located rig) then cancels, and only int16 quantisation separates the kernels from the all-float
    capture's. Dividing by 32767 leaves 1/32768 of every direct path in the kernels."""
    sim, records, calibration, keypoints, joints = colocated_capture
    recordings, empty = np.stack([r.recordings for r in records[:2]]), records[0].empty_recordings
    peak = 2 * max(np.abs(recordings).max(), np.abs(empty).max())      # both files within [-0.5, 0.5]
    float_folder = write_raw_capture(tmp_path / "float", recordings / peak, empty / peak, calibration,
                                     keypoints[:2], joints[:2])
    mixed = tmp_path / "mixed"
    shutil.copytree(float_folder, mixed)
    rate, data = scipy.io.wavfile.read(mixed / "recording.wav")
    scipy.io.wavfile.write(mixed / "recording.wav", rate, np.round(data.astype(float) * 32768).astype(np.int16))
    reference, capture = RawCapture(float_folder), RawCapture(mixed)
    for f in range(2):
        correlation = np.corrcoef(reference.kernels(f).ravel(), capture.kernels(f).ravel())[0, 1]
        assert correlation > 0.998, (f, correlation)


def test_a_recording_and_an_empty_room_on_different_scales_are_refused(tmp_path, colocated_capture):
    """A 16-bit recording whose calibration says full scale = 4.4 beside a float empty room holding
    physical values: subtracted, they would leave the direct paths in every kernel. Refused, naming both."""
    sim, records, calibration, keypoints, joints = colocated_capture
    recordings, empty = np.stack([r.recordings for r in records[:2]]), records[0].empty_recordings
    float_folder = write_raw_capture(tmp_path / "float", recordings, empty, CaptureCalibration(**vars(calibration)),
                                     keypoints[:2], joints[:2])
    int_folder = write_raw_capture(tmp_path / "int16", recordings, empty, CaptureCalibration(**vars(calibration)),
                                   keypoints[:2], joints[:2], wav_format="int16")
    assert json.loads((int_folder / "calibration.json").read_text())["recording"]["wav_full_scale"] > 2
    shutil.copyfile(float_folder / "empty.wav", int_folder / "empty.wav")
    with pytest.raises(CaptureFormatError, match=r"int16/recording\.wav \(16-bit PCM\) is .* times as loud as "
                                                 r".*int16/empty\.wav \(32-bit float\).*wav_full_scale"):
        RawCapture(int_folder)


def test_an_empty_room_recording_started_anywhere_is_synchronised_from_the_direct_paths(tmp_path, colocated_capture):
    """empty.wav starts 3000 samples into the chirp cycle and empty_first_sample is null: the reader
    finds the emission from the direct paths and the echoes are still where they should be."""
    sim, records, calibration, keypoints, joints = colocated_capture
    empty = np.stack([np.roll(r.empty_recordings, 3000, axis=-1) for r in records])
    calibration = CaptureCalibration(**(vars(calibration) | {"empty_first_sample": None}))
    folder = write_raw_capture(tmp_path / "cap", np.stack([r.recordings for r in records]), empty, calibration,
                               keypoints, joints)
    capture = RawCapture(folder)
    assert capture.empty_offset_samples == pytest.approx(3000, abs=0.05)
    check_echo_delays(capture, joints)


# -- raw captures: bad input -----------------------------------------------------------------------------
@pytest.fixture
def capture_folder(tmp_path, colocated_capture):
    sim, records, calibration, keypoints, joints = colocated_capture
    return write_raw_capture(tmp_path / "cap", np.stack([r.recordings for r in records[:2]]),
                             records[0].empty_recordings, calibration, keypoints[:2], joints[:2])


def rewrite_wav(path, change):
    rate, data = scipy.io.wavfile.read(path)
    rate, data = change(rate, data.copy())
    scipy.io.wavfile.write(path, rate, data)


def set_channel(data, channel, value):
    data[:, channel] = value
    return data


@pytest.mark.parametrize("file, change, match", [
    ("recording.wav", lambda r, d: (48_000, d), r"recording\.wav is sampled at 48000 Hz but .*empty\.wav at 96000"),
    ("empty.wav", lambda r, d: (r, d[:, :3]), r"recording\.wav has 4 channels but .*empty\.wav has 3"),
    ("recording.wav", lambda r, d: (r, set_channel(d, 2, np.nan)), r"recording\.wav: channel 2 holds NaN"),
    ("recording.wav", lambda r, d: (r, set_channel(d, 1, 0.0)), r"recording\.wav: channel\(s\) \[1\] are silent"),
    ("recording.wav", lambda r, d: (r, d[:5000]), r"recording\.wav: truncated -- 5000 samples"),
    ("empty.wav", lambda r, d: (r, d[:9599]), r"empty\.wav: truncated -- 9599 samples"),
])
def test_bad_wavs_name_the_file_and_the_field(capture_folder, file, change, match):
    rewrite_wav(capture_folder / file, change)
    with pytest.raises(CaptureFormatError, match=match):
        RawCapture(capture_folder)


def test_both_wavs_at_another_rate_or_channel_count_name_the_calibration(capture_folder):
    for name in ("recording.wav", "empty.wav"):
        rewrite_wav(capture_folder / name, lambda r, d: (48_000, d))
    with pytest.raises(CaptureFormatError, match=r"recording\.wav: sample rate is 48000 Hz.*sample_rate_hz is 96000"):
        RawCapture(capture_folder)
    for name in ("recording.wav", "empty.wav"):
        rewrite_wav(capture_folder / name, lambda r, d: (96_000, d[:, :3]))
    with pytest.raises(CaptureFormatError, match=r"recording\.wav: has 3 channels.*microphones_m lists 4"):
        RawCapture(capture_folder)


def test_a_wav_cut_short_on_disk_is_refused(capture_folder):
    path = capture_folder / "recording.wav"
    path.write_bytes(path.read_bytes()[: 100_000])
    with pytest.raises(CaptureFormatError, match=r"recording\.wav: truncated"):
        RawCapture(capture_folder)


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.pop("speakers_m"), "field speakers_m is missing"),
    (lambda c: c["chirp_plan"].update(n_speakers=3), r"field chirp_plan.n_speakers = 3 but speakers_m lists 4"),
    (lambda c: c.update(sample_rate_hz=48_000), r"field sample_rate_hz = 48000 differs from chirp_plan"),
    (lambda c: c["chirp_plan"].update(band_hz=[19_000, 60_000]), r"field chirp_plan is invalid.*Nyquist"),
    (lambda c: c["camera"].update(image_size_px=[1920]), r"field camera.image_size_px = \[1920\]: give \[width, "),
    (lambda c: c.update(speed_of_sound_m_s=3432), r"field speed_of_sound_m_s = 3432.*about 343"),
    (lambda c: c.update(pairs=[[0, 4]]), r"field pairs\[0\]\[1\] = 4: give a whole number from 0 to 3"),
])
def test_bad_calibration_names_the_field(capture_folder, edit, match):
    path = capture_folder / "calibration.json"
    calibration = json.loads(path.read_text())
    edit(calibration)
    path.write_text(json.dumps(calibration))
    with pytest.raises(CaptureFormatError, match=r"calibration\.json: " + match):
        RawCapture(capture_folder)


def test_keypoints_outside_the_image_lose_their_confidence_or_fail_the_capture(capture_folder):
    """Every frame's keypoints are read when the capture is opened: one warning, or a refusal before any work."""
    path = capture_folder / "keypoints" / "000000_keypoints.json"
    data = json.loads(path.read_text())
    values = np.array(data["people"][0]["pose_keypoints_2d"]).reshape(25, 3)
    values[4, 0] = 5000.0                         # r_wrist far right of the 1920-pixel image
    data["people"][0]["pose_keypoints_2d"] = values.ravel().tolist()
    path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match=r"000000_keypoints\.json.*r_wrist.*outside"):
        capture = RawCapture(capture_folder)
    sample = capture[0]
    assert sample.keypoints2d[JOINT_INDEX["r_wrist"], 2] == 0
    assert np.all(np.delete(sample.keypoints2d[:, 2], JOINT_INDEX["r_wrist"]) > 0)
    values[:, 0] += 4000.0                        # everything outside: the image size must be wrong
    data["people"][0]["pose_keypoints_2d"] = values.ravel().tolist()
    path.write_text(json.dumps(data))
    with pytest.raises(CaptureFormatError, match=r"000000_keypoints\.json.*outside.*image_size_px"):
        RawCapture(capture_folder)
    path.unlink()
    with pytest.raises(CaptureFormatError, match=r"000000_keypoints\.json: missing"):
        RawCapture(capture_folder)


def test_ground_truth_must_cover_every_frame(capture_folder):
    np.save(capture_folder / "joints3d.npy", np.zeros((1, 15, 3)))
    with pytest.raises(CaptureFormatError, match=r"joints3d\.npy.*2 frames"):
        RawCapture(capture_folder)
    (capture_folder / "joints3d.npy").unlink()
    sample = RawCapture(capture_folder)[0]
    assert not sample.has_ground_truth and np.isnan(sample.joints3d).all()


def test_sample_checks_its_fields():
    good = dict(kernels=np.zeros((2, 10)), kernel_scale=1.0, pair_index=[[0, 0], [0, 1]],
                speaker_pos=np.zeros((1, 3)), mic_pos=np.zeros((2, 3)), joints3d=np.zeros((15, 3)),
                keypoints2d=np.zeros((15, 3)), intrinsics=K_AZURE, image_size=(1920, 1080))
    Sample(**good)
    with pytest.raises(ValueError, match=r"pair_index has shape \(1, 2\); expected \(2, 2\)"):
        Sample(**(good | {"pair_index": [[0, 0]]}))
    with pytest.raises(ValueError, match="pair_index refers to speakers"):
        Sample(**(good | {"pair_index": [[1, 0], [0, 1]]}))
    with pytest.raises(ValueError, match="keypoints2d contains NaN"):
        Sample(**(good | {"keypoints2d": np.full((15, 3), np.nan)}))
    assert len(JOINT_NAMES) == 15
