"""What an encode reports beside its bytes: one record for every mode. The fields after
`search` are the weight mode's own (None in the latent mode)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..metrics import bpp as bits_per_pixel


@dataclass
class EncodeReport:
    data: bytes = field(repr=False)
    mode: str  # the codec mode: "latent" or "weights"
    format_version: int
    width: int
    height: int
    image_mode: str  # L, LA, RGB or RGBA
    level: int  # the shared model's ladder level (format 5: the densest a tile took)
    steps: int  # optimiser steps
    params: int  # values the file stores (latent: the level's synthesis entries)
    psnr: float  # what the receiver will see, measured on the decoded 8-bit image
    seconds: float
    model_hash: str
    notices: list[str] = field(default_factory=list)
    quality: float | None = None  # the quality that was fitted (rate control's choice too)
    search: dict | None = None  # rate control: target and candidates tried
    tiles: int | None = None  # the weight mode's tiles
    levels: dict | None = None  # format 5: tiles per level
    lr: float | None = None  # formats 1 and 2: the fit's learning rate ...
    quantizer: str | None = None  # ... their quantiser ("delta", "fp16"; "learned" in 5)
    coder: str | None = None  # ... and coder ("zstd", "range"; "laplace" in 5)
    step_scale: float | None = None
    qat_steps: int | None = None  # how many of the steps were quantiser-aware

    @property
    def bytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return bits_per_pixel(len(self.data), self.height, self.width)

    def summary(self) -> dict:
        """A JSON-ready dict (--json, manifests): the fields that are set, bytes and bpp."""
        d = {k: v for k, v in asdict(self).items() if k != "data" and v is not None}
        d.update(bytes=self.bytes, bpp=self.bpp)
        if math.isinf(d["psnr"]):
            d["psnr"] = None
        return d
