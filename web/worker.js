// The page's decoder, off the main thread: loads the shared latent models once, then
// answers {bytes, size} with the decoded image or the reason the file was refused.
import { decode, IMAGE_MODES } from './src/decoder.js';
import { loadLatentModel } from './src/model.js';
import { FormatError } from './src/errors.js';

// The models a file may name, fetched from the same server as the page (the repository's
// own files: run the static server at the repository root).
const MODEL_URLS = [
  '../inrcodec/models/latent.safetensors',
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
    const r = decode(new Uint8Array(bytes), { models, size });
    const h = r.header;
    const header = {
      version: h.version, width: h.width, height: h.height, image_mode: IMAGE_MODES[h.imageMode],
      levels: h.levels, level: h.level, coords: h.coords, upsample: ['bilinear', 'bicubic', 'learned'][h.upsample],
      hidden: h.hidden, layers: h.layers, act: ['relu', 'sine'][h.act], w0: h.w0,
      model_hash: h.modelHash, synth_len: h.synth_len, arm_len: h.arm_len, latent_len: h.latent_len, alpha_len: h.alpha_len,
    };
    self.postMessage({ id, ok: true, header, width: r.width, height: r.height, channels: r.channels,
      pixels: r.pixels, bytes: r.bytes, bpp: r.bpp, timings: r.timings }, [r.pixels.buffer]);
  } catch (e) {
    const known = e instanceof FormatError;
    self.postMessage({ id, ok: false, error: known ? e.message : `decoder error: ${e && e.message}` });
  }
};
