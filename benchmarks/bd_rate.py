"""BD-rate and PSNR-at-bpp from a directory of benchmark result files.

    python benchmarks/bd_rate.py benchmarks/results/compress-rd \
        --anchor inrcodec-fp16-zstd --jpeg jpeg [--md out.md] [--json out.json]

Each file is one codec in the schema of benchmarks/ladder.py (codec, rows[image, bpp,
psnr, level, ...]). A codec's rate-distortion curve: its rows averaged over images per
setting (level and step scale; JPEG quality), then its upper convex hull in (log bpp,
PSNR): the operational curve of an encoder that picks its best settings. BD-rate (Bjontegaard delta rate): the mean difference of log rate between two
curves over the PSNR range both cover, with each curve's log rate a monotone piecewise
cubic (PCHIP) function of PSNR, as a percentage (negative: fewer bits for the same PSNR).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy.interpolate import PchipInterpolator


def load(directory: str | Path) -> dict[str, dict]:
    return {d["codec"]: d for d in (json.loads(p.read_text())
                                    for p in sorted(Path(directory).glob("*.json")))
            if "rows" in d}


def setting_key(row: dict) -> tuple:
    return tuple(row.get(k) for k in ("level", "step_scale", "quality", "steps", "lr"))


def mean_curve(rows: list[dict]) -> list[tuple[float, float]]:
    """(bpp, psnr) per setting, averaged over the images that setting was run on."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(setting_key(r), []).append(r)
    n_images = len({r["image"] for r in rows})
    return sorted((float(np.mean([r["bpp"] for r in g])), float(np.mean([r["psnr"] for r in g])))
                  for g in groups.values() if len(g) == n_images)


def envelope(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The operational rate-distortion curve: the upper convex hull of the points in
    (log bpp, PSNR), rising part only. A point under the chord of two others is dropped,
    even if nothing beats it on both axes (a barely better PSNR at a much higher rate would
    otherwise bend the interpolated curve)."""
    pts = sorted(set(points))
    hull: list[tuple[float, float]] = []
    for b, p in pts:
        while len(hull) >= 2:
            (b1, p1), (b2, p2) = hull[-2], hull[-1]
            x1, x2, x3 = math.log(b1), math.log(b2), math.log(b)
            # drop the middle point if it lies under the chord
            if (p2 - p1) * (x3 - x1) < (p - p1) * (x2 - x1):
                hull.pop()
            else:
                break
        hull.append((b, p))
    out: list[tuple[float, float]] = []
    for b, p in hull:
        if not out or p > out[-1][1]:
            out.append((b, p))
    return out


def bd_rate(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> float | None:
    """Bjontegaard delta rate (%) of `test` against `anchor`; None without a PSNR overlap.

    Both are (bpp, psnr) envelopes. log(rate) is interpolated over PSNR with PCHIP and
    integrated over the common PSNR interval."""
    a, t = envelope(anchor), envelope(test)
    if len(a) < 2 or len(t) < 2:
        return None
    lo = max(a[0][1], t[0][1])
    hi = min(a[-1][1], t[-1][1])
    if hi <= lo:
        return None
    fa = PchipInterpolator([p for _, p in a], [math.log(b) for b, _ in a])
    ft = PchipInterpolator([p for _, p in t], [math.log(b) for b, _ in t])
    diff = (ft.integrate(lo, hi) - fa.integrate(lo, hi)) / (hi - lo)
    return float((math.exp(diff) - 1) * 100)


def bd_overlap(anchor, test) -> tuple[float, float] | None:
    a, t = envelope(anchor), envelope(test)
    lo, hi = max(a[0][1], t[0][1]), min(a[-1][1], t[-1][1])
    return (lo, hi) if hi > lo else None


def psnr_at(points: list[tuple[float, float]], bpp: float) -> float | None:
    """PSNR of the envelope at `bpp` (linear in log bpp); None outside its range."""
    e = envelope(points)
    bs = [b for b, _ in e]
    if len(e) < 1 or bpp < bs[0] or bpp > bs[-1]:
        return None
    return float(np.interp(math.log(bpp), [math.log(b) for b in bs], [p for _, p in e]))


def table(results: dict[str, dict], anchor: str, jpeg: str,
          at=(0.25, 0.5, 1.0)) -> tuple[str, dict]:
    curves = {c: mean_curve(d["rows"]) for c, d in results.items()}
    summary = {}
    lines = ["| codec | BD-rate vs " + anchor + " | BD-rate vs " + jpeg + " | "
             + " | ".join(f"PSNR at {b:g} bpp" for b in at) + " | bpp range |",
             "|---|---|---|" + "---|" * len(at) + "---|"]

    def pct(v):
        return "no PSNR overlap" if v is None else f"{v:+.1f}%"

    def db(v):
        return "outside its range" if v is None else f"{v:.2f}"
    for c, pts in curves.items():
        e = envelope(pts)
        s = {"bd_vs_anchor": bd_rate(curves[anchor], pts) if c != anchor else 0.0,
             "bd_vs_jpeg": bd_rate(curves[jpeg], pts) if c != jpeg else 0.0,
             "overlap_vs_anchor": bd_overlap(curves[anchor], pts),
             "overlap_vs_jpeg": bd_overlap(curves[jpeg], pts),
             "psnr_at": {str(b): psnr_at(pts, b) for b in at},
             "envelope": e, "points": pts}
        summary[c] = s
        lines.append(f"| {c} | {pct(s['bd_vs_anchor'])} | {pct(s['bd_vs_jpeg'])} | "
                     + " | ".join(db(s["psnr_at"][str(b)]) for b in at)
                     + f" | {e[0][0]:.3f}-{e[-1][0]:.3f} |")
    return "\n".join(lines), summary


def plot(summary: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for c, s in summary.items():
        e = s["envelope"]
        line, = ax.plot([b for b, _ in e], [p for _, p in e], marker="o", ms=3, label=c)
        ax.plot([b for b, _ in s["points"]], [p for _, p in s["points"]], ".", ms=2,
                color=line.get_color(), alpha=0.4)
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (log)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory")
    ap.add_argument("--anchor", default="inrcodec-fp16-zstd")
    ap.add_argument("--jpeg", default="jpeg")
    ap.add_argument("--md", default=None, help="also write the table here")
    ap.add_argument("--json", default=None, help="also write curves and numbers here")
    ap.add_argument("--plot", default=None, help="also draw the curves into this PNG")
    ap.add_argument("--only", default=None, help="comma list of codecs to include")
    args = ap.parse_args(argv)
    results = load(args.directory)
    if args.only:
        keep = set(args.only.split(",")) | {args.anchor, args.jpeg}
        results = {c: d for c, d in results.items() if c in keep}
    md, summary = table(results, args.anchor, args.jpeg)
    print(md)
    if args.plot:
        plot(summary, args.plot)
    if args.md:
        Path(args.md).write_text(md + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
