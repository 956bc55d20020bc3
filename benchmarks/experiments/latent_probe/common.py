"""Shared pieces of the latent-mode research probe (not product code).

Model: a pyramid of L one-channel integer latent grids (1:1 .. 1:2^(L-1)), each upsampled
bilinearly to full resolution, concatenated and decoded per pixel by a small synthesis
(ReLU or sine MLP + a 3x3 residual conv).  Rate: a small autoregressive context model (ARM)
over causal neighbours in the same grid plus the upsampled coarser grid, predicting a
Laplace (mu, b) per latent; the ideal code length is sum -log2 P(q) of the discretised
Laplace, and eval_rd() also entropy-codes the integers for real with constriction
(range coder) and reports that size.
"""
from __future__ import annotations

import glob
import io
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

torch.set_num_threads(1)

DEV = "/root/.cache/inrcodec/devset"
TRAIN = "/root/.cache/inrcodec/debian/endless-sky-data/usr/share/games/endless-sky/images/land"
HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "results")
os.makedirs(RES, exist_ok=True)


def dev_files():
    return sorted(glob.glob(os.path.join(DEV, "*.png")))


SUBSET4 = [0, 8, 16, 24]
SUBSET8 = [0, 4, 8, 12, 16, 20, 24, 28]


def load(path):
    a = np.asarray(Image.open(path).convert("RGB"))
    return a, torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255.0


def psnr_u8(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0 ** 2 / mse)


def to_u8(x):
    return (x.clamp(0, 1)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def jpeg_curve(a, qualities=range(5, 100, 5)):
    out = []
    for q in qualities:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=q)
        b = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        out.append((8 * len(buf.getvalue()) / (a.shape[0] * a.shape[1]), psnr_u8(a, b), q))
    return out


def interp_psnr(curve, bpp):
    """PSNR at bpp by linear interpolation in log-rate (None outside the curve)."""
    c = sorted((r, p) for r, p, *_ in curve)
    r = np.log([x[0] for x in c]); p = [x[1] for x in c]
    if not (r[0] <= math.log(bpp) <= r[-1]):
        return None
    return float(np.interp(math.log(bpp), r, p))


# ----------------------------------------------------------------------------- model

def grid_shapes(H, W, L):
    return [(math.ceil(H / 2 ** k), math.ceil(W / 2 ** k)) for k in range(L)]


class Synth(nn.Module):
    """Per-pixel MLP on the upsampled latents (+ optional pixel coordinates), then a 3x3
    residual conv.  act='relu' or 'sine' (SIREN init, w0 on the first layer)."""

    def __init__(self, cin, hidden=32, layers=2, act="relu", coords=False, w0=30.0, conv3=False):
        super().__init__()
        self.coords, self.act, self.w0 = coords, act, w0
        cin = cin + (2 if coords else 0)
        dims = [cin] + [hidden] * layers
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], 3)
        self.conv3 = nn.Conv2d(3, 3, 3, padding=1, padding_mode="replicate") if conv3 else None
        if conv3:
            nn.init.zeros_(self.conv3.weight); nn.init.zeros_(self.conv3.bias)
        if act == "sine":
            with torch.no_grad():
                for i, l in enumerate(self.lins):
                    n = l.in_features
                    bound = 1 / n if i == 0 else math.sqrt(6 / n) / w0
                    l.weight.uniform_(-bound, bound)

    def macs_per_pixel(self):
        m = sum(l.in_features * l.out_features for l in self.lins) + self.out.in_features * 3
        return m + (81 if self.conv3 is not None else 0)

    def mlp(self, h):  # h: (..., C) rows of pixels -> (..., 3)
        for l in self.lins:
            h = l(h)
            h = torch.sin(self.w0 * h) if self.act == "sine" else F.relu(h)
        return self.out(h) + 0.5

    def coord_feats(self, N, H, W):
        yy = torch.linspace(-1, 1, H).view(1, H, 1, 1).expand(N, H, W, 1)
        xx = torch.linspace(-1, 1, W).view(1, 1, W, 1).expand(N, H, W, 1)
        return torch.cat([yy, xx], -1)

    def forward(self, z):  # z: N,C,H,W
        N, C, H, W = z.shape
        h = z.permute(0, 2, 3, 1)
        if self.coords:
            h = torch.cat([h, self.coord_feats(N, H, W)], -1)
        y = self.mlp(h).permute(0, 3, 1, 2)
        if self.conv3 is not None:
            y = y + self.conv3(y)
        return y


def upsample_all(grids, H, W):
    return torch.cat([g if g.shape[-2:] == (H, W) else
                      F.interpolate(g, size=(H, W), mode="bilinear", align_corners=False)
                      for g in grids], 1)


CAUSAL_MASK = torch.zeros(1, 1, 5, 5)
CAUSAL_MASK[..., :2, :] = 1
CAUSAL_MASK[..., 2, :2] = 1  # 12 causal neighbours
CAUSAL_OFFS = [(dy, dx) for dy in range(3) for dx in range(5) if dy < 2 or dx < 2]
CAUSAL_IDX = [dy * 5 + dx for dy, dx in CAUSAL_OFFS]


class ARM(nn.Module):
    """Autoregressive Laplace model: 12 causal neighbours (masked 5x5) in the same grid +
    3x3 of the upsampled coarser grid (decoded earlier) + a per-level bias."""

    def __init__(self, L, hidden=16):
        super().__init__()
        self.ca = nn.Conv2d(1, hidden, 5, padding=2)
        self.cc = nn.Conv2d(1, hidden, 3, padding=1, bias=False)
        self.lvl = nn.Parameter(torch.zeros(L, hidden))
        self.l1 = nn.Conv2d(hidden, hidden, 1)
        self.l2 = nn.Conv2d(hidden, 2, 1)
        nn.init.zeros_(self.l2.weight)
        with torch.no_grad():
            self.l2.bias[1] = 0.0

    def n_params(self):  # transmitted parameters (masked weights excluded)
        h = self.ca.out_channels
        return 12 * h + h + 9 * h + self.lvl.numel() + h * h + h + 2 * h + 2

    def forward(self, grids):
        """grids: list fine->coarse of 1,1,h,w (noisy/rounded).  returns list of (mu, b).
        Implemented with explicit shifted copies + matmul (much faster backward on CPU
        than a 1-input-channel conv)."""
        out = []
        L = len(grids)
        hid = self.ca.out_channels
        wa = self.ca.weight.reshape(hid, 25)[:, CAUSAL_IDX]  # hid x 12
        wc = self.cc.weight.reshape(hid, 9)
        for k in range(L):
            g = grids[k]
            N, _, h_, w_ = g.shape
            gp = F.pad(g, (2, 2, 2, 0))[:, 0]  # zero pad: left/right 2, top 2
            feats = [gp[:, dy:dy + h_, dx:dx + w_] for dy, dx in CAUSAL_OFFS]
            W1 = wa
            if k + 1 < L:
                c = F.interpolate(grids[k + 1], size=(h_, w_), mode="bilinear", align_corners=False)
                cp = F.pad(c, (1, 1, 1, 1), mode="replicate")[:, 0]
                feats += [cp[:, dy:dy + h_, dx:dx + w_] for dy in range(3) for dx in range(3)]
                W1 = torch.cat([wa, wc], 1)
            Fm = torch.stack(feats, 0).reshape(len(feats), -1)
            hdn = F.relu(torch.addmm((self.ca.bias + self.lvl[k])[:, None], W1, Fm))
            hdn = F.relu(torch.addmm(self.l1.bias[:, None], self.l1.weight[:, :, 0, 0], hdn))
            o = torch.addmm(self.l2.bias[:, None], self.l2.weight[:, :, 0, 0], hdn)
            mu = o[0].reshape(N, 1, h_, w_)
            b = (F.softplus(o[1] + 0.5) + 0.05).reshape(N, 1, h_, w_)
            out.append((mu, b))
        return out


def laplace_bits(q, mu, b):
    """-log2 P(q) of the unit-bin discretised Laplace (per element), stable form."""
    x = q - mu
    ax = x.abs()
    ib = 1.0 / b
    # |x| > 0.5: P = 0.5 exp(-(|x|-0.5)/b) (1 - exp(-1/b))
    lt = -0.6931472 - (ax - 0.5) * ib + torch.log(-torch.expm1(-ib))
    # |x| <= 0.5: P = 1 - exp(-0.5/b) cosh(x/b)
    lc = torch.log((1 - torch.exp(-0.5 * ib) * torch.cosh(torch.clamp(ax, max=0.5) * ib)).clamp_min(1e-12))
    lp = torch.where(ax > 0.5, lt, lc)
    return -1.4426950 * lp.clamp_min(-16 * 0.6931472)


def quantise(y, mode):
    if mode == "noise":
        return y + torch.empty_like(y).uniform_(-0.5, 0.5)
    if mode == "ste":
        return y + (torch.round(y) - y).detach()
    return torch.round(y)


class Analysis(nn.Module):
    """Shared encoder: two 3x3 convs per level, stride 2 between levels, 1x1 head per level."""

    def __init__(self, L, F_=16):
        super().__init__()
        self.L = L
        self.inp = nn.Conv2d(3, F_, 3, padding=1)
        self.b0 = nn.Conv2d(F_, F_, 3, padding=1)
        self.down = nn.ModuleList(nn.Conv2d(F_, F_, 3, stride=2, padding=1) for _ in range(L - 1))
        self.mid = nn.ModuleList(nn.Conv2d(F_, F_, 3, padding=1) for _ in range(L - 1))
        self.heads = nn.ModuleList(nn.Conv2d(F_, 1, 1) for _ in range(L))

    def forward(self, x):
        f = F.relu(self.b0(F.relu(self.inp(x - 0.5))))
        ys = [self.heads[0](f)]
        for k in range(self.L - 1):
            f = F.relu(self.mid[k](F.relu(self.down[k](f))))
            ys.append(self.heads[k + 1](f))
        return ys


class Codec(nn.Module):
    """Shared parts: analysis (optional), synthesis, ARM, per-lambda gains."""

    def __init__(self, L=7, hidden=32, act="relu", coords=False, arm_hidden=16, n_lam=4, analysis=True):
        super().__init__()
        self.L = L
        self.synth = Synth(L, hidden, 2, act, coords)
        self.arm = ARM(L, arm_hidden)
        self.analysis = Analysis(L) if analysis else None
        # per-lambda gain (latent = a(x)*g) and inverse gain (synthesis input = q*ig)
        self.lg = nn.Parameter(torch.zeros(n_lam, L))
        self.lig = nn.Parameter(torch.zeros(n_lam, L))

    def decode(self, qs, li, H, W):
        ig = torch.exp(self.lig[li])
        z = upsample_all([q * ig[k] for k, q in enumerate(qs)], H, W)
        return self.synth(z)

    def decode_px(self, qs, li, H, W, idx):
        """synthesis on a subset idx of the H*W pixels (N=1); returns (len(idx), 3)."""
        ig = torch.exp(self.lig[li])
        z = upsample_all([q * ig[k] for k, q in enumerate(qs)], H, W)
        h = z.flatten(2)[0].t()[idx]
        if self.synth.coords:
            h = torch.cat([h, self.synth.coord_feats(1, H, W).reshape(-1, 2)[idx]], -1)
        return self.synth.mlp(h)

    def rate_bits(self, qs):
        prm = self.arm(qs)
        return sum(laplace_bits(q, mu, b).sum() for q, (mu, b) in zip(qs, prm))

    def forward_train(self, x, li, lam):
        """x: N,3,H,W; li: lambda index (int); returns loss, mse, bpp."""
        N, _, H, W = x.shape
        ys = self.analysis(x)
        g = torch.exp(self.lg[li])
        qs = [quantise(y * g[k], "noise") for k, y in enumerate(ys)]
        xh = self.decode(qs, li, H, W)
        mse = F.mse_loss(xh, x)
        bpp = self.rate_bits(qs) / (N * H * W)
        return mse + lam * bpp, mse, bpp


def real_code_bits(qs, prm):
    """Entropy-code the integer grids with constriction's range coder under the ARM's
    per-symbol Laplace parameters; returns bits (32 * number of words)."""
    import constriction
    sym = np.concatenate([q.detach().round().flatten().numpy().astype(np.int32) for q in qs])
    mu = np.concatenate([m.detach().flatten().numpy().astype(np.float64) for m, _ in prm])
    b = np.concatenate([s.detach().flatten().numpy().astype(np.float64) for _, s in prm])
    lo, hi = int(sym.min()) - 1, int(sym.max()) + 1
    model = constriction.stream.model.QuantizedLaplace(lo, hi)
    enc = constriction.stream.queue.RangeEncoder()
    enc.encode(sym, model, mu, b)
    return 32 * len(enc.get_compressed()) + 16  # + 2 bytes for the symbol range


@torch.no_grad()
def eval_rd(codec, ys, li, a_u8, extra_param_bits=0, header_bits=64):
    """Hard-round latents ys (continuous, gain already applied), decode, PSNR on 8-bit output.
    Returns dict with ideal and real-coded bpp (both include header + extra param bits)."""
    H, W = a_u8.shape[:2]
    qs = [torch.round(y) for y in ys]
    xh = codec.decode(qs, li, H, W)
    p = psnr_u8(a_u8, to_u8(xh))
    prm = codec.arm(qs)
    ideal = float(sum(laplace_bits(q, mu, b).sum() for q, (mu, b) in zip(qs, prm)))
    real = real_code_bits(qs, prm)
    side = extra_param_bits + header_bits
    return dict(psnr=p, bpp_ideal=(ideal + side) / (H * W), bpp=(real + side) / (H * W),
                side_bits=side)


def save_json(name, obj):
    with open(os.path.join(RES, name), "w") as f:
        json.dump(obj, f, indent=1)
