"""MAML pretraining trajectory: held-out MAML loss and 100-step-encode PSNR every 500 steps.

    OMP_NUM_THREADS=1 python benchmarks/experiments/meta_trajectory.py OUTER_LR fo|so W0 STEPS

Result: benchmarks/results/meta-trajectory.txt (`... 1e-4 fo 60 3000`, stopped after step
1500; made as `python benchmarks/meta_trajectory.py`, before the script moved here).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from inrcodec.codec.weights.tiles import tile_coords  # noqa: E402
from inrcodec.config import Arch, MetaConfig  # noqa: E402
from inrcodec.model.inr import INR, init_dense  # noqa: E402
from inrcodec.training.meta import maml_loss, to_targets, validation_psnr  # noqa: E402
from inrcodec.training.train import signals  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outer_lr", type=float)
    ap.add_argument("order", choices=("fo", "so"), help="first- or second-order MAML")
    ap.add_argument("w0", type=float)
    ap.add_argument("steps", type=int)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    lr, fo, w0, total = args.outer_lr, args.order == "fo", args.w0, args.steps
    tr, va = signals("endless-sky", 64, 20000, 32, whole_image=False)
    arch = Arch(width=64, w0=w0)
    net = INR(arch)
    th = net.flatten(init_dense(arch, torch.Generator().manual_seed(0))).requires_grad_(True)
    opt = torch.optim.Adam([th], lr=lr)
    c = tile_coords(64)
    cfg = MetaConfig(first_order=fo)
    vt = to_targets(va)
    t0 = time.time()
    for step in range(total + 1):
        if step % 500 == 0:
            ml = float(maml_loss(net, th.detach(), c, vt, cfg).detach())
            p = validation_psnr(net, th.detach(), c, va[:16])
            print(f"lr {lr} {'FO' if fo else 'SO'} w0 {w0} step {step} val-maml {ml:.4f} "
                  f"val-psnr {p:.2f} t {time.time()-t0:.0f}", flush=True)
        idx = np.random.default_rng([0, 0, step]).integers(0, len(tr), 3)
        opt.zero_grad()
        maml_loss(net, th, c, to_targets(tr[idx]), cfg).backward()
        opt.step()


if __name__ == "__main__":
    main()
