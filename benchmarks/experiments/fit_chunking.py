"""Fit-step time vs pixels per forward/backward pass (gradient accumulation), width 64, 64 tiles of 64x64.

    OMP_NUM_THREADS=1 python benchmarks/experiments/fit_chunking.py

Result (no results file; measured once on the 2-core CPU and recorded here): 262144
px/pass 0.95 s/step; 32768 px/pass 0.42 s/step (it set FitConfig.chunk_pixels).
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import inrcodec as ic  # noqa: E402
from inrcodec.codec.weights.tiles import tile_coords  # noqa: E402
from inrcodec.model.inr import tile_losses  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=64, help="tiles in the batch")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    m = ic.scratch_model(ic.Arch(width=64, depth=4, w0=30.0), tile=64, n_levels=11)
    net = m.net(5)
    B, T = args.tiles, 64
    coords = tile_coords(T)
    tgt = torch.rand(B, T * T, 3)
    w = torch.ones(B, T * T)
    for cb in (c for c in (64, 16, 8, 4, 2, 1) if c <= B):
        theta = m.levels[5].theta0.repeat(B, 1).requires_grad_(True)
        opt = torch.optim.Adam([theta], lr=1e-4)
        for i in range(5):
            if i == 2:
                t = time.time()
            opt.zero_grad()
            for s in range(0, B, cb):
                loss = tile_losses(net, theta[s:s + cb], coords, tgt[s:s + cb], w[s:s + cb]).sum()
                loss.backward()
            opt.step()
        print(cb, cb * T * T, (time.time() - t) / 3)


if __name__ == "__main__":
    main()
