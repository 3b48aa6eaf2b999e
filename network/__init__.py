"""network: the 3D CNNs (the paper's multi-stage network and a coarse-to-fine one) that lift one image's 2D keypoints plus the speakers' pose kernels to
metric 3D pose (paper section 3.3), and the commands that train and evaluate it.

    python -m network.train --pretrain synth --finetune real
    python -m network.evaluate --checkpoint runs/paper/finetune/best.pt --data PoseKernel/ --split test

The package's modules, one job each, are listed in ``__all__`` (import them as ``network.<module>``); each
module's docstring says what it holds and its own ``__all__`` its public names. The package imports
nothing itself, so ``import network.config`` stays light.
"""

__all__ = [
    "baselines",      # vision-only baselines (2D keypoints lifted by an assumed stature)
    "bootstrap",      # room-bootstrap confidence intervals
    "coarse_fine",    # CoarseToFineLifter: a coarse grid, then a fine cube per joint, soft-argmax in metres
    "checkpoints",    # checkpoint format, weights-only save / load, configuration checks
    "commands",       # what both commands share: usage errors, claiming --out, worker errors
    "config",         # NetworkConfig and its presets
    "data",           # stored frames -> batches; the batch contract (MODEL_KEYS, LABEL_KEYS, ...)
    "distributed",    # one process or torchrun: DDP environment and data loaders
    "evaluate",       # python -m network.evaluate: metrics and tables
    "heatmaps",       # Gaussian 3D targets, the loss, soft-argmax decoding
    "lifters",        # the one factory of networks (NetworkConfig.arch), their loss and decoded joints
    "inference",      # device, autocast, predict, the evaluation methods' runner
    "model",          # PoseKernelLifter, the paper's network
    "train",          # python -m network.train: the training loop
    "train_config",   # TrainConfig: the training options, the CLI built from them
    "train_data",     # which frames a training run reads (splits, environments)
]
