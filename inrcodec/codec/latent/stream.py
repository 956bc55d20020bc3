"""A latent-mode decode in one pipeline: the bands of the image render (render.Bands) on
other threads while the latents are still being read (arm.GridReader).

The reader is one sequential pass over the payload, in wavefront order, in which every
grid's rows become whole one after another. After each stretch of wavefronts (WAVES) it
publishes the rows read; a free thread brings the coarser grids' cascade up to them
(render._Coarse) and the others render, in order, each band whose rows are all there
(at the stored size or a smaller one; a larger one reads first). The reading thread
joins them when it is done. The pixels are the same as reading first and rendering after
(render.render); a payload that fails to decode raises before any image is returned, as
there, with the other threads stopped.
"""
from __future__ import annotations

import threading

import numpy as np

from . import render
from .arm import GridReader
from .config import LatentArch

WAVES = 48  # wavefronts per read between hand-overs: 16 rows of grid 0, 2 bands


def decode(reader: GridReader, arch: LatentArch, theta: np.ndarray, height: int,
           width: int) -> np.ndarray:
    """(height, width, 3) uint8: the image of the grids `reader` reads."""
    n_threads = render.threads()
    if n_threads < 2 or not render.banded(arch, reader.shapes, height, width):
        return render.render(arch, theta, reader.finish(), height, width)
    work = _Work(render.Bands(arch, theta, reader.grids, height, width, complete=False))
    pool = render.executor(n_threads)
    helpers = [pool.submit(work.run) for _ in range(n_threads - 1)]
    try:
        while reader.t < reader.waves:
            reader.read(reader.t + WAVES)
            work.publish([reader.rows(g) for g in range(len(reader.shapes))])
        reader.check()
    except BaseException:
        work.stop()
        for f in helpers:
            f.result()
        raise
    work.run()
    for f in helpers:
        f.result()
    return work.bands.image()


class _Work:
    """What the threads share: the rows read so far (`publish`), the coarser grids'
    cascade brought up to them (one thread at a time), and the bands whose rows are there,
    handed out one at a time, in order."""

    def __init__(self, bands: render.Bands):
        self.bands = bands
        self.rows: list[int] | None = None  # the grids' rows read, as last published
        self.seen: list[int] | None = None  # ... as the cascade last went up to
        self.advancing = False
        self.next = 0
        self.ready = 0
        self.stopped = False
        self.cond = threading.Condition()

    def publish(self, rows: list[int]) -> None:
        with self.cond:
            self.rows = rows
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def run(self) -> None:
        """Brings the cascade up to the rows read, or renders the next band, until the
        last band or a stop."""
        while True:
            with self.cond:
                while True:
                    if self.stopped or self.next >= self.bands.n:
                        return
                    if not self.advancing and self.rows != self.seen:
                        self.advancing, rows, band = True, self.rows, None
                        break
                    if self.next < self.ready:
                        band = self.next
                        self.next += 1
                        break
                    self.cond.wait()
            if band is not None:
                self.bands(band, band + 1)
                continue
            ready = 0
            try:
                ready = self.bands.advance(rows)
            finally:
                with self.cond:
                    self.advancing, self.seen = False, rows
                    self.ready = max(self.ready, ready)
                    self.cond.notify_all()
