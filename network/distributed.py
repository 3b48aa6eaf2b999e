"""Training on one process or many: torchrun's environment and the data loaders that follow it.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains on its ``LOCAL_RANK`` GPU with a
``DistributedSampler``; rank 0 writes logs and checkpoints. Public names: ``__all__``.
"""
from __future__ import annotations

import os

import torch

from network.data import collate
from network.inference import resolve_device

__all__ = ["Dist", "loader"]


class Dist:
    """torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK) or a single process."""

    def __init__(self, device_name: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled:
            import torch.distributed as dist

            if torch.cuda.is_available() and device_name != "cpu":
                torch.cuda.set_device(self.local_rank)
                self.device = torch.device("cuda", self.local_rank)
                backend = "nccl"
            else:
                self.device, backend = torch.device("cpu"), "gloo"
            if not dist.is_initialized():
                dist.init_process_group(backend=backend)
        else:
            self.device = resolve_device(device_name)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def loader(dataset, batch_size: int, shuffle: bool, workers: int, dist: Dist, seed: int, drop_last=False,
           sampler=None):
    """A DataLoader of ``dataset``: shuffled by ``sampler`` when given (one process), by a DistributedSampler
    under DDP, else by the loader's own seeded shuffle."""
    if dist.enabled:
        sampler = torch.utils.data.distributed.DistributedSampler(dataset, num_replicas=dist.world, rank=dist.rank,
                                                                  shuffle=shuffle, seed=seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=workers, collate_fn=collate, drop_last=drop_last, generator=generator,
        pin_memory=dist.device.type == "cuda", persistent_workers=False)
