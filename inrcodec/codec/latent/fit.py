"""The latent mode's fit: latents, synthesis (and, without a shared model, the ARM) for
distortion + lambda x rate, with a uniform-noise proxy of rounding and a last phase of
straight-through rounding, Adam with a cosine decay.

From a shared model's level (`Start`) the fit starts the synthesis from the level, moves
only its surviving entries, and keeps the model's ARM frozen; without one it draws a
seeded random synthesis and fits an ARM of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...config import LatentArch, LatentFit
from .. import prior
from ..schedule import cosine_decay
from . import arm
from .grids import features_at, grid_shapes
from .synthesis import init_synthesis, synthesize


@dataclass
class Start:
    """What a fit starts from: a shared model's level (its synthesis init, the entries an
    image adapts, its frozen ARM). Without one, `fit` draws a seeded random init and fits
    an ARM of its own."""

    theta: torch.Tensor
    mask: torch.Tensor  # bool: entries the fit may change
    arm: "arm.ArmParams | None"

    @classmethod
    def of(cls, model, level: int) -> "Start":
        return cls(model.thetas[level].clone(), model.masks[level].clone(),
                   arm.ArmParams(*model.arm))


@dataclass
class Fitted:
    latents: list[np.ndarray]  # integer grids
    theta: np.ndarray  # float synthesis parameters
    arm: arm.ArmParams


def _bits(armp: list[torch.Tensor], grids: list[torch.Tensor]) -> torch.Tensor:
    total = 0
    for g in grids:
        mu, b = arm.predict_float(armp, arm.context_float(g))
        total = total + prior.rate_bits(g.reshape(-1), b, mu).sum()
    return total


def fit(img: np.ndarray, arch: LatentArch, fs: LatentFit,
        progress: Callable[[float, int, float], None] | None = None,
        start: Start | None = None, device: torch.device | None = None) -> Fitted:
    """img: (H, W, 3) uint8 -> latents, synthesis and autoregressive model. From `start`
    (a shared model's level) the ARM stays frozen and only the masked synthesis entries
    move. The fit runs on `device` (default the CPU); what it returns is on the CPU.

    On the CPU it runs with torch's deterministic algorithms: the backward of the
    sampled-pixel gather (features_at) accumulates into the latents, and with several
    threads the order of that sum, and so the file, changed from one run to the next.
    (On a GPU they would need cuBLAS set up before CUDA starts; there a re-encode may
    differ in its last bits, and its file still decodes the same everywhere.)"""
    dev = torch.device("cpu") if device is None else torch.device(device)
    if dev.type != "cpu":
        return _fit(img, arch, fs, progress, start, dev)
    was = (torch.are_deterministic_algorithms_enabled(),
           torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True)
    try:
        return _fit(img, arch, fs, progress, start, dev)
    finally:
        torch.use_deterministic_algorithms(was[0], warn_only=was[1])


def _fit(img: np.ndarray, arch: LatentArch, fs: LatentFit,
         progress: Callable[[float, int, float], None] | None,
         start: Start | None, dev: torch.device) -> Fitted:
    h, w = img.shape[:2]
    gen = torch.Generator().manual_seed(fs.seed)  # initialisation, on the CPU
    # the per-step noise and pixel samples: on the CPU the same generator as ever
    noise = gen if dev.type == "cpu" else torch.Generator(device=dev).manual_seed(fs.seed)
    target = torch.from_numpy(img.reshape(-1, 3).astype(np.float32) / 255.0).to(dev)
    lat = [torch.zeros(s, device=dev, requires_grad=True)
           for s in grid_shapes(h, w, arch.levels)]
    if start is None:
        theta = init_synthesis(arch, gen).to(dev).requires_grad_(True)
        mask = None
    else:
        theta = start.theta.clone().to(dev).requires_grad_(True)
        mask = start.mask.float().to(dev)
    frozen = start is not None and start.arm is not None
    if frozen:
        armp = [torch.from_numpy(a).float().to(dev) for a in start.arm.to_float()]
    else:
        armp = [p.to(dev).requires_grad_(True) for p in arm.init_float(arch.arm_hidden, gen)]
    opt = torch.optim.Adam([{"params": lat[:1], "lr": fs.lr_latent},
                            {"params": lat[1:], "lr": fs.lr_latent * fs.coarse_lr_factor},
                            {"params": [theta] + ([] if frozen else armp), "lr": fs.lr_net}])
    base = [g["lr"] for g in opt.param_groups]
    n_ste = int(round(fs.ste_fraction * fs.steps))
    n_px = max(1, int(fs.pixel_fraction * h * w))
    for t in range(fs.steps):
        f = cosine_decay(t, fs.steps, 0.02)
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * f
        if t >= fs.steps - n_ste:
            q = [v + (torch.round(v) - v).detach() for v in lat]
        else:
            q = [v + torch.rand(v.shape, generator=noise, device=dev) - 0.5 for v in lat]
        idx = torch.randint(0, h * w, (n_px,), generator=noise, device=dev) \
            if n_px < h * w else None
        x = features_at(arch, q, h, w, idx)
        y = target if idx is None else target[idx]
        mse = (synthesize(arch, theta, x) - y).square().mean()
        loss = mse + fs.lam * _bits(armp, q) / (h * w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if mask is not None:
            theta.grad.mul_(mask)
        opt.step()
        if progress is not None:
            progress(t + 1, fs.steps, float(mse.detach()))
    lim = prior.MAX_QMAX // 2
    return Fitted([np.clip(np.round(v.detach().cpu().numpy()), -lim, lim).astype(np.int64)
                   for v in lat],
                  theta.detach().cpu().numpy().astype(np.float32),
                  start.arm if frozen else
                  arm.ArmParams.from_float(*[p.detach().cpu().numpy() for p in armp]))


