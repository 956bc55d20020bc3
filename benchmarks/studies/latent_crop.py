"""A decoded crop next to the original and next to JPEG, WebP and AVIF at the same file
size: the README's lead picture.

    python benchmarks/studies/latent_crop.py --photo gnome-faces-coffee2 --quality 50 \
        --box 140,40,200,150 --out benchmarks/results/latent-crop.png

Encodes the whole development photo with `inrcodec --mode latent` (shipped latent model;
`--mode weights`: the weight mode, format 5, shipped weight model),
finds the highest JPEG quality (Pillow, 4:2:0), WebP quality (Pillow's libwebp, method
6) and AVIF quality (Pillow's libavif, speed 0) whose file is no larger, and writes
original | inrcodec | JPEG | WebP | AVIF, each crop `--box` (x, y, width, height) shown 2x
(nearest neighbour). Prints the sizes and the whole-image PSNRs as one JSON line.

Result: benchmarks/results/latent-crop.png, and its JSON line in
benchmarks/results/latent-crop.json (the README's lead picture); with `--mode weights`,
benchmarks/results/weights-crop.png and .json.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import inrcodec
from inrcodec.metrics import psnr
from inrcodec.training.data import build_dev_set, cache_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from benchmarks.harness import command_line, portable_path  # noqa: E402


def largest_under(src: Image.Image, fmt: str, limit: int, opts: dict) -> tuple[int, bytes]:
    """(quality, file): the highest quality 1..100 whose `fmt` file is at most `limit` bytes."""
    best = None
    for q in range(1, 101):
        b = io.BytesIO()
        src.save(b, fmt, quality=q, **opts)
        if b.tell() <= limit:
            best = (q, b.getvalue())
    if best is None:
        sys.exit(f"{fmt} cannot make a file this small")
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", required=True, help="development photo name (no .png)")
    ap.add_argument("--quality", type=int, default=50)
    ap.add_argument("--mode", choices=["latent", "weights"], default="latent",
                    help="weights: the weight mode's format 5 (shipped weight model)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--box", required=True, help="x,y,width,height of the crop")
    ap.add_argument("--zoom", type=int, default=2)
    ap.add_argument("--out", required=True)
    argv = sys.argv[1:] if argv is None else list(argv)
    a = ap.parse_args(argv)
    build_dev_set(cache_dir() / "devset")
    path = cache_dir() / "devset" / f"{a.photo}.png"
    src = Image.open(path).convert("RGB")
    img = np.asarray(src)
    t = time.perf_counter()
    mode = {"mode": "latent"} if a.mode == "latent" else {"mode": "weights", "format_version": 5}
    r = inrcodec.encode_report(img, quality=a.quality, **mode,
                               **({"steps": a.steps} if a.steps else {}))
    enc_s = time.perf_counter() - t
    dec = inrcodec.decode_array(r.data)
    best = largest_under(src, "JPEG", r.bytes, {})
    webp = largest_under(src, "WEBP", r.bytes, {"method": 6})
    avif = largest_under(src, "AVIF", r.bytes, {"speed": 0})
    jpg, wbp, avf = (np.asarray(Image.open(io.BytesIO(b[1])).convert("RGB"))
                     for b in (best, webp, avif))
    x, y, w, h = (int(v) for v in a.box.split(","))
    crops = [im[y:y + h, x:x + w] for im in (img, dec, jpg, wbp, avf)]
    gap = np.full((h, 4, 3), 255, np.uint8)
    row = np.concatenate([c for crop in crops for c in (crop, gap)][:-1], 1)
    Image.fromarray(row).resize((row.shape[1] * a.zoom, row.shape[0] * a.zoom),
                                Image.NEAREST).save(a.out)
    line = json.dumps({"photo": path.name, "size": [img.shape[1], img.shape[0]],
                      "mode": a.mode, "quality": a.quality, "inrcodec_bytes": r.bytes,
                      "inrcodec_bpp": round(r.bpp, 4), "inrcodec_psnr": round(r.psnr, 2),
                      "jpeg_quality": best[0], "jpeg_bytes": len(best[1]),
                      "jpeg_bpp": round(8 * len(best[1]) / img.shape[0] / img.shape[1], 4),
                      "jpeg_psnr": round(psnr(jpg, img), 2), "webp_quality": webp[0],
                      "webp_bytes": len(webp[1]),
                      "webp_bpp": round(8 * len(webp[1]) / img.shape[0] / img.shape[1], 4),
                      "webp_psnr": round(psnr(wbp, img), 2), "avif_quality": avif[0],
                      "avif_bytes": len(avif[1]),
                      "avif_bpp": round(8 * len(avif[1]) / img.shape[0] / img.shape[1], 4),
                      "avif_psnr": round(psnr(avf, img), 2), "encode_s": round(enc_s, 1),
                      "box": [x, y, w, h], "out": portable_path(a.out),
                      "command": command_line(__file__, argv)})
    print(line)
    Path(a.out).with_suffix(".json").write_text(line + "\n")


if __name__ == "__main__":
    main()
