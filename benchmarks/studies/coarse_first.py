"""A coarse-first fit for big photos (issue 36), against the whole fit: the coarser grids
and the synthesis fitted first to the photo at reduced sizes (a quarter, then half), then
the whole fit, fewer steps, from there (`fit.fit`'s shrink and init; the encoder's
`LatentFit.coarse_first`). A step at grid s's size reads 4^-s of the pixels and none of
the finer grids, so it costs about 4^-s of a whole step.

At grid s's size, a pixel is the mean of the photo's 2^s x 2^s pixels under it, and its
features are the cascade of grids s.. up to grid s's size (the decoder's stack before its
last steps), the finer grids at zero, and the coordinates of its centre, which are those
of the block's mean. So the synthesis sees there what it sees at full size, but for the
last steps' smoothing.

    python benchmarks/studies/coarse_first.py --images Garden.jpg,LadyBird.jpg --crop 1024 \\
        --qualities 5,30,55,80 --runs 0:900,2:600/1:400/0:150 --out coarse-first.json

Each run: a real file (the encoder's packing) decoded, its bytes and PSNR, the fit's
seconds on --threads threads; D + lambda R of the file.

Results: benchmarks/results/coarse-first-1mp.json (qualities 5/30/55/80 on three native
1024x1024 crops), benchmarks/results/coarse-first-q50.json (schedules, and more photos,
at quality 50).
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
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import command_line  # noqa: E402
from inrcodec.codec.latent import codec  # noqa: E402
from inrcodec.codec.latent.config import LatentFit, latent_lambda  # noqa: E402
from inrcodec.codec.latent.fit import Start, fit  # noqa: E402
from inrcodec.codec.latent.model import default_latent_model_path, load_latent_model  # noqa: E402


def run(img: np.ndarray, how: str, quality: float, threads: int, one_clock: bool) -> dict:
    """One encode of `how`: phases "s:steps" joined by "/", each from the last (fit.fit's
    shrink s: 0 the whole photo, s > 0 at grid s's size); its file's bytes and PSNR, its
    fit's seconds."""
    model = load_latent_model(default_latent_model_path())
    level = model.default_level
    start, arch = Start.of(model, level), model.arch
    fs = LatentFit(lam=latent_lambda(quality))
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    f, times, done = None, [], 0
    plan = [tuple(int(v) for v in phase.split(":")) for phase in how.split("/")]
    total = sum(n for _, n in plan)
    for s, steps in plan:
        t = time.perf_counter()
        clock = (done, total) if one_clock else None
        f = fit(img, arch, replace(fs, steps=steps), start=start, init=f, clock=clock,
                shrink=s)
        done += steps
        times.append(time.perf_counter() - t)
    secs = time.perf_counter() - t0
    data = codec.pack(img, "RGB", None, f, fs.lam, arch, model, level, start)[0]
    from inrcodec import decode_array
    out = decode_array(data).astype(np.float64)
    mse = float(np.mean((out - img) ** 2)) / 255.0 ** 2
    h, w = img.shape[:2]
    return {"how": how, "one_clock": one_clock, "quality": quality, "bytes": len(data),
            "bpp": 8 * len(data) / (h * w), "psnr": 10 * np.log10(1 / mse),
            "loss": mse + fs.lam * 8 * len(data) / (h * w), "fit_s": secs, "phase_s": times}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", required=True, help="comma-separated image files")
    ap.add_argument("--qualities", default="50")
    ap.add_argument("--runs", default="0:900,1:600/0:300")
    ap.add_argument("--crop", type=int, default=0, help="fit each image's centre N x N "
                    "(0: the whole image)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one-clock", action="store_true", help="one schedule over all the "
                    "phases (learning rates, temperature), not one a phase")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows = []
    for path in args.images.split(","):
        img = np.asarray(Image.open(path).convert("RGB"))
        if args.crop:
            y, x = (img.shape[0] - args.crop) // 2, (img.shape[1] - args.crop) // 2
            img = img[y:y + args.crop, x:x + args.crop]
        for q in (float(v) for v in args.qualities.split(",")):
            for how in args.runs.split(","):
                r = {"image": Path(path).name, **run(img, how, q, args.threads, args.one_clock)}
                rows.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
                Path(args.out).write_text(json.dumps(
                    {"command": command_line(sys.argv[0], sys.argv[1:]),
                     "model": load_latent_model(default_latent_model_path()).hash[:12],
                     "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
