// The alpha plane at another size: Pillow's Image.resize(..., LANCZOS) of an 8-bit plane
// (the reference decoder's), re-implemented: Lanczos-3 coefficients in double,
// normalised, turned into 22-bit fixed point; a horizontal pass, then a vertical one.
const PRECISION_BITS = 22;

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x) {
  return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

function coeffs(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 3 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const kk = new Int32Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = lanczos((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, kk, bounds };
}

function clip8(v) {
  if (v >= 1 << (PRECISION_BITS + 8)) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

export function resizeLanczos(src, w, h, W, H) {
  const horiz = coeffs(w, W), vert = coeffs(h, H);
  const needH = W !== w, needV = H !== h;
  let img = src, iw = w;
  const first = vert.bounds[0];
  const last = vert.bounds[2 * H - 2] + vert.bounds[2 * H - 1];
  if (needH) {
    for (let i = 0; i < H; i++) vert.bounds[2 * i] -= first;
    const rows = last - first;
    const tmp = new Uint8Array(W * rows);
    for (let yy = 0; yy < rows; yy++) {
      const line = (yy + first) * w;
      for (let xx = 0; xx < W; xx++) {
        const xmin = horiz.bounds[2 * xx], xmax = horiz.bounds[2 * xx + 1], o = xx * horiz.ksize;
        let s = 1 << (PRECISION_BITS - 1);
        for (let x = 0; x < xmax; x++) s += src[line + x + xmin] * horiz.kk[o + x];
        tmp[yy * W + xx] = clip8(s);
      }
    }
    img = tmp; iw = W;
  }
  if (!needV) return img;
  const out = new Uint8Array(iw * H);
  for (let yy = 0; yy < H; yy++) {
    const ymin = vert.bounds[2 * yy], ymax = vert.bounds[2 * yy + 1], o = yy * vert.ksize;
    for (let xx = 0; xx < iw; xx++) {
      let s = 1 << (PRECISION_BITS - 1);
      for (let y = 0; y < ymax; y++) s += img[(y + ymin) * iw + xx] * vert.kk[o + y];
      out[yy * iw + xx] = clip8(s);
    }
  }
  return out;
}
