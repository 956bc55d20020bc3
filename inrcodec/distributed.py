"""Data-parallel runs on torch.distributed: meta-training and dataset encoding.

Launch any `inrcodec` command that supports it under `torchrun`, e.g.

    torchrun --nproc_per_node 2 -m inrcodec.cli train endless-sky model.safetensors
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_endpoint HOST:29500 \\
        -m inrcodec.cli encode-dir photos/ encoded/

`torchrun` sets RANK / WORLD_SIZE / LOCAL_RANK (and the rendezvous address); `from_env`
joins the process group (NCCL for GPU tensors when there are GPUs, gloo otherwise) and
gives each rank its own GPU (cuda:LOCAL_RANK) when there are any.

Meta-training: every rank draws the same global meta-batch (the sampling stream is
seeded per step), adapts its share of the tasks, and the gradients are summed with one
all-reduce, weighted so that the result is the single-process gradient of the mean over
the whole meta-batch. This is what DistributedDataParallel does for a model with one
parameter tensor (one bucket, one all-reduce per step). The DDP wrapper itself is not
used: the meta-learner is a functional network on one flat tensor, not an nn.Module, and
its inner loop takes gradients with torch.autograd.grad, which DDP's documentation says it
does not support (its hooks reduce only gradients accumulated into .grad; see
pytorch/pytorch#47562). All ranks apply the same
Adam update to the same values, so they stay identical; only rank 0 validates and writes
the model, checkpoints and log (files go to a filesystem that every rank can read, for
`--resume`).

Dataset encoding: the images still to encode are dealt out across ranks; each rank writes
its own .inr files and a partial manifest, and rank 0 merges them into one manifest.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist


@dataclass
class DataParallel:
    rank: int
    world_size: int
    local_rank: int = 0

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            tdist.barrier()

    def device(self, requested: str | torch.device | None = "auto") -> torch.device:
        """This rank's device: its own GPU when GPUs are in use, else the CPU."""
        from .model.accel import resolve_device
        dev = resolve_device(requested)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", self.local_rank % torch.cuda.device_count())
        return dev

    # -- meta-training ----------------------------------------------------------------
    def shard(self, items):
        """This rank's share of a sequence: every world_size-th item from its rank."""
        return items[self.rank::self.world_size]

    def all_reduce_sum(self, buf: torch.Tensor) -> torch.Tensor:
        """buf summed over ranks, in place."""
        if self.world_size > 1:
            tdist.all_reduce(buf, op=tdist.ReduceOp.SUM)
        return buf

    def writer_value(self, fn) -> float:
        """fn() computed on the writer rank alone; every rank returns its value."""
        v = torch.tensor([fn() if self.is_writer else 0.0], dtype=torch.float64,
                         device=self.device())
        if self.world_size > 1:
            tdist.broadcast(v, src=0)
        return float(v.item())

    def sum_counts(self, counts: list[int]) -> list[int]:
        """Element-wise sum over ranks (run-wide totals for a report)."""
        t = torch.tensor(counts, dtype=torch.float64, device=self.device())
        if self.world_size > 1:
            tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
        return [int(v) for v in t.tolist()]


def from_env(backend: str | None = None, timeout_s: float = 3600.0) -> DataParallel | None:
    """Join the process group that torchrun describes; None when not launched that way.

    The timeout bounds how long ranks wait for each other at a collective (rank 0 alone
    validates a level between training phases).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not tdist.is_initialized():
        if backend is None:
            # With GPUs: NCCL for CUDA tensors and gloo for CPU ones (a run asked to stay on
            # the CPU, small bookkeeping tensors), chosen per tensor by torch.distributed.
            backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        if "nccl" in backend:  # NCCL collectives run on the rank's current GPU
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        tdist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DataParallel(rank=rank, world_size=world, local_rank=local_rank)


def shutdown() -> None:
    if tdist.is_initialized():
        tdist.destroy_process_group()
