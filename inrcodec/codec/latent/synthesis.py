"""The latent mode's synthesis: per pixel, its features (grids.py) go through an MLP of
`layers` hidden layers (ReLU, or sine with the SIREN initialisation) and a linear RGB
output. Parameters are flat float32 vectors (per layer its weights, row-major, then its
biases), so a quantiser can treat them as tensors of one vector and a shared model can
prune them into a ladder.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

from . import upsampling
from .config import LatentArch


def init_synthesis(arch: LatentArch, generator: torch.Generator) -> torch.Tensor:
    """A flat parameter vector: per layer its weights (row-major) then its biases."""
    parts = []
    for k, (o, i) in enumerate(arch.shapes()):
        if arch.act == "sine" and k < arch.layers:
            bound = 1.0 / i if k == 0 else math.sqrt(6.0 / i) / arch.w0
        else:
            bound = 1.0 / math.sqrt(i)
        parts.append((torch.rand(o * i, generator=generator) * 2 - 1) * bound)
        parts.append(torch.zeros(o))
    if arch.up_params:
        parts.append(upsampling.init(arch.levels))
    return torch.cat(parts)


def taps(arch: LatentArch, theta: torch.Tensor) -> torch.Tensor | None:
    """The learned upsampling's taps in the flat vector (None for a fixed upsampling)."""
    return theta[-arch.up_params:] if arch.up_params else None


def layers(arch: LatentArch, theta: torch.Tensor):
    """Each layer's (weights (out, in), biases (out,), whether an activation follows)."""
    off, shapes = 0, arch.shapes()
    for k, (o, i) in enumerate(shapes):
        yield (theta[off:off + o * i].view(o, i), theta[off + o * i:off + o * i + o],
               k < len(shapes) - 1)
        off += o * i + o


def _act(arch: LatentArch, h: torch.Tensor) -> torch.Tensor:
    return torch.sin(arch.w0 * h) if arch.act == "sine" else torch.relu(h)


def synthesize(arch: LatentArch, theta: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """(N, inputs) pixel features -> (N, 3) RGB in [0, 1] (before clamping)."""
    h = feats
    for w, b, act in layers(arch, theta):
        h = torch.addmm(b, h, w.t())
        h = _act(arch, h) if act else h
    return h + 0.5


def synthesize_cf(arch: LatentArch, theta: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """`synthesize` channels first: (inputs, N) features -> (3, N), the layout of a
    lattice's features (grids.features_lattice) (the decoder runs render.py)."""
    h = feats
    for w, b, act in layers(arch, theta):
        h = torch.addmm(b[:, None], w, h)
        h = _act(arch, h) if act else h
    return h + 0.5


CHUNK = 1 << 13  # pixels per pass of `mse_and_grad`: their activations stay in cache
# sin and cos by Cody-Waite reduction to [-pi/4, pi/4] and Cephes' float polynomials
# (absolute error ~1e-7 for |x| < 2^13): the fit's sine layers, both from one reduction,
# in arithmetic the compiler vectorises (torch's sin and cos were half the synthesis)
_PIO2_HI = np.float32(1.5707963705062866)
_PIO2_LO = np.float32(-4.371139000186241e-08)
_TWO_OVER_PI = np.float32(0.6366197723675814)


@numba.njit(fastmath={"contract", "nnan", "ninf", "nsz", "arcp"},
            cache=True, nogil=True)
def _sincos(x, s, c):
    """s, c = sin(x), cos(x), elementwise over flat float32 arrays. No reassociation:
    it would undo the two-part reduction."""
    for i in range(x.shape[0]):
        v = x[i]
        k = np.floor(v * _TWO_OVER_PI + np.float32(0.5))
        r = (v - k * _PIO2_HI) - k * _PIO2_LO
        r2 = r * r
        sr = r + r * r2 * (np.float32(-1.6666654611e-1) + r2 * (
            np.float32(8.3321608736e-3) + r2 * np.float32(-1.9515295891e-4)))
        cr = np.float32(1.0) - np.float32(0.5) * r2 + r2 * r2 * (
            np.float32(4.166664568298827e-2) + r2 * (np.float32(-1.388731625493765e-3)
                                                     + r2 * np.float32(2.443315711809948e-5)))
        q = np.int64(k) & 3
        a = cr if q & 1 else sr  # sin: sr, cr, -sr, -cr
        b = sr if q & 1 else cr  # cos: cr, -sr, -cr, sr
        s[i] = -a if q & 2 else a
        c[i] = -b if (q + 1) & 2 else b


def sincos(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sin z, cos z): on the CPU by `_sincos`, elsewhere by torch."""
    if z.device.type != "cpu" or z.dtype != torch.float32:
        return torch.sin(z), torch.cos(z)
    z = z.contiguous()
    s, c = torch.empty_like(z), torch.empty_like(z)
    _sincos(z.view(-1).numpy(), s.view(-1).numpy(), c.view(-1).numpy())
    return s, c


def mse_and_grad(arch: LatentArch, theta: torch.Tensor, feats: torch.Tensor,
                 target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mean((synthesize_cf(theta, feats) - target)^2) with its gradients for theta and
    feats ((inputs, N), (3, N)), forward and backward written out per chunk of pixels:
    a sine layer is sin(w0 W h + w0 b) with w0 folded into W once, its backward one
    cosine and one product, and the chunks' parameter gradients add in a fixed order."""
    shapes = arch.shapes()
    sine = arch.act == "sine"
    ws, bs = [], []
    for w, b, act in layers(arch, theta):
        s = arch.w0 if sine and act else 1.0
        ws.append(w * s)
        bs.append(b[:, None] * s)
    n = feats.shape[1]
    g_ws = [torch.zeros_like(w) for w in ws]
    g_bs = [torch.zeros_like(b) for b in bs]
    g_feats = torch.empty_like(feats)
    sse = torch.zeros((), dtype=torch.float64, device=feats.device)
    last = len(shapes) - 1
    for a in range(0, n, CHUNK):
        hs, back = [feats[:, a:a + CHUNK]], []
        for k in range(last):
            z = torch.addmm(bs[k], ws[k], hs[-1])
            if sine:
                h, d = sincos(z)  # the layer and its derivative
            else:
                h, d = torch.relu(z), z > 0
            hs.append(h)
            back.append(d)
        err = torch.addmm(bs[last], ws[last], hs[-1]).add_(0.5).sub_(target[:, a:a + CHUNK])
        sse += err.square().sum(dtype=torch.float64)
        g = err.mul_(2.0 / (3 * n))
        for k in range(last, -1, -1):
            g_ws[k].addmm_(g, hs[k].t())
            g_bs[k] += g.sum(1, keepdim=True)
            g = ws[k].t() @ g
            if k:
                g = g.mul_(back[k - 1])
        g_feats[:, a:a + CHUNK] = g
    parts = []
    for k, (w, b) in enumerate(zip(g_ws, g_bs)):
        s = arch.w0 if sine and k < last else 1.0
        parts += [(w * s).reshape(-1), (b * s).reshape(-1)]
    parts.append(theta.new_zeros(arch.up_params))  # the taps' gradient comes by the features
    return (sse / (3 * n)).to(feats.dtype), torch.cat(parts), g_feats


class _MSE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, arch, theta, feats, target):
        mse, g_theta, g_feats = mse_and_grad(arch, theta.detach(), feats.detach(), target)
        ctx.save_for_backward(g_theta, g_feats)
        return mse

    @staticmethod
    def backward(ctx, g_out):
        g_theta, g_feats = ctx.saved_tensors
        return None, g_out * g_theta, g_out * g_feats, None


def mse(arch: LatentArch, theta: torch.Tensor, feats: torch.Tensor, target: torch.Tensor
        ) -> torch.Tensor:
    """The synthesis' mean squared error on (inputs, N) features against a (3, N) target,
    as a scalar autograd differentiates (its gradient computed in the same pass)."""
    return _MSE.apply(arch, theta, feats, target)
