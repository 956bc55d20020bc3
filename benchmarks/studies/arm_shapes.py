"""Which ARM shape would code a codec's latents in fewer bits: float ARMs of each shape
trained on the integer latents of some .inr files and their bits counted on the others.

A study for issue 35's ARM, before any shape is built into the format: the latents are the
ones the shipped ARM's fits made, the ARMs are float (no fixed point) and every one is
trained alike (Adam, cosine-decayed, batches of 16,384 latents drawn from the training
files' latents); the test files are every `--test-every`-th. A row is WIDTHxLAYERS (the
layers after the first are residual), with `:c24` for 24 causal neighbours (3 rows above,
x-3..x+3, and 3 to the left) instead of the codec's 12, and `:parent` for the 3x3 latents
of the next coarser grid around the cell's parent. The first row is the reference.

    python benchmarks/studies/arm_shapes.py --files q50 --rows 16x1,16x2,24x2,32x2,32x1,16x1:c24,24x2:parent --out benchmarks/results/arm-shapes-q50.json

(q50: `inrcodec encode-dir` of the 32 development photos at the default quality.)

Result: benchmarks/results/arm-shapes-q50.json (docs/latent-mode.md, "What each part is worth").
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import command_line  # noqa: E402
from inrcodec.codec import bitstream  # noqa: E402
from inrcodec.codec.latent.arm import CLIP, CONTEXT, SCALES  # noqa: E402
from inrcodec.codec.latent.codec import model_for  # noqa: E402
from inrcodec.training.refit import read_latents  # noqa: E402

CAUSAL24 = tuple((dy, dx) for dy in (-3, -2, -1) for dx in range(-3, 4)) + ((0, -3), (0, -2),
                                                                           (0, -1))
PARENT = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def parse_row(row: str) -> dict:
    shape, *opts = row.split(":")
    width, layers = (int(v) for v in shape.split("x"))
    if set(opts) - {"c24", "parent"}:
        raise SystemExit(f"unknown row option in {row!r}")
    return {"row": row, "width": width, "layers": layers,
            "context": CAUSAL24 if "c24" in opts else tuple(CONTEXT), "parent": "parent" in opts}


def features(grids: list[np.ndarray], context, parent: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, inputs) contexts (clipped, zero outside the grid) and (n,) latents of every grid."""
    xs, ys = [], []
    for k, g in enumerate(grids):
        z = torch.from_numpy(g.astype(np.float32))
        h, w = z.shape
        p = F.pad(z.clamp(-CLIP, CLIP)[None, None], (3, 3, 3, 3))[0, 0]
        cols = [p[3 + dy:3 + dy + h, 3 + dx:3 + dx + w] for dy, dx in context]
        if parent:
            if k + 1 < len(grids):
                c = torch.from_numpy(grids[k + 1].astype(np.float32)).clamp(-CLIP, CLIP)
                cp = F.pad(c[None, None], (1, 1, 1, 1))[0, 0]
                yy, xx = torch.arange(h) // 2, torch.arange(w) // 2
                cols += [cp[1 + dy + yy][:, 1 + dx + xx] for dy, dx in PARENT]
            else:
                cols += [torch.zeros(h, w)] * len(PARENT)
        xs.append(torch.stack([c.reshape(-1) for c in cols], 1))
        ys.append(z.reshape(-1))
    return torch.cat(xs), torch.cat(ys)


class Arm(torch.nn.Module):
    """(mean, Laplace scale) as the codec's ARM gives them: scale 0.04 x 2^s, s clamped to
    the scale ladder's [0, 63/6]; the output layer starts at zero (scale 1)."""

    def __init__(self, inputs: int, width: int, layers: int):
        super().__init__()
        self.first = torch.nn.Linear(inputs, width)
        self.more = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(layers - 1))
        self.out = torch.nn.Linear(width, 2)
        torch.nn.init.zeros_(self.out.weight)
        torch.nn.init.zeros_(self.out.bias)

    def forward(self, x):
        h = torch.relu(self.first(x))
        for layer in self.more:
            h = h + torch.relu(layer(h))
        o = self.out(h)
        s = (o[:, 1] + math.log2(1 / 0.04)).clamp(0.0, (SCALES - 1) / 6)
        return o[:, 0], 0.04 * torch.exp2(s)


def bits(mean, scale, y):
    """-log2 of the Laplace's mass on y's unit bin (prior.rate_bits' model)."""
    def cdf(u):
        return torch.where(u < 0, 0.5 * torch.exp(u.clamp(max=0)),
                           1 - 0.5 * torch.exp(-u.clamp(min=0)))
    p = cdf((y + 0.5 - mean) / scale) - cdf((y - 0.5 - mean) / scale)
    return -torch.log2(p.clamp_min(2.0 ** -16))


def run_row(spec: dict, train, test, epochs: float, seed: int) -> dict:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    x, y = zip(*[features(g, spec["context"], spec["parent"]) for g in train])
    x, y = torch.cat(x), torch.cat(y)
    arm = Arm(x.shape[1], spec["width"], spec["layers"])
    opt = torch.optim.Adam(arm.parameters(), lr=3e-3)
    batch = 16384
    steps = max(1, int(epochs * len(y) / batch))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        i = torch.randint(0, len(y), (batch,))
        loss = bits(*arm(x[i]), y[i]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    per_file = []
    with torch.no_grad():
        for g in test:
            tx, ty = features(g, spec["context"], spec["parent"])
            per_file.append(float(bits(*arm(tx), ty).sum()))
    w, n_in = spec["width"], x.shape[1]
    return {"row": spec["row"], "bits": per_file, "total": sum(per_file),
            "macs_per_latent": n_in * w + (spec["layers"] - 1) * w * w + 2 * w,
            "steps": steps, "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=Path, required=True, help="a folder of latent .inr files")
    ap.add_argument("--rows", default="16x1,16x2,24x2,32x2,32x1,16x1:c24,24x2:parent")
    ap.add_argument("--test-every", type=int, default=4)
    ap.add_argument("--epochs", type=float, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    files = sorted(a.files.glob("*.inr"))
    if len(files) < 2:
        raise SystemExit(f"{a.files}: needs at least 2 .inr files")
    sets = []
    for f in files:
        h = bitstream.unpack_header(f.read_bytes())
        sets.append(read_latents(f, model_for(h, None)))
    test_idx = set(range(0, len(files), a.test_every))
    train = [s for i, s in enumerate(sets) if i not in test_idx]
    test = [s for i, s in enumerate(sets) if i in test_idx]
    rows = []
    for row in a.rows.split(","):
        r = run_row(parse_row(row), train, test, a.epochs, a.seed)
        ref = rows[0] if rows else r
        r["vs_first"] = r["total"] / ref["total"] - 1
        r["per_file_vs_first"] = [b / c - 1 for b, c in zip(r["bits"], ref["bits"])]
        rows.append(r)
        print(f"{row:14s} {r['total']:12.0f} bits  {r['vs_first']:+.2%}  "
              f"(files {min(r['per_file_vs_first']):+.1%}..{max(r['per_file_vs_first']):+.1%})"
              f"  {r['macs_per_latent']} MACs/latent", flush=True)
    res = {"command": command_line(__file__, sys.argv[1:] if argv is None else argv),
           "files": [f.name for f in files], "test": [files[i].name for i in sorted(test_idx)],
           "epochs": a.epochs, "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
