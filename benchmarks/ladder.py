"""Rate-distortion of a shared model's ladder on real photos (one JSON per run).

    python benchmarks/ladder.py --levels 0,4,8,12,15 --images 4 --crop 256 \
        --out benchmarks/results/ladder-default.json

Images: the development set (mate-backgrounds, palapeli, gnome faces cut to 768x512 as in
shared/DATA.md), never used for training; --crop takes a centred square to save time.
Results schema (shared by every benchmark here): {"codec", "description", "settings",
"command", "rows": [{"image", "bytes", "bpp", "psnr", "encode_s", "decode_s", "params",
"level"}], "summary": per-setting means computed from the rows}.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import inrcodec
from inrcodec.datasets import build_dev_set, cache_dir
from inrcodec.metrics import psnr


def dev_images(n: int, crop: int | None) -> list[tuple[str, np.ndarray]]:
    paths = sorted(build_dev_set(cache_dir() / "devset"))
    # spread the choice over the three sources rather than taking the first n
    pick = [paths[i] for i in np.linspace(0, len(paths) - 1, n).round().astype(int)]
    out = []
    for p in pick:
        a = np.asarray(Image.open(p).convert("RGB"))
        if crop:
            h, w = a.shape[:2]
            c = min(crop, h, w)
            a = a[(h - c) // 2:(h - c) // 2 + c, (w - c) // 2:(w - c) // 2 + c]
        out.append((p.name, np.ascontiguousarray(a)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="shared model (default: the shipped one)")
    ap.add_argument("--levels", default=None, help="comma-separated levels (default: all)")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--crop", type=int, default=None)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    model = inrcodec.load_model(args.model)
    levels = [int(x) for x in args.levels.split(",")] if args.levels else \
        list(range(len(model.levels)))
    images = dev_images(args.images, args.crop)
    rows = []
    for level in levels:
        for name, img in images:
            r = inrcodec.encode_report(img, model=model, level=level, steps=args.steps)
            t = time.perf_counter()
            dec = inrcodec.decode_array(r.data, model=model)
            dt = time.perf_counter() - t
            rows.append({"image": name, "level": level, "bytes": r.bytes, "bpp": r.bpp,
                         "psnr": psnr(dec, img), "encode_s": r.seconds, "decode_s": dt,
                         "params": r.params * r.tiles})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    summary = []
    for level in levels:
        rs = [r for r in rows if r["level"] == level]
        summary.append({"level": level, "density": model.ladder()[level]["density"],
                        **{k: float(np.mean([r[k] for r in rs]))
                           for k in ("bpp", "psnr", "encode_s", "decode_s")}})
    res = {"codec": "inrcodec", "description": f"Meta-SparseINR ladder, model {model.hash[:12]}",
           "settings": {"steps": args.steps, "crop": args.crop, "images": args.images,
                        "model": model.hash, "tile": model.tile, "arch": model.arch.to_dict()},
           "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
           "machine": platform.processor() or platform.machine(),
           "rows": rows, "summary": summary}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    for s in summary:
        print(f"level {s['level']:>2} density {s['density']:.3f}  bpp {s['bpp']:.3f}  "
              f"PSNR {s['psnr']:.2f}  encode {s['encode_s']:.1f} s  decode {s['decode_s']:.2f} s")


if __name__ == "__main__":
    main()
