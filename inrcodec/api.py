"""The public API, a facade: encode / decode / info on images, bytes and files.

The work is done in codec/ (the encoder, the decoder and the modes); this module turns the
caller's arguments into theirs. Encode options are `EncodeOptions` (or a mapping, or
keywords, of its fields); the default mode is config.DEFAULT_MODE, the command line's:
`inrcodec.encode(x)` and `inrcodec encode` write the same bytes.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from .codec import bitstream, decoder
from .codec.encoder import EncodeReport, ProgressFn, check_runtime, encode_images, settings_for
from .codec.header import MAGIC, MAX_PIXELS
from .codec.latent.model import LatentModel
from .codec.options import EncodeOptions
from .codec.weights.format import MAX_QPARAMS, MAX_VALUES
from .errors import FormatError, ModelError
from .io import as_loaded, atomic_write_bytes, check_writable, output_format, read_bytes, save_image
from .metrics import bpp as bits_per_pixel

if TYPE_CHECKING:
    import torch

__all__ = ["EncodeOptions", "EncodeReport", "encode_report", "encode", "encode_file",
           "decode", "decode_array", "decode_file", "info", "read_inr"]


def encode_report(image, options: EncodeOptions | dict | None = None, /, *, model=None,
                  device: str | torch.device | None = None,
                  progress: ProgressFn | None = None, batch_pixels: int | None = None,
                  **more) -> EncodeReport:
    """Fit `image` (a path, PIL image or uint8 array) and return the .inr bytes with a
    report (bytes, bpp, and the PSNR the decoder will reproduce).

    The options are EncodeOptions' fields, given as an EncodeOptions, a mapping or
    keywords (help(inrcodec.EncodeOptions) lists them): `quality` (1..100) or a `bpp` /
    `psnr` target, `level`, `steps` or `effort`, `seed`; `mode="weights"` and that mode's
    own. `model`: the shared model to fit from (default: the shipped one of the mode);
    `device`: where to fit ("auto": a GPU when there is one); `progress(done, total,
    loss)`: called as optimiser steps are done; `batch_pixels`: format 2's pixels per fit
    batch (the other formats refuse it).
    """
    md, settings = settings_for(EncodeOptions.of(options, **more))
    check_runtime(md, {"batch_pixels": batch_pixels})
    m = md.load_model(model)
    settings.check(m)  # bad options fail before the image is read
    return encode_images([as_loaded(image)], md, m, settings, device=device,
                         batch_pixels=batch_pixels, progress=progress)[0]


def encode(image, options: EncodeOptions | dict | None = None, /, **more) -> bytes:
    """Compress an image (path, PIL image or uint8 array) to .inr bytes; the options are
    encode_report's."""
    return encode_report(image, options, **more).data


def encode_file(src: str | Path, dst: str | Path, options: EncodeOptions | dict | None = None,
                /, *, force: bool = False, **more) -> EncodeReport:
    """Encode an image file to a .inr file (written atomically; never overwrites without
    force); the options are encode_report's."""
    check_writable(Path(dst), force)
    report = encode_report(src, options, **more)
    atomic_write_bytes(Path(dst), report.data, force)
    return report


def decode_array(data: bytes, size: tuple[int, int] | int | None = None, *,
                 scale: float | None = None, model=None, device=None):
    """Decode to a uint8 array (H, W, C) with C = 1, 2, 3 or 4 per the stored image mode."""
    return decoder.decode_array(data, size, scale=scale, model=model, device=device)


def decode(data: bytes, size: tuple[int, int] | int | None = None, *,
           scale: float | None = None, model=None, device=None):
    """Decode .inr bytes to a PIL image, at the stored size, at `size` = (W, H), at `size` = n
    (the shorter side n, aspect kept) or at `scale` x the stored size. `model`: the shared
    model the file names, if it is not a shipped one."""
    return decoder.decode_image(data, size, scale=scale, model=model, device=device)


def read_inr(path: str | Path) -> bytes:
    """A .inr file's bytes (refusing anything larger than a valid file can be)."""
    max_size = (bitstream.max_header_size() + MAX_QPARAMS + 2 * MAX_VALUES
                + MAX_PIXELS + 1024)
    return read_bytes(path, max_size, ".inr file")


def decode_file(src: str | Path, dst: str | Path, *, size=None, scale=None, force: bool = False,
                model=None, device=None):
    """Decode a .inr file to an image file (its format from dst's extension; written
    atomically, never over an existing file without force)."""
    check_writable(Path(dst), force)
    output_format(dst)  # refuse an unknown extension before the work
    img = decode(read_inr(src), size, scale=scale, model=model, device=device)
    save_image(img, dst, force=force)
    return img


def info(source: bytes | str | Path) -> dict:
    """Describe a .inr file (its header) or a shared model (its ladder)."""
    data = read_inr(source) if isinstance(source, (str, Path)) else source
    if data[:4] == MAGIC:
        h = bitstream.verify(data)
        return {"kind": "inr", "bytes": len(data),
                "bpp": bits_per_pixel(len(data), h.height, h.width),
                "fields": h.describe()}
    try:
        lm = LatentModel.from_bytes(data)
    except ModelError as e:
        from .model.shared_model import SharedModel  # the weight mode's (torch)
        try:
            m = SharedModel.from_bytes(data)
        except ModelError:
            raise FormatError(f"neither an .inr file nor a shared model ({e})") from None
        return {"kind": "model", "hash": m.hash, "arch": m.arch.to_dict(), "tile": m.tile,
                "default_level": m.default_level, "levels": m.ladder(), "info": m.info}
    return {"kind": "latent-model", "hash": lm.hash, "arch": dataclasses.asdict(lm.arch),
            "arm_layers": 2 if len(lm.arm) == 6 else 1,
            "default_level": lm.default_level, "levels": lm.ladder(), "info": lm.info}
