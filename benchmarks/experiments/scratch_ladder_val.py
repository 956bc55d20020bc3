"""Validation PSNR of an untrained (scratch) ladder, as training validates a shared model.

    OMP_NUM_THREADS=1 python benchmarks/experiments/scratch_ladder_val.py \\
        > benchmarks/results/scratch-ladder-val.txt

Result: benchmarks/results/scratch-ladder-val.txt (made from a copy of this code at
/tmp/scr.py): scratch_model(Arch(width=64, depth=4, w0=60), tile=64, n_levels=16) on 32
held-out endless-sky crops, 100 Adam steps at lr 1e-4; columns: level density val_psnr.
Compared against the shipped model's validation when it was chosen (commit 241b449).
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from inrcodec import Arch, scratch_model  # noqa: E402
from inrcodec.codec.weights.tiles import tile_coords  # noqa: E402
from inrcodec.training.meta import validation_psnr  # noqa: E402
from inrcodec.training.train import signals  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="0,5,9,12,15")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tr, va = signals("endless-sky", 64, 20000, 32, whole_image=False)
    m = scratch_model(Arch(width=64, depth=4, w0=60.0), tile=64, n_levels=16)
    for k in (int(x) for x in args.levels.split(",")):
        print(k, round(m.ladder()[k]["density"], 3),
              round(validation_psnr(m.net(k), m.levels[k].theta0, tile_coords(64), va), 2),
              flush=True)


if __name__ == "__main__":
    main()
