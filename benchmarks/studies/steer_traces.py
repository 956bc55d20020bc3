"""How the rounded latents' coded size moves over the late part of a fit at a fixed
lambda: the evidence for ratecontrol.Steer's bands. Each row: a photo, a quality, and the
coded latent section (arm.encode_section of the rounded latents) every Steer interval from
Steer.EARLY x the steps on, with its ratio to the final size.

    python benchmarks/studies/steer_traces.py --pick 4 --qualities 10,25,45,60 \\
        --threads 1 --out benchmarks/results/steer-traces-0.10.json

Result: benchmarks/results/steer-traces-0.10.json (0.10.0's fit, soft rounding to the end,
`--threads 1`): over the final size from the first steered step on, falling to it: 1.06-1.13
x at quality 10, 1.04-1.06 at 25, 1.01-1.02 at 45, 1.00-1.01 at 60; Steer.OVER and DECAY
are fitted to these traces.

Result: benchmarks/results/steer-traces-0.11.json (0.11's fit: SOAP for the synthesis,
clipped): 1.06-1.14 x at quality 10, 1.04-1.07 at 25, 1.01-1.02 at 45, 1.00-1.01 at 60; the
0.10 curve's residual sd 0.0088 in log2 (0.0082 on 0.10's traces), so Steer's constants
stand.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from benchmarks.harness import command_line, load_images  # noqa: E402
from inrcodec.codec.latent import arm, ratecontrol  # noqa: E402
from inrcodec.codec.latent.fit import LIM, Start, fit  # noqa: E402
from inrcodec.codec.latent.model import load_latent_model  # noqa: E402
from inrcodec.codec.latent.config import LatentFit, STEPS as LATENT_STEPS, latent_lambda  # noqa: E402


def pick(spec: str, n: int) -> list[tuple[str, np.ndarray]]:
    """n of the images of `spec` (harness.load_images) that are 768x512 (either way round),
    spread over the sorted list (as fit_recipe.py, the study this came from, picked them);
    n = 0: all of them."""
    images = load_images(spec)
    if not n:
        return images
    small = [(k, p) for k, p in images if p.shape[:2] in ((512, 768), (768, 512))]
    return [small[k] for k in np.linspace(0, len(small) - 1, n).round().astype(int)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="dev", help="as bench.py's (default: dev)")
    ap.add_argument("--pick", type=int, default=4, help="N photos of 768x512 (0: all)")
    ap.add_argument("--qualities", default="10,25,45,60")
    ap.add_argument("--steps", type=int, default=LATENT_STEPS,
                    help=f"the fit's steps (default: the default effort's {LATENT_STEPS})")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    argv = sys.argv[1:] if argv is None else list(argv)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    m = load_latent_model(None)
    start = Start.of(m, m.default_level)
    S = ratecontrol.Steer
    rows = []
    for name, px in pick(a.images, a.pick):
        for q in (int(v) for v in a.qualities.split(",")):
            fs = LatentFit(steps=a.steps, lam=latent_lambda(q))
            first = int(S.EARLY * fs.steps)
            every = max(1, (fs.steps - first) // S.MOVES)
            trace = []

            def record(t, lat, fs=fs, first=first, every=every, trace=trace):
                if t >= first and (t - first) % every == 0:
                    g = [np.clip(np.round(v.detach().numpy()), -LIM, LIM).astype(np.int64)
                         for v in lat]
                    trace.append([t, len(arm.encode_section(g, start.arm))])
                return fs.lam

            f = fit(px, m.arch, fs, None, start, None, record)
            end = len(arm.encode_section(f.latents, start.arm))
            row = {"image": name, "quality": q, "final": end,
                   "ste_from": fs.steps - int(round(fs.ste_fraction * fs.steps)),
                   "trace": [[t, b, round(b / end, 4)] for t, b in trace]}
            rows.append(row)
            print(name, q, end, " ".join(f"{t}:{r[2]:.3f}" for t, r in
                                         zip([x[0] for x in row["trace"]], row["trace"])),
                  flush=True)
            Path(a.out).write_text(json.dumps(
                {"command": command_line(__file__, argv), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
