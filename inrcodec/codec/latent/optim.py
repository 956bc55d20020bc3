"""How the fit moves the networks (the synthesis, and the ARM when a file carries its own):
Adam on one flat vector, or SOAP (soap.py) on each layer's weight matrix, with the
gradient's norm clipped first. The latents always take plain Adam (fit.py).
"""
from __future__ import annotations

import torch

from .config import LatentArch, LatentFit
from .layout import synthesis_tensors, tensor_shapes
from .soap import Soap

# SOAP as measured (heavyball 3.2.1's, which soap.py follows): betas 0.95, the
# eigenbases refreshed every 10 steps.
SOAP_BETAS = (0.95, 0.95)
SOAP_PRECONDITION_EVERY = 10


class Nets:
    """The networks a fit moves. `theta()` is the synthesis as the flat vector the rest of
    the fit reads (built from the optimiser's own tensors, so gradients reach them);
    `step(f)` applies one update at `f` x the base learning rate, the mask applied and the
    gradient clipped first. SOAP's update is Adam's in a rotated basis, so it reaches
    entries whose gradient is zero: the pruned entries are put back after each step."""

    def __init__(self, arch: LatentArch, theta: torch.Tensor, mask: torch.Tensor | None,
                 others: list[torch.Tensor], fs: LatentFit):
        self.fs, self.others = fs, others
        self.soap = fs.net_optimizer == "soap"
        if self.soap:  # per tensor: each layer's weights as a matrix, its biases, the taps
            shapes = tensor_shapes(arch)
            self.slices = synthesis_tensors(arch)
            self.leaves = [theta.detach()[s].clone().reshape(sh).requires_grad_(True)
                           for s, sh in zip(self.slices, shapes)]
            self.masks = None if mask is None else [mask[s].reshape(sh)
                                                    for s, sh in zip(self.slices, shapes)]
            self.starts = [x.detach().clone() for x in self.leaves]
            self.keep = None if mask is None else [m.bool() for m in self.masks]
            self.opt = Soap(self.leaves + others, betas=SOAP_BETAS,
                            every=SOAP_PRECONDITION_EVERY)
        else:
            self.leaves = [theta.detach().clone().requires_grad_(True)]
            self.masks = None if mask is None else [mask]
            self.opt = torch.optim.Adam(self.leaves + others, lr=fs.lr_net, foreach=True)

    def theta(self) -> torch.Tensor:
        return torch.cat([x.reshape(-1) for x in self.leaves]) if self.soap else self.leaves[0]

    def zero_grad(self) -> None:
        for x in self.leaves + self.others:
            x.grad = None

    def step(self, f: float) -> None:
        if self.masks is not None:
            for x, m in zip(self.leaves, self.masks):
                x.grad.mul_(m)
        if self.fs.clip:
            torch.nn.utils.clip_grad_norm_(self.leaves + self.others, self.fs.clip)
        if self.soap:
            self.opt.step(self.fs.lr_net * f)
        else:
            for g in self.opt.param_groups:
                g["lr"] = self.fs.lr_net * f
            self.opt.step()
        if self.soap and self.masks is not None:  # a rotated update reaches pruned entries
            with torch.no_grad():
                for x, k, x0 in zip(self.leaves, self.keep, self.starts):
                    torch.where(k, x, x0, out=x)

    def values(self) -> torch.Tensor:
        return self.theta().detach()
