"""What each part of the weight mode's format 5 buys (issue 13's ablation).

    python benchmarks/experiments/rd_ablation.py --images dev:4 --qualities 15,50,85 \
        --variants fixed-steps,one-level --threads 1 --out A.json
    python benchmarks/experiments/rd_ablation.py --report A.json [B.json ...] \
        --default benchmarks/results/rd-inrcodec-rd.json \
        --old benchmarks/results/rd-inrcodec-quality.json

Variants, each a full encode at the same qualities (lambda) and steps as the default:
- `one-level`: the default without a level per tile (its densest candidate alone);
- `one-level-sparse`: the same with its sparsest candidate alone;
- `fixed-steps`: `one-level` with the step sizes frozen at their initial values (the
  learned step sizes removed; the rate term and the Laplace priors stay);
and, for each file, its payload's size against the size of the same integers coded by
format 2's adaptive binary range coder (coder 1) instead of the Laplace priors.
`--report` prints BD-rates between them, the default (a bench.py run of
`--mode weights-rd`) and the previous weight mode (`--quality`, format 2) over the
images they share.

Result: benchmarks/results/rd-ablation.json (the three variants' rows, merged) and the
table in the top-level README, "The weight mode (format version 5)".
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from benchmarks import bd  # noqa: E402
from benchmarks.harness import load_images  # noqa: E402
from inrcodec.codec import bitstream, entropy
from inrcodec.codec.weights import rdencode, rdfit, tilecode  # noqa: E402
from inrcodec.codec.weights.codec import rd_candidates  # noqa: E402
from inrcodec.config import RD_EFFORT, weight_lambda  # noqa: E402
from inrcodec.io import as_loaded  # noqa: E402
from inrcodec.metrics import psnr  # noqa: E402
from inrcodec.model.shared_model import load_model  # noqa: E402


def run(a) -> None:
    m = load_model(None)
    n_cand, steps, share = RD_EFFORT["default"]
    rows = []
    for name, px in load_images(a.images):
        img = as_loaded(px)
        for q in (int(v) for v in a.qualities.split(",")):
            cands = rd_candidates(m, q, n_cand)
            cfg = rdfit.RDFitConfig(steps=steps, lam=weight_lambda(q))
            for variant in a.variants.split(","):
                if variant == "one-level":
                    c, vcfg = [cands[-1]], cfg
                elif variant == "one-level-sparse":
                    c, vcfg = [cands[0]], cfg
                elif variant == "fixed-steps":
                    c, vcfg = [cands[-1]], replace(cfg, lr_step=0.0)
                else:
                    sys.exit(f"unknown variant {variant}")
                t = time.perf_counter()
                r = rdencode.encode(img, m, c, vcfg, dense_share=share)
                dec = __import__("inrcodec").decode_array(r.data, model=m)
                lap, ada = coder_sizes(r.data, m)
                row = {"image": name, "quality": q, "variant": variant, "bytes": len(r.data),
                       "bpp": 8 * len(r.data) / (px.shape[0] * px.shape[1]),
                       "psnr": psnr(dec, px), "seconds": time.perf_counter() - t,
                       "payload_laplace": lap, "payload_adaptive": ada}
                rows.append(row)
                print(json.dumps(row), flush=True)
    Path(a.out).write_text(json.dumps({"command": "python " + " ".join(sys.argv),
                                       "rows": rows}, indent=1) + "\n")


def coder_sizes(data: bytes, m) -> tuple[int, int]:
    """(Laplace payload bytes, adaptive range coder bytes) for a format-5 file's integers."""
    h = bitstream.verify(data)
    sections = [bitstream.section(data, h, k) for k in ("options", "map", "payload")]
    options, choice, qs = tilecode.decode(m, *sections, h.options, h.n_tiles)
    adaptive = 0
    for o, q in zip(options, qs):
        if not len(q):
            continue
        _, tensors = tilecode.layout(m, o)
        gid = np.zeros(q.shape[1], dtype=np.int64)
        for g, cols in enumerate(tensors):
            gid[cols] = g
        adaptive += len(entropy.encode(q.astype(np.int32), gid, entropy.RANGE, 16))
    return len(sections[2]), adaptive


def report(a) -> None:
    def curves(rows, key=lambda r: r.get("variant", "default")):
        out: dict = {}
        for r in rows:
            out.setdefault(key(r), {}).setdefault(r["image"], []).append((r["bpp"], r["psnr"]))
        return out
    rows = [r for p in a.report for r in json.loads(Path(p).read_text())["rows"]]
    c = curves(rows)
    default = json.loads(Path(a.default).read_text())["rows"]
    c["default"] = curves(default, key=lambda r: "default")["default"]
    old = json.loads(Path(a.old).read_text())["rows"]
    c["v2 --quality"] = curves(old, key=lambda r: "old")["old"]
    images = sorted(set.intersection(*(set(v) for v in c.values())))
    print(f"{len(images)} images: {', '.join(images)}")

    def mean_bd(x, y):
        vals = []
        for im in images:
            ra, pa = zip(*sorted(c[x][im]))
            rb, pb = zip(*sorted(c[y][im]))
            try:
                vals.append(bd.bd_rate(ra, pa, rb, pb, method="pchip"))
            except Exception:
                pass
        return (float(np.mean(vals)), len(vals)) if vals else (math.nan, 0)
    names = ["v2 --quality", "fixed-steps", "one-level", "one-level-sparse", "default"]
    names = [n for n in names if n in c]
    print("| test | BD-rate vs v2 --quality | vs previous row |")
    print("|---|---|---|")
    for i, n in enumerate(names[1:], 1):
        a0, k0 = mean_bd("v2 --quality", n)
        a1, k1 = mean_bd(names[i - 1], n)
        print(f"| {n} | {a0:+.1f}% ({k0} images) | {a1:+.1f}% vs {names[i - 1]} ({k1}) |")
    lap = sum(r["payload_laplace"] for r in rows)
    ada = sum(r["payload_adaptive"] for r in rows)
    print(f"payloads: Laplace priors {lap} bytes, adaptive range coder {ada} bytes "
          f"({100 * (ada / lap - 1):+.1f}%) over {len(rows)} files")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="dev:4")
    ap.add_argument("--qualities", default="15,50,85")
    ap.add_argument("--variants", default="fixed-steps,one-level")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out")
    ap.add_argument("--report", nargs="+")
    ap.add_argument("--default", help="bench.py results of the default (weights-rd)")
    ap.add_argument("--old", help="bench.py results of the previous weight mode")
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
