// Times decode() in Node: node web/tools/bench.mjs FILE [REPS]. Prints a JSON line with the
// median and each repetition's stage times (entropy: container, alpha, latents; upsample;
// synthesis), in ms.
import { readFileSync } from 'node:fs';
import { decode } from '../src/decoder.js';
import { loadModels } from '../src/models-node.js';

const [file, repsArg] = process.argv.slice(2);
const reps = Number(repsArg || 7);
const data = new Uint8Array(readFileSync(file));
const models = loadModels();
decode(data, { models }); // warm-up (JIT)
const runs = [];
for (let i = 0; i < reps; i++) runs.push(decode(data, { models }).timings);
const med = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
const out = { file, reps };
for (const k of ['entropy', 'upsample', 'synthesis', 'total']) out[k] = Math.round(med(k) * 10) / 10;
console.log(JSON.stringify(out));
