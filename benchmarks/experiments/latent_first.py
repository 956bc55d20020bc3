"""The first latent mode (format 3, synthesis fitted per image) on development photos at
full size, against JPEG at the same bits per pixel.

    OMP_NUM_THREADS=1 python benchmarks/experiments/latent_first.py --images 2 \
        --qualities 30,60 --steps 300 --out benchmarks/results/latent-first.json

Result: benchmarks/results/latent-first.json (made by inrcodec 0.2, format 3; since
format 4 the same command encodes with the shipped latent model, so its numbers differ).

For every photo and quality: `inrcodec encode --mode latent` (bpp of the whole file, PSNR
the decoder reproduces, encode seconds on one thread), and JPEG's PSNR at that bpp
(libjpeg-turbo via Pillow, qualities 5..95, interpolated in log rate).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import inrcodec  # noqa: E402
from inrcodec.metrics import psnr  # noqa: E402
from benchmarks.harness import dev_set  # noqa: E402


def jpeg_psnr_at(img: np.ndarray, bpp: float) -> float | None:
    pts = []
    for q in range(5, 100, 5):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=q)
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        pts.append((math.log(8 * len(buf.getvalue()) / (img.shape[0] * img.shape[1])),
                    psnr(dec, img)))
    pts.sort()
    x = math.log(bpp)
    if not pts[0][0] <= x <= pts[-1][0]:
        return None
    return float(np.interp(x, [p[0] for p in pts], [p[1] for p in pts]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--qualities", default="30,60")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name, img in dev_set(args.images):
        for quality in (int(q) for q in args.qualities.split(",")):
            t0 = time.perf_counter()
            r = inrcodec.encode_report(img, mode="latent", quality=quality, steps=args.steps)
            secs = time.perf_counter() - t0
            t1 = time.perf_counter()
            inrcodec.decode_array(r.data)
            dec_s = time.perf_counter() - t1
            j = jpeg_psnr_at(img, r.bpp)
            rows.append({"image": name, "width": r.width, "height": r.height,
                         "quality": quality, "steps": args.steps, "bytes": r.bytes,
                         "bpp": r.bpp, "psnr": r.psnr, "encode_s": secs, "decode_s": dec_s,
                         "jpeg_psnr_same_bpp": j})
            print(f"{name} q{quality}: {r.bpp:.3f} bpp, {r.psnr:.2f} dB (JPEG at that bpp: "
                  f"{'n/a' if j is None else f'{j:.2f}'} dB), encode {secs:.0f} s, decode "
                  f"{dec_s:.2f} s", flush=True)
    Path(args.out).write_text(json.dumps({
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "machine": platform.machine(), "threads": args.threads, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
