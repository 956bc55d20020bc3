"""The latent mode's defaults, once: its image model's shape (LatentArch), its fit
(LatentFit), the quality scale and the steps per effort. Training's own recipe is in
training/latent_train.py; what it shares with this fit on purpose is named there."""
from __future__ import annotations

from dataclasses import dataclass

QUALITY = 50  # --quality when none is given
STEPS = 900  # optimiser steps per image at the default effort
# --effort: optimiser steps per image. A 768x512 photo takes 31-35 ms a step on 2 threads
# (benchmarks/results/speed-latent-0.18*.json): the default encodes in 28.7-31.7 s.
EFFORT_STEPS = {"fast": 300, "default": STEPS, "slow": 2700}
TILES_ABOVE = 16_000_000  # LatentFit.tiles_above: past 16 MP, where a whole fit passes 4 GB
# LatentFit.coarse_first "auto" (codec.coarse_plan): from 1 MP, a photo whose finest octave
# holds little (the mean square of the photo less its 2x2 block means at most
# COARSE_DETAIL x lambda) is fitted at a quarter and at half its size first, for these
# shares of the steps, then whole for COARSE_WHOLE of them. On native 1 MP crops of
# Garden and LadyBird, BD-rate -11.7% and -10.3% against the whole fit in 0.57x and 0.65x
# its time; a textured painting, which would lose 18%, stays whole. At 1/4 instead of 1/8,
# one of six more crops lost 13% (benchmarks/studies/coarse_first.py, docs/latent-mode.md).
COARSE_ABOVE = 1 << 20
COARSE_DETAIL = 0.125
COARSE_SHARES = ((2, 2 / 3), (1, 4 / 9))
COARSE_WHOLE = 1 / 6
UPSAMPLING = ("bilinear", "bicubic", "learned")  # format 7 ids: 0, 1, 2


def latent_lambda(quality: float) -> float:
    """--quality q -> lambda = 2^(-6 - q/10) in loss = MSE (images in [0, 1]) + lambda x
    bits per pixel: 2^-6 at 0, 2^-16 at 100 (a tenth of a quality step is 2^-0.1)."""
    return 2.0 ** (-6.0 - quality / 10.0)


@dataclass(frozen=True)
class LatentArch:
    """The latent mode's image model (grids.py, synthesis.py): grids, synthesis, ARM width.
    The defaults are a self-contained file's (no shared model); a shared model states its
    own (the shipped one: `inrcodec info inrcodec/models/latent.safetensors`)."""

    levels: int = 7
    hidden: int = 32
    layers: int = 2
    act: str = "relu"
    w0: float = 30.0
    arm_hidden: int = 16
    coords: bool = False  # the pixel's two coordinates are synthesis inputs too
    # how a grid reaches the output grid: bilinear, bicubic, or "learned" (upsampling.py: a
    # cascade of x2 steps whose taps are synthesis parameters)
    upsample: str = "bilinear"

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

    @property
    def up_params(self) -> int:
        """The learned upsampling's taps (4 per x2 step), or 0."""
        return 4 * (self.levels - 1) if self.upsample == "learned" else 0

    def n_params(self) -> int:
        return sum(o * i + o for o, i in self.shapes()) + self.up_params

    def macs_per_pixel(self) -> int:
        """The synthesis' dense MACs per output pixel, with the learned upsampling's: step
        k makes levels-1-k channels at 1/4^k of the pixels, 4 MACs a sample along the rows
        (at half the columns) and 4 along the columns."""
        up = sum((self.levels - 1 - k) * 6 / 4 ** k for k in range(self.levels - 1))
        return sum(o * i for o, i in self.shapes()) + (round(up) if self.up_params else 0)


@dataclass(frozen=True)
class LatentFit:
    """The latent mode's fit (fit.py): D + lambda R over the latents and the synthesis."""

    steps: int = STEPS
    lam: float = 1e-3  # lambda: loss = MSE (images in [0, 1]) + lambda x bits per pixel
    lr_latent: float = 0.05
    # Grids 1.. (each latent is seen by many pixels, so its gradient is clean even with a
    # quarter of the pixels) move this much faster: at 300 steps, +3 to +5 dB (measured).
    coarse_lr_factor: float = 6.0
    lr_net: float = 5e-3
    # The share of last steps that round straight-through. 0 since 0.10.0: ending on noisy
    # soft rounding (T 0.1 is near rounding already) is 11.9% BD-rate better on the 32
    # development photos than 0.2 (docs/latent-mode.md); --bpp's fits too, since its steer
    # was re-measured without that phase.
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
    # unbiased estimate of the rate's gradient, scaled up; rate.py): at 0.5, no worse a
    # loss at 300 steps on a 768x512 photo than every block, for half the cost.
    rate_sample: float = 0.5
    # The networks' optimiser ("adam", or "soap": optim.py) and the norm their gradient is
    # clipped to first (0: not clipped). SOAP with clipping at 0.1 (Cool-chic 5's): BD-rate
    # -12.1% against Adam unclipped on the 32 development photos, each better, for about
    # x1.2 the step time (on 4: SOAP alone -10.5%, clipping alone -4.0%;
    # docs/latent-mode.md, "What each part is worth").
    net_optimizer: str = "soap"
    clip: float = 0.1
    # Images of more pixels than this are fitted in tiles (tiled.py: the same steps with
    # grid 0 at zero, computed tile by tile; docs/latent-mode.md, "Large photos"); 0: never.
    # Learned upsampling only.
    tiles_above: int = TILES_ABOVE
    # The tiled fit's distortion lattice: 2, or 4 (a sixteenth of the pixels a step; grid
    # 0, which would need every pixel, is at zero there). On the native 4.1 MP Garden,
    # BD-rate against the whole fit +0.51% at 2, +0.49% at 4 (cubic); LadyBird +4.2% at 2
    # (grid 0's share), +9.9% at 4; a 12 MP step 1.08 s at 2, 0.76 s at 4, 1.80 s whole
    # (big-steps-12mp.json).
    tile_stride: int = 2
    # Coarse-first (codec.coarse_plan): fits at reduced sizes before the whole fit's `steps`,
    # each from the last, as "s:steps" joined by "/" (s: at grid s's size, fit.fit's
    # shrink; "2:600/1:400"); "" none; "auto" (the default): COARSE_ABOVE's rule.
    coarse_first: str = "auto"
    coarse_above: int = COARSE_ABOVE
    seed: int = 0

    def coarse_plan(self) -> list[tuple[int, int]]:
        """coarse_first as (s, steps) pairs ("auto", until codec.coarse_plan decides: none)."""
        if self.coarse_first == "auto":
            return []
        return [tuple(int(v) for v in p.split(":")) for p in self.coarse_first.split("/") if p]

    def __post_init__(self):
        if self.quantizer not in ("noise", "softround"):
            raise ValueError(f"LatentFit.quantizer: 'noise' or 'softround', not {self.quantizer!r}")
        if self.tile_stride not in (2, 4):
            raise ValueError(f"LatentFit.tile_stride: 2 or 4, not {self.tile_stride}")
        try:
            plan = self.coarse_plan()
        except ValueError:
            plan = None
        if plan is None or any(len(p) != 2 or p[0] < 1 or p[1] < 0 for p in plan):
            raise ValueError("LatentFit.coarse_first: 's:steps' joined by '/', s >= 1, "
                             f"not {self.coarse_first!r}")
        if self.net_optimizer not in ("adam", "soap") or not self.clip >= 0:
            raise ValueError(f"LatentFit: net_optimizer 'adam' or 'soap' (not "
                             f"{self.net_optimizer!r}), clip >= 0 (not {self.clip})")
