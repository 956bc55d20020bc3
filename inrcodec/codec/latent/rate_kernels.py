"""The compiled kernels of the fit's rate term (rate.py's `cpu_pass`): blocks of the
canvas in parallel, LANES positions side by side so the ARM's MLP and the Laplace term
vectorise, partial sums per block added in a fixed order. `_pass_block` stays one
function: numba compiles it into one loop nest, which is what makes it fast. Every kernel
takes numba's "numpy" error model: the default tests each division for zero, which kept
the Laplace term's loop scalar (the pass 1.25x as long)."""
from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .lanes import FASTMATH, affine, outer, total

LN2 = math.log(2.0)
BLOCK = 4096  # canvas positions per parallel task of the CPU pass (partial sums apart)
LANES = 256  # positions side by side (vectorised) inside a task; at 64, 1.25x as long
LOG2E = np.float32(1.0 / LN2)
_EXP2_POLY = tuple(np.float32(LN2 ** k / math.factorial(k)) for k in range(7))


@intrinsic
def _as_float32(typingctx, bits):
    """The float32 whose bits are the int32 `bits` (a bit cast, which vectorises, where a
    table lookup would be a gather the compiler declines)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _exp2(y):
    """2^y in float32 for y in [-127, 15] (below: 0), by 2^round(y) made from its bits and a
    degree-6 Taylor polynomial on [-1/2, 1/2] (relative error < 2e-7): arithmetic the
    compiler vectorises, where a libm call would not."""
    y = y if y > np.float32(-127.0) else np.float32(-127.0)
    n = np.floor(y + np.float32(0.5))
    f = y - n
    c = _EXP2_POLY
    p = c[0] + f * (c[1] + f * (c[2] + f * (c[3] + f * (c[4] + f * (c[5] + f * c[6])))))
    return p * _as_float32((np.int32(n) + np.int32(127)) << np.int32(23))  # 2^n; 0 at -127


@numba.njit(fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def _pass_block(blk, q, valid, live, offs, w1t, b1, w2, b2, wr, br, start, clip, s_max, floor,
                want, active, g_q, gx, partial):
    """pass_parallel's task `blk`: the positions start + blk x BLOCK .. + BLOCK."""
    size = q.shape[0]
    C, H = w1t.shape
    R = wr.shape[0] > 0  # the residual layer
    f0 = np.float32(0.0)
    ctx = np.empty((C, LANES), np.float32)
    hp = np.empty((H, LANES), np.float32)  # the first layer's pre-activations
    gh = np.empty((H, LANES), np.float32)  # d bits / d the last layer's pre-activations
    # with the residual layer: its pre-activations, and d bits / d the first layer's
    hr = np.empty((H if R else 0, LANES), np.float32)
    g1 = np.empty((H if R else 0, LANES), np.float32)
    h1 = np.empty((H if R else 0, LANES), np.float32)  # relu(hp)
    top = hr if R else hp  # the last hidden layer's pre-activations
    gp1 = g1 if R else gh
    o0 = np.empty(LANES, np.float32)
    o1 = np.empty(LANES, np.float32)
    g0 = np.empty(LANES, np.float32)
    gs = np.empty(LANES, np.float32)
    pb = np.empty(LANES, np.float32)
    acc = np.empty(LANES, np.float32)
    ht = np.empty((H if want == 2 else 0, LANES), np.float32)  # relu(top), for dW2
    lb = np.empty(LANES if want else 0)  # log2 of each position's probability, for the bits
    w1 = np.ascontiguousarray(w1t.T)  # rows per unit, for the forward's products
    wrt = np.ascontiguousarray(wr.T)  # the residual layer's columns, for the backward's
    bits = 0.0
    gxb = gx[blk]
    lo = start + blk * BLOCK
    hi = min(lo + BLOCK, size)
    if not active[blk]:
        gxb[:, :] = f0
        g_q[lo:hi] = f0
        return
    for base in range(lo, hi, LANES):
        if not live[(base - start) // LANES]:
            continue  # no latent here (the canvas' padding): its gx stays 0
        n = min(LANES, hi - base)
        for k in range(C):
            o = base + offs[k]
            for i in range(n):
                v = q[o + i]
                v = v if v > -clip else -clip
                ctx[k, i] = v if v < clip else clip
        for j in range(H):
            affine(hp[j], b1[j], w1[j], ctx, 0, n)
        if R:  # h + Wr h + br, h = relu(hp)
            for j in range(H):
                for i in range(n):
                    h1[j, i] = max(hp[j, i], f0)
            for j in range(H):
                affine(hr[j], br[j], wr[j], h1, 0, n)
                for i in range(n):
                    hr[j, i] += h1[j, i]
        for i in range(n):
            o0[i] = b2[0]
            o1[i] = b2[1]
        for j in range(H):
            wa = w2[0, j]
            wb = w2[1, j]
            for i in range(n):
                h = top[j, i]
                h = h if h > f0 else f0
                o0[i] += wa * h
                o1[i] += wb * h
        # prior.rate_bits of each latent, branch-free so it vectorises: with
        # e = exp(-|u| / scale) at u = d +- 1/2, P = 1 - (e_hi + e_lo) / 2 when d is
        # within 1/2 of the mean, else |e_lo - e_hi| / 2 (float32 keeps its tails);
        # d bits / d d = (e_lo - e_hi) k, d bits / d scale = (u_hi e_hi - u_lo e_lo)
        # k / scale, k = 1 / (2 ln2 P scale); zero where P is at its floor
        vq = q[base:base + n]
        vv = valid[base:base + n]
        gq = g_q[base:base + n]
        for i in range(n):
            o = o1[i]
            sc = o if o > f0 else f0
            sc = sc if sc < s_max else np.float32(s_max)
            s = np.float32(0.04) * _exp2(sc)
            inv = np.float32(1.0) / s
            d = vq[i] - o0[i]
            uh = d + np.float32(0.5)
            ul = d - np.float32(0.5)
            eh = _exp2(-abs(uh) * inv * LOG2E)
            el = _exp2(-abs(ul) * inv * LOG2E)
            pr = np.float32(1.0) - np.float32(0.5) * (eh + el) if uh > f0 and ul < f0 \
                else np.float32(0.5) * abs(el - eh)
            ok = vv[i] != 0 and pr > floor
            k2 = np.float32(1.0) / (pr * np.float32(2.0 * LN2) * s) if ok else f0
            gd = (el - eh) * k2
            gq[i] = gd
            g0[i] = -gd
            pb[i] = pr if ok else (floor if vv[i] != 0 else np.float32(1.0))
            gs[i] = (uh * eh - ul * el) * k2 * np.float32(LN2) \
                if o >= f0 and o <= s_max else f0
        if want:
            for i in range(n):
                lb[i] = math.log2(pb[i])
            bits -= total(lb, n)
        for j in range(H):
            wa = w2[0, j]
            wb = w2[1, j]
            for i in range(n):
                gh[j, i] = (wa * g0[i] + wb * gs[i]) if top[j, i] > 0 else f0
        if R:  # through the residual layer: gh + Wr^T gh, where the first layer is live
            for k in range(H):
                affine(g1[k], f0, wrt[k], gh, 0, n)
                for i in range(n):
                    g1[k, i] = g1[k, i] + gh[k, i] if hp[k, i] > 0 else f0
        for k in range(C):
            affine(acc, f0, w1t[k], gp1, 0, n)
            for i in range(n):
                gxb[k, base - lo + i] = acc[i]
        if want == 2:  # sums over the positions in lanes.py's order
            pp = partial[blk]
            for k in range(C):  # dW1 (C x H): ctx x d bits / d the first layer
                outer(pp[1 + k * H:1 + (k + 1) * H], ctx[k], gp1, 0, n)
            off = 1 + C * H
            for j in range(H):
                pp[off + j] += total(gp1[j], n)
                for i in range(n):
                    ht[j, i] = max(top[j, i], f0)
            outer(pp[off + H:off + 2 * H], g0, ht, 0, n)
            outer(pp[off + 2 * H:off + 3 * H], gs, ht, 0, n)
            pp[off + 3 * H] += total(g0, n)
            pp[off + 3 * H + 1] += total(gs, n)
            if R:  # dWr (H x H, row-major), dbr
                off += 3 * H + 2
                for j in range(H):
                    pp[off + H * H + j] += total(gh[j], n)
                    outer(pp[off + j * H:off + (j + 1) * H], gh[j], h1, 0, n)
    partial[blk, 0] = bits


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def pass_parallel(q, valid, live, offs, w1t, b1, w2, b2, wr, br, start, clip, s_max, floor,
                  want, active, g_q, gx, partial):
    """One pass over the canvas `q` (float32, flat) from `start`: per position, the ARM's
    float twin on its clipped context, the Laplace proxy's gradient with respect to the
    latent (g_q) and to its 12 context entries (gx, (blocks, 12, BLOCK)); per task, `partial` gets
    [bits, dW1 (C x H, as w1t), db1, dW2 (2 x H), db2(, dWr (H x H), dbr)] of its positions
    when `want` asks (0: gradients only, 1: + bits, 2: + parameter gradients). wr, br:
    the residual layer, or (0, 0) and (0,)."""
    n_blocks = (q.shape[0] - start + BLOCK - 1) // BLOCK
    for blk in numba.prange(n_blocks):
        _pass_block(blk, q, valid, live, offs, w1t, b1, w2, b2, wr, br, start, clip, s_max,
                    floor, want, active, g_q, gx, partial)


@numba.njit(fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def pass_serial(q, valid, live, offs, w1t, b1, w2, b2, wr, br, start, clip, s_max, floor,
                want, active, g_q, gx, partial):
    """pass_parallel on the calling thread alone: the same tasks, and their sums in
    lanes.py's order, so the same values, bit for bit."""
    n_blocks = (q.shape[0] - start + BLOCK - 1) // BLOCK
    for blk in range(n_blocks):
        _pass_block(blk, q, valid, live, offs, w1t, b1, w2, b2, wr, br, start, clip, s_max,
                    floor, want, active, g_q, gx, partial)


@numba.njit(fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def _gather_block(blk, q, g_q, gx, offs, start, clip, active, out):
    """gather_parallel's task `blk`."""
    size = q.shape[0]
    C = offs.shape[0]
    lo = blk * BLOCK
    hi = min(lo + BLOCK, size)
    acc = np.zeros(hi - lo, np.float32)
    for k in range(C):
        a = max(lo - offs[k], start)  # the readers of lo..hi, from a to b
        b = min(hi - offs[k], size)
        while a < b:
            t = (a - start) // BLOCK
            e = min(b, start + (t + 1) * BLOCK)
            if active[t]:
                src = gx[t, k, a - start - t * BLOCK:e - start - t * BLOCK]
                dst = acc[a + offs[k] - lo:e + offs[k] - lo]
                for i in range(e - a):
                    dst[i] += src[i]
            a = e
    for p in range(lo, hi):
        v = q[p]
        out[p] = g_q[p] + (acc[p - lo] if -clip <= v <= clip else np.float32(0.0))


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def gather_parallel(q, g_q, gx, offs, start, clip, active, out):
    """out = g_q + (the context terms of the positions that read each latent), zero
    where the latent was clipped for the context. The position reading p as its context
    k is p - offs[k] (> p): for a run of p, a run in at most two tasks' gx."""
    n_blocks = (q.shape[0] + BLOCK - 1) // BLOCK
    for blk in numba.prange(n_blocks):
        _gather_block(blk, q, g_q, gx, offs, start, clip, active, out)


@numba.njit(fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def gather_serial(q, g_q, gx, offs, start, clip, active, out):
    """gather_parallel on the calling thread alone."""
    for blk in range((q.shape[0] + BLOCK - 1) // BLOCK):
        _gather_block(blk, q, g_q, gx, offs, start, clip, active, out)