"""The latent mode (format versions 3, 4 and 6), both directions: an image as a pyramid of
integer latent grids (grids.py), entropy-coded by a fixed-point autoregressive model
(arm.py), and a small synthesis network (synthesis.py) that maps the upsampled latents of
each pixel (and its coordinates) to its colour (Cool-chic's design).

Version 4 and 6 files name a latent shared model (model.py): the fit (fit.py) starts the
synthesis from one of its levels and codes the latents with its frozen ARM, so a file
sends its latents and the quantised deltas of the level's surviving synthesis entries
(or none). Without a shared model (version 3, and 4 or 6 with a zero hash) a file
carries its whole synthesis and ARM, fitted from scratch. Header and sections: format.py.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from ...config import LATENT_QUALITY, LATENT_STEPS, LatentArch, LatentFit, latent_lambda
from ...errors import FormatError, InrcodecError
from ...io import LoadedImage, alpha_plane, rgb_of
from ...model.accel import resolve_device
from ...model.file import load_named
from .. import bitstream, search
from ..header import MODE_IDS
from ..mode import Mode
from ..report import EncodeReport
from . import arm
from .fit import Start, fit
from .format import (ACTIVATIONS, NO_MODEL, VERSION, VERSIONS, LatentHeader, arch_of,
                     pack_synthesis, unpack_synthesis)
from .grids import features_lattice, grid_shapes, lattice
from .model import LatentModel, load_latent_model
from .synthesis import render, synthesize_cf

NAME = "latent"
# --bpp / --psnr: real encodes on this grid of qualities, by bisection (search.on_grid).
TARGET_QUALITIES = (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
CHOICE_PIXELS = 1 << 17  # pixels that judge the synthesis step size


@dataclass(frozen=True)
class Settings(search.Targets):
    """What decides a latent-mode file's bytes besides the image and the model: quality
    (lambda = config.latent_lambda; default LATENT_QUALITY) or a bpp / psnr target, the
    model's ladder level (default: the model's), optimiser steps and the seed."""

    level: int | None = None
    steps: int = LATENT_STEPS
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.steps < 1:
            raise InrcodecError("the latent mode needs at least one step")

    def check(self, model: LatentModel) -> None:
        if self.level is not None:
            model.check_level(self.level)

    def manifest(self, model: LatentModel) -> dict:
        """The settings a dataset manifest records (with the model hash, seed and steps)."""
        return {"mode": NAME, "quality": self.quality,
                **({"level": self.level} if self.level is not None else {}),
                **{k: v for k, v in self.targets().items() if k != "quality"}}


# -- encoding ------------------------------------------------------------------------------------
def _rgb(arch: LatentArch, theta: np.ndarray, grids: list[np.ndarray], height: int,
         width: int) -> np.ndarray:
    t = render(arch, torch.from_numpy(theta),
               [torch.from_numpy(g.astype(np.float32)) for g in grids], height, width)
    return t.numpy()


def write(*, model_hash: bytes, width: int, height: int, mode: str, levels: int,
          hidden: int, layers: int, act: str, w0: int, synthesis: bytes, arm: bytes,
          latents: bytes, alpha_plane: bytes | None = None, level: int = 0,
          coords: bool = False, version: int = VERSION) -> bytes:
    """A whole latent-mode file from its coded sections and, for LA/RGBA, the raw alpha.
    Version 3 has no level, no coordinates and no shared model."""
    if version == 3 and (level or coords or any(model_hash)):
        raise ValueError("version 3 has no level, coordinates or shared model")
    flags, alpha = bitstream.alpha_of(alpha_plane)
    act_id = {v: k for k, v in ACTIVATIONS.items()}[act]
    h = LatentHeader(version=version, flags=flags, level=level, coords=int(coords),
                     model_hash=model_hash, width=width, height=height, mode=MODE_IDS[mode],
                     levels=levels, hidden=hidden, layers=layers, act=act_id,
                     w0=w0 if act == "sine" else 0, synth_len=len(synthesis),
                     arm_len=len(arm), latent_len=len(latents), alpha_len=len(alpha))
    return bitstream.pack_sections(h, {"synthesis": synthesis, "arm": arm, "latents": latents,
                                       "alpha": alpha})


def compress(img: np.ndarray, mode: str, alpha: bytes | None, fs: LatentFit,
             model: LatentModel | None = None, level: int = 0, arch: LatentArch | None = None,
             progress=None, start: Start | None = None, device=None) -> bytes:
    """(H, W, 3) uint8 -> a version-6 file. With a shared latent model (its `level`) the
    synthesis starts from the model and the file sends the deltas of the level's entries;
    without, a self-contained file (`arch`, default LatentArch()). The synthesis step size
    (or, with a model, sending no deltas) is chosen by D + lambda R on a lattice of pixels.
    `start` overrides the model's level (for ablations: a random init, the model's ARM).
    The fit runs on `device`; coding and the choice of step size stay on the CPU, so the
    file decodes the same on every machine."""
    h, w = img.shape[:2]
    if model is not None:
        model.check_level(level)
        arch = model.arch
        start = start or Start.of(model, level)
    arch = arch or LatentArch()
    f = fit(img, arch, fs, progress, start, device)
    own_arm = model is None or start.arm is None
    latents = arm.encode_section(f.latents, f.arm)
    arm_bytes = f.arm.to_bytes() if own_arm else b""
    base = mask = None
    if model is not None:
        base = start.theta.numpy().astype(np.float32)
        mask = start.mask.numpy()
    # D + lambda R of each option, D on a lattice of about 2^17 pixels (the full render
    # is the check-decode's): the choice costs the same at any image size
    stride = max(1, math.ceil(math.sqrt(h * w / CHOICE_PIXELS)))
    phase = (min(stride // 2, h - 1), min(stride // 2, w - 1))
    x = features_lattice(arch, [torch.from_numpy(g.astype(np.float32)) for g in f.latents],
                         h, w, stride, phase)
    rows, cols = lattice(h, w, stride, phase)
    ref = img[rows, cols].reshape(-1, 3).T.astype(np.float64) / 255.0
    options = ([b""] if model is not None else []) + [
        pack_synthesis(f.theta, arch, k, base, mask) for k in range(4, 13)]
    best = None
    with torch.no_grad():
        for synth in options:
            theta_q = torch.from_numpy(unpack_synthesis(synth, arch, base, mask))
            rgb = synthesize_cf(arch, theta_q, x).clamp_(0, 1).double().numpy()
            mse = float(np.mean((np.round(rgb * 255) / 255 - ref) ** 2))
            cost = mse + fs.lam * 8 * (len(synth) + len(latents) + len(arm_bytes)) / (h * w)
            if best is None or cost < best[0]:
                best = (cost, synth)
    return write(model_hash=bytes.fromhex(model.hash) if model is not None else NO_MODEL,
                 width=w, height=h, mode=mode, levels=arch.levels, hidden=arch.hidden,
                 layers=arch.layers, act=arch.act, w0=int(arch.w0) if arch.act == "sine" else 0,
                 synthesis=best[1], arm=arm_bytes, latents=latents, alpha_plane=alpha,
                 level=level if model is not None else 0, coords=arch.coords)


def encode(img: LoadedImage, model: LatentModel, settings: Settings, progress=None, *,
           check: Callable[[bytes, LoadedImage], float], device=None) -> EncodeReport:
    """One image -> its file and report; `check` decodes a file and gives its PSNR (the
    encoder's check-decode). A bpp / psnr target searches the quality (search.on_grid)."""
    t0 = time.perf_counter()
    if settings.target is not None:
        def at(q: int) -> EncodeReport:
            return encode(img, model, replace(settings, quality=q, bpp=None, psnr=None),
                          progress, check=check, device=device)
        r = search.on_grid(at, settings.target, getattr(settings, settings.target),
                           TARGET_QUALITIES, "latent-mode ")
        return replace(r, seconds=time.perf_counter() - t0)
    h, w = img.pixels.shape[:2]
    quality = LATENT_QUALITY if settings.quality is None else settings.quality
    level = model.default_level if settings.level is None else settings.level
    fs = LatentFit(steps=settings.steps, lam=latent_lambda(quality), seed=settings.seed)
    data = compress(rgb_of(img), img.mode, alpha_plane(img), fs, model, level,
                    progress=progress, device=resolve_device(device))
    return EncodeReport(data=data, width=w, height=h, mode=img.mode, level=level,
                        steps=settings.steps, params=int(model.masks[level].sum()), tiles=1,
                        psnr=check(data, img), seconds=time.perf_counter() - t0,
                        model_hash=model.hash, notices=list(img.notices), quantizer="latent",
                        coder="arm", version=VERSION, quality=quality, codec=NAME)


# -- decoding ------------------------------------------------------------------------------------
def model_for(h: LatentHeader, model) -> LatentModel:
    """The shared latent model a file names: `model` (a LatentModel or a path) or the
    shipped one, checked against the file."""
    m = load_named(load_latent_model, model, h.model_hash.hex(), "latent model")
    a = m.arch
    if (a.levels, a.hidden, a.layers, a.act, a.coords) != \
            (h.levels, h.hidden, h.layers, arch_of(h).act, bool(h.coords)) \
            or (a.act == "sine" and int(a.w0) != h.w0):
        raise FormatError("the file's synthesis architecture differs from its latent model's")
    if h.level >= m.n_levels:
        raise FormatError(f"file uses level {h.level}; the latent model has {m.n_levels}")
    return m


def decode(data: bytes, h: LatentHeader, model, size: tuple[int, int], device=None
           ) -> np.ndarray:
    """A verified latent-mode file -> (height, width, 3) float32 in [0, 255] (unrounded),
    rendered at size = (width, height)."""
    if h.shared:
        m = model_for(h, model)
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
                               grid_shapes(h.height, h.width, a.levels), params, h.binned)
    out = _rgb(a, theta, grids, size[1], size[0])
    out *= 255.0
    return out


MODE = Mode(name=NAME, writes=(VERSION,), reads=VERSIONS, settings=Settings,
            load_model=load_latent_model, encode=encode, decode=decode)
