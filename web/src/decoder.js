// The decoder: .inr bytes -> header, latents and pixels. The container is checked first
// (header rules, length, CRC-32), then the alpha plane, the shared model the file names,
// and only then the synthesis, the autoregressive model and the latents are decoded.
import { zstdDecompress } from './zstd.js';
import { FormatError, ModelError } from './errors.js';
import { crc32 } from './crc32.js';
import { armFromBytes, decodeLatents, gridShapes } from './arm.js';
import { unpackSynthesis, synthesize, inputsOf, upParams, nParams, UPSAMPLINGS } from './synthesis.js';
import { bilinear, bicubic, cascade, coordinate } from './upsample.js';
import { resizeLanczos } from './lanczos.js';

const MAGIC = [0x49, 0x4e, 0x52, 0x43]; // "INRC"
export const IMAGE_MODES = ['L', 'LA', 'RGB', 'RGBA'];
const ACTS = ['relu', 'sine'];
const MAX_SIDE = 1 << 16;
const MAX_PIXELS = 2 ** 28;
const MAX_SECTION = 2 ** 30;
const LATENT_VERSIONS = [3, 4, 6, 7];
const WEIGHT_VERSIONS = { 1: 67, 2: 73, 5: 70 };
const HEADER_SIZE = { 3: 69, 4: 71, 6: 71, 7: 72 };

// Each version's fields after the common ones (offset 47): [name, bytes].
const FIELDS = {
  3: [['levels', 1], ['hidden', 1], ['layers', 1], ['act', 1], ['w0', 2]],
  4: [['level', 1], ['levels', 1], ['coords', 1], ['hidden', 1], ['layers', 1], ['act', 1], ['w0', 2]],
  7: [['level', 1], ['levels', 1], ['coords', 1], ['upsample', 1], ['hidden', 1], ['layers', 1], ['act', 1], ['w0', 2]],
};
FIELDS[6] = FIELDS[4];
const SECTIONS = ['synth_len', 'arm_len', 'latent_len', 'alpha_len'];

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The header of `data`, checked against every rule of its version.
export function parseHeader(data) {
  const minSize = 67;
  if (data.length < 5) {
    for (let i = 0; i < Math.min(4, data.length); i++) {
      if (data[i] !== MAGIC[i]) throw new FormatError('not an inrcodec file (bad magic bytes)');
    }
    throw new FormatError(`file is truncated: ${data.length} bytes, the header alone is at least ${minSize}`);
  }
  for (let i = 0; i < 4; i++) if (data[i] !== MAGIC[i]) throw new FormatError('not an inrcodec file (bad magic bytes)');
  const version = data[4];
  if (WEIGHT_VERSIONS[version]) {
    throw new FormatError(`format version ${version} is the weight mode, which this decoder does not read (it reads the latent mode: versions 3, 4, 6 and 7)`);
  }
  if (!LATENT_VERSIONS.includes(version)) {
    throw new FormatError(`format version ${version} is not supported (this decoder reads 3, 4, 6, 7)`);
  }
  const size = HEADER_SIZE[version];
  if (data.length < size) throw new FormatError(`file is truncated: ${data.length} bytes, the header alone is ${size}`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const h = {
    version, size, flags: data[5], modelHash: hex(data.subarray(6, 38)),
    width: dv.getUint32(38, true), height: dv.getUint32(42, true), imageMode: data[46],
    level: 0, coords: 0, upsample: 0,
  };
  let off = 47;
  for (const [name, n] of FIELDS[version]) {
    h[name] = n === 1 ? data[off] : dv.getUint16(off, true);
    off += n;
  }
  for (const name of SECTIONS) { h[name] = dv.getUint32(off, true); off += 4; }
  validate(h);
  return h;
}

function validate(h) {
  const hasAlpha = (h.flags & 1) === 1;
  if (h.flags & ~1) throw new FormatError(`unknown flag bits 0x${h.flags.toString(16).padStart(2, '0')}`);
  if (!(h.width >= 1 && h.width <= MAX_SIDE && h.height >= 1 && h.height <= MAX_SIDE)) {
    throw new FormatError(`image size ${h.width}x${h.height} outside 1..${MAX_SIDE}`);
  }
  if (h.width * h.height > MAX_PIXELS) throw new FormatError(`image of ${h.width * h.height} pixels exceeds the limit ${MAX_PIXELS}`);
  if (h.imageMode > 3) throw new FormatError(`unknown image mode id ${h.imageMode}`);
  if (hasAlpha !== IMAGE_MODES[h.imageMode].endsWith('A')) throw new FormatError('alpha flag disagrees with the image mode');
  if (!(h.levels >= 1 && h.levels <= 12) || !(h.hidden >= 1) || !(h.layers >= 1 && h.layers <= 8)) {
    throw new FormatError(`latent architecture (levels ${h.levels}, hidden ${h.hidden}, layers ${h.layers}) is out of range`);
  }
  if (h.act > 1 || (h.act === 1) !== (h.w0 > 0)) throw new FormatError(`activation ${h.act} with w0 ${h.w0} is invalid`);
  const shared = /[^0]/.test(h.modelHash);
  h.shared = shared;
  if (h.version === 3 && shared) throw new FormatError('a version-3 file names no shared model (model_hash must be zero)');
  if (h.coords > 1) throw new FormatError(`coords field ${h.coords} is not 0 or 1`);
  if (h.upsample > 2) throw new FormatError(`upsample field ${h.upsample} is not 0, 1 or 2`);
  if (!shared && (h.level || h.synth_len === 0 || h.arm_len === 0)) {
    throw new FormatError('a self-contained latent file needs its synthesis and its autoregressive model, and has no level');
  }
  if ((h.arm_len % 2 === 0 && h.arm_len) || h.latent_len < 2 * h.levels || (h.latent_len - 2 * h.levels) % 4) {
    throw new FormatError('latent sections have impossible lengths');
  }
  if (Math.max(h.synth_len, h.arm_len, h.latent_len, h.alpha_len) > MAX_SECTION) {
    throw new FormatError('a section is larger than any valid file\'s');
  }
  if ((h.alpha_len === 0) === hasAlpha) throw new FormatError('alpha length disagrees with the alpha flag');
  h.hasAlpha = hasAlpha;
}

// Header, file length and CRC; returns the header and its sections (views of data).
export function verify(data) {
  const h = parseHeader(data);
  const expected = h.size + h.synth_len + h.arm_len + h.latent_len + h.alpha_len + 4;
  if (data.length < expected) throw new FormatError(`file is truncated: ${data.length} bytes, header declares ${expected}`);
  if (data.length > expected) throw new FormatError(`${data.length - expected} unexpected bytes after the end of the file`);
  const stored = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(data.length - 4, true);
  if (crc32(data, 0, data.length - 4) !== stored) throw new FormatError('checksum mismatch: the file is corrupted');
  const sections = {};
  let off = h.size;
  for (const [name, key] of [['synthesis', 'synth_len'], ['arm', 'arm_len'], ['latents', 'latent_len'], ['alpha', 'alpha_len']]) {
    sections[name] = data.subarray(off, off + h[key]);
    off += h[key];
  }
  return { header: h, sections };
}

// The zstd frame of the alpha plane: one frame filling the section, exactly `size` bytes.
// The reference decoder's steps (inrcodec/codec/entropy.py `unzstd`): a length bound, the
// frame header's content size (libzstd's ZSTD_getFrameContentSize), then libzstd itself
// (src/zstd.js), which refuses what libzstd refuses.
export function unzstd(blob, size, what) {
  if (blob.length < 4 * Math.floor(size / 131072)) {
    throw new FormatError(`${what} of ${blob.length} bytes cannot hold the ${size} bytes the header declares`);
  }
  const declared = frameContentSize(blob, what);
  if (declared !== -1 && declared !== size) throw new FormatError(`${what} declares ${declared} bytes, expected ${size}`);
  let out;
  try {
    out = zstdDecompress(blob, size);
  } catch (e) {
    throw new FormatError(`${what} does not decompress: ${e.message}`);
  }
  if (out.length !== size) throw new FormatError(`${what} decompresses to ${out.length} bytes, expected ${size}`);
  return out;
}

// ZSTD_getFrameContentSize (libzstd 1.5.7, 64-bit): -1 when the header has none; refuses
// what ZSTD_getFrameHeader refuses (a short header, not a zstd frame, the reserved bit, a
// window log above 31); a skippable frame's is 0.
function frameContentSize(blob, what) {
  const bad = () => new FormatError(`${what} is not a valid zstd frame`);
  if (blob.length < 4) throw bad();
  const magic = (blob[0] | (blob[1] << 8) | (blob[2] << 16) | (blob[3] << 24)) >>> 0;
  if ((magic & 0xfffffff0) === 0x184d2a50) {
    if (blob.length < 8) throw bad();
    return 0;
  }
  if (magic !== 0xfd2fb528 || blob.length < 5) throw bad();
  const fhd = blob[4];
  const fcsFlag = fhd >> 6, single = (fhd >> 5) & 1, dictFlag = fhd & 3;
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag];
  const headerLen = 5 + (single ? 0 : 1) + [0, 1, 2, 4][dictFlag] + fcsBytes;
  if (blob.length < headerLen) throw bad();
  if (fhd & 8) throw bad(); // reserved bit
  if (!single && (blob[5] >> 3) + 10 > 31) throw bad(); // window log above ZSTD_WINDOWLOG_MAX
  if (!fcsBytes) return -1;
  const o = headerLen - fcsBytes;
  let fcs = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) fcs = fcs * 256 + blob[o + i];
  if (fcsBytes === 2) fcs += 256;
  return fcs;
}

// The model a file names, among `models` (loaded with model.js), checked against the file.
function modelFor(h, models) {
  const m = models.find((x) => x.hash === h.modelHash);
  if (!m) throw new ModelError(`this file needs the shared model ${h.modelHash}, which this decoder does not have`);
  const a = m.arch;
  if (a.levels !== h.levels || a.hidden !== h.hidden || a.layers !== h.layers || a.act !== ACTS[h.act]
      || Boolean(a.coords) !== Boolean(h.coords) || (a.act === 'sine' && Math.trunc(a.w0) !== h.w0)
      || (h.version >= 7 && a.upsample !== UPSAMPLINGS[h.upsample])) {
    throw new FormatError('the file\'s synthesis architecture differs from its latent model\'s');
  }
  if (h.version < 7 && a.upsample === 'learned') {
    throw new FormatError(`a version-${h.version} file cannot use a latent model with a learned upsampling (version 7 can)`);
  }
  if (h.level >= m.nLevels) throw new FormatError(`file uses level ${h.level}; the latent model has ${m.nLevels}`);
  return m;
}

export function archOf(h) {
  return { levels: h.levels, hidden: h.hidden, layers: h.layers, act: ACTS[h.act], w0: h.w0 || 30,
    coords: Boolean(h.coords), upsample: UPSAMPLINGS[h.upsample] };
}

// The features of every output pixel, channels first: (inputs x H W) float32.
export function features(a, theta, grids, shapes, H, W) {
  const n = H * W;
  const L = a.levels;
  const out = new Float32Array(inputsOf(a) * n);
  if (a.upsample === 'learned') {
    const taps = theta.subarray(nParams(a) - upParams(a));
    const planes = cascade(taps, grids.map((g, k) => ({ h: shapes[k][0], w: shapes[k][1], data: Float32Array.from(g) })));
    const [h0, w0] = shapes[0];
    planes.forEach((p, k) => bilinear(p, h0, w0, H, W, out.subarray(k * n, (k + 1) * n)));
  } else {
    const up = a.upsample === 'bicubic' ? bicubic : bilinear;
    grids.forEach((g, k) => up(Float32Array.from(g), shapes[k][0], shapes[k][1], H, W, out.subarray(k * n, (k + 1) * n)));
  }
  if (a.coords) {
    const cx = out.subarray(L * n, (L + 1) * n), cy = out.subarray((L + 1) * n, (L + 2) * n);
    for (let y = 0; y < H; y++) {
      const vy = coordinate(y, H);
      for (let x = 0; x < W; x++) { cx[y * W + x] = coordinate(x, W); cy[y * W + x] = vy; }
    }
  }
  return out;
}

// Decode a file. options: {models: [loaded latent models], size: [W, H] (default: stored)}.
// Returns {header, width, height, channels, pixels (Uint8Array, row-major, channels last),
// latents (Int32Array per grid), timings}.
export function decode(data, options = {}) {
  const s = decodeBegin(data, options);
  return decodeEnd(s, synthesize(s.arch, s.theta, s.features, s.width * s.height));
}

// decode() in two halves, for a caller that runs the synthesis elsewhere (the page's
// worker splits it across threads): everything up to the features of every output pixel,
// then, given the synthesis' output (synthesize()'s Float32Array), the pixels.
export function decodeBegin(data, options = {}) {
  const t0 = now();
  const { header: h, sections } = verify(data);
  const [W, H] = options.size || [h.width, h.height];
  if (!(W >= 1 && W <= MAX_SIDE && H >= 1 && H <= MAX_SIDE) || W * H > MAX_PIXELS) {
    throw new FormatError(`output size ${W}x${H} is outside 1..${MAX_SIDE} per side or over ${MAX_PIXELS} pixels`);
  }
  const alpha = h.hasAlpha ? unzstd(sections.alpha, h.width * h.height, 'alpha plane') : null;
  let a, theta, arm;
  if (h.shared) {
    const m = modelFor(h, options.models || []);
    a = m.arch;
    theta = unpackSynthesis(sections.synthesis, a, m.thetas[h.level], m.masks[h.level]);
    arm = sections.arm.length ? armFromBytes(sections.arm) : m.arm;
  } else {
    a = archOf(h);
    theta = unpackSynthesis(sections.synthesis, a, null, null);
    arm = armFromBytes(sections.arm);
  }
  const shapes = gridShapes(h.height, h.width, a.levels);
  const { grids } = decodeLatents(sections.latents, shapes, arm, h.version >= 6);
  const t1 = now();
  const feats = features(a, theta, grids, shapes, H, W);
  const t2 = now();
  return { header: h, width: W, height: H, arch: a, theta, features: feats, alpha, grids, shapes,
    bytes: data.length, t0, t1, t2 };
}

export function decodeEnd(s, rgb) {
  const t3 = now();
  const { header: h, width: W, height: H, alpha, grids, shapes, t0, t1, t2 } = s;
  const grey = h.imageMode <= 1;
  const channels = (grey ? 1 : 3) + (h.hasAlpha ? 1 : 0);
  const pixels = new Uint8Array(W * H * channels);
  const alphaOut = alpha && (W !== h.width || H !== h.height) ? resizeLanczos(alpha, h.width, h.height, W, H) : alpha;
  for (let p = 0, o = 0; p < W * H; p++) {
    const r = roundHalfEven(rgb[3 * p]), g = roundHalfEven(rgb[3 * p + 1]), b = roundHalfEven(rgb[3 * p + 2]);
    if (grey) pixels[o++] = roundHalfEven(Math.fround((r + g + b) / 3));
    else { pixels[o++] = r; pixels[o++] = g; pixels[o++] = b; }
    if (alphaOut) pixels[o++] = alphaOut[p];
  }
  return {
    header: h, width: W, height: H, channels, pixels, latents: grids, shapes,
    bytes: s.bytes, bpp: (8 * s.bytes) / (h.width * h.height),
    timings: { entropy: t1 - t0, upsample: t2 - t1, synthesis: t3 - t2, total: now() - t0 },
  };
}

// numpy's round (half to even), then the clip to 0..255 of an 8-bit sample.
function roundHalfEven(v) {
  let r = Math.round(v);
  if (r - v === 0.5 && (r & 1)) r -= 1;
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

function now() {
  return globalThis.performance ? performance.now() : Date.now();
}
