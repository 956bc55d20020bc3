"""The latent mode's learned upsampling (format 7, LatentArch.upsample "learned"): a cascade of
x2 steps, one per grid, each a separable symmetric 8-tap transposed convolution with
replicated borders (Cool-chic's), whose 4 free taps per step are parameters of the
synthesis (a shared model's init, per-image deltas in the file).

Step k takes the stack of grids k+1.. (already at grid k+1's size) to grid k's size and puts
grid k on top; the last step gives every grid at the image's size. Along one axis, with the
coarse samples x[.] (index clamped to the grid) and taps e = (e0, e1, e2, e3):

    y[2i]     = e0 x[i-2] + e1 x[i-1] + e2 x[i]   + e3 x[i+1]
    y[2i + 1] = e3 x[i-1] + e2 x[i]   + e1 x[i+1] + e0 x[i+2]

then y is cropped to the finer grid's size (grid k is ceil(H / 2^k) rows). Fine sample 2i sits
a quarter of a coarse cell before coarse sample i, so e = (0, 1/4, 3/4, 0) is bilinear
(BILINEAR). The rows are filtered first, then the columns, each in float32 in the order
written (bitstream_spec/latent_mode.md, "Learned upsampling").

A fit's step reads one stride-2 lattice of pixels: the last step then computes only the
lattice's phase (`lattice_features`), a quarter of the work. Forward and backward are numba
kernels; torch's convolutions of one channel ran 20x slower (measured).
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numba
import numpy as np

if TYPE_CHECKING:
    import torch

BILINEAR = (0.0, 0.25, 0.75, 0.0)
TAPS = 4
# The forward is the decoder's: strict IEEE float32 (no fused multiply-add, no reassociation),
# the same on every CPU. The backward is the encoder's alone: fast math.


def init(levels: int) -> torch.Tensor:
    """Every step at bilinear, flat: step 0 (grid 1 -> grid 0) first."""
    import torch
    return torch.tensor(BILINEAR, dtype=torch.float32).repeat(levels - 1)


# -- kernels: x (C, n, m) float32; `phase` -1: both phases (2n outputs), 0 or 1: that one (n) --
@numba.njit(nogil=True, inline="always")
def _rows_fwd_c(x, e, phase, y, c):
    n = x.shape[1]
    m = x.shape[2]
    for o in range(y.shape[1]):
        i, r = (o >> 1, o & 1) if phase < 0 else (o, phase)
        row = y[c, o]
        for d in range(4):
            s = min(max(i - 2 + d + r, 0), n - 1)
            t = e[d] if r == 0 else e[3 - d]
            src = x[c, s]
            for j in range(m):
                row[j] += t * src[j]


@numba.njit(cache=True, nogil=True)
def _rows_fwd(x, e, phase, y):
    for c in range(x.shape[0]):
        _rows_fwd_c(x, e, phase, y, c)


@numba.njit(cache=True, nogil=True, parallel=True)
def _rows_fwd_parallel(x, e, phase, y):
    """_rows_fwd, its channels on numba's threads (the fit's; the decoder stays serial)."""
    for c in numba.prange(x.shape[0]):
        _rows_fwd_c(x, e, phase, y, c)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _rows_bwd(x, e, phase, gy, gx, ge):
    c_, n, m = x.shape
    for c in range(c_):
        for o in range(gy.shape[1]):
            i, r = (o >> 1, o & 1) if phase < 0 else (o, phase)
            g = gy[c, o]
            for d in range(4):
                s = min(max(i - 2 + d + r, 0), n - 1)
                k = d if r == 0 else 3 - d
                t = e[k]
                src, dst = x[c, s], gx[c, s]
                acc = np.float32(0.0)
                for j in range(m):
                    dst[j] += t * g[j]
                    acc += g[j] * src[j]
                ge[k] += acc


@numba.njit(cache=True, nogil=True)
def _pad(src, buf):
    n = src.shape[0]
    buf[0] = buf[1] = src[0]
    buf[2:n + 2] = src
    buf[n + 2] = buf[n + 3] = src[n - 1]


@numba.njit(nogil=True, inline="always")
def _cols_fwd_c(x, e, phase, y, c):
    n, m = x.shape[1], x.shape[2]
    xp = np.empty(m + 4, np.float32)
    e0, e1, e2, e3 = e[0], e[1], e[2], e[3]
    for row in range(n):
        _pad(x[c, row], xp)
        out = y[c, row]
        if phase < 0:
            for i in range(m):
                out[2 * i] = e0 * xp[i] + e1 * xp[i + 1] + e2 * xp[i + 2] + e3 * xp[i + 3]
                out[2 * i + 1] = (e3 * xp[i + 1] + e2 * xp[i + 2] + e1 * xp[i + 3]
                                  + e0 * xp[i + 4])
        elif phase == 0:
            for i in range(m):
                out[i] = e0 * xp[i] + e1 * xp[i + 1] + e2 * xp[i + 2] + e3 * xp[i + 3]
        else:
            for i in range(m):
                out[i] = e3 * xp[i + 1] + e2 * xp[i + 2] + e1 * xp[i + 3] + e0 * xp[i + 4]


@numba.njit(cache=True, nogil=True)
def _cols_fwd(x, e, phase, y):
    for c in range(x.shape[0]):
        _cols_fwd_c(x, e, phase, y, c)


@numba.njit(cache=True, nogil=True, parallel=True)
def _cols_fwd_parallel(x, e, phase, y):
    """_cols_fwd, its channels on numba's threads."""
    for c in numba.prange(x.shape[0]):
        _cols_fwd_c(x, e, phase, y, c)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _cols_bwd(x, e, phase, gy, gx, ge):
    c_, n, m = x.shape
    xp = np.empty(m + 4, np.float32)
    gp = np.empty(m + 4, np.float32)
    ga = np.zeros(m + 8, np.float32)  # the even outputs' gradient, 4 zeros either side
    gb = np.zeros(m + 8, np.float32)  # the odd ones'
    e0, e1, e2, e3 = e[0], e[1], e[2], e[3]
    a0 = a1 = a2 = a3 = np.float32(0.0)
    for c in range(c_):
        for row in range(n):
            _pad(x[c, row], xp)
            g = gy[c, row]
            if phase < 0:
                ga[4:m + 4] = g[0::2]
                gb[4:m + 4] = g[1::2]
            elif phase == 0:
                ga[4:m + 4] = g
            else:
                gb[4:m + 4] = g
            # the padded input's gradient: even output i read xp[i + d] with e_d, odd output
            # i read xp[i + 1 + d] with e_(3-d); and the taps'
            if phase <= 0:
                for p in range(m + 4):
                    gp[p] = e0 * ga[p + 4] + e1 * ga[p + 3] + e2 * ga[p + 2] + e3 * ga[p + 1]
                for i in range(m):
                    u = ga[i + 4]
                    a0 += u * xp[i]
                    a1 += u * xp[i + 1]
                    a2 += u * xp[i + 2]
                    a3 += u * xp[i + 3]
            else:
                gp[:] = 0.0
            if phase != 0:
                for p in range(m + 4):
                    gp[p] += e3 * gb[p + 3] + e2 * gb[p + 2] + e1 * gb[p + 1] + e0 * gb[p]
                for i in range(m):
                    v = gb[i + 4]
                    a0 += v * xp[i + 4]
                    a1 += v * xp[i + 3]
                    a2 += v * xp[i + 2]
                    a3 += v * xp[i + 1]
            dst = gx[c, row]  # written, not added to: gx need not be zeroed
            if m > 1:
                dst[0] = gp[0] + gp[1] + gp[2]
                dst[1:m - 1] = gp[3:m + 1]
                dst[m - 1] = gp[m + 1] + gp[m + 2] + gp[m + 3]
            else:
                dst[0] = gp[0] + gp[1] + gp[2] + gp[3] + gp[4]
    ge[0] += a0
    ge[1] += a1
    ge[2] += a2
    ge[3] += a3


def _rows(x: np.ndarray, e: np.ndarray, phase: int, parallel: bool) -> np.ndarray:
    c, n, m = x.shape
    y = np.zeros((c, 2 * n if phase < 0 else n, m), np.float32)
    (_rows_fwd_parallel if parallel else _rows_fwd)(x, e, phase, y)
    return y


def _cols(x: np.ndarray, e: np.ndarray, phase: int, parallel: bool) -> np.ndarray:
    c, n, m = x.shape
    y = np.empty((c, n, 2 * m if phase < 0 else m), np.float32)
    (_cols_fwd_parallel if parallel else _cols_fwd)(x, e, phase, y)
    return y


def _crop(at: tuple[int, int], phase: tuple[int, int]) -> tuple[int, int]:
    """Where a crop starting at fine sample `at` (even) starts in a step's output."""
    return tuple(a if p < 0 else a // 2 for a, p in zip(at, phase))


def step(x: np.ndarray, e: np.ndarray, size: tuple[int, int],
         phase: tuple[int, int] | None = None, at: tuple[int, int] = (0, 0),
         parallel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One x2 step of (C, h, w) float32 to `size` (the fine samples from `at` on, an even
    offset: a window of the grid, tiled.py's), or only the fine samples at `phase`
    (py, px) (rows py, py + 2, ..., likewise the columns): (output, the rows pass's
    output, which the backward reads). `parallel`: the channels on numba's threads, the
    same sums (the fit's; numba's pool does not survive a fork, which a decoder in a
    DataLoader's worker meets)."""
    py, px = (-1, -1) if phase is None else phase
    r = _rows(x, e, py, parallel)
    y = _cols(r, e, px, parallel)
    hh = size[0] if py < 0 else (size[0] - py + 1) // 2
    ww = size[1] if px < 0 else (size[1] - px + 1) // 2
    oy, ox = _crop(at, (py, px))
    return np.ascontiguousarray(y[:, oy:oy + hh, ox:ox + ww]), r


def step_backward(x, e, r, gy: np.ndarray, phase=None, at=(0, 0)
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (for x, for e) of `step` given its output's gradient `gy`."""
    py, px = (-1, -1) if phase is None else phase
    g = np.zeros((r.shape[0], r.shape[1], r.shape[2] * (2 if px < 0 else 1)), np.float32)
    oy, ox = _crop(at, (py, px))
    g[:, oy:oy + gy.shape[1], ox:ox + gy.shape[2]] = gy
    ge = np.zeros(4, np.float32)
    gr = np.empty_like(r)
    _cols_bwd(r, e, px, g, gr, ge)
    gx = np.zeros_like(x)
    _rows_bwd(x, e, py, gr, gx, ge)
    return gx, ge


@functools.cache
def _cascade_function():
    """The cascade as a torch autograd Function (built on first use: the decoder, which
    runs `step` alone, never imports torch)."""
    import torch

    class _Cascade(torch.autograd.Function):
        """The cascade at one phase of the last step (or all of it): taps, grids (each
        (B, h_k, w_k)) -> (B, L, h, w). The batch's images share the taps."""

        @staticmethod
        def forward(ctx, taps, phase, at, *grids):
            e = taps.detach().contiguous().numpy().reshape(-1, TAPS)
            qs = [g.detach().contiguous().numpy() for g in grids]
            parallel = torch.get_num_threads() > 1
            if parallel:
                from .rate import _start_numba_threads  # its threads asleep when idle
                _start_numba_threads()
            b = qs[0].shape[0]
            x, saved = qs[-1][:, None], []
            for k in range(len(qs) - 2, -1, -1):
                ph = phase if k == 0 else None
                flat = x.reshape(-1, *x.shape[2:])
                y, r = step(flat, e[k], qs[k].shape[1:], ph, at[k], parallel)
                saved.append((flat, r, ph, at[k]))
                top = qs[k] if ph is None else qs[k][:, ph[0]::2, ph[1]::2]
                x = np.concatenate([top[:, None], y.reshape(b, -1, *y.shape[1:])], 1)
            ctx.saved = saved, e, [g.shape for g in grids]
            return torch.from_numpy(x)

        @staticmethod
        def backward(ctx, gout):
            saved, e, shapes = ctx.saved
            g = gout.contiguous().numpy()
            b = g.shape[0]
            ge = np.zeros_like(e)
            gq = [None] * len(shapes)
            for k, (x, r, ph, a) in zip(range(len(shapes) - 1), reversed(saved)):
                top = torch.from_numpy(np.ascontiguousarray(g[:, 0]))
                if ph is None:
                    gq[k] = top
                else:
                    gq[k] = torch.zeros(shapes[k])
                    gq[k][:, ph[0]::2, ph[1]::2] = top
                rest = np.ascontiguousarray(g[:, 1:]).reshape(-1, *g.shape[2:])
                gx, ge[k] = step_backward(x, e[k], r, rest, ph, a)
                g = gx.reshape(b, -1, *gx.shape[1:])
            gq[-1] = torch.from_numpy(np.ascontiguousarray(g[:, 0]))
            return (torch.from_numpy(ge.reshape(-1)), None, None, *gq)
    return _Cascade


def cascade(taps: torch.Tensor, grids: list[torch.Tensor],
            phase: tuple[int, int] | None = None,
            at: list[tuple[int, int]] | None = None) -> torch.Tensor:
    """(L, H, W): every grid at the image's size through the learned steps (`taps`: flat,
    4 per step, step 0 first), or (L, h, w) at one stride-2 `phase` (py, px) of it. Grids
    with a leading batch dimension give (B, L, ...).

    Windows of the grids give the cascade over grid 0's window alone, exactly as the whole
    image's where each window holds what its finer one's steps read (tiled.windows): `at`,
    per step k, where grid k's window starts in the x2 output of grid k+1's (even)."""
    if grids[0].dim() == 2:
        return cascade(taps, [g[None] for g in grids], phase, at)[0]
    if len(grids) == 1:
        g = grids[0]
        return (g if phase is None else g[:, phase[0]::2, phase[1]::2])[:, None]
    at = tuple(at) if at is not None else ((0, 0),) * (len(grids) - 1)
    return _cascade_function().apply(taps, phase, at, *grids)
