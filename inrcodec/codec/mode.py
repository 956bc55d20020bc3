"""The interface every codec mode implements, and the record the one table of modes
(registry.py) holds. A new mode or format is a package that builds a `Mode` and a row in
that table, not a branch in every module."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..io import LoadedImage
from .report import EncodeReport

ProgressFn = Callable[[float, int, float], None]  # (steps done, steps in all, loss)
CheckFn = Callable[[bytes, LoadedImage], float]  # decode a file, give its PSNR on the image
# How a fit runs, as opposed to what it writes (encode-dir's --compute, --amp, --compile,
# --batch-pixels); a mode lists those it honours, and the others are refused for it.
RUNTIME_OPTIONS = ("compute", "amp", "compile", "batch_pixels")


@dataclass(frozen=True)
class Mode:
    """One codec (a mode name and the format versions it writes).

    header: its header class; the versions it lays out (header.LAYOUTS) are the ones this
      mode reads.
    writes: the versions its encoder writes.
    settings: its settings dataclass, validated when built (an option it does not take
      is a clear error); `settings.check(model)` checks what needs the shared model, and
      `settings.manifest(model)` gives what a dataset manifest records.
    load_model(model-like) -> its shared model (a path, a model object or None: shipped).
    encode(image, model, settings, progress, *, check, device) -> its report, with the
      file's bytes; `check(data, image)` is the encoder's check-decode, the PSNR the
      receiver will see.
    encode_batch(images, model, settings, progress, *, check, device, batch_pixels)
      -> a report per image: a mode that fits several images together has one (and a
      dataset packs images for it by pixels, batch_pixels(model, device) of them unless
      told); None for the others.
    decode(data, header, model-like, (width, height), device) -> float32 (H, W, 3) in
      [0, 255], unrounded, or uint8 (H, W, 3) already rounded; the decoder rounds a float
      one and lays out the channels.
    runtime: the RUNTIME_OPTIONS it honours.
    """

    name: str
    header: type
    writes: tuple[int, ...]
    settings: type
    load_model: Callable
    encode: Callable[..., EncodeReport]
    decode: Callable[..., np.ndarray]
    encode_batch: Callable[..., list[EncodeReport]] | None = None
    batch_pixels: Callable[..., int] | None = None
    runtime: frozenset[str] = frozenset()

    @property
    def reads(self) -> tuple[int, ...]:
        return tuple(self.header.LAYOUTS)
