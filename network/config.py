"""Configuration of the PoseKernelLifter network (paper section 3.3, Fig. 5).

:class:`NetworkConfig` holds every size the network, its encodings and its targets depend on. The
defaults are the paper's: a 70 x 70 x 50 grid of 5 cm voxels (3.5 x 3.5 x 2.5 m), six stages in
the manner of convolutional pose machines, three shared 3D convolutions per pose kernel before the
max-pool across pairs, Gaussian 3D heatmap targets. Smaller presets (:data:`CONFIGS`) cover the same
3.5 x 3.5 x 2.6 m box with coarser voxels for CPU tests and quick experiments.

Fields that the paper leaves open are documented where they are defined (``convs_per_stage``,
``norm``, ``norm_groups``).
"""
from __future__ import annotations

from core.errors import InputError
import math
from dataclasses import asdict, dataclass, fields, replace


class NetworkConfigError(InputError):
    """A network configuration has an impossible or inconsistent value."""


NORMS = ("group", "batch", "none")
GRID_PLACEMENTS = ("camera", "floor")
ARCHITECTURES = ("paper", "coarse_fine")
FINE_SHAPES = ("cube", "ray")
# Fields added after checkpoints were first written: a configuration read without one gets the value
# that reproduces how those checkpoints were trained, not today's default.
LEGACY_VALUES = {"arch": "paper", "antialias_encoding": False}


@dataclass
class NetworkConfig:
    """Sizes of the network, its encodings and its targets.

    Attributes:
        grid_shape: (X, Y, Z) voxels of the grid (axes: right, forward, up; see ``pipeline.grid``).
        voxel_size_m: voxel edge, metres.
        stages: number of prediction stages (convolutional pose machine), each supervised.
        channels: feature channels of the fused audio-visual features and of every stage.
        audio_channels: output channels of the shared per-pair 3D conv stack (3 convolutions).
        kernel_samples: pose kernel samples the network reads (longer kernels are cropped;
            4800 samples at 96 kHz = 50 ms, a 17 m round trip).
        sample_rate_hz: sampling rate of the kernels.
        image_size_px: (W, H) of the image the 2D keypoints live in.
        keypoint_sigma_px: width of each 2D keypoint heatmap (pixels). Keep it at least ~1/2 of a
            voxel's projected size (voxel / depth * focal), or a joint's cone of rays can slip between
            voxel centres: 8 px suits 5 cm voxels at ~3 m with f ~ 1000 px; the coarser presets use more.
        heatmap_stride: image pixels per 2D heatmap cell.
        target_sigma_voxels: width of the Gaussian 3D heatmap targets, in voxels.
        use_audio: False replaces the audio features by zeros (vision-only ablation).
        use_vision: False replaces the visual features by zeros (audio-only ablation).
        name: label of the configuration.
        convs_per_stage: 3x3x3 convolutions in each stage before its 1x1x1 prediction layer
            (the paper says "a series"; 2 keeps the full grid affordable).
        norm: normalisation after every 3x3x3 convolution: "group" (GroupNorm, per sample, so
            a frame's output never depends on the rest of the batch, default), "batch" or "none".
        norm_groups: groups of GroupNorm (reduced to a divisor of the channel count).
        grid_placement: where a frame's voxel grid goes (never from the ground truth):
            "camera" (default): axis-aligned with the camera (up = camera -y), centred at
            ``grid_center_m`` in the camera frame, for synthetic and real frames alike. The real
            PoseKernel dataset knows no floor, and a grid standing on a known floor would hand the
            network metric depth through the feet's rays (a vision-only network then looks far better
            on synthetic data than it is, hiding what sound adds; README, "Network"). "floor": the grid stands on the floor of
            frames that carry a camera pose (``VoxelGrid.from_camera_pose``), ``grid_center_m[2]``
            metres ahead of the camera; frames without one fall back to "camera".
        grid_center_m: (x, y, z) camera-frame centre of the grid, metres. The default (0, 0.2, 3.5) is
            chosen to hold the joints of the default synthetic scenes (README, "Network").
        arch: "paper" (:class:`network.model.PoseKernelLifter`, the paper's multi-stage network on
            ``grid_shape``) or "coarse_fine" (:class:`network.coarse_fine.CoarseToFineLifter`: ``grid_shape``
            and ``voxel_size_m`` are its coarse grid; ``stages``, ``audio_channels``, ``convs_per_stage``,
            ``heatmap_stride`` and ``target_sigma_voxels`` are not used).
        fine_cube: coarse_fine only: voxels per side of each joint's fine cube.
        fine_voxel_m: coarse_fine only: voxel edge of the fine cubes, metres.
        fine_shape: coarse_fine only: where each joint's fine stage looks. "cube": an axis-aligned cube of
            ``fine_cube`` voxels a side around the coarse joint. "ray": a tube along the joint's 2D viewing ray
            (the ray through the coarse joint when the keypoint's confidence is low), ``ray_samples`` steps
            of ``fine_voxel_m`` in depth around the coarse joint's depth and ``fine_cube`` across: vision
            pins the joint to its ray and sound fixes where on it.
        ray_samples: coarse_fine with fine_shape "ray" only: depth steps of each tube.
        refine_joints: coarse_fine only: after the fine stage, a small network over all joints at once
            (:class:`network.coarse_fine.JointRefiner`) moves each joint along its line of sight: the fine stage
            places every joint on its own, this step lets the body's proportions and the other joints' depths
            correct a joint whose echo is weak (a hand). Off in checkpoints written before it existed.
        depth_search: coarse_fine with fine_shape "ray" only: between the stages, shift the whole body along the
            joints' lines of sight by one depth offset that a 1D network reads off every joint's audio profile
            along its line (``ray_samples`` steps of ``fine_voxel_m``) at once (:class:`network.coarse_fine.DepthSearch`),
            and centre the tubes there: the coarse grid places the body only to its voxel, and one joint's
            profile cannot tell its own echo from the others'. Without audio (``use_audio=False``) there is nothing
            to search and the coarse joints are kept. Off in checkpoints written before it existed.
        antialias_encoding: widen each kernel envelope by a sliding maximum over the largest delay
            step between neighbouring voxels (:func:`pipeline.spatial_encoding.antialiased_envelope`),
            so a reflector between voxel centres keeps its peak. Checkpoints written before this
            field existed read it as False, which is how they were trained.
    """

    grid_shape: tuple[int, int, int] = (70, 70, 50)
    voxel_size_m: float = 0.05
    stages: int = 6
    channels: int = 32
    audio_channels: int = 16
    kernel_samples: int = 4800
    sample_rate_hz: float = 96000.0
    image_size_px: tuple[int, int] = (1920, 1080)
    keypoint_sigma_px: float = 8.0
    heatmap_stride: int = 8
    target_sigma_voxels: float = 1.5
    use_audio: bool = True
    use_vision: bool = True
    name: str = "paper"
    convs_per_stage: int = 2
    norm: str = "group"
    norm_groups: int = 8
    grid_placement: str = "camera"
    grid_center_m: tuple[float, float, float] = (0.0, 0.2, 3.5)
    arch: str = "paper"
    fine_cube: int = 16
    fine_voxel_m: float = 0.025
    antialias_encoding: bool = True
    fine_shape: str = "cube"
    ray_samples: int = 48
    refine_joints: bool = False
    depth_search: bool = False

    def __post_init__(self) -> None:
        def whole(value, what, minimum=1):
            if isinstance(value, bool) or int(value) != value or value < minimum:
                raise NetworkConfigError(f"{what}={value!r} must be a whole number >= {minimum}")
            return int(value)

        def positive(value, what):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise NetworkConfigError(f"{what}={value!r} must be a positive finite number")
            return float(value)

        try:
            shape = tuple(self.grid_shape)
        except TypeError:
            shape = ()
        if len(shape) != 3:
            raise NetworkConfigError(f"grid_shape={self.grid_shape!r} must be three voxel counts (X, Y, Z)")
        object.__setattr__(self, "grid_shape", tuple(whole(n, "grid_shape entry") for n in shape))
        try:
            size = tuple(self.image_size_px)
        except TypeError:
            size = ()
        if len(size) != 2:
            raise NetworkConfigError(f"image_size_px={self.image_size_px!r} must be (width, height) in pixels")
        object.__setattr__(self, "image_size_px", tuple(whole(n, "image_size_px entry") for n in size))
        object.__setattr__(self, "voxel_size_m", positive(self.voxel_size_m, "voxel_size_m"))
        object.__setattr__(self, "sample_rate_hz", positive(self.sample_rate_hz, "sample_rate_hz"))
        object.__setattr__(self, "keypoint_sigma_px", positive(self.keypoint_sigma_px, "keypoint_sigma_px"))
        object.__setattr__(self, "target_sigma_voxels", positive(self.target_sigma_voxels, "target_sigma_voxels"))
        for name in ("stages", "channels", "audio_channels", "kernel_samples", "heatmap_stride",
                     "convs_per_stage", "norm_groups"):
            object.__setattr__(self, name, whole(getattr(self, name), name))
        object.__setattr__(self, "fine_voxel_m", positive(self.fine_voxel_m, "fine_voxel_m"))
        object.__setattr__(self, "fine_cube", whole(self.fine_cube, "fine_cube", minimum=2))
        object.__setattr__(self, "ray_samples", whole(self.ray_samples, "ray_samples", minimum=2))
        if self.fine_shape not in FINE_SHAPES:
            raise NetworkConfigError(f"fine_shape={self.fine_shape!r} must be one of {FINE_SHAPES}")
        if self.depth_search is True and self.fine_shape != "ray":
            raise NetworkConfigError("depth_search=True needs fine_shape='ray' (it searches along the tubes' lines)")
        if self.arch not in ARCHITECTURES:
            raise NetworkConfigError(f"arch={self.arch!r} must be one of {ARCHITECTURES}")
        for name in ("use_audio", "use_vision", "antialias_encoding", "refine_joints", "depth_search"):
            if not isinstance(getattr(self, name), bool):
                raise NetworkConfigError(f"{name}={getattr(self, name)!r} must be True or False")
        if not self.use_audio and not self.use_vision:
            raise NetworkConfigError("use_audio and use_vision are both False: the network would see no input")
        if self.grid_placement not in GRID_PLACEMENTS:
            raise NetworkConfigError(f"grid_placement={self.grid_placement!r} must be one of {GRID_PLACEMENTS}")
        try:
            center = tuple(float(v) for v in self.grid_center_m)
        except (TypeError, ValueError):
            center = ()
        if len(center) != 3 or not all(math.isfinite(v) for v in center):
            raise NetworkConfigError(f"grid_center_m={self.grid_center_m!r} must be a finite camera-frame point "
                                     f"(x, y, z) in metres, e.g. (0.0, 0.2, 3.5)")
        object.__setattr__(self, "grid_center_m", center)
        if self.norm not in NORMS:
            raise NetworkConfigError(f"norm={self.norm!r} must be one of {NORMS}")
        if not isinstance(self.name, str) or not self.name:
            raise NetworkConfigError(f"name={self.name!r} must be a non-empty string")

    @property
    def extent_m(self) -> tuple[float, float, float]:
        """Side lengths of the grid box, metres."""
        return tuple(n * self.voxel_size_m for n in self.grid_shape)

    @property
    def num_voxels(self) -> int:
        return int(math.prod(self.grid_shape))

    def replace(self, **changes) -> NetworkConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists); :meth:`from_dict` reads it back."""
        out = asdict(self)
        out["grid_shape"] = list(self.grid_shape)
        out["image_size_px"] = list(self.image_size_px)
        out["grid_center_m"] = list(self.grid_center_m)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> NetworkConfig:
        """Inverse of :meth:`to_dict`. Unknown keys are an error (a typo would silently change the net)."""
        if not isinstance(data, dict):
            raise NetworkConfigError(f"from_dict needs a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise NetworkConfigError(f"unknown NetworkConfig field(s) {unknown}; known: {sorted(known)}")
        data = {**LEGACY_VALUES, **data}
        for key in ("grid_shape", "image_size_px", "grid_center_m"):
            if key in data and isinstance(data[key], list):
                data[key] = tuple(data[key])
        return cls(**data)


CONFIGS: dict[str, NetworkConfig] = {
    # The paper: 70 x 70 x 50 voxels of 5 cm, six stages. For the GPU.
    "paper": NetworkConfig(),
    # Same box at 11 cm: quick experiments, CPU evaluation.
    "small": NetworkConfig(grid_shape=(32, 32, 24), voxel_size_m=0.11, stages=4, channels=16,
                           audio_channels=8, keypoint_sigma_px=16.0, name="small"),
    # Same box at 22 cm: unit tests and smoke runs on a CPU.
    "tiny": NetworkConfig(grid_shape=(16, 16, 12), voxel_size_m=0.22, stages=2, channels=8,
                          audio_channels=4, norm_groups=4, keypoint_sigma_px=32.0, name="tiny"),
    # Coarse to fine: the same box at 10 cm to find the body, then a tube along each joint's ray: 48 steps of 2 cm
    # in depth (96 cm) by 5 x 5 across (10 cm), then the joints refined together (refine_joints: on the small scale's
    # frames it took the error from 24.6 to 20.7 cm, experiments/results/network/README.md).
    "c2f": NetworkConfig(arch="coarse_fine", grid_shape=(35, 35, 26), voxel_size_m=0.10, channels=16,
                         keypoint_sigma_px=16.0, fine_shape="ray", fine_cube=5, ray_samples=48, fine_voxel_m=0.02,
                         refine_joints=True, name="c2f"),
    # The same on a CPU budget: 14 cm coarse voxels, 12 channels, the same tubes.
    "c2f_small": NetworkConfig(arch="coarse_fine", grid_shape=(25, 25, 19), voxel_size_m=0.14, channels=12,
                               keypoint_sigma_px=20.0, fine_shape="ray", fine_cube=5, ray_samples=48,
                               fine_voxel_m=0.02, refine_joints=True, name="c2f_small"),
    # Unit tests and smoke runs.
    "c2f_tiny": NetworkConfig(arch="coarse_fine", grid_shape=(16, 16, 12), voxel_size_m=0.22, channels=4,
                              keypoint_sigma_px=32.0, fine_shape="ray", fine_cube=3, ray_samples=8,
                              fine_voxel_m=0.06, name="c2f_tiny"),
}


# The preset a new training run takes without --config: the coarse-to-fine network, which beat the paper's
# at equal training time on the same unseen rooms (README, "Network"). "paper" stays for the reproduction.
DEFAULT_CONFIG = "c2f"


def get_config(preset: str, /, **overrides) -> NetworkConfig:
    """A preset of :data:`CONFIGS` by name, optionally with some fields changed (``name`` included)."""
    if preset not in CONFIGS:
        raise NetworkConfigError(f"unknown network configuration {preset!r}; choose one of {sorted(CONFIGS)}")
    return CONFIGS[preset].replace(**overrides)  # always a copy: the presets stay as they are
