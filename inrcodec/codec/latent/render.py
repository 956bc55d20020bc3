"""The decoder's pixels: the integer grids, upsampled (grids.py, upsampling.py) and put
through the synthesis (synthesis.py), in compiled passes over bands of rows, which threads
share (`THREADS`).

At the image's own size with the learned upsampling, one pass per band runs the cascade's
last x2 step for the band's rows only, puts grid 0 and the coordinates beside it and runs
the synthesis on it, so no full-size feature tensor exists. At another size, or with the
bilinear upsampling (from each grid), a band's planes are interpolated bilinearly as
torch's kernel does it (`_lerp`; the spec's reference, and the browser decoder's
arithmetic), then put through the same synthesis; a smaller render computes the
cascade's output only where its taps read it (`resampled_cascade`), a larger one the whole
output once. The
bicubic upsampling (a study's) takes grids.features, torch's, the one path here that
imports torch.

The compiled kernels, and the arithmetic the spec pins, are render_kernels.py's.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import upsampling
from .config import LatentArch
from .render_kernels import (BAND, CHUNK, axis, bands, chunks, kernel_args, planes,
                             resampled, resampled_cascade, stack_rows)

# Threads of a render: None, the CPUs this process may use; InrDataset's DataLoader workers
# set 1. Python threads running nogil kernels, not numba's parallel loops: numba's OpenMP
# pool does not survive a fork (a DataLoader's workers were killed: "fork() called from a
# process already using GNU OpenMP").
THREADS: int | None = None
_pool: tuple[int, ThreadPoolExecutor] | None = None


def threads() -> int:
    """The threads a render uses."""
    return THREADS or len(os.sched_getaffinity(0))


def executor(threads: int) -> ThreadPoolExecutor:
    global _pool
    if _pool is None or _pool[0] != os.getpid() or _pool[1]._max_workers < threads:
        _pool = (os.getpid(), ThreadPoolExecutor(threads))  # a fork's child makes its own
    return _pool[1]


def _split(kernel, n_tasks: int, *args) -> None:
    """kernel(b0, b1, *args) over tasks 0..n_tasks, in as many even parts as threads."""
    n = min(threads(), n_tasks)
    if n <= 1:
        kernel(0, n_tasks, *args)
        return
    cuts = [n_tasks * k // n for k in range(n + 1)]
    pool = executor(n)
    for f in [pool.submit(kernel, a, b, *args) for a, b in zip(cuts, cuts[1:])]:
        f.result()


def banded(arch: LatentArch, shapes: list[tuple[int, int]], height: int, width: int) -> bool:
    """Whether an image of grids of these shapes renders in Bands at height x width: the
    learned upsampling at the image's own size or a smaller one, where the bands run the
    cascade's last step themselves."""
    return arch.upsample == "learned" and len(shapes) > 1 \
        and ((height, width) == tuple(shapes[0]) or height * width < shapes[0][0] * shapes[0][1])


class _Coarse:
    """The grids coarser than grid 0 stepped up to grid 1's size, one above the other
    (`stacks[0]`, which the bands' last step reads), computed row by row as far as the
    rows of the grids read so far allow (`advance`): a reader may still be filling them.
    stacks[i] is grid i + 1 on top of stacks[i + 1] stepped up by the taps e[i + 1]."""

    def __init__(self, e: np.ndarray, grids: list[np.ndarray]):
        self.e, self.grids = e, grids
        self.shapes = [g.shape for g in grids]
        n = len(grids)
        self.stacks = [np.empty((n - i, h, w), np.float32)
                       for i, (h, w) in enumerate(self.shapes)]
        self.done = [0] * n

    def advance(self, rows: list[int]) -> int:
        """rows[i]: grid i + 1's rows read. Computes every row they allow; returns the rows
        of stacks[0] done."""
        for i in range(len(self.grids) - 1, -1, -1):
            h = self.shapes[i][0]
            can = rows[i]
            if i + 1 < len(self.grids):  # a fine row reads coarse rows up to o/2 + 2
                d, hn = self.done[i + 1], self.shapes[i + 1][0]
                can = min(can, h if d >= hn else max(0, 2 * d - 3))
            if can > self.done[i]:
                if i + 1 < len(self.grids):
                    stack_rows(self.grids[i], self.stacks[i + 1], self.e[i + 1],
                                self.stacks[i], self.done[i], can)
                else:
                    self.stacks[i][0, self.done[i]:can] = self.grids[i][self.done[i]:can]
                self.done[i] = can
        return self.done[0]

    def needs(self, o: int) -> int:
        """The rows of stacks[0] that the last step's fine row o reads."""
        return min((o >> 1) + 1 + (o & 1), self.shapes[0][0] - 1) + 1


class Bands:
    """The image in bands of BAND rows, each the cascade's last step, grid 0 and the
    synthesis: `bands(b0, b1)` renders bands b0..b1 into `out`. At the image's own size
    (render_kernels.bands) a band reads the fine rows under it; at a smaller size
    (render_kernels.resampled_cascade) the fine rows its bilinear taps read, no more.
    `complete`: the grids are whole. Otherwise they are int32 views that a reader is still
    filling (stream.py): `advance(rows)` computes the coarser grids' cascade as far as
    their rows read allow, and says how many bands can be rendered."""

    def __init__(self, arch: LatentArch, theta: np.ndarray, grids: list[np.ndarray],
                 height: int, width: int, complete: bool = True):
        self.net, self.dims, self.sine, self.w0 = kernel_args(arch, theta)
        e = self.net[0][-arch.up_params:].reshape(-1, upsampling.TAPS)
        self.e, self.coarse = e[0].copy(), _Coarse(e, grids[1:])
        self.grid0, self.coords = grids[0], arch.coords
        self.height, self.width = height, width
        self.own = (height, width) == tuple(grids[0].shape)
        # the bilinear taps of a smaller size: per output row and column
        self.taps = None if self.own else (*axis(grids[0].shape[0], height),
                                           *axis(grids[0].shape[1], width))
        self.n = -(-height // BAND)
        self.out = np.empty((height * width, 3), np.uint8)
        self.ready = 0
        if complete:
            self.advance([g.shape[0] for g in grids])

    def rows(self, b: int) -> int:
        """The output rows up to band b's last."""
        return min(self.height, (b + 1) * BAND)

    def last(self, b: int) -> int:
        """The last fine row (grid 0's, and the cascade's) band b reads."""
        o = self.rows(b) - 1
        return o if self.own else int(self.taps[1][o])

    def advance(self, rows: list[int]) -> int:
        """rows[k]: grid k's rows read. The bands that can be rendered, from the first."""
        done = self.coarse.advance(rows[1:])
        while self.ready < self.n and self.last(self.ready) < rows[0] \
                and self.coarse.needs(self.last(self.ready)) <= done:
            self.ready += 1
        return self.ready

    def __call__(self, b0: int, b1: int) -> None:
        stack = self.coarse.stacks[0]
        if self.own:
            bands(b0, b1, self.grid0, stack, self.e, self.coords, self.dims, self.net,
                  self.sine, self.w0, self.out)
        else:
            resampled_cascade(b0, b1, self.grid0, stack, self.e, *self.taps, self.coords,
                              self.height, self.width, self.dims, self.net, self.sine,
                              self.w0, self.out)

    def image(self) -> np.ndarray:
        return self.out.reshape(self.height, self.width, 3)


def render(arch: LatentArch, theta: np.ndarray, grids: list[np.ndarray], height: int,
           width: int) -> np.ndarray:
    """(height, width, 3) uint8: the decoded image."""
    gs = [np.ascontiguousarray(g, dtype=np.float32) for g in grids]
    if banded(arch, [g.shape for g in gs], height, width):
        b = Bands(arch, theta, gs, height, width)
        _split(b, b.n)
        return b.image()
    net, dims, sine, w0 = kernel_args(arch, theta)
    theta = net[0]
    out = np.empty((height * width, 3), np.uint8)
    if arch.upsample in ("learned", "bilinear"):  # each plane resampled
        if arch.upsample == "learned":  # larger: the cascade's whole output, once
            e = theta[-arch.up_params:].reshape(-1, upsampling.TAPS)
            x = gs[-1][None]
            for k in range(len(gs) - 2, -1, -1):
                y, _ = upsampling.step(x, e[k], gs[k].shape)
                x = np.concatenate([gs[k][None], y])
            gs = list(x)
        _split(resampled, -(-height // BAND), *planes(gs, height, width), arch.coords,
               height, width, dims, net, sine, w0, out)
    else:  # bicubic: torch's interpolation (the one path of the decoder that imports it)
        import torch

        from .grids import features
        t = torch.from_numpy(theta)
        taps = t[-arch.up_params:] if arch.up_params else None
        with torch.no_grad():
            f = features(arch, [torch.from_numpy(g) for g in gs], height, width, taps)
        _split(chunks, -(-height * width // CHUNK), f.numpy(), dims, net, sine, w0, out)
    return out.reshape(height, width, 3)
