"""The fit's rate term: the bits of every latent grid under the ARM's float twin
(arm.predict_float's model, prior.rate_bits' Laplace proxy), and their gradient, in one
pass written by hand.

Autograd over the same expression cost the fit's step more than half its time: a dozen
context copies per grid, a graph of small ops, and their backward. Here every grid sits
in one zero-padded canvas of a common row width (`Canvas`), so a latent's 12 causal
neighbours are 12 fixed offsets into the flat canvas for all grids at once. Each pass
computes the bits and, in the same breath, their gradient with respect to the canvas
(the latent's own term and, through the MLP, its neighbours') and, when the ARM is
fitted, to its parameters:
- `cpu_pass`: compiled (numba), blocks of the canvas in parallel, 64 positions side by
  side so the MLP and the Laplace term vectorise; partial sums per block, added in a fixed
  order, so a run repeats exactly. It can sample the blocks (an unbiased estimate);
- `torch_pass`: the same in torch ops over chunks of the canvas, for a GPU (and as the
  tests' float64 reference).
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager

import numba
import numpy as np
import torch

from .. import prior
from .arm import CLIP, CONTEXT, MAX_HIDDEN, SCALES
from .rate_kernels import BLOCK, LANES, gather_parallel, gather_serial, pass_parallel, pass_serial

LN2 = math.log(2.0)
CHUNK = 1 << 15  # canvas positions per step of the torch pass
MAX_PARAMS = MAX_HIDDEN * (len(CONTEXT) + 4 + MAX_HIDDEN) + 2  # with a residual layer


class Canvas:
    """Where each grid sits in one flat, zero-padded buffer: grid 0 on top, the coarser
    grids side by side below it, two zero rows above and two zero columns between and
    beside them (a context reaches two rows up and two columns either side)."""

    def __init__(self, shapes: list[tuple[int, int]], device=None, seed: int = 0):
        self.shapes = shapes
        h0, w0 = shapes[0]
        rest = shapes[1:]
        self.width = max(w0 + 4, 2 + sum(w + 2 for _, w in rest))
        band = max((h for h, _ in rest), default=0)
        self.height = 2 + h0 + (2 + band if rest else 0)
        self.origins = [(2, 2)]
        x = 2
        for h, w in rest:
            self.origins.append((4 + h0, x))
            x += w + 2
        self.offsets = [dy * self.width + dx for dy, dx in CONTEXT]
        self.start = 2 * self.width + 2  # the first position whose contexts are in range
        self.size = self.height * self.width
        self.valid = torch.zeros(self.height, self.width, device=device)
        for (h, w), (y, x) in zip(shapes, self.origins):
            self.valid[y:y + h, x:x + w] = 1
        self.valid = self.valid.reshape(-1)
        self.buf = torch.zeros(self.size, device=device)
        self._scratch = None
        self.rng = np.random.default_rng(seed)  # cpu_pass's sampled tasks

    def scratch(self) -> dict:
        """The CPU pass's buffers, made once per canvas (a fit reuses them every step)."""
        if self._scratch is None:
            n_blocks = (self.size - self.start + BLOCK - 1) // BLOCK
            self._scratch = {
                "valid": self.valid.cpu().numpy().astype(np.uint8),
                "offs": np.array(self.offsets, dtype=np.int64),
                "live": np.add.reduceat(self.valid[self.start:].cpu().numpy(), np.arange(
                    0, self.size - self.start, LANES)).astype(bool).astype(np.uint8),
                "g_q": np.zeros(self.size, np.float32), "g": np.zeros(self.size, np.float32),
                "gx": np.zeros((n_blocks, len(CONTEXT), BLOCK), np.float32),
                "partial": np.zeros((n_blocks, 1 + MAX_PARAMS)),
                "active": np.ones(n_blocks, np.uint8)}
        return self._scratch

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Each grid's region of a flat canvas-shaped tensor, as a (h, w) view."""
        c = flat.view(self.height, self.width)
        return [c[y:y + h, x:x + w] for (h, w), (y, x) in zip(self.shapes, self.origins)]

    def fill(self, grids: list[torch.Tensor]) -> torch.Tensor:
        for v, g in zip(self.views(self.buf), grids):
            v.copy_(g)
        return self.buf


def torch_pass(canvas: Canvas, grids: list[torch.Tensor], params: list[torch.Tensor],
                  need_params: bool) -> tuple[torch.Tensor, list[torch.Tensor],
                                              list[torch.Tensor] | None]:
    """Total bits of `grids` (float latents) under the ARM `params` ([W1, b1, W2, b2] or,
    with the residual layer, [W1, b1, W2, b2, Wr, br]), the gradient for each grid and, if
    `need_params`, for each parameter."""
    w1, b1, w2, b2 = params[:4]
    res = len(params) > 4
    q = canvas.fill(grids)
    qc = q.clamp(-CLIP, CLIP)
    g_q = torch.zeros_like(q)  # each latent's own term
    g_c = torch.zeros_like(q)  # as a neighbour in others' contexts
    gp = [torch.zeros_like(p) for p in params] if need_params else None
    total = torch.zeros((), dtype=torch.float64, device=q.device)
    offs, s_max = canvas.offsets, (SCALES - 1) / 6.0
    floor = 2.0 ** -prior.PRECISION
    b1c, b2c = b1[:, None], b2[:, None]
    for a in range(canvas.start, canvas.size, CHUNK):
        b = min(a + CHUNK, canvas.size)
        x = torch.stack([qc[a + o:b + o] for o in offs])  # (12, n)
        hpre = torch.addmm(b1c, w1, x)
        hid = hpre.clamp_min(0)
        if res:
            h1 = hid
            hpre = torch.addmm(params[5][:, None] + h1, params[4], h1)
            hid = hpre.clamp_min(0)
        out = torch.addmm(b2c, w2, hid)
        valid = canvas.valid[a:b]
        s = out[1].clamp(0.0, s_max)
        scale = torch.exp2(s).mul_(0.04)
        d = q[a:b] - out[0]
        # prior.rate_bits: P = CDF(d + 1/2) - CDF(d - 1/2) under Laplace(0, scale)
        u_hi, u_lo = d + 0.5, d - 0.5
        e_hi = torch.exp(-u_hi.abs() / scale)
        e_lo = torch.exp(-u_lo.abs() / scale)
        p = 0.5 * (torch.sign(u_hi) * (1 - e_hi) - torch.sign(u_lo) * (1 - e_lo))
        live = (p > floor).to(p.dtype) * valid
        p = p.clamp_min(floor)
        total += (-torch.log2(p) * valid).sum(dtype=torch.float64)
        # d bits / d d and d bits / d scale (pdf(u) = e / 2 scale; d CDF(u)/d scale = -u pdf / scale)
        k = live / (p * (2 * LN2) * scale)
        g_d = (e_lo - e_hi) * k
        g_s = (u_hi * e_hi - u_lo * e_lo) * k / scale
        g_q[a:b] += g_d
        inside = ((out[1] >= 0) & (out[1] <= s_max)).to(p.dtype)
        g_out = torch.stack([-g_d, g_s * scale * LN2 * inside])  # (2, n)
        g_hpre = (w2.t() @ g_out) * (hpre > 0)
        if res:
            g_top = g_hpre
            g_hpre = (g_top + params[4].t() @ g_top) * (h1 > 0)
        g_x = w1.t() @ g_hpre  # (12, n)
        for i, o in enumerate(offs):
            g_c[a + o:b + o] += g_x[i]
        if need_params:
            gp[0] += g_hpre @ x.t()
            gp[1] += g_hpre.sum(1)
            gp[2] += g_out @ hid.t()
            gp[3] += g_out.sum(1)
            if res:
                gp[4] += g_top @ h1.t()
                gp[5] += g_top.sum(1)
    g = g_q + g_c * ((q >= -CLIP) & (q <= CLIP))
    return total.to(q.dtype), [v.clone() for v in canvas.views(g)], gp


def _start_numba_threads() -> None:
    """Start numba's thread pool with its OpenMP threads sleeping when idle. numba's
    OpenMP layer loads its own copy of libgomp next to torch's; that copy's threads,
    spinning after each pass (libgomp's default), took the cores from torch's next ops
    (measured: the step's synthesis 15 -> 39 ms). The copy reads the variable when it
    loads, here; torch's copy has long started and keeps its own policy."""
    from numba.np.ufunc import parallel
    if parallel._is_initialized:
        return
    was = os.environ.get("OMP_WAIT_POLICY")
    if was is None:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        parallel._launch_threads()
    finally:
        if was is None:
            del os.environ["OMP_WAIT_POLICY"]


@contextmanager
def threads(n: int):
    """The CPU pass on n threads (the fit's torch threads), as far as numba has them. On
    one thread numba's pool is never started (cpu_pass runs its serial twin): that pool,
    idle behind numba.set_num_threads(1), slowed two 1-thread encodes running side by side
    on 2 cores 13x (4.3 against 56 s for 30 steps each)."""
    if n <= 1:
        yield
        return
    _start_numba_threads()
    was = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(was)


def cpu_pass(canvas: Canvas, grids: list[torch.Tensor], params: list[torch.Tensor],
             need_params: bool, want_bits: bool = True, sample: float = 1.0):
    """torch_pass on the CPU, compiled (numba): the same values, one vectorised pass over
    the canvas in parallel tasks whose partial sums are added in a fixed order.

    With sample < 1 each task runs with that probability (drawn from the canvas' seeded
    generator) and the gradient is scaled by 1 / sample: an unbiased estimate at that
    share of the cost (the bits and parameter gradients too are the tasks' sums, scaled)."""
    w1, b1, w2, b2 = [p.detach().float().contiguous().numpy() for p in params[:4]]
    res = len(params) > 4
    wr, br = ([p.detach().float().contiguous().numpy() for p in params[4:]] if res
              else (np.zeros((0, 0), np.float32), np.zeros(0, np.float32)))
    q = canvas.fill(grids).numpy()
    s = canvas.scratch()
    sums = want_bits or need_params  # else the fit needs the gradient alone
    used = 1 + sum(p.numel() for p in params) if need_params else 1  # partial's columns
    if sums:
        s["partial"][:, :used] = 0
    s["active"][:] = canvas.rng.random(len(s["active"])) < sample if sample < 1 else 1
    serial = torch.get_num_threads() == 1  # see threads()
    run_pass, gather = (pass_serial, gather_serial) if serial else (pass_parallel,
                                                                  gather_parallel)
    run_pass(q, s["valid"], s["live"], s["offs"], np.ascontiguousarray(w1.T), b1, w2, b2, wr,
             br, canvas.start, np.float32(CLIP), np.float32((SCALES - 1) / 6.0),
             np.float32(2.0 ** -prior.PRECISION), 2 if need_params else int(want_bits),
             s["active"], s["g_q"], s["gx"], s["partial"])
    gather(q, s["g_q"], s["gx"], s["offs"], canvas.start, np.float32(CLIP), s["active"],
           s["g"])
    part = s["partial"][:, :used].sum(0) / sample if sums else None  # tasks' sums, scaled
    total = torch.tensor(part[0] if sums else 0.0)
    g = torch.from_numpy(s["g"] / sample if sample < 1 else s["g"])
    gp = None
    if need_params:
        c, h = w1.shape[1], w1.shape[0]
        o = 1 + c * h
        gp = [torch.from_numpy(part[1:o].reshape(c, h).T.copy()).float(),
              torch.from_numpy(part[o:o + h]).float(),
              torch.from_numpy(part[o + h:o + 3 * h].reshape(2, h)).float(),
              torch.from_numpy(part[o + 3 * h:o + 3 * h + 2]).float()]
        if res:
            o += 3 * h + 2
            gp += [torch.from_numpy(part[o:o + h * h].reshape(h, h).copy()).float(),
                   torch.from_numpy(part[o + h * h:o + h * h + h].copy()).float()]
    return total, [v.clone() for v in canvas.views(g)], gp


class _Bits(torch.autograd.Function):
    @staticmethod
    def forward(ctx, canvas, need_params, value, sample, *tensors):
        n = len(canvas.shapes)
        grids, params = list(tensors[:n]), list(tensors[n:])
        g, p = [g.detach() for g in grids], [p.detach() for p in params]
        if grids[0].device.type == "cpu":
            total, g_grids, g_params = cpu_pass(canvas, g, p, need_params, value, sample)
        else:
            total, g_grids, g_params = torch_pass(canvas, g, p, need_params)
        ctx.save_for_backward(*g_grids, *(g_params or []))
        ctx.n, ctx.need_params, ctx.n_params = n, need_params, len(params)
        return total

    @staticmethod
    def backward(ctx, g_out):
        saved = ctx.saved_tensors
        grads = [g_out * s for s in saved[:ctx.n]]
        params = [g_out * s for s in saved[ctx.n:]] if ctx.need_params \
            else [None] * ctx.n_params
        return (None, None, None, None, *grads, *params)


def bits(canvas: Canvas, grids: list[torch.Tensor], params: list[torch.Tensor],
         value: bool = True, sample: float = 1.0) -> torch.Tensor:
    """The grids' bits: a scalar that autograd differentiates (its gradient is computed
    in the same pass); the ARM's parameters get gradients if they require them. With
    value=False the CPU pass skips the sum (the fit needs only the gradient) and the
    scalar reads 0; `sample` < 1 estimates the gradient on the CPU (cpu_pass)."""
    need = any(p.requires_grad for p in params)
    return _Bits.apply(canvas, need, value, sample, *grids, *params)
