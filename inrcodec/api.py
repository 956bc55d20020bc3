"""The public API: encode / decode / info on images, bytes and files."""
from __future__ import annotations

import math
import stat
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from . import bitstream
from .config import FitConfig
from .errors import FormatError, InrcodecError, ModelError, ModelMismatchError
from .fileio import atomic_write_bytes, check_writable
from .compress import QuantConfig, decode_delta
from .encoder import Session, Settings
from .encoder import colour_target as _colour_target  # noqa: F401 - bulk.py fits with it
from .entropy import CODERS
from .imageio import LoadedImage, as_loaded, save_image
from .metrics import bpp as bits_per_pixel
from .quant import DELTA, dequantize
from .shared_model import SharedModel
from .tiling import render

ModelLike = SharedModel | str | Path | None
ProgressFn = Callable[[int, int, float], None]


# -- shared models ------------------------------------------------------------------
def default_model_path() -> Path:
    return Path(str(resources.files("inrcodec") / "models" / "default.safetensors"))


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> SharedModel:
    return SharedModel.load(path)


def load_model(model: ModelLike = None) -> SharedModel:
    """A SharedModel from a path, or the default model shipped in the package."""
    if isinstance(model, SharedModel):
        return model
    path = Path(model) if model is not None else default_model_path()
    if not path.is_file():
        if model is None:
            raise ModelError(f"the default shared model is missing from the installation ({path})")
        raise ModelError(f"shared model {path} not found")
    st = path.stat()
    return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InrcodecError("CUDA was requested but no CUDA device is available")
    return dev


# -- reports ---------------------------------------------------------------------------
@dataclass
class EncodeReport:
    data: bytes = field(repr=False)
    width: int
    height: int
    mode: str
    level: int
    steps: int
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


# -- encoding ---------------------------------------------------------------------------
DEFAULT_LR = 1e-4


def encode_report(image, *, model: ModelLike = None, level: int | None = None,
                  steps: int = 100, lr: float | None = None, seed: int = 0,
                  device: str | torch.device | None = None,
                  progress: ProgressFn | None = None,
                  max_batch_pixels: int = FitConfig.max_batch_pixels,
                  quantizer: str = "delta", step_scale: float | None = None,
                  coder: str = "auto", qat_fraction: float | None = None,
                  format_version: int = bitstream.VERSION, quality: int | None = None,
                  bpp: float | None = None, psnr: float | None = None,
                  _fitted: torch.Tensor | None = None) -> EncodeReport:
    """Fit `image` (path, PIL image or array) and return the .inr bytes with a report.

    quantizer "delta" stores integer changes from the shared initialisation with per-tensor
    steps of `step_scale` x their RMS (0.5 by default; smaller: finer, larger file), the
    last `qat_fraction` of the steps quantiser-aware (default: 20% at step scales of 0.4
    and above, none below), coded by "zstd", "range" or "auto"
    (the smaller); "fp16" stores every value as a half float (the version-1 format when
    format_version=1). Rate control: `quality` (1..100) chooses level, step scale and
    learning rate; `bpp` / `psnr` search for the smallest file meeting the target.

    `_fitted` (internal, for encode_dataset): this image's tiles already fitted together
    with other images' in one batch (plain steps only); everything after the fit is the same.
    """
    t0 = time.perf_counter()
    targets = [k for k, v in (("quality", quality), ("bpp", bpp), ("psnr", psnr))
               if v is not None]
    if len(targets) > 1:
        raise InrcodecError(f"give one of quality, bpp and psnr, not {' and '.join(targets)}")
    if targets and _fitted is not None:
        raise InrcodecError("rate control fits by itself; it cannot take fitted parameters")
    if targets:
        fixed = [k for k, v in (("level", level), ("lr", lr), ("step_scale", step_scale))
                 if v is not None]
        if fixed or quantizer != "delta" or format_version != bitstream.VERSION:
            raise InrcodecError(f"{targets[0]} chooses the level, learning rate and quantiser "
                                f"itself; it cannot be combined with "
                                f"{', '.join(fixed) or 'another quantiser or format version'}")
    img = as_loaded(image)
    m = load_model(model)
    if steps < 0:
        raise InrcodecError("steps must be zero or more")
    session_args = dict(seed=seed, max_batch_pixels=max_batch_pixels, progress=progress)
    if targets:
        from . import rate
        if quality is not None:
            rate.quality_settings(m, quality)  # refuse a bad quality before any work
        session = Session(img, m, resolve_device(device), **session_args)
        search = None
        if quality is not None:
            r = rate.encode_quality(session, quality, steps, coder)
        else:
            r, quality, search = rate.encode_target(session, bpp=bpp, psnr=psnr, steps=steps,
                                                    coder=coder)
        rep = _report(r, img, m, t0)
        rep.quality, rep.search = quality, search.summary() if search else None
        return rep
    s = Settings(level=m.default_level if level is None else level, steps=steps,
                 lr=DEFAULT_LR if lr is None else lr,
                 quant=QuantConfig(quantizer=quantizer,
                                   step_scale=QuantConfig.step_scale if step_scale is None
                                   else step_scale,
                                   coder=coder, qat_fraction=qat_fraction),
                 version=format_version)
    s.check(m)
    session = Session(img, m, resolve_device(device), **session_args)
    return _report(session.encode(s, theta=_fitted), img, m, t0)


def _report(r, img: LoadedImage, m: SharedModel, t0: float) -> EncodeReport:
    h, w = img.pixels.shape[:2]
    s = r.settings
    return EncodeReport(data=r.data, width=w, height=h, mode=img.mode, level=s.level,
                        steps=s.steps, params=m.net(s.level).n_params,
                        tiles=-(-h // m.tile) * -(-w // m.tile), psnr=r.psnr,
                        seconds=time.perf_counter() - t0, model_hash=m.hash,
                        notices=list(img.notices), lr=s.lr, quantizer=s.quant.quantizer,
                        coder=CODERS[r.payload.coder], step_scale=(
                            s.quant.step_scale if s.quant.quantizer == "delta" else None),
                        version=s.version,
                        qat_steps=s.quant.qat_steps(s.steps) if r.qat else 0)


def encode(image, **options) -> bytes:
    """Compress an image (path, PIL image or uint8 array) to .inr bytes."""
    return encode_report(image, **options).data


# -- decoding ----------------------------------------------------------------------------
def _target_size(h: bitstream.Header, size, scale) -> tuple[int, int]:
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


def read(data: bytes, model: ModelLike = None):
    """Parse and verify a file against its shared model -> (header, model, theta)."""
    h = bitstream.verify(data)
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
    if h.level >= len(m.levels):
        raise FormatError(f"file uses level {h.level}; the model has {len(m.levels)} levels")
    net = m.net(h.level)
    if h.n_params != net.n_params:
        raise FormatError(f"file stores {h.n_params} values per tile, level {h.level} has "
                          f"{net.n_params}")
    # Only now, with the sizes checked against the model, is the payload decompressed.
    if h.quantizer == DELTA:
        theta = decode_delta(h, net, m.levels[h.level].theta0, bitstream.qparams_section(data, h),
                             bitstream.coded_payload(data, h))
    else:
        payload = bitstream.payload_section(data, h)
        theta = dequantize(payload, (h.tiles_y * h.tiles_x, h.n_params), h.quantizer)
    return h, m, theta


def decode_array(data: bytes, size: tuple[int, int] | None = None, *, scale: float | None = None,
                 model: ModelLike = None, device=None) -> np.ndarray:
    """Decode to a uint8 array (H, W, C) with C = 1, 2, 3 or 4 per the stored mode."""
    h, m, theta = read(data, model)
    ow, oh = _target_size(h, size, scale)
    alpha = bitstream.alpha_section(data, h)  # a bad alpha plane fails before the render
    dev = resolve_device(device)
    out = render(m.net(h.level), theta.to(dev), h.height, h.width, m.tile, oh, ow)
    # In place, the same arithmetic as np.clip(np.round((out + 1) * 127.5), 0, 255): no
    # full-size float temporaries.
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


def decode(data: bytes, size: tuple[int, int] | None = None, *, scale: float | None = None,
           model: ModelLike = None, device=None) -> Image.Image:
    """Decode .inr bytes to a PIL image, at the stored size or at `size` = (W, H) / `scale`."""
    a = decode_array(data, size, scale=scale, model=model, device=device)
    mode = bitstream.unpack_header(data).mode_name
    return Image.fromarray(a[:, :, 0] if mode == "L" else a, mode)


# -- files and inspection ------------------------------------------------------------------
def read_inr(path: str | Path) -> bytes:
    path = Path(path)
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise InrcodecError(f"{path} is a directory")
        if not stat.S_ISREG(st.st_mode):  # a FIFO or /dev/zero would be read forever
            raise InrcodecError(f"{path} is not a regular file")
        max_size = (bitstream.HEADER_SIZE + bitstream.MAX_QPARAMS + 2 * bitstream.MAX_VALUES
                    + bitstream.MAX_PIXELS + 1024)
        if st.st_size > max_size:
            raise FormatError(f"{path}: {st.st_size} bytes is larger than any valid .inr file")
        return path.read_bytes()
    except FileNotFoundError:
        raise InrcodecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InrcodecError(f"{path} is a directory") from None
    except OSError as e:
        raise InrcodecError(f"cannot read {path}: {e.strerror or e}") from None


def encode_file(src: str | Path, dst: str | Path, *, force: bool = False, **options) -> EncodeReport:
    """Encode an image file to a .inr file (written atomically; never overwrites without force)."""
    check_writable(Path(dst), force)
    report = encode_report(src, **options)
    atomic_write_bytes(Path(dst), report.data, force)
    return report


def decode_file(src: str | Path, dst: str | Path, *, size=None, scale=None, force: bool = False,
                model: ModelLike = None, device=None) -> Image.Image:
    check_writable(Path(dst), force)
    from .imageio import output_format
    output_format(dst)  # refuse an unknown extension before the work
    img = decode(read_inr(src), size, scale=scale, model=model, device=device)
    save_image(img, dst, force=force)
    return img


def info(source: bytes | str | Path) -> dict:
    """Describe a .inr file (its header) or a shared model (its ladder)."""
    data = read_inr(source) if isinstance(source, (str, Path)) else source
    if data[:4] == bitstream.MAGIC:
        h, _, _ = bitstream.unpack(data)
        return {"kind": "inr", "bytes": len(data),
                "bpp": bits_per_pixel(len(data), h.height, h.width),
                "fields": h.describe()}
    try:
        m = SharedModel.from_bytes(data)
    except ModelError as e:
        raise FormatError(f"neither an .inr file nor a shared model ({e})") from None
    return {"kind": "model", "hash": m.hash, "arch": m.arch.to_dict(), "tile": m.tile,
            "default_level": m.default_level, "levels": m.ladder(), "info": m.info}
