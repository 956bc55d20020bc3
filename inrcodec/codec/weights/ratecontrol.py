"""Rate control: --quality 1..100, and --bpp / --psnr targets searched over it.

`--quality` picks a ladder level (by density), the delta quantiser's step scale and the
learning rate along one path, low quality = sparse level and coarse steps. The path was
chosen from measured rate-distortion points (README, "Compression"). `--bpp X` finds the
highest quality whose file is at most X bits per pixel, `--psnr Y` the lowest quality whose
decoded PSNR is at least Y dB: a bisection over quality, where each probe quantises the
plain part of the fit (cached per level, so each level is fitted once) and the final
setting then runs its quantiser-aware steps; if that file misses the size target, its
step sizes are coarsened until it fits (no refit). Searches work on one-image sessions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ...errors import InrcodecError
from .config import MAX_COARSEN, PAPER_STEPS, QUALITY_LR, QUALITY_PATH, QuantConfig
from .quantiser import DeltaQuantiser
from .session import Result, Session, Settings


def _interp(quality: float) -> tuple[float, float]:
    qs = [a[0] for a in QUALITY_PATH]
    k = int(np.searchsorted(qs, quality, side="right")) - 1
    k = min(max(k, 0), len(QUALITY_PATH) - 2)
    (q0, d0, s0), (q1, d1, s1) = QUALITY_PATH[k], QUALITY_PATH[k + 1]
    f = (quality - q0) / (q1 - q0)
    return (math.exp(math.log(d0) + f * (math.log(d1) - math.log(d0))),
            math.exp(math.log(s0) + f * (math.log(s1) - math.log(s0))))


def quality_settings(m, quality: int, steps: int = PAPER_STEPS, coder: str = "auto") -> Settings:
    """The level, step scale and learning rate that --quality means for model m."""
    if not (isinstance(quality, (int, np.integer)) and 1 <= quality <= 100):
        raise InrcodecError("quality must be an integer from 1 to 100")
    density, scale = _interp(float(quality))
    ladder = [lv for lv in m.ladder() if lv["weights"] > 0]  # bias-only levels: explicit only
    if not ladder:
        raise InrcodecError("this shared model has no level with adapted weights for --quality")
    level = min(ladder, key=lambda lv: (abs(math.log(lv["density"] / density)),
                                        -lv["level"]))["level"]
    return Settings(level=level, steps=steps, lr=QUALITY_LR,
                    quant=QuantConfig(step_scale=round(scale, 4), coder=coder))


@dataclass
class Search:
    target: str
    value: float
    probes: list = field(default_factory=list)  # (quality, estimated bpp, estimated psnr)
    coarsened: int = 0

    def summary(self) -> dict:
        return {"target": self.target, "value": self.value, "coarsened": self.coarsened,
                "probes": [{"quality": q, "bpp": round(b, 4), "psnr": round(p, 3)}
                           for q, b, p in self.probes]}


def _estimate(session: Session, s: Settings) -> tuple[float, float]:
    """bpp and PSNR of `s` without its quantiser-aware steps (the plain part quantised)."""
    theta = session.plain_part(s, [0])[1][0]
    plain = s.steps - s.quant.qat_steps(s.steps)
    r = session.write(0, s, theta, session.quantiser(s, plain, 0))
    h, w = session.img.pixels.shape[:2]
    return 8 * len(r.data) / (h * w), r.psnr


def encode_quality(session: Session, quality: int, steps: int = PAPER_STEPS,
                   coder: str = "auto") -> list[Result]:
    """Every image of the session at `quality`."""
    return session.encode(quality_settings(session.m, quality, steps, coder))


def encode_target(session: Session, *, bpp: float | None = None, psnr: float | None = None,
                  steps: int = PAPER_STEPS, coder: str = "auto") -> tuple[Result, int, Search]:
    """The smallest file meeting a --bpp or --psnr target -> (result, quality, search)."""
    if (bpp is None) == (psnr is None):
        raise InrcodecError("give one target: bpp or psnr")
    value = bpp if bpp is not None else psnr
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InrcodecError("the target must be a positive number")
    m = session.m
    h, w = session.img.pixels.shape[:2]
    search = Search("bpp" if bpp is not None else "psnr", float(value))
    cache: dict[int, tuple[float, float]] = {}

    def probe(q: int) -> tuple[float, float]:
        if q not in cache:
            cache[q] = _estimate(session, quality_settings(m, q, steps, coder))
            search.probes.append((q, *cache[q]))
        return cache[q]

    def ok(q: int) -> bool:
        b, p = probe(q)
        return b <= bpp if bpp is not None else p >= psnr

    # ok() is (close to) monotone in quality: decreasing for bpp, increasing for psnr.
    lo, hi = 1, 100
    if bpp is not None:
        if not ok(1):
            best = 1  # the smallest quality; coarsened below until it fits
        else:
            while lo < hi:  # largest q with ok(q)
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
            best = lo
    else:
        if not ok(100):
            b, p = probe(100)
            raise InrcodecError(f"{psnr:g} dB is out of reach for this image and model "
                                f"(quality 100 gives about {p:.2f} dB); try more --steps")
        while lo < hi:  # smallest q with ok(q)
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
        best = lo
    # The real encode of the chosen quality (quantiser-aware steps included).
    q = best
    while True:
        s = quality_settings(m, q, steps, coder)
        session.progress_steps = s.steps
        theta, dq, qat = session.fitted(s, [0])[0]
        r = session.write(0, s, theta, dq, qat)
        if psnr is None or r.psnr >= psnr or q == 100:
            break
        q += 1  # the estimate was optimistic: one quality up
    if psnr is not None and r.psnr < psnr:
        raise InrcodecError(f"{psnr:g} dB is out of reach for this image and model (quality "
                            f"100 gives {r.psnr:.2f} dB); try more --steps")
    if bpp is not None:
        limit = math.floor(bpp * h * w / 8)
        scale = s.quant.step_scale
        while len(r.data) > limit:
            if search.coarsened >= MAX_COARSEN:
                raise InrcodecError(f"cannot reach {bpp:g} bpp for this image: the smallest "
                                    f"file is {8 * len(r.data) / (h * w):.4f} bpp")
            scale *= 1.15
            search.coarsened += 1
            # Coarser step sizes for the same fitted weights: no refit.
            s = Settings(level=s.level, steps=s.steps, lr=s.lr, version=s.version,
                         quant=QuantConfig(step_scale=round(scale, 6), coder=coder))
            coarse = DeltaQuantiser.from_fit(m.net(s.level), m.levels[s.level].theta0, theta,
                                             s.quant.step_scale)
            r = session.write(0, s, theta, coarse, r.qat)
    return r, q, search
