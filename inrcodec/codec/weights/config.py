"""The weight mode's defaults, once: the paper's encoder (formats 1 and 2: its fit, its
quantiser, --quality's path) and format 5 (its lambda scale and efforts)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import InrcodecError

# The quantisers' ids in format 2 (quantiser.py), here so that the format needs no torch.
FP16 = 0
DELTA = 1
QUANTIZERS = {FP16: "fp16", DELTA: "delta"}
QUANTIZER_IDS = {v: k for k, v in QUANTIZERS.items()}
# Largest step size a file may carry: keeps theta0 + s * q finite in float32 for |q| < 2^15.
MAX_STEP_SIZE = 65536.0
DELTA_BITS = (8, 16)  # integer widths: |q| <= 2^(bits-1) - 1

# -- formats 1 and 2: the paper's encoder -------------------------------------------------
PAPER_STEPS = 100  # optimiser (Adam) steps per tile
PAPER_LR = 1e-4  # the paper's test-time learning rate
# --effort: optimiser steps per tile.
PAPER_EFFORT_STEPS = {"fast": 50, "default": PAPER_STEPS, "slow": 300}
# The delta quantiser's step sizes come from the fit's first STEP_SIZE_REF_STEPS plain
# optimiser steps, whatever the total (session.Session.quantiser).
STEP_SIZE_REF_STEPS = 100
# Quantiser-aware steps: this share of the optimiser steps (the last ones), at step scales
# of QAT_MIN_SCALE and above (measured on development photos: they gain up to 3 dB at
# coarse step sizes and nothing below 0.4, where the plain steps they replace are worth more).
QAT_FRACTION = 0.2
QAT_MIN_SCALE = 0.4
QUANTIZER_NAMES = ("delta", "fp16")
CODER_NAMES = ("auto", "zstd", "range")

# Rate control (ratecontrol.py). 100 steps at lr 1e-4 barely move the weights (measured).
QUALITY_LR = 1e-3
# (quality, density, step scale) anchors, log-linear in between. From the operational
# curve (upper convex hull) of the shipped model a078708559e7 on development photos
# (levels 15/11/7 x step scales 2/1/0.5/0.25, lr 1e-3): it runs level 15 at step scale
# 2 -> 1, then level 11 at 0.25, then level 7 at 0.25.
QUALITY_PATH = ((1, 0.035, 2.0), (25, 0.035, 1.0), (75, 0.086, 0.25), (100, 0.21, 0.25))
MAX_COARSEN = 40  # x1.15 step sizes each: up to ~270x coarser than the quality's own


# -- format 5: a level per tile, fitted for distortion + lambda x rate --------------------
# --quality q is lambda = 2^(-2 - q / 10) in loss = MSE (images in [0, 1]) + lambda x bits
# per pixel: a weight costs more bits per dB than a latent, so the scale sits 4 octaves
# above the latent mode's. Each quality fits its candidate levels around a target density
# (rd_density), and every tile takes the cheapest in J; --effort sets how many candidates
# and steps.
RD_QUALITY = 50
# effort: (candidate levels, steps, share of the tiles the denser candidates are fitted on).
# slow: 5x the steps, about 4-5x the time, -21% BD-rate on dev:4 (benchmarks/results/
# rd-inrcodec-rd-slow-dev4.json); a third candidate level had bought little.
RD_EFFORT = {"fast": (1, 300, 1.0), "default": (2, 600, 0.5), "slow": (2, 3000, 0.5)}


def weight_lambda(quality: float) -> float:
    return 2.0 ** (-2.0 - quality / 10.0)


def rd_density(quality: float) -> float:
    """The densest candidate's target density at `quality`: 0.8^(15 - q/10) (level 15 of
    a 20%-per-round ladder below quality 10, level 6 at quality 90). Each further
    candidate is 3 rounds sparser."""
    return 0.8 ** max(0.0, 15.0 - quality / 10.0)


@dataclass(frozen=True)
class FitConfig:
    """The paper's test-time fitting: full-batch Adam from the shared init."""

    steps: int = PAPER_STEPS
    lr: float = PAPER_LR
    seed: int = 0
    # Upper bound on pixels (tiles x T^2) fitted in one batch; bounds peak memory.
    max_batch_pixels: int = 1 << 20
    # Pixels per forward/backward pass inside one step (gradients accumulate over passes).
    chunk_pixels: int = 1 << 15


@dataclass(frozen=True)
class QuantConfig:
    """How the fitted values are stored.

    quantizer: "delta" (integers q, theta = theta0 + step size * q) or "fp16" (the v1 baseline).
    step_scale: each tensor's step size = step_scale x the RMS of its deltas
      (quantiser.delta_step_sizes); smaller is finer: larger file, closer to the fit.
    coder: "auto" (write both, keep the smaller), "zstd" or "range".
    qat_fraction: share of the optimiser steps that are quantiser-aware (the last ones);
      None: QAT_FRACTION at step scales of QAT_MIN_SCALE and above, else 0.
    qat_lr_factor: the quantiser-aware steps run Adam at lr x this factor ...
    qat_adam: ... "fresh" (new moments) or "continued" (the plain steps' moments).
    """

    quantizer: str = "delta"
    step_scale: float = 0.5
    coder: str = "auto"
    qat_fraction: float | None = None
    qat_lr_factor: float = 0.1
    qat_adam: str = "fresh"

    def __post_init__(self):
        if self.quantizer not in QUANTIZER_NAMES:
            raise InrcodecError(f"unknown quantiser {self.quantizer!r}; expected one of "
                                f"{', '.join(QUANTIZER_NAMES)}")
        if self.coder not in CODER_NAMES:
            raise InrcodecError(f"unknown coder {self.coder!r}; expected one of "
                                f"{', '.join(CODER_NAMES)}")
        if self.quantizer == "fp16" and self.coder == "range":
            raise InrcodecError("the range coder codes delta integers only; fp16 uses zstd")
        if not (self.step_scale > 0 and math.isfinite(self.step_scale)):
            raise InrcodecError("the quantiser step scale must be a positive number")
        if self.qat_fraction is not None and not 0.0 <= self.qat_fraction < 1.0:
            raise InrcodecError("qat_fraction must be in [0, 1)")
        if not (self.qat_lr_factor > 0 and math.isfinite(self.qat_lr_factor)):
            raise InrcodecError("qat_lr_factor must be a positive number")
        if self.qat_adam not in ("fresh", "continued"):
            raise InrcodecError("qat_adam must be 'fresh' or 'continued'")

    @property
    def qat_share(self) -> float:
        if self.quantizer != "delta":
            return 0.0
        if self.qat_fraction is not None:
            return self.qat_fraction
        return QAT_FRACTION if self.step_scale >= QAT_MIN_SCALE else 0.0

    def qat_steps(self, steps: int) -> int:
        """How many of `steps` optimiser steps are quantiser-aware."""
        return int(round(steps * self.qat_share))
