"""Every default and preset, once: network architecture, the encoder (fitting, quantiser,
rate control) and meta-training. Modules take their defaults from here."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

FAMILIES = ("siren", "ffn")


@dataclass(frozen=True)
class Arch:
    """One INR family and shape. Coordinates in [-1, 1]^2 map to `out_features` values.

    SIREN: `depth` sine layers of `width` units and a linear output layer
    (the paper: depth 4, width 256, w0 = 200 at 178x178).
    FFN: a fixed random Fourier encoding of `ffn_features` frequencies drawn from
    N(0, ffn_sigma^2) (seeded by `ffn_seed`), then `depth` ReLU layers and a linear output.
    """

    family: str = "siren"
    width: int = 64
    depth: int = 4
    in_features: int = 2
    out_features: int = 3
    w0: float = 30.0
    ffn_features: int = 64
    ffn_sigma: float = 10.0
    ffn_seed: int = 0

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown INR family {self.family!r}; expected one of {FAMILIES}")
        if self.width < 1 or self.depth < 1 or self.ffn_features < 1:
            raise ValueError("width, depth and ffn_features must be positive")

    def layer_shapes(self) -> list[tuple[int, int]]:
        """(out, in) of every linear layer, in order."""
        first_in = self.in_features if self.family == "siren" else 2 * self.ffn_features
        dims = [first_in] + [self.width] * self.depth + [self.out_features]
        return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]

    def n_weights(self) -> int:
        return sum(o * i for o, i in self.layer_shapes())

    def n_biases(self) -> int:
        return sum(o for o, _ in self.layer_shapes())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Arch":
        if not isinstance(d, dict):
            raise ValueError("an architecture must be a mapping")
        kinds = {f.name: type(f.default) for f in dataclasses.fields(cls)}
        unknown = set(d) - set(kinds)
        if unknown:
            raise ValueError(f"unknown architecture fields {sorted(unknown)}")
        for k, v in d.items():
            want = kinds[k]
            ok = (isinstance(v, str) if want is str else
                  isinstance(v, int) and not isinstance(v, bool) if want is int else
                  isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
            if not ok:
                raise ValueError(f"architecture field {k}={v!r} is not a valid {want.__name__}")
        return cls(**d)


# -- the encoder -------------------------------------------------------------------------
# The mode `inrcodec encode`, `encode-dir`, the Python API and the dataset tools use when no
# mode is named (codec/encoder.settings_for): the latent mode, the best codec we have.
DEFAULT_MODE = "latent"
DEFAULT_STEPS = 100  # optimiser (Adam) steps per tile
DEFAULT_LR = 1e-4  # the paper's test-time learning rate
# The delta quantiser's step sizes come from the fit's first STEP_SIZE_REF_STEPS plain
# optimiser steps, whatever the total (codec.encoder.Session.quantiser).
STEP_SIZE_REF_STEPS = 100
# Quantiser-aware steps: this share of the optimiser steps (the last ones), at step scales
# of QAT_MIN_SCALE and above (measured on development photos: they gain up to 3 dB at
# coarse step sizes and nothing below 0.4, where the plain steps they replace are worth more).
QAT_FRACTION = 0.2
QAT_MIN_SCALE = 0.4
QUANTIZER_NAMES = ("delta", "fp16")
CODER_NAMES = ("auto", "zstd", "range")

# Rate control (codec/weights/rate.py). 100 steps at lr 1e-4 barely move the weights (README, measured).
QUALITY_LR = 1e-3
# (quality, density, step scale) anchors, log-linear in between. From the operational
# curve (upper convex hull) of the shipped model a078708559e7 on development photos
# (benchmarks/results/compress-rd: levels 15/11/7 x step scales 2/1/0.5/0.25, lr 1e-3):
# it runs level 15 at step scale 2 -> 1, then level 11 at 0.25, then level 7 at 0.25.
QUALITY_PATH = ((1, 0.035, 2.0), (25, 0.035, 1.0), (75, 0.086, 0.25), (100, 0.21, 0.25))
MAX_COARSEN = 40  # x1.15 step sizes each: up to ~270x coarser than the quality's own

# The latent mode (codec/latent/). --quality q in 1..100 is lambda = 2^(-5 - q / 10) in
# loss = MSE (images in [0, 1]) + lambda x bits per pixel: higher quality, smaller lambda.
LATENT_STEPS = 900
LATENT_QUALITY = 50
# --effort: optimiser steps per mode (weights: per tile; latent: per image).
# Latent: a 768x512 photo takes about 40-55 ms a step on 2 threads (benchmarks/speed.py
# --sections latent-step), so the default's 900 steps encode in under a minute.
EFFORT_STEPS = {"fast": {"weights": 50, "latent": 300},
                "default": {"weights": 100, "latent": 900},
                "slow": {"weights": 300, "latent": 2700}}


# The weight mode's rate-distortion encoder (format 5, codec/weights/rdencode.py). --quality q is
# lambda = 2^(-2 - q / 10) in loss = MSE (images in [0, 1]) + lambda x bits per pixel: a
# weight costs more bits per dB than a latent, so the scale sits 4 octaves above the latent
# mode's. Each quality fits its candidate levels around a target density (below), and
# every tile takes the cheapest in J; --effort sets how many candidates and steps.
RD_QUALITY = 50
# effort: (candidate levels, steps, share of the tiles the denser candidates are fitted on).
# slow: 5x the steps, about 4-5x the time, -21% BD-rate on dev:4 (benchmarks/results/
# rd-inrcodec-rd-slow-dev4.json); a third candidate level had bought little (README).
RD_EFFORT = {"fast": (1, 300, 1.0), "default": (2, 600, 0.5), "slow": (2, 3000, 0.5)}


def weight_lambda(quality: float) -> float:
    return 2.0 ** (-2.0 - quality / 10.0)


def rd_density(quality: float) -> float:
    """The densest candidate's target density at `quality`: 0.8^(15 - q/10) (level 15 of
    a 20%-per-round ladder below quality 10, level 6 at quality 90). Each further
    candidate is 3 rounds sparser."""
    return 0.8 ** max(0.0, 15.0 - quality / 10.0)


UPSAMPLING = ("bilinear", "bicubic")


@dataclass(frozen=True)
class LatentArch:
    """The latent mode's image model (codec/latent/grids.py, synthesis.py): grids, synthesis, ARM width."""

    levels: int = 7
    hidden: int = 32
    layers: int = 2
    act: str = "relu"
    w0: float = 30.0
    arm_hidden: int = 16
    coords: bool = False  # the pixel's two coordinates are synthesis inputs too
    upsample: str = "bilinear"  # how a grid reaches the output grid: bilinear or bicubic

    def __post_init__(self):
        if not 1 <= self.levels <= 12 or not 1 <= self.hidden <= 256 \
                or not 1 <= self.layers <= 8 or self.act not in ("relu", "sine") \
                or not 1 <= self.arm_hidden <= 64 or self.upsample not in UPSAMPLING:
            raise ValueError(f"invalid latent architecture {self}")

    def shapes(self) -> list[tuple[int, int]]:
        """(out, in) of the synthesis layers."""
        dims = [self.inputs] + [self.hidden] * self.layers + [3]
        return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]

    @property
    def inputs(self) -> int:
        return self.levels + 2 * self.coords

    def n_params(self) -> int:
        return sum(o * i + o for o, i in self.shapes())

    def macs_per_pixel(self) -> int:
        return sum(o * i for o, i in self.shapes())


# The shipped latent model's architecture (inrcodec train --mode latent): 7 grids, the
# pixel's coordinates beside them, a 24-wide 2-layer SIREN with w0 = 5 (the latents are
# integers of a few units, so the usual w0 = 30 oversteers).
LATENT_ARCH = LatentArch(levels=7, hidden=24, layers=2, act="sine", w0=5.0, arm_hidden=16,
                         coords=True)


@dataclass(frozen=True)
class LatentFit:
    """The latent mode's fit (codec/latent/)."""

    steps: int = LATENT_STEPS
    lam: float = 1e-3  # lambda: loss = MSE (images in [0, 1]) + lambda x bits per pixel
    lr_latent: float = 0.05
    # Grids 1.. (each latent is seen by many pixels, so its gradient is clean even with a
    # quarter of the pixels) move this much faster: at 300 steps, +3 to +5 dB (measured).
    coarse_lr_factor: float = 6.0
    lr_net: float = 5e-3
    # The share of last steps that round straight-through. 0 since 0.10.0: ending on noisy
    # soft rounding (T 0.1 is near rounding already) is 11.9% BD-rate better on the 32
    # development photos than 0.2 (docs/latent-mode.md, "Ablations (0.10.0)"); --bpp's
    # fits too, since its steer was re-measured without that phase.
    ste_fraction: float = 0.0
    # How the steps before those model rounding: "noise" (latent + U[-1/2, 1/2)) or
    # "softround" (C3's softround(softround(latent, T) + noise x s, T), T and s going
    # linearly from their first to their second value); with "softround" the straight-
    # through steps' backward is softround's at the last T.
    quantizer: str = "softround"
    temperature: tuple[float, float] = (0.5, 0.1)
    noise_scale: tuple[float, float] = (1.0, 1.0)
    # The distortion term of each step reads the pixels of a stride x stride lattice, its
    # phase cycling: a quarter of the pixels at 2, every pixel once per stride^2 steps.
    stride: int = 2
    # The share of the canvas' blocks whose rate the CPU fit computes each step (an
    # unbiased estimate of the rate's gradient, scaled up; codec/latent/rate.py): at 0.5,
    # no worse a loss at 300 steps on a 768x512 photo than every block, for half the cost.
    rate_sample: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if self.quantizer not in ("noise", "softround"):
            raise ValueError(f"LatentFit.quantizer: 'noise' or 'softround', not {self.quantizer!r}")


def latent_lambda(quality: float) -> float:
    """--quality 0..100 -> lambda 2^-6 .. 2^-16 (a tenth of a quality step is 2^-0.1)."""
    return 2.0 ** (-6.0 - quality / 10.0)


@dataclass(frozen=True)
class FitConfig:
    """Test-time fitting (the encoder's optimisation): full-batch Adam from the shared init."""

    steps: int = DEFAULT_STEPS
    lr: float = DEFAULT_LR
    seed: int = 0
    # Upper bound on pixels (tiles x T^2) fitted in one batch; bounds peak memory.
    max_batch_pixels: int = 1 << 20
    # Pixels per forward/backward pass inside one step (gradients accumulate over passes).
    chunk_pixels: int = 1 << 15


@dataclass(frozen=True)
class MetaConfig:
    """MAML and Algorithm 1 (Meta-SparseINR) schedule."""

    meta_batch: int = 3
    inner_steps: int = 2
    inner_lr: float = 1e-2
    outer_lr: float = 1e-5
    first_order: bool = False
    pretrain_steps: int = 1000
    retrain_steps: int = 200
    rounds: int = 10
    prune_rate: float = 0.2
    pruning: str = "magnitude"  # or "random"
    # Validate every val_every steps within a phase and keep the best weights (early
    # stopping); 0 = validate once at the end of each phase and keep the last weights.
    val_every: int = 0
    seed: int = 0
    # Sparse-delta (issue 5): the shared base stays dense and the mask marks which weights
    # each image adapts; the outer loop learns every base weight. bias_only_steps > 0 adds a
    # last level where only biases adapt (retrained that many steps).
    sparse_delta: bool = False
    bias_only_steps: int = 0
    tags: tuple = field(default_factory=tuple)


@dataclass(frozen=True)
class QuantConfig:
    """How the fitted values are stored.

    quantizer: "delta" (integers q, theta = theta0 + step size * q) or "fp16" (the v1 baseline).
    step_scale: each tensor's step size = step_scale x the RMS of its deltas
      (codec.quantiser.delta_step_sizes); smaller is finer: larger file, closer to the fit.
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
        from .errors import InrcodecError
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


# -- meta-training presets (inrcodec train --preset) -----------------------------------------
TRAINING_PRESETS = {
    # The paper's configuration (GPU work): whole 178x178 images, width 256, w0 = 200.
    "paper": dict(arch=Arch(width=256, depth=4, w0=200.0), tile=178, whole_image=True,
                  crop_scale=(0.5, 1.0),
                  meta=MetaConfig(pretrain_steps=150_000, retrain_steps=30_000, rounds=20)),
    # What a 2-core CPU trains in well under an hour (see inrcodec/models/README.md).
    # First-order MAML at this lr peaks after ~1500-3000 steps and then degrades
    # (benchmarks/results/meta-trajectory.txt), so validation picks each phase's weights.
    # Crops of 18-25% of the photos' short side (64-90 px of endless-sky's 360) resized to
    # 64: close to the native resolution of the tiles the codec fits in a 768x512 photo.
    "cpu": dict(arch=Arch(width=64, depth=4, w0=60.0), tile=64, whole_image=False,
                crop_scale=(0.18, 0.25),
                meta=MetaConfig(first_order=True, outer_lr=2e-5, pretrain_steps=3000,
                                retrain_steps=300, rounds=15, val_every=500)),
}
