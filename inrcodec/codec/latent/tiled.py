"""A large image's fit in tiles: each step moves the latents of one tile, not the whole
image's, so a step costs a tile's pixels and the fit's memory stays bounded.

The tiles partition the image into squares of TILE pixels (the last row and column
shorter); TILE is a multiple of the coarsest grid's cell, so the tiles partition every
grid too. A step at a tile reads, of each grid, the window of latents that the
upsampling cascade over the tile reads (`windows`: the tile's own cells and REACH more
on each side per step of the cascade), so the tile's features are exactly the whole
image's. Those latents go through the rounding proxy and the rate term as a small
image's would; the distortion is on the tile's own pixels (a stride-2 lattice, its
phase cycling), and only the tile's own latents move, by Adam with the tile's own step
count. Grid 0 stays at zero: fits of whole photos leave it at zero almost everywhere (0
to 3% of its latents at qualities 5 to 80 on development photos), and the rate and
noise of three latents in four are then not computed.

The tiles are visited in rounds, every tile once in an order drawn from the seed; the
shared synthesis (and an ARM the fit owns) takes one step per round, on the gradient
of the whole round: of the whole image, as in fit.fit. The learning rate and the
rounding proxy's temperature follow the whole fit's steps.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from . import rate, synthesis, upsampling
from .config import LatentArch, LatentFit
from .layout import grid_shapes

TILE = 512  # a tile's side in pixels: a multiple of 2^(levels - 1) for every arch we ship
STRIDE = 2  # the distortion's lattice: a quarter of a tile's pixels a step
REACH = 2  # coarse cells an upsampling step reads beyond its output's (upsampling.py)
ADAM = (0.9, 0.999, 1e-8)  # the latents' Adam: torch's defaults, as fit.fit's


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


class _Latents:
    """The image's latent grids, with their Adam moments and each tile's step count: a
    tile's latents move as in a fit of their own."""

    def __init__(self, shapes, fs: LatentFit, dev, n_tiles: int, fine: bool):
        self.lat = [torch.zeros(s, device=dev) for s in shapes]
        self.m1 = [torch.zeros(s, device=dev) for s in shapes]
        self.m2 = [torch.zeros(s, device=dev) for s in shapes]
        self.lrs = [fs.lr_latent] + [fs.lr_latent * fs.coarse_lr_factor] * (len(shapes) - 1)
        self.visits = np.zeros(n_tiles, np.int64)
        self.first = 1 - fine  # the first grid that moves

    def window(self, wins) -> list[torch.Tensor]:
        """The moving grids' windows, as leaves of this step's graph."""
        return [g[r0:r1, c0:c1].clone().requires_grad_(True) for g, ((r0, r1), (c0, c1))
                in zip(self.lat[self.first:], wins[self.first:])]

    @torch.no_grad()
    def step(self, i: int, box, wins, leaves: list[torch.Tensor], f: float) -> None:
        """Adam on tile i's own latents, from its window's gradient, at f x the rate."""
        self.visits[i] += 1
        b1, b2, eps = ADAM
        c1, c2 = 1 - b1 ** self.visits[i], 1 - b2 ** self.visits[i]
        for k, v in enumerate(leaves, self.first):
            ry, rx = _own(box, k)
            (r0, _), (c0, _) = wins[k]
            g = v.grad[ry.start - r0:ry.stop - r0, rx.start - c0:rx.stop - c0]
            a, s = self.m1[k][ry, rx], self.m2[k][ry, rx]
            a.mul_(b1).add_(g, alpha=1 - b1)
            s.mul_(b2).addcmul_(g, g, value=1 - b2)
            self.lat[k][ry, rx].addcdiv_(a, s.div(c2).sqrt_().add_(eps),
                                         value=-self.lrs[k] * f / c1)


def _distortion(arch: LatentArch, theta, q, box, at, p, stride: int, full, size):
    """The synthesis's MSE on the tile's lattice at phase p: the cascade over the tile's
    windows (its last step at the stride-2 phase under the lattice), the pixels'
    coordinates in the whole image of `size` (h, w)."""
    from .grids import coordinates
    y0, y1, x0, x1 = box
    x = upsampling.cascade(synthesis.taps(arch, theta), q, (p[0] & 1, p[1] & 1), at)
    if stride == 4:
        x = x[:, p[0] >> 1::2, p[1] >> 1::2]
    rows, cols = slice(y0 + p[0], y1, stride), slice(x0 + p[1], x1, stride)
    if arch.coords:
        x = torch.cat([x, coordinates(*size, x.device, rows, cols)])
    target = full[:, rows, cols].float().div_(255.0)
    return synthesis.mse(arch, theta, x.reshape(x.shape[0], -1), target.reshape(3, -1))


def fit_tiled(img: np.ndarray, arch: LatentArch, fs: LatentFit, rounds: int,
              progress: Callable[[float, int, float], None] | None = None,
              start=None, device=None, steer=None, size: int | None = None,
              fine: bool = False, stride: int | None = None):
    """fit.fit for a large image: `rounds` visits to each tile (fs.steps is not read),
    on lattices of `stride` (2, or 4 with grid 0 at zero). With `fine` grid 0 moves too.
    Returns fit.Fitted."""
    from ..schedule import cosine_decay
    from .fit import fitted, networks, phases, quantised, uniform_noise
    size, stride = size or TILE, stride or STRIDE
    if arch.upsample != "learned" or stride not in (2, 4) or (stride == 4 and fine):
        raise ValueError("the tiled fit is the learned upsampling's, on stride-2 lattices "
                         "(or stride 4, with grid 0 at zero)")
    if size % (1 << (arch.levels - 1)):
        raise ValueError(f"tiles must be multiples of {1 << (arch.levels - 1)} pixels")
    dev = torch.device("cpu") if device is None else torch.device(device)
    h, w = img.shape[:2]
    parts = tiles(h, w, size, 1 << (arch.levels - 1))
    n, total = len(parts), rounds * len(parts)
    fs = replace(fs, steps=total)  # the schedules (quantised's temperature) span every step
    noise = None if dev.type == "cpu" else torch.Generator(device=dev).manual_seed(fs.seed)
    full = torch.from_numpy(img.copy()).permute(2, 0, 1).to(dev)  # uint8: a quarter of float's
    shapes = grid_shapes(h, w, arch.levels)
    nets, armp = networks(arch, fs, start, dev, torch.Generator().manual_seed(fs.seed))
    shared = [x for x in nets.leaves + nets.others]  # the networks the round moves
    grids = _Latents(shapes, fs, dev, n, fine)
    plans = [windows(box, shapes) for box in parts]
    canvases: dict[tuple, rate.Canvas] = {}
    rng = np.random.default_rng(fs.seed)
    lam = fs.lam
    with rate.threads(torch.get_num_threads()):
        for t in range(total):
            if t % n == 0:  # a round: every tile once, the networks one step
                tour = rng.permutation(n)
                for x in shared:
                    x.grad = None
                if steer is not None:
                    lam = steer(t // n, grids.lat)
            i = int(tour[t % n])
            box, (wins, at) = parts[i], plans[i]
            y0, y1, x0, x1 = box
            leaves = grids.window(wins)
            wshapes = tuple(tuple(v.shape) for v in leaves)
            sizes = [a * b for a, b in wshapes]
            u = uniform_noise(sum(sizes), fs.seed, t) if dev.type == "cpu" else \
                torch.rand(sum(sizes), generator=noise, device=dev).sub_(0.5)
            q = quantised(leaves, fs, t, u.split(sizes))
            phs = [p for p in phases(stride) if p[0] < y1 - y0 and p[1] < x1 - x0]
            theta = nets.theta()
            mse = _distortion(arch, theta, [torch.zeros(y1 - y0, x1 - x0, device=dev)] * (
                not fine) + q, box, at, phs[grids.visits[i] % len(phs)], stride, full, (h, w))
            if wshapes not in canvases:
                canvases[wshapes] = rate.Canvas(list(wshapes), dev, fs.seed)
            bits = rate.bits(canvases[wshapes], q, armp, False, fs.rate_sample)
            before = [None if x.grad is None else x.grad.clone() for x in shared]
            (mse + lam * bits / ((y1 - y0) * (x1 - x0))).backward()
            with torch.no_grad():  # the round's sum, each tile by its share of the image
                share = (y1 - y0) * (x1 - x0) / (h * w)
                for x, g in zip(shared, before):
                    x.grad.sub_(g).mul_(share).add_(g) if g is not None else x.grad.mul_(share)
            f = cosine_decay(t, total, 0.02)
            grids.step(i, box, wins, leaves, f)
            if t % n == n - 1:
                nets.step(f)
            if progress is not None:
                progress(t + 1, total, float(mse.detach()))
    return fitted(grids.lat, nets, armp, start)
