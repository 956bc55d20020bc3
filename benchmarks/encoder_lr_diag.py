"""Validation PSNR of shared models under the encoder at lr 1e-4 vs 1e-3 (100 Adam steps, 16 held-out crops).

    python benchmarks/encoder_lr_diag.py MODEL [MODEL...]
Measured: untrained w0=30 init 25.63 dB (lr 1e-4) vs 40.73 dB (lr 1e-3).
"""
import torch, numpy as np, sys
from inrcodec.shared_model import SharedModel
from inrcodec.train import signals
from inrcodec.meta import validation_psnr, maml_loss, to_targets
from inrcodec.config import MetaConfig
from inrcodec.tiling import tile_coords
tr, va = signals("endless-sky", 64, 20000, 32, whole_image=False)
c = tile_coords(64)
for path in sys.argv[1:]:
    m = SharedModel.load(path); net = m.net(0); th = m.levels[0].theta0
    tgt = to_targets(va)
    ml = float(maml_loss(net, th, c, tgt, MetaConfig(first_order=True)).detach())
    r = {lr: round(validation_psnr(net, th, c, va[:16], steps=100, lr=lr), 2) for lr in (1e-4, 1e-3)}
    norms = [float(w.abs().mean()) for w, b in net.dense(th)]
    print(path.split('/')[-1], m.arch.w0, "maml-loss", round(ml, 4), "psnr", r, "w|mean|", [round(x, 4) for x in norms], flush=True)
