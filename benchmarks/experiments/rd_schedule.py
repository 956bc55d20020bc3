"""The weight mode's fit schedule: the weights' learning rate, constant or on a cosine.

    python benchmarks/experiments/rd_schedule.py --images dev:4 --qualities 50 \
        --variants constant,cosine --threads 1 --out A.json
    python benchmarks/experiments/rd_schedule.py --report A.json [B.json ...]

Each variant fits one ladder level (the sparser candidate of the default encoder at that
quality, on every tile) with the default's lambda and steps (codec/weights/rdfit.py), and reports
what the fit minimises: J = (squared error + lambda x bits) per pixel, with the bits the
ideal code length of the rounded integers under the per-tensor priors the file would
carry, and the squared error of the decoded tiles. Variants:
- `constant`: the weights' lr fixed at 2e-3 (format 5 as first released);
- `cosine`: the default (RDFitConfig: 2.5e-3 decaying on a cosine to 5% of it);
- `constant-3000`, `cosine-900`, `cosine-3000`: more steps (the compute a schedule
  competes with, and what more of it buys).

Result: benchmarks/results/rd-schedule.json, and issue 13's notes.
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

from benchmarks.harness import load_images  # noqa: E402
from inrcodec.codec.weights import rdfit  # noqa: E402
from inrcodec.codec.weights.codec import rd_candidates  # noqa: E402
from inrcodec.codec.weights.session import colour_target  # noqa: E402
from inrcodec.codec.weights.tiles import image_to_tiles, tile_coords  # noqa: E402
from inrcodec.config import RD_EFFORT, weight_lambda  # noqa: E402
from inrcodec.io import as_loaded  # noqa: E402
from inrcodec.model.shared_model import load_model  # noqa: E402

VARIANTS = {"constant": {"lr": 2e-3, "lr_final": 1.0},
            "cosine": {},
            "constant-3000": {"lr": 2e-3, "lr_final": 1.0, "steps": 3000},
            "cosine-900": {"steps": 900},
            "cosine-3000": {"steps": 3000}}


def run(a) -> None:
    m = load_model(None)
    n_cand, steps, _ = RD_EFFORT["default"]
    rows = []
    for name, px in load_images(a.images):
        img = as_loaded(px)
        targets, weights = image_to_tiles(colour_target(img), m.tile)
        coords = tile_coords(m.tile)
        n_pix = float(weights.sum())
        for q in (int(v) for v in a.qualities.split(",")):
            level = rd_candidates(m, q, n_cand)[0].level
            for variant in a.variants.split(","):
                if variant not in VARIANTS:
                    sys.exit(f"unknown variant {variant}; expected one of {sorted(VARIANTS)}")
                cfg = replace(rdfit.RDFitConfig(steps=steps, lam=weight_lambda(q)),
                              **VARIANTS[variant])
                t = time.perf_counter()
                r = rdfit.fit(m.net(level), m.levels[level].theta0, coords, targets, weights,
                              cfg)
                mse = float(r.sse.sum()) / (3 * n_pix)
                row = {"image": name, "quality": q, "level": level, "variant": variant,
                       "steps": cfg.steps, "lr": cfg.lr, "lr_final": cfg.lr_final,
                       "J": float(r.sse.sum() + cfg.lam * r.bits.sum()) / n_pix,
                       "bpp": float(r.bits.sum()) / n_pix, "psnr": -10 * np.log10(mse),
                       "seconds": time.perf_counter() - t}
                rows.append(row)
                print(json.dumps(row), flush=True)
    Path(a.out).write_text(json.dumps({"command": "python " + " ".join(sys.argv),
                                       "rows": rows}, indent=1) + "\n")


def report(a) -> None:
    rows = [r for p in a.report for r in json.loads(Path(p).read_text())["rows"]]
    by = {(r["image"], r["quality"], r["variant"]): r for r in rows}
    print("| image | quality | variant | J vs constant | bpp | PSNR (dB) | s |")
    print("|---|---|---|---|---|---|---|")
    rel: dict[str, list[float]] = {}
    for (im, q, v), r in sorted(by.items()):
        base = by.get((im, q, "constant"))
        d = f"{100 * (r['J'] / base['J'] - 1):+.1f}%" if base else "-"
        if base:
            rel.setdefault(v, []).append(r["J"] / base["J"] - 1)
        print(f"| {im} | {q} | {v} | {d} | {r['bpp']:.3f} | {r['psnr']:.2f} | "
              f"{r['seconds']:.0f} |")
    for v, x in rel.items():
        print(f"{v}: mean J {100 * np.mean(x):+.1f}% against constant over {len(x)} fits")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="dev:4")
    ap.add_argument("--qualities", default="50")
    ap.add_argument("--variants", default="constant,cosine")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out")
    ap.add_argument("--report", nargs="+")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.report:
        return report(a)
    if not a.out:
        sys.exit("--out is required for a run")
    run(a)


if __name__ == "__main__":
    main()
