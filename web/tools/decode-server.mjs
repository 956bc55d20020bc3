// A long-running decoder for tests and differential fuzzing: one JSON request per line on
// stdin, {"id", "data" (base64 .inr), "size" ([W, H], optional), "pixels" (bool)}, one
// JSON answer per line on stdout: {"id", "ok", "error", "kind", "latents_sha256",
// "pixels_sha256", "pixels" (base64, if asked), "width", "height", "channels", "ms"}.
// "kind" is "format" for a refused file and "crash" for anything else (a bug).
// {"id", "unzstd" (base64 section), "size"}: the alpha plane's zstd frame alone (decoder.js
// unzstd) -> {"id", "ok", "error", "kind", "sha256"} (web/fuzz/fuzz_zstd.py).
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';
import { decode, unzstd } from '../src/decoder.js';
import { FormatError } from '../src/errors.js';
import { loadModels } from '../src/models-node.js';

const models = loadModels();
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const req = JSON.parse(line);
  const t0 = performance.now();
  let ans;
  try {
    if (req.unzstd !== undefined) {
      const out = unzstd(new Uint8Array(Buffer.from(req.unzstd, 'base64')), req.size, 'alpha plane');
      process.stdout.write(JSON.stringify({ id: req.id, ok: true, sha256: createHash('sha256').update(out).digest('hex') }) + '\n');
      return;
    }
    const data = new Uint8Array(Buffer.from(req.data, 'base64'));
    const r = decode(data, { models, size: req.size });
    const lat = createHash('sha256');
    for (const g of r.latents) lat.update(new Uint8Array(g.buffer, g.byteOffset, g.byteLength));
    ans = { id: req.id, ok: true, width: r.width, height: r.height, channels: r.channels,
      latents_sha256: lat.digest('hex'),
      pixels_sha256: createHash('sha256').update(r.pixels).digest('hex'),
      timings: r.timings };
    if (req.pixels) ans.pixels = Buffer.from(r.pixels).toString('base64');
  } catch (e) {
    ans = { id: req.id, ok: false, kind: e instanceof FormatError ? 'format' : 'crash',
      error: String(e && e.stack || e) };
  }
  ans.ms = performance.now() - t0;
  process.stdout.write(JSON.stringify(ans) + '\n');
});
