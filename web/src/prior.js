// Integer probability tables of the discrete Laplace (bitstream spec: `table`, `table_q4`),
// integer arithmetic only, then the cumulative table the range coder really codes with.
//
// Every intermediate is an integer below 2^53, exact in a double, except the products
// w x spare of `normalise` (up to 2^57): `floorMulDiv` computes their quotient exactly.
import { FormatError } from './errors.js';

export const PRECISION = 24;
const ONE = 2 ** 32; // fixed point of the unnormalised weights theta^k
const M_BITS = 16;
export const MAX_QMAX = (1 << 15) - 1;

// floor(2^32 theta^k), k = 0..n-1, theta = m / 2^16: repeated fixed-point products.
export function powTable(m, n) {
  const w = new Float64Array(n);
  let v = ONE;
  for (let k = 0; k < n; k++) {
    w[k] = v;
    v = Math.floor((v * m) / 65536); // v m < 2^48: exact
  }
  return w;
}

// floor(a b / t) for integers a <= 2^34, b < 2^24, t < 2^51, a <= t (the quotient < 2^24):
// a double estimate, then the remainder a b - q t computed exactly in 2^26 limbs.
function floorMulDiv(a, b, t) {
  let q = Math.floor((a * b) / t);
  const a1 = Math.floor(a / 67108864), a0 = a - a1 * 67108864;
  const t1 = Math.floor(t / 67108864), t0 = t - t1 * 67108864;
  let r = (a1 * b - q * t1) * 67108864 + (a0 * b - q * t0);
  while (r < 0) { q -= 1; r += t; }
  while (r >= t) { q += 1; r -= t; }
  return q;
}

// Integer weights -> frequencies >= 1 summing to 2^24; the remainder goes to `peak`.
export function normalise(weights, peak) {
  const n = weights.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += weights[i]; // <= 2^50: exact
  const spare = (1 << PRECISION) - n;
  if (spare < 0) throw new FormatError(`an alphabet of ${n} symbols exceeds the coder's precision`);
  const f = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    f[i] = 1 + (total > 0 ? floorMulDiv(weights[i], spare, total) : 0); // numpy's x // 0 is 0
    sum += f[i];
  }
  f[peak] += (1 << PRECISION) - sum;
  return f;
}

export function checkParams(m, qmax) {
  if (!(m >= 1 && m < 1 << M_BITS) || !(qmax >= 0 && qmax <= MAX_QMAX)) {
    throw new FormatError(`prior parameters m=${m}, qmax=${qmax} are out of range`);
  }
}

// Frequencies over q = -qmax..qmax (index q + qmax), P(q) ~ theta^|q|.
export function table(m, qmax) {
  checkParams(m, qmax);
  const w = powTable(m, qmax + 1);
  const all = new Float64Array(2 * qmax + 1);
  for (let i = 0; i <= 2 * qmax; i++) all[i] = w[Math.abs(i - qmax)];
  return normalise(all, qmax);
}

// Frequencies over r = -R..R (index r + R) of a Laplace centred at j/4: sampled (format 3,
// 4) or the mass per unit bin (format 6 on).
export function tableQ4(m, j, R, binned) {
  if (!(m >= 1 && m < 1 << M_BITS) || !(R >= 0 && R <= MAX_QMAX) || !(j >= 0 && j <= 3)) {
    throw new FormatError(`prior parameters m=${m}, j=${j}, R=${R} are out of range`);
  }
  const n = 2 * R + 1;
  const e = new Int32Array(n);
  let emax = 0, peak = 0;
  for (let i = 0; i < n; i++) {
    e[i] = Math.abs(4 * (i - R) - j);
    if (e[i] > emax) emax = e[i];
    if (e[i] < e[peak]) peak = i; // the first smallest, as argmin
  }
  const w = new Float64Array(n);
  if (!binned) {
    const p = powTable(m, emax + 1);
    for (let i = 0; i < n; i++) w[i] = p[e[i]];
  } else {
    const p = powTable(m, emax + 3);
    for (let i = 0; i < n; i++) {
      const k = e[i];
      w[i] = k >= 2 ? p[k - 2] - p[k + 2] : 2 * ONE - p[2 - k] - p[k + 2];
    }
  }
  return normalise(w, peak);
}

// What the range coder codes with for frequencies f (summing to 2^24): the reference
// encoder hands constriction the probabilities f / 2^24 as floats, and its
// `Categorical(perfect=False)` (fast quantisation) turns them back into the cumulative
// table C'(i) = floor(C(i) (2^24 - n) / 2^24) + i, C(i) the sum of f below i, and
// C'(n) = 2^24 (conformance.md: "The coder's tables"). Exact: C(i) (2^24 - n) < 2^48.
export function cumulative(f) {
  const n = f.length;
  const cum = new Float64Array(n + 1);
  const free = (1 << PRECISION) - n;
  let c = 0;
  for (let i = 0; i < n; i++) {
    cum[i] = Math.floor((c * free) / 16777216) + i;
    c += f[i];
  }
  cum[n] = 1 << PRECISION;
  return cum;
}
