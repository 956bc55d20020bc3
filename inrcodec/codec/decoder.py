"""The decoder: .inr bytes -> pixels, at the stored size or any other. The only reader of
.inr files: the container is checked first (bitstream), then the shared model the file
names, and only then is anything decompressed."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import FormatError, InrcodecError, ModelError, ModelMismatchError
from ..model.accel import resolve_device
from ..model.shared_model import ModelLike, SharedModel, load_model
from . import bitstream, latent, tilecode
from .quantiser import DELTA, DeltaQuantiser, Fp16Quantiser
from .tiling import render_groups


def target_size(h: bitstream.Header, size, scale) -> tuple[int, int]:
    """(width, height) to render: the stored size, `size` = (W, H), or `scale` x stored."""
    if size is not None and scale is not None:
        raise InrcodecError("give a size or a scale, not both")
    if scale is not None:
        if not (scale > 0 and math.isfinite(scale)):
            raise InrcodecError("scale must be a positive number")
        if max(h.width, h.height) * scale > bitstream.MAX_SIDE:
            raise InrcodecError(f"scale {scale:g} makes the output larger than "
                                f"{bitstream.MAX_SIDE} pixels a side")
        size = (max(1, round(h.width * scale)), max(1, round(h.height * scale)))
    if size is None:
        return h.width, h.height
    ow, oh = (int(v) for v in size)
    if not (1 <= ow <= bitstream.MAX_SIDE and 1 <= oh <= bitstream.MAX_SIDE) \
            or ow * oh > bitstream.MAX_PIXELS:
        raise InrcodecError(f"output size {ow}x{oh} is outside 1..{bitstream.MAX_SIDE} per side "
                            f"or over {bitstream.MAX_PIXELS} pixels")
    return ow, oh


def _model_for(h, model: ModelLike) -> SharedModel:
    """The shared model a weight-mode file names, checked against the file's tiles."""
    needed = h.model_hash.hex()
    try:
        m = load_model(model)
    except ModelError as e:
        raise ModelError(f"{e}; this file needs shared model {needed}") from None
    if m.hash != needed:
        where = f" ({model})" if isinstance(model, (str, Path)) else ""
        raise ModelMismatchError(
            f"this file needs shared model {needed}, but the model supplied{where} "
            f"is {m.hash}; pass the right one with --model")
    if h.tile != m.tile:
        raise FormatError(f"file tile size {h.tile} differs from the model's {m.tile}")
    return m


def read_tiles(data: bytes, model: ModelLike = None):
    """Parse and verify a format-5 file -> (header, model, render groups: (net, theta,
    raster indices of its tiles) per option)."""
    h = bitstream.verify(data)
    m = _model_for(h, model)
    options, choice, qs = tilecode.decode(
        m, *(bitstream.section(data, h, k) for k in ("options", "map", "payload")),
        h.options, h.n_tiles)
    groups = [(m.net(o.level), tilecode.values(m, o, q), np.nonzero(choice == k)[0])
              for k, (o, q) in enumerate(zip(options, qs))]
    return h, m, [g for g in groups if len(g[2])]


def read(data: bytes, model: ModelLike = None
         ) -> tuple[bitstream.Header, SharedModel, torch.Tensor]:
    """Parse and verify a weight-mode file (one level for all tiles: versions 1 and 2)
    against its shared model -> (header, model, theta)."""
    h = bitstream.verify(data)
    if isinstance(h, bitstream.LatentHeader):
        raise FormatError("a latent-mode file has no tiles of weights")
    if isinstance(h, bitstream.TileHeader):
        raise FormatError("a version-5 file has a level per tile (use read_tiles)")
    m = _model_for(h, model)
    if h.level >= len(m.levels):
        raise FormatError(f"file uses level {h.level}; the model has {len(m.levels)} levels")
    net = m.net(h.level)
    if h.n_params != net.n_params:
        raise FormatError(f"file stores {h.n_params} values per tile, level {h.level} has "
                          f"{net.n_params}")
    # Only now, with the sizes checked against the model, is the payload decompressed.
    payload = bitstream.coded_payload(data, h)
    if h.quantizer == DELTA:
        dq = DeltaQuantiser.from_qparams(net, m.levels[h.level].theta0,
                                         bitstream.qparams_section(data, h), h.level)
        theta = dq.values(payload, h.n_tiles, h.coder, h.qbits)
    else:
        theta = Fp16Quantiser.values(payload, h.n_tiles, h.n_params)
    return h, m, theta


def decode_array(data: bytes, size: tuple[int, int] | None = None, *, scale: float | None = None,
                 model: ModelLike = None, device=None) -> np.ndarray:
    """Decode to a uint8 array (H, W, C) with C = 1, 2, 3 or 4 per the stored mode."""
    h = bitstream.verify(data)
    if isinstance(h, bitstream.LatentHeader):
        ow, oh = target_size(h, size, scale)
        alpha = bitstream.alpha_section(data, h)
        out = latent.decode_rgb(data, h, oh, ow,
                                None if isinstance(model, SharedModel) else model)
        out *= 255.0
    else:
        if isinstance(h, bitstream.TileHeader):
            h, m, groups = read_tiles(data, model)
        else:
            h, m, theta = read(data, model)
            groups = [(m.net(h.level), theta, np.arange(h.n_tiles))]
        ow, oh = target_size(h, size, scale)
        alpha = bitstream.alpha_section(data, h)  # a bad alpha plane fails before the render
        dev = resolve_device(device)
        out = render_groups([(net, th.to(dev), ids) for net, th, ids in groups],
                            h.height, h.width, m.tile, oh, ow)
        # In place, (out + 1) * 127.5 without full-size float temporaries.
        out += 1.0
        out *= 127.5
    np.round(out, out=out)
    rgb = np.clip(out, 0, 255, out=out).astype(np.uint8)
    del out
    mode = h.mode_name
    colour = np.round(rgb.astype(np.float32).mean(2, keepdims=True)).astype(np.uint8) \
        if mode in ("L", "LA") else rgb
    if not h.has_alpha:
        return colour
    alpha = np.frombuffer(alpha, dtype=np.uint8).reshape(h.height, h.width)
    if (ow, oh) != (h.width, h.height):
        alpha = np.asarray(Image.fromarray(alpha, "L").resize((ow, oh), Image.LANCZOS))
    return np.concatenate([colour, alpha[:, :, None]], axis=2)


def decode_image(data: bytes, size: tuple[int, int] | None = None, *,
                 scale: float | None = None, model: ModelLike = None,
                 device=None) -> Image.Image:
    """Decode to a PIL image in the stored mode."""
    a = decode_array(data, size, scale=scale, model=model, device=device)
    mode = bitstream.unpack_header(data).mode_name
    return Image.fromarray(a[:, :, 0] if mode == "L" else a, mode)
