"""A latent-mode decode in one pipeline: the bands of the image render (render.Bands) on
other threads while the latents are still being read (arm.GridReader).

The reader is one sequential pass over the payload, in wavefront order, and its last part
is grid 0's, row by row. Once the coarser grids are whole (about half the reading), each
band of the image needs only grid 0's rows up to its own: the bands whose rows are read
go to the other threads at once, and the reading thread joins them when it is done. The
pixels are the same as reading first and rendering after (render.render); a payload that
fails to decode raises before any image is returned, as there.
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
    if n_threads < 2 or not render.fused(arch, reader.shapes, height, width):
        return render.render(arch, theta, reader.finish(), height, width)
    reader.read(max(reader.complete_at(g) for g in range(1, len(reader.shapes))))
    work = _Work(-(-height // render.BAND))
    pool = render.executor(n_threads)
    # the first helper builds the bands (the coarser grids' cascade) while this thread
    # reads on
    helpers = [pool.submit(work.build, arch, theta, reader.grids, height, width)]
    helpers += [pool.submit(work.run) for _ in range(n_threads - 2)]
    try:
        while reader.t < reader.waves:
            reader.read(reader.t + WAVES)
            rows = reader.rows(0)
            work.offer(work.n if rows == height else rows // render.BAND)
        reader.check()
    except BaseException:
        work.stop()
        for f in helpers:
            f.result()
        raise
    work.offer(work.n)
    work.run()
    for f in helpers:
        f.result()
    return work.bands.image()


class _Work:
    """n bands handed out one at a time, in order, up to the last one whose rows are read,
    once they are built."""

    def __init__(self, n: int):
        self.n = n
        self.bands: render.Bands | None = None
        self.next = 0
        self.ready = 0
        self.stopped = False
        self.cond = threading.Condition()

    def offer(self, ready: int) -> None:
        with self.cond:
            self.ready = ready
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def build(self, *args) -> None:
        """render.Bands(*args), then run."""
        try:
            bands = render.Bands(*args)
        finally:  # an error still wakes the others: they stop, and result() raises it
            with self.cond:
                self.bands = bands if "bands" in locals() else None
                self.stopped |= self.bands is None
                self.cond.notify_all()
        self.run()

    def run(self) -> None:
        """Renders bands as they become ready, until the last or a stop."""
        while True:
            with self.cond:
                while (self.bands is None or self.next >= self.ready) \
                        and self.next < self.n and not self.stopped:
                    self.cond.wait()
                if self.stopped or self.next >= self.n:
                    return
                b = self.next
                self.next += 1
            self.bands(b, b + 1)
