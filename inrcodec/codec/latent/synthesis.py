"""The latent mode's synthesis: per pixel, its features (grids.py) go through an MLP of
`layers` hidden layers (ReLU, or sine with the SIREN initialisation) and a linear RGB
output. Parameters are flat float32 vectors (per layer its weights, row-major, then its
biases), so a quantiser can treat them as tensors of one vector and a shared model can
prune them into a ladder.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import synthesis_kernels as kernels, upsampling
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


CHUNK = 1 << 13  # pixels per pass of the torch path of `mse_and_grad`


def mse_and_grad(arch: LatentArch, theta: torch.Tensor, feats: torch.Tensor,
                 target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mean((synthesize_cf(theta, feats) - target)^2) with its gradients for theta and
    feats ((inputs, N), (3, N)), forward and backward written out: on the CPU in float32
    by one compiled pass (synthesis_kernels.py), elsewhere per chunk of pixels in torch.
    A sine layer is sin(w0 W h + w0 b) with w0 folded into W once, its backward one
    cosine and one product; the parameter gradients add in a fixed order."""
    if feats.device.type == "cpu" and feats.dtype == torch.float32:
        return _mse_and_grad_cpu(arch, theta, feats, target)
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
                h, d = torch.sin(z), torch.cos(z)  # the layer and its derivative
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


def _mse_and_grad_cpu(arch: LatentArch, theta: torch.Tensor, feats: torch.Tensor,
                      target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mse_and_grad by synthesis_kernels' pass, in parallel unless torch has one thread."""
    sine = arch.act == "sine"
    s = arch.w0 if sine else 1.0
    ls = [(w.detach().numpy(), b.detach().numpy()) for w, b, _ in layers(arch, theta)]
    hid = arch.hidden
    w0, b0 = ls[0][0] * np.float32(s), ls[0][1] * np.float32(s)
    wh = np.stack([w for w, _ in ls[1:-1]]).astype(np.float32) * np.float32(s) \
        if len(ls) > 2 else np.zeros((0, hid, hid), np.float32)
    bh = np.stack([b for _, b in ls[1:-1]]).astype(np.float32) * np.float32(s) \
        if len(ls) > 2 else np.zeros((0, hid), np.float32)
    wo, bo = np.ascontiguousarray(ls[-1][0]), np.ascontiguousarray(ls[-1][1])
    n_in, n = feats.shape
    m = len(ls) - 2
    size = hid * n_in + hid + m * hid * (hid + 1) + 3 * hid + 3
    partial = np.zeros(((n + kernels.BLOCK - 1) // kernels.BLOCK, size + 1))
    x, y = feats.detach().contiguous().numpy(), target.detach().contiguous().numpy()
    g_feats = np.empty_like(x)
    serial = torch.get_num_threads() == 1
    if not serial:
        from .rate import _start_numba_threads
        _start_numba_threads()
    run = kernels.mse_serial if serial else kernels.mse_parallel
    run(x, y, np.ascontiguousarray(w0), np.ascontiguousarray(b0), wh, bh, wo, bo, sine,
        np.float32(2.0 / (3 * n)), partial, g_feats)
    part = partial.sum(0)  # the tasks' sums, in their order
    parts, o = [], 0
    for k, (w, b) in enumerate(ls):
        f = s if sine and k < len(ls) - 1 else 1.0  # d/dW of sin(w0 W h) is w0 x that of W'
        parts += [part[o:o + w.size] * f, part[o + w.size:o + w.size + b.size] * f]
        o += w.size + b.size
    parts.append(np.zeros(arch.up_params))  # the taps' gradient comes by the features
    g_theta = torch.from_numpy(np.concatenate(parts).astype(np.float32))
    mse = torch.tensor(part[-1] / (3 * n), dtype=torch.float32)
    return mse, g_theta, torch.from_numpy(g_feats)


class _MSE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, arch, theta, feats, target):
        mse, g_theta, g_feats = mse_and_grad(arch, theta.detach(), feats.detach(), target)
        ctx.save_for_backward(g_theta, g_feats)
        return mse

    @staticmethod
    def backward(ctx, g_out):
        g_theta, g_feats = ctx.saved_tensors
        if g_out.numel() == 1 and float(g_out) == 1.0:  # the fit's loss: the MSE as it is
            return None, g_theta, g_feats, None  # (a product by 1 copied every feature)
        return None, g_out * g_theta, g_out * g_feats, None


def mse(arch: LatentArch, theta: torch.Tensor, feats: torch.Tensor, target: torch.Tensor
        ) -> torch.Tensor:
    """The synthesis' mean squared error on (inputs, N) features against a (3, N) target,
    as a scalar autograd differentiates (its gradient computed in the same pass)."""
    return _MSE.apply(arch, theta, feats, target)
