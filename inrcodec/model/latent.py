"""The latent mode's networks: a pyramid of latent grids, their upsampling to any output
grid, the per-pixel synthesis, and the float twin of the integer autoregressive model.

An image of H x W has `levels` one-channel grids, grid k of ceil(H / 2^k) x ceil(W / 2^k).
To render at H' x W', every grid is upsampled bilinearly to H' x W' (the same sampling
positions at any output size, so a 2x render is the 1x render's continuous function
sampled twice as densely) and the stacked values of each pixel (with, if the architecture says so, the pixel
centre's coordinates in [-1, 1]) go through the synthesis:
an MLP of `layers` hidden layers (ReLU, or sine with the SIREN initialisation) and a
linear RGB output. Parameters are flat float32 vectors, as in model/inr.py, so a
quantiser can treat them as tensors of one vector.
"""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F

from ..config import LatentArch

def grid_shapes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    return [(math.ceil(height / 2 ** k), math.ceil(width / 2 ** k)) for k in range(levels)]


def upsample(grids: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """Grids (each (h_k, w_k)) -> (levels, height, width): bilinear, half-pixel centres
    (each grid covers the image's extent whatever the output size)."""
    out = []
    for g in grids:
        g = g[None, None]
        if g.shape[-2:] != (height, width):
            g = F.interpolate(g, size=(height, width), mode="bilinear", align_corners=False)
        out.append(g[0, 0])
    return torch.stack(out)


def upsample_batch(grids: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """Grids (each (B, h_k, w_k)) -> (B, levels, height, width), as `upsample` per image."""
    out = []
    for g in grids:
        g = g[:, None]
        if g.shape[-2:] != (height, width):
            g = F.interpolate(g, size=(height, width), mode="bilinear", align_corners=False)
        out.append(g[:, 0])
    return torch.stack(out, 1)


def coordinates(height: int, width: int) -> torch.Tensor:
    """(2, height, width): pixel centres, x then y, each in [-1, 1] over the image's extent
    (the same continuous function at any output size)."""
    ys = (torch.arange(height, dtype=torch.float32) * 2 + 1) / height - 1
    xs = (torch.arange(width, dtype=torch.float32) * 2 + 1) / width - 1
    return torch.stack([xs.expand(height, width), ys[:, None].expand(height, width)])


def features(arch: LatentArch, grids: list[torch.Tensor], height: int, width: int
             ) -> torch.Tensor:
    """(inputs, height * width): what the synthesis reads at every output pixel."""
    up = upsample(grids, height, width)
    if arch.coords:
        up = torch.cat([up, coordinates(height, width)])
    return up.reshape(up.shape[0], -1)


def _taps(n_in: int, n_out: int, pos: torch.Tensor):
    """F.interpolate's bilinear taps (align_corners=False) along one axis at output
    positions `pos`: (low index, high index, weight of high)."""
    src = ((pos.to(torch.float32) + 0.5) * (n_in / n_out) - 0.5).clamp_min(0)
    lo = src.floor().long().clamp_max(n_in - 1)
    hi = (lo + 1).clamp_max(n_in - 1)
    return lo, hi, src - lo


def features_at(arch: LatentArch, grids: list[torch.Tensor], height: int, width: int,
                idx: torch.Tensor | None) -> torch.Tensor:
    """(N, inputs): `features` at the flat pixel indices `idx` only (all pixels if None),
    interpolating each grid at just those pixels: a fit's step costs what it samples."""
    if idx is None:
        return features(arch, grids, height, width).t()
    py, px = idx // width, idx % width
    cols = []
    for g in grids:
        gh, gw = g.shape
        if (gh, gw) == (height, width):
            cols.append(g.reshape(-1)[idx])
            continue
        y0, y1, wy = _taps(gh, height, py)
        x0, x1, wx = _taps(gw, width, px)
        flat = g.reshape(-1)
        top = flat[y0 * gw + x0] * (1 - wx) + flat[y0 * gw + x1] * wx
        bot = flat[y1 * gw + x0] * (1 - wx) + flat[y1 * gw + x1] * wx
        cols.append(top * (1 - wy) + bot * wy)
    if arch.coords:
        cols += [(px.to(torch.float32) * 2 + 1) / width - 1,
                 (py.to(torch.float32) * 2 + 1) / height - 1]
    return torch.stack(cols, 1)


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
