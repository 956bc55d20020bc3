"""A large image's fit, each step computed tile by tile: the same steps as fit.fit's, with
grid 0 at zero, in memory that does not grow with the tiles' work.

The tiles partition the image into squares of about TILE pixels, as even as whole cells
of the coarsest grid allow, so they partition every grid too. For a tile, a step reads of
each grid the window of latents that the upsampling cascade over the tile reads
(`windows`: the tile's own cells and REACH more on each side per x2 step), so the tile's
features are exactly the whole image's. The distortion is summed over the tile's pixels
on the step's lattice (stride 2, or 4: LatentFit.tile_stride); the rate counts the bits
of the tile's own latents (their contexts read the window's margins, and pass them
gradient). Each tile's gradient
is added into the whole grids' and the networks'; after the last tile, one Adam step
moves the latents and one step the networks: the whole image's step
(`tests/test_tiled.py` holds a step in 12 tiles to the step in one).

Grid 0 stays at zero: whole-image fits leave it at zero almost everywhere (0 to 3% of
its latents at qualities 5 to 80 on development photos), and without it a step skips
the noise, rate and update of three latents in four. On a 1 MP crop of a native photo
(quality 5, 900 steps) that costs nothing measurable: loss -0.08% against fit.fit's;
but on a photo of fine texture (LadyBird, 4.1 MP) the curve is 4.2% worse at stride 2,
where the step is otherwise the whole fit's, so grid 0 is what it misses (at high
quality: 0.3 dB at 0.33 bpp), and 9.9% worse at stride 4.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from . import rate, synthesis, upsampling
from .config import LatentArch, LatentFit
from .layout import grid_shapes

TILE = 512  # a tile's side in pixels: a multiple of 2^(levels - 1) for every arch we ship
REACH = 2  # coarse cells an upsampling step reads beyond its output's (upsampling.py)


def tiles(h: int, w: int, size: int = TILE, unit: int = 64) -> list[tuple[int, int, int, int]]:
    """The tiles (y0, y1, x0, x1) of an h x w image, row by row: as few per axis as keep
    them within `size`, as even as whole `unit`s allow (no sliver at the edge)."""
    def cuts(n: int) -> list[int]:
        cells = -(-n // unit)
        k = -(-cells // (size // unit))
        ends = np.cumsum([cells // k + (j < cells % k) for j in range(k)]) * unit
        return [0] + [min(int(e), n) for e in ends]
    ys, xs = cuts(h), cuts(w)
    return [(ys[a], ys[a + 1], xs[b], xs[b + 1])
            for a in range(len(ys) - 1) for b in range(len(xs) - 1)]


def windows(box: tuple[int, int, int, int], shapes: list[tuple[int, int]]):
    """Per grid, the window ((r0, r1), (c0, c1)) of cells that the cascade over the tile
    `box` reads, grid 0's the tile itself, and per step k where grid k's window starts in
    the x2 output of grid k+1's (upsampling.cascade's `at`)."""
    wins, at = [((box[0], box[1]), (box[2], box[3]))], []
    for n_rows, n_cols in shapes[1:]:
        (a, b), (c, d) = wins[-1]
        wy = (max(0, (a >> 1) - REACH), min(n_rows, ((b - 1) >> 1) + REACH + 1))
        wx = (max(0, (c >> 1) - REACH), min(n_cols, ((d - 1) >> 1) + REACH + 1))
        at.append((a - 2 * wy[0], c - 2 * wx[0]))
        wins.append((wy, wx))
    return wins, at


def _own(box: tuple[int, int, int, int], k: int) -> tuple[slice, slice]:
    """Grid k's cells under the tile (a multiple of 2^k from the image's edge, or it)."""
    return slice(box[0] >> k, -(-box[1] >> k)), slice(box[2] >> k, -(-box[3] >> k))


def _key(box, wins, first: int) -> tuple:
    """What makes a tile's canvas: its windows' shapes and where its own cells lie in them
    (tiles alike share one)."""
    shapes = tuple((r1 - r0, c1 - c0) for (r0, r1), (c0, c1) in wins[first:])
    own = tuple((_own(box, k)[0].start - wins[k][0][0], _own(box, k)[0].stop - wins[k][0][0],
                 _own(box, k)[1].start - wins[k][1][0], _own(box, k)[1].stop - wins[k][1][0])
                for k in range(first, len(wins)))
    return shapes, own


def _canvas(wshapes, wins, box, shapes_from: int, dev, seed: int) -> rate.Canvas:
    """The rate canvas of a tile's windows that counts the bits of the tile's own latents
    alone (their contexts still read, and pass gradient to, the windows' margins): over a
    round every latent's bits are counted once."""
    c = rate.Canvas(list(wshapes), dev, seed)
    valid = torch.zeros(c.height, c.width, device=dev)
    for k, ((h, w), (y, x)) in enumerate(zip(c.shapes, c.origins), shapes_from):
        ry, rx = _own(box, k)
        (r0, _), (c0, _) = wins[k]
        valid[y + ry.start - r0:y + ry.stop - r0, x + rx.start - c0:x + rx.stop - c0] = 1
    c.valid = valid.reshape(-1)
    return c


def _distortion(arch: LatentArch, theta, q, box, at, p, stride: int, full, size):
    """The synthesis's squared error summed over the tile's pixels on the lattice of
    `stride` at phase p: the cascade over the tile's windows (its last step at that
    phase), the pixels' coordinates in the whole image of `size` (h, w)."""
    from .grids import coordinates
    y0, y1, x0, x1 = box
    x = upsampling.cascade(synthesis.taps(arch, theta), q, (p[0] & 1, p[1] & 1), at)
    if stride == 4:  # the cascade's last step at the stride-2 phase under the lattice
        x = x[:, p[0] >> 1::2, p[1] >> 1::2]
    rows, cols = slice(y0 + p[0], y1, stride), slice(x0 + p[1], x1, stride)
    if arch.coords:
        x = torch.cat([x, coordinates(*size, x.device, rows, cols)])
    target = full[:, rows, cols].float().div_(255.0)
    n = target.shape[1] * target.shape[2]
    return synthesis.mse(arch, theta, x.reshape(x.shape[0], -1), target.reshape(3, -1)) * n


class _Tiles:
    """An image's tiles, their windows and their rate canvases; `gradient` is one step's
    loss, tile by tile, its gradient summed into the grids' and the networks'."""

    def __init__(self, img: np.ndarray, arch: LatentArch, size: int, dev, seed: int):
        h, w = img.shape[:2]
        self.arch, self.size, self.dev, self.seed = arch, (h, w), dev, seed
        self.full = torch.from_numpy(img.copy()).permute(2, 0, 1).to(dev)  # uint8
        self.shapes = grid_shapes(h, w, arch.levels)
        self.parts = tiles(h, w, size, 1 << (arch.levels - 1))
        self.plans = [windows(box, self.shapes) for box in self.parts]
        self.canvases: dict[tuple, rate.Canvas] = {}

    def gradient(self, moving, u, nets, armp, fs: LatentFit, t: int, p, lam: float,
                 stride: int = 2) -> float:
        """Adds to the moving grids' (1..) .grad and the networks' the gradient of step t's
        MSE on the lattice of `stride` at phase p + lam x bits per pixel, with the noise `u`
        (per moving grid, its shape); returns that MSE."""
        from .fit import quantised
        (h, w), dev, sse = self.size, self.dev, 0.0
        n = len(range(p[0], h, stride)) * len(range(p[1], w, stride))
        for i, (box, (wins, at)) in enumerate(zip(self.parts, self.plans)):
            if p[0] >= box[1] - box[0] or p[1] >= box[3] - box[2]:
                continue  # no pixel of this tile on the lattice
            leaves = [g.detach()[r0:r1, c0:c1].clone().requires_grad_(True)
                      for g, ((r0, r1), (c0, c1)) in zip(moving, wins[1:])]
            q = quantised(leaves, fs, t, [v[r0:r1, c0:c1].reshape(-1)
                                          for v, ((r0, r1), (c0, c1)) in zip(u, wins[1:])])
            zero = torch.zeros(box[1] - box[0], box[3] - box[2], device=dev)
            e = _distortion(self.arch, nets.theta(), [zero] + q, box, at, p, stride,
                            self.full, self.size)
            key = _key(box, wins, 1)
            if key not in self.canvases:
                self.canvases[key] = _canvas(key[0], wins, box, 1, dev, self.seed + i)
            bits = rate.bits(self.canvases[key], q, armp, False, fs.rate_sample)
            (e / n + lam * bits / (h * w)).backward()
            with torch.no_grad():
                for g, v, ((r0, r1), (c0, c1)) in zip(moving, leaves, wins[1:]):
                    g.grad[r0:r1, c0:c1] += v.grad
            sse += float(e.detach())
        return sse / n


def fit_tiled(img: np.ndarray, arch: LatentArch, fs: LatentFit,
              progress: Callable[[float, int, float], None] | None = None,
              start=None, device=None, steer=None, size: int | None = None):
    """fit.fit with grid 0 at zero, each step computed tile by tile (fs.steps steps of the
    whole image, on lattices of fs.tile_stride). Returns fit.Fitted."""
    from ..schedule import cosine_decay
    from .fit import fitted, networks, phases, step_noise
    size, stride = size or TILE, fs.tile_stride
    if arch.upsample != "learned":
        raise ValueError("the tiled fit is the learned upsampling's")
    if size % (1 << (arch.levels - 1)):
        raise ValueError(f"tiles must be multiples of {1 << (arch.levels - 1)} pixels")
    dev = torch.device("cpu") if device is None else torch.device(device)
    h, w = img.shape[:2]
    parts = _Tiles(img, arch, size, dev, fs.seed)
    noise = None if dev.type == "cpu" else torch.Generator(device=dev).manual_seed(fs.seed)
    order = [p for p in phases(stride) if p[0] < h and p[1] < w]
    shapes = parts.shapes[1:]  # grid 0 stays at 0 (the module's docstring says why)
    lat = [torch.zeros(parts.shapes[0], device=dev)] + [
        torch.zeros(s, device=dev, requires_grad=True) for s in shapes]
    nets, armp = networks(arch, fs, start, dev, torch.Generator().manual_seed(fs.seed))
    opt = torch.optim.Adam(lat[1:], lr=fs.lr_latent * fs.coarse_lr_factor, foreach=True)
    base = [g["lr"] for g in opt.param_groups]
    sizes = [a * b for a, b in shapes]
    lam = fs.lam
    with rate.threads(torch.get_num_threads()):
        for t in range(fs.steps):
            f = cosine_decay(t, fs.steps, 0.02)
            for g, b in zip(opt.param_groups, base):
                g["lr"] = b * f
            u = step_noise(sum(sizes), fs, t, dev, noise)
            if steer is not None:
                lam = steer(t, lat)
            for g in lat[1:]:
                g.grad = torch.zeros_like(g) if g.grad is None else g.grad.zero_()
            nets.zero_grad()
            mse = parts.gradient(lat[1:], [v.view(s) for v, s in zip(u.split(sizes), shapes)],
                                 nets, armp, fs, t, order[t % len(order)], lam, stride)
            opt.step()
            nets.step(f)
            if progress is not None:
                progress(t + 1, fs.steps, mse)
    return fitted(lat, nets, armp, start)
