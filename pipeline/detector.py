"""Re-export: the 2D detector model lives in :mod:`simulator.detector` (generation needs it below the pipeline)."""
from simulator.detector import (  # noqa: F401
    JOINT_THICKNESS_M, NUM_JOINTS, SWAP_INDEX_PAIRS, DetectorConfig, DetectorInputError, DetectorModel,
    occluded_joints,
)

__all__ = ["DetectorConfig", "DetectorInputError", "DetectorModel", "occluded_joints"]
