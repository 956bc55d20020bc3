"""FFN Fourier-feature scale for the paper experiments' cpu scale (README: Appendix B).

    OMP_NUM_THREADS=1 python benchmarks/ffn_sigma.py

100-step scratch fits of 32 training crops (32x32, endless-sky) per sigma and learning rate;
prints the mean PSNR at lr 1e-4, 1e-3, 1e-2. SIREN first, for reference.
"""
import torch, numpy as np
torch.set_num_threads(1)
from inrcodec.config import Arch, FitConfig
from inrcodec.train import signals
from inrcodec.baselines import evaluate
from inrcodec.shared_model import scratch_model
tr, va = signals("endless-sky", 32, 64, 16, whole_image=False, seed=0, crop_scale=(0.5,1.0))
sig_ = tr[:32]
for fam, sigs in (("siren",[0]),("ffn",[1,2,4,10])):
  for sig in sigs:
    arch = Arch(family=fam, width=32, depth=4, ffn_sigma=float(sig or 10))
    m = scratch_model(arch, 32, n_levels=1)
    out=[]
    for lr in [1e-4, 1e-3, 1e-2]:
        r = evaluate("scratch", sig_, model=m, cfg=FitConfig(steps=100, lr=lr), seed=0)
        out.append(round(r.mean,2))
    print(fam, sig, out, flush=True)
