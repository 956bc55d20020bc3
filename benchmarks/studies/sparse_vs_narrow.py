"""Per level: Meta-SparseINR against Dense-Narrow at matched parameter counts.

Both are fitted with the real encoder (100 Adam steps, lr 1e-4) on native-resolution
64x64 tiles cut from the development photos (one random tile per photo: the tiles the codec
fits when it encodes those photos). Writes JSON (per-signal rows) and a markdown table.

    python benchmarks/studies/sparse_vs_narrow.py \
        --model inrcodec/models/weights.safetensors \
        --narrow-dir benchmarks/models/dense-narrow --out benchmarks/results/sparse-vs-narrow

Result: benchmarks/results/sparse-vs-narrow.json and .md (the paper's headline comparison,
per level; made as `python benchmarks/sparse_vs_narrow.py ...`, before the script moved
here). The Dense-Narrow models (benchmarks/models/dense-narrow/) come from
benchmarks/studies/dense_narrow.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from inrcodec.codec.weights.config import FitConfig  # noqa: E402
from inrcodec.model.shared_model import SharedModel  # noqa: E402
from inrcodec.training.baselines import evaluate, narrow_width  # noqa: E402
from inrcodec.training.data import dev_photos, random_crops  # noqa: E402
from benchmarks.harness import command_line  # noqa: E402


def dev_tiles(tile: int, per_photo: int, seed: int) -> np.ndarray:
    """Native-resolution tiles: windows of exactly `tile` px of the 512-px short side."""
    paths = dev_photos()
    f = tile / 512
    crops = random_crops(paths, tile, per_photo * len(paths), seed=seed, scale_range=(f, f))
    return np.clip(np.round(crops * 255), 0, 255).astype(np.uint8)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--narrow-dir", type=Path, required=True)
    ap.add_argument("--levels", default="all")
    ap.add_argument("--per-photo", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = SharedModel.load(args.model)
    levels = range(len(m.levels)) if args.levels == "all" else \
        [int(x) for x in args.levels.split(",")]
    sig = dev_tiles(m.tile, args.per_photo, args.seed)
    cfg = FitConfig(steps=args.steps, lr=args.lr)
    jpath = args.out.with_suffix(".json")
    res = json.loads(jpath.read_text()) if jpath.exists() else None
    if not res or res.get("model") != m.hash or res.get("settings") != {
            "steps": args.steps, "lr": args.lr, "per_photo": args.per_photo, "seed": args.seed}:
        res = {"description": __doc__.split("\n\n")[0], "model": m.hash,
               "settings": {"steps": args.steps, "lr": args.lr, "per_photo": args.per_photo,
                            "seed": args.seed},
               "signals": f"{len(sig)} native {m.tile}x{m.tile} tiles of the dev photos",
               "command": command_line(__file__, argv),
               "rows": []}
    done = {(r["method"], r["level"]) for r in res["rows"]}
    for level in levels:
        todo = [("meta-sparse", m, level)]
        if level > 0:
            w = narrow_width(m.arch, m.levels[level].n_params)
            p = args.narrow_dir / f"w{w}.safetensors"
            if p.exists():
                todo.append(("dense-narrow", SharedModel.load(p), 0))
            else:
                print(f"level {level}: no dense-narrow model {p} (skipped)", flush=True)
        for method, model, lv in todo:
            if (method, level) in done:
                continue
            t0 = time.perf_counter()
            r = evaluate("meta-sparse" if method == "meta-sparse" else "dense-narrow", sig,
                         model=model, level=lv, cfg=cfg)
            row = {"method": method, "level": level, "params": r.params,
                   "width": model.arch.width, "model": model.hash, "psnr": r.psnr,
                   "mean": r.mean, "std": float(np.std(r.psnr)),
                   "seconds": time.perf_counter() - t0}
            res["rows"].append(row)
            print(f"level {level} {method:<12} params {r.params:>6} PSNR {r.mean:.2f} dB "
                  f"({row['seconds']:.0f} s)", flush=True)
            tmp = jpath.with_name(jpath.name + ".part")
            tmp.write_text(json.dumps(res, indent=1))
            tmp.replace(jpath)
    write_table(res, args.out.with_suffix(".md"))


def write_table(res: dict, path: Path) -> None:
    by = {(r["method"], r["level"]): r for r in res["rows"]}
    lines = [f"# {res['description']}", "", f"Command: `{res['command']}`", "",
             f"Model {res['model']}; {res['signals']}; encoder: {res['settings']}.", "",
             "| level | sparse params | Meta-SparseINR dB | narrow width | narrow params "
             "| Dense-Narrow dB | sparse - narrow dB |", "|---|---|---|---|---|---|---|"]
    for level in sorted({lv for _, lv in by}):
        s, n = by.get(("meta-sparse", level)), by.get(("dense-narrow", level))
        if s is None:
            continue
        if n is None:
            lines.append(f"| {level} | {s['params']} | {s['mean']:.2f} +- {s['std']:.2f} "
                         "| | | | |")
            continue
        lines.append(f"| {level} | {s['params']} | {s['mean']:.2f} +- {s['std']:.2f} | "
                     f"{n['width']} | {n['params']} | {n['mean']:.2f} +- {n['std']:.2f} | "
                     f"{s['mean'] - n['mean']:+.2f} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
