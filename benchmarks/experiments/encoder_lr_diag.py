"""Validation PSNR of shared models under the encoder at lr 1e-4 vs 1e-3 (100 Adam steps, 16 held-out crops).

    OMP_NUM_THREADS=1 python benchmarks/experiments/encoder_lr_diag.py MODEL [MODEL...]

Result (no results file; measured once and recorded here): untrained w0=30 init 25.63 dB
(lr 1e-4) vs 40.73 dB (lr 1e-3).
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from inrcodec.codec.weights.tiles import tile_coords  # noqa: E402
from inrcodec.config import MetaConfig  # noqa: E402
from inrcodec.model.shared_model import SharedModel  # noqa: E402
from inrcodec.training.meta import maml_loss, to_targets, validation_psnr  # noqa: E402
from inrcodec.training.train import signals  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", metavar="MODEL", help="shared model files")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tr, va = signals("endless-sky", 64, 20000, 32, whole_image=False)
    c = tile_coords(64)
    for path in args.models:
        m = SharedModel.load(path)
        net = m.net(0)
        th = m.levels[0].theta0
        tgt = to_targets(va)
        ml = float(maml_loss(net, th, c, tgt, MetaConfig(first_order=True)).detach())
        r = {lr: round(validation_psnr(net, th, c, va[:16], steps=100, lr=lr), 2)
             for lr in (1e-4, 1e-3)}
        norms = [float(w.abs().mean()) for w, b in net.dense(th)]
        print(path.split('/')[-1], m.arch.w0, "maml-loss", round(ml, 4), "psnr", r, "w|mean|",
              [round(x, 4) for x in norms], flush=True)


if __name__ == "__main__":
    main()
