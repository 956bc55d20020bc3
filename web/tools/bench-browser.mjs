// Times the page in headless Chromium (the system's, through playwright-core): opens FILE
// with the page's file picker REPS times (after one warm-up) and prints a JSON line with
// each run's decoder time (timings inside the worker) and the page's wall time (file
// picked -> image drawn, from the status line), in ms.
//
//   node web/tools/bench-browser.mjs URL FILE [REPS]
import { chromium } from 'playwright-core';

const [url, file, repsArg] = process.argv.slice(2);
const reps = Number(repsArg || 7);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage();
await page.goto(url);
await page.waitForSelector('body[data-state="ready"]');
const runs = [];
for (let i = 0; i <= reps; i++) {
  await page.evaluate(() => { document.body.dataset.state = 'busy'; });
  await page.setInputFiles('#file', file);
  await page.waitForSelector('body[data-state="decoded"], body[data-state="error"]', { timeout: 120000 });
  const r = await page.evaluate(() => ({ state: document.body.dataset.state, decodeMs: Number(document.body.dataset.decodeMs),
    status: document.getElementById('status').textContent, error: document.getElementById('error').textContent }));
  if (r.state !== 'decoded') throw new Error(r.error);
  const wall = Number(/Decoded in (\d+) ms/.exec(r.status)[1]);
  if (i > 0) runs.push({ decoder: r.decodeMs, wall, status: r.status });
}
await browser.close();
const med = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
console.log(JSON.stringify({ file, reps, decoder: med('decoder'), wall: med('wall'), runs, version: browser.version() }));
