"""What a dataset run reports: its progress while it runs, and what it did."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


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
