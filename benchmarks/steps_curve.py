"""Encode time against quality: --steps 100 / 300 / 1000 at one --quality setting.

    python benchmarks/steps_curve.py --quality 50 --steps 100,300,1000 --images 2 --crop 256 \
        --out benchmarks/results/steps-curve.json

For each image, one plain fit runs to 80% of the largest step count, with snapshots at
80% of every count; each snapshot then gets the remaining 20% as quantiser-aware steps,
exactly as `inrcodec encode --quality Q --steps N` runs them, and is stored with the
settings that quality means (level, step scale, lr; auto coder). encode_s is the time of
the fit up to the snapshot plus the quantiser-aware steps and coding (one thread).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inrcodec  # noqa: E402
from inrcodec import rate  # noqa: E402
from inrcodec.compress import DeltaQuantiser  # noqa: E402
from inrcodec.encoder import Session  # noqa: E402
from inrcodec.fit import fit  # noqa: E402
from inrcodec.imageio import as_loaded  # noqa: E402
from ladder import dev_images  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--quality", type=int, default=50)
    ap.add_argument("--steps", default="100,300,1000")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = inrcodec.load_model(args.model)
    counts = sorted(int(x) for x in args.steps.split(","))
    rows = []
    for name, img in dev_images(args.images, args.crop):
        sess = Session(as_loaded(img), m, torch.device("cpu"))
        base_s = rate.quality_settings(m, args.quality, counts[0])
        net, theta0 = m.net(base_s.level), m.levels[base_s.level].theta0
        plain = {n - base_s.quant.qat_steps(n): n for n in counts}
        snaps = {}
        t0 = time.perf_counter()

        def grab(_chunk, step, theta):
            if step in plain:
                snaps[step] = (theta.detach().cpu().clone(), time.perf_counter() - t0)
        fit(net, theta0, sess.coords, sess.targets, sess.weights,
            sess._cfg(max(plain), base_s.lr), on_step=grab)
        for p, n in sorted(plain.items()):
            s = rate.quality_settings(m, args.quality, n)
            theta, t_plain = snaps[p]
            t = time.perf_counter()
            dq = DeltaQuantiser.from_fit(net, theta0, theta, s.quant.step_scale)
            if n - p:
                theta = fit(net, theta0, sess.coords, sess.targets, sess.weights,
                            sess._cfg(n - p, s.lr * s.quant.qat_lr_factor), start=theta,
                            transform=dq.straight_through("cpu"))
            r = sess.encode(s, theta=theta, dq=dq)
            enc = t_plain + time.perf_counter() - t
            rows.append({"image": name, "steps": n, "level": s.level,
                         "step_scale": s.quant.step_scale, "lr": s.lr, "bytes": len(r.data),
                         "bpp": 8 * len(r.data) / (img.shape[0] * img.shape[1]), "psnr": r.psnr,
                         "encode_s": enc, "coder": inrcodec.entropy.CODERS[r.payload.coder]})
            print(json.dumps(rows[-1]), flush=True)
    summary = []
    for n in counts:
        rs = [r for r in rows if r["steps"] == n]
        summary.append({"steps": n, **{k: sum(r[k] for r in rs) / len(rs)
                                       for k in ("bpp", "psnr", "encode_s")}})
    doc = {"codec": "inrcodec-delta", "description": f"--quality {args.quality} at several --steps",
           "settings": {"quality": args.quality, "crop": args.crop, "images": args.images,
                        "model": m.hash, "threads": args.threads,
                        "machine": platform.processor() or platform.machine()},
           "model": m.hash,
           "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
           "rows": rows, "summary": summary}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    for s in summary:
        print(f"steps {s['steps']:>5}  bpp {s['bpp']:.3f}  PSNR {s['psnr']:.2f} dB  "
              f"encode {s['encode_s']:.1f} s")


if __name__ == "__main__":
    main()
