"""Issue 22's prototype: does a Cool-chic-class synthesis pay on this CPU?

The same latents (7 one-channel grids) and the same frozen, shipped ARM (their real coded
size, arm.encode_section); what changes is how the latents become pixels:
- `up`: a learned 2x cascade (coarsest grid first; each stage upsamples what it has by a
  separable, symmetric 8-tap kernel initialised at bicubic, then stacks the next grid),
  against bilinear straight to full size;
- `conv`: 1x1 layers (ReLU) to RGB, then `conv` 3x3 residual layers on the RGB (ReLU
  between), against none.
Every step reads the whole image (a 3x3 layer needs its neighbours). The network starts
at random (seeded); its parameters cost what a per-tensor Laplace code of them at the
best step 2^-k costs (prior.encode_tensors, the file's own coder).

    python benchmarks/experiments/latent_v2.py --pick 4 --qualities 20,45,70 \
        --variants mlp16,up-conv2 --steps 600 --out A.json
    python benchmarks/experiments/fit_recipe.py --report A.json B.json   (same rows)

Variants (name: hidden width, layers, up, conv).

Result: step time only, benchmarks/results/latent-v2-step-time.json (`--pick 4 --variants
mlp16,conv2 --time 150`, mate-backgrounds-Aqua 768x512, 2 threads): the codec's fit 24.6
ms a step, mlp16 over the whole image 83.1, conv2 134.8. An earlier `--time 60` run with
`up` and `up-conv2` gave 11.8 (too few steps to separate from the fit's fixed costs),
72.2, 126.4, and 356.8 / 430.3 for the learned upsampling as written here (per-grid
one-channel conv2d and stacking). No rate-distortion run yet: at these speeds 600 steps
take 50-260 s an encode.
"""
from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from benchmarks.experiments.fit_recipe import pick  # noqa: E402
from inrcodec.codec import prior  # noqa: E402
from inrcodec.codec.latent import arm, rate  # noqa: E402
from inrcodec.codec.latent.fit import LIM, quantised, uniform_noise  # noqa: E402
from inrcodec.codec.latent.grids import grid_shapes  # noqa: E402
from inrcodec.codec.latent.model import load_latent_model  # noqa: E402
from inrcodec.codec.schedule import cosine_decay  # noqa: E402
from inrcodec.config import LatentFit, latent_lambda  # noqa: E402
from inrcodec.metrics import psnr  # noqa: E402

VARIANTS = {  # hidden, 1x1 layers, learned upsampling, 3x3 residual layers
    "mlp16": (16, 2, False, 0),
    "up": (16, 2, True, 0),
    "conv2": (16, 2, False, 2),
    "up-conv2": (16, 2, True, 2),
    "up-conv2-w24": (24, 2, True, 2),
    "up-conv2-1l": (24, 1, True, 2),
}
# bicubic (a = -0.75) at distances 1.75, 0.75, 0.25, 1.25 from the four taps: the even
# output's taps; the odd output's are their mirror
BICUBIC = (-0.03515625, 0.26171875, 0.87890625, -0.10546875)


def up2(x: torch.Tensor, k: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(C, h, w) -> (C, H, W) with H <= 2h, W <= 2w: 2x by the 4-tap polyphase kernel k
    (even outputs k, odd outputs k reversed), rows then columns, edges replicated."""
    c = x.shape[0]
    ke, ko = k.view(1, 1, 1, 4), k.flip(0).view(1, 1, 1, 4)

    def along_w(t):  # (C, h, w) -> (C, h, 2w)
        p = F.pad(t[:, None], (2, 2, 0, 0), mode="replicate")  # (C, 1, h, w + 4)
        e = F.conv2d(p[..., :-1], ke)  # taps i-2..i+1
        o = F.conv2d(p[..., 1:], ko)  # taps i-1..i+2
        return torch.stack([e, o], -1).reshape(c, t.shape[1], -1)

    y = along_w(x)[:, :, :shape[1]]
    y = along_w(y.transpose(1, 2)).transpose(1, 2)
    return y[:, :shape[0]]


def upsample_learned(grids, kernels, shapes):
    z = grids[-1][None]
    for g, k, s in zip(reversed(grids[:-1]), reversed(kernels), reversed(shapes[:-1])):
        z = torch.cat([g[None], up2(z, k, s)])
    return z.flip(0)  # grid 0 first


def upsample_bilinear(grids, shape):
    return torch.stack([g if g.shape == shape else F.interpolate(
        g[None, None], size=shape, mode="bilinear", align_corners=False)[0, 0] for g in grids])


class Net:
    def __init__(self, levels, hidden, layers, up, conv, gen):
        self.up, self.conv = up, conv
        dims = [levels] + [hidden] * layers + [3]
        self.ws, self.bs = [], []
        for i, o in zip(dims[:-1], dims[1:]):
            self.ws.append((torch.rand(o, i, generator=gen) * 2 - 1) / math.sqrt(i))
            self.bs.append(torch.zeros(o))
        self.cw = [torch.zeros(3, 3, 3, 3) for _ in range(conv)]  # residual: start at identity
        self.cb = [torch.zeros(3) for _ in range(conv)]
        self.ks = [torch.tensor(BICUBIC) for _ in range(levels - 1)] if up else []

    def params(self):
        return self.ws + self.bs + self.cw + self.cb + self.ks

    def __call__(self, grids, shapes):
        h, w = shapes[0]
        z = upsample_learned(grids, self.ks, shapes) if self.up else \
            upsample_bilinear(grids, (h, w))
        x = z.reshape(len(grids), -1)
        for n, (wt, b) in enumerate(zip(self.ws, self.bs)):
            x = torch.addmm(b[:, None], wt, x)
            if n < len(self.ws) - 1:
                x = torch.relu(x)
        x = x.view(1, 3, h, w) + 0.5
        for n, (cw, cb) in enumerate(zip(self.cw, self.cb)):
            r = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), cw, cb)
            x = x + (torch.relu(r) if n < self.conv - 1 else r)
        return x[0]


def net_bytes(params, k):
    parts, heads, head = [], [], b""
    for p in params:
        q = np.clip(np.round(p.detach().numpy().astype(np.float64).ravel() * (1 << k)),
                    -prior.MAX_QMAX, prior.MAX_QMAX).astype(np.int64)
        m, qmax = prior.fit_m(q)
        parts.append(q)
        heads.append((m, qmax))
        head += struct.pack("<BHH", k, m, qmax)
    return len(head + prior.encode_tensors(parts, heads)), [
        torch.from_numpy(q.astype(np.float32) / (1 << k)).view(p.shape)
        for q, p in zip(parts, params)]


def encode(px, net, armp, lam, steps, seed=0, lr=0.05, coarse=6.0, lr_net=5e-3,
           ste=0.2, temp=(0.5, 0.1)):
    h, w = px.shape[:2]
    target = torch.from_numpy(px.astype(np.float32) / 255).permute(2, 0, 1)
    shapes = grid_shapes(h, w, 7)
    canvas = rate.Canvas(shapes, None, seed)
    lat = [torch.zeros(s, requires_grad=True) for s in shapes]
    ps = [p.requires_grad_(True) for p in net.params()]
    armf = [torch.from_numpy(a).float() for a in armp.to_float()]
    opt = torch.optim.Adam([{"params": lat[:1], "lr": lr},
                            {"params": lat[1:], "lr": lr * coarse},
                            {"params": ps, "lr": lr_net}])
    base = [g["lr"] for g in opt.param_groups]
    sizes = [a * b for a, b in shapes]
    n_ste = int(round(ste * steps))
    fs = LatentFit(steps=steps, ste_fraction=ste, temperature=temp)
    with rate.threads(torch.get_num_threads()):
        for t in range(steps):
            f = cosine_decay(t, steps, 0.02)
            for g, b in zip(opt.param_groups, base):
                g["lr"] = b * f
            u = uniform_noise(sum(sizes), seed, t).split(sizes) if t < steps - n_ste else None
            q = quantised(lat, fs, t, u)  # the codec's rounding proxy, same schedule
            mse = (net(q, shapes) - target).square().mean()
            loss = mse + lam * rate.bits(canvas, q, armf, False, 0.5) / (h * w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    grids = [np.clip(np.round(v.detach().numpy()), -LIM, LIM).astype(np.int64) for v in lat]
    lat_bytes = len(arm.encode_section(grids, armp))
    g = [torch.from_numpy(x.astype(np.float32)) for x in grids]
    best = None
    with torch.no_grad():
        for k in range(5, 13):
            nb, qp = net_bytes(ps, k)
            saved = [p.detach().clone() for p in ps]
            for p, v in zip(ps, qp):
                p.copy_(v)
            out = (net(g, shapes).clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
            for p, v in zip(ps, saved):
                p.copy_(v)
            mse_k = float(np.mean((out / 255 - px / 255.0) ** 2))
            j = mse_k + lam * 8 * (nb + lat_bytes) / (h * w)
            if best is None or j < best[0]:
                best = (j, nb, out, k)
    _, nb, out, k = best
    return lat_bytes + nb + 40, out.astype(np.uint8), k  # 40: a header's bytes, about


def time_steps(a, armp) -> None:
    from inrcodec.codec.latent.fit import Start, fit
    m = load_latent_model(None)
    start = Start.of(m, m.default_level)
    name, px = pick(a.pick)[0]
    runs = {"codec fit (lattice, hand-written passes)": lambda n: fit(
        px, m.arch, LatentFit(steps=n, lam=latent_lambda(45)), None, start)}
    for v in a.variants.split(","):
        runs[v] = lambda n, v=v: encode(px, Net(7, *VARIANTS[v], torch.Generator().manual_seed(0)),
                                        armp, latent_lambda(45), n)
    out = {"command": "python " + " ".join(sys.argv), "image": name, "shape": list(px.shape),
           "threads": a.threads, "ms_per_step": {}}
    for k, f in runs.items():
        t = []
        for n in (a.time, 2 * a.time):
            t0 = time.perf_counter()
            f(n)
            t.append(time.perf_counter() - t0)
        out["ms_per_step"][k] = 1000 * (t[1] - t[0]) / a.time
        print(f"{k}: {out['ms_per_step'][k]:.1f} ms/step", flush=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pick", type=int, default=4)
    ap.add_argument("--qualities", default="20,45,70")
    ap.add_argument("--variants", default="mlp16,up-conv2")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--crop", type=int, default=0, help="only a centre crop of N x N (smoke)")
    ap.add_argument("--time", type=int, default=0,
                    help="only time a step: N and 2N steps of each variant and of the "
                         "codec's fit on the first photo, per step = the difference / N")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    armp = arm.ArmParams(*load_latent_model(None).arm)
    if a.time:
        return time_steps(a, armp)
    rows = []
    for name, px in pick(a.pick):
        if a.crop:
            px = np.ascontiguousarray(px[:a.crop, :a.crop])
        for q in (int(v) for v in a.qualities.split(",")):
            for v in a.variants.split(","):
                net = Net(7, *VARIANTS[v], torch.Generator().manual_seed(0))
                t = time.perf_counter()
                nbytes, out, k = encode(px, net, armp, latent_lambda(q), a.steps)
                row = {"image": name, "quality": q, "variant": v, "bytes": nbytes,
                       "bpp": 8 * nbytes / (px.shape[0] * px.shape[1]), "psnr": psnr(out, px),
                       "seconds": time.perf_counter() - t, "k": k, "steps": a.steps}
                rows.append(row)
                print(json.dumps(row), flush=True)
                Path(a.out).write_text(json.dumps(
                    {"command": "python " + " ".join(sys.argv), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
