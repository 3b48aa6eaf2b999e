"""pipeline: from recordings to pose kernels, and from kernels and 2D detections to voxel features.

The same code serves synthetic and real data.

Deconvolution (``pipeline.deconvolution``), paper eq. 4
    deconvolve(recordings (M, T) | (F, M, T), empty_recordings, chirps (S, T), bands_hz (S, 2),
               sample_rate_hz, *, kernel_samples=4800, regularization=1e-3, align=True)
        -> pose kernels (S, M, K) | (F, S, M, K): regularised in-band division, band separation of
           the frequency-multiplexed speakers, clock-offset alignment to the empty room
    normalize_kernels(kernels, pair_axes=1) -> (normalized, scale): one robust scale per frame
        (median over pairs of each kernel's RMS), so real and synthetic kernels meet in one range
    estimate_clock_offset, estimate_emission_offset, band_limit, band_taper, fractional_shift

Spatial encoding (``pipeline.spatial_encoding``), eq. 5-7, torch, batched, CPU or GPU
    kernel_envelope(kernels (..., T)) -> analytic-signal magnitude
    spatial_encoding(envelopes (B, P, T), speaker_pos_m (B, P, 3), mic_pos_m (B, P, 3),
                     voxel_centers_m (B|1, X, Y, Z, 3), speed_of_sound_m_s, sample_rate_hz)
        -> (B, P, X, Y, Z): each pair's envelope at each voxel's round-trip delay
    round_trip_delay_s(...)

Visual encoding (``pipeline.visual_encoding``), eq. 9
    keypoint_heatmaps(keypoints (B, J, 3), image_size_px, sigma_px=8, stride=4) -> (B, J, H', W')
    visual_encoding(heatmaps, intrinsics (B, 3, 3), voxel_centers_m, image_size_px, stride) -> (B, J, X, Y, Z)

Voxel grid (``pipeline.grid``)
    VoxelGrid(shape=(70, 70, 50), voxel_size_m=0.05, grid_to_camera) with from_camera_pose(cam_to_world),
        centered_at(point_camera_m), centers_camera(), camera_to_voxel / voxel_to_camera
    voxel_centers_camera, camera_to_voxel, voxel_to_camera, stack_grid_poses (batched, torch)

2D detections (``pipeline.detector``, ``pipeline.keypoint_formats``)
    DetectorModel(DetectorConfig()).detect(joints_camera_m (15, 3), intrinsics, image_size_px, rng, occluded)
        -> (15, 3) (u, v, confidence): distance-dependent noise, occlusion, misses, left/right swaps
    occluded_joints(vertices_camera_m, faces, joints_camera_m) -> (15,) bool (mesh ray casting)
    read_openpose_json(path) (BODY_25), read_coco_json(path) -> (15, 3)

Data (``pipeline.sample``, ``pipeline.real_captures``, ``pipeline.store_format``, ``pipeline.store_dataset``)
    Sample: one frame with the store contract's fields
    PoseKernelDataset(root): the public PoseKernel dataset layout (environmentN/<frame>/rir.npy, gnd.npy)
    RawCapture(folder) / write_raw_capture(...): multichannel WAV captures of a user's rig
        (format: docs/raw_capture_format.md)
    SyntheticStoreDataset(url, split, minors, activities, rooms): a torch Dataset over a
        ``simulator.generate`` store
"""
