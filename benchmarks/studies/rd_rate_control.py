"""What format 5's --bpp / --psnr cost against a plain encode (issue 13: at most 2x).

    python benchmarks/studies/rd_rate_control.py --images dev:2 --bpp 0.5 --psnr 28 \
        --threads 1 --out benchmarks/results/rd-rate-control.json

For each image and target: the search (encode_report(..., bpp=X)), then a plain encode at
the quality it chose, both timed in the same process one after the other. Reports the
probes (each one full encode), the file's bpp against the target, and the time ratio.

Result: benchmarks/results/rd-rate-control.json (inrcodec 0.4.1; `--psnr 22` in a second
run, merged in): every reachable target met in 2 encodes, time 1.38-2.7x the plain encode
(docs/weight-mode.md).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import inrcodec  # noqa: E402
from benchmarks.harness import command_line, load_images  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="dev:2")
    ap.add_argument("--bpp", default="")
    ap.add_argument("--psnr", default="")
    ap.add_argument("--steps", type=int, help="the fit's steps (default: format 5's default "
                    "effort)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", required=True)
    argv = sys.argv[1:] if argv is None else list(argv)
    a = ap.parse_args(argv)
    steps = {"steps": a.steps} if a.steps else {}
    if a.threads:
        torch.set_num_threads(a.threads)
    targets = [("bpp", float(v)) for v in a.bpp.split(",") if v] + \
        [("psnr", float(v)) for v in a.psnr.split(",") if v]
    rows = []
    for name, px in load_images(a.images):
        for kind, value in targets:
            t = time.perf_counter()
            try:
                r = inrcodec.encode_report(px, mode="weights", format_version=5, **steps,
                                           **{kind: value})
            except inrcodec.InrcodecError as e:
                row = {"image": name, "target": kind, "value": value, "error": str(e)}
                print(json.dumps(row), flush=True)
                rows.append(row)
                continue
            search_s = time.perf_counter() - t
            t = time.perf_counter()
            plain = inrcodec.encode_report(px, mode="weights", format_version=5, **steps,
                                           quality=r.quality)
            plain_s = time.perf_counter() - t
            row = {"image": name, "target": kind, "value": value, "quality": r.quality,
                   "bpp": round(r.bpp, 4), "psnr": round(r.psnr, 3),
                   "probes": len(r.search["probes"]), "search": r.search,
                   "search_s": round(search_s, 1), "plain_s": round(plain_s, 1),
                   "ratio": round(search_s / plain_s, 2), "same_bytes": plain.data == r.data}
            print(json.dumps(row), flush=True)
            rows.append(row)
    ok = [r for r in rows if "ratio" in r]
    summary = {"files": len(ok), "mean_probes": sum(r["probes"] for r in ok) / max(len(ok), 1),
               "mean_ratio": sum(r["ratio"] for r in ok) / max(len(ok), 1),
               "within_target": sum((r["bpp"] <= r["value"]) if r["target"] == "bpp"
                                    else (r["psnr"] >= r["value"]) for r in ok)}
    print(json.dumps(summary))
    Path(a.out).write_text(json.dumps({"command": command_line(__file__, argv),
                                       "rows": rows, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
