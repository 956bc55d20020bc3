"""Encode time against quality: --steps 100 / 300 / 1000 at one --quality setting.

    python benchmarks/experiments/steps_curve.py --quality 50,75 --steps 100,300,1000 \
        --images 2 --crop 256 --out benchmarks/results/steps-curve.json

Result: benchmarks/results/steps-curve.json (README "Steps" table; made as
`python benchmarks/steps_curve.py ...` before the script moved here). An earlier step-size
rule's run: benchmarks/results/steps-curve-final-delta-steps.jsonl.
Tiny check: `python benchmarks/experiments/steps_curve.py --steps 2 --images 1 --crop 64
--out /tmp/steps.json`.

Each image is encoded as `inrcodec encode --quality Q --steps N` does (the level, step
scale and lr that quality means; quantiser-aware last steps when they pay; auto coder),
once per N, from scratch: encode_s is the whole encode, decode check included (one
thread, after one small warm-up encode). psnr_fp16_plain: the plain N-step fit of the same
settings stored as fp16, i.e. what the fit reached before quantisation.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import inrcodec  # noqa: E402
from inrcodec.codec import entropy
from inrcodec.codec.weights import rate  # noqa: E402
from inrcodec.codec.weights.session import Session, Settings  # noqa: E402
from inrcodec.config import QuantConfig  # noqa: E402
from inrcodec.io import as_loaded  # noqa: E402
from benchmarks.harness import dev_images  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--quality", default="50", help="comma list of --quality values")
    ap.add_argument("--steps", default="100,300,1000")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = inrcodec.load_model(args.model)
    counts = sorted(int(x) for x in args.steps.split(","))
    qualities = [int(x) for x in args.quality.split(",")]
    warm = dev_images(1, 64)[0][1]  # one tiny encode first: torch's first-call costs
    Session([as_loaded(warm)], m, torch.device("cpu")).encode(rate.quality_settings(m, 50, 2))
    rows = []
    for name, img in dev_images(args.images, args.crop):
        for quality in qualities:
            for n in counts:
                # A fresh session per encode: encode_s is what a lone encode costs.
                sess = Session([as_loaded(img)], m, torch.device("cpu"))
                s = rate.quality_settings(m, quality, n)
                t = time.perf_counter()
                r = sess.encode(s)[0]
                enc = time.perf_counter() - t
                # the same fit's float quality: its plain N-step fit stored as fp16
                plain = sess.plain_fit(s.level, n, s.lr)[0]
                f16 = sess.write(0, Settings(level=s.level, steps=n, lr=s.lr,
                                             quant=QuantConfig(quantizer="fp16")), plain, None)
                rows.append({"image": name, "quality": quality, "steps": n, "level": s.level,
                             "step_scale": s.quant.step_scale, "lr": s.lr, "bytes": len(r.data),
                             "bpp": 8 * len(r.data) / (img.shape[0] * img.shape[1]),
                             "psnr": r.psnr, "encode_s": enc, "qat": r.qat,
                             "coder": entropy.CODERS[r.payload.coder],
                             "psnr_fp16_plain": f16.psnr})
                print(json.dumps(rows[-1]), flush=True)
    summary = []
    for quality in qualities:
        for n in counts:
            rs = [r for r in rows if r["steps"] == n and r["quality"] == quality]
            summary.append({"quality": quality, "steps": n, **{
                k: sum(r[k] for r in rs) / len(rs)
                for k in ("bpp", "psnr", "encode_s", "psnr_fp16_plain")}})
    doc = {"codec": "inrcodec-delta", "description": f"--quality {args.quality} at several --steps",
           "settings": {"quality": args.quality, "crop": args.crop, "images": args.images,
                        "model": m.hash, "threads": args.threads,
                        "machine": platform.processor() or platform.machine()},
           "model": m.hash,
           "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
           "rows": rows, "summary": summary}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    for s in summary:
        print(f"quality {s['quality']:>3} steps {s['steps']:>5}  bpp {s['bpp']:.3f}  "
              f"PSNR {s['psnr']:.2f} dB (plain fit as fp16: {s['psnr_fp16_plain']:.2f} dB)  "
              f"encode {s['encode_s']:.1f} s")


if __name__ == "__main__":
    main()
