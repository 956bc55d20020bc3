"""Tables from result JSONs: per point dPSNR vs JPEG at the same bpp (JPEG interpolated in
log-rate on the same photo), per image BD-rate vs JPEG (pchip, when >= 4 points), mean.

python summarise.py results/amortised.json [--key steps]
"""
import argparse
import json
import os
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
from benchmarks.bd import bd_rate, BDError  # noqa: E402
from common import RES, interp_psnr  # noqa: E402

JPEG = json.load(open(os.path.join(RES, "jpeg.json")))


def jcurve(i):
    return [(r["bpp"], r["psnr"]) for r in JPEG[str(i)]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--key", default="steps")
    args = ap.parse_args()
    rows = []
    for f in args.files:
        rows += json.load(open(f))["rows"]
    groups = defaultdict(list)
    for r in rows:
        groups[r[args.key]].append(r)
    print(f"| {args.key} | img | lam | bpp | PSNR | JPEG PSNR @bpp | dPSNR | enc s |")
    print("|---|---|---|---|---|---|---|---|")
    summ = {}
    for k in sorted(groups):
        dps, bds = [], []
        per_img = defaultdict(list)
        for r in sorted(groups[k], key=lambda r: (r["img"], r["lam"])):
            jp = interp_psnr(jcurve(r["img"]), r["bpp"])
            d = None if jp is None else r["psnr"] - jp
            if d is not None:
                dps.append(d)
            per_img[r["img"]].append(r)
            print(f"| {k} | {r['img']} | {r['lam']:g} | {r['bpp']:.3f} | {r['psnr']:.2f} | "
                  f"{'-' if jp is None else f'{jp:.2f}'} | {'-' if d is None else f'{d:+.2f}'} | "
                  f"{r.get('enc_s', 0):.1f} |")
        bdi = {}
        for i, rs in per_img.items():
            if len(rs) >= 4:
                jc = jcurve(i)
                try:
                    bdi[i] = bd_rate([c[0] for c in jc], [c[1] for c in jc],
                                       [r["bpp"] for r in rs], [r["psnr"] for r in rs], "pchip")
                    bds.append(bdi[i])
                except BDError as e:
                    print("  BD", i, e)
        summ[k] = dict(mean_dpsnr=float(np.mean(dps)) if dps else None, n=len(dps),
                       bd_rate_per_img=bdi or None,
                       mean_bd_rate=float(np.mean(bds)) if bds else None,
                       mean_enc_s=float(np.mean([r.get("enc_s", 0) for r in groups[k]])))
    print()
    for k, s in summ.items():
        print(f"{args.key}={k}: mean dPSNR vs JPEG {s['mean_dpsnr'] if s['mean_dpsnr'] is None else round(s['mean_dpsnr'], 2)} dB "
              f"over {s['n']} points; BD-rate per img {s['bd_rate_per_img']} mean {s['mean_bd_rate']}; "
              f"mean enc s {s['mean_enc_s']:.1f}")


if __name__ == "__main__":
    main()
