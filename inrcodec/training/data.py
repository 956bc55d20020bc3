"""Offline photo datasets: Debian-packaged photographs, Kodak-like dev set, crops.

No internet is assumed beyond Debian's package repositories.  Photographs are
obtained with ``apt-get download`` + ``dpkg-deb -x`` (nothing is installed) and
cached under :func:`cache_dir`.

* training set: ``endless-sky`` (273 landscape/city photos, 720x360 JPEG).
* development/evaluation set: ``mate-backgrounds`` + ``palapeli`` +
  ``gnome-faces``; never used for training.

Everything here is numpy + Pillow only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from ..errors import DatasetError, ImageError
from ..io import IMAGE_SUFFIXES, atomic_output, from_pil, load_image, scan_images, to_pil

__all__ = [
    "BUILDERS",
    "build_dev_set",
    "cache_dir",
    "centre_crops",
    "dev_photos",
    "fetch_debian_package",
    "image_paths",
    "kodak_like",
    "random_crops",
    "training_photos",
]


# name -> (Debian package, glob relative to the package's extraction root).
# Symlinks matching a glob are skipped: in gnome-control-center-data, faces/*.jpg
# also matches symlinks to 96x96 legacy icons next to the 15 real 512x512 photos.
BUILDERS: dict[str, tuple[str, str]] = {
    "endless-sky": ("endless-sky-data", "usr/share/games/endless-sky/images/land/*.jpg"),
    "mate-backgrounds": ("mate-backgrounds", "usr/share/backgrounds/mate/nature/*.jpg"),
    "palapeli": ("palapeli-data", "usr/share/palapeli/collection/*.jpg"),
    "gnome-faces": ("gnome-control-center-data", "usr/share/pixmaps/faces/*.jpg"),
}

TRAINING_BUILDERS = ("endless-sky",)
DEV_BUILDERS = ("mate-backgrounds", "palapeli", "gnome-faces")


KODAK_SIZE = (768, 512)  # landscape (width, height); portrait is transposed

_STAMP = ".inrcodec-complete"
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_DOWNLOAD_TIMEOUT = 900
_UPDATE_TIMEOUT = 600
_EXTRACT_TIMEOUT = 300


# --------------------------------------------------------------------------- cache / apt


def cache_dir() -> Path:
    """``$INRCODEC_CACHE`` if set (and non-empty), else ``~/.cache/inrcodec``."""
    env = os.environ.get("INRCODEC_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "inrcodec"


def _tail(text: str | bytes | None, lines: int = 15) -> str:
    if not text:
        return "(no output)"
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _run(cmd: list[str], *, cwd: Path | None, timeout: float) -> subprocess.CompletedProcess:
    """Run a command; only spawn/timeout problems raise, a non-zero exit does not."""
    env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise DatasetError(f"{cmd[0]} is not available on this machine: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise DatasetError(
            f"`{' '.join(cmd)}` timed out after {timeout:.0f} s; last output:\n{_tail(exc.stderr)}"
        ) from exc


def fetch_debian_package(package: str, *, cache: Path | None = None) -> Path:
    """Download and unpack one Debian package (not installed) and return its root.

    The package lands in ``<cache>/debian/<package>/`` (``cache`` defaults to
    :func:`cache_dir`), so e.g. ``/usr/share/x`` is at ``<root>/usr/share/x``.
    Extraction happens in a temporary directory inside the cache and the tree
    is moved into place only once complete, with a stamp file inside it; a tree
    without the stamp is discarded and fetched again.  If ``apt-get download``
    fails (typically stale or empty package lists), ``apt-get update`` is run
    once and the download retried.

    Raises DatasetError if apt-get/dpkg-deb are missing or fail.
    """
    if not _PACKAGE_RE.match(package):
        raise DatasetError(f"invalid Debian package name: {package!r}")
    base = (Path(cache) if cache is not None else cache_dir()) / "debian"
    dest = base / package
    if (dest / _STAMP).is_file():
        return dest

    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DatasetError(
                f"cannot fetch Debian package {package!r}: `{tool}` is not available "
                "(a Debian/Ubuntu system with apt is needed; or pass a folder of images instead)"
            )

    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{package}-", dir=base))
    try:
        deb = _apt_download(package, tmp)
        tree = tmp / "tree"
        res = _run(["dpkg-deb", "-x", str(deb), str(tree)], cwd=tmp, timeout=_EXTRACT_TIMEOUT)
        if res.returncode != 0:
            raise DatasetError(
                f"`dpkg-deb -x {deb.name}` failed (exit {res.returncode}):\n{_tail(res.stderr)}"
            )
        (tree / _STAMP).write_text(deb.name + "\n")
        if dest.exists():
            # Left over from an interrupted run that predates the stamp; never reuse it.
            shutil.rmtree(dest)
        try:
            os.replace(tree, dest)
        except OSError as exc:
            # Another process may have finished the same package meanwhile.
            if not (dest / _STAMP).is_file():
                raise DatasetError(f"cannot move extracted {package!r} into {dest}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _apt_download(package: str, workdir: Path) -> Path:
    """``apt-get download`` into workdir, with one ``apt-get update`` retry; returns the .deb."""
    res = _run(["apt-get", "download", package], cwd=workdir, timeout=_DOWNLOAD_TIMEOUT)
    if res.returncode != 0:
        first_err = _tail(res.stderr)
        upd = _run(["apt-get", "update"], cwd=workdir, timeout=_UPDATE_TIMEOUT)
        if upd.returncode != 0:
            raise DatasetError(
                f"`apt-get download {package}` failed:\n{first_err}\n"
                f"and `apt-get update` (needed to refresh package lists; requires root) "
                f"failed too (exit {upd.returncode}):\n{_tail(upd.stderr)}"
            )
        res = _run(["apt-get", "download", package], cwd=workdir, timeout=_DOWNLOAD_TIMEOUT)
        if res.returncode != 0:
            raise DatasetError(
                f"`apt-get download {package}` failed even after `apt-get update` "
                f"(exit {res.returncode}):\n{_tail(res.stderr)}"
            )
    debs = sorted(workdir.glob("*.deb"))
    if len(debs) != 1:
        raise DatasetError(
            f"`apt-get download {package}` succeeded but left {len(debs)} .deb files in {workdir}"
        )
    return debs[0]


# --------------------------------------------------------------------------- image lists


def _builder_paths(name: str) -> list[Path]:
    package, pattern = BUILDERS[name]
    root = fetch_debian_package(package)
    paths = sorted(p for p in root.glob(pattern) if p.is_file() and not p.is_symlink())
    if not paths:
        raise DatasetError(
            f"dataset {name!r}: package {package!r} was extracted to {root} "
            f"but no files match {pattern!r} (has the package layout changed?)"
        )
    return paths


def image_paths(source: str | Path) -> list[Path]:
    """Image files of a dataset, sorted.

    ``source`` is either a builder name (a key of :data:`BUILDERS`, given as a
    ``str``; the package is fetched if needed) or a folder, searched
    recursively for files with a suffix in :data:`IMAGE_SUFFIXES` (any case).
    A ``str`` equal to a builder name always means the builder; pass a
    ``Path`` (or ``"./name"``) for a local folder of that name.
    """
    if isinstance(source, str) and source in BUILDERS:
        return _builder_paths(source)
    folder = Path(source).expanduser()
    if not folder.exists():
        if isinstance(source, str) and os.sep not in source and "/" not in source:
            raise DatasetError(
                f"{source!r} is neither an existing folder nor a dataset name "
                f"(known datasets: {', '.join(sorted(BUILDERS))})"
            )
        raise DatasetError(f"image folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise DatasetError(f"{str(folder)!r} is not a folder (expected a folder of images)")
    paths = scan_images(folder)
    if not paths:
        raise DatasetError(
            f"no images found in {str(folder)!r} "
            f"(looked recursively for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return paths


def training_photos() -> list[Path]:
    """The meta-training photographs (endless-sky)."""
    return [p for name in TRAINING_BUILDERS for p in image_paths(name)]


def dev_photos() -> list[Path]:
    """The development/evaluation photographs (mate-backgrounds, palapeli, gnome-faces).

    Never used for training.
    """
    return [p for name in DEV_BUILDERS for p in image_paths(name)]


# --------------------------------------------------------------------------- image ops


def _open_rgb(path: Path) -> Image.Image:
    """Decode an image fully, EXIF-transposed and in RGB; DatasetError if unreadable."""
    try:
        img = load_image(path)
    except ImageError as exc:
        raise DatasetError(f"cannot read image {str(path)!r}: {exc}") from None
    return to_pil(img.pixels, img.image_mode).convert("RGB")


def kodak_like(img: Image.Image) -> Image.Image:
    """Turn a photograph into a Kodak-like 768x512 (or 512x768) RGB image.

    Steps: apply the EXIF orientation, convert to RGB, centre-crop the largest
    exactly-3:2 window (2:3 when the image is taller than wide; square sources
    count as landscape), then downscale with Lanczos to 768x512 (512x768
    portrait).

    Sources whose 3:2 crop is smaller than the target are *not* upscaled: they
    are returned at the crop's own size (e.g. a 512x512 face gives 510x340).
    Upscaling would only invent detail and make the images unrepresentative.
    """
    loaded = from_pil(img)
    img = to_pil(loaded.pixels, loaded.image_mode).convert("RGB")
    w, h = img.size
    portrait = h > w
    # Crop is (3k x 2k) landscape or (2k x 3k) portrait, the largest that fits.
    k = min(h // 3, w // 2) if portrait else min(w // 3, h // 2)
    if k < 1:
        raise DatasetError(f"image of size {w}x{h} is too small for a 3:2 crop")
    cw, ch = (2 * k, 3 * k) if portrait else (3 * k, 2 * k)
    left, top = (w - cw) // 2, (h - ch) // 2
    crop = img.crop((left, top, left + cw, top + ch))
    target = KODAK_SIZE[::-1] if portrait else KODAK_SIZE
    if cw > target[0]:
        return crop.resize(target, Image.Resampling.LANCZOS)
    return crop


def build_dev_set(out_dir: Path, *, force: bool = False) -> list[Path]:
    """Write Kodak-like PNGs of :func:`dev_photos` into ``out_dir``.

    Files are named ``<builder>-<stem>.png`` (the builder is recognised from the
    ``debian/<package>/`` part of the source path, falling back to the source's
    parent folder name).  Each file is written to a temporary name and then
    renamed, so an interrupted run never leaves a truncated PNG.  Existing
    files are kept unless ``force``.  Returns the output paths in
    :func:`dev_photos` order.
    """
    out_dir = Path(out_dir)
    sources = dev_photos()
    targets: dict[str, Path] = {}
    for src in sources:
        name = f"{_builder_of(src)}-{src.stem}.png"
        if name in targets:
            raise DatasetError(f"two dev photos map to the same output {name!r}: "
                               f"{targets[name]} and {src}")
        targets[name] = src
    out_dir.mkdir(parents=True, exist_ok=True)

    written = []
    for name, src in targets.items():
        out = out_dir / name
        if force or not out.exists():
            _write_png_atomic(kodak_like(_open_rgb(src)), out)
        written.append(out)
    return written


def _builder_of(path: Path) -> str:
    by_package = {pkg: name for name, (pkg, _) in BUILDERS.items()}
    parts = Path(path).parts
    for i in range(len(parts) - 1, 0, -1):
        if parts[i - 1] == "debian" and parts[i] in by_package:
            return by_package[parts[i]]
    return Path(path).parent.name or "image"


def _write_png_atomic(img: Image.Image, out: Path) -> None:
    with atomic_output(out, force=True) as tmp, open(tmp, "wb") as f:
        img.save(f, format="PNG")


# --------------------------------------------------------------------------- crops


def _load_array(path: Path) -> np.ndarray:
    return np.asarray(_open_rgb(path), dtype=np.uint8)


def _resize(arr: np.ndarray, size: int) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(arr))
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def _check_paths_size(paths: Iterable[Path | str], size: int) -> list[Path]:
    paths = [Path(p) for p in paths]
    if not paths:
        raise DatasetError("no image paths given")
    if int(size) != size or size < 1:
        raise DatasetError(f"crop size must be a positive integer, got {size!r}")
    return paths


def random_crops(
    paths: Sequence[Path | str],
    size: int,
    n: int,
    *,
    seed: int,
    scale_range: tuple[float, float] = (0.5, 1.0),
) -> np.ndarray:
    """``n`` random square crops, float32 in [0, 1], shape ``(n, size, size, 3)``.

    Per crop: pick an image uniformly, pick a square window whose side is a
    uniform fraction in ``scale_range`` of the image's shorter side at a uniform
    position, resize it to ``size`` x ``size`` with Lanczos (downscaling hides
    the sources' JPEG artifacts), and flip it horizontally with probability
    1/2.  Each source is decoded at most once per call.  Deterministic for a
    given ``seed`` and ``paths``.
    """
    paths = _check_paths_size(paths, size)
    lo, hi = scale_range
    if not 0.0 < lo <= hi <= 1.0:
        raise DatasetError(f"scale_range must satisfy 0 < low <= high <= 1, got {scale_range!r}")
    if n < 0:
        raise DatasetError(f"number of crops must be >= 0, got {n}")

    rng = np.random.default_rng(seed)
    decoded: dict[int, np.ndarray] = {}
    out = np.empty((n, size, size, 3), dtype=np.float32)
    for i in range(n):
        idx = int(rng.integers(len(paths)))
        if idx not in decoded:
            decoded[idx] = _load_array(paths[idx])
        arr = decoded[idx]
        h, w = arr.shape[:2]
        short = min(h, w)
        side = int(np.clip(round(short * rng.uniform(lo, hi)), 1, short))
        y = int(rng.integers(h - side + 1))
        x = int(rng.integers(w - side + 1))
        crop = _resize(arr[y : y + side, x : x + side], size)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = crop
    out /= 255.0
    return out


def centre_crops(paths: Sequence[Path | str], size: int) -> np.ndarray:
    """Largest centred square of each image, Lanczos-resized to ``size``.

    Returns float32 in [0, 1] of shape ``(len(paths), size, size, 3)``.
    """
    paths = _check_paths_size(paths, size)
    out = np.empty((len(paths), size, size, 3), dtype=np.float32)
    for i, path in enumerate(paths):
        arr = _load_array(path)
        h, w = arr.shape[:2]
        side = min(h, w)
        y, x = (h - side) // 2, (w - side) // 2
        out[i] = _resize(arr[y : y + side, x : x + side], size)
    out /= 255.0
    return out
