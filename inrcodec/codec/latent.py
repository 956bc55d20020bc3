"""The latent mode (format versions 3 and 4): an image as a pyramid of integer latent grids,
entropy-coded by an autoregressive model, and a small synthesis network that maps the
upsampled latents of each pixel (and its coordinates) to its colour (Cool-chic's design).

Version 4 files name a latent shared model (model/latent_model.py): the fit starts the
synthesis from one of its levels and codes the latents with its frozen ARM, so a file
sends its latents and the quantised deltas of the level's surviving synthesis entries
(or none). The fit (`fit`) is for D + lambda R with a uniform-noise proxy of rounding and
a last phase of straight-through rounding. Without a shared model (version 3, and version
4 with a zero hash) a file carries its whole synthesis and ARM, fitted from scratch.

Sections (bitstream.write_latent lays them out):
- synthesis: per tensor of the flat parameter vector (model/latent.py), only the entries
  the level keeps with a shared model, one byte k (step size 2^-k), u16 m and u16 qmax of
  its discrete Laplace prior (codec/prior.py), then the range-coded integers of every
  tensor; empty with a shared model: no deltas;
- arm: the fixed-point autoregressive model (codec/arm.py, ArmParams.to_bytes), or empty:
  the shared model's;
- latents: u16 qmax per grid, then the grids coded by that model (codec/arm.py).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..config import LatentArch, LatentFit
from ..errors import FormatError
from ..model import latent as lm
from . import arm, prior
from .fit import cosine_decay

K_MIN, K_MAX = 2, 16  # synthesis step sizes 2^-k
NO_MODEL = bytes(32)  # model_hash of a self-contained file


# -- the synthesis parameters section ---------------------------------------------------------
def _entries(arch: LatentArch, mask: np.ndarray | None) -> list[np.ndarray]:
    """Per tensor of the flat vector, the indices a file codes (with a shared model only
    the level's surviving entries; the mask is implicit in the model)."""
    out = []
    for s in lm.synthesis_tensors(arch):
        idx = np.arange(s.start, s.stop)
        out.append(idx if mask is None else idx[mask[s]])
    return out


def pack_synthesis(theta: np.ndarray, arch: LatentArch, k: int,
                   base: np.ndarray | None = None, mask: np.ndarray | None = None) -> bytes:
    """Quantise every tensor (its deltas from `base` at `mask`, with a shared model) to step
    2^-k and code it with its own discrete Laplace."""
    parts, params, head = [], [], b""
    d = theta.astype(np.float64) - (0.0 if base is None else base.astype(np.float64))
    for idx in _entries(arch, mask):
        q = np.round(d[idx] * (1 << k)).astype(np.int64)
        q = np.clip(q, -prior.MAX_QMAX, prior.MAX_QMAX)
        m, qmax = prior.fit_m(q)
        parts.append(q)
        params.append((m, qmax))
        head += struct.pack("<BHH", k, m, qmax)
    return head + prior.encode_tensors(parts, params)


def unpack_synthesis(data: bytes, arch: LatentArch, base: np.ndarray | None = None,
                     mask: np.ndarray | None = None) -> np.ndarray:
    theta = np.zeros(arch.n_params(), dtype=np.float32) if base is None else base.copy()
    if base is not None and not data:
        return theta  # no deltas: the shared initialisation as is
    entries = _entries(arch, mask)
    n = 5 * len(entries)
    if len(data) < n or (len(data) - n) % 4:
        raise FormatError("synthesis section has an impossible length")
    heads = [struct.unpack_from("<BHH", data, 5 * i) for i in range(len(entries))]
    if any(not K_MIN <= k <= K_MAX for k, _, _ in heads):
        raise FormatError("synthesis step size out of range")
    qs = prior.decode_tensors(data[n:], [len(i) for i in entries],
                              [(m, qmax) for _, m, qmax in heads])
    for idx, q, (k, _, _) in zip(entries, qs, heads):
        # exact: integer / 2^k, plus a float32 base, in float64 then rounded once
        theta[idx] = (theta[idx].astype(np.float64) + q.astype(np.float64) / (1 << k)
                      ).astype(np.float32)
    return theta


# -- fitting -----------------------------------------------------------------------------------
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
    total = torch.zeros(())
    for g in grids:
        mu, b = arm.predict_float(armp, arm.context_float(g))
        total = total + prior.rate_bits(g.reshape(-1), b, mu).sum()
    return total


def fit(img: np.ndarray, arch: LatentArch, fs: LatentFit,
        progress: Callable[[float, int, float], None] | None = None,
        start: Start | None = None) -> Fitted:
    """img: (H, W, 3) uint8 -> latents, synthesis and autoregressive model. From `start`
    (a shared model's level) the ARM stays frozen and only the masked synthesis entries
    move.

    Runs with torch's deterministic algorithms: the backward of the sampled-pixel gather
    (lm.features_at) accumulates into the latents, and with several threads the order of
    that sum, and so the file, changed from one run to the next."""
    was = (torch.are_deterministic_algorithms_enabled(),
           torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True)
    try:
        return _fit(img, arch, fs, progress, start)
    finally:
        torch.use_deterministic_algorithms(was[0], warn_only=was[1])


def _fit(img: np.ndarray, arch: LatentArch, fs: LatentFit,
         progress: Callable[[float, int, float], None] | None,
         start: Start | None) -> Fitted:
    h, w = img.shape[:2]
    gen = torch.Generator().manual_seed(fs.seed)
    target = torch.from_numpy(img.reshape(-1, 3).astype(np.float32) / 255.0)
    lat = [torch.zeros(s, requires_grad=True) for s in lm.grid_shapes(h, w, arch.levels)]
    if start is None:
        theta = lm.init_synthesis(arch, gen).requires_grad_(True)
        mask = None
    else:
        theta = start.theta.clone().requires_grad_(True)
        mask = start.mask.float()
    frozen = start is not None and start.arm is not None
    if frozen:
        armp = [torch.from_numpy(a).float() for a in start.arm.to_float()]
    else:
        armp = [p.requires_grad_(True) for p in arm.init_float(arch.arm_hidden, gen)]
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
            q = [v + torch.rand(v.shape, generator=gen) - 0.5 for v in lat]
        idx = torch.randint(0, h * w, (n_px,), generator=gen) if n_px < h * w else None
        x = lm.features_at(arch, q, h, w, idx)
        y = target if idx is None else target[idx]
        mse = (lm.synthesize(arch, theta, x) - y).square().mean()
        loss = mse + fs.lam * _bits(armp, q) / (h * w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if mask is not None:
            theta.grad.mul_(mask)
        opt.step()
        if progress is not None:
            progress(t + 1, fs.steps, float(mse.detach()))
    lim = prior.MAX_QMAX // 2
    return Fitted([np.clip(np.round(v.detach().numpy()), -lim, lim).astype(np.int64)
                   for v in lat],
                  theta.detach().numpy().astype(np.float32),
                  start.arm if frozen else
                  arm.ArmParams.from_float(*[p.detach().numpy() for p in armp]))


# -- files ---------------------------------------------------------------------------------------
def _rgb(arch: LatentArch, theta: np.ndarray, grids: list[np.ndarray], height: int,
         width: int) -> np.ndarray:
    t = lm.render(arch, torch.from_numpy(theta),
                  [torch.from_numpy(g.astype(np.float32)) for g in grids], height, width)
    return t.numpy()


def encode(img: np.ndarray, mode: str, alpha_plane: bytes | None, fs: LatentFit,
           model=None, level: int = 0, arch: LatentArch | None = None,
           progress=None, start: Start | None = None) -> bytes:
    """(H, W, 3) uint8 -> a version-4 file. With a shared latent model (its `level`) the
    synthesis starts from the model and the file sends the deltas of the level's entries;
    without, a self-contained file (`arch`, default LatentArch()). The synthesis step size
    (or, with a model, sending no deltas) is chosen by D + lambda R on the whole image.
    `start` overrides the model's level (for ablations: a random init, the model's ARM)."""
    from . import bitstream
    h, w = img.shape[:2]
    if model is not None:
        model.check_level(level)
        arch = model.arch
        start = start or Start.of(model, level)
    arch = arch or LatentArch()
    f = fit(img, arch, fs, progress, start)
    own_arm = model is None or start.arm is None
    latents = arm.encode_section(f.latents, f.arm)
    arm_bytes = f.arm.to_bytes() if own_arm else b""
    base = mask = None
    if model is not None:
        base = start.theta.numpy().astype(np.float32)
        mask = start.mask.numpy()
    ref = img.astype(np.float64) / 255.0
    options = ([b""] if model is not None else []) + [
        pack_synthesis(f.theta, arch, k, base, mask) for k in range(4, 13)]
    best = None
    for synth in options:
        theta_q = unpack_synthesis(synth, arch, base, mask)
        mse = float(np.mean((np.round(_rgb(arch, theta_q, f.latents, h, w) * 255) / 255
                             - ref) ** 2))
        cost = mse + fs.lam * 8 * (len(synth) + len(latents) + len(arm_bytes)) / (h * w)
        if best is None or cost < best[0]:
            best = (cost, synth)
    return bitstream.write_latent(
        model_hash=bytes.fromhex(model.hash) if model is not None else NO_MODEL,
        width=w, height=h, mode=mode, levels=arch.levels, hidden=arch.hidden,
        layers=arch.layers, act=arch.act, w0=int(arch.w0) if arch.act == "sine" else 0,
        synthesis=best[1], arm=arm_bytes, latents=latents, alpha_plane=alpha_plane,
        level=level if model is not None else 0, coords=arch.coords)


def arch_of(h) -> LatentArch:
    """The architecture a latent-mode header declares."""
    from .bitstream import ACTIVATIONS
    try:
        return LatentArch(levels=h.levels, hidden=h.hidden, layers=h.layers,
                          act=ACTIVATIONS[h.act], w0=float(h.w0 or 30),
                          arm_hidden=1, coords=bool(h.coords))  # the ARM states its width
    except ValueError as e:
        raise FormatError(str(e)) from None


def _model_for(h, model):
    """The shared latent model a file names: `model` (a LatentModel or a path) or the
    shipped one, checked against the file."""
    from ..errors import ModelError, ModelMismatchError
    from ..model.latent_model import LatentModel, load_latent_model
    needed = h.model_hash.hex()
    try:
        m = model if isinstance(model, LatentModel) else load_latent_model(model)
    except ModelError as e:
        raise ModelError(f"{e}; this file needs latent model {needed}") from None
    if m.hash != needed:
        raise ModelMismatchError(f"this file needs latent model {needed}, but the model "
                                 f"supplied is {m.hash}; pass the right one with --model")
    a = m.arch
    if (a.levels, a.hidden, a.layers, a.act, a.coords) != \
            (h.levels, h.hidden, h.layers, arch_of(h).act, bool(h.coords)) \
            or (a.act == "sine" and int(a.w0) != h.w0):
        raise FormatError("the file's synthesis architecture differs from its latent model's")
    if h.level >= m.n_levels:
        raise FormatError(f"file uses level {h.level}; the latent model has {m.n_levels}")
    return m


def decode_rgb(data: bytes, h, out_height: int, out_width: int, model=None) -> np.ndarray:
    """A verified latent-mode file -> (out_height, out_width, 3) float32 in [0, 1]."""
    from . import bitstream
    if h.shared:
        m = _model_for(h, model)
        a = m.arch
        theta = unpack_synthesis(bitstream.section(data, h, "synthesis"), a,
                                 m.thetas[h.level].numpy().astype(np.float32),
                                 m.masks[h.level].numpy())
        own = bitstream.section(data, h, "arm")
        params = arm.ArmParams.from_bytes(own) if own else arm.ArmParams(*m.arm)
    else:
        a = arch_of(h)
        theta = unpack_synthesis(bitstream.section(data, h, "synthesis"), a)
        params = arm.ArmParams.from_bytes(bitstream.section(data, h, "arm"))
    grids = arm.decode_section(bitstream.section(data, h, "latents"),
                               lm.grid_shapes(h.height, h.width, a.levels), params)
    return _rgb(a, theta, grids, out_height, out_width)
