"""The encoder: images -> .inr bytes, with a report per image. One image and a dataset
batch take the same path (`encode_images`), so they write the same bytes.

Options name either fixed settings (level, optimiser steps, lr, quantiser) or a rate
target (quality, bpp, psnr); `plan` checks them once, before any work.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from ..config import (DEFAULT_LR, DEFAULT_STEPS, LATENT_QUALITY, RD_EFFORT, RD_QUALITY,
                      FitConfig, LatentFit, QuantConfig, latent_lambda, rd_density,
                      weight_lambda)
from ..errors import InrcodecError
from ..io import LoadedImage
from ..metrics import bpp as bits_per_pixel
from ..model.accel import resolve_device
from ..model.latent_model import LatentModel
from ..model.shared_model import SharedModel
from . import bitstream, latent, rate, rdencode, rdfit, tilecode
from .entropy import CODERS
from .session import Result, Session, Settings, decoded_psnr, rgb_of

ProgressFn = Callable[[float, int, float], None]


@dataclass(frozen=True)
class Options:
    """What the caller asked for. Exactly one of: fixed settings, quality, bpp, psnr."""

    level: int | None = None
    steps: int = DEFAULT_STEPS
    lr: float | None = None
    seed: int = 0
    quantizer: str = "delta"
    step_scale: float | None = None
    coder: str = "auto"
    qat_fraction: float | None = None
    format_version: int = bitstream.VERSION
    quality: int | None = None
    bpp: float | None = None
    psnr: float | None = None
    mode: str = "weights"  # or "latent" (format version 4)
    effort: str = "default"  # format 5: how many candidate levels (config.RD_EFFORT)

    @property
    def target(self) -> str | None:
        """"quality", "bpp", "psnr" or None (fixed settings)."""
        for k in ("quality", "bpp", "psnr"):
            if getattr(self, k) is not None:
                return k
        return None

    def check(self, m: SharedModel) -> None:
        if self.mode not in ("weights", "latent"):
            raise InrcodecError(f"unknown mode {self.mode!r}; expected weights or latent")
        if self.mode == "latent":
            other = [k for k in ("lr", "step_scale", "qat_fraction")
                     if getattr(self, k) is not None]
            targets = [k for k in ("quality", "bpp", "psnr") if getattr(self, k) is not None]
            if len(targets) > 1:
                raise InrcodecError(f"give one of quality, bpp and psnr, not "
                                    f"{' and '.join(targets)}")
            if other or self.quantizer != "delta" or self.format_version != bitstream.VERSION:
                raise InrcodecError(f"the latent mode takes --quality (or --bpp, --psnr), "
                                    f"--level and --steps only, not "
                                    f"{', '.join(other) or 'a quantiser or format version'}")
            return self._check_lambda_mode(m, "the latent mode")
        targets = [k for k in ("quality", "bpp", "psnr") if getattr(self, k) is not None]
        if len(targets) > 1:
            raise InrcodecError(f"give one of quality, bpp and psnr, not {' and '.join(targets)}")
        if self.format_version == bitstream.RD_VERSION:
            other = [k for k in ("lr", "step_scale", "qat_fraction") if getattr(self, k) is not None]
            if other or self.quantizer != "delta" or self.coder != "auto":
                raise InrcodecError(f"format 5 learns its step sizes and codes with its own "
                                    f"priors; it takes --quality (or --bpp, --psnr), --level, "
                                    f"--steps and --effort, not "
                                    f"{', '.join(other) or 'a quantiser or coder'}")
            if self.effort not in RD_EFFORT:
                raise InrcodecError(f"unknown effort {self.effort!r}")
            return self._check_lambda_mode(m, "format 5")
        if self.steps < 0:
            raise InrcodecError("steps must be zero or more")
        if targets:
            fixed = [k for k in ("level", "lr", "step_scale") if getattr(self, k) is not None]
            if fixed or self.quantizer != "delta" or self.format_version != bitstream.VERSION:
                raise InrcodecError(
                    f"{targets[0]} chooses the level, learning rate and quantiser itself; it "
                    f"cannot be combined with "
                    f"{', '.join(fixed) or 'another quantiser or format version'}")
            if self.quality is not None:
                rate.quality_settings(m, self.quality)  # refuse a bad quality before any work
            QuantConfig(coder=self.coder)
        else:
            self.settings(m).check(m)

    def _check_lambda_mode(self, m, name: str) -> None:
        """The latent mode and format 5: quality is lambda, a level is optional."""
        for k in ("bpp", "psnr"):
            v = getattr(self, k)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise InrcodecError(f"the {k} target must be a positive number")
        if self.level is not None:
            m.check_level(self.level)
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise InrcodecError("quality must be an integer from 1 to 100")
        if self.steps < 1:
            raise InrcodecError(f"{name} needs at least one step")

    def settings(self, m: SharedModel) -> Settings:
        """The fixed settings these options name (not for rate targets)."""
        if self.quality is not None:
            return rate.quality_settings(m, self.quality, self.steps, self.coder)
        return Settings(level=m.default_level if self.level is None else self.level,
                        steps=self.steps, lr=DEFAULT_LR if self.lr is None else self.lr,
                        quant=QuantConfig(quantizer=self.quantizer,
                                          step_scale=QuantConfig.step_scale
                                          if self.step_scale is None else self.step_scale,
                                          coder=self.coder, qat_fraction=self.qat_fraction),
                        version=self.format_version)


@dataclass
class EncodeReport:
    data: bytes = field(repr=False)
    width: int
    height: int
    mode: str
    level: int
    steps: int  # optimiser steps
    params: int  # values stored per tile
    tiles: int
    psnr: float  # what the receiver will see, measured on the decoded 8-bit image
    seconds: float
    model_hash: str
    notices: list[str] = field(default_factory=list)
    lr: float | None = None
    quantizer: str = "fp16"
    coder: str = "zstd"
    step_scale: float | None = None
    version: int = 1
    qat_steps: int = 0  # how many of the steps were quantiser-aware
    quality: int | None = None  # when rate control chose the settings
    search: dict | None = None  # rate control: target and candidates tried
    codec: str = "weights"  # or "latent", "weights-rd" (format 5)
    levels: dict | None = None  # format 5: tiles per level

    @property
    def bytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return bits_per_pixel(len(self.data), self.height, self.width)

    def summary(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "data"}
        d.update(bytes=self.bytes, bpp=self.bpp)
        if math.isinf(d["psnr"]):
            d["psnr"] = None
        return d


def _report(r: Result, img: LoadedImage, m: SharedModel, seconds: float) -> EncodeReport:
    h, w = img.pixels.shape[:2]
    s = r.settings
    return EncodeReport(data=r.data, width=w, height=h, mode=img.mode, level=s.level,
                        steps=s.steps, params=m.net(s.level).n_params,
                        tiles=-(-h // m.tile) * -(-w // m.tile), psnr=r.psnr,
                        seconds=seconds, model_hash=m.hash, notices=list(img.notices),
                        lr=s.lr, quantizer=s.quant.quantizer, coder=CODERS[r.payload.coder],
                        step_scale=s.quant.step_scale if s.quant.quantizer == "delta" else None,
                        version=s.version,
                        qat_steps=s.quant.qat_steps(s.steps) if r.qat else 0)


def _encode_latent(img: LoadedImage, m: LatentModel, opts: Options, progress
                   ) -> EncodeReport:
    t0 = time.perf_counter()
    h, w = img.pixels.shape[:2]
    quality = LATENT_QUALITY if opts.quality is None else opts.quality
    level = m.default_level if opts.level is None else opts.level
    alpha = np.ascontiguousarray(img.pixels[:, :, -1]).tobytes() \
        if img.mode in ("LA", "RGBA") else None
    fs = LatentFit(steps=opts.steps, lam=latent_lambda(quality), seed=opts.seed)
    data = latent.encode(rgb_of(img), img.mode, alpha, fs, m, level, progress=progress)
    return EncodeReport(data=data, width=w, height=h, mode=img.mode, level=level,
                        steps=opts.steps, params=int(m.masks[level].sum()), tiles=1,
                        psnr=decoded_psnr(data, img, m),
                        seconds=time.perf_counter() - t0, model_hash=m.hash,
                        notices=list(img.notices), quantizer="latent", coder="arm",
                        version=bitstream.LATENT_VERSION, quality=quality, codec="latent")


# --bpp / --psnr in the latent mode: real encodes on this grid of qualities, by bisection
# (four or five encodes): the rate of a fit is close to monotone in lambda, not exactly.
LATENT_TARGET_QUALITIES = (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)


def _encode_latent_target(img: LoadedImage, m: LatentModel, opts: Options, progress
                          ) -> EncodeReport:
    from dataclasses import replace
    t0 = time.perf_counter()
    target = opts.target
    value = getattr(opts, target)
    grid = LATENT_TARGET_QUALITIES
    done: dict[int, EncodeReport] = {}

    def probe(i: int) -> EncodeReport:
        q = grid[i]
        if q not in done:
            done[q] = _encode_latent(img, m, replace(opts, quality=q, bpp=None, psnr=None),
                                     progress)
        return done[q]

    def ok(i: int) -> bool:
        r = probe(i)
        return r.bpp <= value if target == "bpp" else r.psnr >= value

    lo, hi = 0, len(grid) - 1
    if target == "bpp":
        if not ok(0):
            raise InrcodecError(f"{value:g} bpp is below the smallest latent-mode file for this "
                                f"image ({probe(0).bpp:.4f} bpp at quality 1)")
        while lo < hi:  # the largest quality at or under the target
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    else:
        if not ok(hi):
            raise InrcodecError(f"{value:g} dB is out of reach for this image (quality 100 "
                                f"gives {probe(hi).psnr:.2f} dB); try more --steps")
        while lo < hi:  # the smallest quality that reaches it
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    best = done[grid[lo]]
    search = {"target": target, "value": float(value), "coarsened": 0,
              "probes": [{"quality": q, "bpp": round(r.bpp, 4), "psnr": round(r.psnr, 3)}
                         for q, r in done.items()]}
    return replace(best, search=search, seconds=time.perf_counter() - t0)


def rd_candidates(m: SharedModel, quality: float, n: int, level: int | None = None
                  ) -> list[rdencode.Candidate]:
    """Format 5's candidate levels, sparsest first: the level nearest rd_density(quality)
    and up to n - 1 more, each 3 pruning rounds sparser (nearest in density); `level`
    alone if given."""
    if level is not None:
        return [rdencode.Candidate(level)]
    ladder = [lv for lv in m.ladder() if lv["weights"] > 0]
    out: list[int] = []
    d = rd_density(quality)
    for _ in range(n):
        lv = min(ladder, key=lambda x: (abs(math.log(x["density"] / d)), -x["level"]))["level"]
        if lv not in out:
            out.append(lv)
        d *= 0.8 ** 3
    return [rdencode.Candidate(lv) for lv in reversed(out)]


def _encode_rd(img: LoadedImage, m: SharedModel, opts: Options, progress,
               quality: int | None = None) -> EncodeReport:
    t0 = time.perf_counter()
    h, w = img.pixels.shape[:2]
    q = quality if quality is not None else RD_QUALITY if opts.quality is None else opts.quality
    cands = rd_candidates(m, q, RD_EFFORT[opts.effort][0], opts.level)
    cfg = rdfit.RDFitConfig(steps=opts.steps, lam=weight_lambda(q), seed=opts.seed)
    r = rdencode.encode(img, m, cands, cfg, dense_share=RD_EFFORT[opts.effort][2],
                        progress=progress)
    tiles = np.bincount(r.choice, minlength=len(r.options))
    levels: dict[int, int] = {}
    for o, n in zip(r.options, tiles):
        levels[o.level] = levels.get(o.level, 0) + int(n)
    return EncodeReport(data=r.data, width=w, height=h, mode=img.mode, level=max(levels),
                        steps=opts.steps,
                        params=int(sum(len(tilecode.layout(m, o)[0]) * int(n)
                                       for o, n in zip(r.options, tiles))),
                        tiles=len(r.choice), psnr=decoded_psnr(r.data, img, m),
                        seconds=time.perf_counter() - t0, model_hash=m.hash,
                        notices=list(img.notices), quantizer="learned", coder="laplace",
                        version=bitstream.RD_VERSION, quality=q, codec="weights-rd",
                        levels=dict(sorted(levels.items())))


# --bpp / --psnr in format 5. log2(bpp) and PSNR are close to linear in quality, with a
# slope that varies from image to image: the first encode is at a guess from the typical
# curve (the development photos: benchmarks/results/rd-inrcodec-rd.json), the second at
# the correction through that point with the typical slope, aimed a little inside the
# target. Most searches end there (2 encodes); while no encode meets the target, the
# secant through the last two points picks the next one (at most RD_MAX_PROBES).
# Means over the 32 photos at qualities 15 / 50 / 85 (inrcodec 0.4.1): log2 bpp -2.60 /
# -0.59 / 1.02, PSNR 24.02 / 29.53 / 33.81 dB.
RD_CURVE = {"bpp": (50.0, -0.586, 0.052),  # quality, log2 bpp there, per quality
            "psnr": (50.0, 29.53, 0.14)}  # quality, dB there, dB per quality
RD_AIM = {"bpp": -0.05, "psnr": 0.15}  # inside the target: log2 bpp, dB
RD_MAX_PROBES = 5


def _encode_rd_target(img: LoadedImage, m: SharedModel, opts: Options, progress
                      ) -> EncodeReport:
    from dataclasses import replace
    t0 = time.perf_counter()
    target = opts.target
    value = float(getattr(opts, target))
    goal = (math.log2(value) if target == "bpp" else value) + RD_AIM[target]
    q0, y0, slope = RD_CURVE[target]
    done: dict[int, EncodeReport] = {}

    def y(r: EncodeReport) -> float:
        return math.log2(r.bpp) if target == "bpp" else r.psnr

    def ok(r: EncodeReport) -> bool:
        return r.bpp <= value if target == "bpp" else r.psnr >= value

    def probe(q: float) -> EncodeReport | None:
        q = int(min(max(round(q), 1), 100))
        if q in done:
            return None
        done[q] = _encode_rd(img, m, opts, progress, quality=q)
        return done[q]

    last = probe(q0 + (goal - y0) / slope)
    probe(last.quality + (goal - y(last)) / slope)
    while not any(ok(r) for r in done.values()) and len(done) < RD_MAX_PROBES:
        # nearest the target first: the lowest quality for bpp, the highest for psnr
        near = sorted(done.values(), key=lambda r: r.quality if target == "bpp" else -r.quality)
        edge = near[0]
        s = slope
        if len(near) > 1 and near[1].quality != edge.quality:
            s = (y(near[1]) - y(edge)) / (near[1].quality - edge.quality)
            s = s if s > 0 else slope
        step = (goal - y(edge)) / s
        step = min(step, -1) if target == "bpp" else max(step, 1)
        if probe(edge.quality + step) is None:
            break  # at the end of the quality scale
    good = [r for r in done.values() if ok(r)]
    if not good:
        edge = done[min(done)] if target == "bpp" else done[max(done)]
        raise InrcodecError(
            f"{value:g} bpp is below the smallest file for this image ({edge.bpp:.4f} bpp at "
            f"quality {edge.quality})" if target == "bpp" else
            f"{value:g} dB is out of reach for this image (quality {edge.quality} gives "
            f"{edge.psnr:.2f} dB); try more --steps")
    best = max(good, key=lambda r: r.quality) if target == "bpp" else \
        min(good, key=lambda r: r.quality)
    search = {"target": target, "value": value, "coarsened": 0,
              "probes": [{"quality": q, "bpp": round(r.bpp, 4), "psnr": round(r.psnr, 3)}
                         for q, r in done.items()]}
    return replace(best, search=search, seconds=time.perf_counter() - t0)


def encode_images(images: list[LoadedImage], m: "SharedModel | LatentModel", opts: Options = Options(), *,
                  device: str | torch.device | None = None,
                  max_batch_pixels: int = FitConfig.max_batch_pixels,
                  progress: ProgressFn | None = None) -> list[EncodeReport]:
    """Encode images with one shared model and one set of options -> a report per image.

    Fixed settings and `quality` fit all images together (one batch of tiles); `bpp` and
    `psnr` search per image. `progress(done, total, loss)` counts optimiser steps.
    Seconds are shared out over a batch's images by their tiles.
    """
    opts.check(m)
    if not images:
        return []
    if opts.mode == "latent":
        one = _encode_latent_target if opts.target in ("bpp", "psnr") else _encode_latent
        return [one(img, m, opts, progress) for img in images]
    if opts.format_version == bitstream.RD_VERSION:
        one = _encode_rd_target if opts.target in ("bpp", "psnr") else _encode_rd
        return [one(img, m, opts, progress) for img in images]
    dev = resolve_device(device)
    t0 = time.perf_counter()
    if opts.target in ("bpp", "psnr"):
        out = []
        for img in images:
            t1 = time.perf_counter()
            session = Session([img], m, dev, seed=opts.seed, max_batch_pixels=max_batch_pixels,
                              progress=progress)
            r, quality, search = rate.encode_target(session, bpp=opts.bpp, psnr=opts.psnr,
                                                    steps=opts.steps, coder=opts.coder)
            rep = _report(r, img, m, time.perf_counter() - t1)
            rep.quality, rep.search = quality, search.summary()
            out.append(rep)
        return out
    session = Session(images, m, dev, seed=opts.seed, max_batch_pixels=max_batch_pixels,
                      progress=progress)
    results = session.encode(opts.settings(m))
    seconds = time.perf_counter() - t0
    tiles = [im.targets.shape[0] for im in session.images]
    reports = [_report(r, img, m, seconds * n / sum(tiles))
               for r, img, n in zip(results, images, tiles)]
    for rep in reports:
        rep.quality = opts.quality
    return reports
