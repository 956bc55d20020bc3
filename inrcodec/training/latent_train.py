"""Training the latent mode's shared model (codec/latent/model.py): the synthesis SIREN's
initialisation and the autoregressive entropy model, then Algorithm 1's pruning ladder.

What the encoder does to a photo is what training does to crops: latents start at zero and
follow the encoder's schedule (Adam at the latent learning rate with cosine decay, the
encoder's proxy of rounding (fit.quantised: noisy soft rounding with its temperature
annealed over a crop's steps, since 0.9.1; before, uniform noise), then straight-through
rounding for the last fifth), for
D + lambda R with lambda drawn per crop over the codec's range. A pool of crops is fitted
this way, a batch of them one step at a time, while the shared synthesis and ARM take a
step on the same loss; a crop that has had `visits` steps leaves the pool for a fresh one.
The shared parts thus learn from latents at every stage of a fit (a first-order stand-in
for MAML's inner loop: the inner loop is spread over the pool instead of unrolled). The
quantity to watch is the loss of crops as they leave: what a fit from the current shared
init reaches.

Then pruning (Algorithm 1): drop 20 % of the surviving synthesis weights by global
magnitude, train on, and keep each round as a level of the ladder.

Checkpoints (safetensors, no pickle) every `ckpt_every` steps; `resume` continues from one
with a fresh pool of crops.
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
from safetensors.torch import load_file, save_file

from ..codec import prior
from ..codec.latent import arm, grids, layout, synthesis, upsampling
from ..codec.latent.config import LatentArch, LatentFit, latent_lambda
from ..codec.latent.fit import quantised
from ..codec.latent.model import LatentModel
from ..model.prune import prune_flat
from .data import random_crops
from .train import split_photos

# The architecture `inrcodec train --mode latent` trains unless told (--width, --depth,
# --w0, --upsample): the shipped model's (inrcodec/models/latent.safetensors), 7 grids and
# the pixel's coordinates into a 16-wide 2-layer SIREN with w0 = 5 (the latents are
# integers of a few units, so the usual w0 = 30 oversteers).
TRAIN_ARCH = LatentArch(levels=7, hidden=16, layers=2, act="sine", w0=5.0, arm_hidden=16,
                        coords=True)
# The fields of LatentTrainConfig that are the encoder's fit (LatentFit) on purpose: the
# crops are fitted the way the encoder fits a photo. Each is written out below with the
# value the shipped model was trained with; tests/test_latent_train.py fails when the
# encoder's default and training's differ, so that a change to one is a choice about both.
# ste_fraction is not among them: the shipped model was trained with a straight-through
# phase (0.2) that the encoder dropped in 0.10.0.
SHARED_WITH_FIT = ("lr_latent", "coarse_lr_factor", "quantizer", "temperature", "noise_scale")


@dataclass(frozen=True)
class LatentTrainConfig:
    """Training's own recipe; its defaults are what trained the shipped model."""

    steps: int = 20000  # dense steps
    rounds: int = 3  # pruning rounds (20 % each)
    round_steps: int = 1500
    prune_rate: float = 0.2
    crop: int = 128
    batch: int = 8
    pool: int = 96
    visits: int = 300  # steps a crop is fitted for before it leaves the pool
    quality_lo: float = 10.0  # lambda is drawn log-uniformly between these qualities
    quality_hi: float = 90.0
    lr: float = 2e-3  # shared synthesis and ARM
    # the crops' fit (LatentFit's, see SHARED_WITH_FIT)
    lr_latent: float = 0.05
    coarse_lr_factor: float = 6.0
    ste_fraction: float = 0.2
    quantizer: str = "softround"
    temperature: tuple[float, float] = (0.5, 0.1)
    noise_scale: tuple[float, float] = (1.0, 1.0)
    pixel_fraction: float = 0.5
    crop_scale: tuple[float, float] = (0.25, 0.75)
    seed: int = 0
    ckpt_every: int = 250


class _Pool:
    """Crops being fitted: latents, their Adam moments, steps taken, lambda."""

    def __init__(self, cfg: LatentTrainConfig, arch: LatentArch, photos, seed: int):
        self.cfg, self.arch, self.photos = cfg, arch, photos
        self.rng = np.random.default_rng(seed)
        self.refills = 0
        self.buffer: list[np.ndarray] = []
        self.shapes = layout.grid_shapes(cfg.crop, cfg.crop, arch.levels)
        self.img = torch.empty(cfg.pool, cfg.crop * cfg.crop, 3)
        self.lat = [torch.zeros(cfg.pool, *s) for s in self.shapes]
        self.m = [torch.zeros_like(g) for g in self.lat]
        self.v = [torch.zeros_like(g) for g in self.lat]
        self.t = torch.zeros(cfg.pool, dtype=torch.long)
        self.lam = torch.zeros(cfg.pool)
        for i in range(cfg.pool):
            self.reset(i, stagger=True)

    def _crop(self) -> np.ndarray:
        if not self.buffer:
            seed = int(self.rng.integers(1 << 31))
            self.buffer = list(random_crops(self.photos, self.cfg.crop, 64, seed=seed,
                                            scale_range=self.cfg.crop_scale))
            self.refills += 1
        return self.buffer.pop()

    def reset(self, i: int, stagger: bool = False) -> None:
        c = self.cfg
        self.img[i] = torch.from_numpy(self._crop().reshape(-1, 3).copy())
        for a in (self.lat, self.m, self.v):
            for g in a:
                g[i] = 0
        # A staggered start spreads the first pool over a fit's stages.
        self.t[i] = int(self.rng.integers(c.visits // 2)) if stagger else 0
        q = self.rng.uniform(c.quality_lo, c.quality_hi)
        self.lam[i] = latent_lambda(q)


    def adam_step(self, idx: torch.Tensor, lat: list[torch.Tensor]) -> None:
        """The crops' own Adam, as the encoder's: per-crop step count and cosine decay, on
        each crop's own loss (the batch mean's gradient times the batch)."""
        c, b1, b2, eps = self.cfg, 0.9, 0.999, 1e-8
        t = self.t[idx]
        tt = (t + 1).float()
        f = 0.5 * (1 + torch.cos(math.pi * t.float() / c.visits))
        lr0 = c.lr_latent * (0.02 + 0.98 * f)
        for k, g in enumerate(lat):
            lr = lr0 * (c.coarse_lr_factor if k else 1.0)
            view = (-1,) + (1,) * (g.dim() - 1)
            gr = g.grad * c.batch
            m = self.m[k][idx] * b1 + (1 - b1) * gr
            v = self.v[k][idx] * b2 + (1 - b2) * gr * gr
            mh = m / (1 - b1 ** tt).view(view)
            vh = v / (1 - b2 ** tt).view(view)
            self.lat[k][idx] = g - lr.view(view) * mh / (vh.sqrt() + eps)
            self.m[k][idx], self.v[k][idx] = m, v
        self.t[idx] += 1


class _Shared:
    """What training learns: the synthesis initialisation (with its current mask), the
    float ARM, their Adam, and the ladder's levels so far; checkpointed as safetensors."""

    def __init__(self, arch: LatentArch, cfg: LatentTrainConfig):
        self.arch, self.cfg = arch, cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        self.theta = synthesis.init_synthesis(arch, gen)
        self.armp = arm.init_float(arch.arm_hidden, gen)
        self.mask = torch.ones(arch.n_params(), dtype=torch.bool)
        self.levels: list[torch.Tensor] = []
        self.masks: list[torch.Tensor] = []
        self.step = 0
        self.params = [self.theta.requires_grad_(True)] + [p.requires_grad_(True)
                                                           for p in self.armp]
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr)

    @property
    def total(self) -> int:
        return self.cfg.steps + self.cfg.rounds * self.cfg.round_steps

    def at_phase_end(self) -> bool:
        """Whether `step` ends the dense phase or a pruning round."""
        c = self.cfg
        return self.step == c.steps or (self.step > c.steps
                                        and (self.step - c.steps) % c.round_steps == 0)

    def prune_if_due(self) -> None:
        """At the start of each pruning round, Algorithm 1's step: drop prune_rate of the
        surviving synthesis weights by global magnitude."""
        c = self.cfg
        if self.step >= c.steps and (self.step - c.steps) % c.round_steps == 0 \
                and len(self.levels) == 1 + (self.step - c.steps) // c.round_steps:
            with torch.no_grad():
                weights = layout.weight_tensors(self.arch)
                self.mask = prune_flat(self.theta.detach(), self.mask, weights, c.prune_rate)
                self.theta.mul_(self.mask)

    def update(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            self.theta.grad.mul_(self.mask)
        self.opt.step()
        with torch.no_grad():
            self.theta.mul_(self.mask)

    def keep_level(self) -> None:
        self.levels.append((self.theta.detach() * self.mask).clone())
        self.masks.append(self.mask.clone())

    def save(self, ckpt: Path) -> None:
        st = {f"p{i}": p.detach().clone() for i, p in enumerate(self.params)}
        for i, p in enumerate(self.params):
            s = self.opt.state.get(p)
            st[f"m{i}"] = (s["exp_avg"] if s else torch.zeros_like(p)).clone()
            st[f"v{i}"] = (s["exp_avg_sq"] if s else torch.zeros_like(p)).clone()
        st["mask"] = self.mask.to(torch.uint8)
        for k, (lv, mk) in enumerate(zip(self.levels, self.masks)):
            st[f"level{k}"] = lv.clone()
            st[f"levelmask{k}"] = mk.to(torch.uint8)
        s0 = self.opt.state.get(self.params[0])
        tmp = ckpt.with_suffix(".tmp")
        save_file(st, str(tmp))
        tmp.replace(ckpt)
        ckpt.with_suffix(".json").write_text(json.dumps({
            "step": self.step, "n_levels": len(self.levels),
            "config": _jsonable(asdict(self.cfg)), "arch": asdict(self.arch),
            "adam_step": float(s0["step"]) if s0 else 0.0}))

    def load(self, ckpt: Path) -> None:
        st = load_file(str(ckpt))
        meta = json.loads(ckpt.with_suffix(".json").read_text())
        if meta["config"] != _jsonable(asdict(self.cfg)) or meta["arch"] != asdict(self.arch):
            raise SystemExit(f"{ckpt} was made with another configuration")
        with torch.no_grad():
            for i, p in enumerate(self.params):
                p.copy_(st[f"p{i}"])
        for i, p in enumerate(self.params):
            self.opt.state[p] = {"step": torch.tensor(float(meta["adam_step"])),
                                 "exp_avg": st[f"m{i}"].clone(),
                                 "exp_avg_sq": st[f"v{i}"].clone()}
        self.mask = st["mask"].bool()
        self.levels = [st[f"level{k}"] for k in range(meta["n_levels"])]
        self.masks = [st[f"levelmask{k}"].bool() for k in range(meta["n_levels"])]
        self.step = meta["step"]

    def model(self, info: dict) -> LatentModel:
        a = arm.ArmParams.from_float(*[p.detach().numpy() for p in self.armp])
        return LatentModel(arch=self.arch, thetas=[lv.to(torch.float32) for lv in self.levels],
                           masks=self.masks, arm=(a.w1, a.b1, a.w2, a.b2), default_level=0,
                           info=info)


def _batch_loss(shared: _Shared, pool: _Pool, idx: torch.Tensor, coords: torch.Tensor,
                n_ste: int) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor,
                                     torch.Tensor]:
    """D + lambda R of a batch of the pool's crops through the shared synthesis and ARM
    -> (the batch's mean loss, the crops' latents (leaves), per-crop MSE, per-crop bits)."""
    cfg, arch = shared.cfg, shared.arch
    n_px = cfg.crop * cfg.crop
    lat = [g[idx].clone().requires_grad_(True) for g in pool.lat]
    q = _proxy(lat, pool.t[idx], cfg, n_ste)
    th = shared.theta * shared.mask
    up = _upsample_batch(arch, q, cfg.crop, cfg.crop, synthesis.taps(arch, th)
                         ).reshape(cfg.batch, arch.levels, -1)
    feats = torch.cat([up, coords.expand(cfg.batch, -1, -1)], 1) if arch.coords else up
    pix = torch.randint(0, n_px, (max(1, int(cfg.pixel_fraction * n_px)),))
    x = feats[:, :, pix].permute(0, 2, 1).reshape(-1, arch.inputs)
    y = pool.img[idx][:, pix].reshape(-1, 3)
    err = (synthesis.synthesize(arch, th, x) - y).square().reshape(cfg.batch, -1).mean(1)
    bits = torch.zeros(cfg.batch)
    for g in q:
        mu, sc = arm.predict_float(shared.armp, arm.context_float(g))
        bits = bits + prior.rate_bits(g.reshape(cfg.batch, -1), sc, mu).sum(1)
    loss = (err + pool.lam[idx] * bits / n_px).mean()
    return loss, lat, err, bits


def train_latent(out: Path, *, arch: LatentArch, cfg: LatentTrainConfig, photos: list[Path],
                 resume: bool = False,
                 command: str = "", log: Callable[[dict], None] | None = None,
                 threads: int | None = None) -> LatentModel:
    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    ckpt = out.with_suffix(".ckpt.safetensors")
    train_photos, _ = split_photos(list(photos))
    shared = _Shared(arch, cfg)
    if resume and ckpt.exists():
        shared.load(ckpt)
    pool = _Pool(cfg, arch, train_photos, cfg.seed * 7919 + shared.step)
    n_px = cfg.crop * cfg.crop
    coords = grids.coordinates(cfg.crop, cfg.crop).reshape(2, -1)
    n_ste = int(round(cfg.ste_fraction * cfg.visits))
    leaving: list[tuple[float, float]] = []
    t0 = time.time()
    while shared.step < shared.total:
        shared.prune_if_due()
        idx = torch.from_numpy(pool.rng.choice(cfg.pool, cfg.batch, replace=False))
        loss, lat, err, bits = _batch_loss(shared, pool, idx, coords, n_ste)
        shared.update(loss)
        with torch.no_grad():
            pool.adam_step(idx, lat)
            for j, i in enumerate(idx.tolist()):
                if pool.t[i] >= cfg.visits:
                    leaving.append((float(err[j]), float(bits[j]) / n_px))
                    pool.reset(i)
        shared.step += 1
        end_of_phase = shared.at_phase_end()
        if end_of_phase:
            shared.keep_level()
        if log is not None and (shared.step % 50 == 0 or end_of_phase):
            log(_log_record(shared, loss, leaving, time.time() - t0))
            leaving = []
        if shared.step % cfg.ckpt_every == 0 or shared.step == shared.total:
            shared.save(ckpt)
    model = shared.model({"command": command, "config": _jsonable(asdict(cfg)),
                          "photos": f"{len(train_photos)} photos (training split)",
                          "trainer": "inrcodec.training.latent_train"})
    model.save(out)
    return model


def _log_record(shared: _Shared, loss: torch.Tensor, leaving: list[tuple[float, float]],
                seconds: float) -> dict:
    """A log line: progress, and what the crops that left the pool since the last line
    reached (what a fit from the current shared init gives)."""
    mse = float(np.mean([e for e, _ in leaving])) if leaving else float("nan")
    return {"step": shared.step, "of": shared.total, "seconds": round(seconds, 1),
            "levels": len(shared.levels),
            "density": round(float(shared.mask.float().mean()), 4),
            "leaving_psnr": round(-10 * math.log10(mse), 3) if leaving else None,
            "leaving_bpp": round(float(np.mean([b for _, b in leaving])), 4)
            if leaving else None, "n_leaving": len(leaving),
            "loss": round(float(loss.detach()), 6)}


def _upsample_batch(arch: LatentArch, lat: list[torch.Tensor], height: int, width: int,
                    taps: torch.Tensor | None = None) -> torch.Tensor:
    """Grids (each (B, h_k, w_k)) -> (B, levels, height, width): grids.features'
    upsampling, for a batch of crops (a learned one with the synthesis' `taps`)."""
    if arch.upsample == "learned":
        return upsampling.cascade(taps, lat)
    return torch.stack([grids.upsample_grid(arch, g, height, width) for g in lat], 1)


def _proxy(lat: list[torch.Tensor], t: torch.Tensor, cfg: LatentTrainConfig,
           n_ste: int) -> list[torch.Tensor]:
    """The latents of a batch of crops as the encoder's step sees them: fit.quantised per
    crop, each at its own step t (rounded in its last n_ste steps, else with fresh noise)."""
    fs = LatentFit(steps=cfg.visits, ste_fraction=cfg.ste_fraction, quantizer=cfg.quantizer,
                   temperature=cfg.temperature, noise_scale=cfg.noise_scale)
    crops = []
    for b, tb in enumerate(t.tolist()):
        g = [v[b] for v in lat]
        u = None if tb >= cfg.visits - n_ste else [(torch.rand(v.shape) - 0.5).reshape(-1)
                                                   for v in g]
        crops.append(quantised(g, fs, tb, u))
    return [torch.stack(c) for c in zip(*crops)]


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d))
