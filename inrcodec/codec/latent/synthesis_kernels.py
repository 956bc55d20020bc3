"""The compiled kernel of the fit's distortion term (synthesis.py's `mse_and_grad` on the
CPU): the synthesis MLP forward and backward over blocks of pixels in parallel, LANES
pixels side by side inside a block so every layer's loop over pixels vectorises, each
block's parameter gradients and squared error summed apart and added in a fixed order.
One pass replaces torch's dozens of small matrix products (16 x 9, 16 x 16, 3 x 16) a
chunk, whose calls cost more than their arithmetic."""
from __future__ import annotations

import numba
import numpy as np

from .lanes import FASTMATH, affine as _affine, dot as _dot, outer as _outer, total as _total

BLOCK = 8192  # pixels per parallel task (partial sums apart): fixed, so threads sum alike
LANES = 256  # pixels computed side by side inside a task: the layers' activations stay in cache

# sin and cos by Cody-Waite reduction to [-pi/4, pi/4] and Cephes' float polynomials
# (absolute error ~1e-7 for |x| < 2^13): the fit's sine layers, both from one reduction,
# in arithmetic the compiler vectorises (torch's sin and cos were half the synthesis)
_PIO2_HI = np.float32(1.5707963705062866)
_PIO2_LO = np.float32(-4.371139000186241e-08)
_TWO_OVER_PI = np.float32(0.6366197723675814)


@numba.njit(fastmath=FASTMATH, cache=True, nogil=True)
def sincos(x, s, c):
    """s, c = sin(x), cos(x), elementwise over flat float32 arrays. (No reassociation
    anyway: it would undo the two-part reduction.)"""
    for i in range(x.shape[0]):
        v = x[i]
        k = np.floor(v * _TWO_OVER_PI + np.float32(0.5))
        r = (v - k * _PIO2_HI) - k * _PIO2_LO
        r2 = r * r
        sr = r + r * r2 * (np.float32(-1.6666654611e-1) + r2 * (
            np.float32(8.3321608736e-3) + r2 * np.float32(-1.9515295891e-4)))
        cr = np.float32(1.0) - np.float32(0.5) * r2 + r2 * r2 * (
            np.float32(4.166664568298827e-2) + r2 * (np.float32(-1.388731625493765e-3)
                                                     + r2 * np.float32(2.443315711809948e-5)))
        q = np.int32(k) & 3  # int32: a conversion AVX2 vectorises
        a = cr if q & 1 else sr  # sin: sr, cr, -sr, -cr
        b = sr if q & 1 else cr  # cos: cr, -sr, -cr, sr
        s[i] = -a if q & 2 else a
        c[i] = -b if (q + 1) & 2 else b


@numba.njit(fastmath=FASTMATH, cache=True, nogil=True)
def _act(z, h, d, n, sine):
    """h, d = the activation and its derivative at z[:n] (sine: sin, cos, w0 folded into
    the weights; else ReLU)."""
    if sine:
        sincos(z[:n], h[:n], d[:n])
    else:
        for p in range(n):
            v = z[p]
            h[p] = v if v > np.float32(0.0) else np.float32(0.0)
            d[p] = np.float32(1.0) if v > np.float32(0.0) else np.float32(0.0)


@numba.njit(fastmath=FASTMATH, nogil=True, inline="always")
def _forward(feats, a, n, w0, b0, wh, bh, sine, z, hs, ds):
    """The hidden layers of pixels a..a+n: hs[k] each one's output, ds[k] its derivative."""
    for o in range(w0.shape[0]):  # the first layer
        _affine(z, b0[o], w0[o], feats, a, n)
        _act(z, hs[0, o], ds[0, o], n, sine)
    for k in range(wh.shape[0]):
        for o in range(wh.shape[1]):
            _affine(z, bh[k, o], wh[k, o], hs[k], 0, n)
            _act(z, hs[k + 1, o], ds[k + 1, o], n, sine)


@numba.njit(fastmath=FASTMATH, nogil=True, inline="always")
def _output(target, a, n, wo, bo, top, scale, err, gwo, gbo):
    """The RGB output's error against the target into err (scaled: the gradient of scale
    x the squared error), its layer's parameter gradients added; the squared error."""
    se = 0.0
    for c in range(3):
        e = err[c]
        _affine(e, bo[c] + np.float32(0.5), wo[c], top, 0, n)
        for p in range(n):
            e[p] -= target[c, a + p]
        se += _dot(e, e, 0, n)
        for p in range(n):
            e[p] *= scale
        gbo[c] += _total(e, n)
        _outer(gwo[c], e, top, 0, n)
    return se


@numba.njit(fastmath=FASTMATH, nogil=True, inline="always")
def _backward(feats, a, n, w0t, wht, wot, hs, ds, err, g, g2, z, gw0, gb0, gwh, gbh, g_feats):
    """From err back through every layer: the parameter gradients added, the features'
    gradient of pixels a..a+n written."""
    M = wht.shape[0]
    for i in range(wot.shape[0]):  # the output layer, then the last activation
        _affine(g[i], np.float32(0.0), wot[i], err, 0, n)
        for p in range(n):
            g[i, p] *= ds[M, i, p]
    for k in range(M - 1, -1, -1):  # hidden-to-hidden layer k: hs[k] -> hs[k + 1]
        for o in range(g.shape[0]):
            gbh[k, o] += _total(g[o], n)
            _outer(gwh[k, o], g[o], hs[k], 0, n)
        for i in range(g.shape[0]):
            _affine(g2[i], np.float32(0.0), wht[k, i], g, 0, n)
            for p in range(n):
                g2[i, p] *= ds[k, i, p]
        g, g2 = g2, g
    for o in range(g.shape[0]):  # the first layer
        gb0[o] += _total(g[o], n)
        _outer(gw0[o], g[o], feats, a, n)
    for i in range(w0t.shape[0]):
        _affine(z, np.float32(0.0), w0t[i], g, 0, n)
        for p in range(n):
            g_feats[i, a + p] = z[p]


@numba.njit(fastmath=FASTMATH, cache=True, nogil=True)
def _mse_block(blk, feats, target, w0, b0, wh, bh, wo, bo, sine, scale, partial, g_feats):
    """mse_parallel's task `blk`: pixels blk x BLOCK .. + BLOCK. partial[blk] gets each
    layer's weights' gradient (row-major) then its biases', as the flat parameter vector
    lays them out, then the squared error."""
    n_in, n_px = feats.shape
    H = w0.shape[0]
    M = wh.shape[0]  # hidden-to-hidden layers
    # this task's parameter gradients: the weights' in float32, the biases' in float64
    gw0, gb0 = np.zeros((H, n_in), np.float32), np.zeros(H)
    gwh, gbh = np.zeros((M, H, H), np.float32), np.zeros((M, H))
    gwo, gbo = np.zeros((3, H), np.float32), np.zeros(3)
    w0t = np.ascontiguousarray(w0.T)  # for the backward's products
    wht = np.empty((M, H, H), np.float32)
    for k in range(M):
        wht[k] = wh[k].T
    wot = np.ascontiguousarray(wo.T)
    hs = np.empty((M + 1, H, LANES), np.float32)  # each hidden layer's output
    ds = np.empty((M + 1, H, LANES), np.float32)  # and its derivative
    z = np.empty(LANES, np.float32)
    err = np.empty((3, LANES), np.float32)
    g = np.empty((H, LANES), np.float32)
    g2 = np.empty((H, LANES), np.float32)
    lo = blk * BLOCK
    hi = min(lo + BLOCK, n_px)
    se = 0.0
    for a in range(lo, hi, LANES):
        n = min(LANES, hi - a)
        _forward(feats, a, n, w0, b0, wh, bh, sine, z, hs, ds)
        se += _output(target, a, n, wo, bo, hs[M], scale, err, gwo, gbo)
        _backward(feats, a, n, w0t, wht, wot, hs, ds, err, g, g2, z, gw0, gb0, gwh, gbh,
                  g_feats)
    pp = partial[blk]  # the flat vector's layout: per layer its weights, then its biases
    o = _add(pp, _add(pp, 0, gw0.ravel()), gb0)
    for k in range(M):
        o = _add(pp, _add(pp, o, gwh[k].ravel()), gbh[k])
    o = _add(pp, _add(pp, o, gwo.ravel()), gbo)
    pp[o] += se


@numba.njit(nogil=True, inline="always")
def _add(pp, o, x):
    """pp[o:o + x.size] += x; the offset after them."""
    for i in range(x.size):
        pp[o + i] += x[i]
    return o + x.size


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def mse_parallel(feats, target, w0, b0, wh, bh, wo, bo, sine, scale, partial, g_feats):
    """The synthesis forward and backward over (inputs, N) features `feats` against the
    (3, N) `target`: g_feats gets the features' gradient of scale x the squared error,
    partial[blk] each task's parameter gradients and squared error (zeroed by the caller).
    w0, b0: the first layer; wh (L-1, H, H), bh: the hidden-to-hidden ones; wo, bo: the
    output. A sine network's w0 is folded into its hidden layers' weights and biases."""
    for blk in numba.prange((feats.shape[1] + BLOCK - 1) // BLOCK):
        _mse_block(blk, feats, target, w0, b0, wh, bh, wo, bo, sine, scale, partial, g_feats)


@numba.njit(fastmath=FASTMATH, cache=True, nogil=True)
def mse_serial(feats, target, w0, b0, wh, bh, wo, bo, sine, scale, partial, g_feats):
    """mse_parallel on the calling thread alone (numba's pool not started: rate.threads)."""
    for blk in range((feats.shape[1] + BLOCK - 1) // BLOCK):
        _mse_block(blk, feats, target, w0, b0, wh, bh, wo, bo, sine, scale, partial, g_feats)
