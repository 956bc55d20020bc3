"""Quantiser-aware final steps: their learning rate, against quantising a plain fit.

    OMP_NUM_THREADS=1 python benchmarks/experiments/qat_lr.py > benchmarks/results/qat-lr.txt

Result: benchmarks/results/qat-lr.txt (made as `python benchmarks/qat_lr.py` before the
script moved here; it chose the encoder's default QuantConfig.qat_lr_factor = 0.1).

One 256x256 centre crop of a development photo (the second of harness.dev_images(2, 256)),
the shipped model at levels 15 and 10, Adam lr 1e-3: a plain 100-step fit quantised as it
is ("no-QAT"), against 80 plain steps + 20 quantiser-aware steps with a fresh Adam at lr x
0.1 / 0.5 / 1, at delta step scales 0.5, 1 and 2 (zstd coder). Prints PSNR (dB) and file
bytes. Tiny check: `--steps 5 --crop 64 --levels 15`.
"""
from __future__ import annotations

import argparse
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
    ap.add_argument("--levels", default="15,10")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=100,
                    help="all steps; the last 20%% are the quantiser-aware ones")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = inrcodec.load_model(args.model)
    name, img = dev_images(2, args.crop)[1]
    S = Session([as_loaded(img)], m, torch.device("cpu"))
    im = S.images[0]
    n_qat = max(1, round(0.2 * args.steps))
    n_plain = args.steps - n_qat
    for level in (int(x) for x in args.levels.split(",")):
        lr = args.lr
        t = time.time()
        base = S.plain_fit(level, n_plain, lr)[0]
        full = S.plain_fit(level, args.steps, lr)[0]
        print(level, lr, "fits", time.time() - t, flush=True)
        net, th0 = m.net(level), m.levels[level].theta0
        for scale in (0.5, 1.0, 2.0):
            s = Settings(level=level, steps=args.steps, lr=lr,
                         quant=QuantConfig(step_scale=scale, coder="zstd"))
            r = S.write(0, s, full, None)
            print(f"  scale {scale} no-QAT({args.steps} plain): {r.psnr:.2f} dB {len(r.data)} B",
                  flush=True)
            for fac in (0.1, 0.5, 1.0):
                dq = DeltaQuantiser.from_fit(net, th0, base, scale)
                th = fit(net, th0, S.coords, im.targets, im.weights,
                         S._cfg(n_qat, lr * fac, im.targets.shape[0]), start=base,
                         transform=dq.straight_through("cpu"))
                r = S.write(0, s, th, dq, qat=True)
                print(f"  scale {scale} QAT lr x{fac}: {r.psnr:.2f} dB {len(r.data)} B",
                      flush=True)
        fp = S.write(0, Settings(level=level, steps=args.steps, lr=lr,
                                 quant=QuantConfig(quantizer="fp16")), full, None)
        print("  fp16", round(fp.psnr, 2), len(fp.data), flush=True)


if __name__ == "__main__":
    main()
