"""Test-time fitting, i.e. the encoder's optimisation: full-batch Adam from the shared init.

All tiles (of one image or many) are fitted together as a batch of independent networks.
Each tile's loss is its own mean squared error over its valid pixels, and the batch loss is
their sum, so every tile gets exactly the gradient it would get alone; Adam is elementwise,
so fitting in chunks (to bound memory) gives the same result as one big batch.
"""
from __future__ import annotations

from typing import Callable

import torch

from . import accel
from .config import FitConfig
from .inr import INR


def tile_losses(net: INR, theta: torch.Tensor, coords: torch.Tensor, targets: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
    """Per-tile MSE over valid pixels: (n,)."""
    err = (net(theta, coords) - targets).square().sum(-1)
    n_valid = weights.sum(1).clamp_min(1.0) * targets.shape[-1]
    return (err * weights).sum(1) / n_valid


def fit(net: INR, theta0: torch.Tensor, coords: torch.Tensor, targets: torch.Tensor,
        weights: torch.Tensor, cfg: FitConfig = FitConfig(), *,
        device: torch.device | str = "cpu",
        progress: Callable[[int, int, float], None] | None = None,
        on_step: Callable[[int, int, torch.Tensor], None] | None = None,
        start: torch.Tensor | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        adam: list | None = None) -> torch.Tensor:
    """Fit one network per tile. targets (n, N, C), weights (n, N), coords (N, 2).

    Returns the fitted flat parameters (n, P) on the CPU. `progress(done, total, loss)` is
    called after every step of every chunk; `on_step(chunk_start, step, theta)` lets a
    benchmark trace quality along the way. `start` (n, P) continues from per-tile values
    instead of theta0; `transform` maps the parameters before every forward pass (the
    encoder's quantiser-aware steps: a straight-through quantiser). `adam`, a list, receives
    each chunk's optimiser state; if it already holds states (from an earlier call on the
    same tiles), each chunk continues from its own, at this call's lr.
    """
    n = targets.shape[0]
    n_pix = targets.shape[1]
    per_chunk = max(1, cfg.max_batch_pixels // max(1, n_pix))
    per_pass = max(1, cfg.chunk_pixels // max(1, n_pix))
    starts = list(range(0, n, per_chunk))
    total = len(starts) * cfg.steps
    done = 0
    coords = coords.to(device)
    out = []
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
        k = len(out)
        if adam is not None and k < len(adam):
            opt.load_state_dict(adam[k])
            for group in opt.param_groups:
                group["lr"] = cfg.lr
        for step in range(cfg.steps):
            opt.zero_grad(set_to_none=True)
            loss = torch.zeros((), device=device)
            # Backward per sub-batch of ~chunk_pixels: the same gradient, but activations
            # stay small enough to be reused from the allocator (2x faster on CPU).
            for a in range(0, tgt.shape[0], per_pass):
                th = theta[a:a + per_pass]
                with accel.autocast(device):
                    part = losses(th if transform is None else transform(th), coords,
                                  tgt[a:a + per_pass], wts[a:a + per_pass]).sum()
                part.backward()
                loss += part.detach()
            opt.step()
            done += 1
            if progress is not None:
                progress(done, total, float(loss) / tgt.shape[0])
            if on_step is not None:
                on_step(s, step + 1, theta.detach())
        if adam is not None:
            state = opt.state_dict()
            if k < len(adam):
                adam[k] = state
            else:
                adam.append(state)
        out.append(theta.detach().cpu())
    return torch.cat(out)
