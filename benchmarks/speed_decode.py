"""speed.py's latent-decode section: how fast files are read where people feel it, each
figure next to JPEG's in the same run: an in-process decode of the development photos'
files (part by part on one), `inrcodec decode` as a process, InrDataset through a
DataLoader against the same photos as JPEG files, and a big photo's decode.

    python benchmarks/speed.py --sections latent-decode --threads 2 --inr-dir DIR \
        [--big-inr FILE.inr] --out speed-decode.json

DIR holds `inrcodec encode-dir`'s files of the development photos. JPEG stands in as the
reference: each photo saved at quality 90 and read with Pillow (libjpeg-turbo), in process
and as a process. Run it with nothing else on the machine.
"""
from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image



def _best(f, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def _jpeg(path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def in_process(files: list[Path], sources: list[Path], reps: int, log) -> dict:
    """Each file's decode (best of reps) and its photo's JPEG decode, alternating."""
    import inrcodec
    rows = []
    for f, src in zip(files, sources):
        data, jpg = f.read_bytes(), _jpeg(src)
        inrcodec.decode_array(data)  # compiled kernels and the model loaded once
        rows.append({"file": f.name, "size": list(Image.open(src).size),
                     "decode_s": _best(lambda: inrcodec.decode_array(data), reps),
                     "jpeg_decode_s": _best(lambda: Image.open(io.BytesIO(jpg)).convert("RGB")
                                            .load(), reps)})
    med = {k: statistics.median(r[k] for r in rows) for k in ("decode_s", "jpeg_decode_s")}
    log(f"in process: median decode {1e3 * med['decode_s']:.1f} ms, JPEG "
        f"{1e3 * med['jpeg_decode_s']:.2f} ms (x{med['decode_s'] / med['jpeg_decode_s']:.0f})")
    return {"files": rows, "median": med}


def parts(file: Path, reps: int, log) -> dict:
    """One file's decode part by part: the latents (prediction, range decoding and the
    canonical check in one pass), the pixels (render), and the rest (container, model,
    synthesis section, rounding)."""
    import inrcodec
    from inrcodec.codec import bitstream
    from inrcodec.codec.latent import arm, codec, render
    from inrcodec.codec.latent.format import unpack_synthesis
    from inrcodec.codec.latent.layout import grid_shapes
    data = file.read_bytes()
    h = bitstream.verify(data)
    m = codec.model_for(h, None)
    a = m.arch
    theta = unpack_synthesis(bitstream.section(data, h, "synthesis"), a, m.thetas[h.level],
                             m.masks[h.level])
    sec = bitstream.section(data, h, "latents")
    shapes = grid_shapes(h.height, h.width, a.levels)
    params = arm.ArmParams(*m.arm)
    grids = arm.decode_section(sec, shapes, params, h.binned)
    out = {"file": file.name,
           "total_s": _best(lambda: inrcodec.decode_array(data), reps),
           "latents_s": _best(lambda: arm.decode_section(sec, shapes, params, h.binned), reps),
           "render_s": _best(lambda: render.render(a, theta, grids, h.height, h.width), reps),
           "latents": int(sum(x * y for x, y in shapes))}
    log(f"parts of {file.name}: total {1e3 * out['total_s']:.1f} ms = latents "
        f"{1e3 * out['latents_s']:.1f} + pixels {1e3 * out['render_s']:.1f} + the rest")
    return out


def _process_s(cmd: list[str], reps: int) -> float:
    def once():
        subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ))
    once()  # numba's on-disk cache and the page cache warm
    return statistics.median(_timed(once) for _ in range(reps))


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def _decode_cmd(file: Path, out: Path) -> list[str]:
    """`inrcodec decode`, the console script beside this interpreter as a user runs it
    (`python -m inrcodec.cli` where there is none)."""
    script = Path(sys.executable).parent / "inrcodec"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "inrcodec.cli"]
    return cmd + ["decode", str(file), str(out), "--force"]


def as_process(file: Path, source: Path, reps: int, log) -> dict:
    """`inrcodec decode FILE out.png` (and out.bmp: no compression) as a process, next to a
    process that reads the photo's JPEG and writes the same PNG with Pillow, and a bare
    interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        jpg = Path(tmp) / "photo.jpg"
        jpg.write_bytes(_jpeg(source))
        out = {"file": file.name,
               "inrcodec_decode_s": _process_s(_decode_cmd(file, Path(tmp) / "a.png"), reps),
               "inrcodec_decode_bmp_s": _process_s(_decode_cmd(file, Path(tmp) / "a.bmp"),
                                                   reps),
               "jpeg_to_png_s": _process_s(
                   [sys.executable, "-c", "import sys; from PIL import Image; "
                    "Image.open(sys.argv[1]).convert('RGB').save(sys.argv[2])", str(jpg),
                    str(Path(tmp) / "b.png")], reps),
               "python_s": _process_s([sys.executable, "-c", "pass"], reps),
               "import_numba_s": _process_s([sys.executable, "-c", "import numba"], reps)}
    log(f"as a process: inrcodec decode {out['inrcodec_decode_s']:.2f} s (to BMP "
        f"{out['inrcodec_decode_bmp_s']:.2f} s), JPEG -> PNG "
        f"{out['jpeg_to_png_s']:.2f} s, python {out['python_s']:.2f} s, import numba "
        f"{out['import_numba_s']:.2f} s")
    return out


class _JpegFiles:
    """The reference dataset: the same photos as JPEG files, read as torchvision's
    ImageFolder reads them (Pillow, RGB) into (C, H, W) uint8 tensors."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torch
        with Image.open(self.paths[i]) as im:
            a = np.asarray(im.convert("RGB"))
        return torch.from_numpy(a.copy()).permute(2, 0, 1)


def dataset(inr_dir: Path, sources: list[Path], workers: int, epochs: int, log) -> dict:
    """Images per second through torch's DataLoader (batch 1, `workers` workers, pinned
    memory off: no GPU here), InrDataset against the JPEG files, alternating epochs; the
    first epoch of each (workers starting) is left out."""
    import torch

    import inrcodec
    with tempfile.TemporaryDirectory() as tmp:
        jpgs = []
        for k, s in enumerate(sources):
            p = Path(tmp) / f"{k:03d}.jpg"
            p.write_bytes(_jpeg(s))
            jpgs.append(p)
        sets = {"inr": inrcodec.InrDataset(inr_dir, dtype=torch.uint8),
                "jpeg": _JpegFiles(jpgs)}
        rates = {k: [] for k in sets}
        for e in range(epochs + 1):
            for k, ds in sets.items():
                loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=workers,
                                                     persistent_workers=False)
                t = time.perf_counter()
                n = sum(1 for _ in loader)
                if e:
                    rates[k].append(n / (time.perf_counter() - t))
    out = {"images": len(sources), "workers": workers, "epochs": epochs,
           "images_per_s": {k: statistics.median(v) for k, v in rates.items()},
           "epochs_images_per_s": rates}
    r = out["images_per_s"]
    log(f"DataLoader ({workers} workers): InrDataset {r['inr']:.1f} images/s, JPEG files "
        f"{r['jpeg']:.1f} images/s")
    return out


def big(file: Path, reps: int, log) -> dict:
    """A big photo's file: in process and as a process, next to its JPEG's decode (the
    JPEG made from the file's own decoded pixels: the photo is not needed)."""
    import inrcodec
    data = file.read_bytes()
    pixels = inrcodec.decode_array(data)
    for s in (0.5, 0.25):  # their kernels loaded once, as the full size's above
        inrcodec.decode_array(data, scale=s)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    jpg = buf.getvalue()
    out = {"file": file.name, "size": [pixels.shape[1], pixels.shape[0]],
           "decode_s": _best(lambda: inrcodec.decode_array(data), reps),
           "decode_scaled_s": {str(s): _best(lambda: inrcodec.decode_array(data, scale=s), reps)
                               for s in (0.5, 0.25)},
           "jpeg_decode_s": _best(lambda: Image.open(io.BytesIO(jpg)).convert("RGB").load(),
                                  reps)}
    with tempfile.TemporaryDirectory() as tmp:
        for ext in ("png", "bmp"):
            out[f"inrcodec_decode_{ext}_process_s"] = _process_s(
                _decode_cmd(file, Path(tmp) / f"a.{ext}"), max(1, reps // 2))
    log(f"{out['size'][0]}x{out['size'][1]}: decode {out['decode_s']:.2f} s in process "
        f"(at 1/2 {out['decode_scaled_s']['0.5']:.2f} s, at 1/4 "
        f"{out['decode_scaled_s']['0.25']:.2f} s), "
        f"as a process {out['inrcodec_decode_png_process_s']:.2f} s to PNG, "
        f"{out['inrcodec_decode_bmp_process_s']:.2f} s to BMP; JPEG "
        f"{out['jpeg_decode_s']:.3f} s")
    return out


def section(args, log) -> dict:
    """speed.py's latent-decode section: --inr-dir (encode-dir's files of the development
    photos, sources in --source-dir), --big-inr, --reps, --workers, --epochs, --threads."""
    from inrcodec.codec.latent import render
    render.THREADS = args.threads
    man = json.loads((args.inr_dir / "manifest.json").read_text())
    entries = sorted(man["images"], key=lambda e: e["file"])
    files = [args.inr_dir / e["file"] for e in entries]
    sources = [args.source_dir / e["source"] for e in entries]
    res = {"inr_dir": str(args.inr_dir), "files": len(files),
           "model": man["settings"].get("model_hash"), "cpus": len(os.sched_getaffinity(0))}
    land = next(i for i, s in enumerate(sources) if Image.open(s).size == (768, 512))
    res["in_process"] = in_process(files, sources, args.reps, log)
    res["parts"] = parts(files[land], args.reps, log)
    res["process"] = as_process(files[land], sources[land], args.reps, log)
    res["dataset"] = dataset(args.inr_dir, sources, args.workers, args.epochs, log)
    if args.big_inr:
        res["big"] = big(args.big_inr, max(1, args.reps // 2), log)
    return res


if __name__ == "__main__":  # speed.py with this section alone
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import speed
    speed.main(["--sections", "latent-decode", *sys.argv[1:]])
