"""Quantiser-aware final steps: fresh Adam at lr x 0.1 against continuing the plain fit's
Adam (moments kept) at lr x 1 and x 0.3, and against no quantiser-aware steps.

    OMP_NUM_THREADS=1 python benchmarks/experiments/qat_continue.py \\
        > benchmarks/results/qat-continue.txt

Result: benchmarks/results/qat-continue.txt (made as `python benchmarks/qat_continue.py`
before the script moved here; it kept the encoder's default QuantConfig.qat_adam = fresh).

Two 256x256 centre crops of development photos (harness.dev_images(2, 256)), the shipped
model at level 11, Adam lr 1e-3, 100 steps (80 plain + 20 quantiser-aware; "no-QAT"
quantises the plain 100-step fit), delta step scales 0.5, 1 and 2, range coder. Prints
PSNR and bytes. Tiny check: `--steps 5 --crop 64 --images 1`.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import inrcodec  # noqa: E402
from inrcodec.codec.weights.fit import fit  # noqa: E402
from inrcodec.codec.weights.quantiser import DeltaQuantiser  # noqa: E402
from inrcodec.codec.weights.session import Session, Settings  # noqa: E402
from inrcodec.config import QuantConfig  # noqa: E402
from inrcodec.io import as_loaded  # noqa: E402
from benchmarks.harness import dev_images  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="shared model (default: the shipped one)")
    ap.add_argument("--level", type=int, default=11)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=100,
                    help="all steps; the last 20%% are the quantiser-aware ones")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = inrcodec.load_model(args.model)
    level, lr = args.level, args.lr
    n_qat = max(1, round(0.2 * args.steps))
    n_plain = args.steps - n_qat
    for name, img in dev_images(args.images, args.crop):
        S = Session([as_loaded(img)], m, torch.device("cpu"))
        im = S.images[0]
        cfg = lambda steps, lr_: S._cfg(steps, lr_, im.targets.shape[0])  # noqa: E731
        net, th0 = m.net(level), m.levels[level].theta0
        t = time.time()
        states = []  # receives the plain fit's Adam state after its n_plain steps
        base = fit(net, th0, S.coords, im.targets, im.weights, cfg(n_plain, lr),
                   adam_out=states)
        full = fit(net, th0, S.coords, im.targets, im.weights, cfg(n_qat, lr), start=base,
                   adam=copy.deepcopy(states[0]))
        print(name, "level", level, "plain fits", round(time.time() - t, 1), "s", flush=True)
        for scale in (0.5, 1.0, 2.0):
            s = Settings(level=level, steps=args.steps, lr=lr,
                         quant=QuantConfig(step_scale=scale, coder="range"))
            r = S.write(0, s, full, None)
            print(f"  scale {scale} no-QAT: {r.psnr:.2f} dB {len(r.data)} B", flush=True)
            for how, fac in (("fresh", 0.1), ("continued", 1.0), ("continued", 0.3)):
                dq = DeltaQuantiser.from_fit(net, th0, base, scale)
                th = fit(net, th0, S.coords, im.targets, im.weights, cfg(n_qat, lr * fac),
                         start=base, transform=dq.straight_through("cpu"),
                         adam=copy.deepcopy(states[0]) if how == "continued" else None)
                r = S.write(0, s, th, dq, qat=True)
                print(f"  scale {scale} QAT {how} Adam lr x{fac}: {r.psnr:.2f} dB "
                      f"{len(r.data)} B", flush=True)
        fp = S.write(0, Settings(level=level, steps=args.steps, lr=lr,
                                 quant=QuantConfig(quantizer="fp16")), full, None)
        print(f"  fp16: {fp.psnr:.2f} dB {len(fp.data)} B", flush=True)


if __name__ == "__main__":
    main()
