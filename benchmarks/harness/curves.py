"""Curves from results: per-point means over the rows, interpolation, common images."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .schema import summarize


@dataclass
class Curve:
    label: str
    x: np.ndarray  # mean rate (or params), increasing
    y: np.ndarray  # mean quality
    points: list[dict]  # the sweep point of each (x, y)
    n_images: int


def curve(res: dict, x: str = "bpp", y: str = "psnr", images: Iterable[str] | None = None
          ) -> Curve:
    """Per-point means over the rows (optionally only some images), sorted by x.

    Points where some image lacks x or y are left out, and so are points without a row for
    every image (of `images`, or of the run): a half-finished point is not a mean.
    """
    rows = res["rows"]
    if images is not None:
        want = set(images)
        rows = [r for r in rows if r["image"] in want]
    else:
        want = {r["image"] for r in rows}
    pts = []
    for s in summarize(rows, res["sweep"]):
        if s.get(x) is None or s.get(y) is None:
            continue
        if s["n"] != len(want):
            continue
        pts.append(s)
    pts.sort(key=lambda s: s[x])
    n = len({r["image"] for r in rows})
    return Curve(res.get("label") or res["codec"], np.array([s[x] for s in pts], float),
                 np.array([s[y] for s in pts], float),
                 [{k: s[k] for k in res["sweep"]} for s in pts], n)


def value_at(c: Curve, x: float) -> float | None:
    """y at x by linear interpolation in log(x) between the two neighbouring points of the
    mean curve; None outside the curve's range (no extrapolation)."""
    if len(c.x) == 0 or not (c.x[0] <= x <= c.x[-1]):
        return None
    return float(np.interp(math.log(x), np.log(c.x), c.y))


def common_images(results: list[dict]) -> list[str]:
    names = None
    for r in results:
        s = {row["image"] for row in r["rows"]}
        names = s if names is None else names & s
    return sorted(names or [])
