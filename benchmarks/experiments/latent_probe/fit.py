"""Per-image encode (fit) of the latent pyramid, from scratch or from a shared checkpoint.

python fit.py --imgs 16 --lams 0.001 --steps 200 500 --init scratch --out name.json
  --init scratch      : random synthesis + ARM, zero latents; synthesis+ARM are sent
                        (counted 16 bits/param, evaluated after a float16 round-trip)
  --init amortised    : shared codec from --ckpt; latents start at analysis(x)*gain[li]
  --init pretrained0  : shared codec from --ckpt but latents start at zero (meta-learned
                        synthesis init, no analysis)
  --train-synth none|bias|all : per-image tuning of the synthesis (bits counted if tuned)
Each (image, lambda, steps) is a separate run with its own cosine lr schedule; the last
--ste-frac of the steps use straight-through rounding instead of additive noise.
"""
import argparse
import copy
import json
import time

import numpy as np
import torch

from common import (Codec, dev_files, eval_rd, load, quantise, save_json, laplace_bits)
import torch.nn.functional as F

torch.set_num_threads(1)


def net_params(mod):
    return sum(p.numel() for p in mod.parameters())


def fit_one(codec0, a, x, lam, li, steps, args):
    codec = copy.deepcopy(codec0)
    H, W = a.shape[:2]
    L = codec.L
    if args.init == "amortised":
        with torch.no_grad():
            g = torch.exp(codec.lg[li])
            ys = [(y * g[k]).clone() for k, y in enumerate(codec.analysis(x))]
    else:
        from common import grid_shapes
        ys = [torch.zeros(1, 1, h, w) for h, w in grid_shapes(H, W, L)]
    for y in ys:
        y.requires_grad_(True)
    groups = [dict(params=ys, lr=args.lr_lat)]
    sent_bits = 0
    tuned = []
    for p in codec.parameters():
        p.requires_grad_(False)
    if args.init == "scratch":
        tuned = list(codec.synth.parameters()) + list(codec.arm.parameters())
        sent_bits = 16 * (net_params(codec.synth) + codec.arm.n_params())
    elif args.train_synth == "all":
        tuned = list(codec.synth.parameters())
        sent_bits = 16 * net_params(codec.synth)
    elif args.train_synth == "bias":
        tuned = [l.bias for l in codec.synth.lins] + [codec.synth.out.bias]
        sent_bits = 16 * sum(p.numel() for p in tuned)
    for p in tuned:
        p.requires_grad_(True)
    if tuned:
        groups.append(dict(params=tuned, lr=args.lr_net))
    opt = torch.optim.Adam(groups)
    base = [gr["lr"] for gr in opt.param_groups]
    n_ste = int(round(args.ste_frac * steps))
    xflat = x.flatten(2)[0].t()
    t0 = time.time()
    for t in range(steps):
        f = 0.5 * (1 + np.cos(np.pi * t / max(steps, 1)))
        for gr, b in zip(opt.param_groups, base):
            gr["lr"] = b * (0.02 + 0.98 * f)
        mode = "ste" if t >= steps - n_ste else "noise"
        qs = [quantise(y, mode) for y in ys]
        if args.px_frac < 1:
            idx = torch.randint(0, H * W, (int(args.px_frac * H * W),))
            mse = F.mse_loss(codec.decode_px(qs, li, H, W, idx), xflat[idx])
        else:
            mse = F.mse_loss(codec.decode(qs, li, H, W), x)
        bpp = codec.rate_bits(qs) / (H * W)
        loss = mse + lam * bpp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    enc_s = time.time() - t0
    if tuned:  # float16 round trip of what is sent
        with torch.no_grad():
            for p in tuned:
                p.copy_(p.half().float())
    r = eval_rd(codec, [y.detach() for y in ys], li, a, extra_param_bits=sent_bits)
    r.update(steps=steps, enc_s=enc_s, s_per_step=enc_s / max(steps, 1), lam=lam, li=li,
             H=H, W=W)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imgs", type=int, nargs="+", default=[0, 8, 16, 24])
    ap.add_argument("--lams", type=float, nargs="+", default=[1e-3])
    ap.add_argument("--lis", type=int, nargs="+", default=None,
                    help="gain index per lambda (amortised); default 0..")
    ap.add_argument("--steps", type=int, nargs="+", default=[200])
    ap.add_argument("--init", default="scratch", choices=["scratch", "amortised", "pretrained0"])
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--train-synth", default="none", choices=["none", "bias", "all"])
    ap.add_argument("--lr-lat", type=float, default=0.05)
    ap.add_argument("--lr-net", type=float, default=5e-3)
    ap.add_argument("--ste-frac", type=float, default=0.2)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--arm-hidden", type=int, default=8)
    ap.add_argument("--levels", type=int, default=7)
    ap.add_argument("--act", default="relu")
    ap.add_argument("--coords", action="store_true")
    ap.add_argument("--w0", type=float, default=30.0)
    ap.add_argument("--px-frac", type=float, default=0.25,
                    help="fraction of pixels (random each step) in the distortion term")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    if args.init == "scratch":
        codec0 = Codec(args.levels, args.hidden, args.act, args.coords, args.arm_hidden,
                       n_lam=1, analysis=False)
        codec0.synth.w0 = args.w0
    else:
        ck = torch.load(args.ckpt)
        codec0 = Codec(**ck["cfg"])
        codec0.load_state_dict(ck["state"])
    print(f"synth MACs/px {codec0.synth.macs_per_pixel()} synth params {net_params(codec0.synth)}"
          f" arm params {codec0.arm.n_params()}", flush=True)
    files = dev_files()
    lis = args.lis or list(range(len(args.lams)))
    rows = []
    for i in args.imgs:
        a, x = load(files[i])
        for lam, li in zip(args.lams, lis):
            for s in args.steps:
                torch.manual_seed(args.seed)
                r = fit_one(codec0, a, x, lam, li if args.init != "scratch" else 0, s, args)
                r.update(img=i, name=files[i].split("/")[-1])
                rows.append(r)
                print(json.dumps(r), flush=True)
                save_json(args.out, dict(args=vars(args), rows=rows))


if __name__ == "__main__":
    main()
