// The synthesis: its architecture, the flat parameter vector's tensors, the section that
// codes them (bitstream spec, "Section `synthesis`"), and the MLP that turns each pixel's
// features into its colour.
import { FormatError } from './errors.js';
import { table, cumulative } from './prior.js';
import { RangeDecoder, wordsOf } from './rangecoder.js';

export const UPSAMPLINGS = ['bilinear', 'bicubic', 'learned'];
const K_MIN = 2, K_MAX = 16;

// arch: {levels, hidden, layers, act ('relu'|'sine'), w0, coords, upsample}
export function inputsOf(a) {
  return a.levels + 2 * (a.coords ? 1 : 0);
}

export function layerShapes(a) {
  const dims = [inputsOf(a)];
  for (let i = 0; i < a.layers; i++) dims.push(a.hidden);
  dims.push(3);
  const out = [];
  for (let i = 0; i + 1 < dims.length; i++) out.push([dims[i + 1], dims[i]]);
  return out;
}

export function upParams(a) {
  return a.upsample === 'learned' ? 4 * (a.levels - 1) : 0;
}

export function nParams(a) {
  let n = 0;
  for (const [o, i] of layerShapes(a)) n += o * i + o;
  return n + upParams(a);
}

// [start, stop) of each tensor: per layer its weights then its biases, then the taps.
export function tensorSlices(a) {
  const out = [];
  let off = 0;
  for (const [o, i] of layerShapes(a)) {
    out.push([off, off + o * i]);
    out.push([off + o * i, off + o * i + o]);
    off += o * i + o;
  }
  const u = upParams(a);
  if (u) out.push([off, off + u]);
  return out;
}

// The section -> the flat float32 vector. base/mask: the shared model level's initial
// values and which entries a file sends (null for a self-contained file).
export function unpackSynthesis(bytes, a, base, mask) {
  const theta = base ? Float32Array.from(base) : new Float32Array(nParams(a));
  if (base && bytes.length === 0) return theta; // no deltas
  const entries = tensorSlices(a).map(([s, e]) => {
    const idx = [];
    for (let i = s; i < e; i++) if (!mask || mask[i]) idx.push(i);
    return idx;
  });
  const n = 5 * entries.length;
  if (bytes.length < n || (bytes.length - n) % 4) {
    throw new FormatError('synthesis section has an impossible length');
  }
  const heads = entries.map((_, i) => [bytes[5 * i], bytes[5 * i + 1] | (bytes[5 * i + 2] << 8),
    bytes[5 * i + 3] | (bytes[5 * i + 4] << 8)]);
  if (heads.some(([k]) => k < K_MIN || k > K_MAX)) throw new FormatError('synthesis step size out of range');
  const dec = new RangeDecoder(wordsOf(bytes.subarray(n), 'range-coded payload'), 'range-coded payload');
  entries.forEach((idx, t) => {
    const [k, m, qmax] = heads[t];
    if (idx.length === 0 || qmax === 0) {
      table(Math.max(m, 1), qmax); // the parameters are still checked
      return;
    }
    const cum = cumulative(table(m, qmax));
    const step = 2 ** k;
    for (const i of idx) {
      const q = dec.decode(cum) - qmax;
      // exact: q / 2^k plus a float32 in a double, rounded once to float32
      theta[i] = Math.fround(theta[i] + q / step);
    }
  });
  dec.checkCanonical();
  return theta;
}

// Each layer's weights (out x in, row-major) and biases, as views of theta.
export function layersOf(a, theta) {
  const out = [];
  let off = 0;
  for (const [o, i] of layerShapes(a)) {
    out.push({ out: o, in: i, w: theta.subarray(off, off + o * i), b: theta.subarray(off + o * i, off + o * i + o) });
    off += o * i + o;
  }
  return out;
}

// features: Float32Array (inputs x n, channels first) -> Float32Array (n x 3) of
// 8-bit samples before rounding: clamp(y + 1/2, 0, 1) x 255 in float32.
// Each layer's sums are taken in double precision and rounded once to float32: the
// spec's synthesis arithmetic, the reference's (inrcodec/codec/latent/render_kernels.py).
// Channels first, a chunk of pixels at a time: every inner loop runs along the pixels.
const CHUNK = 2048;

// The MLP of one file, compiled: a function of (features, n, out, p0, p1) whose code has
// the file's weights as constants, each pixel's values in local variables, and the same
// operations in the same order as synthesizeLoop below (each neuron's products summed in
// double from 0 in input order, then the bias, rounded once to float32), so the two give
// bit-identical samples. Faster than the loop (no loads of weights, no stores of
// intermediates; pruned weights vanish from the code): what is left is mostly Math.sin.
// null where code cannot be made at run time (a Content-Security-Policy that forbids it):
// then the loop serves.
export function compileSynthesis(a, theta) {
  const layers = layersOf(a, theta);
  const nin = inputsOf(a);
  const lit = (v) => (Object.is(v, -0) ? '-0' : v < 0 ? `(${v})` : String(v));
  const lines = [];
  for (let c = 0; c < nin; c++) lines.push(`const x0_${c} = feat[${c === 0 ? '' : `${c} * n + `}p];`);
  for (let L = 0; L < layers.length; L++) {
    const { out: no, in: ni, w, b } = layers[L];
    const last = L === layers.length - 1;
    for (let r = 0; r < no; r++) {
      let sum = '0';
      for (let c = 0; c < ni; c++) {
        const wc = w[r * ni + c];
        if (wc !== 0) sum = `${sum} + ${lit(wc)} * x${L}_${c}`;
      }
      const v = `f(${sum} + ${lit(b[r])})`;
      if (last) {
        lines.push(`{ let v = f(${v} + 0.5); v = v < 0 ? 0 : v > 1 ? 1 : v; out[3 * p + ${r}] = f(v * 255); }`);
      } else if (a.act === 'sine') {
        lines.push(`const x${L + 1}_${r} = f(sin(f(${lit(Math.fround(a.w0))} * ${v})));`);
      } else {
        lines.push(`const t${L + 1}_${r} = ${v}, x${L + 1}_${r} = t${L + 1}_${r} > 0 ? t${L + 1}_${r} : 0;`);
      }
    }
  }
  const body = `const f = Math.fround, sin = Math.sin;
return function kernel(feat, n, out, p0, p1) {
  for (let p = p0; p < p1; p++) {
    ${lines.join('\n    ')}
  }
};`;
  try {
    return new Function(body)(); // eslint-disable-line no-new-func
  } catch {
    return null;
  }
}

export function synthesize(a, theta, features, n) {
  const kernel = compileSynthesis(a, theta);
  if (!kernel) return synthesizeLoop(a, theta, features, n);
  const out = new Float32Array(n * 3);
  kernel(features, n, out, 0, n);
  return out;
}

export function synthesizeLoop(a, theta, features, n) {
  const layers = layersOf(a, theta);
  const sine = a.act === 'sine';
  const w0 = Math.fround(a.w0);
  const widest = Math.max(...layers.map((l) => l.out), inputsOf(a));
  const bufA = new Float64Array(widest * CHUNK), bufB = new Float64Array(widest * CHUNK);
  const out = new Float32Array(n * 3);
  const nin = inputsOf(a);
  const f = Math.fround;
  for (let p0 = 0; p0 < n; p0 += CHUNK) {
    const m = Math.min(CHUNK, n - p0);
    let cur = bufA, nxt = bufB;
    for (let c = 0; c < nin; c++) {
      const src = features.subarray(c * n + p0, c * n + p0 + m), o = c * CHUNK;
      for (let k = 0; k < m; k++) cur[o + k] = src[k];
    }
    for (let L = 0; L < layers.length; L++) {
      const { out: no, in: ni, w, b } = layers[L];
      const last = L === layers.length - 1;
      for (let r = 0; r < no; r++) {
        const o = r * CHUNK;
        for (let k = 0; k < m; k++) nxt[o + k] = 0;
        for (let c = 0; c < ni; c++) {
          const wc = w[r * ni + c], ic = c * CHUNK;
          if (wc === 0) continue; // a pruned weight adds exactly nothing
          for (let k = 0; k < m; k++) nxt[o + k] += wc * cur[ic + k];
        }
        const br = b[r];
        if (last) {
          for (let k = 0; k < m; k++) nxt[o + k] = f(nxt[o + k] + br);
        } else if (sine) {
          for (let k = 0; k < m; k++) nxt[o + k] = f(Math.sin(f(w0 * f(nxt[o + k] + br))));
        } else {
          for (let k = 0; k < m; k++) { const y = f(nxt[o + k] + br); nxt[o + k] = y > 0 ? y : 0; }
        }
      }
      const t = cur; cur = nxt; nxt = t;
    }
    for (let ch = 0; ch < 3; ch++) {
      const o = ch * CHUNK;
      for (let k = 0; k < m; k++) {
        let v = f(cur[o + k] + 0.5);
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        out[(p0 + k) * 3 + ch] = f(v * 255);
      }
    }
  }
  return out;
}
