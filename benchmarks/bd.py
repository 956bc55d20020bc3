"""Bjontegaard delta metrics between two rate-distortion curves.

BD-rate: the average difference in log rate between two curves over the PSNR interval both
cover, as a percentage (negative: the test curve needs less rate for the same PSNR).
BD-PSNR: the average PSNR difference over the log-rate interval both cover, in dB.

Two ways to interpolate each curve:
- "cubic": Bjontegaard's original (VCEG-M33): a least-squares cubic polynomial through the
  points (at least 4), integrated over the common interval;
- "pchip": piecewise cubic Hermite interpolation through the points (at least 2), as in the
  later common implementations; it follows the points exactly and never overshoots.
"""
from __future__ import annotations

import math

import numpy as np

METHODS = ("cubic", "pchip")


class BDError(ValueError):
    """The curves do not allow a BD measure (too few points, no overlap, bad values)."""


def _prepare(rate, psnr, method: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    if method not in METHODS:
        raise BDError(f"unknown BD method {method!r} (choose from {', '.join(METHODS)})")
    r = np.asarray(rate, dtype=np.float64).ravel()
    p = np.asarray(psnr, dtype=np.float64).ravel()
    if r.shape != p.shape:
        raise BDError(f"{what}: {r.size} rates but {p.size} PSNR values")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(p))):
        raise BDError(f"{what}: rates and PSNR values must be finite")
    if np.any(r <= 0):
        raise BDError(f"{what}: rates must be positive")
    need = 4 if method == "cubic" else 2
    if r.size < need:
        raise BDError(f"{what}: {method} BD needs at least {need} points, got {r.size}")
    return np.log(r), p


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str, what: str) -> float:
    """Integral over [lo, hi] of the curve y(x) interpolated through the points."""
    if method == "cubic":
        poly = np.polyint(np.polyfit(x, y, 3))
        return float(np.polyval(poly, hi) - np.polyval(poly, lo))
    from scipy.interpolate import PchipInterpolator

    order = np.argsort(x)
    xs, ys = x[order], y[order]
    if np.any(np.diff(xs) <= 0):
        raise BDError(f"{what}: pchip BD needs distinct values along the integration axis "
                      "(the curve repeats a value)")
    return float(PchipInterpolator(xs, ys).integrate(lo, hi))


def overlap(a, b) -> tuple[float, float]:
    """The interval [lo, hi] that two sets of values both span; BDError if empty."""
    lo, hi = max(np.min(a), np.min(b)), min(np.max(a), np.max(b))
    if not lo < hi:
        raise BDError(f"the curves do not overlap ({np.min(a):.3g}..{np.max(a):.3g} against "
                      f"{np.min(b):.3g}..{np.max(b):.3g})")
    return float(lo), float(hi)


def bd_rate(rate_anchor, psnr_anchor, rate_test, psnr_test, method: str = "cubic") -> float:
    """Average rate change of `test` against `anchor` at equal PSNR, in percent."""
    la, pa = _prepare(rate_anchor, psnr_anchor, method, "anchor")
    lt, pt = _prepare(rate_test, psnr_test, method, "test")
    try:
        lo, hi = overlap(pa, pt)
    except BDError as e:
        raise BDError(f"no common PSNR interval: {e} dB") from None
    ia = _integral(pa, la, lo, hi, method, "anchor")
    it = _integral(pt, lt, lo, hi, method, "test")
    return (math.exp((it - ia) / (hi - lo)) - 1.0) * 100.0


def bd_psnr(rate_anchor, psnr_anchor, rate_test, psnr_test, method: str = "cubic") -> float:
    """Average PSNR change of `test` against `anchor` at equal rate, in dB."""
    la, pa = _prepare(rate_anchor, psnr_anchor, method, "anchor")
    lt, pt = _prepare(rate_test, psnr_test, method, "test")
    try:
        lo, hi = overlap(la, lt)
    except BDError as e:
        raise BDError(f"no common rate interval (log rate): {e}") from None
    ia = _integral(la, pa, lo, hi, method, "anchor")
    it = _integral(lt, pt, lo, hi, method, "test")
    return (it - ia) / (hi - lo)


def pareto(rate, psnr) -> list[int]:
    """Indices of the points on the efficient front, by increasing rate.

    A point is kept when its PSNR is higher than that of every point of lower (or equal)
    rate: nobody would pick the others, and BD interpolation needs a monotone curve.
    """
    order = sorted(range(len(rate)), key=lambda i: (rate[i], -psnr[i]))
    keep, best = [], -math.inf
    for i in order:
        if psnr[i] > best:
            keep.append(i)
            best = psnr[i]
    return keep


def hull(rate, psnr) -> list[int]:
    """Indices of the operational curve, by increasing rate: the upper convex hull of the
    points in (log rate, PSNR), rising part only -- what an encoder that picks its best
    setting for each rate can reach. Unlike `pareto`, a point under the chord of two others
    is dropped even when nothing beats it on both axes; use it for sweeps over more than one
    setting (level x quantiser step), whose points do not lie on one curve.
    """
    order = sorted(range(len(rate)), key=lambda i: (rate[i], -psnr[i]))
    keep: list[int] = []
    for i in order:
        if keep and rate[i] == rate[keep[-1]]:
            continue  # same rate, lower PSNR
        while len(keep) >= 2:
            a, b = keep[-2], keep[-1]
            xa, xb, xi = (math.log(rate[j]) for j in (a, b, i))
            if (psnr[b] - psnr[a]) * (xi - xa) < (psnr[i] - psnr[a]) * (xb - xa):
                keep.pop()  # b is under the chord from a to i
            else:
                break
        keep.append(i)
    rising = pareto([rate[i] for i in keep], [psnr[i] for i in keep])
    return [keep[j] for j in rising]
