"""Files: reading the images users have, writing decoded ones, atomic outputs, folder scans.

Images are handled as uint8 arrays (H, W, C) with an image mode: L, LA, RGB or RGBA. Other
inputs (palette, 1-bit, 16-bit and float greyscale, CMYK, YCbCr, animations) are
converted, with a notice saying what was done; EXIF orientation is applied.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, InrcodecError, OutputExistsError

MAX_INPUT_PIXELS = 1 << 28
# What a folder scan takes for an image (any case).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
_ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")  # the output formats that keep an alpha plane exactly
_EXT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
                ".tiff": "TIFF", ".webp": "WEBP", ".ppm": "PPM", ".pgm": "PPM", ".gif": "GIF"}


@dataclass
class LoadedImage:
    pixels: np.ndarray  # uint8 (H, W, C)
    image_mode: str  # L, LA, RGB, RGBA
    notices: list[str] = field(default_factory=list)


def from_pil(img: Image.Image) -> LoadedImage:
    notices = []
    if getattr(img, "n_frames", 1) > 1:
        notices.append(f"animated image with {img.n_frames} frames: only the first is encoded")
        img.seek(0)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        notices.append("EXIF orientation could not be read and was ignored")
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        pass
    elif mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        notices.append(f"palette image converted to {img.mode}")
    elif mode == "1":
        img = img.convert("L")
        notices.append("1-bit image converted to 8-bit greyscale")
    elif mode in ("I;16", "I;16B", "I;16L", "I", "F", "I;16N"):
        a = np.asarray(img).astype(np.float64)
        if not np.isfinite(a).all():
            raise ImageError(f"{mode} image holds non-finite values")
        hi = 65535.0 if mode.startswith("I;16") else max(float(a.max(initial=0)), 1.0)
        if mode in ("I", "F") and a.max(initial=0) <= 255 and a.min(initial=0) >= 0:
            hi = 255.0
        a = np.clip(np.round(a / hi * 255.0), 0, 255).astype(np.uint8)
        img = Image.fromarray(a, "L")
        notices.append(f"{mode} greyscale converted to 8-bit (codec works in 8 bits)")
    elif mode in ("RGBa", "La"):
        img = img.convert(mode.upper())
    else:  # CMYK, YCbCr, LAB, HSV, 16-bit RGB...
        try:
            img = img.convert("RGB")
        except ValueError as e:
            raise ImageError(f"{mode} images are not supported ({e})") from None
        notices.append(f"{mode} image converted to RGB")
    mode = img.mode
    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"image has no pixels ({a.shape[1]}x{a.shape[0]})")
    return LoadedImage(np.ascontiguousarray(a), mode, notices)


def from_array(a: np.ndarray) -> LoadedImage:
    """uint8 (H, W), (H, W, 1|2|3|4) or float in [0, 1] -> LoadedImage."""
    a = np.asarray(a)
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            if not np.isfinite(a).all():
                raise ImageError("image array holds non-finite values")
            a = np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
        else:
            raise ImageError(f"image arrays must be uint8 or float in [0, 1], not {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"image array must be (H, W) or (H, W, 1..4), got {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"image has no pixels ({a.shape[1]}x{a.shape[0]})")
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    return LoadedImage(np.ascontiguousarray(a), mode)


def as_loaded(image) -> LoadedImage:
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, Image.Image):
        return from_pil(image)
    if isinstance(image, (str, Path)):
        return load_image(image)
    return from_array(image)


def load_image(path: str | Path) -> LoadedImage:
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > MAX_INPUT_PIXELS:
                    raise ImageError(f"{path}: {w}x{h} exceeds the {MAX_INPUT_PIXELS}-pixel limit")
                img.load()
                return from_pil(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: refused as too large ({e})") from None
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to decode this image") from None
    except Exception as e:  # Pillow's decoders raise many types on damaged files
        raise ImageError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from None


def to_pil(pixels: np.ndarray, mode: str) -> Image.Image:
    a = pixels[:, :, 0] if mode == "L" else pixels
    return Image.fromarray(np.ascontiguousarray(a), mode)


def output_format(path: str | Path) -> str:
    ext = Path(path).suffix.lower()
    if ext not in _EXT_FORMATS:
        raise ImageError(f"cannot tell the image format from {str(path)!r}: use one of "
                         + ", ".join(sorted(_EXT_FORMATS)))
    return _EXT_FORMATS[ext]


def save_image(img: Image.Image, path: str | Path, *, force: bool = False) -> None:
    """Write atomically; the format comes from the extension."""
    fmt = output_format(path)
    if fmt not in _ALPHA_FORMATS and img.mode in ("LA", "RGBA"):
        raise ImageError(f"{fmt} cannot store the alpha channel of this {img.mode} image; "
                         "write PNG, WebP or TIFF instead")
    kwargs = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    with atomic_output(Path(path), force) as tmp:
        try:
            img.save(tmp, format=fmt, **kwargs)
        except (ValueError, KeyError) as e:  # Pillow's way of refusing a mode or size
            raise ImageError(f"cannot write {img.mode} {img.width}x{img.height} as {fmt}: "
                             f"{e}") from None


# -- outputs: temp file in the same folder, fsync, rename into place ---------------------
def check_writable(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists (use --force to overwrite)")
    if path.is_dir():
        raise InrcodecError(f"{path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InrcodecError(f"output folder {parent} does not exist")


def _new_file_mode(path: Path) -> int:
    """What a plain open() would give: the mode of the file replaced, else 0o666 less umask."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: Path, force: bool = False):
    """Yield a temporary path; on success it replaces `path`, on any failure it is removed.

    A Ctrl-C or crash mid-write leaves no partial file behind at `path`.
    """
    path = Path(path)
    check_writable(path, force)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    except OSError as e:
        raise InrcodecError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(path))  # mkstemp makes it 0600
        if not force and path.exists():  # appeared while we worked
            raise OutputExistsError(f"{path} already exists (use --force to overwrite)")
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):  # disk full, permissions...
            raise InrcodecError(f"cannot write {path}: {e.strerror or e}") from None
        raise


def atomic_write_bytes(path: Path, data: bytes, force: bool = False) -> None:
    with atomic_output(path, force) as tmp:
        tmp.write_bytes(data)


def read_bytes(path: str | Path, max_size: int, what: str) -> bytes:
    """A regular file's bytes, refusing directories, devices, FIFOs and files over max_size."""
    path = Path(path)
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise InrcodecError(f"{path} is a directory")
        if not stat.S_ISREG(st.st_mode):  # a FIFO or /dev/zero would be read forever
            raise InrcodecError(f"{path} is not a regular file")
        if st.st_size > max_size:
            from .errors import FormatError
            raise FormatError(f"{path}: {st.st_size} bytes is larger than any valid {what}")
        return path.read_bytes()
    except FileNotFoundError:
        raise InrcodecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InrcodecError(f"{path} is a directory") from None
    except OSError as e:
        raise InrcodecError(f"cannot read {path}: {e.strerror or e}") from None


def scan_images(folder: str | Path, suffixes=IMAGE_SUFFIXES) -> list[Path]:
    """Files under `folder` (recursively) with one of `suffixes`, sorted; hidden files skipped."""
    folder = Path(folder)
    if not folder.exists():
        raise InrcodecError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise InrcodecError(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in suffixes and p.is_file() and not p.name.startswith("."))


def colour_of(img: LoadedImage) -> np.ndarray:
    """The colour channels (1 for L/LA, 3 for RGB/RGBA), uint8."""
    return img.pixels[:, :, :1] if img.image_mode in ("L", "LA") else img.pixels[:, :, :3]


def rgb_of(img: LoadedImage) -> np.ndarray:
    """The 3 channels a network fits, uint8; greyscale is replicated."""
    c = colour_of(img)
    return np.ascontiguousarray(c.repeat(3, axis=2) if c.shape[2] == 1 else c)


def alpha_plane(img: LoadedImage) -> bytes | None:
    """The raw 8-bit alpha plane a file stores losslessly (None without alpha)."""
    return np.ascontiguousarray(img.pixels[:, :, -1]).tobytes() \
        if img.image_mode in ("LA", "RGBA") else None
