"""The latent mode's fit: latents, synthesis (and, without a shared model, the ARM) for
distortion + lambda x rate, with a proxy of rounding (C3's noisy softround, or uniform
noise), then, where LatentFit.ste_fraction asks for one (0 by default since 0.10.0; an
ablation), a last phase of straight-through rounding. The latents move by Adam, the
networks by SOAP with their gradient clipped (optim.py; LatentFit.net_optimizer), all on
one cosine decay.

From a shared model's level (`Start`) the fit starts the synthesis from the level, moves
only its surviving entries, and keeps the model's ARM frozen; without one it draws a
seeded random synthesis and fits an ARM of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numba
import numpy as np
import torch

from .. import prior
from ..schedule import cosine_decay
from . import arm, rate, synthesis, upsampling
from .config import LatentArch, LatentFit
from .grids import coordinates, features_lattice, lattice
from .layout import grid_shapes
from .optim import Nets
from .softround import noisy_softround, softround
from .synthesis import init_synthesis


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
        return cls(torch.from_numpy(model.thetas[level].copy()),
                   torch.from_numpy(model.masks[level].copy()), arm.ArmParams(*model.arm))


@dataclass
class Fitted:
    latents: list[np.ndarray]  # integer grids
    theta: np.ndarray  # float synthesis parameters
    arm: arm.ArmParams
    values: list[np.ndarray]  # the latents before rounding (float32): ratecontrol.trim's


LIM = prior.MAX_QMAX // 2  # the largest latent magnitude a file can code

_M1, _M2, _GOLD = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB),
                   np.uint64(0x9E3779B97F4A7C15))


@numba.njit(cache=True, nogil=True)
def _uniform(key, out):
    """out[i] = U[-1/2, 1/2) from splitmix64(key + i x golden): counter-based, so each step's noise
    is a function of (seed, step) alone, and it costs a fraction of torch.rand's."""
    for i in range(out.shape[0]):
        z = key + np.uint64(i) * _GOLD
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
        out[i] = np.float32(z >> np.uint64(40)) * np.float32(2.0 ** -24) - np.float32(0.5)


def uniform_noise(n: int, seed: int, step: int) -> torch.Tensor:
    """n values of U[-1/2, 1/2) for step `step` of a fit seeded `seed` (on the CPU)."""
    out = torch.empty(n)
    _uniform(np.uint64(((seed & 0xFFFFFFFF) << 32 | step) * 0x9E3779B97F4A7C15
                       & 0xFFFFFFFFFFFFFFFF), out.numpy())
    return out


def step_noise(n: int, fs: LatentFit, t: int, dev: torch.device,
               gen: "torch.Generator | None") -> torch.Tensor:
    """Step t's n values of U[-1/2, 1/2): uniform_noise on the CPU, the device's `gen`
    elsewhere."""
    if dev.type == "cpu":
        return uniform_noise(n, fs.seed, t)
    return torch.rand(n, generator=gen, device=dev).sub_(0.5)


def phases(stride: int) -> list[tuple[int, int]]:
    """The order the lattice's phases cycle in: the diagonal ones first, so any two
    consecutive steps see different rows and columns."""
    return sorted(((y, x) for y in range(stride) for x in range(stride)),
                  key=lambda p: ((p[0] - p[1]) % stride, p[0]))


def _lerp(ab: tuple[float, float], a: float) -> float:
    return ab[0] + (ab[1] - ab[0]) * a


def quantised(lat: list[torch.Tensor], fs: LatentFit, t: int,
              u: "list[torch.Tensor] | None") -> list[torch.Tensor]:
    """The latents as step t of a fit sees them: with its noise `u` (flat U[-1/2, 1/2) per
    grid), the rounding proxy (fs.quantizer); in the last steps (u None), rounded, with the
    gradient of identity ("noise") or of softround at the last temperature."""
    soft = fs.quantizer == "softround"
    if u is None:
        s = [softround(v, fs.temperature[1]) for v in lat] if soft else lat
        return [a + (torch.round(v) - a).detach() for v, a in zip(lat, s)]
    if not soft:
        return [v + n.view(v.shape) for v, n in zip(lat, u)]
    a = t / max(1, fs.steps - int(round(fs.ste_fraction * fs.steps)) - 1)
    tt, ns = _lerp(fs.temperature, a), _lerp(fs.noise_scale, a)
    return [noisy_softround(v, n.view(v.shape), tt, ns) for v, n in zip(lat, u)]


# steer(step, latents) -> the lambda for that step onwards (ratecontrol.Steer)
Steer = Callable[[int, list], float]


def fit(img: np.ndarray, arch: LatentArch, fs: LatentFit,
        progress: Callable[[float, int, float], None] | None = None,
        start: Start | None = None, device: torch.device | None = None,
        steer: Steer | None = None, init: Fitted | None = None,
        clock: tuple[int, int] | None = None, shrink: int = 0) -> Fitted:
    """img: (H, W, 3) uint8 -> latents, synthesis and autoregressive model. From `start`
    (a shared model's level) the ARM stays frozen and only the masked synthesis entries
    move. The fit runs on `device` (default the CPU); what it returns is on the CPU.

    Each step: the latents through the rounding proxy (`quantised`; in a straight-through
    phase, if any, rounded straight through); the distortion on one lattice of pixels
    (grids.features_lattice); the rate of every latent under the ARM's float twin (rate.py,
    which computes its gradient in the same pass); Adam for the latents, `optim.Nets` for
    the networks. On the CPU the same seed gives the
    same file on every run, on 1 thread as on 2, the run that compiles the kernels too
    (lanes.py). `steer` may change lambda before any step, to land on a rate. `init`: a
    fit to go on from (its latents before rounding and its synthesis), not zeros and the
    start's synthesis. `clock`: (steps before this fit's first, steps in all) of a schedule
    (learning rates, rounding temperature) this fit is a part of; by default its own.
    `shrink` s > 0: the fit of the image at grid s's size (`_targets`), on grids s.. (the
    finer ones stay at zero), a step costing about 4^-s of a whole one (coarse_first)."""
    dev = torch.device("cpu") if device is None else torch.device(device)
    h, w = img.shape[:2]
    if shrink and (arch.upsample != "learned" or not 0 < shrink < arch.levels):
        raise ValueError(f"a fit at grid {shrink}'s size needs the learned upsampling and "
                         f"more than {shrink} grids")
    gen = torch.Generator().manual_seed(fs.seed)  # initialisation, on the CPU
    # the per-step noise: uniform_noise on the CPU, the device's generator elsewhere
    noise = None if dev.type == "cpu" else torch.Generator(device=dev).manual_seed(fs.seed)
    shapes = grid_shapes(h, w, arch.levels)
    at = shapes[shrink]
    order, targets = _targets(img, at, shrink, fs.stride, dev)
    canvas = rate.Canvas(shapes[shrink:], dev, fs.seed)
    lat = [torch.zeros(s, device=dev, requires_grad=True) for s in shapes[shrink:]] \
        if init is None else [torch.from_numpy(v.astype(np.float32)).to(dev)
                              .requires_grad_(True) for v in init.values[shrink:]]
    nets, armp = networks(arch, fs, start, dev, gen, None if init is None else init.theta)
    fine = lat[:1] if not shrink else []  # grid 0, if it moves: the others move faster
    opt = torch.optim.Adam(([{"params": fine, "lr": fs.lr_latent}] if fine else []) +
                           [{"params": lat[len(fine):],
                             "lr": fs.lr_latent * fs.coarse_lr_factor}], foreach=True)
    base = [g["lr"] for g in opt.param_groups]
    n_ste = int(round(fs.ste_fraction * fs.steps))
    sizes = [h_ * w_ for h_, w_ in shapes[shrink:]]
    lam = fs.lam
    off, total = clock or (0, fs.steps)
    sched = replace(fs, steps=total)
    with rate.threads(torch.get_num_threads()):
        for t in range(fs.steps):
            f = cosine_decay(off + t, total, 0.02)
            for g, b in zip(opt.param_groups, base):
                g["lr"] = b * f
            u = None
            if t < fs.steps - n_ste:
                u = step_noise(sum(sizes), fs, t, dev, noise).split(sizes)
            q = quantised(lat, sched, off + t, u)
            if steer is not None:
                lam = steer(t, lat)
            k = t % len(order)
            theta = nets.theta()
            x = _features(arch, q, shrink, at, fs.stride, order[k], synthesis.taps(arch, theta))
            mse = synthesis.mse(arch, theta, x, targets[k])
            loss = mse + lam * rate.bits(canvas, q, armp, False, fs.rate_sample) / (h * w)
            opt.zero_grad(set_to_none=True)
            nets.zero_grad()
            loss.backward()
            opt.step()
            nets.step(f)
            if progress is not None:
                progress(t + 1, fs.steps, float(mse.detach()))
    return fitted([torch.zeros(sh) for sh in shapes[:shrink]] + lat, nets, armp, start)


def _targets(img: np.ndarray, shape: tuple[int, int], s: int, stride: int, dev
             ) -> tuple[list[tuple[int, int]], list[torch.Tensor]]:
    """The lattice's phases (none empty) at `shape`, grid s's, and the distortion's target
    on each, (3, n) in [0, 1]: the image, or at s > 0 the means of its 2^s x 2^s blocks
    (the last ones edge-replicated), whose centres are the grid's cells'."""
    h, w = shape
    x = img.astype(np.float32) / 255.0
    if s:
        n = 1 << s
        x = np.pad(x, ((0, n * h - x.shape[0]), (0, n * w - x.shape[1]), (0, 0)), mode="edge")
        x = x.reshape(h, n, w, n, 3).mean((1, 3), dtype=np.float32)
    full = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).to(dev)
    order = [p for p in phases(stride) if p[0] < h and p[1] < w]
    return order, [full[(slice(None),) + lattice(h, w, stride, p)].reshape(3, -1).contiguous()
                   for p in order]


def _features(arch: LatentArch, q: list[torch.Tensor], s: int, shape: tuple[int, int],
              stride: int, phase: tuple[int, int], taps: torch.Tensor | None) -> torch.Tensor:
    """(inputs, n): the features of grids s.. (q) on a lattice at grid s's size: the
    cascade up to it (the whole image's, at s 0: features_lattice), zeros for the finer
    grids, and the coordinates of the cells' centres."""
    if not s:
        return features_lattice(arch, q, *shape, stride, phase, taps)
    rows, cols = lattice(*shape, stride, phase)
    x = upsampling.cascade(taps[s * upsampling.TAPS:], q, phase if stride == 2 else None)
    if stride != 2:
        x = x[:, rows, cols]
    parts = [x.new_zeros((s,) + x.shape[1:]), x]
    if arch.coords:
        parts.append(coordinates(*shape, x.device, rows, cols))
    return torch.cat(parts).reshape(arch.inputs, -1)


def networks(arch: LatentArch, fs: LatentFit, start: Start | None, dev: torch.device,
             gen: torch.Generator, theta: np.ndarray | None = None
             ) -> tuple[Nets, list[torch.Tensor]]:
    """A fit's networks: the synthesis from `start`'s level (or a seeded random init; or
    `theta`, in the start's mask) and its optimiser, and the ARM's parameters (the start's,
    frozen, or a seeded init the fit moves with the synthesis)."""
    if start is None:
        theta0, mask = init_synthesis(arch, gen).to(dev), None
    else:
        theta0, mask = start.theta.clone().to(dev), start.mask.float().to(dev)
    if theta is not None:
        theta0 = torch.from_numpy(np.asarray(theta, np.float32)).to(dev)
    frozen = start is not None and start.arm is not None
    if frozen:
        armp = [torch.from_numpy(a).float().to(dev) for a in start.arm.to_float()]
    else:
        armp = [p.to(dev).requires_grad_(True) for p in arm.init_float(arch.arm_hidden, gen)]
    return Nets(arch, theta0, mask, [] if frozen else armp, fs), armp


def fitted(lat: list[torch.Tensor], nets: Nets, armp: list[torch.Tensor],
           start: Start | None) -> Fitted:
    """What a fit returns, on the CPU, from its latents and networks."""
    values = [v.detach().cpu().numpy() for v in lat]
    frozen = start is not None and start.arm is not None
    return Fitted([np.clip(np.round(v), -LIM, LIM).astype(np.int64) for v in values],
                  nets.values().cpu().numpy().astype(np.float32),
                  start.arm if frozen else
                  arm.ArmParams.from_float(*[p.detach().cpu().numpy() for p in armp]),
                  values)
