// How the grids reach the output size (bitstream spec, "The image model" and "Learned
// upsampling"), in float32 arithmetic in the reference decoder's order of operations.
// Planes are Float32Array, row-major.
const f = Math.fround;

// Bilinear, half-pixel centres (PyTorch interpolate, align_corners=False), one axis:
// (low index, high index, low weight, high weight) per output position.
function linearAxis(nIn, nOut) {
  const lo = new Int32Array(nOut), hi = new Int32Array(nOut);
  const w0 = new Float32Array(nOut), w1 = new Float32Array(nOut);
  if (nIn === nOut) {
    for (let i = 0; i < nOut; i++) { lo[i] = hi[i] = i; w0[i] = 1; w1[i] = 0; }
    return { lo, hi, w0, w1 };
  }
  const scale = f(nIn / nOut);
  for (let i = 0; i < nOut; i++) {
    let src = f(scale * (i + 0.5) - 0.5);
    if (src < 0) src = 0;
    const l = Math.min(Math.floor(src), nIn - 1);
    const lam = Math.min(Math.max(f(src - l), 0), 1);
    lo[i] = l;
    hi[i] = l + (l < nIn - 1 ? 1 : 0);
    w1[i] = lam;
    w0[i] = f(1 - lam);
  }
  return { lo, hi, w0, w1 };
}

// PyTorch's CPU kernel evaluates t0 w0 + t1 w1 as fma(t0, w0, t1 w1) (the compiler
// contracts it); a double product plus a float32 is that fma, up to a double rounding.
function fma01(t0, w0, t1, w1) {
  return f(t0 * w0 + f(t1 * w1));
}

export function bilinear(src, h, w, H, W, dst = new Float32Array(H * W)) {
  if (h === H && w === W) { dst.set(src); return dst; }
  const ay = linearAxis(h, H), ax = linearAxis(w, W);
  for (let y = 0; y < H; y++) {
    const r0 = ay.lo[y] * w, r1 = ay.hi[y] * w, wy0 = ay.w0[y], wy1 = ay.w1[y];
    const o = y * W;
    for (let x = 0; x < W; x++) {
      const x0 = ax.lo[x], x1 = ax.hi[x], wx0 = ax.w0[x], wx1 = ax.w1[x];
      const t0 = fma01(src[r0 + x0], wx0, src[r0 + x1], wx1);
      const t1 = fma01(src[r1 + x0], wx0, src[r1 + x1], wx1);
      dst[o + x] = fma01(t0, wy0, t1, wy1);
    }
  }
  return dst;
}

// Catmull-Rom, one axis: 4 (index, weight) taps per output position, weights in float32
// as grids.py's _cubic_taps computes them, op by op.
function cubicAxis(nIn, nOut) {
  const idx = new Int32Array(4 * nOut), wt = new Float32Array(4 * nOut);
  const ratio = f(nIn / nOut);
  for (let i = 0; i < nOut; i++) {
    const src = f(f(f(i + 0.5) * ratio) - 0.5);
    const i0 = Math.floor(src);
    const t = f(src - i0);
    const t2 = f(t * t), t3 = f(t2 * t);
    wt[4 * i] = f(f(f(-t3 + f(2 * t2)) - t) * 0.5);
    wt[4 * i + 1] = f(f(f(f(3 * t3) - f(5 * t2)) + 2) * 0.5);
    wt[4 * i + 2] = f(f(f(f(-3 * t3) + f(4 * t2)) + t) * 0.5);
    wt[4 * i + 3] = f(f(t3 - t2) * 0.5);
    for (let d = 0; d < 4; d++) idx[4 * i + d] = Math.min(Math.max(i0 - 1 + d, 0), nIn - 1);
  }
  return { idx, wt };
}

// The rows' taps first (summed in tap order), then the columns'.
export function bicubic(src, h, w, H, W, dst = new Float32Array(H * W)) {
  if (h === H && w === W) { dst.set(src); return dst; }
  const ay = cubicAxis(h, H), ax = cubicAxis(w, W);
  const rows = new Float32Array(H * w);
  for (let y = 0; y < H; y++) {
    const o = y * w;
    for (let x = 0; x < w; x++) {
      let s = f(src[ay.idx[4 * y] * w + x] * ay.wt[4 * y]);
      for (let d = 1; d < 4; d++) s = f(s + f(src[ay.idx[4 * y + d] * w + x] * ay.wt[4 * y + d]));
      rows[o + x] = s;
    }
  }
  for (let y = 0; y < H; y++) {
    const ri = y * w, o = y * W;
    for (let x = 0; x < W; x++) {
      let s = f(rows[ri + ax.idx[4 * x]] * ax.wt[4 * x]);
      for (let d = 1; d < 4; d++) s = f(s + f(rows[ri + ax.idx[4 * x + d]] * ax.wt[4 * x + d]));
      dst[o + x] = s;
    }
  }
  return dst;
}

// One x2 step of the learned cascade along one axis of a plane: n coarse samples per
// line -> m fine ones (m <= 2n), taps e = (e0, e1, e2, e3), index clamped, every product
// and sum one float32 operation in the spec's order.
function stepRows(src, n, w, m, e, dst) {
  const [e0, e1, e2, e3] = e;
  const c = (i) => Math.min(Math.max(i, 0), n - 1) * w;
  for (let o = 0; o < m; o++) {
    const i = o >> 1;
    const out = o * w;
    let a, b, cc, d, ta, tb, tc, td;
    if ((o & 1) === 0) { a = c(i - 2); b = c(i - 1); cc = c(i); d = c(i + 1); ta = e0; tb = e1; tc = e2; td = e3; }
    else { a = c(i - 1); b = c(i); cc = c(i + 1); d = c(i + 2); ta = e3; tb = e2; tc = e1; td = e0; }
    for (let x = 0; x < w; x++) {
      dst[out + x] = f(f(f(f(ta * src[a + x]) + f(tb * src[b + x])) + f(tc * src[cc + x])) + f(td * src[d + x]));
    }
  }
}

function stepCols(src, rowsN, n, m, e, dst) {
  const e0 = e[0], e1 = e[1], e2 = e[2], e3 = e[3];
  // fine samples k = 2i, 2i + 1 with 2 <= i <= n - 3 read no clamped index
  const k0 = 4, k1 = Math.min(m, 2 * (n - 2));
  for (let r = 0; r < rowsN; r++) {
    const s = r * n, o = r * m;
    const at = (i) => src[s + Math.min(Math.max(i, 0), n - 1)];
    const edge = (k) => {
      const i = k >> 1;
      dst[o + k] = (k & 1) === 0
        ? f(f(f(f(e0 * at(i - 2)) + f(e1 * at(i - 1))) + f(e2 * at(i))) + f(e3 * at(i + 1)))
        : f(f(f(f(e3 * at(i - 1)) + f(e2 * at(i))) + f(e1 * at(i + 1))) + f(e0 * at(i + 2)));
    };
    if (k1 <= k0) {
      for (let k = 0; k < m; k++) edge(k);
      continue;
    }
    for (let k = 0; k < k0; k++) edge(k);
    for (let k = k0; k < k1; k += 2) {
      const p = s + (k >> 1);
      const a = src[p - 2], b = src[p - 1], c = src[p], d = src[p + 1], g = src[p + 2];
      dst[o + k] = f(f(f(f(e0 * a) + f(e1 * b)) + f(e2 * c)) + f(e3 * d));
      if (k + 1 < m) dst[o + k + 1] = f(f(f(f(e3 * b) + f(e2 * c)) + f(e1 * d)) + f(e0 * g));
    }
    for (let k = k1; k < m; k++) edge(k);
  }
}

// grids: [{h, w, data: Float32Array}], taps: Float32Array (4 per step, step 0 first) ->
// the `levels` planes at grid 0's size, grid k's upsampled plane at index k.
export function cascade(taps, grids) {
  const L = grids.length;
  let planes = [grids[L - 1].data];
  let ph = grids[L - 1].h, pw = grids[L - 1].w;
  for (let k = L - 2; k >= 0; k--) {
    const { h, w } = grids[k];
    const e = taps.subarray(4 * k, 4 * k + 4);
    const next = [grids[k].data];
    for (const p of planes) {
      const rows = new Float32Array(h * pw);
      stepRows(p, ph, pw, h, e, rows);
      const out = new Float32Array(h * w);
      stepCols(rows, h, pw, w, e, out);
      next.push(out);
    }
    planes = next;
    ph = h; pw = w;
  }
  return planes;
}

// Pixel centres in [-1, 1]: (2u + 1) / n - 1, in float32.
export function coordinate(u, n) {
  return f(f(f(f(u * 2) + 1) / n) - 1);
}
