"""MAML and Meta-SparseINR (Algorithm 1 of Lee et al., NeurIPS 2021).

theta0 is the flat vector of one mask's surviving parameters (see inr.py), so inner and
outer updates can only ever touch surviving weights: pruned ones stay exactly zero.
The meta-batch is adapted as a batch of B networks in one pass.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file as st_load_file
from safetensors.torch import save_file as st_save_file

from ..codec.weights.config import PAPER_LR, PAPER_STEPS, FitConfig
from ..codec.weights.fit import fit
from ..codec.weights.tiles import tile_coords
from ..model.inr import INR, Arch, init_dense, tile_losses
from ..model.prune import magnitude_prune, random_prune
from ..model.shared_model import Level, SharedModel
from .config import MetaConfig


def maml_loss(net: INR, theta0: torch.Tensor, coords: torch.Tensor, targets: torch.Tensor,
              cfg: MetaConfig) -> torch.Tensor:
    """Mean post-adaptation loss over the tasks in `targets` (M, N, C); differentiable in theta0."""
    m = targets.shape[0]
    weights = torch.ones(targets.shape[:2], device=targets.device)
    theta = theta0.unsqueeze(0).expand(m, -1)
    if not theta.requires_grad:  # evaluation only: the inner loop still needs gradients
        theta = theta.detach().clone().requires_grad_(True)
    for _ in range(cfg.inner_steps):
        inner = tile_losses(net, theta, coords, targets, weights).sum()
        (g,) = torch.autograd.grad(inner, theta, create_graph=not cfg.first_order)
        theta = theta - cfg.inner_lr * (g.detach() if cfg.first_order else g)
    return tile_losses(net, theta, coords, targets, weights).mean()


@dataclass
class TrainState:
    """Everything needed to resume: the ladder so far and the phase in progress."""

    levels: list[Level]
    masks: list[torch.Tensor]
    theta: torch.Tensor
    opt_state: dict | None
    phase: int  # 0 = pretraining, r >= 1 = retraining after the r-th pruning
    step: int  # steps done within the phase
    # Early stopping within the phase (cfg.val_every > 0): the best weights validated so far.
    best_theta: torch.Tensor | None = None
    best_val: float = -math.inf
    best_step: int = 0


def to_targets(batch_u8: np.ndarray) -> torch.Tensor:
    """(M, T, T, 3) uint8 crops -> (M, T*T, 3) in [-1, 1]."""
    t = torch.from_numpy(batch_u8.astype(np.float32) / 127.5 - 1.0)
    return t.reshape(t.shape[0], -1, t.shape[-1])


def maml_backward(dist, net: INR, theta: torch.Tensor, coords: torch.Tensor,
                  train_u8: np.ndarray, idx: np.ndarray, cfg, device) -> torch.Tensor:
    """Backward of this rank's share of the meta-batch `idx`, then one all-reduce.

    Leaves in theta.grad the gradient of the mean post-adaptation loss over all of `idx`
    and returns that mean loss (the same on every rank).
    """
    local = dist.shard(idx)
    if len(local):
        tgt = to_targets(train_u8[local]).to(device)
        # maml_loss is a mean over this rank's tasks: rescale so the ranks' sum is the mean
        # over the whole meta-batch.
        loss = maml_loss(net, theta, coords, tgt, cfg) * (len(local) / len(idx))
    else:  # more ranks than tasks: contribute a zero gradient
        loss = (theta * 0).sum()
    loss.backward()
    # One all-reduce carries the gradient and the loss together.
    buf = dist.all_reduce_sum(torch.cat([theta.grad.reshape(-1), loss.detach().reshape(1)]))
    theta.grad.copy_(buf[:-1].reshape(theta.grad.shape))
    return buf[-1]


def validation_psnr(net: INR, theta0: torch.Tensor, coords: torch.Tensor, val_u8: np.ndarray,
                    steps: int = PAPER_STEPS, lr: float = PAPER_LR) -> float:
    """Mean PSNR on 8-bit output after the real encoder's fit, over held-out signals."""
    tgt = to_targets(val_u8)
    theta = fit(net, theta0, coords, tgt, torch.ones(tgt.shape[:2]), FitConfig(steps=steps, lr=lr))
    with torch.no_grad():
        out = net(theta, coords)
    rec = torch.clamp(torch.round((out + 1) * 127.5), 0, 255)
    ref = torch.from_numpy(val_u8.reshape(val_u8.shape[0], -1, 3).astype(np.float32))
    mse = (rec - ref).square().mean(dim=(1, 2)).clamp_min(1e-10)
    return float((10 * torch.log10(255.0 ** 2 / mse)).mean())


def _sparse_delta_start(dense_net: INR, net: INR, phi: torch.Tensor) -> torch.Tensor:
    """Point `net` (one mask) at the dense base `phi`: pruned weights take phi's values, and
    the adapted start is phi's surviving entries. Differentiable in phi."""
    dense = dense_net.dense(phi)
    net.set_fill([w for w, _ in dense])
    return net.flatten(dense)


def train_meta_sparse(arch: Arch, tile: int, train_u8: np.ndarray, val_u8: np.ndarray,
                      cfg: MetaConfig, out: Path, *, checkpoint: Path | None = None,
                      resume: bool = False, info: dict | None = None,
                      log: Callable[[dict], None] | None = None,
                      progress: Callable[[int, int, float], None] | None = None,
                      checkpoint_every: int = 500, device: str = "cpu",
                      dist=None, init: torch.Tensor | None = None) -> SharedModel:
    """Algorithm 1: MAML pretraining, then rounds of {global magnitude prune 20%, MAML retrain}.

    Every finished phase adds a level to the ladder and rewrites `out` (a valid shared model
    at all times); `checkpoint` holds the phase in progress so `resume` continues it.
    `dist` (distributed.DataParallel) splits each meta-batch across processes and averages
    their gradients; its writer rank alone validates (every rank gets the number) and
    writes files.
    `init` (a dense flat vector) replaces the random initialisation, e.g. an already
    pretrained level 0. With cfg.sparse_delta the trained vector is the dense base, pruning
    freezes weights at their base values instead of zeroing them, and
    cfg.bias_only_steps > 0 appends a level where only biases adapt.
    """
    if dist is not None and cfg.sparse_delta:
        raise ValueError("sparse-delta training does not run under torch.distributed (yet)")
    if train_u8.shape[1:] != (tile, tile, 3):
        raise ValueError(f"training signals must be (n, {tile}, {tile}, 3)")
    run = _Algorithm1(arch, tile, train_u8, val_u8, cfg, out, dist, torch.device(device),
                      checkpoint or out.with_suffix(".ckpt.safetensors"), log, progress,
                      checkpoint_every)
    run.info = dict(info or {})
    run.info.update(kind="meta-sparse-inr", meta_config=json.dumps(asdict(cfg), sort_keys=True))
    run.start(resume, init)
    while run.state.phase <= run.last_phase:
        run.phase()
    if dist is not None:
        dist.barrier()  # the writer's files are complete before any rank reads them
    return SharedModel.load(out)


class _Algorithm1:
    """One run of train_meta_sparse: its state (TrainState) and one phase at a time."""

    def __init__(self, arch, tile, train_u8, val_u8, cfg: MetaConfig, out: Path, dist, dev,
                 checkpoint: Path, log, progress, checkpoint_every: int):
        self.arch, self.tile, self.train_u8, self.val_u8 = arch, tile, train_u8, val_u8
        self.cfg, self.out, self.dist, self.dev = cfg, out, dist, dev
        self.checkpoint, self.log, self.progress = checkpoint, log, progress
        self.checkpoint_every = checkpoint_every
        self.writer = dist is None or dist.is_writer
        self.coords = tile_coords(tile).to(dev)
        self.bias_phase = cfg.rounds + 1 if cfg.sparse_delta and cfg.bias_only_steps > 0 \
            else None
        self.last_phase = cfg.rounds if self.bias_phase is None else self.bias_phase
        self.total_steps = cfg.pretrain_steps + cfg.rounds * cfg.retrain_steps + (
            cfg.bias_only_steps if self.bias_phase else 0)
        self.dense_net = INR(arch)
        self.prune_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.info: dict = {}

    def start(self, resume: bool, init: torch.Tensor | None) -> None:
        arch, cfg = self.arch, self.cfg
        if resume and self.checkpoint.exists():
            self.state = load_checkpoint(self.checkpoint, arch)
        else:
            dense = init_dense(arch, torch.Generator().manual_seed(cfg.seed))
            masks = [torch.ones(w.shape, dtype=torch.bool) for w, _ in dense]
            theta = INR(arch, masks).flatten(dense) if init is None else init.detach().clone()
            if theta.shape != (arch.n_weights() + arch.n_biases(),):
                raise ValueError("the initial vector does not fit the architecture")
            self.state = TrainState([], masks, theta, None, 0, 0)
        for _ in range(self.state.phase):  # keep the random-pruning stream aligned on resume
            torch.randperm(8, generator=self.prune_gen)

    def validate(self, net: INR, theta: torch.Tensor) -> float:
        """Under `dist` the writer validates and every rank gets its number, so all ranks
        keep the same weights."""
        def run():
            return validation_psnr(net, theta, self.coords.cpu(), self.val_u8)
        return run() if self.dist is None else self.dist.writer_value(run)

    def start_of(self, net: INR, theta: torch.Tensor) -> torch.Tensor:
        """What an image's fit starts from: theta, or, sparse-delta, its level's start."""
        return _sparse_delta_start(self.dense_net, net, theta) if self.cfg.sparse_delta \
            else theta

    def phase(self) -> None:
        """Train the phase in progress to its end, keep it as a level, prune for the next."""
        state, cfg = self.state, self.cfg
        net = INR(self.arch, state.masks)
        n_steps = (cfg.pretrain_steps if state.phase == 0 else
                   cfg.bias_only_steps if state.phase == self.bias_phase else cfg.retrain_steps)
        t0 = time.perf_counter()
        theta = self.train_steps(net, n_steps)
        if state.best_theta is not None:
            theta_done, val, kept = state.best_theta, state.best_val, state.best_step
        else:
            theta_done, kept, val = theta.detach().cpu(), n_steps, None
        self.keep_level(net, theta_done, val, {"steps": n_steps, "kept_step": kept,
                                               "seconds": time.perf_counter() - t0})
        self.prune(net, theta_done)
        state.phase += 1
        state.step, state.opt_state = 0, None
        state.best_theta, state.best_val, state.best_step = None, -math.inf, 0
        if self.writer:
            save_checkpoint(self.checkpoint, self.arch, state)

    def train_steps(self, net: INR, n_steps: int) -> torch.Tensor:
        """MAML outer steps until the phase's n_steps, validating and checkpointing."""
        state, cfg, dev = self.state, self.cfg, self.dev
        theta = state.theta.clone().to(dev).requires_grad_(True)
        opt = torch.optim.Adam([theta], lr=cfg.outer_lr)
        if state.opt_state is not None:
            opt.load_state_dict(state.opt_state)
        while state.step < n_steps:
            # A stream per step, so a resumed run samples exactly what an unbroken one would.
            rng = np.random.default_rng([cfg.seed, state.phase, state.step])
            idx = rng.integers(0, self.train_u8.shape[0], size=cfg.meta_batch)
            opt.zero_grad(set_to_none=True)
            if self.dist is None:
                loss = maml_loss(net, self.start_of(net, theta), self.coords,
                                 to_targets(self.train_u8[idx]).to(dev), cfg)
                loss.backward()
            else:
                loss = maml_backward(self.dist, net, theta, self.coords, self.train_u8, idx,
                                     cfg, dev)
            opt.step()
            state.step += 1
            done = (0 if state.phase == 0 else cfg.pretrain_steps
                    + (min(state.phase, cfg.rounds + 1) - 1) * cfg.retrain_steps) + state.step
            if self.progress is not None:
                self.progress(done, self.total_steps, float(loss.detach()))
            if cfg.val_every and len(self.val_u8) and (state.step % cfg.val_every == 0
                                                       or state.step == n_steps):
                self.keep_if_best(net, theta)
            if self.writer and state.step % self.checkpoint_every == 0 and state.step < n_steps:
                state.theta, state.opt_state = theta.detach().cpu(), opt.state_dict()
                save_checkpoint(self.checkpoint, self.arch, state)
        return theta

    def keep_if_best(self, net: INR, theta: torch.Tensor) -> None:
        """Early stopping: validate (the level's start, for sparse-delta) and keep the best."""
        state = self.state
        val = self.validate(net, self.start_of(net, theta.detach().cpu()))
        if self.log is not None and self.writer:
            self.log({"event": "val", "phase": state.phase, "step": state.step,
                      "val_psnr": val})
        if val > state.best_val:
            state.best_theta = theta.detach().cpu().clone()
            state.best_val, state.best_step = val, state.step

    def keep_level(self, net: INR, theta_done: torch.Tensor, val: float | None,
                   entry: dict) -> None:
        """The finished phase becomes a level; `out` is rewritten with the ladder so far."""
        state = self.state
        if self.cfg.sparse_delta:
            level = Level(masks=state.masks,
                          theta0=_sparse_delta_start(self.dense_net, net, theta_done),
                          base=torch.cat([w.reshape(-1)
                                          for w, _ in self.dense_net.dense(theta_done)]))
        else:
            level = Level(masks=state.masks, theta0=theta_done)
        if val is None:
            val = self.validate(net, level.theta0) if len(self.val_u8) else math.nan
        state.levels.append(level)
        if self.log is not None and self.writer:
            self.log({"phase": state.phase, "density": net.density, "params": net.n_params,
                      "steps": entry["steps"], "kept_step": entry["kept_step"],
                      "val_psnr": val, "seconds": entry["seconds"]})
        self.info.setdefault("val_psnr", [])
        self.info["val_psnr"] = list(self.info["val_psnr"])[:state.phase] + [round(val, 3)]
        model = SharedModel(arch=self.arch, tile=self.tile, levels=list(state.levels),
                            default_level=len(state.levels) // 2, info=self.info)
        if self.writer:
            model.save(self.out)

    def prune(self, net: INR, theta_done: torch.Tensor) -> None:
        """The next phase's start: prune 20% of surviving weights (one global threshold),
        keep the values. Sparse-delta: the base stays dense and carries on; only the mask
        of adapted weights shrinks (or empties, for the bias-only level)."""
        state, cfg = self.state, self.cfg

        def pruned(weights):
            if cfg.pruning == "magnitude":
                return magnitude_prune(weights, state.masks, cfg.prune_rate)
            return random_prune(state.masks, cfg.prune_rate, self.prune_gen)
        if cfg.sparse_delta and state.phase < self.last_phase:
            state.theta = theta_done
            if state.phase + 1 == self.bias_phase:
                state.masks = [torch.zeros_like(m) for m in state.masks]
            else:
                state.masks = pruned([w for w, _ in self.dense_net.dense(theta_done)])
        elif not cfg.sparse_delta and state.phase < cfg.rounds:
            dense = net.dense(theta_done)
            new_masks = pruned([w for w, _ in dense])
            state.theta = INR(self.arch, new_masks).flatten(dense)
            state.masks = new_masks


# -- checkpoints (safetensors + JSON metadata: no pickle) ------------------------------------
def save_checkpoint(path: Path, arch: Arch, s: TrainState) -> None:
    t = {"theta": s.theta.detach().cpu().contiguous()}
    for li, m in enumerate(s.masks):
        t[f"mask.{li}"] = m.to(torch.uint8).contiguous()
    for k, lv in enumerate(s.levels):
        t[f"level.{k:02d}.theta"] = lv.theta0.contiguous()
        for li, m in enumerate(lv.masks):
            t[f"level.{k:02d}.mask.{li}"] = m.to(torch.uint8).contiguous()
        if lv.base is not None:
            t[f"level.{k:02d}.base"] = lv.base.contiguous()
    meta = {"arch": json.dumps(arch.to_dict()), "phase": str(s.phase), "step": str(s.step),
            "n_levels": str(len(s.levels)), "has_opt": "0"}
    if s.best_theta is not None:
        t["best.theta"] = s.best_theta.contiguous()
        meta["best_val"], meta["best_step"] = repr(s.best_val), str(s.best_step)
    if s.opt_state is not None:
        st = s.opt_state["state"].get(0)
        if st:
            t["adam.exp_avg"] = st["exp_avg"].cpu().contiguous()
            t["adam.exp_avg_sq"] = st["exp_avg_sq"].cpu().contiguous()
            meta["adam_step"] = str(float(st["step"]))
            meta["adam_groups"] = json.dumps(s.opt_state["param_groups"])
            meta["has_opt"] = "1"
    tmp = path.with_name(path.name + ".part")
    st_save_file(t, str(tmp), metadata=meta)
    tmp.replace(path)


def load_checkpoint(path: Path, arch: Arch) -> TrainState:
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    if Arch.from_dict(json.loads(meta["arch"])) != arch:
        raise ValueError(f"checkpoint {path} was made for a different architecture")
    t = st_load_file(str(path))
    n_layers = len(arch.layer_shapes())
    levels = [Level(masks=[t[f"level.{k:02d}.mask.{li}"].bool() for li in range(n_layers)],
                    theta0=t[f"level.{k:02d}.theta"], base=t.get(f"level.{k:02d}.base"))
              for k in range(int(meta["n_levels"]))]
    opt_state = None
    if meta.get("has_opt") == "1":
        opt_state = {"state": {0: {"step": torch.tensor(float(meta["adam_step"])),
                                   "exp_avg": t["adam.exp_avg"], "exp_avg_sq": t["adam.exp_avg_sq"]}},
                     "param_groups": json.loads(meta["adam_groups"])}
    return TrainState(levels=levels, masks=[t[f"mask.{li}"].bool() for li in range(n_layers)],
                      theta=t["theta"], opt_state=opt_state, phase=int(meta["phase"]),
                      step=int(meta["step"]), best_theta=t.get("best.theta"),
                      best_val=float(meta.get("best_val", "-inf")),
                      best_step=int(meta.get("best_step", "0")))
