"""The weight mode's rate-distortion fit: every tile's network fitted to D + lambda R.

For one ladder level (and one choice of what adapts: all live parameters, or the biases
only) the tiles of an image are fitted together from the level's shared initialisation:

    loss = (sum over tiles of the squared error, images in [0, 1]
            + lambda x the estimated bits of the quantised deltas) / pixels

The deltas of tensor g are stored as integers q = round((theta - theta0) / s_g). The
step sizes s_g are learned in the same objective, and so is the scale b_g of the discrete
Laplace prior the coder will use (codec/prior.py). The rate is the Laplace probability of
the integer interval (prior.rate_bits). The first steps see additive uniform noise in
place of rounding; the last `ste_fraction` of them round straight-through, so the decoded
image is what the last steps optimised. Adam, one learning rate per kind of variable; the
weights' decays on a cosine.

The result per tile (squared error and ideal bits of its rounded deltas) is what the
encoder compares across levels to give each tile its own (codec/weights/rdencode.py; the file's
sections: codec/weights/tilecode.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...model.inr import INR
from .. import prior
from ..schedule import cosine_decay
from .tilecode import dequantize, stored


@dataclass(frozen=True)
class RDFitConfig:
    steps: int = 200
    lam: float = 1e-3  # loss = MSE (images in [0, 1]) + lam x bits per pixel
    lr: float = 2.5e-3  # the weights, at the start
    # The weights' lr decays (cosine) to this fraction of `lr` by the last step: at 600
    # steps J = D + lambda R fell 16% (mean of 12 fits) against a constant 2e-3, more than
    # 3000 constant steps gain (docs/studies/weight-mode-log.md, "The fit's schedule").
    lr_final: float = 0.05
    lr_step: float = 0.03  # log step sizes
    lr_scale: float = 0.05  # log prior scales
    step_init: float = 0.05  # initial step size, times the tensor's RMS in theta0
    ste_fraction: float = 0.2
    # Pixels in the distortion term of each step (a fresh random subset, the same for
    # every tile of a pass; the squared error is scaled up to the whole tile).
    pixel_fraction: float = 0.125
    seed: int = 0
    chunk_pixels: int = 1 << 15  # pixels per forward/backward pass inside one step


@dataclass
class RDFitResult:
    q: np.ndarray  # (n, A) int64, the stored integers (adapted entries, canonical order)
    steps: np.ndarray  # (G,) float32 step size per stored tensor
    tensors: list[np.ndarray]  # per stored tensor: its columns in q
    sse: np.ndarray  # (n,) squared error of each tile, images in [0, 1], valid pixels
    bits: np.ndarray  # (n,) ideal bits of each tile's integers under per-tensor priors


def fit(net: INR, theta0: torch.Tensor, coords: torch.Tensor, targets: torch.Tensor,
        weights: torch.Tensor, cfg: RDFitConfig, *, biases_only: bool = False,
        progress: Callable[[int, int, float], None] | None = None,
        device: torch.device | None = None) -> RDFitResult:
    """Fit every tile (targets (n, N, 3) in [-1, 1], weights (n, N)) to D + lambda R.
    The fit runs on `device` (default the CPU); the integers it returns, their squared
    error and bits are computed on the CPU, as the decoder will."""
    torch.manual_seed(cfg.seed)
    dev = torch.device("cpu") if device is None else torch.device(device)
    cpu = (coords, targets, weights)
    coords, targets, weights = (t.to(dev) for t in cpu)
    n = targets.shape[0]
    pos, tensors = stored(net, biases_only)
    pos_t = torch.from_numpy(pos).to(dev)
    t0 = theta0.detach().float().reshape(-1).to(dev)
    gid, init = _tensor_ids(tensors, pos_t, t0, cfg.step_init)
    delta = torch.zeros(n, len(pos), device=dev, requires_grad=True)
    log_s = torch.tensor(init, device=dev, requires_grad=True)
    log_b = torch.zeros(len(tensors), device=dev, requires_grad=True)
    opt = torch.optim.Adam([{"params": [delta], "lr": cfg.lr},
                            {"params": [log_s], "lr": cfg.lr_step},
                            {"params": [log_b], "lr": cfg.lr_scale}])
    n_pix = float(weights.sum())
    n_sub = max(1, int(round(cfg.pixel_fraction * targets.shape[1])))
    per_pass = max(1, cfg.chunk_pixels // n_sub)
    n_ste = int(round(cfg.steps * cfg.ste_fraction))
    base = t0.reshape(1, -1)

    def values(d: torch.Tensor, s: torch.Tensor, hard: bool):
        """Parameters and integers (in steps) as the forward pass sees them: rounded
        straight-through, or with uniform noise in place of rounding."""
        u = d / s
        qv = u + (torch.round(u) - u).detach() if hard else u + torch.rand_like(u) - 0.5
        th = base.expand(d.shape[0], -1).index_copy(1, pos_t, base[:, pos_t] + s * qv)
        return th, qv

    for step in range(cfg.steps):
        hard = step >= cfg.steps - n_ste
        opt.param_groups[0]["lr"] = cfg.lr * cosine_decay(step, cfg.steps - 1, cfg.lr_final)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for a in range(0, n, per_pass):
            rows = slice(a, a + per_pass)
            s = log_s.exp()[gid]
            th, qv = values(delta[rows], s, hard)
            if n_sub < targets.shape[1]:
                idx = torch.randperm(targets.shape[1], device=dev)[:n_sub]
                err = (net(th, coords[idx]) - targets[rows][:, idx]).square().sum(-1)
                sse = (err * weights[rows][:, idx]).sum() / (4.0 * cfg.pixel_fraction)
            else:
                err = (net(th, coords) - targets[rows]).square().sum(-1)  # [-1, 1] units
                sse = (err * weights[rows]).sum() / 4.0
            bits = prior.rate_bits(qv, log_b.exp()[gid]).sum()
            part = (sse + cfg.lam * bits) / n_pix
            part.backward()
            total += float(part.detach())
        opt.step()
        if progress is not None:
            progress(step + 1, cfg.steps, total)

    with torch.no_grad():
        steps = log_s.exp().float().cpu().numpy().astype(np.float32)
        q = torch.round(delta / log_s.exp()[gid]).clamp(-prior.MAX_QMAX, prior.MAX_QMAX)
        qn = q.to(torch.int64).cpu().numpy()
    return _result(net, t0.cpu().numpy(), pos, tensors, steps, qn, *cpu, cfg.chunk_pixels)


def _tensor_ids(tensors: list[np.ndarray], pos_t: torch.Tensor, t0: torch.Tensor,
                step_init: float) -> tuple[torch.Tensor, list[float]]:
    """Each stored value's tensor, and each tensor's first log step size: step_init x the
    RMS of its initial values."""
    gid = torch.zeros(len(pos_t), dtype=torch.long, device=t0.device)
    init = []
    for g, cols in enumerate(tensors):
        c = torch.from_numpy(cols).to(t0.device)
        gid[c] = g
        rms = float(t0[pos_t[c]].square().mean().sqrt()) or 1.0
        init.append(math.log(step_init * rms))
    return gid, init


def _result(net: INR, t0: np.ndarray, pos: np.ndarray, tensors: list[np.ndarray],
            steps: np.ndarray, qn: np.ndarray, coords: torch.Tensor, targets: torch.Tensor,
            weights: torch.Tensor, chunk_pixels: int) -> RDFitResult:
    """The fitted integers with the squared error and the bits the decoder will see, on
    the CPU."""
    n = qn.shape[0]
    with torch.no_grad():
        th = dequantize(t0, pos, tensors, steps, qn)  # what the decoder computes
        sse = np.zeros(n)
        per_eval = max(1, chunk_pixels // targets.shape[1])
        for a in range(0, n, per_eval):
            rows = slice(a, a + per_eval)
            out = ((net(th[rows], coords) + 1.0) * 127.5).round().clamp(0, 255)
            ref = (targets[rows] + 1.0) * 127.5
            err = ((out - ref) / 255.0).square().sum(-1)
            sse[a:a + per_eval] = (err * weights[rows]).sum(1).double().numpy()
    bits = np.zeros(n)
    for cols in tensors:
        qt = qn[:, cols]
        m, qmax = prior.fit_m(qt)
        bits += -(np.log2(prior.table(m, qmax)[qt + qmax]) - prior.PRECISION).sum(1)
    return RDFitResult(q=qn, steps=steps, tensors=tensors, sse=sse, bits=bits)
