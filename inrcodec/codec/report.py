"""What an encode reports beside its bytes: one record for every mode."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..metrics import bpp as bits_per_pixel


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
