"""--bpp in one encode: the constants of codec/latent/ratecontrol.py, and how well a pilot
fit predicts the full fit's rate.

Data: each development photo encoded at qualities 5, 30, 55, 80 with a pilot's steps
(`--pilot-steps`, a fifth of the default 900), against the full fits of a bench.py run
(`--full`, default benchmarks/results/rd-inrcodec-latent-0.11.json; same seed, same
lambda) and the JPEG run (`--jpeg`, default benchmarks/results/rd-jpeg.json, quality 50).

Fitted, by least squares over the 32 photos x 4 qualities:
- log2 bpp_full(q) ~ BASE + SLOPE x q + JPEG_W x log2 bpp_jpeg50 (the first guess);
- PILOT_GAIN: log2(full bytes / pilot bytes) at the same quality, linear in the quality
  and in log2 bpp_jpeg50 (least squares).
Then the whole control is simulated per photo with leave-one-out constants (the photo's
own rows left out of every fit): the first guess, the pilot's bytes at that quality and
the full fit's bytes at the corrected one, both interpolated in q between the measured
qualities (linear in log2 bytes).

Result for 0.11 (the 16-wide model, 0.11's fit: SOAP, clipped, no straight-through
phase): benchmarks/results/bpp-pilot-0.11.json (pilots in bpp-pilots-180-0.11.jsonl, against
rd-inrcodec-latent-0.11.json; the constants in ratecontrol.py): error after the pilot,
simulated, sd 0.146 / 0.196 / 0.356 at 0.25 / 0.5 / 1 bpp.

    python benchmarks/studies/bpp_pilot.py --pilots benchmarks/results/bpp-pilots-180-0.11.jsonl \\
        --full benchmarks/results/rd-inrcodec-latent-0.11.json \\
        --out benchmarks/results/bpp-pilot-0.11.json
(when the --pilots file does not exist yet, it runs the pilot encodes first and writes
them there: about 8 minutes on 2 cores)
"""
import argparse
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the repository root

from benchmarks import harness  # noqa: E402

RES = ROOT / "benchmarks/results"
QS = (5, 30, 55, 80)


def rows_of(path):
    by = defaultdict(dict)
    for r in json.load(open(path))["rows"]:
        by[r["image"]][r["quality"]] = r
    return by


def run_pilots(steps, out):
    import inrcodec
    with open(out, "w") as f:
        for name, img in harness.load_images("dev"):
            for q in QS:
                t = time.perf_counter()
                r = inrcodec.encode_report(img, mode="latent", quality=q, steps=steps)
                h, w = img.shape[:2]
                f.write(json.dumps({"image": name, "quality": q, "steps": steps,
                                    "bytes": len(r.data), "bpp": 8 * len(r.data) / (h * w),
                                    "psnr": r.psnr, "s": time.perf_counter() - t}) + "\n")
                print(name, q, len(r.data), file=sys.stderr, flush=True)


def interp(q, ys):
    """log2 bytes at quality q, linear between (and beyond) the measured qualities."""
    i = min(max(np.searchsorted(QS, q) - 1, 0), len(QS) - 2)
    a, b = QS[i], QS[i + 1]
    return ys[i] + (ys[i + 1] - ys[i]) * (q - a) / (b - a)


def fit_constants(ims, full, pilot, jpeg):
    X, Y, gain, gq = [], [], [], []
    for i in ims:
        j = math.log2(jpeg[i][50]["bpp"])
        for q in QS:
            X.append([1.0, q, j])
            Y.append(math.log2(full[i][q]["bpp"]))
            gain.append(math.log2(full[i][q]["bytes"] / pilot[i][q]["bytes"]))
            gq.append([1.0, q, j])
    c = np.linalg.lstsq(np.array(X), np.array(Y), rcond=None)[0]
    g = np.linalg.lstsq(np.array(gq), np.array(gain), rcond=None)[0]
    return {"BASE": float(c[0]), "SLOPE": float(c[1]), "JPEG_W": float(c[2]),
            "PILOT_GAIN": [float(g[0]), float(g[1]), float(g[2])],
            "resid_sd": float(np.std(np.array(Y) - np.array(X) @ c)),
            "gain_sd": float(np.std(np.array(gain) - np.array(gq) @ g)),
            "gain_median": float(statistics.median(gain))}


def simulate(i, k, full, pilot, jpeg, target, aim):
    px = full[i][QS[0]]["bytes"] * 8 / full[i][QS[0]]["bpp"]
    budget = target * px / 8
    fl = [math.log2(full[i][q]["bytes"]) for q in QS]
    pl = [math.log2(pilot[i][q]["bytes"]) for q in QS]
    q0 = (math.log2(target) - k["BASE"] - k["JPEG_W"] * math.log2(jpeg[i][50]["bpp"])) \
        / k["SLOPE"]
    q0 = min(max(q0, -20), 120)
    g = k["PILOT_GAIN"]
    gap = math.log2(budget) + aim - interp(q0, pl) \
        - (g[0] + g[1] * q0 + g[2] * math.log2(jpeg[i][50]["bpp"]))
    q1 = min(max(q0 + gap / k["SLOPE"], -20), 120)
    return {"image": i, "q0": q0, "q1": q1, "first_err": interp(q0, fl) - math.log2(budget),
            "err": interp(q1, fl) - math.log2(budget)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pilots", required=True, help="a jsonl of pilot encodes (run and "
                    "written there when it does not exist yet)")
    ap.add_argument("--pilot-steps", type=int, default=180)
    ap.add_argument("--targets", default="0.25,0.5,1.0")
    ap.add_argument("--out", required=True)
    ap.add_argument("--full", default=str(RES / "rd-inrcodec-latent-0.11.json"),
                    help="the full fits' run (bench.py rows at qualities 5/30/55/80)")
    ap.add_argument("--jpeg", default=str(RES / "rd-jpeg.json"),
                    help="the JPEG run (bench.py rows with quality 50)")
    a = ap.parse_args(argv)
    if not Path(a.pilots).exists():
        run_pilots(a.pilot_steps, a.pilots)
    pilot = defaultdict(dict)
    for line in open(a.pilots):
        r = json.loads(line)
        pilot[r["image"]][r["quality"]] = r
    full, jpeg = rows_of(a.full), rows_of(a.jpeg)
    ims = sorted(i for i in full if all(q in pilot[i] for q in QS))
    k_all = fit_constants(ims, full, pilot, jpeg)
    print(json.dumps(k_all, indent=1))
    out = {"constants": k_all, "images": len(ims), "pilots": harness.portable_path(a.pilots),
           "full": Path(a.full).name, "targets": {}}
    for target in map(float, a.targets.split(",")):
        sims = []
        for i in ims:
            k = fit_constants([x for x in ims if x != i], full, pilot, jpeg)
            sims.append(simulate(i, k, full, pilot, jpeg, target, 0.0))
        err = np.array([s["err"] for s in sims])
        first = np.array([s["first_err"] for s in sims])
        out["targets"][str(target)] = {
            "first_guess_sd": float(first.std()), "first_guess_max": float(abs(first).max()),
            "after_pilot_mean": float(err.mean()), "after_pilot_sd": float(err.std()),
            "after_pilot_min": float(err.min()), "after_pilot_max": float(err.max())}
        print(f"target {target}: log2 error of the first guess sd {first.std():.3f} "
              f"(max {abs(first).max():.3f}); after the pilot mean {err.mean():+.3f} "
              f"sd {err.std():.3f} range {err.min():+.3f}..{err.max():+.3f}")
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
