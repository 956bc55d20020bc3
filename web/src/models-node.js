// Node only: the latent models this repository ships (inrcodec/models) and the test
// vectors' models, loaded from their files.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadLatentModel } from './model.js';

export const MODEL_FILES = [
  '../../inrcodec/models/latent.safetensors',
  '../../inrcodec/models/latent-0.16.safetensors',
  '../../inrcodec/models/latent-0.12.safetensors',
  '../../inrcodec/models/latent-0.11.safetensors',
  '../../inrcodec/models/latent-24.safetensors',
  '../../bitstream_spec/vectors/tiny-latent-model.safetensors',
  '../../bitstream_spec/vectors/tiny-latent-learned-model.safetensors',
  '../../bitstream_spec/vectors/tiny-latent-residual-model.safetensors',
];

export function loadModels(files = MODEL_FILES) {
  return files.map((f) => fileURLToPath(new URL(f, import.meta.url)))
    .filter(existsSync).map((p) => loadLatentModel(new Uint8Array(readFileSync(p))));
}
