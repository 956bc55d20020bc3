"""The public API, a facade: encode / decode / info on images, bytes and files.

The work is done in codec/ (encoder, decoder and the modes); this module turns the
caller's arguments into theirs. The default mode is config.DEFAULT_MODE, the same as the
command line's: `inrcodec.encode(x)` and `inrcodec encode` write the same bytes.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .codec import bitstream, decoder
from .codec.encoder import EncodeReport, ProgressFn, encode_images, settings_for
from .codec.latent.model import LatentModel
from .codec.weights.format import MAX_QPARAMS, MAX_VALUES
from .config import FitConfig
from .errors import FormatError, ModelError
from .io import as_loaded, atomic_write_bytes, check_writable, output_format, read_bytes, save_image
from .metrics import bpp as bits_per_pixel
from .model.shared_model import ModelLike, SharedModel, default_model_path, load_model

__all__ = ["EncodeReport", "encode_report", "encode", "encode_file", "decode", "decode_array",
           "decode_file", "info", "load_model", "default_model_path", "read_inr"]


def encode_report(image, *, mode: str | None = None, model: ModelLike = None,
                  quality: int | None = None, bpp: float | None = None,
                  psnr: float | None = None, level: int | None = None,
                  steps: int | None = None, effort: str | None = None, seed: int = 0,
                  preset: str | None = None, format_version: int | None = None,
                  lr: float | None = None, quantizer: str | None = None,
                  step_scale: float | None = None, coder: str | None = None,
                  qat_fraction: float | None = None,
                  device: str | torch.device | None = None,
                  progress: ProgressFn | None = None,
                  max_batch_pixels: int = FitConfig.max_batch_pixels) -> EncodeReport:
    """Fit `image` (path, PIL image or array) and return the .inr bytes with a report.

    mode "latent" (the default, format 6): latent grids and the deltas of a synthesis that
    starts from the shipped latent model (or `model`, a latent model). "weights": tiles of
    the shared sparse SIREN; format 5 (fitted to distortion + lambda x rate, learned step
    sizes, a level per tile) unless `preset="paper"`, `format_version` 1 or 2, or one of
    format 2's own options is given.

    Every mode: `quality` (1..100: the rate-distortion trade-off), or `bpp` / `psnr` (the
    file within that many bits per pixel / the smallest reaching that PSNR; the latent
    mode meets `bpp` with a short pilot fit and one full fit, the rest search the
    quality with whole encodes), `level` (the shared model's ladder level), `steps` (default by `effort`:
    "fast", "default", "slow"), `seed`.
    Format 2's own: `lr`, `quantizer` ("delta": integer changes from the shared
    initialisation, step size `step_scale` x their RMS; "fp16": half floats, the version-1
    format with format_version=1), `coder` ("zstd", "range", "auto": the smaller),
    `qat_fraction` (the last share of the steps quantiser-aware).
    """
    md, settings = settings_for(mode, effort=effort, preset=preset,
                                format_version=format_version, steps=steps, quality=quality,
                                bpp=bpp, psnr=psnr, level=level, seed=seed, lr=lr,
                                quantizer=quantizer, step_scale=step_scale, coder=coder,
                                qat_fraction=qat_fraction)
    m = md.load_model(model)
    settings.check(m)  # bad options fail before the image is read
    return encode_images([as_loaded(image)], md, m, settings, device=device,
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


def decode_array(data: bytes, size: tuple[int, int] | int | None = None, *,
                 scale: float | None = None, model: ModelLike = None, device=None):
    """Decode to a uint8 array (H, W, C) with C = 1, 2, 3 or 4 per the stored mode."""
    return decoder.decode_array(data, size, scale=scale, model=model, device=device)


def decode(data: bytes, size: tuple[int, int] | int | None = None, *,
           scale: float | None = None, model: ModelLike = None, device=None):
    """Decode .inr bytes to a PIL image, at the stored size, at `size` = (W, H), at `size` = n
    (the shorter side n, aspect kept) or at `scale` x the stored size."""
    return decoder.decode_image(data, size, scale=scale, model=model, device=device)


def read_inr(path: str | Path) -> bytes:
    """A .inr file's bytes (refusing anything larger than a valid file can be)."""
    max_size = (bitstream.HEADER_SIZE + MAX_QPARAMS + 2 * MAX_VALUES
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
