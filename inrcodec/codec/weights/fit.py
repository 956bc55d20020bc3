"""Test-time fitting, i.e. the encoder's optimisation: full-batch Adam from the shared init.

All tiles (of one image or many) are fitted together as a batch of independent networks.
Each tile's loss is its own mean squared error over its valid pixels, and the batch loss is
their sum, so every tile gets exactly the gradient it would get alone; Adam is elementwise,
so fitting in chunks (to bound memory) gives the same result as one big batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ...model import accel
from ...model.inr import INR
from .config import FitConfig


@dataclass
class AdamState:
    """Adam's moments per tile (rows) and its step count: a fit can continue from it, and
    an image's rows can be cut out of a batch's state, since every tile is independent."""

    step: int
    exp_avg: torch.Tensor  # (n, P)
    exp_avg_sq: torch.Tensor  # (n, P)

    def rows(self, a: int, b: int) -> "AdamState":
        return AdamState(self.step, self.exp_avg[a:b], self.exp_avg_sq[a:b])

    @staticmethod
    def cat(states: list["AdamState"]) -> "AdamState":
        if len({s.step for s in states}) != 1:
            raise ValueError("Adam states of different step counts cannot be joined")
        return AdamState(states[0].step, torch.cat([s.exp_avg for s in states]),
                         torch.cat([s.exp_avg_sq for s in states]))


def fit(net: INR, theta0: torch.Tensor, coords: torch.Tensor, targets: torch.Tensor,
        weights: torch.Tensor, cfg: FitConfig = FitConfig(), *,
        device: torch.device | str = "cpu",
        progress: Callable[[int, int, float], None] | None = None,
        on_step: Callable[[int, int, torch.Tensor], None] | None = None,
        start: torch.Tensor | None = None,
        transform: Callable[[torch.Tensor, slice], torch.Tensor] | None = None,
        adam: AdamState | None = None, adam_out: list | None = None) -> torch.Tensor:
    """Fit one network per tile. targets (n, N, C), weights (n, N), coords (N, 2).

    Returns the fitted flat parameters (n, P) on the CPU; `adam_out`, a list, receives
    Adam's state after the last step. `progress(done, total, loss)` is called after every
    step of every chunk; `on_step(chunk_start, step, theta)` lets a benchmark trace quality
    along the way. `start` (n, P) continues from per-tile values instead of theta0;
    `transform(theta, rows)` maps the parameters of tiles `rows` (a slice of 0..n) before
    every forward pass (the encoder's quantiser-aware steps: a straight-through
    quantiser). `adam` continues from an earlier fit's optimiser state
    (same tiles), at this call's lr.
    """
    n = targets.shape[0]
    n_pix = targets.shape[1]
    per_chunk = max(1, cfg.max_batch_pixels // max(1, n_pix))
    per_pass = max(1, cfg.chunk_pixels // max(1, n_pix))
    starts = list(range(0, n, per_chunk))
    total = len(starts) * cfg.steps
    done = 0
    coords = coords.to(device)
    out, avg, avg_sq = [], [], []
    step_count = 0 if adam is None else adam.step
    torch.manual_seed(cfg.seed)
    losses = accel.loss_function(net, torch.device(device))  # compiled if asked
    for s in starts:
        tgt = targets[s:s + per_chunk].to(device)
        wts = weights[s:s + per_chunk].to(device)
        if start is None:
            theta = theta0.to(device).reshape(1, -1).repeat(tgt.shape[0], 1)
        else:
            theta = start[s:s + per_chunk].to(device).clone()
        theta.requires_grad_(True)
        opt = torch.optim.Adam([theta], lr=cfg.lr)
        if adam is not None and adam.step > 0:
            sd = opt.state_dict()
            sd["state"] = {0: {"step": torch.tensor(float(adam.step)),
                               "exp_avg": adam.exp_avg[s:s + per_chunk].to(device).clone(),
                               "exp_avg_sq": adam.exp_avg_sq[s:s + per_chunk].to(device).clone()}}
            opt.load_state_dict(sd)
            for group in opt.param_groups:
                group["lr"] = cfg.lr
        for step in range(cfg.steps):
            opt.zero_grad(set_to_none=True)
            loss = torch.zeros((), device=device)
            # Backward per sub-batch of ~chunk_pixels: the same gradient, but activations
            # stay small enough to be reused from the allocator (2x faster on CPU).
            for a in range(0, tgt.shape[0], per_pass):
                th = theta[a:a + per_pass]
                rows = slice(s + a, s + a + th.shape[0])
                with accel.autocast(device):
                    part = losses(th if transform is None else transform(th, rows), coords,
                                  tgt[a:a + per_pass], wts[a:a + per_pass]).sum()
                part.backward()
                loss += part.detach()
            opt.step()
            done += 1
            if progress is not None:
                progress(done, total, float(loss) / tgt.shape[0])
            if on_step is not None:
                on_step(s, step + 1, theta.detach())
        st = opt.state.get(theta)
        if st:
            avg.append(st["exp_avg"].detach().cpu())
            avg_sq.append(st["exp_avg_sq"].detach().cpu())
        else:  # no step taken: the moments stay as they were
            avg.append(torch.zeros_like(theta.detach().cpu()) if adam is None
                       else adam.exp_avg[s:s + per_chunk])
            avg_sq.append(torch.zeros_like(theta.detach().cpu()) if adam is None
                          else adam.exp_avg_sq[s:s + per_chunk])
        out.append(theta.detach().cpu())
    if adam_out is not None:
        adam_out.append(AdamState(step_count + cfg.steps, torch.cat(avg), torch.cat(avg_sq)))
    return torch.cat(out)
