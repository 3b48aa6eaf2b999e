"""The one factory of lifting networks, and what training and inference need from either kind.

``NetworkConfig.arch`` names the architecture: "paper" (:class:`network.model.PoseKernelLifter`, heatmaps
per stage, trained with the multi-stage L2 heatmap loss of eq. 10 and decoded by sub-voxel peak fitting)
or "coarse_fine" (:class:`network.coarse_fine.CoarseToFineLifter`, joints in metres from soft-argmax
volumes, trained with an L1 loss in metres on its coarse and fine joints, and refined ones where it refines). :func:`training_loss` and
:func:`predicted_joints` hide that difference from the training loop and from :func:`network.inference.predict`.
"""
from __future__ import annotations

import torch
from torch import nn

from network.coarse_fine import CoarseToFineLifter, LifterOutput, joint_l1_loss
from network.config import NetworkConfig
from network.heatmaps import gaussian_targets, heatmap_loss, soft_argmax_joints
from network.model import PoseKernelLifter

__all__ = ["build_lifter", "on_device", "predicted_joints", "training_loss"]

_ARCHITECTURES = {"paper": PoseKernelLifter, "coarse_fine": CoarseToFineLifter}


def build_lifter(config: NetworkConfig) -> nn.Module:
    """A freshly initialised network of ``config.arch``."""
    return _ARCHITECTURES[config.arch](config)


def on_device(model: nn.Module, device) -> nn.Module:
    """``model`` moved to ``device``; on a CPU its weights also in channels-last order (N, D, H, W, C), in which
    oneDNN's 3D convolutions run faster (``experiments.bench_network``): the convolutions' outputs follow their
    weights' order, so the whole network runs channels-last. The values are the same up to the order of roundings."""
    model = model.to(device)
    if torch.device(device).type == "cpu":
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def training_loss(config: NetworkConfig, output, batch: dict) -> torch.Tensor:
    """The architecture's loss for ``output`` = model(batch) against ``batch["joints3d"]`` (NaN: unknown)."""
    if isinstance(output, LifterOutput):
        loss = joint_l1_loss(output.coarse_joints, batch["joints3d"]) + joint_l1_loss(output.joints, batch["joints3d"])
        if output.fine_joints is not None:      # refined: the fine stage keeps its own loss
            loss = loss + joint_l1_loss(output.fine_joints, batch["joints3d"])
        if output.searched_joints is not None:  # the depth search learns from where it moves the coarse joints
            loss = loss + joint_l1_loss(output.searched_joints, batch["joints3d"])
        return loss
    targets, mask = gaussian_targets(batch["joints3d"], batch["grid_to_camera"], config.grid_shape,
                                     config.voxel_size_m, config.target_sigma_voxels, return_mask=True)
    return heatmap_loss([h.float() for h in output], targets, mask)


def predicted_joints(config: NetworkConfig, output, batch: dict) -> torch.Tensor:
    """(B, 15, 3) joints in the camera frame, metres, from ``output`` = model(batch)."""
    if isinstance(output, LifterOutput):
        return output.joints.float()
    return soft_argmax_joints(output[-1].float(), batch["grid_to_camera"], config.voxel_size_m)
