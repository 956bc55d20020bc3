"""The latent mode's grids: a pyramid of one-channel latent grids and their upsampling to
any output grid, with the pixel's coordinates: what the synthesis reads at each pixel.

An image of H x W has `levels` grids, grid k of ceil(H / 2^k) x ceil(W / 2^k). To render
at H' x W', every grid is upsampled bilinearly to H' x W' (the same sampling positions at
any output size, so a 2x render is the 1x render's continuous function sampled twice as
densely); the stacked values of each pixel (with, if the architecture says so, the pixel
centre's coordinates in [-1, 1]) are its features.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...config import LatentArch


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


def coordinates(height: int, width: int, device=None) -> torch.Tensor:
    """(2, height, width): pixel centres, x then y, each in [-1, 1] over the image's extent
    (the same continuous function at any output size)."""
    ys = (torch.arange(height, dtype=torch.float32, device=device) * 2 + 1) / height - 1
    xs = (torch.arange(width, dtype=torch.float32, device=device) * 2 + 1) / width - 1
    return torch.stack([xs.expand(height, width), ys[:, None].expand(height, width)])


def features(arch: LatentArch, grids: list[torch.Tensor], height: int, width: int
             ) -> torch.Tensor:
    """(inputs, height * width): what the synthesis reads at every output pixel."""
    up = upsample(grids, height, width)
    if arch.coords:
        up = torch.cat([up, coordinates(height, width, up.device)])
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
