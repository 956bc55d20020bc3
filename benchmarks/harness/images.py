"""Images for the benchmarks: the development photos, quick crops, files and folders."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from inrcodec.metrics import ms_ssim_min_side

from .schema import BenchError


def _rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise BenchError(f"cannot read image {path}: {e}") from None


def dev_paths() -> list[Path]:
    """The development photos' files (built into the cache on first use), sorted."""
    from inrcodec.errors import DatasetError
    from inrcodec.training.data import build_dev_set, cache_dir

    try:
        return sorted(build_dev_set(cache_dir() / "devset"))
    except DatasetError as e:
        raise BenchError(f"development set unavailable: {e}") from None


def dev_set(n: int | None = None) -> list[tuple[str, np.ndarray]]:
    """The development photos (768x512 Kodak-like PNGs; never used for training).

    With n, n photos spread evenly over the sorted list (so every source is represented).
    """
    paths = dev_paths()
    if n is not None:
        if not 1 <= n <= len(paths):
            raise BenchError(f"dev:{n}: the development set has {len(paths)} photos")
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, n).round().astype(int)]
    return [(p.name, _rgb(p)) for p in paths]


def dev_images(n: int, crop: int | None = None) -> list[tuple[str, np.ndarray]]:
    """n development photos spread over the set (dev_set(n)), each optionally cut to its
    centred crop x crop square. The names stay the photos' own."""
    images = dev_set(n)
    if crop:
        images = [(name, centre_crop(a, crop)) for name, a in images]
    return images


def centre_crop(a: np.ndarray, side: int) -> np.ndarray:
    h, w = a.shape[:2]
    c = min(side, h, w)
    y, x = (h - c) // 2, (w - c) // 2
    return np.ascontiguousarray(a[y:y + c, x:x + c])


def quick_images(side: int = ms_ssim_min_side()) -> list[tuple[str, np.ndarray]]:
    """Two small real photos bundled with scikit-image (offline), centre crops for speed."""
    from skimage import data

    return [(f"{name}-{side}.png", centre_crop(getattr(data, name)()[:, :, :3], side))
            for name in ("astronaut", "coffee")]


def _dev_photo(part: str, paths: list[Path]) -> tuple[str, np.ndarray]:
    """`dev:NAME` (NAME with or without .png): that development photo."""
    name = part[4:]
    if not name:
        raise BenchError(f"--images {part}: expected dev:N or dev:NAME")
    found = [p for p in paths if name in (p.name, p.stem)]
    if not found:
        raise BenchError(f"--images {part}: no development photo named {name}")
    return found[0].name, _rgb(found[0])


def load_images(spec: str) -> list[tuple[str, np.ndarray]]:
    """`dev` (all), `dev:N` (N spread over the set), `quick`, or comma-separated parts, each
    a file, a folder or `dev:NAME` (one development photo by name, as recorded commands
    write the photos' cache paths)."""
    if spec == "dev":
        return dev_set()
    if re.fullmatch(r"dev:-?[0-9]+", spec):
        return dev_set(int(spec[4:]))
    if spec == "quick":
        return quick_images()
    from inrcodec.io import IMAGE_SUFFIXES

    out, paths = [], None
    for part in filter(None, spec.split(",")):
        p = Path(part)
        if part.startswith("dev:"):
            paths = dev_paths() if paths is None else paths
            out.append(_dev_photo(part, paths))
        elif p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise BenchError(f"no images in folder {p}")
            out += [(f.name, _rgb(f)) for f in files]
        elif p.is_file():
            out.append((p.name, _rgb(p)))
        else:
            raise BenchError(f"--images: {p} is not a file or folder (or dev, dev:N, dev:NAME, "
                             "quick)")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise BenchError("--images: two images share a file name; rows are keyed by name")
    return out

