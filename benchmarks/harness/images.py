"""Images for the benchmarks: the development photos, quick crops, files and folders."""
from __future__ import annotations

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


def dev_set(n: int | None = None) -> list[tuple[str, np.ndarray]]:
    """The development photos (768x512 Kodak-like PNGs; never used for training).

    With n, n photos spread evenly over the sorted list (so every source is represented).
    """
    from inrcodec.errors import DatasetError
    from inrcodec.training.data import build_dev_set, cache_dir

    try:
        paths = sorted(build_dev_set(cache_dir() / "devset"))
    except DatasetError as e:
        raise BenchError(f"development set unavailable: {e}") from None
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


def load_images(spec: str) -> list[tuple[str, np.ndarray]]:
    """`dev` (all), `dev:N` (N spread over the set), `quick`, or comma-separated files/folders."""
    if spec == "dev":
        return dev_set()
    if spec.startswith("dev:"):
        try:
            n = int(spec[4:])
        except ValueError:
            raise BenchError(f"--images {spec}: expected dev:N with N a number") from None
        return dev_set(n)
    if spec == "quick":
        return quick_images()
    from inrcodec.io import IMAGE_SUFFIXES

    out = []
    for part in filter(None, spec.split(",")):
        p = Path(part)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise BenchError(f"no images in folder {p}")
            out += [(f.name, _rgb(f)) for f in files]
        elif p.is_file():
            out.append((p.name, _rgb(p)))
        else:
            raise BenchError(f"--images: {p} is not a file or folder (or dev, dev:N, quick)")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise BenchError("--images: two images share a file name; rows are keyed by name")
    return out

