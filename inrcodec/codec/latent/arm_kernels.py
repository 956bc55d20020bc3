"""The ARM's schedule, compiled (numba): the kernels arm.py's writer and reader run.

The reader decodes the latents in coding order, wavefront by wavefront (`decode_waves`,
from arm.GridReader). A wavefront's contexts lie on earlier wavefronts only, so its
predictions are computed together before its symbols are decoded one by one: the
fixed-point MLP runs LANES contexts side by side (`_mlp_lanes`), on the latents whose
context is not all zero (most of a photo's grid 0); the others take the MLP's output at
zero, computed once. The writer knows every latent, so it predicts all of them at once
(`predict_grid`) and codes them in the same order in a few large calls. Both run the same
integer code. The model's constants are defined here, for the kernels, and arm.py's.
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
LANES = 64  # contexts whose MLP runs side by side
HMAX = (1 << 26) - 1  # the residual layer's outputs are clamped to [0, HMAX] (units 2^-FRAC)
HMAX_F = float(HMAX)
SHIFT = 1.0 / (1 << FRAC)  # x >> FRAC of an integer x in float64: floor(x * SHIFT), exact


@numba.njit(cache=True, nogil=True, inline="always")
def _mlp_lanes(ctx, m, w1t, b1, w2, b2, wr, br, acc, hb, ra, o0, o1):
    """ArmParams.predict's MLP on the contexts ctx[:, :m] (float64 holding integers): their
    two outputs (mean, log2 scale) in units of 2^-FRAC into o0[:m], o1[:m]. Every product
    and sum is an integer below 2^48, exact in float64 in any order, and a shift is the
    floor of an exact product by 2^-FRAC, so this is ArmParams.predict to the bit, and its
    callers may let the compiler reorder the sums (fast math's reassociation and
    contraction: exact on such integers) to vectorise them. w1t: W1 transposed (12, H);
    wr, br: the residual layer, or (0, 0) and (0,) without one; acc: (2, LANES), hb:
    (H, LANES), ra: (LANES,) scratch."""
    hdim = b1.shape[0]
    f0, f1 = 0, 1
    res = wr.shape[0] > 0
    for q in range(m):
        acc[f0, q] = 0.0
        acc[f1, q] = 0.0
    for j in range(hdim):  # a unit's 12 products, its ReLU and (one layer) its share of
        # the outputs, in one pass over the lanes
        w0, w1, w2_, w3, w4, w5 = w1t[0, j], w1t[1, j], w1t[2, j], w1t[3, j], w1t[4, j], \
            w1t[5, j]
        w6, w7, w8, w9, w10, w11 = w1t[6, j], w1t[7, j], w1t[8, j], w1t[9, j], w1t[10, j], \
            w1t[11, j]
        b, u, v = b1[j], w2[0, j], w2[1, j]
        for q in range(m):
            h = max(b + w0 * ctx[0, q] + w1 * ctx[1, q] + w2_ * ctx[2, q]
                    + w3 * ctx[3, q] + w4 * ctx[4, q] + w5 * ctx[5, q]
                    + w6 * ctx[6, q] + w7 * ctx[7, q] + w8 * ctx[8, q]
                    + w9 * ctx[9, q] + w10 * ctx[10, q] + w11 * ctx[11, q], 0.0)
            if res:
                hb[j, q] = h
            else:
                acc[f0, q] += h * u
                acc[f1, q] += h * v
    if res:  # h + ((Wr h) >> FRAC) + br, ReLU, at most HMAX; then the outputs
        for j in range(hdim):
            for q in range(m):
                ra[q] = 0.0
            k = 0
            while k + 4 <= hdim:  # four products a pass over the lanes: one store for four
                wa, wb, wc, wd = wr[j, k], wr[j, k + 1], wr[j, k + 2], wr[j, k + 3]
                for q in range(m):
                    ra[q] += (wa * hb[k, q] + wb * hb[k + 1, q]) \
                        + (wc * hb[k + 2, q] + wd * hb[k + 3, q])
                k += 4
            while k < hdim:
                w = wr[j, k]
                for q in range(m):
                    ra[q] += w * hb[k, q]
                k += 1
            b, u, v = br[j], w2[0, j], w2[1, j]
            for q in range(m):
                h = min(max(hb[j, q] + np.floor(ra[q] * SHIFT) + b, 0.0), HMAX_F)
                acc[f0, q] += h * u
                acc[f1, q] += h * v
    for q in range(m):
        o0[q] = (np.int64(acc[f0, q]) >> FRAC) + b2[0]
        o1[q] = (np.int64(acc[f1, q]) >> FRAC) + b2[1]


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
def _gather(buf, r0, s, ctx, q):
    """The clipped context of a latent into column q of ctx (CONTEXT's order: two rows
    above at x-2..x+2, then the two latents to the left), from a zero-padded grid (2 rows
    above, 2 columns either side) flat in `buf` with rows `s` apart, r0 the index of the
    context's first entry (padded row y, column x)."""
    r1 = r0 + s
    r2 = r1 + s
    for i in range(5):
        ctx[i, q] = min(max(buf[r0 + i], -CLIP), CLIP)
        ctx[5 + i, q] = min(max(buf[r1 + i], -CLIP), CLIP)
    for i in range(2):
        ctx[10 + i, q] = min(max(buf[r2 + i], -CLIP), CLIP)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _scratch(w1t, b1, w2, b2, wr, br, qmaxes):
    """_predict's scratch: (ctx, acc, hb, ra, o0, o1, lanes) for _mlp_lanes, and each
    grid's prediction (_finish's) at a context of zeros."""
    ctx = np.zeros((N_CONTEXT, LANES))
    acc = np.empty((2, LANES))
    hb = np.empty((b1.shape[0], LANES))
    ra = np.empty(LANES)
    o0 = np.empty(LANES, np.int64)
    o1 = np.empty(LANES, np.int64)
    _mlp_lanes(ctx, 1, w1t, b1, w2, b2, wr, br, acc, hb, ra, o0, o1)
    zero = np.empty((qmaxes.shape[0], 3), np.int64)
    for g in range(qmaxes.shape[0]):
        _finish(o0[0], o1[0], qmaxes[g], zero, g)
    return ctx, acc, hb, ra, o0, o1, np.empty(LANES, np.int64), zero


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _predict(buf, at, ss, gs, n, qmaxes, w1t, b1, w2, b2, wr, br, scratch, pred):
    """The predictions (_finish's) of the n latents at buf[at[p]] (rows ss[p] apart, of
    grids gs[p]) into pred[:n]: the MLP on those whose context is not all zero, LANES at
    a time."""
    ctx, acc, hb, ra, o0, o1, lane, zero = scratch
    m = 0
    for p in range(n + 1):
        if p < n:
            if _nonzero(buf, at[p], ss[p]):
                _gather(buf, at[p], ss[p], ctx, m)
                lane[m] = p
                m += 1
            else:
                g = gs[p]
                pred[p, 0], pred[p, 1], pred[p, 2] = zero[g, 0], zero[g, 1], zero[g, 2]
        if m == LANES or (p == n and m > 0):
            _mlp_lanes(ctx, m, w1t, b1, w2, b2, wr, br, acc, hb, ra, o0, o1)
            for k in range(m):
                _finish(o0[k], o1[k], qmaxes[gs[lane[k]]], pred, lane[k])
            m = 0


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


@numba.njit(cache=True, nogil=True)
def predict_grid(buf, off, h, w, qmax, w1t, b1, w2, b2, wr, br, out, o):
    """The prediction (_finish's) of every latent of the grid at `off` in `buf` (padded's)
    into out[o:o + h * w] in row-major order, with each latent's symbol (latent - mean's
    integer part) in column 3."""
    qmaxes = np.full(1, qmax, np.int64)
    scratch = _scratch(w1t, b1, w2, b2, wr, br, qmaxes)
    s = w + 4
    at = np.empty(w, np.int64)
    ss = np.full(w, s, np.int64)
    gs = np.zeros(w, np.int64)
    for y in range(h):
        for x in range(w):
            at[x] = off + y * s + x
        row = out[o + y * w:o + (y + 1) * w]
        _predict(buf, at, ss, gs, w, qmaxes, w1t, b1, w2, b2, wr, br, scratch, row)
        for x in range(w):
            row[x, 3] = buf[at[x] + 2 * s + 2] - row[x, 0]


def weights(params) -> tuple[np.ndarray, ...]:
    """An arm.ArmParams as the kernels take it (_mlp_lanes): w1t, b1, w2, b2, wr, br."""
    res = params.residual
    return (np.ascontiguousarray(params.w1.T, dtype=np.float64),
            params.b1.astype(np.float64), params.w2.astype(np.float64),
            params.b2.astype(np.int64),
            np.ascontiguousarray(params.wr if res else np.zeros((0, 0)), dtype=np.float64),
            (params.br if res else np.zeros(0)).astype(np.float64))


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


@numba.njit(cache=True, nogil=True)
def decode_waves(words, st, buf, offs, shapes, qmaxes, peaks, w1t, b1, w2, b2, wr, br, cums,
                 R, t0, t1):
    """The reader, in coding order (wavefront t = 3y + x, then grid, then row), for the
    wavefronts t0..t1 (a reader may stop and go on: its state is st, buf and peaks): a
    wavefront's predictions (_predict), then its symbols one by one (rangecoder.decode
    from the state `st`, looked for from the residual 0 out) into the grids (buf, offs:
    padded's), each grid's largest magnitude so far in `peaks`.
    0, or rangecoder.INVALID or BEYOND."""
    scratch = _scratch(w1t, b1, w2, b2, wr, br, qmaxes)
    n_grids = shapes.shape[0]
    widest = 0  # latents on one wavefront, at most
    for g in range(n_grids):
        widest += min(shapes[g, 0], shapes[g, 1] // 3 + 1)
    at = np.empty(widest, np.int64)
    ss = np.empty(widest, np.int64)
    gs = np.empty(widest, np.int64)
    pred = np.empty((widest, 3), np.int64)
    for t in range(t0, t1):
        n = 0
        for g in range(n_grids):
            h, w = shapes[g, 0], shapes[g, 1]
            s = w + 4
            for y in range(max(0, -(-(t - w + 1) // 3)), min(h - 1, t // 3) + 1):
                at[n] = offs[g] + y * s + t - 3 * y
                ss[n] = s
                gs[n] = g
                n += 1
        _predict(buf, at, ss, gs, n, qmaxes, w1t, b1, w2, b2, wr, br, scratch, pred)
        for p in range(n):
            sym = rangecoder.decode(st, words, cums[pred[p, 2] * 4 + pred[p, 1]], R)
            if sym < 0:
                return rangecoder.INVALID
            v = sym - R + pred[p, 0]
            a = abs(v)
            g = gs[p]
            if a > qmaxes[g]:
                return BEYOND
            if a > peaks[g]:
                peaks[g] = a
            buf[at[p] + 2 * ss[p] + 2] = v
    return 0
