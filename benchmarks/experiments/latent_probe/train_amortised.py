"""Train the shared parts (analysis, synthesis, ARM, per-lambda gains) on random crops of the
endless-sky photos for D + lambda R (noise proxy), one thread, for a wall-clock budget.

python train_amortised.py --minutes 35 --lams 2e-4 5e-4 1.2e-3 3e-3 --out ckpt_relu.pt
Loss per step (one lambda index per batch, cycled): mse/lam + bpp.
"""
import argparse
import glob
import json
import math
import os
import time

import numpy as np
import torch
from PIL import Image

from common import Codec, TRAIN, HERE

torch.set_num_threads(1)


def load_train(scales=(1.0, 0.75, 0.5)):
    ims = []
    for f in sorted(glob.glob(os.path.join(TRAIN, "*.jpg"))):
        im = Image.open(f).convert("RGB")
        for s in scales:
            w, h = im.size
            ims.append(np.asarray(im.resize((max(128, int(w * s)), max(128, int(h * s))),
                                            Image.LANCZOS if s < 1 else Image.NEAREST)))
    return ims


def batch(ims, B, P, rng):
    out = np.empty((B, P, P, 3), np.uint8)
    for b in range(B):
        a = ims[rng.integers(len(ims))]
        y = rng.integers(a.shape[0] - P + 1); x = rng.integers(a.shape[1] - P + 1)
        c = a[y:y + P, x:x + P]
        if rng.random() < 0.5:
            c = c[:, ::-1]
        out[b] = c
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=35)
    ap.add_argument("--lams", type=float, nargs="+", default=[2e-4, 5e-4, 1.2e-3, 3e-3])
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--arm-hidden", type=int, default=16)
    ap.add_argument("--levels", type=int, default=7)
    ap.add_argument("--act", default="relu")
    ap.add_argument("--coords", action="store_true")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = dict(L=args.levels, hidden=args.hidden, act=args.act, coords=args.coords,
               arm_hidden=args.arm_hidden, n_lam=len(args.lams), analysis=True)
    codec = Codec(**cfg)
    with torch.no_grad():  # spread the initial gains so the lambdas start apart
        for i, lam in enumerate(args.lams):
            codec.lg[i] = 0.5 * math.log(args.lams[0] / lam) + 1.0
            codec.lig[i] = -codec.lg[i]
    ims = load_train()
    print(f"{len(ims)} training images loaded", flush=True)
    opt = torch.optim.Adam(codec.parameters(), lr=args.lr)
    budget = args.minutes * 60
    t0 = time.time(); step = 0; last_save = t0
    hist = {i: [] for i in range(len(args.lams))}
    path = os.path.join(HERE, args.out)
    while True:
        el = time.time() - t0
        if el > budget:
            break
        f = el / budget
        for g in opt.param_groups:
            g["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * f)))
        li = step % len(args.lams)
        lam = args.lams[li]
        x = batch(ims, args.batch, args.patch, rng)
        loss, mse, bpp = codec.forward_train(x, li, lam)
        opt.zero_grad(set_to_none=True)
        (mse / lam + bpp).backward()
        torch.nn.utils.clip_grad_norm_(codec.parameters(), 5.0)
        opt.step()
        hist[li].append((float(mse), float(bpp)))
        step += 1
        if step % 200 == 0:
            msg = {"step": step, "min": round(el / 60, 1)}
            for i in hist:
                if hist[i]:
                    m = np.mean([h[0] for h in hist[i][-50:]]); r = np.mean([h[1] for h in hist[i][-50:]])
                    msg[f"l{i}"] = f"{-10 * math.log10(m):.2f}dB/{r:.3f}bpp"
            print(json.dumps(msg), flush=True)
        if time.time() - last_save > 300:
            torch.save(dict(cfg=cfg, state=codec.state_dict(), lams=args.lams, step=step), path)
            last_save = time.time()
    torch.save(dict(cfg=cfg, state=codec.state_dict(), lams=args.lams, step=step), path)
    print("saved", path, "steps", step, flush=True)


if __name__ == "__main__":
    main()
