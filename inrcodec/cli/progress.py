"""Progress on stderr (stdout stays clean for --json): a bar or an updating line on a
terminal, else a plain line every `every` seconds so that logs of background runs show
rate and ETA."""
from __future__ import annotations

import sys
import time

import click


class StepProgress:
    """Optimiser steps done, as `progress(done, total, loss)` callbacks report them."""

    def __init__(self, label: str, enabled: bool, every: float = 30.0):
        self.label, self.enabled, self.every = label, enabled, every
        self.bar, self.last, self.t0, self.t_print = None, 0, None, 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: float, total: int, loss: float):
        if not self.enabled:
            return
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = self.t_print = now
        if not self.tty:
            if now - self.t_print >= self.every or done == total:
                rate = done / max(now - self.t0, 1e-9)
                eta = (total - done) / rate if rate > 0 else float("inf")
                click.echo(f"{self.label}: {done:.0f}/{total} steps ({100 * done / total:.1f}%), "
                           f"{rate:.2f} steps/s, ETA {eta / 60:.1f} min, loss {loss:.5f}",
                           err=True)
                self.t_print = now
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr,
                                         show_eta=True, item_show_func=lambda x: x)
            self.bar.__enter__()
        step = int(done) - self.last
        if step > 0:
            self.bar.update(step, f"loss {loss:.5f}")
            self.last = int(done)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


class DatasetProgress:
    """Images done, rate and ETA on stderr: one updating line on a terminal, else a line
    every `every` seconds (and at the end) for logs."""

    def __init__(self, label: str, enabled: bool, every: float = 30.0):
        self.label, self.enabled, self.every = label, enabled, every
        self.tty = sys.stderr.isatty()
        self.t_print = None
        self.last = None

    def __call__(self, p):
        if not self.enabled:
            return
        now = time.monotonic()
        total = "?" if p.total is None else str(p.total)
        eta = "?" if p.eta is None else f"{p.eta / 60:.1f} min"
        line = (f"{self.label}: {p.done:.1f}/{total} images, {p.rate:.3f} images/s, ETA {eta}"
                + (f", {p.skipped} already done" if p.skipped else "")
                + (f", {p.failed} failed" if p.failed else ""))
        self.last = line
        if self.tty:
            click.echo("\r" + line + " " * 8, err=True, nl=False)
        elif self.t_print is None or now - self.t_print >= self.every \
                or (p.total is not None and p.done >= p.total):
            click.echo(line, err=True)
            self.t_print = now

    def close(self):
        if self.enabled and self.tty and self.last is not None:
            click.echo("", err=True)
        self.last = None  # closing twice prints nothing more
