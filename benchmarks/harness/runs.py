"""Resumable runs: a method measured on images, its results file written after every row."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .codecs import Method
from .schema import open_result, row_key, summarize, sync, write_result


@dataclass
class RunLog:
    """Progress lines to a stream (stderr by default)."""
    stream: object = field(default_factory=lambda: sys.stderr)
    quiet: bool = False

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=self.stream, flush=True)


def run(method: Method, images: list[tuple[str, np.ndarray]], out: str | Path, *,
        command: str, force: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Measure `method` on `images` at all its points, writing `out` after every row.

    An existing `out` made with the same method and settings is resumed: rows already there
    are skipped. One made otherwise is refused unless `force` (then it starts over).
    """
    log = log or RunLog()
    out = Path(out)
    method.check()
    res = open_result(out, codec=method.name, label=method.label or method.name,
                      description=method.description, settings=method.settings(),
                      sweep=method.sweep, command=command, images=[n for n, _ in images],
                      force=force)
    done = {row_key(r, method.sweep) for r in res["rows"]}
    todo = [(p, n, img) for p in method.points() for n, img in images
            if row_key({"image": n, **p}, method.sweep) not in done]
    total = len(method.points()) * len(images)
    if done:
        log(f"{out}: resuming, {total - len(todo)} of {total} rows already there")
    t0 = time.perf_counter()
    for i, (point, name, img) in enumerate(todo, 1):
        row = {"image": name, **point, **method.measure(img, point)}
        res["rows"].append(row)
        res["summary"] = summarize(res["rows"], method.sweep, method.point_info)
        write_result(out, res)
        el = time.perf_counter() - t0
        pt = " ".join(f"{k}={v}" for k, v in point.items())
        q = f"PSNR {row['psnr']:.2f}" if row.get("psnr") is not None else "PSNR inf"
        rate = f"bpp {row['bpp']:.3f} " if row.get("bpp") is not None else ""
        log(f"[{total - len(todo) + i}/{total}] {method.name} {pt} {name}: {rate}{q}  "
            f"({el:.0f} s, ~{el / i * (len(todo) - i):.0f} s left)")
    sync(res, method.point_info)
    write_result(out, res)
    return res

