"""decode-dir: every .inr under a folder decoded to images under another."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from ..api import read_inr
from ..codec import decoder
from ..errors import InrcodecError
from ..io import output_format, save_image
from ..model.accel import resolve_device
from .report import DatasetReport, Progress, ProgressCallback


def decode_dataset(src: str | Path, dst: str | Path, *, format: str = "png",
                   size: tuple[int, int] | None = None, scale: float | None = None,
                   model=None, device: str | torch.device | None = None,
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
