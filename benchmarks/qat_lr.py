"""Quantiser-aware final steps: their learning rate, against quantising a plain fit.

    python benchmarks/qat_lr.py > benchmarks/results/qat-lr.txt

One 256x256 centre crop of a development photo (the second of dev_images(2, 256)), the
shipped model at levels 15 and 10, Adam lr 1e-3: a plain 100-step fit quantised as it is
("no-QAT"), against 80 plain steps + 20 quantiser-aware steps with a fresh Adam at lr x
0.1 / 0.5 / 1 (the encoder's default is x0.1, from this run), at delta step scales 0.5, 1
and 2 (zstd coder). Prints PSNR (dB) and file bytes.
"""
import sys, time, numpy as np, torch
from pathlib import Path
torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parent))
import inrcodec
from inrcodec.encoder import Session, Settings
from inrcodec.compress import QuantConfig, DeltaQuantiser
from inrcodec.imageio import as_loaded
from inrcodec.fit import fit
from ladder import dev_images
m = inrcodec.load_model()
name, img = dev_images(2, 256)[1]
S = Session(as_loaded(img), m, torch.device("cpu"))
for level, lr in ((15, 1e-3), (10, 1e-3)):
    t=time.time()
    base = S.plain_fit(level, 80, lr)
    full = S.plain_fit(level, 100, lr)
    print(level, lr, "fits", time.time()-t, flush=True)
    net, th0 = m.net(level), m.levels[level].theta0
    for scale in (0.5, 1.0, 2.0):
        s = Settings(level=level, steps=100, lr=lr, quant=QuantConfig(step_scale=scale, coder="zstd"))
        r = S.encode(s, theta=full)
        print(f"  scale {scale} no-QAT(100 plain): {r.psnr:.2f} dB {len(r.data)} B", flush=True)
        for fac in (0.1, 0.5, 1.0):
            dq = DeltaQuantiser.from_fit(net, th0, base, scale)
            th = fit(net, th0, S.coords, S.targets, S.weights, S._cfg(20, lr*fac), start=base, transform=dq.straight_through("cpu"))
            r = S.encode(s, theta=th, dq=dq)
            print(f"  scale {scale} QAT lr x{fac}: {r.psnr:.2f} dB {len(r.data)} B", flush=True)
    fp = S.encode(Settings(level=level, steps=100, lr=lr, quant=QuantConfig(quantizer="fp16")), theta=full)
    print("  fp16", round(fp.psnr,2), len(fp.data), flush=True)
