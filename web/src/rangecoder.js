// The range decoder of constriction's queue.RangeDecoder (32-bit words, 64-bit state,
// 24-bit probabilities), and, run alongside it, the words its RangeEncoder would write for
// the decoded symbols: a section is valid only if it is exactly those words (the reference
// decoder re-encodes and compares; so does this one, without a second pass).
//
// 64-bit quantities are pairs of doubles (high and low 32 bits); every product is split
// so that each partial product stays below 2^53 and is exact.
import { FormatError } from './errors.js';

const W = 4294967296; // 2^32
const P24 = 16777216;

export class RangeDecoder {
  // words: Uint32Array of the section's little-endian words.
  constructor(words, what) {
    this.words = words;
    this.what = what;
    this.pos = 0;
    // point - lower (mod 2^64), the only part of point and lower the decoder needs
    let ph = 0, pl = 0;
    const n = words.length;
    if (n >= 2) { ph = words[0]; pl = words[1]; this.pos = 2; }
    else if (n === 1) { ph = words[0]; this.pos = 1; }
    this.dh = ph; this.dl = pl;
    this.rh = W - 1; this.rl = W - 1; // range = 2^64 - 1
    // the encoder's twin: lower, its situation (inverted: held-back words), its output
    this.lh = 0; this.ll = 0;
    this.inverted = 0; // number of held-back words (0: normal)
    this.firstInverted = 0;
    this.out = [];
    this.coded = false;
  }

  // Decode one symbol of the cumulative table cum (length n + 1, cum[n] = 2^24).
  decode(cum) {
    const rh = this.rh, rl = this.rl;
    const scale = rh * 256 + Math.floor(rl / P24); // range >> 24, < 2^40
    const dh = this.dh, dl = this.dl;
    // quantile = floor(d / scale): an estimate within one of it, corrected by the exact
    // remainder (|d - q scale| < 2^42, exact as a double)
    let q = Math.floor((dh * W + dl) / scale);
    const sh = Math.floor(scale / P24), sl = scale - sh * P24;
    let r = mulSub(dh, dl, q, sh, sl);
    while (r < 0) { q -= 1; r += scale; }
    while (r >= scale) { q += 1; r -= scale; }
    if (q >= P24) throw new FormatError(`${this.what} does not decode: invalid data`);
    // the symbol s with cum[s] <= q < cum[s + 1]
    let lo = 0, hi = cum.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (cum[mid] <= q) lo = mid; else hi = mid;
    }
    const c = cum[lo], p = cum[lo + 1] - c;
    // d -= scale c, i.e. d = scale (q - c) + r; range = scale p
    mul64(scale, q - c); let nh = MH, nl = ML + r;
    if (nl >= W) { nl -= W; nh += 1; }
    this.dh = nh; this.dl = nl;
    mul64(scale, p); let newRh = MH, newRl = ML;
    // the encoder: lower += scale c (mod 2^64)
    this.coded = true;
    mul64(scale, c);
    let xl = this.ll + ML, xh = this.lh + MH;
    if (xl >= W) { xl -= W; xh += 1; }
    const wrapped = xh >= W;
    if (wrapped) xh -= W;
    if (this.inverted) {
      // new_lower + range does not wrap: the held-back words are settled
      if (!addWraps(xh, xl, newRh, newRl)) {
        this.settle(wrapped);
      }
    }
    this.lh = xh; this.ll = xl;
    if (newRh === 0) {
      // renormalise: range < 2^32
      newRh = newRl; newRl = 0;
      const word = this.lh;
      this.lh = this.ll; this.ll = 0;
      if (this.inverted) this.inverted += 1;
      else if (!addWraps(this.lh, this.ll, newRh, newRl)) this.out.push(word);
      else { this.inverted = 1; this.firstInverted = word; }
      // point - lower: d < range < 2^32 before the shift, so d = (d << 32) | word
      this.dh = this.dl;
      this.dl = this.pos < this.words.length ? this.words[this.pos++] : 0;
    }
    this.rh = newRh; this.rl = newRl;
    return lo;
  }

  settle(carry) {
    const first = carry ? (this.firstInverted + 1) >>> 0 : this.firstInverted;
    const rest = carry ? 0 : W - 1;
    this.out.push(first);
    for (let i = 1; i < this.inverted; i++) this.out.push(rest);
    this.inverted = 0;
  }

  // The encoder's sealed output (get_compressed) equals the section, word for word.
  checkCanonical() {
    if (this.coded) {
      // point = lower + 2^32 - 1
      let pl = this.ll + (W - 1), ph = this.lh;
      if (pl >= W) { pl -= W; ph += 1; }
      const wrapped = ph >= W;
      if (wrapped) ph -= W;
      if (this.inverted) this.settle(wrapped);
      this.out.push(ph);
      let ul = this.ll + this.rl, uh = this.lh + this.rh;
      if (ul >= W) { ul -= W; uh += 1; }
      if (uh >= W) uh -= W;
      if (uh === ph) this.out.push(0);
    }
    const w = this.words, o = this.out;
    let same = w.length === o.length;
    for (let i = 0; same && i < o.length; i++) same = w[i] === o[i];
    if (!same) throw new FormatError(`${this.what} is not in canonical form (damaged or trailing data)`);
  }
}

// a + b >= 2^64 for 64-bit (hi, lo) pairs
function addWraps(ah, al, bh, bl) {
  let l = al + bl, h = ah + bh;
  if (l >= W) h += 1;
  return h >= W;
}

// MH, ML = the 64-bit product of a < 2^40 and b <= 2^25 (split a = ah 2^24 + al)
let MH = 0, ML = 0;
function mul64(a, b) {
  const ah = Math.floor(a / P24), al = a - ah * P24;
  const x = al * b; // < 2^49
  const y = ah * b; // < 2^41, times 2^24
  const yh = Math.floor(y / 256), yl = (y - yh * 256) * P24;
  const xh = Math.floor(x / W), xl = x - xh * W;
  let l = xl + yl, h = xh + yh;
  if (l >= W) { l -= W; h += 1; }
  MH = h; ML = l;
}

// (dh 2^32 + dl) - q (sh 2^24 + sl), known to be small: exact as a double
function mulSub(dh, dl, q, sh, sl) {
  mul64(sh * P24 + sl, q);
  return (dh - MH) * W + (dl - ML);
}

export function wordsOf(bytes, what) {
  if (bytes.length % 4) throw new FormatError(`${what} is not a whole number of 32-bit words`);
  const n = bytes.length >> 2;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    out[i] = (bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24)) >>> 0;
  }
  return out;
}
