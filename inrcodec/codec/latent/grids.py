"""The latent mode's grids: a pyramid of one-channel latent grids and their upsampling to
any output grid, with the pixel's coordinates: what the synthesis reads at each pixel.

An image of H x W has `levels` grids, grid k of ceil(H / 2^k) x ceil(W / 2^k). To render
at H' x W', every grid is upsampled to H' x W', bilinearly or (if the architecture says
so) by Catmull-Rom's bicubic or the learned cascade (upsampling.py, then bilinear from
H x W to another size), with half-pixel centres: the same sampling positions at any
output size, so a 2x render is the 1x render's continuous function sampled twice as
densely. The stacked values of each pixel (with, if the architecture says so, the pixel
centre's coordinates in [-1, 1]) are its features.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F

from . import upsampling
from .config import LatentArch


def coordinates(height: int, width: int, device=None, rows: slice = slice(None),
                cols: slice = slice(None)) -> torch.Tensor:
    """(2, height, width): pixel centres, x then y, each in [-1, 1] over the image's extent
    (the same continuous function at any output size); or those of `rows` and `cols`."""
    ys = (torch.arange(height, dtype=torch.float32, device=device)[rows] * 2 + 1) / height - 1
    xs = (torch.arange(width, dtype=torch.float32, device=device)[cols] * 2 + 1) / width - 1
    n, m = len(ys), len(xs)
    return torch.stack([xs.expand(n, m), ys[:, None].expand(n, m)])


def features(arch: LatentArch, grids: list[torch.Tensor], height: int, width: int,
             taps: torch.Tensor | None = None) -> torch.Tensor:
    """(inputs, height * width): what the synthesis reads at every output pixel, each
    row written once into one buffer (the upsampled grids, then the coordinates). A
    learned upsampling (`taps`: the synthesis' upsampling.py taps) runs its cascade to the
    image's own size (grid 0's); another size samples that bilinearly, half-pixel centres."""
    if arch.upsample == "learned":
        x = upsampling.cascade(taps, grids)
        if x.shape[1:] != (height, width):
            x = F.interpolate(x[None], size=(height, width), mode="bilinear",
                              align_corners=False)[0]
        if arch.coords:
            x = torch.cat([x, coordinates(height, width, x.device)])
        return x.reshape(arch.inputs, -1)
    if arch.upsample != "bilinear":
        return features_lattice(arch, grids, height, width, 1, (0, 0))
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


def _cubic_taps(n_in: int, n_out: int, pos: torch.Tensor):
    """Catmull-Rom's four taps along one axis at output positions `pos` (half-pixel
    centres, indices clamped at the borders): [(index, weight)] * 4."""
    src = (pos.to(torch.float32) + 0.5) * (n_in / n_out) - 0.5
    i0 = src.floor()
    t = src - i0
    i0 = i0.long()
    t2, t3 = t * t, t * t * t
    ws = ((-t3 + 2 * t2 - t) * 0.5, (3 * t3 - 5 * t2 + 2) * 0.5,
          (-3 * t3 + 4 * t2 + t) * 0.5, (t3 - t2) * 0.5)
    return [((i0 + d).clamp(0, n_in - 1), w) for d, w in zip((-1, 0, 1, 2), ws)]


def _axis_taps(upsample: str, n_in: int, n_out: int, pos: torch.Tensor):
    """[(index, weight)] of `upsample`'s taps along one axis at output positions `pos`."""
    if upsample == "bicubic":
        return _cubic_taps(n_in, n_out, pos)
    lo, hi, w = _taps(n_in, n_out, pos)
    return [(lo, 1 - w), (hi, w)]


def upsample_grid(arch: LatentArch, g: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., h, w) grids -> (..., height, width): `features`' fixed upsampling, batched."""
    if arch.upsample == "learned":
        raise ValueError("a learned upsampling upsamples the grids together (upsampling.py)")
    if g.shape[-2:] == (height, width):
        return g
    if arch.upsample == "bilinear":
        lead = g.shape[:-2]
        up = F.interpolate(g.reshape(-1, 1, *g.shape[-2:]), size=(height, width),
                           mode="bilinear", align_corners=False)
        return up.reshape(*lead, height, width)
    gh, gw = g.shape[-2:]
    ys, xs = torch.arange(height, device=g.device), torch.arange(width, device=g.device)
    return _separable(g, _axis_taps(arch.upsample, gh, height, ys),
                      _axis_taps(arch.upsample, gw, width, xs))


def _separable(g: torch.Tensor, ty, tx) -> torch.Tensor:
    """(..., h, w) -> (..., len(rows), len(cols)): the taps along the rows, then the columns."""
    r = sum(g.index_select(-2, i) * w[:, None] for i, w in ty)
    return sum(r.index_select(-1, i) * w for i, w in tx)


def features_at(arch: LatentArch, grids: list[torch.Tensor], height: int, width: int,
                idx: torch.Tensor | None) -> torch.Tensor:
    """(N, inputs): `features` at the flat pixel indices `idx` only (all pixels if None),
    interpolating each grid at just those pixels: a fit's step costs what it samples.
    Fixed upsamplings only."""
    if arch.upsample == "learned":
        raise ValueError("a learned upsampling has features_lattice, not features_at")
    if idx is None:
        return features(arch, grids, height, width).t()
    py, px = idx // width, idx % width
    cols = []
    for g in grids:
        gh, gw = g.shape
        if (gh, gw) == (height, width):
            cols.append(g.reshape(-1)[idx])
            continue
        flat = g.reshape(-1)
        if arch.upsample != "bilinear":
            ty = _axis_taps(arch.upsample, gh, height, py)
            tx = _axis_taps(arch.upsample, gw, width, px)
            cols.append(sum(sum(flat[yi * gw + xi] * xw for xi, xw in tx) * yw
                            for yi, yw in ty))
            continue
        y0, y1, wy = _taps(gh, height, py)
        x0, x1, wx = _taps(gw, width, px)
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
                     stride: int, phase: tuple[int, int], taps: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """(inputs, n): `features` at the pixels of a lattice (`lattice`), row-major. Each
    grid is interpolated along its rows, then its columns (bilinear is separable), so a
    step costs what it samples and its backward is two index-adds, not a scatter. A
    learned upsampling at stride 2 runs only the lattice's phase of its last step."""
    rows, cols = lattice(height, width, stride, phase)
    if arch.upsample == "learned":
        if (height, width) != tuple(grids[0].shape):
            raise ValueError("a learned upsampling's lattice is on the image's own grid")
        if stride == 2:
            x = upsampling.cascade(taps, grids, phase)
        else:
            x = upsampling.cascade(taps, grids)[:, rows, cols]
        if arch.coords:
            x = torch.cat([x, coordinates(height, width, x.device, rows, cols)])
        return x.reshape(arch.inputs, -1)
    py = torch.arange(height, device=grids[0].device)[rows]
    px = torch.arange(width, device=grids[0].device)[cols]
    out = []
    for g in grids:
        gh, gw = g.shape
        if (gh, gw) == (height, width):
            out.append(g[rows, cols])
            continue
        if arch.upsample != "bilinear":
            out.append(_separable(g, _axis_taps(arch.upsample, gh, height, py),
                                  _axis_taps(arch.upsample, gw, width, px)))
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
