// The page: reads a dropped or picked file, has the worker decode it, shows the pixels and
// the header, and says clearly why a file could not be shown.
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const $ = (id) => document.getElementById(id);
let current = null; // the bytes of the file on show
let nextId = 0;
const pending = new Map();

worker.onmessage = (ev) => {
  const resolve = pending.get(ev.data.id);
  pending.delete(ev.data.id);
  resolve(ev.data);
};
worker.onerror = (ev) => showError(`the decoder could not start: ${ev.message || 'unknown error'}`);

function ask(msg, transfer = []) {
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    worker.postMessage({ id, ...msg }, transfer);
  });
}

function showError(text) {
  $('error').textContent = text;
  document.body.dataset.state = 'error';
}

async function open(file) {
  $('error').textContent = '';
  $('status').textContent = `Decoding ${file.name}...`;
  document.body.dataset.state = 'busy';
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (file.name.endsWith('.safetensors')) {
    const r = await ask({ model: bytes.buffer }, [bytes.buffer]);
    $('status').textContent = r.ok ? `Model ${file.name} loaded.` : '';
    if (!r.ok) showError(r.error); else document.body.dataset.state = 'model';
    return;
  }
  current = { name: file.name, bytes };
  await show(null);
}

async function show(size) {
  const copy = current.bytes.slice();
  const t0 = performance.now();
  const r = await ask({ bytes: copy.buffer, size }, [copy.buffer]);
  if (!r.ok) {
    $('canvas').width = $('canvas').height = 0;
    $('header').replaceChildren();
    $('render').disabled = true;
    $('status').textContent = '';
    showError(`${current.name} cannot be shown: ${r.error}`);
    return;
  }
  draw(r);
  const h = r.header;
  const rows = [['file', current.name], ['size', `${h.width} x ${h.height}`], ['version', h.version],
    ['bytes', r.bytes], ['bpp', r.bpp.toFixed(4)], ['image mode', h.image_mode], ['grids', h.levels],
    ['upsampling', h.upsample], ['synthesis', `${h.layers} x ${h.hidden} ${h.act}${h.act === 'sine' ? ` (w0 ${h.w0})` : ''}`],
    ['level', h.level], ['model', /^0+$/.test(h.model_hash) ? 'none (self-contained)' : h.model_hash],
    ['shown at', `${r.width} x ${r.height}`]];
  $('header').replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement('tr');
    const a = document.createElement('td'); a.textContent = k;
    const b = document.createElement('td'); b.textContent = v;
    if (k === 'model') b.id = 'hash';
    tr.append(a, b);
    return tr;
  }));
  $('w').value = r.width; $('h').value = r.height;
  $('render').disabled = false;
  $('status').textContent = `Decoded in ${(performance.now() - t0).toFixed(0)} ms ` +
    `(decoder: ${r.timings.total.toFixed(0)} ms; latents ${r.timings.entropy.toFixed(0)}, ` +
    `upsampling ${r.timings.upsample.toFixed(0)}, synthesis ${r.timings.synthesis.toFixed(0)}` +
    `${r.timings.threads > 1 ? ` on ${r.timings.threads} threads` : ''}).`;
  document.body.dataset.state = 'decoded';
  document.body.dataset.decodeMs = r.timings.total.toFixed(1);
  document.body.dataset.zstd = r.zstd;
}

function draw(r) {
  const c = $('canvas');
  c.width = r.width; c.height = r.height;
  const img = new ImageData(r.width, r.height);
  const d = img.data, p = r.pixels, ch = r.channels;
  for (let i = 0, o = 0; i < r.width * r.height; i++, o += 4) {
    const s = i * ch;
    if (ch <= 2) { d[o] = d[o + 1] = d[o + 2] = p[s]; d[o + 3] = ch === 2 ? p[s + 1] : 255; }
    else { d[o] = p[s]; d[o + 1] = p[s + 1]; d[o + 2] = p[s + 2]; d[o + 3] = ch === 4 ? p[s + 3] : 255; }
  }
  c.getContext('2d').putImageData(img, 0, 0);
}

$('file').addEventListener('change', (e) => {
  const f = e.target.files[0];
  e.target.value = ''; // the same file picked again is opened again
  if (f) open(f);
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer.files[0]) open(e.dataTransfer.files[0]);
});
$('render').addEventListener('click', () => {
  const w = Number($('w').value), h = Number($('h').value);
  if (!(Number.isInteger(w) && Number.isInteger(h) && w >= 1 && h >= 1 && w <= 65536 && h <= 65536)) {
    showError('the size must be two whole numbers from 1 to 65536');
    return;
  }
  $('error').textContent = '';
  show([w, h]);
});
document.body.dataset.state = 'ready';
