// Drives the page in headless Chromium (the system's, through playwright-core): for each
// file, opens it with the page's file picker, waits for the decoded image or the error,
// and reports the canvas pixels (RGBA, base64), the header table, the error text and the
// decoder's time. Used by tests/test_web.py (marked slow).
//
//   node web/tools/browser.mjs URL OUT_DIR FILE [FILE ...]
// prints one JSON object: {"results": [...]}; writes OUT_DIR/<file>.png screenshots.
import { chromium } from 'playwright-core';
import { basename, join } from 'node:path';

const [url, outDir, ...files] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
const logs = [];
page.on('console', (m) => logs.push(m.text()));
page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
await page.goto(url);
await page.waitForSelector('body[data-state="ready"]');
const results = [];
for (const f of files) {
  const [size, path] = f.includes('@') ? [f.split('@')[0].split('x').map(Number), f.split('@')[1]] : [null, f];
  await page.evaluate(() => { document.body.dataset.state = 'busy'; });
  await page.setInputFiles('#file', path);
  await page.waitForSelector('body[data-state="decoded"], body[data-state="error"]', { timeout: 120000 });
  if (size && await page.evaluate(() => document.body.dataset.state) === 'decoded') {
    await page.fill('#w', String(size[0]));
    await page.fill('#h', String(size[1]));
    await page.evaluate(() => { document.body.dataset.state = 'busy'; });
    await page.click('#render');
    await page.waitForSelector('body[data-state="decoded"], body[data-state="error"]', { timeout: 120000 });
  }
  const r = await page.evaluate(() => {
    const c = document.getElementById('canvas');
    const out = { state: document.body.dataset.state, error: document.getElementById('error').textContent,
      status: document.getElementById('status').textContent, decodeMs: Number(document.body.dataset.decodeMs), zstd: document.body.dataset.zstd,
      width: c.width, height: c.height,
      header: Object.fromEntries([...document.querySelectorAll('#header tr')].map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent])) };
    if (out.state === 'decoded' && c.width) {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let s = '';
      for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode(...d.subarray(i, i + 8192));
      out.rgba = btoa(s);
    }
    return out;
  });
  const shot = join(outDir, `${basename(path)}${size ? `-${size.join('x')}` : ''}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  results.push({ file: path, size, screenshot: shot, ...r });
}
await browser.close();
process.stdout.write(JSON.stringify({ results, logs }) + '\n');
