"""What would a level per tile buy the weight mode? (issue 13: "capacity follows content")

    python benchmarks/experiments/tile_levels.py --images 4 --crop 256 \
        --levels 15,12,9,6 --scales 2,1,0.5,0.25 --out benchmarks/results/tile-levels.json

Result: benchmarks/results/tile-levels.json.

Every image is fitted at each level (lr 1e-3, 100 steps, quantiser-aware last steps when
they pay, as --quality does) and quantised at each step scale. For every tile and every
(level, step scale) option this measures the tile's squared error after decoding (8-bit)
and its rate: the ideal code length of its integers under one discrete Laplace prior per
tensor fitted over all tiles of that option (codec/prior.py), plus the option's step
sizes. Then, for a sweep of lambda, every tile takes the option minimising
SSE + lambda x bits, with log2(options) bits per tile for a level map; against the best
single option (the whole image at one level and step scale: today's codec), both as
Pareto fronts.
Rates are the same proxy on both sides, so the BD-rate between the two curves is what
per-tile choice buys, not a file size. For calibration the real coded size of each
single option (the codec's coders) is recorded too.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import inrcodec  # noqa: E402
from inrcodec.codec import prior  # noqa: E402
from inrcodec.codec.weights.quantiser import groups  # noqa: E402
from inrcodec.codec.weights.session import Session, Settings  # noqa: E402
from inrcodec.codec.weights.tiles import image_to_tiles  # noqa: E402
from inrcodec.config import QUALITY_LR, QuantConfig  # noqa: E402
from inrcodec.io import as_loaded  # noqa: E402
from benchmarks import bd  # noqa: E402
from benchmarks.harness import dev_images  # noqa: E402


def tile_sse(net, theta, img_u8, tile):
    """(tiles,) sum of squared 8-bit errors of each tile's decoded pixels (valid ones)."""
    from inrcodec.codec.weights.tiles import tile_coords
    tgt, wts = image_to_tiles(img_u8.astype(np.float32), tile)
    with torch.no_grad():
        out = net(theta, tile_coords(tile))
    dec = torch.clamp(torch.round((out + 1.0) * 127.5), 0, 255)
    return (((dec - tgt) ** 2).sum(-1) * wts).sum(1).double().numpy()


def tile_bits(q, dq, net):
    """(tiles,) ideal bits of each tile's integers: one prior per tensor over all tiles."""
    bits = np.zeros(q.shape[0])
    for g in range(len(groups(net))):
        cols = dq.gid == g
        if not cols.any():
            continue
        m, qmax = prior.fit_m(q[:, cols])
        f = prior.table(m, qmax).astype(np.float64) / (1 << prior.PRECISION)
        bits += -np.log2(f[q[:, cols] + qmax]).sum(1)
    return bits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--levels", default="15,12,9,6")
    ap.add_argument("--scales", default="2,1,0.5,0.25")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = inrcodec.load_model(args.model)
    levels = [int(x) for x in args.levels.split(",")]
    scales = [float(x) for x in args.scales.split(",")]
    lambdas = [2.0 ** k for k in np.arange(-2, 14, 0.5)]
    rows = []
    t0 = time.time()
    for name, img in dev_images(args.images, args.crop):
        h, w = img.shape[:2]
        session = Session([as_loaded(img)], m, torch.device("cpu"))
        opts = []  # per option: (level, scale, sse per tile, bits per tile, coded bytes)
        for level in levels:
            net = m.net(level)
            for scale in scales:
                s = Settings(level=level, steps=args.steps, lr=QUALITY_LR,
                             quant=QuantConfig(step_scale=scale))
                theta, dq, qat = session.fitted(s)[0]
                q = dq.quantize(theta)
                sse = tile_sse(net, dq.dequantize(q), img, m.tile)
                bits = tile_bits(q, dq, net) + 32 * len(groups(net)) / q.shape[0]
                coded = len(session.write(0, s, theta, dq, qat).data)
                opts.append((level, scale, sse, bits, coded))
                print(f"{name} level {level} scale {scale}: {8 * coded / (h * w):.3f} bpp "
                      f"coded, {bits.sum() / (h * w):.3f} bpp proxy, "
                      f"{10 * math.log10(255 ** 2 * h * w * 3 / sse.sum()):.2f} dB "
                      f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
        sse = np.stack([o[2] for o in opts])  # (options, tiles)
        bits = np.stack([o[3] for o in opts])
        map_bits = math.log2(len(opts)) * sse.shape[1]

        def point(total_sse, total_bits):
            return total_bits / (h * w), 10 * math.log10(255 ** 2 * h * w * 3 / total_sse)
        single = [point(sse[k].sum(), bits[k].sum()) for k in range(len(opts))]
        per_tile = []
        for lam in lambdas:
            pick = np.argmin(sse + lam * bits, axis=0)
            cols = np.arange(sse.shape[1])
            per_tile.append(point(sse[pick, cols].sum(), bits[pick, cols].sum() + map_bits)
                            + (np.bincount(pick, minlength=len(opts)).tolist(),))
        # A per-tile codec can also give every tile the same option (paying for the map):
        # its curve is the hull of both sets. The lambda sweep finds the points convex in
        # squared error; the single options fill in the ones convex in PSNR.
        for k in range(len(opts)):
            per_tile.append(point(sse[k].sum(), bits[k].sum() + map_bits)
                            + ([sse.shape[1] if i == k else 0 for i in range(len(opts))],))
        # Pareto fronts, not bd.hull: the hull takes chords in log rate as reachable, which
        # a codec choosing one setting cannot do, and would hide the mixed points.
        hs = bd.pareto([r for r, _ in single], [p for _, p in single])
        hp = bd.pareto([r for r, _, _ in per_tile], [p for _, p, _ in per_tile])
        try:
            gain = bd.bd_rate([single[i][0] for i in hs], [single[i][1] for i in hs],
                              [per_tile[i][0] for i in hp], [per_tile[i][1] for i in hp],
                              method="pchip")
        except Exception as e:  # too little overlap between the curves
            gain = None
            print(f"{name}: no BD-rate ({e})", file=sys.stderr)
        rows.append({"image": name, "width": w, "height": h,
                     "options": [{"level": o[0], "step_scale": o[1], "bpp_proxy": single[k][0],
                                  "psnr": single[k][1], "bpp_coded": 8 * o[4] / (h * w)}
                                 for k, o in enumerate(opts)],
                     "per_tile": [{"lambda": lam, "bpp_proxy": r, "psnr": p, "picks": c}
                                  for lam, (r, p, c) in zip(lambdas + [None] * len(opts),
                                                            per_tile)],
                     "bd_rate_per_tile_vs_single": gain})
        print(f"{name}: per-tile levels vs one level: BD-rate "
              f"{'n/a' if gain is None else f'{gain:+.1f}%'}", flush=True)
    gains = [r["bd_rate_per_tile_vs_single"] for r in rows
             if r["bd_rate_per_tile_vs_single"] is not None]
    out = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
           "model": m.hash, "machine": platform.machine(), "steps": args.steps,
           "lr": QUALITY_LR, "levels": levels, "scales": scales, "rows": rows,
           "mean_bd_rate": float(np.mean(gains)) if gains else None}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"mean BD-rate of per-tile choice over one setting: {out['mean_bd_rate']}")


if __name__ == "__main__":
    main()
