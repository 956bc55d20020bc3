// The latents section: u16 qmax per grid, then the grids range-coded wavefront by
// wavefront with the fixed-point autoregressive model (bitstream spec, "Section
// `latents`" and "Section `arm`"). Integer arithmetic only: every sum and product of the
// MLP is an integer below 2^48, exact in a double, and the shifts are floors of exact
// quotients by powers of two.
import { FormatError } from './errors.js';
import { tableQ4, cumulative, MAX_QMAX } from './prior.js';
import { RangeDecoder, wordsOf } from './rangecoder.js';

const CONTEXT = 12;
const CLIP = 127;
const MAX_HIDDEN = 64;
const HMAX = 2 ** 26 - 1; // the residual layer's outputs are clamped to [0, HMAX]
// The frozen scale ladder m_s (arm.py SCALE_M).
export const SCALE_M = [127, 250, 459, 789, 1278, 1964, 2879, 4049, 5486, 7191, 9152, 11345,
  13737, 16290, 18962, 21709, 24491, 27267, 30005, 32674, 35252, 37719, 40063, 42273, 44344,
  46275, 48065, 49719, 51240, 52634, 53908, 55069, 56125, 57082, 57949, 58732, 59439, 60075,
  60648, 61163, 61626, 62041, 62413, 62746, 63045, 63312, 63551, 63764, 63955, 64126, 64278,
  64414, 64536, 64644, 64741, 64827, 64904, 64973, 65034, 65089, 65137, 65181, 65219, 65254];
const SCALES = SCALE_M.length;

// The section `arm`: u8 hidden width H, then int16 W1 (H x 12), b1 (H), W2 (2 x H), b2 (2).
export function armFromBytes(bytes) {
  if (bytes.length < 1) throw new FormatError('autoregressive model parameters are missing');
  const h = bytes[0];
  const n = h * CONTEXT + h + 2 * h + 2;
  if (!(h >= 1 && h <= MAX_HIDDEN) || bytes.length !== 1 + 2 * n) {
    throw new FormatError(`autoregressive model of ${bytes.length} bytes (hidden width ${h}) is malformed`);
  }
  const v = new Float64Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) v[i] = dv.getInt16(1 + 2 * i, true);
  const k = h * CONTEXT;
  return { hidden: h, w1: v.slice(0, k), b1: v.slice(k, k + h), w2: v.slice(k + h, k + 3 * h),
    b2: v.slice(k + 3 * h) };
}

export function gridShapes(height, width, levels) {
  const out = [];
  for (let k = 0; k < levels; k++) out.push([Math.ceil(height / 2 ** k), Math.ceil(width / 2 ** k)]);
  return out;
}

// The probability tables of one file, built on first use: (scale index, quarter offset).
class Tables {
  constructor(R, binned) {
    this.R = R;
    this.binned = binned;
    this.cache = new Array(SCALES * 4);
  }

  get(s, j) {
    const i = s * 4 + j;
    let c = this.cache[i];
    if (c === undefined) c = this.cache[i] = cumulative(tableQ4(SCALE_M[s], j, this.R, this.binned));
    return c;
  }
}

// Section bytes -> the grids (Int32Array each, row-major), or a FormatError.
export function decodeLatents(bytes, shapes, arm, binned) {
  const L = shapes.length;
  if (bytes.length < 2 * L) throw new FormatError('latent section is truncated');
  const qmaxes = [];
  for (let g = 0; g < L; g++) qmaxes.push(bytes[2 * g] | (bytes[2 * g + 1] << 8));
  const payload = bytes.subarray(2 * L);
  const words = wordsOf(payload, 'latent payload');
  if (qmaxes.some((q) => q > MAX_QMAX >> 1)) throw new FormatError('a latent range in the file is out of bounds');
  const R = Math.max(1, 2 * Math.max(...qmaxes));
  const tables = new Tables(R, binned);
  const dec = new RangeDecoder(words, 'latent payload');

  // grids zero-padded by 2 on the top, left and right (the context's reach)
  const grids = shapes.map(([h, w]) => ({ h, w, stride: w + 4, data: new Int32Array((h + 2) * (w + 4)) }));
  const H = arm.hidden;
  const w1 = Int32Array.from(arm.w1), b1 = Int32Array.from(arm.b1);
  const { w2, b2 } = arm;
  const res = arm.wr !== undefined; // a shared model's residual layer (model format 4)
  const { wr, br } = arm;
  const h1 = new Float64Array(H);
  let nWave = 0;
  for (const [h, w] of shapes) nWave = Math.max(nWave, 3 * (h - 1) + w);
  for (let t = 0; t < nWave; t++) {
    for (let g = 0; g < L; g++) {
      const G = grids[g];
      const { h, w, stride, data } = G;
      const qmax = qmaxes[g];
      const y0 = Math.max(0, Math.ceil((t - w + 1) / 3));
      const y1 = Math.min(h - 1, Math.floor(t / 3));
      for (let y = y0; y <= y1; y++) {
        const x = t - 3 * y;
        // context: rows y-2 and y-1 at x-2..x+2, then (y, x-2), (y, x-1); padded coordinates
        const r0 = y * stride + x, r1 = r0 + stride, r2 = r1 + stride;
        const c0 = clip(data[r0]), c1 = clip(data[r0 + 1]), c2 = clip(data[r0 + 2]);
        const c3 = clip(data[r0 + 3]), c4 = clip(data[r0 + 4]), c5 = clip(data[r1]);
        const c6 = clip(data[r1 + 1]), c7 = clip(data[r1 + 2]), c8 = clip(data[r1 + 3]);
        const c9 = clip(data[r1 + 4]), c10 = clip(data[r2]), c11 = clip(data[r2 + 1]);
        let f0 = 0, f1 = 0;
        for (let j = 0, o = 0; j < H; j++, o += CONTEXT) {
          // integers: |w| < 2^15, |c| <= 127, so the sum is below 2^26 (int32 products)
          const a = b1[j] + Math.imul(w1[o], c0) + Math.imul(w1[o + 1], c1) + Math.imul(w1[o + 2], c2)
            + Math.imul(w1[o + 3], c3) + Math.imul(w1[o + 4], c4) + Math.imul(w1[o + 5], c5)
            + Math.imul(w1[o + 6], c6) + Math.imul(w1[o + 7], c7) + Math.imul(w1[o + 8], c8)
            + Math.imul(w1[o + 9], c9) + Math.imul(w1[o + 10], c10) + Math.imul(w1[o + 11], c11);
          if (res) {
            h1[j] = a > 0 ? a : 0;
          } else if (a > 0) {
            f0 += a * w2[j];
            f1 += a * w2[H + j];
          }
        }
        if (res) {
          // h <- min(relu(h + floor((Wr h) / 256) + br), HMAX): sums below 2^47, exact
          for (let j = 0, o = 0; j < H; j++, o += H) {
            let r = 0;
            for (let k = 0; k < H; k++) r += wr[o + k] * h1[k];
            const a = Math.min(Math.max(h1[j] + Math.floor(r / 256) + br[j], 0), HMAX);
            f0 += a * w2[j];
            f1 += a * w2[H + j];
          }
        }
        const o0 = Math.floor(f0 / 256) + b2[0];
        const o1 = Math.floor(f1 / 256) + b2[1];
        const mu4 = Math.floor((o0 + 32) / 64);
        const mh = Math.floor(mu4 / 4);
        const mi = Math.min(Math.max(mh, -qmax), qmax);
        const jq = mh === mi ? mu4 - 4 * mh : 0;
        const s = Math.min(Math.max(Math.floor((o1 * 6) / 256), 0), SCALES - 1);
        const sym = dec.decode(tables.get(s, jq));
        const v = sym - R + mi;
        if (Math.abs(v) > qmax) throw new FormatError('latent beyond the declared range');
        data[r2 + 2] = v;
      }
    }
  }
  const out = grids.map(({ h, w, stride, data }) => {
    const g = new Int32Array(h * w);
    for (let y = 0; y < h; y++) g.set(data.subarray((y + 2) * stride + 2, (y + 2) * stride + 2 + w), y * w);
    return g;
  });
  // the reference writer stores each grid's own largest magnitude
  for (let g = 0; g < L; g++) {
    let m = 0;
    for (const v of out[g]) m = Math.max(m, Math.abs(v));
    if (m !== qmaxes[g]) throw new FormatError('latent payload is not in canonical form (a grid range is not its largest magnitude)');
  }
  dec.checkCanonical();
  return { grids: out, qmaxes };
}

function clip(v) {
  return v > CLIP ? CLIP : v < -CLIP ? -CLIP : v;
}
