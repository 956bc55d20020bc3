"""An earlier fit against this tree's, on the same photo: the time of a fit step (the
median over its steps, the first left out) and the loss each reaches. The two trees'
processes alternate, --rounds times, so that a slow spell of the machine falls on both.

    git worktree add /tmp/old <commit>
    python benchmarks/studies/fit_versions.py --old-tree /tmp/old \\
        --image dev:mate-backgrounds-Aqua.png --steps 60 --rounds 4 \\
        --out benchmarks/results/fit-versions-0.15.json

Each tree is imported by path in processes of its own, on --threads threads, and fits the
photo from the shipped latent model's default level at the default quality.

Result: benchmarks/results/fit-versions-0.15.json (0.14's step against issue 36's fourth
part).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import command_line  # noqa: E402
from benchmarks.harness.images import load_images  # noqa: E402

_CHILD = """
import sys, time, json
import numpy as np
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(int(sys.argv[2]))
from inrcodec.codec.latent.config import LatentFit, QUALITY, latent_lambda
from inrcodec.codec.latent.fit import Start, fit
from inrcodec.codec.latent.model import load_latent_model
img = np.load(sys.argv[4])
m = load_latent_model()
start = Start.of(m, m.default_level)
fs = LatentFit(steps=int(sys.argv[3]), lam=latent_lambda(QUALITY))
fit(img, m.arch, LatentFit(steps=2, lam=fs.lam), start=start)  # compiled kernels, warm
ticks, losses = [], []
def progress(i, n, mse):
    ticks.append(time.perf_counter())
    losses.append(mse)
fit(img, m.arch, fs, progress=progress, start=start)
print(json.dumps({"step_ms": [1e3 * (b - a) for a, b in zip(ticks, ticks[1:])],
                  "last_mse": losses[-1]}))
"""


def _run(tree: Path, threads: int, steps: int, image: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(tree), str(threads), str(steps),
                        str(image)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    import tempfile

    import numpy as np
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-tree", required=True, type=Path)
    ap.add_argument("--image", required=True, help="a harness image spec, e.g. dev:NAME.png")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    images = load_images(args.image)
    if len(images) != 1:
        raise SystemExit(f"--image: one photo, not {len(images)}")
    (name, img), = images
    trees = {"old": args.old_tree.resolve(), "new": ROOT}
    runs = {k: [] for k in trees}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "img.npy"
        np.save(path, img)
        for _ in range(args.rounds):
            for k, tree in trees.items():
                runs[k].append(_run(tree, args.threads, args.steps, path))
    med = {k: statistics.median(statistics.median(r["step_ms"]) for r in v)
           for k, v in runs.items()}
    commit = subprocess.run(["git", "-C", str(args.old_tree), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    res = {"benchmark": "fit-versions", "command": command_line(sys.argv[0], sys.argv[1:]),
           "old_commit": commit, "image": name, "size": [img.shape[1], img.shape[0]],
           "threads": args.threads, "steps": args.steps, "rounds": args.rounds,
           "median_step_ms": med, "new_over_old": med["new"] / med["old"],
           "per_run_median_ms": {k: [statistics.median(r["step_ms"]) for r in v]
                                 for k, v in runs.items()},
           "last_mse": {k: [r["last_mse"] for r in v] for k, v in runs.items()}}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"old {med['old']:.1f} ms, new {med['new']:.1f} ms a step "
          f"(x{res['new_over_old']:.2f})", file=sys.stderr)


if __name__ == "__main__":
    main()
