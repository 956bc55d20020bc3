"""Short MAML pretraining runs over (w0, outer lr): which settings the cpu preset uses.

    python benchmarks/meta_sweep.py --configs 30:1e-4:0,30:1e-4:300,60:1e-4:300 \
        > benchmarks/results/meta-sweep.txt

Each config is w0:outer_lr:steps (first-order MAML, tiles of 64, width 64, depth 4, on
endless-sky crops); prints the validation PSNR after the real 100-step encode (Adam, lr 1e-4)
on 32 held-out crops, and seconds.
"""
import argparse
import time
from pathlib import Path

import torch

from inrcodec.config import Arch, MetaConfig
from inrcodec.train import train

ap = argparse.ArgumentParser()
ap.add_argument("--configs", required=True)
ap.add_argument("--workdir", default="/tmp/sweep")
args = ap.parse_args()
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
