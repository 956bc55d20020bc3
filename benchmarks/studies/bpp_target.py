"""--bpp in about one encode (issue 23): for each photo, a plain encode at the default
quality and a --bpp encode, one after the other in the same process, so the time ratio
is measured under the same load. Prints and writes the landing (bpp / target), PSNR, and
time ratio.

Result for 0.11 (0.11's fit: SOAP, clipped, no straight-through phase):
benchmarks/results/bpp-target-17-0.11.json (17 photos, 0.5 bpp, against the curve of
benchmarks/results/rd-inrcodec-latent-0.11.json: 15 within 95-100% of the budget, none
over, -0.16 to +0.10 dB from the curve where the full fit lands inside its qualities).

    python benchmarks/studies/bpp_target.py --pick 17 --bpp 0.5 --no-plain --threads 1 \\
        --curve benchmarks/results/rd-inrcodec-latent-0.11.json \\
        --out benchmarks/results/bpp-target-17-0.11.json
"""
import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import inrcodec  # noqa: E402
from benchmarks import harness  # noqa: E402


CURVE = ROOT / "benchmarks/results/rd-inrcodec-latent-0.11.json"


def curve_psnr(name: str, bpp: float, curve: Path = CURVE) -> float:
    """The photo's PSNR at `bpp` on its curve in a bench.py run of the same fit (quality
    5..80, 900 steps; 0.11's default by default), linear in log2 bpp between (and beyond) its
    points: what the same fit gives at that rate."""
    rows = sorted((r["bpp"], r["psnr"]) for r in json.load(open(curve))["rows"]
                  if r["image"] == name)
    x = [math.log2(b) for b, _ in rows]
    i = min(max(int(np.searchsorted(x, math.log2(bpp))) - 1, 0), len(x) - 2)
    t = (math.log2(bpp) - x[i]) / (x[i + 1] - x[i])
    return rows[i][1] + t * (rows[i + 1][1] - rows[i][1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="dev")
    ap.add_argument("--curve", default=str(CURVE), help="the bench.py run to compare with")
    ap.add_argument("--pick", type=int, help="only N photos of 768x512 pixels (either way "
                    "round), spread evenly over the sorted list")
    ap.add_argument("--bpp", default="0.5")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-plain", action="store_true", help="skip the plain encodes")
    ap.add_argument("--steps", type=int, help="the fits' steps (default: the default effort's)")
    ap.add_argument("--out")
    argv = sys.argv[1:] if argv is None else list(argv)
    a = ap.parse_args(argv)
    steps = {"steps": a.steps} if a.steps else {}
    torch.set_num_threads(a.threads)
    rows = []
    images = harness.load_images(a.images)
    if a.pick:
        big = [(n, i) for n, i in images if i.shape[0] * i.shape[1] == 768 * 512]
        images = [big[k] for k in np.linspace(0, len(big) - 1, a.pick).round().astype(int)]
    warm = images[0][1][:64, :64]  # compile and load once, outside the timings
    inrcodec.encode_report(warm, steps=5)
    inrcodec.encode_report(warm, steps=5, bpp=2.0)
    for name, img in images:
        h, w = img.shape[:2]

        def timed(**kw):
            t, c = time.perf_counter(), time.process_time()
            r = inrcodec.encode_report(img, **steps, **kw)
            return r, time.perf_counter() - t, time.process_time() - c

        plain = None
        if not a.no_plain:  # before and after the target's encodes: the machine drifts
            r, s, c = timed()
            plain = {"seconds": [s], "cpu_seconds": [c], "bpp": r.bpp, "psnr": r.psnr}
        got = []
        for target in map(float, a.bpp.split(",")):
            got.append((target, *timed(bpp=target)))
        if plain:
            r, s, c = timed()
            plain["seconds"].append(s)
            plain["cpu_seconds"].append(c)
        for target, r, s, c in got:
            row = {"image": name, "width": w, "height": h, "target": target, "bpp": r.bpp,
                   "share": r.bpp / target, "psnr": r.psnr, "seconds": s, "cpu_seconds": c,
                   "plain": plain, "search": r.search}
            row["curve_psnr"] = curve_psnr(name, r.bpp, Path(a.curve))
            row["curve"] = Path(a.curve).name
            if plain:
                row["time_ratio"] = s / statistics.mean(plain["seconds"])
                row["cpu_ratio"] = c / statistics.mean(plain["cpu_seconds"])
            rows.append(row)
            print(f"{name} {w}x{h} target {target}: {r.bpp:.4f} bpp "
                  f"({100 * r.bpp / target:.1f}%), {r.psnr:.2f} dB, {s:.1f} s"
                  + (f" (plain {'/'.join(f'{x:.1f}' for x in plain['seconds'])} s:"
                     f" x{row['time_ratio']:.2f}, cpu x{row['cpu_ratio']:.2f})"
                     if plain else "")
                  + f" q {r.search['pilot_quality']:.1f} -> {r.search['quality']:.1f},"
                  f" dead zone {r.search['dead_zone']}; the curve there:"
                  f" {row['curve_psnr']:.2f} dB", flush=True)
    if a.out:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        Path(a.out).write_text(json.dumps({
            "command": harness.command_line(__file__, argv), "commit": commit, "version": inrcodec.__version__,
            "machine": platform.processor() or platform.machine(), "threads": a.threads,
            "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
