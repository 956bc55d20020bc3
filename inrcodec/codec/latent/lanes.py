"""Linear algebra over lanes for the fit's compiled kernels (synthesis_kernels.py,
rate_kernels.py): a layer's rows applied to LANES positions side by side, so the loop
over positions vectorises, several rows a pass so the loop is not bound by its stores.
numba's cache keys a kernel on its own file: after editing this one, delete the kernels'
cached builds (`__pycache__/*_kernels.*.nbi`, `.nbc`)."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(inline="always", fastmath=True)
def affine(z, bias, w, src, a, n):
    """z[:n] = bias + sum_k w[k] x src[k, a:a + n], four rows a pass: each pass stores z
    once for four products (a store a product made the loop wait on the cache)."""
    K = w.shape[0]
    for p in range(n):
        z[p] = bias
    k = 0
    while k + 4 <= K:
        w_0, w_1, w_2, w_3 = w[k], w[k + 1], w[k + 2], w[k + 3]
        for p in range(n):
            z[p] += (w_0 * src[k, a + p] + w_1 * src[k + 1, a + p]) \
                + (w_2 * src[k + 2, a + p] + w_3 * src[k + 3, a + p])
        k += 4
    while k < K:
        w_0 = w[k]
        for p in range(n):
            z[p] += w_0 * src[k, a + p]
        k += 1


@numba.njit(inline="always", fastmath=True)
def outer(out, g, src, a, n):
    """out[k] += sum_p g[p] x src[k, a + p] for every row k of src, four rows a pass."""
    K = out.shape[0]
    k = 0
    while k + 4 <= K:
        s0 = s1 = s2 = s3 = np.float32(0.0)
        for p in range(n):
            v = g[p]
            s0 += v * src[k, a + p]
            s1 += v * src[k + 1, a + p]
            s2 += v * src[k + 2, a + p]
            s3 += v * src[k + 3, a + p]
        out[k] += s0
        out[k + 1] += s1
        out[k + 2] += s2
        out[k + 3] += s3
        k += 4
    while k < K:
        s0 = np.float32(0.0)
        for p in range(n):
            s0 += g[p] * src[k, a + p]
        out[k] += s0
        k += 1
