"""--bpp in about one encode: a short pilot fit sets lambda, the full fit steers it late,
and the latents are trimmed if the file is still over.

- A first lambda from the image: the size of a JPEG of it (quality 50, Pillow's libjpeg)
  predicts the latent mode's rate at each lambda (a fit on the 32 development photos,
  `first_quality`). It takes milliseconds and removes much of the spread between photos.
- The pilot: a fit with PILOT of the steps, its own schedule, at that lambda. Its file
  size, times 2^gain (what a full fit codes the same lambda in; `pilot_gain`), corrects the
  guess; lambda moves by the gap over the rate's slope per quality step, ELASTICITY.
- `Steer`: the full fit's last 40% moves lambda toward the bytes left for the latents.
- `trim`: if the file is still over, the latents that round up by the least margin round
  down instead, as many as the real coded size needs. It only removes bits, and it costs
  more distortion than a fit at the right lambda would (measured in 0.7:
  docs/studies/latent-mode-log.md), so the steer aims a little under the budget.

The constants come from the development photos (benchmarks/studies/bpp_pilot.py and
steer_traces.py, re-run when the fit changes).
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from . import arm
from .fit import LIM

PILOT = 0.2  # share of the full fit's steps the pilot takes
# log2 bpp of a full fit at quality q ~ BASE + SLOPE x q + JPEG_W x log2(bpp of a q50 JPEG)
# (refitted for each shipped model and fit: benchmarks/studies/bpp_pilot.py; 0.10.0's
# 16-wide model, 0.11's fit (SOAP, clipped, no straight-through phase): bpp-pilot-0.11.json)
BASE, SLOPE, JPEG_W = -1.8131, 0.0326, 1.1478
# log2(full-fit bytes / pilot bytes) at the same quality q ~
# PILOT_GAIN[0] + PILOT_GAIN[1] x q + PILOT_GAIN[2] x log2(bpp of a q50 JPEG): with soft
# rounding the pilot codes more than the full fit at low quality, less at high (medians
# -0.25, -0.13, +0.10, +0.34 at qualities 5, 30, 55, 80), and busy photos gain more from
# the full fit's extra steps (0.9.1: the JPEG term took the residual's sd from 0.157 to
# 0.119; bpp-pilot-0.11.json's residual sd 0.105)
PILOT_GAIN = (-0.1918, 0.00687, 0.1338)
ELASTICITY = SLOPE  # d log2 bytes / d quality
STEER_AIM = -0.02  # log2 of (the steered latent rate / the latents' share of the budget)
TAU_MAX = 0.99  # the widest dead zone trim tries
Q_MIN, Q_MAX = -20.0, 120.0  # quality (lambda) range the control may use


def jpeg_bpp(img: np.ndarray) -> float:
    """Bits per pixel of a quality-50 JPEG of img (H, W, 3) uint8 (4:2:0, optimised)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=50, subsampling=2, optimize=True)
    return 8 * buf.tell() / (img.shape[0] * img.shape[1])


def first_quality(jpeg: float, bpp: float) -> float:
    """The quality whose full-fit file is predicted to have `bpp`, for an image whose
    q50 JPEG has `jpeg` bits per pixel (jpeg_bpp)."""
    q = (math.log2(bpp) - BASE - JPEG_W * math.log2(jpeg)) / SLOPE
    return min(max(q, Q_MIN), Q_MAX)


def pilot_gain(quality: float, jpeg: float) -> float:
    """log2(full-fit bytes / pilot bytes) expected at `quality` (PILOT_GAIN)."""
    return PILOT_GAIN[0] + PILOT_GAIN[1] * quality + PILOT_GAIN[2] * math.log2(jpeg)


def corrected_quality(quality: float, pilot_bytes: int, budget: int, jpeg: float) -> float:
    """The quality for the full fit, from the pilot's file at `quality`."""
    gap = math.log2(budget) - math.log2(pilot_bytes) - pilot_gain(quality, jpeg)
    return min(max(quality + gap / ELASTICITY, Q_MIN), Q_MAX)


def deadzone(values: list[np.ndarray], tau: float, lim: int) -> list[np.ndarray]:
    """Round toward zero unless |v|'s fractional part is at least 1/2 + tau."""
    return [(np.sign(v) * np.clip(np.floor(np.abs(v) + 0.5 - tau), 0, lim)).astype(np.int64)
            for v in values]


def marginal(values: list[np.ndarray], k: int, lim: int) -> list[np.ndarray]:
    """The latents rounded, except the k that round up in magnitude by the least margin
    (fractional part of |v| closest above 1/2; ties by position), which round toward zero.
    The fit leaves many latents on that edge, where distortion and rate pull equally, so
    these are the cheapest bits to drop."""
    flat = np.concatenate([v.ravel() for v in values]).astype(np.float64)
    mag = np.abs(flat)
    q = np.clip(np.floor(mag + 0.5), 0, lim)
    if k > 0:
        up = np.flatnonzero(mag - np.floor(mag) >= 0.5)
        margin = mag[up] - np.floor(mag[up]) - 0.5
        drop = up[np.argsort(margin, kind="stable")[:k]]
        q[drop] = np.floor(mag[drop])
    q = (np.sign(flat) * q).astype(np.int64)
    return [a.reshape(v.shape) for a, v in
            zip(np.split(q, np.cumsum([v.size for v in values])[:-1]), values)]


def trim(values: list[np.ndarray], params: arm.ArmParams, budget: int, lim: int,
         iters: int = 8) -> tuple[list[np.ndarray], bytes, float]:
    """(latents, their section, depth): latents whose section fits in `budget` bytes, with
    as few bits dropped as the search finds. First the marginal latents (`marginal`, k
    found by interpolation on the real coded size; depth = k / the latents that round
    up); if no number of them makes it fit, a dead zone (`deadzone`, tau in 1/2..TAU_MAX;
    depth = 1 + tau). Raises ValueError if even tau = TAU_MAX does not fit."""
    def by_k(k):
        q = marginal(values, k, lim)
        return q, arm.encode_section(q, params)

    n = int(sum(int(np.count_nonzero(np.abs(v) - np.floor(np.abs(v)) >= 0.5)) for v in values))
    q, s = by_k(0)
    if len(s) <= budget:
        return q, s, 0.0
    # Dropping more of them need not keep shrinking the section: past the latents on the
    # edge come ones the ARM expects (fits with soft rounding leave few on the edge), and
    # the coded size moves a byte either way besides. So the first of a few k that fits is
    # sought from a few up, all of them tried before a dead zone (a tiny photo's section
    # grew 250 -> 254 bytes at k = 25 and shrank to 246 at k = 102).
    lo, lo_size, best = 0, len(s), None
    for k in sorted({max(1, n // 64), max(1, n // 16), max(1, n // 4), n}):
        cand = by_k(k)
        if len(cand[1]) <= budget:
            hi, hi_size, best = k, len(cand[1]), cand
            break
        lo, lo_size = k, len(cand[1])
    if best is not None:
        for i in range(iters):  # interpolate on the coded size, halving if that stalls
            if hi - lo <= 1:
                break
            guess = lo + (lo_size - budget) * (hi - lo) / max(lo_size - hi_size, 1)
            k = int(min(max(guess, lo + 1), hi - 1))
            if i % 3 == 2:
                k = (lo + hi) // 2
            cand = by_k(k)
            if len(cand[1]) <= budget:
                hi, hi_size, best = k, len(cand[1]), cand
            else:
                lo, lo_size = k, len(cand[1])
        return best[0], best[1], hi / max(n, 1)

    def by_tau(tau):
        q = deadzone(values, tau, lim)
        return q, arm.encode_section(q, params)

    best = by_tau(TAU_MAX)
    if len(best[1]) > budget:
        raise ValueError("the latents do not fit the budget even in the widest dead zone")
    lo, hi = 0.5, TAU_MAX
    for _ in range(6):
        mid = (lo + hi) / 2
        cand = by_tau(mid)
        if len(cand[1]) <= budget:
            hi, best = mid, cand
        else:
            lo = mid
    return best[0], best[1], 1.0 + hi


class Steer:
    """fit.Steer for the late part of the full fit. Every few steps from EARLY x the steps
    on, the latent section the rounded latents would make is coded (arm.encode_section) and
    lambda moves by GAIN x log2 of its ratio to where the rate should be then, at most
    MAX_MOVE a move.

    With soft rounding to the end (0.10.0's fit, no straight-through phase), the rounded
    latents' rate at a fixed lambda falls to its final value from above over that part:
    about 1 + max(0, OVER[0] + OVER[1] x quality) x (1 - f)^DECAY times the final at a
    share f of it (benchmarks/results/steer-traces-0.10.json: 4 photos x qualities 10 / 25
    / 45 / 60; residual sd 0.008 in log2, against 0.026 for a flat 1). Lambda moves toward
    that curve."""

    GAIN, MAX_MOVE, EARLY, MOVES = 2.0, 0.5, 0.6, 16
    OVER, DECAY = (0.092, -0.0016), 2.2

    def __init__(self, latent_bytes: float, fs, params: arm.ArmParams):
        self.target = max(latent_bytes, 1.0) * 2.0 ** STEER_AIM
        self.steps = fs.steps
        self.start = int(self.EARLY * fs.steps)
        self.every = max(1, (fs.steps - self.start) // self.MOVES)
        self.params, self.lam = params, fs.lam
        self.history: list[tuple[int, int, float]] = []  # (step, coded bytes, new lambda)

    def expected(self, t: int) -> float:
        """The rate at step t over the final one, at the present lambda."""
        quality = -10.0 * (math.log2(self.lam) + 6.0)  # config.latent_lambda's inverse
        f = (t - self.start) / max(1, self.steps - self.start)
        return 1.0 + max(0.0, self.OVER[0] + self.OVER[1] * quality) * (1.0 - f) ** self.DECAY

    def __call__(self, t: int, lat) -> float:
        if t < self.start or (t - self.start) % self.every:
            return self.lam
        q = [np.clip(np.round(v.detach().cpu().numpy()), -LIM, LIM).astype(np.int64)
             for v in lat]
        coded = len(arm.encode_section(q, self.params))
        ratio = max(coded, 1) / (self.target * self.expected(t))
        move = self.GAIN * math.log2(ratio)
        self.lam *= 2.0 ** max(-self.MAX_MOVE, min(self.MAX_MOVE, move))
        self.history.append((t, coded, self.lam))
        return self.lam
