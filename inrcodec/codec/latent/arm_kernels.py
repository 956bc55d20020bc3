"""The ARM's schedule, compiled (numba): the kernels arm.py's writer and reader run.

The decoder walks the latents in coding order (each wavefront needs the last), each one's
context, fixed-point MLP, table choice and symbol in turn, all in one compiled call
(`decode_waves`, from arm.decode_grids). The writer knows every latent, so it
predicts all of them at once (`predict_grid`) and codes them in the same order in a few
large calls. Both run the same integer code. Most latents of a photo's fine grids have a
context of zeros (3 in 4 at the default quality): their prediction is the MLP's at zero,
computed once. The model's constants are defined here, for the kernels, and arm.py's.
"""
from __future__ import annotations

import numba
import numpy as np

from .. import rangecoder

N_CONTEXT = 12  # arm.CONTEXT's positions, in the order _gather reads them
FRAC = 8  # fixed point: a value v is stored as round(v * 2^FRAC)
CLIP = 127  # context latents are clipped to [-CLIP, CLIP] before the MLP
SCALES = 64  # the scale ladder's length (arm.SCALE_M)
BEYOND = -2  # decode_waves: a decoded latent beyond its grid's declared range


@numba.njit(cache=True, nogil=True, inline="always")
def _mlp(ctx, w1t, b1, w2, b2, acc):
    """ArmParams.predict's MLP on one context (float64 holding integers): its two outputs
    (mean, log2 scale) in units of 2^-FRAC. Every product and sum is an integer below 2^47,
    exact in float64 in any order, so this is ArmParams.predict to the bit, and its
    callers may let the compiler reorder the sums (fast math's reassociation and
    contraction: exact on such integers) to vectorise them. w1t: W1 transposed (12, H);
    acc: (H,) scratch."""
    hdim = b1.shape[0]
    for j in range(hdim):
        acc[j] = b1[j]
    for i in range(N_CONTEXT):
        c = ctx[i]
        for j in range(hdim):
            acc[j] += w1t[i, j] * c
    f0 = 0.0
    f1 = 0.0
    for j in range(hdim):
        h = max(acc[j], 0.0)
        f0 += h * w2[0, j]
        f1 += h * w2[1, j]
    return (np.int64(f0) >> FRAC) + b2[0], (np.int64(f1) >> FRAC) + b2[1]


@numba.njit(cache=True, nogil=True, inline="always")
def _finish(o0, o1, q, out, r):
    """The table choice of MLP outputs (o0, o1) for a grid of range q: out[r] = (mean's
    integer part, clamped to the range; quarter offset; scale index)."""
    mu4 = (o0 + (1 << (FRAC - 3))) >> (FRAC - 2)  # round to quarters
    mh = mu4 >> 2
    mi = min(max(mh, -q), q)
    out[r, 0] = mi
    out[r, 1] = (mu4 & 3) if mh == mi else 0
    out[r, 2] = min(max((o1 * 6) >> FRAC, 0), SCALES - 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _nonzero(buf, r0, s):
    """Whether any of a latent's context is not 0 (_gather's positions, unclipped): most
    are all zero, and this test is all they cost."""
    r1 = r0 + s
    r2 = r1 + s
    return (buf[r0] | buf[r0 + 1] | buf[r0 + 2] | buf[r0 + 3] | buf[r0 + 4] | buf[r1]
            | buf[r1 + 1] | buf[r1 + 2] | buf[r1 + 3] | buf[r1 + 4] | buf[r2]
            | buf[r2 + 1]) != 0


@numba.njit(cache=True, nogil=True, inline="always")
def _gather(buf, r0, s, ctx):
    """The clipped context of a latent into ctx (CONTEXT's order: two rows above at
    x-2..x+2, then the two latents to the left), from a zero-padded grid (2 rows above, 2
    columns either side) flat in `buf` with rows `s` apart, r0 the index of the context's
    first entry (padded row y, column x). Returns it packed into two words (a byte per
    value, the second word's bit 40 set), _predict's key."""
    r1 = r0 + s
    r2 = r1 + s
    k0 = np.uint64(0)
    k1 = np.uint64(1 << 40)
    for i in range(5):
        a = min(max(buf[r0 + i], -CLIP), CLIP)
        ctx[i] = a
        k0 |= np.uint64(a + 128) << np.uint64(8 * i)
    for i in range(3):
        a = min(max(buf[r1 + i], -CLIP), CLIP)
        ctx[5 + i] = a
        k0 |= np.uint64(a + 128) << np.uint64(8 * (5 + i))
    for i in range(2):
        a = min(max(buf[r1 + 3 + i], -CLIP), CLIP)
        ctx[8 + i] = a
        k1 |= np.uint64(a + 128) << np.uint64(8 * i)
        a = min(max(buf[r2 + i], -CLIP), CLIP)
        ctx[10 + i] = a
        k1 |= np.uint64(a + 128) << np.uint64(8 * (2 + i))
    return k0, k1


MEMO_BITS = 13  # _predict's table: 2^13 contexts
_H0 = np.uint64(0x9E3779B97F4A7C15)
_H1 = np.uint64(0xC2B2AE3D27D4EB4F)
_SHIFT = np.uint64(64 - MEMO_BITS)


def memo() -> tuple[np.ndarray, np.ndarray]:
    """An empty table for _predict: (keys, outputs)."""
    return (np.zeros((1 << MEMO_BITS, 2), np.uint64),
            np.zeros((1 << MEMO_BITS, 2), np.int64))


@numba.njit(cache=True, nogil=True, inline="always")
def _predict(buf, at, s, ctx, acc, w1t, b1, w2, b2, keys, outs):
    """_mlp of the context at `at` (_gather's), through a direct-mapped table of the
    contexts seen last (keys, outs: memo()'s): a photo's contexts repeat (about 3 in 4
    are found there), and the table holds the MLP's own outputs, so it changes nothing
    but the time."""
    k0, k1 = _gather(buf, at, s, ctx)
    h = ((k0 * _H0) ^ (k1 * _H1)) >> _SHIFT
    if keys[h, 0] == k0 and keys[h, 1] == k1:
        return outs[h, 0], outs[h, 1]
    o0, o1 = _mlp(ctx, w1t, b1, w2, b2, acc)
    keys[h, 0] = k0
    keys[h, 1] = k1
    outs[h, 0] = o0
    outs[h, 1] = o1
    return o0, o1


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _at_zero(w1t, b1, w2, b2):
    """The MLP's outputs for a context of zeros."""
    return _mlp(np.zeros(w1t.shape[0]), w1t, b1, w2, b2, np.empty(b1.shape[0]))


@numba.njit(cache=True, nogil=True)
def coding_order(shapes):
    """Index, into the grids' latents concatenated row-major, of each latent in coding
    order (wavefront t = 3y + x, then grid, then row)."""
    n_grids = shapes.shape[0]
    start = np.zeros(n_grids + 1, np.int64)
    n_wave = 0
    for g in range(n_grids):
        start[g + 1] = start[g] + shapes[g, 0] * shapes[g, 1]
        n_wave = max(n_wave, 3 * (shapes[g, 0] - 1) + shapes[g, 1])
    order = np.empty(start[n_grids], np.int64)
    n = 0
    for t in range(n_wave):
        for g in range(n_grids):
            h, w = shapes[g, 0], shapes[g, 1]
            for y in range(max(0, -(-(t - w + 1) // 3)), min(h - 1, t // 3) + 1):
                order[n] = start[g] + y * w + t - 3 * y
                n += 1
    return order


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def predict_grid(buf, off, h, w, qmax, w1t, b1, w2, b2, keys, outs, out, o):
    """The prediction (_finish's) of every latent of the grid at `off` in `buf` (padded's)
    into out[o:o + h * w] in row-major order, with each latent's symbol (latent - mean's
    integer part) in column 3."""
    ctx = np.empty(w1t.shape[0])
    acc = np.empty(b1.shape[0])
    z0, z1 = _at_zero(w1t, b1, w2, b2)
    s = w + 4
    for y in range(h):
        for x in range(w):
            r = o + y * w + x
            at = off + y * s + x
            if _nonzero(buf, at, s):
                o0, o1 = _predict(buf, at, s, ctx, acc, w1t, b1, w2, b2, keys, outs)
            else:
                o0, o1 = z0, z1
            _finish(o0, o1, qmax, out, r)
            out[r, 3] = buf[at + 2 * s + 2] - out[r, 0]


def weights(params) -> tuple[np.ndarray, ...]:
    """An arm.ArmParams as the kernels take it (_mlp)."""
    return (np.ascontiguousarray(params.w1.T, dtype=np.float64),
            params.b1.astype(np.float64), params.w2.astype(np.float64),
            params.b2.astype(np.int64))


def padded(shapes: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The grids zero-padded (2 rows above, 2 columns either side: (h + 2) x (w + 4) each),
    one after the other in one flat int32 buffer (int32 holds any latent): (the buffer,
    each grid's offset in it)."""
    sizes = [(h + 2) * (w + 4) for h, w in shapes]
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return np.zeros(int(offs[-1]), np.int32), offs[:-1]


def views(buf: np.ndarray, offs, shapes):
    """(offset, each grid's h x w view in the buffer)."""
    for o, (h, w) in zip(offs, shapes):
        yield o, buf[o:o + (h + 2) * (w + 4)].reshape(h + 2, w + 4)[2:, 2:w + 2]


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def decode_waves(words, st, buf, offs, shapes, qmaxes, peaks, w1t, b1, w2, b2, keys, outs,
                 cums, R, t0, t1):
    """The reader, in coding order (wavefront t = 3y + x, then grid, then row), for the
    wavefronts t0..t1 (a reader may stop and go on: its state is st, buf and peaks): each
    latent's prediction (_mlp, or the MLP's at a context of zeros), then its symbol
    (rangecoder.decode from the state `st`, looked for from the residual 0 out) into the
    grids (buf, offs: padded's), each grid's largest magnitude so far in `peaks`.
    0, or rangecoder.INVALID or BEYOND."""
    ctx = np.empty(w1t.shape[0])
    acc = np.empty(b1.shape[0])
    n_grids = shapes.shape[0]
    pred = np.empty((n_grids + 1, 3), np.int64)  # row g: grid g's at a context of zeros
    z0, z1 = _at_zero(w1t, b1, w2, b2)
    for g in range(n_grids):
        _finish(z0, z1, qmaxes[g], pred, g)
    for t in range(t0, t1):
        for g in range(n_grids):
            h, w = shapes[g, 0], shapes[g, 1]
            q = qmaxes[g]
            s = w + 4
            for y in range(max(0, -(-(t - w + 1) // 3)), min(h - 1, t // 3) + 1):
                at = offs[g] + y * s + t - 3 * y
                r = g
                if _nonzero(buf, at, s):
                    o0, o1 = _predict(buf, at, s, ctx, acc, w1t, b1, w2, b2, keys, outs)
                    _finish(o0, o1, q, pred, n_grids)
                    r = n_grids
                sym = rangecoder.decode(st, words, cums[pred[r, 2] * 4 + pred[r, 1]], R)
                if sym < 0:
                    return rangecoder.INVALID
                v = sym - R + pred[r, 0]
                a = abs(v)
                if a > q:
                    return BEYOND
                if a > peaks[g]:
                    peaks[g] = a
                buf[at + 2 * s + 2] = v
    return 0
