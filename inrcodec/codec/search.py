"""--bpp / --psnr over a mode's quality knob: the file whose real size (or decoded PSNR)
meets the target, found with real encodes. `encode_at(quality)` encodes at one quality
and returns its report (bytes, bpp, decoded PSNR); rate is close to monotone in quality,
not exactly, so both searches keep every encode they made and choose among them. The
target is a positive number already (Targets checks it when settings are built).

- `on_grid`: bisection over a grid of qualities (four or five encodes).
- `by_curve`: the first encode at a guess from a typical curve of quality against log2 bpp
  (or PSNR), the second at the correction through that point with the typical slope, then
  the secant through the last two points while no encode meets the target.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from ..config import QUALITY_RANGE
from ..errors import InrcodecError
from .report import EncodeReport

EncodeAt = Callable[[int], EncodeReport]


@dataclass(frozen=True)
class Curve:
    """A mode's typical curve: at quality q0, log2 bpp (or PSNR) y0, changing by `slope`
    per quality step; `aim` is how far inside the target the guesses aim."""

    q0: float
    y0: float
    slope: float
    aim: float


def _meets(target: str, value: float, r: EncodeReport) -> bool:
    return r.bpp <= value if target == "bpp" else r.psnr >= value


def _summary(target: str, value: float, done: dict[int, EncodeReport]) -> dict:
    return {"target": target, "value": float(value), "coarsened": 0,
            "probes": [{"quality": q, "bpp": round(r.bpp, 4), "psnr": round(r.psnr, 3)}
                       for q, r in done.items()]}


def _out_of_reach(target: str, value: float, edge: EncodeReport, what: str = "") -> InrcodecError:
    if target == "bpp":
        return InrcodecError(f"{value:g} bpp is below the smallest {what}file for this image "
                             f"({edge.bpp:.4f} bpp at quality {edge.quality})")
    return InrcodecError(f"{value:g} dB is out of reach for this image (quality {edge.quality} "
                         f"gives {edge.psnr:.2f} dB); try more --steps")


def on_grid(encode_at: EncodeAt, target: str, value: float, grid: tuple[int, ...],
            what: str = "") -> EncodeReport:
    """The largest quality of `grid` within a bpp target, or the smallest that reaches a
    PSNR target, by bisection."""
    done: dict[int, EncodeReport] = {}

    def probe(i: int) -> EncodeReport:
        if grid[i] not in done:
            done[grid[i]] = encode_at(grid[i])
        return done[grid[i]]

    def ok(i: int) -> bool:
        return _meets(target, value, probe(i))

    lo, hi = 0, len(grid) - 1
    if target == "bpp":
        if not ok(0):
            raise _out_of_reach(target, value, probe(0), what)
        while lo < hi:  # the largest quality at or under the target
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    else:
        if not ok(hi):
            raise _out_of_reach(target, value, probe(hi), what)
        while lo < hi:  # the smallest quality that reaches it
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    return replace(done[grid[lo]], search=_summary(target, value, done))


def by_curve(encode_at: EncodeAt, target: str, value: float, curve: Curve,
             max_probes: int) -> EncodeReport:
    """Guesses from the mode's typical curve, corrected by the image's own points."""
    value = float(value)
    goal = (math.log2(value) if target == "bpp" else value) + curve.aim
    done: dict[int, EncodeReport] = {}

    def y(r: EncodeReport) -> float:
        return math.log2(r.bpp) if target == "bpp" else r.psnr

    def probe(q: float) -> EncodeReport | None:
        q = int(min(max(round(q), 1), 100))
        if q in done:
            return None
        done[q] = encode_at(q)
        return done[q]

    last = probe(curve.q0 + (goal - curve.y0) / curve.slope)
    probe(last.quality + (goal - y(last)) / curve.slope)
    while not any(_meets(target, value, r) for r in done.values()) and len(done) < max_probes:
        # nearest the target first: the lowest quality for bpp, the highest for psnr
        near = sorted(done.values(), key=lambda r: r.quality if target == "bpp" else -r.quality)
        edge = near[0]
        s = curve.slope
        if len(near) > 1 and near[1].quality != edge.quality:
            s = (y(near[1]) - y(edge)) / (near[1].quality - edge.quality)
            s = s if s > 0 else curve.slope
        step = (goal - y(edge)) / s
        step = min(step, -1) if target == "bpp" else max(step, 1)
        if probe(edge.quality + step) is None:
            break  # at the end of the quality scale
    good = [r for r in done.values() if _meets(target, value, r)]
    if not good:
        raise _out_of_reach(target, value,
                            done[min(done)] if target == "bpp" else done[max(done)])
    best = max(good, key=lambda r: r.quality) if target == "bpp" else \
        min(good, key=lambda r: r.quality)
    return replace(best, search=_summary(target, value, done))


@dataclass(frozen=True)
class Targets:
    """The rate knobs of a lambda mode's settings: at most one of quality (1..100, the
    mode's lambda), bpp and psnr (searched over quality). Checked when built."""

    quality: int | None = None
    bpp: float | None = None
    psnr: float | None = None

    def __post_init__(self):
        given = [k for k in ("quality", "bpp", "psnr") if getattr(self, k) is not None]
        if len(given) > 1:
            raise InrcodecError(f"give one of quality, bpp and psnr, not {' and '.join(given)}")
        for k in ("bpp", "psnr"):
            v = getattr(self, k)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InrcodecError(f"the {k} target must be a positive number")
        lo, hi = QUALITY_RANGE
        if self.quality is not None and not lo <= self.quality <= hi:
            raise InrcodecError(f"quality must be an integer from {lo} to {hi}")

    @property
    def target(self) -> str | None:
        """"bpp" or "psnr" when a search is asked for, else None."""
        return "bpp" if self.bpp is not None else "psnr" if self.psnr is not None else None

    def targets(self) -> dict:
        """The knob given, for a dataset manifest's settings."""
        return {k: getattr(self, k) for k in ("quality", "bpp", "psnr")
                if getattr(self, k) is not None}
