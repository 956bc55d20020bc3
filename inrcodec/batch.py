"""Datasets: encode a folder (or any iterable) of images, decode a folder of .inr files,
and a torch Dataset that yields decoded images.

`encode_dataset` streams the images through the encoder in any mode (the default mode
unless told) and writes one .inr per image plus a manifest. A mode that fits several
images together (the weight mode's formats 1 and 2) gets the tiles of as many images as
fit in one batch (`batch_pixels`); packing is exact (every tile is an independent network
with its own loss, codec/weights/fit.py), so an image's file is the one `encode` would
write for it alone. The other modes encode image by image.

The output folder holds, besides the .inr files:
- ``manifest.json``: the settings (model hash, steps, seed and the mode's own) and one entry per
  encoded image (file, source, bytes, sha256, bpp, PSNR, seconds, size, mode);
- while a run is in progress, ``manifest.part-R.json`` per process R: what that process
  has finished so far, rewritten atomically after every batch. The next run (or the end
  of this one) merges them into ``manifest.json``.
A file counts as done when the manifest lists it with the same settings and the file on
disk has the recorded SHA-256: an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from . import __version__
from .api import read_inr
from .codec import decoder
from .codec.encoder import encode_images, settings_for
from .config import FitConfig
from .errors import InrcodecError
from .io import as_loaded, atomic_write_bytes, output_format, save_image, scan_images
from .model.accel import resolve_device
from .model.shared_model import ModelLike

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "inrcodec-dataset-manifest"
MANIFEST_VERSION = 1
_PART_PREFIX = "manifest.part-"


@dataclass
class Progress:
    """What a dataset run has done so far; passed to the `progress` callback."""

    done: float  # images finished in this run (fractional inside a batch)
    total: int | None  # images this run (this process) has to do; None if unknown
    skipped: int  # already done by an earlier run
    failed: int
    elapsed: float  # seconds

    @property
    def rate(self) -> float:
        """Images per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, at the rate so far (None while unknown)."""
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


ProgressCallback = Callable[[Progress], None]


@dataclass
class DatasetReport:
    """What a run did. Under torch.distributed, `encoded` and `skipped` count the whole
    run; `failed` and `entries` are this process's."""

    encoded: int = 0
    skipped: int = 0
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    manifest: Path | None = None
    entries: list[dict] = field(default_factory=list, repr=False)  # this run's, this process's

    @property
    def images_per_second(self) -> float:
        return self.encoded / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict:
        return {"encoded": self.encoded, "skipped": self.skipped, "failed": len(self.failed),
                "seconds": self.seconds, "images_per_second": self.images_per_second,
                "manifest": str(self.manifest) if self.manifest else None}


# -- sources ----------------------------------------------------------------------------------
@dataclass
class _Item:
    name: str  # output path relative to dst, without ".inr", POSIX separators
    source: str  # for the manifest and messages
    image: object  # a path, PIL image, array or LoadedImage


def _check_name(name: str) -> str:
    p = PurePosixPath(name.replace(os.sep, "/"))
    if not name or p.is_absolute() or any(part in ("", ".", "..") for part in p.parts):
        raise InrcodecError(f"invalid output name {name!r} (a relative path without '..')")
    return str(p)


def _folder_items(folder: Path) -> list[_Item]:
    paths = scan_images(folder)
    items, seen = [], {}
    for p in paths:
        rel = p.relative_to(folder)
        name = str(PurePosixPath(*rel.parts).with_suffix(""))
        if name in seen:
            raise InrcodecError(f"{seen[name]} and {rel} would both be written as {name}.inr; "
                                "rename one of them")
        seen[name] = rel
        items.append(_Item(name, str(rel), p))
    return items


def _iter_items(src) -> tuple[Iterable[_Item], int | None]:
    """Items of a folder (sorted) or of an iterable of paths or (name, image) pairs."""
    if isinstance(src, (str, Path)):
        items = _folder_items(Path(src))
        return items, len(items)

    def gen() -> Iterator[_Item]:
        seen = set()
        for x in src:
            if isinstance(x, tuple) and len(x) == 2:
                name, image = _check_name(str(x[0])), x[1]
                source = str(image) if isinstance(image, (str, Path)) else name
            elif isinstance(x, (str, Path)):
                name, image, source = Path(x).stem, x, str(x)
            else:
                raise InrcodecError("an image source must be a folder, or an iterable of paths "
                                    "or of (name, image) pairs")
            if name in seen:
                raise InrcodecError(f"two images would both be written as {name}.inr")
            seen.add(name)
            yield _Item(name, source, image)
    try:
        total = len(src)
    except TypeError:
        total = None
    return gen(), total


# -- the manifest ---------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InrcodecError(f"cannot read {path}: {e}") from None
    if not isinstance(d, dict) or not isinstance(d.get("images", []), list):
        raise InrcodecError(f"{path} is not an inrcodec dataset manifest")
    return d


def _write_json(path: Path, d: dict) -> None:
    atomic_write_bytes(path, (json.dumps(d, indent=1, sort_keys=True) + "\n").encode(), force=True)


def _totals(entries: list[dict]) -> dict:
    n = len(entries)
    psnrs = [e["psnr"] for e in entries if e.get("psnr") is not None]
    return {"images": n, "bytes": sum(e["bytes"] for e in entries),
            "mean_bpp": sum(e["bpp"] for e in entries) / n if n else None,
            "mean_psnr": sum(psnrs) / len(psnrs) if psnrs else None,
            "seconds": sum(e["seconds"] for e in entries)}


def _part_files(dst: Path) -> list[Path]:
    return sorted(dst.glob(_PART_PREFIX + "*.json"))


def merge_manifest(dst: str | Path, settings: dict | None = None, force: bool = False) -> dict:
    """Fold the per-process partial manifests in `dst` into manifest.json; return it.

    Entries are keyed by file; a later success replaces an earlier failure. With
    `settings` given, a manifest or part made with other settings is an error (or, with
    `force`, discarded).
    """
    dst = Path(dst)
    sources = ([dst / MANIFEST] if (dst / MANIFEST).exists() else []) + _part_files(dst)
    images: dict[str, dict] = {}
    failed: dict[str, dict] = {}
    current = settings
    for f in sources:
        d = _read_json(f)
        if current is None:
            current = d.get("settings")
        if d.get("settings") != current:
            if not force:
                raise InrcodecError(
                    f"{dst} holds a dataset encoded with other settings ({f.name}: "
                    f"{d.get('settings')}); use --force to re-encode it with "
                    f"{current}")
            continue
        for e in d.get("images", []):
            images[e["file"]] = e
            failed.pop(e["source"], None)
        for e in d.get("failed", []):
            failed[e["source"]] = e
    entries = [images[k] for k in sorted(images)]
    merged = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "settings": current,
              "inrcodec": __version__, "images": entries,
              "failed": [failed[k] for k in sorted(failed)], "totals": _totals(entries)}
    if sources or settings is not None:
        _write_json(dst / MANIFEST, merged)
    for f in _part_files(dst):
        f.unlink()
    return merged


def check_manifest(dst: str | Path) -> list[str]:
    """Problems between manifest.json and the .inr files in `dst` (an empty list if none)."""
    dst = Path(dst)
    d = _read_json(dst / MANIFEST)
    problems = []
    listed = set()
    for e in d["images"]:
        f = dst / e["file"]
        listed.add(e["file"])
        if not f.is_file():
            problems.append(f"{e['file']}: listed but missing")
        elif f.stat().st_size != e["bytes"] or _sha256(f) != e["sha256"]:
            problems.append(f"{e['file']}: contents differ from the manifest")
    for f in sorted(dst.rglob("*.inr")):
        rel = str(PurePosixPath(*f.relative_to(dst).parts))
        if rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    if d.get("totals") != _totals(d["images"]):
        problems.append("totals do not add up")
    return problems


# -- encoding -----------------------------------------------------------------------------------------
def batch_pixels_for(arch, device: torch.device, memory_fraction: float = 0.5) -> int:
    """Pixels to fit in one batch: a GPU's free memory, else FitConfig's bound.

    On a GPU the whole batch runs as one pass (that is what fills the device). A fit step
    keeps, per pixel and hidden layer, the pre-activation and the activation (and autograd
    a copy for the backward), 4 bytes each; the estimate uses the dense widths, an upper
    bound for the compact path.
    """
    if device.type != "cuda":
        return FitConfig.max_batch_pixels
    free, _ = torch.cuda.mem_get_info(device)
    per_pixel = 4 * (3 * arch.depth * arch.width + 32)
    tiles_px = int(free * memory_fraction) // per_pixel
    # at least one 128x128 tile's worth, whatever the estimate says
    return int(min(max(tiles_px, 1 << 14), 1 << 26))


def encode_dataset(src, dst: str | Path, *, mode: str | None = None, model: ModelLike = None,
                   quality: int | None = None, bpp: float | None = None,
                   psnr: float | None = None, level: int | None = None,
                   steps: int | None = None, effort: str | None = None, seed: int = 0,
                   preset: str | None = None, format_version: int | None = None,
                   lr: float | None = None, quantizer: str | None = None,
                   step_scale: float | None = None, coder: str | None = None,
                   device: str | torch.device | None = None, batch_pixels: int | None = None,
                   force: bool = False, progress: ProgressCallback | None = None,
                   dist=None) -> DatasetReport:
    """Encode every image of `src` into `dst`/<name>.inr and keep `dst`/manifest.json.

    `src`: a folder (searched recursively; a/b.png becomes a/b.inr) or an iterable of image
    paths or of (name, image) pairs (image: a path, PIL image or uint8 array).
    The options are `encode`'s (the same default mode), and each image's file is the one
    `encode` writes for it alone (a mode that fits several images together packs a batch
    of them; everything else is decided per image). Images already in the manifest with
    the same settings are skipped, so running the same command again resumes an
    interrupted run. `force` re-encodes everything (and overwrites). `dist`
    (distributed.DataParallel) deals the work out across processes.
    """
    t_start = time.perf_counter()
    md, opts = settings_for(mode, effort=effort, preset=preset, format_version=format_version,
                            steps=steps, quality=quality, bpp=bpp, psnr=psnr, level=level,
                            seed=seed, lr=lr, quantizer=quantizer, step_scale=step_scale,
                            coder=coder)
    m = md.load_model(model)
    opts.check(m)
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise InrcodecError(f"{dst} exists and is not a folder")
    rank, world = (dist.rank, dist.world_size) if dist is not None else (0, 1)
    writer = rank == 0
    dev = dist.device(device) if dist is not None else resolve_device(device)
    settings = {"model_hash": m.hash, "seed": seed, "steps": opts.steps, **opts.manifest(m)}
    items, total_all = _iter_items(src)

    # Rank 0 folds what an interrupted run left into manifest.json; then all ranks read it.
    if writer:
        dst.mkdir(parents=True, exist_ok=True)
        had_manifest = (dst / MANIFEST).exists() or bool(_part_files(dst))
        if not had_manifest and not force and any(dst.rglob("*.inr")):
            raise InrcodecError(f"{dst} already holds .inr files that no manifest describes "
                                "(use --force to overwrite them, or another folder)")
        merge_manifest(dst, settings, force=force)
    if dist is not None:
        dist.barrier()
    manifest = _read_json(dst / MANIFEST)
    done = {} if force else {e["file"]: e for e in manifest["images"]}
    if dist is not None:
        dist.barrier()  # every rank has read the manifest before any rank writes a part
    part_path = dst / f"{_PART_PREFIX}{rank}.json"

    def is_done(item: _Item) -> bool:
        e = done.get(item.name + ".inr")
        f = dst / (item.name + ".inr")
        return e is not None and f.is_file() and f.stat().st_size == e["bytes"] \
            and _sha256(f) == e["sha256"]

    # The work still to do, dealt out across ranks (every rank sees the same list).
    report = DatasetReport(manifest=dst / MANIFEST)
    if total_all is not None:
        pending_all = [it for it in items if not is_done(it)]
        report.skipped = total_all - len(pending_all)
        mine: Iterable[_Item] = pending_all[rank::world]
        total = len(pending_all[rank::world])
    else:
        def mine_gen():
            k = 0
            for it in items:
                if is_done(it):
                    report.skipped += 1
                    continue
                if k % world == rank:
                    yield it
                k += 1
        mine, total = mine_gen(), None

    batched = md.encode_batch is not None and opts.target is None
    if batched and batch_pixels is None:
        batch_pixels = batch_pixels_for(m.arch, dev)
    entries: list[dict] = []
    failed: list[dict] = []

    def write_part():
        _write_json(part_path, {"settings": settings, "images": entries, "failed": failed})

    def notify(extra: float = 0.0):
        if progress is not None:
            progress(Progress(done=report.encoded + extra, total=total, skipped=report.skipped,
                              failed=len(failed), elapsed=time.perf_counter() - t_start))

    def flush(batch: list[tuple[_Item, object]]):
        if not batch:
            return

        def fit_progress(d, t, _loss):
            notify(len(batch) * d / max(t, 1))
        try:
            reports = encode_images([img for _, img in batch], md, m, opts, device=dev,
                                    max_batch_pixels=batch_pixels or FitConfig.max_batch_pixels,
                                    progress=fit_progress if progress is not None else None)
        except InrcodecError as e:
            for item, _ in batch:
                failed.append({"source": item.source, "error": str(e)})
            write_part()
            return
        for (item, _), r in zip(batch, reports):
            try:
                out = dst / (item.name + ".inr")
                out.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(out, r.data, force=True)
            except InrcodecError as e:
                failed.append({"source": item.source, "error": str(e)})
                continue
            entries.append({
                "file": item.name + ".inr", "source": item.source, "bytes": r.bytes,
                "sha256": hashlib.sha256(r.data).hexdigest(), "bpp": r.bpp,
                "psnr": None if math.isinf(r.psnr) else r.psnr, "seconds": r.seconds,
                "width": r.width, "height": r.height, "mode": r.mode, "tiles": r.tiles,
                "level": r.level, "quality": r.quality, "notices": r.notices})
            report.encoded += 1
        write_part()
        notify()

    # A batched mode packs the tiles of several images into one fit; rate searches (bpp,
    # psnr) and the other modes work image by image.
    batch, batch_px = [], 0
    notify()
    for item in mine:
        try:
            img = as_loaded(item.image)
            h, w = img.pixels.shape[:2]
        except InrcodecError as e:
            failed.append({"source": item.source, "error": str(e)})
            write_part()
            continue
        px = -(-h // m.tile) * -(-w // m.tile) * m.tile ** 2 if batched else 0
        if batch and (not batched or batch_px + px > batch_pixels):
            flush(batch)
            batch, batch_px = [], 0
        batch.append((item, img))
        batch_px += px
    flush(batch)
    write_part()
    report.entries, report.failed = entries, failed
    if dist is not None:
        # run-wide counts (each rank reports its own failures); also a barrier
        report.encoded, report.skipped = dist.sum_counts([report.encoded, report.skipped])
        report.skipped //= world  # every rank counted the same skipped images
    if writer:
        merge_manifest(dst, settings)
    if dist is not None:
        dist.barrier()
    report.seconds = time.perf_counter() - t_start
    return report


# -- decoding -------------------------------------------------------------------------------------
def decode_dataset(src: str | Path, dst: str | Path, *, format: str = "png",
                   size: tuple[int, int] | None = None, scale: float | None = None,
                   model: ModelLike = None, device: str | torch.device | None = None,
                   force: bool = False, progress: ProgressCallback | None = None,
                   dist=None) -> DatasetReport:
    """Decode every .inr under `src` to `dst`/<same relative path>.<format>.

    Outputs that already exist are skipped (a rerun resumes), or replaced with `force`.
    """
    t_start = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise InrcodecError(f"{src} is not a folder")
    fmt = format.lower().lstrip(".")
    output_format(f"x.{fmt}")  # an unknown format or bad size fails before any work
    if size is not None and scale is not None:
        raise InrcodecError("give a size or a scale, not both")
    files = sorted(p for p in src.rglob("*.inr") if p.is_file())
    rank, world = (dist.rank, dist.world_size) if dist is not None else (0, 1)
    dev = dist.device(device) if dist is not None else resolve_device(device)
    outs = [dst / p.relative_to(src).with_suffix("." + fmt) for p in files]
    report = DatasetReport()
    todo = []
    for f, o in zip(files, outs):
        if o.exists() and not force:
            report.skipped += 1
        else:
            todo.append((f, o))
    todo = todo[rank::world]
    for f, o in todo:
        if progress is not None:
            progress(Progress(report.encoded, len(todo), report.skipped, len(report.failed),
                              time.perf_counter() - t_start))
        t0 = time.perf_counter()
        try:
            data = read_inr(f)
            img = decoder.decode_image(data, size, scale=scale, model=model, device=dev)
            o.parent.mkdir(parents=True, exist_ok=True)
            save_image(img, o, force=True)
        except InrcodecError as e:
            report.failed.append({"source": str(f.relative_to(src)), "error": str(e)})
            continue
        report.encoded += 1
        report.entries.append({"file": str(o.relative_to(dst)), "source": str(f.relative_to(src)),
                               "width": img.width, "height": img.height,
                               "seconds": time.perf_counter() - t0})
    if progress is not None:
        progress(Progress(report.encoded, len(todo), report.skipped, len(report.failed),
                          time.perf_counter() - t_start))
    if dist is not None:  # run-wide count (each rank reports its own failures); a barrier
        (report.encoded,) = dist.sum_counts([report.encoded])
    report.seconds = time.perf_counter() - t_start
    return report


# -- a torch Dataset of .inr files ------------------------------------------------------------------
class InrDataset(torch.utils.data.Dataset):
    """Decoded images from .inr files, for training pipelines.

    `root`: a folder (searched recursively) or a list of .inr paths. Items are float
    tensors (C, H, W) in [0, 1] (or uint8 with `dtype=torch.uint8`), C = 1, 2, 3 or 4 as
    stored, rendered at the stored size, at `size` = (W, H), at `size` = n (the shorter side
    n, aspect kept) or at `scale`: the network is continuous, so any resolution works, and
    `decode(i, size)` renders one item at a size of its own. `transform` is applied to each tensor.
    The shared model is loaded once per process (DataLoader workers included).
    """

    def __init__(self, root, *, model: ModelLike = None,
                 size: tuple[int, int] | int | None = None,
                 scale: float | None = None, dtype: torch.dtype = torch.float32,
                 transform: Callable | None = None, device: str = "cpu"):
        if isinstance(root, (str, Path)):
            root = Path(root)
            if not root.is_dir():
                raise InrcodecError(f"{root} is not a folder")
            self.paths = sorted(p for p in root.rglob("*.inr") if p.is_file())
        else:
            self.paths = [Path(p) for p in root]
        self.model = str(model) if isinstance(model, Path) else model
        self.size, self.scale, self.dtype = size, scale, dtype
        self.transform, self.device = transform, device

    def __len__(self) -> int:
        return len(self.paths)

    def decode(self, index: int, size: tuple[int, int] | int | None = None,
               scale: float | None = None) -> torch.Tensor:
        """Item `index` at a resolution of its own."""
        arr = decoder.decode_array(read_inr(self.paths[index]), size, scale=scale,
                                   model=self.model, device=self.device)
        t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        if self.dtype != torch.uint8:
            t = t.to(self.dtype) / 255.0
        return self.transform(t) if self.transform is not None else t

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.decode(index, self.size, self.scale)
