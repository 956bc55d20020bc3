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
from ..codec.latent import arm, grids, synthesis
from ..codec.latent.fit import quantised
from ..codec.latent.model import LatentModel, prune_mask
from ..config import LatentArch, LatentFit, latent_lambda
from .data import random_crops
from .train import split_photos


@dataclass(frozen=True)
class LatentTrainConfig:
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
    # the crops' fit is the encoder's (LatentFit)
    lr_latent: float = LatentFit.lr_latent
    coarse_lr_factor: float = LatentFit.coarse_lr_factor
    ste_fraction: float = LatentFit.ste_fraction
    quantizer: str = LatentFit.quantizer
    temperature: tuple[float, float] = LatentFit.temperature
    noise_scale: tuple[float, float] = LatentFit.noise_scale
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
        self.shapes = grids.grid_shapes(cfg.crop, cfg.crop, arch.levels)
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


def train_latent(out: Path, *, arch: LatentArch, cfg: LatentTrainConfig, photos: list[Path],
                 resume: bool = False,
                 command: str = "", log: Callable[[dict], None] | None = None,
                 threads: int | None = None) -> LatentModel:
    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    ckpt = out.with_suffix(".ckpt.safetensors")
    train_photos, _ = split_photos(list(photos))
    gen = torch.Generator().manual_seed(cfg.seed)
    theta = synthesis.init_synthesis(arch, gen)
    armp = arm.init_float(arch.arm_hidden, gen)
    mask = torch.ones(arch.n_params(), dtype=torch.bool)
    levels: list[torch.Tensor] = []
    masks: list[torch.Tensor] = []
    step = 0
    shared = [theta.requires_grad_(True)] + [p.requires_grad_(True) for p in armp]
    opt = torch.optim.Adam(shared, lr=cfg.lr)
    if resume and ckpt.exists():
        st = load_file(str(ckpt))
        meta = json.loads(ckpt.with_suffix(".json").read_text())
        if meta["config"] != _jsonable(asdict(cfg)) or meta["arch"] != asdict(arch):
            raise SystemExit(f"{ckpt} was made with another configuration")
        with torch.no_grad():
            for i, p in enumerate(shared):
                p.copy_(st[f"p{i}"])
        for i, p in enumerate(shared):
            opt.state[p] = {"step": torch.tensor(float(meta["adam_step"])),
                            "exp_avg": st[f"m{i}"].clone(), "exp_avg_sq": st[f"v{i}"].clone()}
        mask = st["mask"].bool()
        levels = [st[f"level{k}"] for k in range(meta["n_levels"])]
        masks = [st[f"levelmask{k}"].bool() for k in range(meta["n_levels"])]
        step = meta["step"]
    pool = _Pool(cfg, arch, train_photos, cfg.seed * 7919 + step)
    total = cfg.steps + cfg.rounds * cfg.round_steps
    n_px = cfg.crop * cfg.crop
    n_sample = max(1, int(cfg.pixel_fraction * n_px))
    coords = grids.coordinates(cfg.crop, cfg.crop).reshape(2, -1)
    n_ste = int(round(cfg.ste_fraction * cfg.visits))
    b1, b2, eps = 0.9, 0.999, 1e-8
    leaving: list[tuple[float, float]] = []
    t0 = time.time()

    def save_ckpt():
        st = {f"p{i}": p.detach().clone() for i, p in enumerate(shared)}
        for i, p in enumerate(shared):
            s = opt.state.get(p)
            st[f"m{i}"] = (s["exp_avg"] if s else torch.zeros_like(p)).clone()
            st[f"v{i}"] = (s["exp_avg_sq"] if s else torch.zeros_like(p)).clone()
        st["mask"] = mask.to(torch.uint8)
        for k, (lv, mk) in enumerate(zip(levels, masks)):
            st[f"level{k}"] = lv.clone()
            st[f"levelmask{k}"] = mk.to(torch.uint8)
        s0 = opt.state.get(shared[0])
        tmp = ckpt.with_suffix(".tmp")
        save_file(st, str(tmp))
        tmp.replace(ckpt)
        ckpt.with_suffix(".json").write_text(json.dumps({
            "step": step, "n_levels": len(levels), "config": _jsonable(asdict(cfg)),
            "arch": asdict(arch), "adam_step": float(s0["step"]) if s0 else 0.0}))

    while step < total:
        # Phase boundaries: the end of dense training and of each pruning round.
        if step >= cfg.steps and (step - cfg.steps) % cfg.round_steps == 0 \
                and len(levels) == 1 + (step - cfg.steps) // cfg.round_steps:
            with torch.no_grad():
                mask = prune_mask(theta.detach(), mask, arch, cfg.prune_rate)
                theta.mul_(mask)
        idx = torch.from_numpy(pool.rng.choice(cfg.pool, cfg.batch, replace=False))
        lat = [g[idx].clone().requires_grad_(True) for g in pool.lat]
        t = pool.t[idx]
        q = _proxy(lat, t, cfg, n_ste)
        up = _upsample_batch(arch, q, cfg.crop, cfg.crop).reshape(cfg.batch, arch.levels, -1)
        feats = torch.cat([up, coords.expand(cfg.batch, -1, -1)], 1) if arch.coords else up
        pix = torch.randint(0, n_px, (n_sample,))
        x = feats[:, :, pix].permute(0, 2, 1).reshape(-1, arch.inputs)
        y = pool.img[idx][:, pix].reshape(-1, 3)
        th = theta * mask
        err = (synthesis.synthesize(arch, th, x) - y).square().reshape(cfg.batch, -1).mean(1)
        bits = torch.zeros(cfg.batch)
        for g in q:
            mu, sc = arm.predict_float(armp, arm.context_float(g))
            bits = bits + prior.rate_bits(g.reshape(cfg.batch, -1), sc, mu).sum(1)
        lam = pool.lam[idx]
        loss = (err + lam * bits / n_px).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            theta.grad.mul_(mask)
        opt.step()
        with torch.no_grad():
            theta.mul_(mask)
            # The crops' own Adam, as the encoder's: per-crop step count and cosine decay.
            tt = (t + 1).float()
            f = 0.5 * (1 + torch.cos(math.pi * t.float() / cfg.visits))
            lr0 = cfg.lr_latent * (0.02 + 0.98 * f)
            for k, g in enumerate(lat):
                lr = lr0 * (cfg.coarse_lr_factor if k else 1.0)
                view = (-1,) + (1,) * (g.dim() - 1)
                gr = g.grad * cfg.batch  # each crop's own loss, not the batch mean
                m = pool.m[k][idx] * b1 + (1 - b1) * gr
                v = pool.v[k][idx] * b2 + (1 - b2) * gr * gr
                mh = m / (1 - b1 ** tt).view(view)
                vh = v / (1 - b2 ** tt).view(view)
                pool.lat[k][idx] = g - lr.view(view) * mh / (vh.sqrt() + eps)
                pool.m[k][idx], pool.v[k][idx] = m, v
            pool.t[idx] += 1
            for j, i in enumerate(idx.tolist()):
                if pool.t[i] >= cfg.visits:
                    leaving.append((float(err[j]), float(bits[j]) / n_px))
                    pool.reset(i)
        step += 1
        end_of_phase = step == cfg.steps or (step > cfg.steps
                                              and (step - cfg.steps) % cfg.round_steps == 0)
        if end_of_phase:
            levels.append((theta.detach() * mask).clone())
            masks.append(mask.clone())
        if log is not None and (step % 50 == 0 or end_of_phase):
            mse = float(np.mean([e for e, _ in leaving])) if leaving else float("nan")
            log({"step": step, "of": total, "seconds": round(time.time() - t0, 1),
                 "levels": len(levels),
                 "density": round(float(mask.float().mean()), 4),
                 "leaving_psnr": round(-10 * math.log10(mse), 3) if leaving else None,
                 "leaving_bpp": round(float(np.mean([b for _, b in leaving])), 4)
                 if leaving else None, "n_leaving": len(leaving),
                 "loss": round(float(loss.detach()), 6)})
            leaving = []
        if step % cfg.ckpt_every == 0 or step == total:
            save_ckpt()
    model = LatentModel(
        arch=arch, thetas=[lv.to(torch.float32) for lv in levels], masks=masks,
        arm=tuple(arm.ArmParams.from_float(*[p.detach().numpy() for p in armp]).__dict__[n]
                  for n in ("w1", "b1", "w2", "b2")),
        default_level=0,
        info={"command": command, "config": _jsonable(asdict(cfg)),
              "photos": f"{len(train_photos)} photos (training split)", "trainer": "inrcodec.training.latent_train"})
    model.save(out)
    return model


def _upsample_batch(arch: LatentArch, lat: list[torch.Tensor], height: int, width: int
                    ) -> torch.Tensor:
    """Grids (each (B, h_k, w_k)) -> (B, levels, height, width): grids.features'
    upsampling, for a batch of crops."""
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
