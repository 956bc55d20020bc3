// The page's decoder, off the main thread: loads the shared latent models once, then
// answers {bytes, size} with the decoded image or the reason the file was refused.
import { decodeBegin, decodeEnd, IMAGE_MODES } from './src/decoder.js';
import { synthesize, inputsOf } from './src/synthesis.js';
import { loadLatentModel } from './src/model.js';
import { FormatError } from './src/errors.js';
import { zstdBuild } from './src/zstd.js';

// The models a file may name, fetched from the same server as the page (the repository's
// own files: run the static server at the repository root).
const MODEL_URLS = [
  '../inrcodec/models/latent.safetensors',
  '../inrcodec/models/latent-0.16.safetensors',
  '../inrcodec/models/latent-0.12.safetensors',
  '../inrcodec/models/latent-0.11.safetensors',
  '../inrcodec/models/latent-24.safetensors',
  '../bitstream_spec/vectors/tiny-latent-model.safetensors',
  '../bitstream_spec/vectors/tiny-latent-learned-model.safetensors',
];

const models = [];
const ready = Promise.all(MODEL_URLS.map(async (u) => {
  try {
    const r = await fetch(new URL(u, import.meta.url));
    if (r.ok) models.push(loadLatentModel(new Uint8Array(await r.arrayBuffer())));
  } catch { /* a missing model only matters to the files that name it */ }
}));

// The synthesis, every pixel's MLP, is most of a decode's time: it is split into as many
// slices as the machine has cores, one run here and the others by helper workers.
const helpers = [];
try {
  const n = Math.min(Math.max((self.navigator && navigator.hardwareConcurrency) || 1, 1), 8);
  for (let i = 1; i < n; i++) helpers.push(new Worker(new URL('./synth-worker.js', import.meta.url), { type: 'module' }));
} catch { /* no nested workers: one thread */ }

async function synthesizeParallel(s) {
  const n = s.width * s.height, nin = inputsOf(s.arch);
  const parts = helpers.length && n >= 16384 ? helpers.length + 1 : 1;
  if (parts === 1) return synthesize(s.arch, s.theta, s.features, n);
  const step = Math.ceil(n / parts);
  const slice = (p0, p1) => {
    const f = new Float32Array(nin * (p1 - p0));
    for (let c = 0; c < nin; c++) f.set(s.features.subarray(c * n + p0, c * n + p1), c * (p1 - p0));
    return f;
  };
  const jobs = helpers.map((w, i) => {
    const p0 = (i + 1) * step, p1 = Math.min(n, p0 + step);
    if (p0 >= p1) return Promise.resolve([p0, new Float32Array(0)]);
    const features = slice(p0, p1);
    return new Promise((resolve, reject) => {
      w.onmessage = (ev) => resolve([p0, ev.data]);
      w.onerror = (e) => reject(new Error(`synthesis helper failed: ${e.message}`));
      w.postMessage({ arch: s.arch, theta: s.theta, features, m: p1 - p0 }, [features.buffer]);
    });
  });
  const out = new Float32Array(n * 3);
  out.set(synthesize(s.arch, s.theta, slice(0, Math.min(n, step)), Math.min(n, step)), 0);
  for (const [p0, part] of await Promise.all(jobs)) out.set(part, 3 * p0);
  return out;
}

self.onmessage = async (ev) => {
  const { id, bytes, size, model } = ev.data;
  await ready;
  if (model) {
    try {
      models.push(loadLatentModel(new Uint8Array(model)));
      self.postMessage({ id, ok: true, model: true });
    } catch (e) {
      self.postMessage({ id, ok: false, error: `not a latent model: ${e.message}` });
    }
    return;
  }
  try {
    const s = decodeBegin(new Uint8Array(bytes), { models, size });
    const r = decodeEnd(s, await synthesizeParallel(s));
    r.timings.threads = s.width * s.height >= 16384 ? helpers.length + 1 : 1;
    const h = r.header;
    const header = {
      version: h.version, width: h.width, height: h.height, image_mode: IMAGE_MODES[h.imageMode],
      levels: h.levels, level: h.level, coords: h.coords, upsample: ['bilinear', 'bicubic', 'learned'][h.upsample],
      hidden: h.hidden, layers: h.layers, act: ['relu', 'sine'][h.act], w0: h.w0,
      model_hash: h.modelHash, synth_len: h.synth_len, arm_len: h.arm_len, latent_len: h.latent_len, alpha_len: h.alpha_len,
    };
    self.postMessage({ id, ok: true, header, width: r.width, height: r.height, channels: r.channels,
      pixels: r.pixels, bytes: r.bytes, bpp: r.bpp, timings: r.timings, zstd: zstdBuild() }, [r.pixels.buffer]);
  } catch (e) {
    const known = e instanceof FormatError;
    self.postMessage({ id, ok: false, error: known ? e.message : `decoder error: ${e && e.message}` });
  }
};
