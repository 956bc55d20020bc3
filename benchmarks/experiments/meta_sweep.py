"""Short MAML pretraining runs over (w0, outer lr): which settings the cpu preset uses.

    python benchmarks/experiments/meta_sweep.py --configs 30:1e-4:0,30:1e-4:300,60:1e-4:300 \\
        > benchmarks/results/meta-sweep.txt

Result: benchmarks/results/meta-sweep.txt (made as `python benchmarks/meta_sweep.py`, before
the script moved here).

Each config is w0:outer_lr:steps (first-order MAML, tiles of 64, width 64, depth 4, on
endless-sky crops); prints the validation PSNR after the real 100-step encode (Adam, lr 1e-4)
on 32 held-out crops, and seconds.
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from inrcodec.config import Arch, MetaConfig  # noqa: E402
from inrcodec.training.train import train  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", required=True, help="comma list of w0:outer_lr:steps")
    ap.add_argument("--workdir", default="/tmp/sweep")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    for c in args.configs.split(","):
        w0, lr, steps = float(c.split(":")[0]), float(c.split(":")[1]), int(c.split(":")[2])
        meta = MetaConfig(first_order=True, outer_lr=lr, pretrain_steps=steps, retrain_steps=0,
                          rounds=0)
        out = Path(args.workdir) / f"w{w0:g}_lr{lr:g}_s{steps}.safetensors"
        t = time.time()
        m = train("endless-sky", out, arch=Arch(width=64, w0=w0), tile=64, meta=meta)
        print(w0, lr, steps, m.info["val_psnr"], round(time.time() - t), flush=True)


if __name__ == "__main__":
    main()
