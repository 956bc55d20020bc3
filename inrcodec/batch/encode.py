"""encode-dir: every image of a folder (or any iterable) through the encoder, in any mode
(the default mode unless told), one .inr each plus a manifest (manifest.py). A mode that
fits several images together (the weight mode's formats 1 and 2) gets the tiles of as
many images as fit in one batch (`batch_pixels`); packing is exact (every tile is an
independent network with its own loss, codec/weights/fit.py), so an image's file is the
one `encode` would write for it alone; the mode says how many pixels fit in a batch
(`Mode.batch_pixels`). The other modes encode image by image."""
from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Iterable

import torch

from ..codec.encoder import check_runtime, encode_images, settings_for
from ..codec.options import EncodeOptions
from ..errors import InrcodecError
from ..io import as_loaded, atomic_write_bytes
from ..model.accel import resolve_device
from .manifest import (MANIFEST, PART_PREFIX, merge_manifest, part_files, read_json, sha256,
                       write_json)
from .report import DatasetReport, Progress, ProgressCallback
from .sources import Item, iter_items

def encode_dataset(src, dst: str | Path, options: EncodeOptions | dict | None = None, /, *,
                   model=None, device: str | torch.device | None = None,
                   batch_pixels: int | None = None, force: bool = False,
                   progress: ProgressCallback | None = None, dist=None,
                   **more) -> DatasetReport:
    """Encode every image of `src` into `dst`/<name>.inr and keep `dst`/manifest.json.

    `src`: a folder (searched recursively; a/b.png becomes a/b.inr) or an iterable of image
    paths or of (name, image) pairs (image: a path, PIL image or uint8 array).
    The options are `encode`'s (EncodeOptions, a mapping or keywords; the same default
    mode), and each image's file is the one `encode` writes for it alone. Images already
    in the manifest with the same settings are skipped, so running the same command again
    resumes an interrupted run. `force` re-encodes everything (and overwrites). `dist`
    (distributed.DataParallel) deals the work out across processes.
    """
    t_start = time.perf_counter()
    md, opts = settings_for(EncodeOptions.of(options, **more))
    check_runtime(md, {"batch_pixels": batch_pixels})
    m = md.load_model(model)
    opts.check(m)
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise InrcodecError(f"{dst} exists and is not a folder")
    run = _Run(dst, md, m, opts, dist, force, progress, t_start)
    items, total_all = iter_items(src)
    mine, total = run.pending(items, total_all)
    dev = dist.device(device) if dist is not None else resolve_device(device)
    if md.encode_batch is not None and opts.target is None:
        run.encode_packed(mine, total, dev, batch_pixels or md.batch_pixels(m, dev))
    else:
        run.encode_each(mine, total, dev)
    return run.finish()


class _Run:
    """One encode-dir run of one process: what is done, what this process writes (its
    part of the manifest), and its report."""

    def __init__(self, dst: Path, md, m, opts, dist, force: bool,
                 progress: ProgressCallback | None, t_start: float):
        self.dst, self.md, self.m, self.opts, self.dist = dst, md, m, opts, dist
        self.progress, self.t_start = progress, t_start
        self.rank, self.world = (dist.rank, dist.world_size) if dist is not None else (0, 1)
        self.settings = {"model_hash": m.hash, "seed": opts.seed, "steps": opts.steps,
                         **opts.manifest(m)}
        self.report = DatasetReport(manifest=dst / MANIFEST)
        self.entries: list[dict] = []
        self.failed: list[dict] = []
        self.total: int | None = None
        self.part_path = dst / f"{PART_PREFIX}{self.rank}.json"
        self.done = self._read_done(force)

    def _read_done(self, force: bool) -> dict:
        """Rank 0 folds what an interrupted run left into manifest.json; then all ranks
        read it: file -> its entry (nothing with `force`)."""
        dst, dist = self.dst, self.dist
        if self.rank == 0:
            dst.mkdir(parents=True, exist_ok=True)
            had_manifest = (dst / MANIFEST).exists() or bool(part_files(dst))
            if not had_manifest and not force and any(dst.rglob("*.inr")):
                raise InrcodecError(f"{dst} already holds .inr files that no manifest "
                                    "describes (use --force to overwrite them, or another "
                                    "folder)")
            merge_manifest(dst, self.settings, force=force)
        if dist is not None:
            dist.barrier()
        manifest = read_json(dst / MANIFEST)
        if dist is not None:
            dist.barrier()  # every rank has read the manifest before any rank writes a part
        return {} if force else {e["file"]: e for e in manifest["images"]}

    def is_done(self, item: Item) -> bool:
        e = self.done.get(item.name + ".inr")
        f = self.dst / (item.name + ".inr")
        return e is not None and f.is_file() and f.stat().st_size == e["bytes"] \
            and sha256(f) == e["sha256"]

    def pending(self, items: Iterable[Item], total_all: int | None
                ) -> tuple[Iterable[Item], int | None]:
        """This process's share of the work still to do (every rank sees the same list)."""
        rank, world = self.rank, self.world
        if total_all is not None:
            pending_all = [it for it in items if not self.is_done(it)]
            self.report.skipped = total_all - len(pending_all)
            mine = pending_all[rank::world]
            return mine, len(mine)

        def mine_gen():
            k = 0
            for it in items:
                if self.is_done(it):
                    self.report.skipped += 1
                    continue
                if k % world == rank:
                    yield it
                k += 1
        return mine_gen(), None

    def notify(self, extra: float = 0.0) -> None:
        if self.progress is not None:
            self.progress(Progress(done=self.report.encoded + extra, total=self.total,
                                   skipped=self.report.skipped, failed=len(self.failed),
                                   elapsed=time.perf_counter() - self.t_start))

    def write_part(self) -> None:
        write_json(self.part_path, {"settings": self.settings, "images": self.entries,
                                    "failed": self.failed})

    def fail(self, item: Item, e: InrcodecError) -> None:
        self.failed.append({"source": item.source, "error": str(e)})

    def load(self, item: Item):
        """The item's image, or None (and a failure recorded) if it cannot be read."""
        try:
            return as_loaded(item.image)
        except InrcodecError as e:
            self.fail(item, e)
            self.write_part()
            return None

    def encode_each(self, mine: Iterable[Item], total: int | None, dev) -> None:
        self.total = total
        self.notify()
        for item in mine:
            img = self.load(item)
            if img is not None:
                self.flush([(item, img)], dev, None)

    def encode_packed(self, mine: Iterable[Item], total: int | None, dev,
                      batch_pixels: int) -> None:
        """A batched mode: the tiles of as many images as fit in batch_pixels, one fit."""
        self.total = total
        self.notify()
        batch, batch_px, tile = [], 0, self.m.tile
        for item in mine:
            img = self.load(item)
            if img is None:
                continue
            h, w = img.pixels.shape[:2]
            px = -(-h // tile) * -(-w // tile) * tile ** 2
            if batch and batch_px + px > batch_pixels:
                self.flush(batch, dev, batch_pixels)
                batch, batch_px = [], 0
            batch.append((item, img))
            batch_px += px
        if batch:
            self.flush(batch, dev, batch_pixels)

    def flush(self, batch: list[tuple[Item, object]], dev, batch_pixels: int | None) -> None:
        """Encode a batch and write its files and its part of the manifest."""
        def fit_progress(d, t, _loss):
            self.notify(len(batch) * d / max(t, 1))
        try:
            reports = encode_images([img for _, img in batch], self.md, self.m, self.opts,
                                    device=dev, batch_pixels=batch_pixels,
                                    progress=fit_progress if self.progress else None)
        except InrcodecError as e:
            for item, _ in batch:
                self.fail(item, e)
            self.write_part()
            return
        for (item, _), r in zip(batch, reports):
            try:
                out = self.dst / (item.name + ".inr")
                out.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(out, r.data, force=True)
            except InrcodecError as e:
                self.fail(item, e)
                continue
            self.entries.append({
                "file": item.name + ".inr", "source": item.source, "bytes": r.bytes,
                "sha256": hashlib.sha256(r.data).hexdigest(), "bpp": r.bpp,
                "psnr": None if math.isinf(r.psnr) else r.psnr, "seconds": r.seconds,
                "width": r.width, "height": r.height, "image_mode": r.image_mode,
                "level": r.level, "quality": r.quality, "notices": r.notices,
                **({"tiles": r.tiles} if r.tiles is not None else {})})
            self.report.encoded += 1
        self.write_part()
        self.notify()

    def finish(self) -> DatasetReport:
        self.write_part()
        report, dist = self.report, self.dist
        report.entries, report.failed = self.entries, self.failed
        if dist is not None:
            # run-wide counts (each rank reports its own failures); also a barrier
            report.encoded, report.skipped = dist.sum_counts([report.encoded, report.skipped])
            report.skipped //= self.world  # every rank counted the same skipped images
        if self.rank == 0:
            merge_manifest(self.dst, self.settings)
        if dist is not None:
            dist.barrier()
        report.seconds = time.perf_counter() - self.t_start
        return report
