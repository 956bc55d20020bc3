"""MAML pretraining trajectory: held-out MAML loss and 100-step-encode PSNR every 500 steps.

    python benchmarks/meta_trajectory.py OUTER_LR fo|so W0 STEPS
"""
import sys, time, torch, numpy as np
torch.set_num_threads(1)
from inrcodec.config import Arch, MetaConfig
from inrcodec.inr import INR, init_dense
from inrcodec.meta import maml_loss, to_targets, validation_psnr
from inrcodec.train import signals
from inrcodec.tiling import tile_coords
lr = float(sys.argv[1]); fo = sys.argv[2] == "fo"; w0 = float(sys.argv[3]); total = int(sys.argv[4])
tr, va = signals("endless-sky", 64, 20000, 32, whole_image=False)
arch = Arch(width=64, w0=w0); net = INR(arch)
th = net.flatten(init_dense(arch, torch.Generator().manual_seed(0))).requires_grad_(True)
opt = torch.optim.Adam([th], lr=lr); c = tile_coords(64); cfg = MetaConfig(first_order=fo)
vt = to_targets(va); t0 = time.time()
for step in range(total + 1):
    if step % 500 == 0:
        ml = float(maml_loss(net, th.detach(), c, vt, cfg).detach())
        p = validation_psnr(net, th.detach(), c, va[:16])
        print(f"lr {lr} {'FO' if fo else 'SO'} w0 {w0} step {step} val-maml {ml:.4f} val-psnr {p:.2f} t {time.time()-t0:.0f}", flush=True)
    idx = np.random.default_rng([0, 0, step]).integers(0, len(tr), 3)
    opt.zero_grad(); maml_loss(net, th, c, to_targets(tr[idx]), cfg).backward(); opt.step()
