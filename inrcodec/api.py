"""The public API, a facade: encode / decode / info on images, bytes and files.

The work is done in codec/ (encoder, decoder) and model/ (shared models); this module
turns the caller's arguments into theirs.
"""
from __future__ import annotations

import dataclasses

from pathlib import Path

import torch

from .codec import bitstream, decoder
from .codec.encoder import EncodeReport, Options, ProgressFn, encode_images
from .config import DEFAULT_STEPS, LATENT_STEPS, RD_EFFORT, FitConfig
from .errors import FormatError, ModelError
from .io import as_loaded, atomic_write_bytes, check_writable, output_format, read_bytes, save_image
from .metrics import bpp as bits_per_pixel
from .model.latent_model import LatentModel, load_latent_model
from .model.shared_model import ModelLike, SharedModel, default_model_path, load_model

__all__ = ["EncodeReport", "encode_report", "encode", "encode_file", "decode", "decode_array",
           "decode_file", "info", "load_model", "default_model_path", "read_inr"]


def encode_report(image, *, model: ModelLike = None, level: int | None = None,
                  steps: int | None = None, lr: float | None = None, seed: int = 0,
                  device: str | torch.device | None = None,
                  progress: ProgressFn | None = None,
                  max_batch_pixels: int = FitConfig.max_batch_pixels,
                  quantizer: str = "delta", step_scale: float | None = None,
                  coder: str = "auto", qat_fraction: float | None = None,
                  format_version: int = bitstream.VERSION, quality: int | None = None,
                  bpp: float | None = None, psnr: float | None = None,
                  mode: str = "weights", effort: str = "default") -> EncodeReport:
    """Fit `image` (path, PIL image or array) and return the .inr bytes with a report.

    quantizer "delta" stores integer changes from the shared initialisation with one step
    size per tensor of `step_scale` x their RMS (0.5 by default; smaller: finer, larger
    file), the last `qat_fraction` of the optimiser steps quantiser-aware (default: 20% at
    step scales of 0.4 and above, none below), coded by "zstd", "range" or "auto" (the
    smaller); "fp16" stores every value as a half float (the version-1 format when
    format_version=1). Rate control: `quality` (1..100) chooses level, step scale and
    learning rate; `bpp` / `psnr` search for the smallest file meeting the target.
    mode "latent" writes format version 4: latent grids and the deltas of a synthesis that
    starts from the shipped latent model (or `model`, a latent model), `quality`, `level`
    and `steps` only. format_version=5 fits the weight mode to distortion + lambda x rate,
    with learned step sizes and a level per tile: `quality` (or `bpp`, `psnr`), `level`
    (one level for every tile), `steps` and `effort` ("fast", "default", "slow": how many
    candidate levels, and the default steps).
    """
    if steps is None:  # each mode's default number of optimiser steps
        steps = LATENT_STEPS if mode == "latent" else RD_EFFORT[effort][1] \
            if format_version == bitstream.RD_VERSION and effort in RD_EFFORT else DEFAULT_STEPS
    opts = Options(level=level, steps=steps, lr=lr, seed=seed, quantizer=quantizer,
                   step_scale=step_scale, coder=coder, qat_fraction=qat_fraction,
                   format_version=format_version, quality=quality, bpp=bpp, psnr=psnr,
                   mode=mode, effort=effort)
    m = load_latent_model(model) if mode == "latent" else load_model(model)
    opts.check(m)  # bad options fail before the image is read
    return encode_images([as_loaded(image)], m, opts, device=device,
                         max_batch_pixels=max_batch_pixels, progress=progress)[0]


def encode(image, **options) -> bytes:
    """Compress an image (path, PIL image or uint8 array) to .inr bytes."""
    return encode_report(image, **options).data


def encode_file(src: str | Path, dst: str | Path, *, force: bool = False,
                **options) -> EncodeReport:
    """Encode an image file to a .inr file (written atomically; never overwrites without force)."""
    check_writable(Path(dst), force)
    report = encode_report(src, **options)
    atomic_write_bytes(Path(dst), report.data, force)
    return report


def decode_array(data: bytes, size: tuple[int, int] | None = None, *, scale: float | None = None,
                 model: ModelLike = None, device=None):
    """Decode to a uint8 array (H, W, C) with C = 1, 2, 3 or 4 per the stored mode."""
    return decoder.decode_array(data, size, scale=scale, model=model, device=device)


def decode(data: bytes, size: tuple[int, int] | None = None, *, scale: float | None = None,
           model: ModelLike = None, device=None):
    """Decode .inr bytes to a PIL image, at the stored size or at `size` = (W, H) / `scale`."""
    return decoder.decode_image(data, size, scale=scale, model=model, device=device)


def read_inr(path: str | Path) -> bytes:
    """A .inr file's bytes (refusing anything larger than a valid file can be)."""
    max_size = (bitstream.HEADER_SIZE + bitstream.MAX_QPARAMS + 2 * bitstream.MAX_VALUES
                + bitstream.MAX_PIXELS + 1024)
    return read_bytes(path, max_size, ".inr file")


def decode_file(src: str | Path, dst: str | Path, *, size=None, scale=None, force: bool = False,
                model: ModelLike = None, device=None):
    check_writable(Path(dst), force)
    output_format(dst)  # refuse an unknown extension before the work
    img = decode(read_inr(src), size, scale=scale, model=model, device=device)
    save_image(img, dst, force=force)
    return img


def info(source: bytes | str | Path) -> dict:
    """Describe a .inr file (its header) or a shared model (its ladder)."""
    data = read_inr(source) if isinstance(source, (str, Path)) else source
    if data[:4] == bitstream.MAGIC:
        h = bitstream.verify(data)
        return {"kind": "inr", "bytes": len(data),
                "bpp": bits_per_pixel(len(data), h.height, h.width),
                "fields": h.describe()}
    try:
        m = SharedModel.from_bytes(data)
    except ModelError as e:
        try:
            lm = LatentModel.from_bytes(data)
        except ModelError:
            raise FormatError(f"neither an .inr file nor a shared model ({e})") from None
        return {"kind": "latent-model", "hash": lm.hash, "arch": dataclasses.asdict(lm.arch),
                "default_level": lm.default_level, "levels": lm.ladder(), "info": lm.info}
    return {"kind": "model", "hash": m.hash, "arch": m.arch.to_dict(), "tile": m.tile,
            "default_level": m.default_level, "levels": m.ladder(), "info": m.info}
