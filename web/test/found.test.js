// node --test: inputs the differential fuzzer (web/fuzz/fuzz.py) found where web/ and the
// reference decoder disagreed, kept as regression tests. Each test/found/NAME.txt says what
// the disagreement was and, on its `expect:` line, what the reference decoder does with
// NAME.inr: `refuse: <words of its message>` or `accept`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decode } from '../src/decoder.js';
import { FormatError } from '../src/errors.js';
import { loadModels } from '../src/models-node.js';
import { zstdBuild } from '../src/zstd.js';

const FOUND = fileURLToPath(new URL('./found/', import.meta.url));
const models = loadModels();
const names = readdirSync(FOUND).filter((f) => f.endsWith('.inr')).map((f) => f.slice(0, -4)).sort();

test('there are found inputs', () => assert.ok(names.length > 0));

test('libzstd runs as its exact (wasm64) build', () => assert.equal(zstdBuild(), 'wasm64'));

for (const name of names) {
  const expect = /^expect: (.*)$/m.exec(readFileSync(`${FOUND}${name}.txt`, 'utf8'));
  test(`found input ${name}: ${expect ? expect[1] : '(no expect line)'}`, () => {
    assert.ok(expect, `${name}.txt has an expect: line`);
    const data = new Uint8Array(readFileSync(`${FOUND}${name}.inr`));
    if (expect[1] === 'accept') {
      decode(data, { models });
    } else {
      const words = expect[1].replace(/^refuse: /, '');
      assert.throws(() => decode(data, { models }), (e) => e instanceof FormatError && e.message.includes(words));
    }
  });
}
