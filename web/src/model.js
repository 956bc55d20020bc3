// Shared latent models (bitstream_spec/shared_model.md, versions 3 and 4: 4 adds the
// ARM's residual layer, arm.wr and arm.br): a safetensors file
// (8-byte header length, JSON header, raw little-endian tensors) whose SHA-256 is the
// `model_hash` of the files coded with it.
import { ModelError } from './errors.js';
import { sha256hex } from './sha256.js';
import { nParams, UPSAMPLINGS } from './synthesis.js';

const DTYPES = { F32: 4, I16: 2, U8: 1 };
const ARCH_KEYS = new Set(['levels', 'hidden', 'layers', 'act', 'w0', 'arm_hidden', 'coords', 'upsample']);

function readSafetensors(bytes) {
  if (bytes.length < 8) throw new ModelError('model file is truncated');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > bytes.length - 8) throw new ModelError('model header is truncated');
  let head;
  try {
    head = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new ModelError(`model header is not JSON: ${e.message}`);
  }
  const meta = head.__metadata__ || {};
  delete head.__metadata__;
  const base = 8 + n;
  const tensors = {};
  for (const [name, t] of Object.entries(head)) {
    const size = DTYPES[t.dtype];
    const [a, b] = t.data_offsets;
    const count = t.shape.reduce((x, y) => x * y, 1);
    if (!size || b - a !== count * size || base + b > bytes.length) throw new ModelError(`tensor ${name} is malformed`);
    const raw = bytes.slice(base + a, base + b); // copied: aligned for the typed array
    const arr = t.dtype === 'F32' ? new Float32Array(raw.buffer) : t.dtype === 'I16' ? new Int16Array(raw.buffer) : raw;
    tensors[name] = { dtype: t.dtype, shape: t.shape, data: arr };
  }
  return { meta, tensors };
}

// bytes -> {hash, arch, thetas, masks, arm, nLevels}
export function loadLatentModel(bytes) {
  const { meta, tensors } = readSafetensors(bytes);
  let m;
  try {
    m = JSON.parse(meta.inrcodec);
  } catch {
    throw new ModelError('not an inrcodec shared model');
  }
  if (!['3', '4'].includes(m.format_version) || m.kind !== 'latent') {
    throw new ModelError(`not a latent-mode shared model (format version ${m.format_version})`);
  }
  const raw = JSON.parse(m.arch);
  for (const k of Object.keys(raw)) if (!ARCH_KEYS.has(k)) throw new ModelError(`latent model metadata is invalid: ${k}`);
  const arch = { levels: 7, hidden: 32, layers: 2, act: 'relu', w0: 30, arm_hidden: 16, coords: false, upsample: 'bilinear', ...raw };
  if (!UPSAMPLINGS.includes(arch.upsample)) throw new ModelError(`unknown upsampling ${arch.upsample}`);
  const n = nParams(arch);
  const nLevels = Number(m.n_levels);
  const thetas = [], masks = [];
  for (let k = 0; k < nLevels; k++) {
    const key = `level.${String(k).padStart(2, '0')}`;
    const theta = tensors[`${key}.theta`], packed = tensors[`${key}.mask`];
    if (!theta || !packed || theta.dtype !== 'F32' || theta.data.length !== n || packed.data.length !== Math.ceil(n / 8)) {
      throw new ModelError(`level ${k}: expected ${n} float32 values and their mask`);
    }
    const mask = new Uint8Array(n);
    for (let i = 0; i < n; i++) mask[i] = (packed.data[i >> 3] >> (i & 7)) & 1;
    thetas.push(theta.data);
    masks.push(mask);
  }
  const t = (name) => {
    const x = tensors[`arm.${name}`];
    if (!x || x.dtype !== 'I16') throw new ModelError(`arm.${name} must be int16`);
    return Float64Array.from(x.data);
  };
  const w1 = t('w1');
  const hidden = w1.length / 12;
  const arm = { hidden, w1, b1: t('b1'), w2: t('w2'), b2: t('b2') };
  if (m.format_version === '4') {
    arm.wr = t('wr');
    arm.br = t('br');
    if (arm.wr.length !== hidden * hidden || arm.br.length !== hidden) throw new ModelError('arm.wr or arm.br has the wrong size');
  }
  return { hash: sha256hex(bytes), arch, thetas, masks, arm, nLevels };
}
