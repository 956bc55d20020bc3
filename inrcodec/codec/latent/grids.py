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


def coordinates(height: int, width: int, device=None) -> torch.Tensor:
    """(2, height, width): pixel centres, x then y, each in [-1, 1] over the image's extent
    (the same continuous function at any output size)."""
    ys = (torch.arange(height, dtype=torch.float32, device=device) * 2 + 1) / height - 1
    xs = (torch.arange(width, dtype=torch.float32, device=device) * 2 + 1) / width - 1
    return torch.stack([xs.expand(height, width), ys[:, None].expand(height, width)])


def features(arch: LatentArch, grids: list[torch.Tensor], height: int, width: int
             ) -> torch.Tensor:
    """(inputs, height * width): what the synthesis reads at every output pixel, each
    row written once into one buffer (the values of `upsample`, then the coordinates)."""
    out = torch.empty(arch.inputs, height, width, device=grids[0].device)
    for k, g in enumerate(grids):
        if g.shape != (height, width):
            g = F.interpolate(g[None, None], size=(height, width), mode="bilinear",
                              align_corners=False)[0, 0]
        out[k] = g
    if arch.coords:
        out[len(grids):] = coordinates(height, width, out.device)
    return out.reshape(arch.inputs, -1)


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


def lattice(height: int, width: int, stride: int, phase: tuple[int, int]
            ) -> tuple[slice, slice]:
    """The pixels (rows, columns) of a stride x stride lattice at `phase` (dy, dx)."""
    return slice(phase[0], height, stride), slice(phase[1], width, stride)


def features_lattice(arch: LatentArch, grids: list[torch.Tensor], height: int, width: int,
                     stride: int, phase: tuple[int, int]) -> torch.Tensor:
    """(inputs, n): `features` at the pixels of a lattice (`lattice`), row-major. Each
    grid is interpolated along its rows, then its columns (bilinear is separable), so a
    step costs what it samples and its backward is two index-adds, not a scatter."""
    rows, cols = lattice(height, width, stride, phase)
    py = torch.arange(height, device=grids[0].device)[rows]
    px = torch.arange(width, device=grids[0].device)[cols]
    out = []
    for g in grids:
        gh, gw = g.shape
        if (gh, gw) == (height, width):
            out.append(g[rows, cols])
            continue
        y0, y1, wy = _taps(gh, height, py)
        x0, x1, wx = _taps(gw, width, px)
        r = torch.lerp(g.index_select(0, y0), g.index_select(0, y1), wy[:, None])
        out.append(torch.lerp(r.index_select(1, x0), r.index_select(1, x1), wx[None, :]))
    if arch.coords:
        cy = (py.to(torch.float32) * 2 + 1) / height - 1
        cx = (px.to(torch.float32) * 2 + 1) / width - 1
        out += [cx[None, :].expand(len(py), len(px)), cy[:, None].expand(len(py), len(px))]
    return torch.stack(out).reshape(len(out), -1)
