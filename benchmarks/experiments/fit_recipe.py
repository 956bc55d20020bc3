"""The latent fit's recipe (issue 22): variants of LatentFit against a base, same
photos, qualities and steps, each a whole encode and decode with the shipped model.

    python benchmarks/experiments/fit_recipe.py --pick 4 --qualities 20,45,70 \
        --variants noise,softround --threads 2 --out A.json
    python benchmarks/experiments/fit_recipe.py --report A.json [B.json ...] [--base noise]

`--report` prints, per variant, its BD-rate (pchip) against the base variant on the photos
both have, and its mean encode time as a ratio to the base's in the same runs. `default`
is whatever LatentFit's defaults are at the time (0.9.0: softround, T 0.5 -> 0.1); the
other names fix their recipe, so rows stay comparable across versions.

Result: benchmarks/results/fit-recipe-0.9.json (GreenMeadow and the panther at qualities
20 / 45 / 70: T 0.5 -> 0.1 -19.81% against noise, T 0.3 -> 0.1 -17.08%, time x1.11); the
4-photo numbers that chose 0.9.0's temperature are in docs/latent-mode.md ("The fit's
rounding (0.9.0)"), their session's files lost.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from benchmarks import bd  # noqa: E402
from benchmarks.harness import load_images  # noqa: E402
from inrcodec import decode_array  # noqa: E402
from inrcodec.codec.latent.codec import compress  # noqa: E402
from inrcodec.codec.latent.model import load_latent_model  # noqa: E402
from inrcodec.config import LATENT_STEPS, LatentFit, latent_lambda  # noqa: E402
from inrcodec.metrics import psnr  # noqa: E402

VARIANTS = {
    "default": {},
    "noise": {"quantizer": "noise"},  # 0.8.0's recipe: latent + U[-1/2, 1/2), then STE
    # C3 / Cool-chic: soft rounding around noise, temperature annealed, then straight-through
    "softround": {"quantizer": "softround", "temperature": (0.3, 0.1)},
    "softround-cc5": {"quantizer": "softround", "temperature": (0.35, 0.08),
                      "noise_scale": (0.76, 0.52)},
    "softround-hot": {"quantizer": "softround", "temperature": (0.5, 0.1)},
    "softround-cold": {"quantizer": "softround", "temperature": (0.3, 0.05)},
    "ste-0.1": {"ste_fraction": 0.1},
    "softround-ste-0.1": {"quantizer": "softround", "temperature": (0.3, 0.1),
                          "ste_fraction": 0.1},
}


def pick(n: int | None, only: str | None = None) -> list[tuple[str, np.ndarray]]:
    images = load_images("dev")
    if only:
        return [(k, p) for k, p in images if any(o in k for o in only.split(","))]
    if not n:
        return images
    small = [(k, p) for k, p in images if p.shape[:2] in ((512, 768), (768, 512))]
    return [small[k] for k in np.linspace(0, len(small) - 1, n).round().astype(int)]


def run(a) -> None:
    torch.set_num_threads(a.threads)
    m = load_latent_model(None)
    rows = []
    for name, px in pick(a.pick, a.only):
        for q in (int(v) for v in a.qualities.split(",")):
            for variant in a.variants.split(","):
                fs = replace(LatentFit(steps=a.steps, lam=latent_lambda(q)), **VARIANTS[variant])
                t = time.perf_counter()
                data = compress(px, "RGB", None, fs, m, m.default_level)
                sec = time.perf_counter() - t
                row = {"image": name, "quality": q, "variant": variant, "bytes": len(data),
                       "bpp": 8 * len(data) / (px.shape[0] * px.shape[1]),
                       "psnr": psnr(decode_array(data, model=m), px), "seconds": sec}
                rows.append(row)
                print(json.dumps(row), flush=True)
                Path(a.out).write_text(json.dumps(
                    {"command": "python " + " ".join(sys.argv), "rows": rows}, indent=1) + "\n")


def report(paths: list[str], base_name: str) -> None:
    rows = [r for p in paths for r in json.loads(Path(p).read_text())["rows"]]
    c: dict = {}
    for r in rows:
        c.setdefault(r["variant"], {}).setdefault(r["image"], []).append(r)
    base = c.pop(base_name)
    print(f"| variant | photos | BD-rate vs {base_name} | time ratio |\n|---|---|---|---|")
    for v, per in c.items():
        bds, ts, tb = [], [], []
        for im, rs in per.items():
            if im not in base or len(rs) < 2:
                continue
            qs = {r["quality"] for r in rs}
            b = [r for r in base[im] if r["quality"] in qs]
            ra, pa = zip(*sorted((r["bpp"], r["psnr"]) for r in b))
            rb, pb = zip(*sorted((r["bpp"], r["psnr"]) for r in rs))
            bds.append(bd.bd_rate(ra, pa, rb, pb, method="pchip"))
            ts += [r["seconds"] for r in rs]
            tb += [r["seconds"] for r in b]
        if bds:
            print(f"| {v} | {len(bds)} | {np.mean(bds):+.2f}% "
                  f"({', '.join(f'{x:+.1f}' for x in bds)}) | x{np.mean(ts) / np.mean(tb):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pick", type=int, help="N photos of 768x512, spread over the set")
    ap.add_argument("--only", help="photos whose names contain one of these (comma-separated)")
    ap.add_argument("--qualities", default="20,45,70")
    ap.add_argument("--variants", default="noise,default")
    ap.add_argument("--steps", type=int, default=LATENT_STEPS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out")
    ap.add_argument("--report", nargs="+")
    ap.add_argument("--base", default="noise", help="the variant --report compares against")
    a = ap.parse_args()
    if a.report:
        report(a.report, a.base)
    else:
        run(a)


if __name__ == "__main__":
    main()
