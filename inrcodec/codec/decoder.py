"""The decoder: .inr bytes -> pixels, at the stored size or any other, through the table of
format versions (registry.READERS). The only reader of .inr files: the container is checked first
(bitstream), then the mode reads the shared model the file names, and only then is
anything decompressed."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..errors import InrcodecError
from . import bitstream
from .header import MAX_PIXELS, MAX_SIDE
from .registry import READERS


def target_size(h, size, scale) -> tuple[int, int]:
    """(width, height) to render: the stored size, `size` = (W, H), `size` = n (the shorter
    side becomes n, aspect kept, as torchvision's Resize(n)), or `scale` x stored."""
    if size is not None and scale is not None:
        raise InrcodecError("give a size or a scale, not both")
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if size < 1:
            raise InrcodecError("size must be a positive number of pixels")
        short = min(h.width, h.height)
        size = ((size if h.width == short else max(1, round(h.width * size / short))),
                (size if h.height == short else max(1, round(h.height * size / short))))
    if scale is not None:
        if not (scale > 0 and math.isfinite(scale)):
            raise InrcodecError("scale must be a positive number")
        if max(h.width, h.height) * scale > MAX_SIDE:
            raise InrcodecError(f"scale {scale:g} makes the output larger than "
                                f"{MAX_SIDE} pixels a side")
        size = (max(1, round(h.width * scale)), max(1, round(h.height * scale)))
    if size is None:
        return h.width, h.height
    ow, oh = (int(v) for v in size)
    if not (1 <= ow <= MAX_SIDE and 1 <= oh <= MAX_SIDE) or ow * oh > MAX_PIXELS:
        raise InrcodecError(f"output size {ow}x{oh} is outside 1..{MAX_SIDE} per side "
                            f"or over {MAX_PIXELS} pixels")
    return ow, oh


def decode_array(data: bytes, size: tuple[int, int] | None = None, *, scale: float | None = None,
                 model=None, device=None) -> np.ndarray:
    """Decode to a uint8 array (H, W, C) with C = 1, 2, 3 or 4 per the stored mode.
    `model`: the shared model (or its path) the file names; None: the shipped one."""
    h = bitstream.verify(data)
    ow, oh = target_size(h, size, scale)
    alpha = bitstream.alpha_section(data, h)  # a bad alpha plane fails before the render
    rgb = READERS[h.version].decode(data, h, model, (ow, oh), device)
    if rgb.dtype != np.uint8:
        np.round(rgb, out=rgb)
        rgb = np.clip(rgb, 0, 255, out=rgb).astype(np.uint8)
    colour = np.round(rgb.astype(np.float32).mean(2, keepdims=True)).astype(np.uint8) \
        if h.image_mode_name in ("L", "LA") else rgb
    if not h.has_alpha:
        return colour
    alpha = np.frombuffer(alpha, dtype=np.uint8).reshape(h.height, h.width)
    if (ow, oh) != (h.width, h.height):
        alpha = np.asarray(Image.fromarray(alpha, "L").resize((ow, oh), Image.LANCZOS))
    return np.concatenate([colour, alpha[:, :, None]], axis=2)


def decode_image(data: bytes, size: tuple[int, int] | None = None, *,
                 scale: float | None = None, model=None, device=None) -> Image.Image:
    """Decode to a PIL image in the stored mode."""
    a = decode_array(data, size, scale=scale, model=model, device=device)
    image_mode = bitstream.unpack_header(data).image_mode_name
    return Image.fromarray(a[:, :, 0] if image_mode == "L" else a, image_mode)
