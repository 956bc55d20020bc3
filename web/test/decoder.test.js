// node --test: the test vectors decode to the pixels bitstream_spec/vectors/expected.json
// pins (the reference decoder's), damaged and unsupported files are refused with a
// FormatError that says why, and other sizes render.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { decode, verify } from '../src/decoder.js';
import { FormatError } from '../src/errors.js';
import { loadModels } from '../src/models-node.js';

const VECTORS = fileURLToPath(new URL('../../bitstream_spec/vectors/', import.meta.url));
const expected = JSON.parse(readFileSync(VECTORS + 'expected.json', 'utf8')).vectors;
const models = loadModels();
const sha = (b) => createHash('sha256').update(b).digest('hex');
const read = (name) => new Uint8Array(readFileSync(VECTORS + name));
const latentVectors = Object.keys(expected).filter((k) => /^v[3467]-/.test(k));

test('there are latent vectors of every latent version', () => {
  const versions = new Set(latentVectors.map((k) => k[1]));
  assert.deepEqual([...versions].sort(), ['3', '4', '6', '7']);
});

for (const name of latentVectors) {
  test(`vector ${name} decodes to the pinned pixels`, () => {
    const e = expected[name];
    const r = decode(read(`${name}.inr`), { models });
    assert.deepEqual([r.height, r.width, r.channels], e.decoded_shape);
    assert.equal(sha(r.pixels), e.decoded_sha256);
    assert.equal(String(r.header.version), e.header.version);
  });
}

for (const name of Object.keys(expected).filter((k) => /^v[125]-/.test(k))) {
  test(`weight-mode vector ${name} is refused by name`, () => {
    assert.throws(() => decode(read(`${name}.inr`), { models }), (e) => e instanceof FormatError && /weight mode/.test(e.message));
  });
}

test('damaged files are refused with a reason', () => {
  const good = read('v7-rgba-latent.inr');
  const cases = [
    [good.subarray(0, 3), /truncated/],
    [new Uint8Array([1, 2, 3, 4, 5, 6]), /not an inrcodec file/],
    [good.subarray(0, 200), /truncated/],
    [Uint8Array.from([...good, 0]), /unexpected bytes/],
  ];
  const flipped = good.slice();
  flipped[100] ^= 4;
  cases.push([flipped, /checksum/]);
  const v9 = good.slice();
  v9[4] = 9;
  cases.push([v9, /version 9/]);
  for (const [data, re] of cases) {
    assert.throws(() => decode(data, { models }), (e) => e instanceof FormatError && re.test(e.message), String(re));
  }
});

test('a file whose model is missing says which model it needs', () => {
  const data = read('v6-rgb-latent.inr');
  assert.throws(() => decode(data, { models: [] }), /needs the shared model [0-9a-f]{64}/);
});

test('rendering at another size', () => {
  for (const name of ['v6-rgb-latent', 'v7-rgb-latent-learned', 'v7-rgb-latent-residual', 'v7-rgba-latent', 'v3-rgb-latent']) {
    const r = decode(read(`${name}.inr`), { models, size: [57, 31] });
    assert.deepEqual([r.width, r.height], [57, 31]);
    assert.equal(r.pixels.length, 57 * 31 * r.channels);
  }
  // the stored size asked for explicitly is the plain decode
  const a = decode(read('v6-rgb-latent.inr'), { models });
  const b = decode(read('v6-rgb-latent.inr'), { models, size: [a.width, a.height] });
  assert.equal(sha(a.pixels), sha(b.pixels));
});

test('header parse agrees with expected.json', () => {
  for (const name of latentVectors) {
    const { header } = verify(read(`${name}.inr`));
    const e = expected[name].header;
    assert.equal(String(header.width), e.width);
    assert.equal(String(header.levels), e.levels);
    assert.equal(String(header.latent_len), e.latent_len);
  }
});

// Inputs the differential fuzzer found (web/fuzz/found, kept under test/regressions with
// the reference decoder's verdict in their name: *.accept.inr or *.refuse.inr).
const REG = fileURLToPath(new URL('./regressions/', import.meta.url));
if (existsSync(REG)) {
  for (const f of readdirSync(REG).filter((x) => x.endsWith('.inr'))) {
    test(`fuzz regression ${f}`, () => {
      const data = new Uint8Array(readFileSync(REG + f));
      if (f.endsWith('.refuse.inr')) assert.throws(() => decode(data, { models }), FormatError);
      else decode(data, { models });
    });
  }
}

test('the compiled synthesis gives the loop\'s samples bit for bit', async () => {
  const { synthesize, synthesizeLoop, compileSynthesis, nParams } = await import('../src/synthesis.js');
  const { decodeBegin } = await import('../src/decoder.js');
  const same = (x, y) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
  for (const name of latentVectors) {
    const s = decodeBegin(read(`${name}.inr`), { models });
    const n = s.width * s.height;
    assert.ok(compileSynthesis(s.arch, s.theta));
    assert.ok(same(synthesize(s.arch, s.theta, s.features, n), synthesizeLoop(s.arch, s.theta, s.features, n)), name);
  }
  // a ReLU network with pruned (zero) weights, on random features
  let seed = 1;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  const a = { levels: 5, hidden: 12, layers: 3, act: 'relu', w0: 30, coords: true, upsample: 'bilinear' };
  const theta = Float32Array.from({ length: nParams(a) }, (_, i) => (i % 7 === 0 ? 0 : rnd()));
  const feats = Float32Array.from({ length: 7 * 5000 }, rnd);
  assert.ok(same(synthesize(a, theta, feats, 5000), synthesizeLoop(a, theta, feats, 5000)));
});
