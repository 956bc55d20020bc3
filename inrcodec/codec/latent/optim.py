"""How the fit moves the networks (the synthesis, and the ARM when a file carries its own):
Adam on one flat vector, or SOAP (Vyas et al. 2024: Adam in the eigenbasis of Shampoo's
preconditioners) on each layer's weight matrix, with the gradient's norm clipped first.

SOAP comes from heavyball (pinned): the library the field keeps, where a second-order
optimiser of our own would be code to maintain for one use. It is imported only when a
fit asks for it, and runs without torch.compile (on a CPU the compile costs more than
the 900 steps it would speed up). The latents always take plain Adam (fit.py).
"""
from __future__ import annotations

import contextlib
import warnings

import torch

from .config import LatentArch, LatentFit
from .layout import synthesis_tensors, tensor_shapes

# heavyball's SOAP as measured: betas (0.95, 0.95), the eigenbases refreshed every 10 steps.
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
            self.opt = _soap(self.leaves + others, fs.lr_net)
        else:
            self.leaves = [theta.detach().clone().requires_grad_(True)]
            self.masks = None if mask is None else [mask]
            self.opt = torch.optim.Adam(self.leaves + others, lr=fs.lr_net, foreach=True)
        self.base = [g["lr"] for g in self.opt.param_groups]

    def theta(self) -> torch.Tensor:
        return torch.cat([x.reshape(-1) for x in self.leaves]) if self.soap else self.leaves[0]

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def step(self, f: float) -> None:
        if self.masks is not None:
            for x, m in zip(self.leaves, self.masks):
                x.grad.mul_(m)
        if self.fs.clip:
            torch.nn.utils.clip_grad_norm_(self.leaves + self.others, self.fs.clip)
        for g, b in zip(self.opt.param_groups, self.base):
            g["lr"] = b * f
        with warnings.catch_warnings(), _one_thread():  # heavyball flags a changed lr: the
            warnings.filterwarnings("ignore", "Learning rate changed", UserWarning)
            self.opt.step()
        if self.soap and self.masks is not None:  # a rotated update reaches pruned entries
            with torch.no_grad():
                for x, k, x0 in zip(self.leaves, self.keep, self.starts):
                    torch.where(k, x, x0, out=x)

    def values(self) -> torch.Tensor:
        return self.theta().detach()


@contextlib.contextmanager
def _one_thread():
    """The optimiser's step on one thread: its tensors are tiny, and on a busy machine each
    of its many small ops waits for every thread of the pool (SOAP's step then took 4-8x
    as long with the other core busy)."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _soap(params: list[torch.Tensor], lr: float):
    import heavyball
    import heavyball.utils

    heavyball.utils.compile_mode = None
    return heavyball.SOAP(params, lr=lr, betas=SOAP_BETAS,
                          precondition_frequency=SOAP_PRECONDITION_EVERY, weight_decay=0.0,
                          compile_step=False)
