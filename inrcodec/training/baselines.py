"""The paper's baselines as schedules, and one evaluation that compares them all.

Lee et al. (NeurIPS 2021), Section 5, compare Meta-SparseINR with, at matched parameter
counts and the same 100-step test-time fit:

- Random Pruning: Algorithm 1 with random instead of magnitude pruning
  (`MetaConfig(pruning="random")`, trained by `meta.train_meta_sparse`).
- Dense-Narrow: a dense network, meta-learned with MAML, whose width gives an equal or
  slightly larger parameter count (`narrow_width`, `train_dense_narrow`).
- Scratch: the dense-narrow network from a random initialisation.
- MAML+OneShot: the dense meta-learned network, pruned once per signal by global magnitude
  half way through the fit (the reference code prunes at step num_steps / 2).
- MAML+IMP: the dense meta-learned network, pruned 20% per signal k times at evenly
  spaced steps of the fit.
- Section 5.3, the winning ticket: iterative magnitude pruning with weight rewinding on a
  single image, against dense-narrow networks trained on it the same way.

OneShot and IMP choose a mask per signal, so their mask would have to be stored per
image: they are comparisons of what a parameter budget can represent, not codecs.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..codec.weights.config import PAPER_LR, FitConfig
from ..codec.weights.fit import fit
from ..codec.weights.tiles import tile_coords
from ..model.inr import INR, Arch, init_dense, tile_losses
from ..model.prune import _n_remove
from ..model.shared_model import SharedModel
from .config import MetaConfig
from .meta import to_targets, train_meta_sparse

METHODS = ("meta-sparse", "random-pruning", "dense-narrow", "scratch", "maml-oneshot",
           "maml-imp")


def n_params(arch: Arch) -> int:
    return arch.n_weights() + arch.n_biases()


def ladder_params(arch: Arch, rounds: int, rate: float = 0.2) -> list[int]:
    """Parameter count of every level Algorithm 1 yields (deterministic: no training)."""
    n, out = arch.n_weights(), []
    for k in range(rounds + 1):
        if k:
            n -= _n_remove(n, rate)
        out.append(n + arch.n_biases())
    return out


def narrow_width(arch: Arch, params: int) -> int:
    """The smallest width whose dense network has at least `params` parameters."""
    w = 1
    while n_params(dataclasses.replace(arch, width=w)) < params:
        w += 1
    return w


def train_dense_narrow(arch: Arch, width: int, tile: int, train_u8: np.ndarray,
                       val_u8: np.ndarray, cfg: MetaConfig, out: Path, **kw) -> SharedModel:
    """Dense-Narrow: MAML on a dense network of `width` (one level, no pruning)."""
    narrow = dataclasses.replace(arch, width=width)
    return train_meta_sparse(narrow, tile, train_u8, val_u8,
                             dataclasses.replace(cfg, rounds=0), out, **kw)


def weight_positions(net: INR) -> torch.Tensor:
    """Boolean (P,) marking which entries of the flat vector are weights (not biases)."""
    ones = [(torch.ones(s), torch.zeros(s[0])) for s in net.arch.layer_shapes()]
    return net.flatten(ones).bool()


def _prune_rows(theta: torch.Tensor, alive: torch.Tensor, is_w: torch.Tensor,
                n_drop: torch.Tensor | int) -> torch.Tensor:
    """Per row, drop the n_drop smallest-|w| surviving weights (one global threshold)."""
    score = theta.detach().abs().masked_fill(~(alive & is_w), math.inf)
    order = torch.argsort(score, dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order).contiguous())
    n_drop = torch.as_tensor(n_drop).reshape(-1, 1)
    return alive & ~(rank < n_drop)


def fit_with_pruning(net: INR, theta0: torch.Tensor, coords: torch.Tensor,
                     targets: torch.Tensor, weights: torch.Tensor, cfg: FitConfig,
                     schedule: dict[int, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit each signal with Adam, pruning its own weights by magnitude during the fit.

    `schedule` maps a step (1-based, after that step's update) to the fraction of the
    signal's surviving weights to remove there. Returns (theta, alive) with theta zero
    where pruned; alive (n, P) is each signal's own mask over the flat vector.
    """
    n = targets.shape[0]
    is_w = weight_positions(net)
    alive = torch.ones(n, theta0.numel(), dtype=torch.bool)
    theta = theta0.reshape(1, -1).repeat(n, 1).requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=cfg.lr)
    torch.manual_seed(cfg.seed)
    for step in range(1, cfg.steps + 1):
        opt.zero_grad(set_to_none=True)
        tile_losses(net, theta * alive, coords, targets, weights).sum().backward()
        opt.step()
        if step in schedule:
            n_alive = (alive & is_w).sum(1)
            drop = torch.tensor([_n_remove(int(a), schedule[step]) for a in n_alive])
            alive = _prune_rows(theta, alive, is_w, drop)
    return (theta * alive).detach(), alive


def oneshot_schedule(steps: int, density: float) -> dict[int, float]:
    return {max(1, steps // 2): 1.0 - density}


def imp_schedule(steps: int, rounds: int, rate: float = 0.2) -> dict[int, float]:
    """`rounds` prunings of `rate`, at evenly spaced steps strictly inside the fit."""
    at = [int(round(steps * (i + 1) / (rounds + 1))) for i in range(rounds)]
    if len(set(at)) != rounds or (at and (at[0] < 1 or at[-1] >= steps)):
        raise ValueError(f"{rounds} pruning rounds do not fit in {steps} steps")
    return {s: rate for s in at}


def psnr_rows(net: INR, theta: torch.Tensor, coords: torch.Tensor,
              signals_u8: np.ndarray) -> list[float]:
    """PSNR (dB) of each signal's 8-bit rendering."""
    with torch.no_grad():
        out = torch.cat([net(theta[a:a + 64], coords) for a in range(0, len(theta), 64)])
    rec = torch.clamp(torch.round((out + 1) * 127.5), 0, 255)
    ref = torch.from_numpy(signals_u8.reshape(len(signals_u8), -1, 3).astype(np.float32))
    mse = (rec - ref).square().mean(dim=(1, 2)).clamp_min(1e-10)
    return [float(v) for v in 10 * torch.log10(255.0 ** 2 / mse)]


@dataclass
class Result:
    method: str
    params: int
    psnr: list[float]  # one per signal

    @property
    def mean(self) -> float:
        return float(np.mean(self.psnr))


def evaluate(method: str, signals_u8: np.ndarray, *, model: SharedModel | None = None,
             level: int = 0, cfg: FitConfig = FitConfig(), seed: int = 0,
             imp_rounds: int = 0, trace: Callable[[int, torch.Tensor], None] | None = None
             ) -> Result:
    """Fit every signal (n, T, T, 3) uint8 with `method` and report its PSNR.

    meta-sparse / random-pruning / dense-narrow: `model` at `level` (the model is the
    method's trained shared model). scratch: `model` gives the architecture and tile;
    the network starts from a random initialisation (`seed`). maml-oneshot / maml-imp:
    `model` level 0 is the dense meta-learned network, pruned per signal to the density
    of `imp_rounds` rounds of 20%.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if model is None:
        raise ValueError("evaluate needs a shared model")
    tile = signals_u8.shape[1]
    if tile != model.tile:
        raise ValueError(f"signals are {tile}x{tile} but the model's tile is {model.tile}")
    coords = tile_coords(tile)
    tgt = to_targets(signals_u8)
    wts = torch.ones(tgt.shape[:2])
    on_step = (lambda s, step, th: trace(step, th)) if trace is not None else None
    if method in ("maml-oneshot", "maml-imp"):
        net = model.net(0)
        # The density Algorithm 1 reaches after imp_rounds rounds, to the exact weight count.
        n0 = net.n_params - model.arch.n_biases()
        density = (ladder_params(model.arch, imp_rounds)[-1] - model.arch.n_biases()) / n0
        sched = (oneshot_schedule(cfg.steps, density) if method == "maml-oneshot"
                 else imp_schedule(cfg.steps, imp_rounds))
        theta, alive = fit_with_pruning(net, model.levels[0].theta0, coords, tgt, wts, cfg,
                                        sched)
        params = int(alive[0].sum())  # every signal keeps the same count
        return Result(method, params, psnr_rows(net, theta, coords, signals_u8))
    if method == "scratch":
        net = INR(model.arch, fourier=model.fourier)
        theta0 = net.flatten(init_dense(model.arch, torch.Generator().manual_seed(seed)))
    else:
        model.check_level(level)
        net, theta0 = model.net(level), model.levels[level].theta0
    theta = fit(net, theta0, coords, tgt, wts, cfg, on_step=on_step)
    return Result(method, net.n_params, psnr_rows(net, theta, coords, signals_u8))


# -- Section 5.3: winning tickets on one image ---------------------------------------------
def winning_ticket(arch: Arch, image_u8: np.ndarray, *, steps: int, rounds: int,
                   lr: float = PAPER_LR, seed: int = 0, rewind_step: int = 0,
                   eval_every: int = 10, progress: Callable[[int, int, float], None] | None = None) -> list[dict]:
    """IMP with weight rewinding on a single image (the whole image is one signal).

    Train the dense network `steps` Adam steps from a random init, record its peak PSNR,
    prune 20% of surviving weights by global magnitude, rewind survivors to their values at
    `rewind_step`, and repeat. Returns one row per round: params, density, peak PSNR
    (the best 8-bit PSNR seen, checked every `eval_every` steps and at the end).
    """
    h, w = image_u8.shape[:2]
    if h != w:
        raise ValueError("winning_ticket expects a square image")
    net = INR(arch)
    is_w = weight_positions(net)
    coords = tile_coords(h)
    tgt = to_targets(image_u8[None])
    wts = torch.ones(tgt.shape[:2])
    theta_init = net.flatten(init_dense(arch, torch.Generator().manual_seed(seed)))
    alive = torch.ones(1, theta_init.numel(), dtype=torch.bool)
    rewind, rows = None, []
    total = (rounds + 1) * steps
    for r in range(rounds + 1):
        start = (theta_init if rewind is None else rewind).reshape(1, -1)
        theta = (start * alive).clone().requires_grad_(True)
        opt = torch.optim.Adam([theta], lr=lr)
        best = -math.inf
        for step in range(1, steps + 1):
            opt.zero_grad(set_to_none=True)
            loss = tile_losses(net, theta * alive, coords, tgt, wts).sum()
            loss.backward()
            opt.step()
            if step % eval_every == 0 or step == steps:  # a full render costs a forward
                best = max(best, psnr_rows(net, theta * alive, coords, image_u8[None])[0])
            if r == 0 and step == rewind_step:
                rewind = theta.detach().clone()
            if progress is not None:
                progress(r * steps + step, total, float(loss.detach()))
        if rewind is None:
            rewind = theta_init.reshape(1, -1).clone()
        n_w = int((alive & is_w).sum())
        rows.append({"round": r, "params": n_w + arch.n_biases(),
                     "density": n_w / arch.n_weights(), "peak_psnr": best})
        if r < rounds:
            alive = _prune_rows(theta.detach(), alive, is_w, _n_remove(n_w, 0.2))
    return rows


def dense_fit_peak(arch: Arch, image_u8: np.ndarray, *, steps: int, lr: float = PAPER_LR,
                   seed: int = 0, eval_every: int = 10) -> dict:
    """Dense-narrow on one image, trained like a winning-ticket round: peak PSNR."""
    return winning_ticket(arch, image_u8, steps=steps, rounds=0, lr=lr, seed=seed,
                          eval_every=eval_every)[0]
