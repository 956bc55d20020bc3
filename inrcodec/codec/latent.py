"""The latent mode (format version 3): an image as a pyramid of integer latent grids,
entropy-coded by an autoregressive model, and a small synthesis network that maps the
upsampled latents of each pixel to its colour (Cool-chic's design).

This first version is self-contained: each file carries its own synthesis and
autoregressive model, fitted from scratch with the latents (`fit`), for D + lambda R with
a uniform-noise proxy of rounding and a last phase of straight-through rounding. A
meta-learned shared synthesis, which the design calls for, comes next.

Sections (bitstream.write_latent lays them out):
- synthesis: per tensor of the flat parameter vector (model/latent.py) one byte k (step
  size 2^-k), u16 m and u16 qmax of its discrete Laplace prior (codec/prior.py), then the
  range-coded integers of every tensor;
- arm: the fixed-point autoregressive model (codec/arm.py, ArmParams.to_bytes);
- latents: u16 qmax per grid, then the grids coded by that model (codec/arm.py).
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..config import LatentArch, LatentFit
from ..errors import FormatError
from ..model import latent as lm
from . import arm, prior

K_MIN, K_MAX = 2, 16  # synthesis step sizes 2^-k
NO_MODEL = bytes(32)  # model_hash of a self-contained file


# -- the synthesis parameters section ---------------------------------------------------------
def pack_synthesis(theta: np.ndarray, arch: LatentArch, k: int) -> bytes:
    """Quantise every tensor to step 2^-k and code it with its own discrete Laplace."""
    parts, params, head = [], [], b""
    for s in lm.synthesis_tensors(arch):
        q = np.round(theta[s].astype(np.float64) * (1 << k)).astype(np.int64)
        q = np.clip(q, -prior.MAX_QMAX, prior.MAX_QMAX)
        m, qmax = prior.fit_m(q)
        parts.append(q)
        params.append((m, qmax))
        head += struct.pack("<BHH", k, m, qmax)
    return head + prior.encode_tensors(parts, params)


def unpack_synthesis(data: bytes, arch: LatentArch) -> np.ndarray:
    slices = lm.synthesis_tensors(arch)
    n = 5 * len(slices)
    if len(data) < n or (len(data) - n) % 4:
        raise FormatError("synthesis section has an impossible length")
    heads = [struct.unpack_from("<BHH", data, 5 * i) for i in range(len(slices))]
    if any(not K_MIN <= k <= K_MAX for k, _, _ in heads):
        raise FormatError("synthesis step size out of range")
    qs = prior.decode_tensors(data[n:], [s.stop - s.start for s in slices],
                              [(m, qmax) for _, m, qmax in heads])
    theta = np.empty(arch.n_params(), dtype=np.float32)
    for s, q, (k, _, _) in zip(slices, qs, heads):
        theta[s] = (q.astype(np.float64) / (1 << k)).astype(np.float32)  # exact
    return theta


# -- fitting -----------------------------------------------------------------------------------
@dataclass
class Fitted:
    latents: list[np.ndarray]  # integer grids
    theta: np.ndarray  # float synthesis parameters
    arm: arm.ArmParams


def _bits(armp: list[torch.Tensor], grids: list[torch.Tensor]) -> torch.Tensor:
    total = torch.zeros(())
    for g in grids:
        mu, b = arm.predict_float(armp, arm.context_float(g))
        total = total + prior.rate_bits(g.reshape(-1), b, mu).sum()
    return total


def fit(img: np.ndarray, arch: LatentArch, fs: LatentFit,
        progress: Callable[[float, int, float], None] | None = None) -> Fitted:
    """img: (H, W, 3) uint8 -> latents, synthesis and autoregressive model."""
    h, w = img.shape[:2]
    gen = torch.Generator().manual_seed(fs.seed)
    target = torch.from_numpy(img.reshape(-1, 3).astype(np.float32) / 255.0)
    lat = [torch.zeros(s, requires_grad=True) for s in lm.grid_shapes(h, w, arch.levels)]
    theta = lm.init_synthesis(arch, gen).requires_grad_(True)
    armp = [p.requires_grad_(True) for p in arm.init_float(arch.arm_hidden, gen)]
    opt = torch.optim.Adam([{"params": lat, "lr": fs.lr_latent},
                            {"params": [theta] + armp, "lr": fs.lr_net}])
    base = [g["lr"] for g in opt.param_groups]
    n_ste = int(round(fs.ste_fraction * fs.steps))
    n_px = max(1, int(fs.pixel_fraction * h * w))
    for t in range(fs.steps):
        f = 0.5 * (1 + math.cos(math.pi * t / max(fs.steps, 1)))  # cosine decay to 2%
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * (0.02 + 0.98 * f)
        if t >= fs.steps - n_ste:
            q = [v + (torch.round(v) - v).detach() for v in lat]
        else:
            q = [v + torch.rand(v.shape, generator=gen) - 0.5 for v in lat]
        feats = lm.upsample(q, h, w).reshape(arch.levels, -1)
        idx = torch.randint(0, h * w, (n_px,), generator=gen) if n_px < h * w else None
        x = feats.t() if idx is None else feats[:, idx].t()
        y = target if idx is None else target[idx]
        mse = (lm.synthesize(arch, theta, x) - y).square().mean()
        loss = mse + fs.lam * _bits(armp, q) / (h * w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(t + 1, fs.steps, float(mse.detach()))
    lim = prior.MAX_QMAX // 2
    return Fitted([np.clip(np.round(v.detach().numpy()), -lim, lim).astype(np.int64)
                   for v in lat],
                  theta.detach().numpy().astype(np.float32),
                  arm.ArmParams.from_float(*[p.detach().numpy() for p in armp]))


# -- files ---------------------------------------------------------------------------------------
def _rgb(arch: LatentArch, theta: np.ndarray, grids: list[np.ndarray], height: int,
         width: int) -> np.ndarray:
    t = lm.render(arch, torch.from_numpy(theta),
                  [torch.from_numpy(g.astype(np.float32)) for g in grids], height, width)
    return t.numpy()


def encode(img: np.ndarray, mode: str, alpha_plane: bytes | None, arch: LatentArch,
           fs: LatentFit, progress=None) -> bytes:
    """(H, W, 3) uint8 -> a version-3 file. The synthesis step size is chosen by D + lambda R
    on the whole image."""
    from . import bitstream
    h, w = img.shape[:2]
    f = fit(img, arch, fs, progress)
    latents = arm.encode_section(f.latents, f.arm)
    arm_bytes = f.arm.to_bytes()
    ref = img.astype(np.float64) / 255.0
    best = None
    for k in range(6, 13):
        synth = pack_synthesis(f.theta, arch, k)
        theta_q = unpack_synthesis(synth, arch)
        mse = float(np.mean((np.round(_rgb(arch, theta_q, f.latents, h, w) * 255) / 255
                             - ref) ** 2))
        cost = mse + fs.lam * 8 * (len(synth) + len(latents) + len(arm_bytes)) / (h * w)
        if best is None or cost < best[0]:
            best = (cost, synth)
    return bitstream.write_latent(
        model_hash=NO_MODEL, width=w, height=h, mode=mode, levels=arch.levels,
        hidden=arch.hidden, layers=arch.layers, act=arch.act,
        w0=int(arch.w0) if arch.act == "sine" else 0, synthesis=best[1], arm=arm_bytes,
        latents=latents, alpha_plane=alpha_plane)


def arch_of(h) -> LatentArch:
    """The architecture a version-3 header declares."""
    from .bitstream import ACTIVATIONS
    try:
        return LatentArch(levels=h.levels, hidden=h.hidden, layers=h.layers,
                             act=ACTIVATIONS[h.act], w0=float(h.w0 or 30),
                             arm_hidden=1)  # the ARM section states its own width
    except ValueError as e:
        raise FormatError(str(e)) from None


def decode_rgb(data: bytes, h, out_height: int, out_width: int) -> np.ndarray:
    """A verified version-3 file -> (out_height, out_width, 3) float32 in [0, 1]."""
    from . import bitstream
    if h.model_hash != NO_MODEL:
        raise FormatError("this file needs a shared latent model; this inrcodec has none")
    a = arch_of(h)
    theta = unpack_synthesis(bitstream.section(data, h, "synthesis"), a)
    params = arm.ArmParams.from_bytes(bitstream.section(data, h, "arm"))
    grids = arm.decode_section(bitstream.section(data, h, "latents"),
                               lm.grid_shapes(h.height, h.width, a.levels), params)
    return _rgb(a, theta, grids, out_height, out_width)
