"""Compute that follows the surviving weights: the mask's structure, run compactly.

Every tile of a batch shares one mask, so the structure the mask leaves can be worked out
once per level and every forward pass can skip what the mask has cut away:

- a hidden neuron with no surviving incoming weight from a pixel-dependent input outputs a
  constant, act(bias) (or act of other constants): it is computed once per network
  (B values, not B x pixels) and folded into the next layer's bias, differentiably, so its
  bias and outgoing weights still get their exact gradients;
- a neuron whose outgoing weights are all pruned (or lead only to such neurons) is never
  computed: in the masked dense network its value is multiplied by zeros, so its
  parameters get zero gradient there, as here;
- what survives runs as dense `bmm`s over the compact (rows x cols) sub-matrices.

The result is the masked dense network's function and gradient, up to float rounding (a
different summation order). Whether it is faster depends on how much the mask removes and
on the device: `plan_for` decides per level, by a rule fitted to measurements
(benchmarks/speed.py), and keeps the dense path where it is faster.
"""
from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass

import numpy as np
import torch

PATHS = ("auto", "dense", "compact")

# A rough weight for one hidden unit's activation (sin forward; cos and a multiply
# backward) against one multiply-add, per pixel: at width 64 on a CPU the elementwise passes
# dominate a fit step (DESIGN.md). Calibrated for width 64; for other shapes, check the
# choice with benchmarks/speed.py (and force a path with accel.options if it is wrong).
ACT_COST = 48.0
# Use the compact path on a CPU when its estimated cost is below this fraction of the dense
# one. From benchmarks/speed.py (2-core CPU, 1 thread; docs/studies/results-log.md): on
# model 1c8b4377faa8 estimates 0.94-0.99 ran at 0.88-0.90x the dense step's speed, 0.87 at
# 1.05x, 0.76 and below at 1.2x-6.3x; on a078708559e7 0.90-1.0 at 0.89-1.03x, 0.88 at
# 1.03x, 0.83 and below at 1.18x-5.8x.
CPU_THRESHOLD = 0.9


_state = threading.local()


def current_path() -> str:
    return getattr(_state, "path", "auto")


@contextlib.contextmanager
def compute_path(path: str):
    """Force the path every INR uses inside the block: 'auto', 'dense' or 'compact'."""
    if path not in PATHS:
        raise ValueError(f"compute path must be one of {PATHS}, got {path!r}")
    old = current_path()
    _state.path = path
    try:
        yield
    finally:
        _state.path = old


@dataclass(frozen=True)
class _Layer:
    rows: torch.Tensor       # varying (pixel-dependent) output units computed per pixel
    w_idx: torch.Tensor      # (len(rows) * len(cols),) positions in theta_ext (P = zero)
    b_idx: torch.Tensor      # (len(rows),) bias positions in theta
    # constants feeding these rows: indices into the previous layer's constant units
    c_cols: torch.Tensor
    wc_idx: torch.Tensor     # (len(rows) * len(c_cols),) positions in theta_ext
    # this layer's constant units (pixel-independent), computed once per network
    k_rows: torch.Tensor
    k_w_idx: torch.Tensor    # (len(k_rows) * n_prev_constants,) positions in theta_ext
    k_b_idx: torch.Tensor


class CompactPlan:
    """The compact structure of one INR's masks, and its forward pass."""

    def __init__(self, net):
        self.net = net
        arch = net.arch
        masks = net.masks
        n_layers = len(masks)
        last = n_layers - 1
        # needed[k][j]: unit j of layer k reaches the output through surviving weights.
        needed = [None] * n_layers
        needed[last] = torch.ones(masks[last].shape[0], dtype=torch.bool)
        for k in range(last - 1, -1, -1):
            needed[k] = (masks[k + 1] & needed[k + 1][:, None]).any(0)
        # varying[k][j]: unit j of layer k depends on the pixel (the output layer's rows are
        # all treated as varying: the output is needed per pixel anyway).
        varying_prev = torch.ones(masks[0].shape[1], dtype=torch.bool)
        # the inputs (coordinates or Fourier features) that reach a needed unit
        vprev = torch.nonzero((masks[0] & needed[0][:, None]).any(0)).squeeze(1)
        cprev = torch.zeros(0, dtype=torch.long)
        self.in_cols = vprev
        P = net.n_params
        self.layers: list[_Layer] = []
        macs = 0
        acts = 0
        for k, ((o, i), _, w_off, n_w, b_off) in enumerate(net.layout):
            m = masks[k]
            # flat position in theta of every (row, col) entry; P stands for "pruned: zero"
            pos = torch.full((o * i,), P, dtype=torch.long)
            pos[m.reshape(-1)] = torch.arange(w_off, w_off + n_w)
            pos = pos.reshape(o, i)
            is_var = (m & varying_prev[None, :]).any(1)
            if k == last:
                rows = torch.arange(o)
                krows = torch.zeros(0, dtype=torch.long)
            else:
                rows = torch.nonzero(is_var & needed[k]).squeeze(1)
                krows = torch.nonzero(~is_var & needed[k]).squeeze(1)
            # constants of the previous layer that feed these rows through surviving weights
            c_used = (m[rows][:, cprev].any(0) if len(cprev) and len(rows)
                      else torch.zeros(len(cprev), dtype=torch.bool))
            c_cols = torch.nonzero(c_used).squeeze(1)
            self.layers.append(_Layer(
                rows=rows, w_idx=pos[rows][:, vprev].reshape(-1),
                b_idx=b_off + rows,
                c_cols=c_cols,
                wc_idx=pos[rows][:, cprev[c_cols]].reshape(-1),
                k_rows=krows,
                k_w_idx=pos[krows][:, cprev].reshape(-1),
                k_b_idx=b_off + krows))
            macs += len(rows) * len(vprev)
            if k != last:
                acts += len(rows)
            # a unit is pixel-dependent whether or not it is needed (for the next layer's test)
            varying_prev = is_var
            vprev, cprev = rows, krows
        self.macs, self.acts = macs, acts
        dense_macs = sum(o * i for o, i in arch.layer_shapes())
        dense_acts = arch.width * arch.depth
        self.dense_macs, self.dense_acts = dense_macs, dense_acts
        self.widths = [len(self.in_cols)] + [len(lay.rows) for lay in self.layers]
        self.n_constants = sum(len(lay.k_rows) for lay in self.layers)
        self._dev_cache: dict = {}

    def cost_ratio(self, act_cost: float = ACT_COST) -> float:
        """Estimated per-pixel cost of the compact pass relative to the dense one."""
        return ((self.macs + act_cost * self.acts)
                / (self.dense_macs + act_cost * self.dense_acts))

    def _on(self, device):
        key = str(device)
        if key not in self._dev_cache:
            self._dev_cache[key] = [
                _Layer(*(getattr(lay, f).to(device) for f in _Layer.__dataclass_fields__))
                for lay in self.layers] + [self.in_cols.to(device)]
        return self._dev_cache[key]

    def forward(self, theta: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Same contract as INR.forward: theta (B, P), coords (N, in) or (B, N, in)."""
        net = self.net
        B = theta.shape[0]
        *layers, in_cols = self._on(theta.device)
        h = coords if coords.dim() == 3 else coords.unsqueeze(0).expand(B, -1, -1)
        siren = net.fourier is None
        if not siren:
            proj = 2 * math.pi * h @ net.fourier.to(h).t()
            h = torch.cat([torch.cos(proj), torch.sin(proj)], dim=-1)
        if len(in_cols) != h.shape[-1]:
            h = h.index_select(-1, in_cols)
        ext = torch.cat([theta, theta.new_zeros(B, 1)], dim=1)
        w0 = net.arch.w0
        const = theta.new_zeros(B, 0)  # the previous layer's constant units, (B, n)
        last = len(layers) - 1
        for k, lay in enumerate(layers):
            n_r, n_c = len(lay.rows), h.shape[-1]
            w = ext.index_select(1, lay.w_idx).reshape(B, n_r, n_c)
            b = theta.index_select(1, lay.b_idx)
            if len(lay.c_cols):
                wc = ext.index_select(1, lay.wc_idx).reshape(B, n_r, len(lay.c_cols))
                b = b + torch.bmm(wc, const.index_select(1, lay.c_cols).unsqueeze(2)).squeeze(2)
            if k == last:
                return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            new_const = theta.new_zeros(B, 0)
            if len(lay.k_rows):
                kb = theta.index_select(1, lay.k_b_idx)
                if const.shape[1]:
                    kw = ext.index_select(1, lay.k_w_idx).reshape(B, len(lay.k_rows), const.shape[1])
                    kb = kb + torch.bmm(kw, const.unsqueeze(2)).squeeze(2)
                new_const = torch.sin(w0 * kb) if siren else torch.relu(kb)
            if siren:
                h = torch.sin(torch.baddbmm((w0 * b).unsqueeze(1), h, (w0 * w).transpose(1, 2)))
            else:
                h = torch.relu(torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2)))
            const = new_const
        raise AssertionError("unreachable")


def plan_for(net, device: torch.device | str) -> CompactPlan | None:
    """The compact plan to use for this net on this device, or None for the dense path."""
    path = current_path()
    if path == "dense" or getattr(net, "fill", None) is not None:
        # A sparse-delta network (fill) is dense: what the mask removes keeps shared values.
        return None
    plan = net.compact_plan()
    if path == "compact":
        return plan
    # auto: measured on CPUs only; on a GPU the dense path stays until benchmarks/speed.py
    # has measured where the compact one wins there.
    if torch.device(device).type != "cpu":
        return None
    return plan if plan.cost_ratio() < CPU_THRESHOLD else None


def live_mask(net) -> np.ndarray:
    """(P,) bool: the parameters that can change the output.

    A unit whose output reaches no weight of the next layer (pruned to zero, with no shared
    value in its place) never influences the image, so its incoming weights and its bias get
    exactly zero gradient: the encoder leaves them at theta0 and the file does not store them.
    Computed from the masks alone (and the sparse-delta fill), so the decoder derives the
    same set.
    """
    live = np.zeros(net.n_params, dtype=bool)
    live_units = np.ones(net.layout[-1][0][0], dtype=bool)  # the output units
    for li in range(len(net.layout) - 1, -1, -1):
        (o, i), _, w_off, n_w, b_off = net.layout[li]
        kept = net.masks[li].cpu().numpy()
        present = kept if net.fill is None else kept | (net.fill[li].detach().cpu().numpy() != 0)
        feeds = present & live_units[:, None]  # (o, i): weights into live units
        live[w_off:w_off + n_w] = (kept & live_units[:, None]).reshape(-1)[kept.reshape(-1)]
        live[b_off:b_off + o] = live_units
        live_units = feeds.any(0)
    return live
