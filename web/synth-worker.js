// A helper of the page's worker: runs the synthesis (the compiled MLP) on a slice of the
// pixels. Message: {arch, theta, features (channels first, inputs x m), m}; answer: the
// slice's Float32Array (m x 3).
import { synthesize } from './src/synthesis.js';

self.onmessage = (ev) => {
  const { arch, theta, features, m } = ev.data;
  const out = synthesize(arch, theta, features, m);
  self.postMessage(out, [out.buffer]);
};
