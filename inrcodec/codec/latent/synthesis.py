"""The latent mode's synthesis: per pixel, its features (grids.py) go through an MLP of
`layers` hidden layers (ReLU, or sine with the SIREN initialisation) and a linear RGB
output. Parameters are flat float32 vectors (per layer its weights, row-major, then its
biases), so a quantiser can treat them as tensors of one vector and a shared model can
prune them into a ladder.
"""
from __future__ import annotations

import math

import torch

from ...config import LatentArch
from .grids import features


def init_synthesis(arch: LatentArch, generator: torch.Generator) -> torch.Tensor:
    """A flat parameter vector: per layer its weights (row-major) then its biases."""
    parts = []
    for k, (o, i) in enumerate(arch.shapes()):
        if arch.act == "sine" and k < arch.layers:
            bound = 1.0 / i if k == 0 else math.sqrt(6.0 / i) / arch.w0
        else:
            bound = 1.0 / math.sqrt(i)
        parts.append((torch.rand(o * i, generator=generator) * 2 - 1) * bound)
        parts.append(torch.zeros(o))
    return torch.cat(parts)


def synthesis_tensors(arch: LatentArch) -> list[slice]:
    """The slices of the flat vector that are tensors (each layer's weights, its biases)."""
    out, off = [], 0
    for o, i in arch.shapes():
        out.append(slice(off, off + o * i))
        out.append(slice(off + o * i, off + o * i + o))
        off += o * i + o
    return out


def synthesize(arch: LatentArch, theta: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """(N, inputs) pixel features -> (N, 3) RGB in [0, 1] (before clamping)."""
    h = feats
    off = 0
    shapes = arch.shapes()
    for k, (o, i) in enumerate(shapes):
        w = theta[off:off + o * i].view(o, i)
        b = theta[off + o * i:off + o * i + o]
        off += o * i + o
        h = torch.addmm(b, h, w.t())
        if k < len(shapes) - 1:
            h = torch.sin(arch.w0 * h) if arch.act == "sine" else torch.relu(h)
    return h + 0.5


def render(arch: LatentArch, theta: torch.Tensor, grids: list[torch.Tensor], height: int,
           width: int, chunk: int = 1 << 16) -> torch.Tensor:
    """(height, width, 3) float32 in [0, 1] (clamped)."""
    with torch.no_grad():
        up = features(arch, grids, height, width).t()
        out = torch.empty(up.shape[0], 3)
        for a in range(0, up.shape[0], chunk):
            out[a:a + chunk] = synthesize(arch, theta, up[a:a + chunk])
    return out.clamp_(0, 1).view(height, width, 3)
