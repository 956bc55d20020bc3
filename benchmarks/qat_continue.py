"""Quantiser-aware final steps: fresh Adam at lr x 0.1 against continuing the plain fit's
Adam (moments kept) at lr x 1 and x 0.3, and against no quantiser-aware steps.

    python benchmarks/qat_continue.py > benchmarks/results/qat-continue.txt

Two 256x256 centre crops of development photos (dev_images(2, 256)), the shipped model at
level 11, Adam lr 1e-3, 100 steps (80 plain + 20 quantiser-aware; "no-QAT" quantises the
plain 100-step fit), delta step scales 0.5, 1 and 2, range coder. Prints PSNR and bytes.
"""
import copy
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parent))
import inrcodec  # noqa: E402
from inrcodec.compress import DeltaQuantiser, QuantConfig  # noqa: E402
from inrcodec.encoder import Session, Settings  # noqa: E402
from inrcodec.fit import fit  # noqa: E402
from inrcodec.imageio import as_loaded  # noqa: E402
from ladder import dev_images  # noqa: E402

m = inrcodec.load_model()
level, lr = 11, 1e-3
for name, img in dev_images(2, 256):
    S = Session(as_loaded(img), m, torch.device("cpu"))
    net, th0 = m.net(level), m.levels[level].theta0
    t = time.time()
    states = []
    base = fit(net, th0, S.coords, S.targets, S.weights, S._cfg(80, lr), adam=states)
    full = fit(net, th0, S.coords, S.targets, S.weights, S._cfg(20, lr), start=base,
               adam=copy.deepcopy(states))
    print(name, "level", level, "plain fits", round(time.time() - t, 1), "s", flush=True)
    for scale in (0.5, 1.0, 2.0):
        s = Settings(level=level, steps=100, lr=lr,
                     quant=QuantConfig(step_scale=scale, coder="range"))
        r = S.encode(s, theta=full)
        print(f"  scale {scale} no-QAT: {r.psnr:.2f} dB {len(r.data)} B", flush=True)
        for how, fac in (("fresh", 0.1), ("continued", 1.0), ("continued", 0.3)):
            dq = DeltaQuantiser.from_fit(net, th0, base, scale)
            th = fit(net, th0, S.coords, S.targets, S.weights, S._cfg(20, lr * fac), start=base,
                     transform=dq.straight_through("cpu"),
                     adam=copy.deepcopy(states) if how == "continued" else None)
            r = S.encode(s, theta=th, dq=dq)
            print(f"  scale {scale} QAT {how} Adam lr x{fac}: {r.psnr:.2f} dB {len(r.data)} B",
                  flush=True)
    fp = S.encode(Settings(level=level, steps=100, lr=lr, quant=QuantConfig(quantizer="fp16")),
                  theta=full)
    print(f"  fp16: {fp.psnr:.2f} dB {len(fp.data)} B", flush=True)
