"""The decoder's compiled kernels (numba), render.py's: the synthesis per pixel, the
cascade's last step per band, the bilinear resampling of other sizes, and the coarser
grids' cascade row by row. Kernels call kernels in this module only, so numba's cache of
each is made again whenever any of them changes.

The synthesis arithmetic is the one the spec pins (bitstream_spec/README.md, "Synthesis
arithmetic"): each unit's products (exact in float64) summed in float64 from 0 in input
order, the bias added in float64, the result rounded once to float32; sin(w0 y) with w0 y
rounded to float32 and the sine evaluated in float64 (`_sin`, within 2 ulp) and rounded to
float32; no fused multiply-adds but the one `_lerp` spells out. The same on every CPU; it
is also what the browser decoder computes (web/src/synthesis.js, upsample.js).
"""
from __future__ import annotations

import numba
import numpy as np

from .config import LatentArch

BAND = 8  # output rows per task
LANES = 256  # pixels the synthesis runs side by side (its float64 activations in cache)

# sin by Cody-Waite reduction to [-pi/4, pi/4] with pi/2 in three parts, then fdlibm's
# kernels (__kernel_sin, __kernel_cos): within 2 ulp of float64 for |x| < 2^19, a margin
# that rounding to float32 almost never sees.
_PIO2_1 = 1.57079632673412561417e+00
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624871116645580e-21
_INVPIO2 = 6.36619772367581382433e-01
_S1, _S2, _S3 = -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04
_S4, _S5, _S6 = 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10
_C1, _C2, _C3 = 4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05
_C4, _C5, _C6 = -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11


@numba.njit(cache=True, nogil=True, inline="always")
def _sin(x):
    k = np.floor(x * _INVPIO2 + 0.5)
    r = ((x - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3
    z = r * r
    s = r + (z * r) * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))))
    c = 1.0 - (0.5 * z - z * z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6))))))
    # the quadrant, int64(k) & 3, as k mod 4 in float64: exact for every k (and 0 for inf
    # and NaN, as the integer's is), and it vectorises, where AVX2 has no float64 -> int64
    q = k - 4.0 * np.floor(k * 0.25)
    a = c if (q == 1.0) | (q == 3.0) else s
    return -a if q >= 2.0 else a


@numba.njit(cache=True, nogil=True)
def _synthesize(feat, m, dims, net, sine, w0, out, o0, buf_a, buf_b):
    """The synthesis of feat[:, :m] (inputs x pixels, float32) into out[o0:o0 + m] (3
    8-bit samples each: clamp(y + 1/2, 0, 1) x 255 in float32, rounded half to even; the
    8-bit output saves a full-size float buffer and its rounding pass). `dims`: the layer
    widths, inputs first; `net`: net_of's (the flat float32 parameters, synthesis.py's
    layout, and each unit's nonzero weights); buf_a, buf_b: (widest, LANES) float64 scratch."""
    theta, cols, vals, units = net
    n_layers = dims.shape[0] - 1
    for p0 in range(0, m, LANES):
        k = min(LANES, m - p0)
        for c in range(dims[0]):
            for p in range(k):
                buf_a[c, p] = feat[c, p0 + p]
        cur, nxt = buf_a, buf_b
        off = 0
        u = 0
        for layer in range(n_layers):
            ni, no = dims[layer], dims[layer + 1]
            boff = off + no * ni
            last = layer == n_layers - 1
            for r in range(no):
                row = nxt[r]
                for p in range(k):
                    row[p] = 0.0
                # the nonzero weights' products added in input order, four to a pass over
                # the row (a row's loads and stores were the cost of one to a pass)
                i, e = units[u], units[u + 1]
                while i + 4 <= e:
                    wa, wb, wc, wd = vals[i], vals[i + 1], vals[i + 2], vals[i + 3]
                    sa, sb, sc, sd = cur[cols[i]], cur[cols[i + 1]], cur[cols[i + 2]], \
                        cur[cols[i + 3]]
                    for p in range(k):
                        row[p] = (((row[p] + wa * sa[p]) + wb * sb[p]) + wc * sc[p]) + wd * sd[p]
                    i += 4
                while i < e:
                    wa, sa = vals[i], cur[cols[i]]
                    for p in range(k):
                        row[p] += wa * sa[p]
                    i += 1
                u += 1
                b = np.float64(theta[boff + r])
                if last:
                    for p in range(k):
                        v = np.float32(np.float32(row[p] + b) + np.float32(0.5))
                        v = min(max(v, np.float32(0.0)), np.float32(1.0))
                        out[o0 + p0 + p, r] = np.uint8(np.rint(v * np.float32(255.0)))
                elif sine:
                    for p in range(k):
                        y = np.float32(w0 * np.float32(row[p] + b))
                        row[p] = np.float64(np.float32(_sin(np.float64(y))))
                else:
                    for p in range(k):
                        y = np.float32(row[p] + b)
                        row[p] = np.float64(y) if y > 0 else 0.0
            off = boff + no
            cur, nxt = nxt, cur


@numba.njit(cache=True, nogil=True, inline="always")
def _coords(feat, k, o, height, width):
    """Output row o's pixel centres into feat[k] (x) and feat[k + 1] (y), in [-1, 1]:
    float32 operations, as grids.coordinates computes them."""
    cy = np.float32(2 * o + 1) / np.float32(height) - np.float32(1.0)
    for j in range(width):
        feat[k, j] = np.float32(2 * j + 1) / np.float32(width) - np.float32(1.0)
        feat[k + 1, j] = cy


@numba.njit(cache=True, nogil=True, inline="always")
def _fine_row(plane, o, e, row, xp):
    """The cascade's last step along the rows for fine row o of one coarse plane, into xp
    (replicated 2 either side: _fine reads it): upsampling._rows_fwd's sums, in order."""
    n, m = plane.shape
    i, r = o >> 1, o & 1
    row[:] = 0.0
    for d in range(4):
        s = min(max(i - 2 + d + r, 0), n - 1)
        t = e[d] if r == 0 else e[3 - d]
        src = plane[s]
        for j in range(m):
            row[j] += t * src[j]
    xp[0] = xp[1] = row[0]
    xp[2:m + 2] = row
    xp[m + 2] = xp[m + 3] = row[m - 1]


@numba.njit(cache=True, nogil=True, inline="always")
def _fine(xp, j, e0, e1, e2, e3):
    """Fine column j of a row _fine_row made: upsampling._cols_fwd's sums, in order."""
    q = j >> 1
    if j & 1:
        return e3 * xp[q + 1] + e2 * xp[q + 2] + e1 * xp[q + 3] + e0 * xp[q + 4]
    return e0 * xp[q] + e1 * xp[q + 1] + e2 * xp[q + 2] + e3 * xp[q + 3]


@numba.njit(cache=True, nogil=True)
def _band(o0, o1, grid0, stack, e, coords, height, width, dims, net, sine, w0, out):
    """Output rows o0..o1 at the image's own size: the cascade's last step (stack: every
    coarser grid at grid 1's size, e: its 4 taps) for these rows, grid 0 on top, the
    coordinates, then the synthesis, into out (height x width, 3)."""
    c_, n, m = stack.shape
    inputs = dims[0]
    widest = max(dims.max(), inputs)
    feat = np.empty((inputs, width), np.float32)
    buf_a = np.empty((widest, LANES), np.float64)
    buf_b = np.empty((widest, LANES), np.float64)
    row = np.empty(m, np.float32)
    xp = np.empty(m + 4, np.float32)
    e0, e1, e2, e3 = e[0], e[1], e[2], e[3]
    for o in range(o0, o1):
        for c in range(c_):
            _fine_row(stack[c], o, e, row, xp)
            dst = feat[1 + c]
            for j in range(width):
                dst[j] = _fine(xp, j, e0, e1, e2, e3)
        g0 = grid0[o]
        for j in range(width):
            feat[0, j] = g0[j]
        if coords:
            _coords(feat, 1 + c_, o, height, width)
        _synthesize(feat, width, dims, net, sine, w0, out, o * width, buf_a, buf_b)


@numba.njit(cache=True, nogil=True)
def bands(b0, b1, grid0, stack, e, coords, dims, net, sine, w0, out):
    """Bands b0..b1 (BAND rows each) of the image."""
    height, width = grid0.shape
    for b in range(b0, b1):
        _band(b * BAND, min(height, (b + 1) * BAND), grid0, stack, e, coords, height, width,
              dims, net, sine, w0, out)


def axis(n_in: int, n_out: int):
    """Bilinear interpolation's taps along one axis, half-pixel centres (torch's
    `interpolate`, align_corners=False, as its CPU kernel computes them; conformance.md):
    per output position (low index, high index, their weights), float32 weights."""
    i = np.arange(n_out)
    if n_in == n_out:
        return i, i, np.ones(n_out, np.float32), np.zeros(n_out, np.float32)
    scale = np.float64(np.float32(n_in / n_out))
    src = np.maximum((scale * (i + 0.5) - 0.5).astype(np.float32), np.float32(0))
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    w1 = np.clip(src - lo.astype(np.float32), 0, 1).astype(np.float32)
    return lo, lo + (lo < n_in - 1), (np.float32(1) - w1).astype(np.float32), w1


@numba.njit(cache=True, nogil=True, inline="always")
def _lerp(a, wa, b, wb):
    """a wa + b wb as torch's compiled kernel evaluates it, fma(a, wa, b wb): here the
    exact product a wa (float64) plus float32(b wb), rounded once to float32."""
    return np.float32(np.float64(a) * np.float64(wa) + np.float64(np.float32(b * wb)))


@numba.njit(cache=True, nogil=True)
def resampled(b0, b1, src, offs, widths, ylo, yhi, yw0, yw1, xlo, xhi, xw0, xw1, coords,
               height, width, dims, net, sine, w0, out):
    """Bands b0..b1 of an image whose planes (flat in `src` at `offs`, rows `widths`
    long) are interpolated bilinearly (per plane k, rows ylo/yhi[k], columns xlo/xhi[k],
    axis's), along the rows first, then between them; then the coordinates and the
    synthesis, into out (height x width, 3)."""
    planes = offs.shape[0]
    widest = max(dims.max(), dims[0])
    feat = np.empty((dims[0], width), np.float32)
    buf_a = np.empty((widest, LANES), np.float64)
    buf_b = np.empty((widest, LANES), np.float64)
    for o in range(b0 * BAND, min(height, b1 * BAND)):
        for k in range(planes):
            r0 = offs[k] + ylo[k, o] * widths[k]
            r1 = offs[k] + yhi[k, o] * widths[k]
            a, b = yw0[k, o], yw1[k, o]
            for j in range(width):
                x0, x1, c, d = xlo[k, j], xhi[k, j], xw0[k, j], xw1[k, j]
                t0 = _lerp(src[r0 + x0], c, src[r0 + x1], d)
                t1 = _lerp(src[r1 + x0], c, src[r1 + x1], d)
                feat[k, j] = _lerp(t0, a, t1, b)
        if coords:
            _coords(feat, planes, o, height, width)
        _synthesize(feat, width, dims, net, sine, w0, out, o * width, buf_a, buf_b)


@numba.njit(cache=True, nogil=True)
def resampled_cascade(b0, b1, grid0, stack, e, ylo, yhi, yw0, yw1, xlo, xhi, xw0, xw1,
                       coords, height, width, dims, net, sine, w0, out):
    """resampled of the cascade's output at another size, without that output: for each
    output row, the last step's two fine rows it reads (_fine_row) and their fine columns
    it reads (_fine), the same values the whole cascade has there. What a smaller render
    costs is then in proportion to its pixels (bar the latents' decoding)."""
    c_, n, m = stack.shape
    widest = max(dims.max(), dims[0])
    feat = np.empty((dims[0], width), np.float32)
    buf_a = np.empty((widest, LANES), np.float64)
    buf_b = np.empty((widest, LANES), np.float64)
    row = np.empty(m, np.float32)
    fine = np.empty((2, c_, m + 4), np.float32)  # two fine rows, kept while rows reuse them
    held = np.array([-1, -1])
    e0, e1, e2, e3 = e[0], e[1], e[2], e[3]
    for o in range(b0 * BAND, min(height, b1 * BAND)):
        fa, fb, a, b = ylo[o], yhi[o], yw0[o], yw1[o]
        ga, gb = grid0[fa], grid0[fb]
        for j in range(width):
            x0, x1, c, d = xlo[j], xhi[j], xw0[j], xw1[j]
            feat[0, j] = _lerp(_lerp(ga[x0], c, ga[x1], d), a, _lerp(gb[x0], c, gb[x1], d), b)
        for f in (fa, fb):
            if f != held[0] and f != held[1]:
                slot = 0 if held[0] != fa and held[0] != fb else 1
                for k in range(c_):
                    _fine_row(stack[k], f, e, row, fine[slot, k])
                held[slot] = f
        sa = 0 if held[0] == fa else 1
        sb = 0 if held[0] == fb else 1
        for k in range(c_):
            xa, xb = fine[sa, k], fine[sb, k]
            dst = feat[1 + k]
            for j in range(width):
                x0, x1, c, d = xlo[j], xhi[j], xw0[j], xw1[j]
                t0 = _lerp(_fine(xa, x0, e0, e1, e2, e3), c, _fine(xa, x1, e0, e1, e2, e3), d)
                t1 = _lerp(_fine(xb, x0, e0, e1, e2, e3), c, _fine(xb, x1, e0, e1, e2, e3), d)
                dst[j] = _lerp(t0, a, t1, b)
        if coords:
            _coords(feat, 1 + c_, o, height, width)
        _synthesize(feat, width, dims, net, sine, w0, out, o * width, buf_a, buf_b)


def planes(planes: list[np.ndarray], height: int, width: int):
    """resampled's arguments for planes of any sizes, resampled to height x width."""
    offs = np.cumsum([0] + [p.size for p in planes])[:-1].astype(np.int64)
    ys = [axis(p.shape[0], height) for p in planes]
    xs = [axis(p.shape[1], width) for p in planes]
    return (np.concatenate([p.ravel() for p in planes]), offs,
            np.array([p.shape[1] for p in planes], np.int64),
            *(np.stack([a[i] for a in ys]) for i in range(4)),
            *(np.stack([a[i] for a in xs]) for i in range(4)))


CHUNK = BAND * 1024  # pixels per task of chunks


@numba.njit(cache=True, nogil=True)
def chunks(b0, b1, feat, dims, net, sine, w0, out):
    """_synthesize over chunks b0..b1 of feat (inputs x N)."""
    n = feat.shape[1]
    widest = max(dims.max(), dims[0])
    buf_a = np.empty((widest, LANES), np.float64)
    buf_b = np.empty((widest, LANES), np.float64)
    for b in range(b0, b1):
        a = b * CHUNK
        _synthesize(feat[:, a:a + CHUNK], min(CHUNK, n - a), dims, net, sine, w0, out, a,
                    buf_a, buf_b)


@numba.njit(cache=True, nogil=True)
def stack_rows(grid, prev, e, out, o0, o1):
    """Rows o0..o1 of one step of the coarser grids' cascade: `grid`'s rows (channel 0),
    then the coarser stack `prev` stepped up by the taps e (_fine_row, _fine:
    upsampling.step's sums, in order), into out."""
    c_, n, m = prev.shape
    width = out.shape[2]
    row = np.empty(m, np.float32)
    xp = np.empty(m + 4, np.float32)
    e0, e1, e2, e3 = e[0], e[1], e[2], e[3]
    for o in range(o0, o1):
        for j in range(width):
            out[0, o, j] = grid[o, j]
        for c in range(c_):
            _fine_row(prev[c], o, e, row, xp)
            dst = out[1 + c, o]
            for j in range(width):
                dst[j] = _fine(xp, j, e0, e1, e2, e3)


def net_of(dims: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, ...]:
    """The synthesis as _synthesize takes it: (theta as float32; each unit's nonzero
    weights, layer by layer: their inputs, their values in float64, and where each unit's
    start)."""
    theta = np.ascontiguousarray(theta, dtype=np.float32)
    cols, vals, units, off = [], [], [0], 0
    for ni, no in zip(dims[:-1], dims[1:]):
        for w in theta[off:off + no * ni].reshape(no, ni):
            nz = np.flatnonzero(w)
            cols.append(nz)
            vals.append(w[nz])
            units.append(units[-1] + len(nz))
        off += no * ni + no
    return (theta, np.concatenate(cols).astype(np.int64),
            np.concatenate(vals).astype(np.float64), np.array(units, np.int64))


def kernel_args(arch: LatentArch, theta: np.ndarray):
    """(net_of's, layer widths, sine, w0) as the kernels take them."""
    dims = np.array([arch.inputs] + [arch.hidden] * arch.layers + [3], dtype=np.int64)
    return net_of(dims, theta), dims, arch.act == "sine", \
        np.float32(arch.w0 if arch.act == "sine" else 1.0)
