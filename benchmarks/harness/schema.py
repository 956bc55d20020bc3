"""The results schema: one JSON file per run of one method, its rows and their summary.

See benchmarks/harness/__init__.py for the schema. Readers recompute the summary from the
rows (`load_result`); writers go through `write_result` (atomic) and `open_result` /
`sync` (a fresh file, or a resumed one of the same method and settings)."""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from inrcodec.io import atomic_output

from .commands import portable_command

SCHEMA = 2
METRICS = ("bytes", "bpp", "psnr", "ms_ssim", "encode_s", "decode_s", "params")


class BenchError(Exception):
    """A user error: printed as one line by the CLI."""


def row_key(row: dict, sweep: Iterable[str]) -> tuple:
    return (row["image"],) + tuple(json.dumps(row.get(k)) for k in sweep)


def _mean(values: list) -> float | None:
    if not values or any(v is None for v in values):
        return None  # a mean over some images only would not be comparable
    return float(np.mean(values))


def summarize(rows: list[dict], sweep: Iterable[str], info: Callable[[dict], dict] | None = None
              ) -> list[dict]:
    """Per-point means of every metric over the rows of that point, in first-seen order."""
    sweep = tuple(sweep)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(json.dumps(r.get(k)) for k in sweep), []).append(r)
    out = []
    for rs in groups.values():
        point = {k: rs[0].get(k) for k in sweep}
        s = {**point, "n": len(rs)}
        if info:
            s.update(info(point))
        for k in METRICS:
            if any(k in r for r in rs):
                s[k] = _mean([r.get(k) for r in rs])
        out.append(s)
    return out


def load_result(path: str | Path) -> dict:
    """A results file, with the rows' summary recomputed (older files: sweep by level)."""
    path = Path(path)
    try:
        res = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"{path}: no such results file") from None
    except (OSError, ValueError) as e:
        raise BenchError(f"{path}: not a readable results file ({e})") from None
    if not isinstance(res, dict) or not isinstance(res.get("rows"), list) or "codec" not in res:
        raise BenchError(f"{path}: not a results file (no codec or rows)")
    if "sweep" not in res:  # files written before the schema had one: the settings rows vary
        keys = ("level", "step_scale", "quality", "target_bpp", "distance")
        res["sweep"] = [k for k in keys if any(k in r for r in res["rows"])]
    res.setdefault("label", res["codec"])
    res["summary"] = summarize(res["rows"], res["sweep"])
    res["_path"] = str(path)
    return res


def write_result(path: Path, res: dict) -> None:
    res = {k: v for k, v in res.items() if not k.startswith("_")}
    with atomic_output(path, force=True) as tmp:
        tmp.write_text(json.dumps(res, indent=1) + "\n")


def machine() -> str:
    return f"{platform.machine()} {platform.processor() or ''}".strip()



def open_result(out: Path, *, codec: str, label: str, description: str, settings: dict,
                sweep: Iterable[str], command: str, images: list[str], force: bool = False
                ) -> dict:
    """A fresh results dict, or the rows of an existing `out` made with the same codec and
    settings (to resume; the sweep's values may grow). Other settings: refused unless force."""
    sweep = list(sweep)
    command = portable_command(command)  # no machine paths in results files
    settings = json.loads(json.dumps(settings))  # as it will read back from JSON
    res = {"schema": SCHEMA, "codec": codec, "label": label, "description": description,
           "settings": settings, "sweep": sweep, "command": command, "commands": [command],
           "machine": machine(), "images": images, "rows": [], "summary": []}
    if out.exists() and not force:
        old = load_result(out)
        fixed = lambda st: {k: v for k, v in (st or {}).items() if k not in sweep}
        if old["codec"] != codec or fixed(old.get("settings")) != fixed(settings):
            raise BenchError(f"{out} holds a run of {old['codec']} with other settings; "
                             "use --force to start over, or another output")
        res.update(rows=old["rows"], command=old.get("command", command),
                   commands=old.get("commands", [old.get("command")]))
        if command not in res["commands"]:
            res["commands"].append(command)
    elif not out.parent.is_dir():
        raise BenchError(f"output folder {out.parent} does not exist")
    return res


def sync(res: dict, info: Callable[[dict], dict] | None = None) -> dict:
    """Derive a results dict's images, swept values (old runs' included) and summary from
    its rows."""
    res["images"] = list(dict.fromkeys(r["image"] for r in res["rows"]))
    for k in res["sweep"]:
        res["settings"][k] = list(dict.fromkeys(r.get(k) for r in res["rows"]))
    res["summary"] = summarize(res["rows"], res["sweep"], info)
    return res


class ResultsFile:
    """A results file filled a batch of rows at a time, by work that measures many images
    together (the paper's experiments fit all signals in one batch). Resumable like `run`:
    `done(point)` says whether the rows of a point are there already."""

    def __init__(self, out: str | Path, *, codec: str, description: str, settings: dict,
                 sweep: Iterable[str], command: str, label: str | None = None,
                 force: bool = False):
        self.out, self.sweep = Path(out), tuple(sweep)
        self.res = open_result(self.out, codec=codec, label=label or codec,
                               description=description, settings=settings, sweep=self.sweep,
                               command=command, images=[], force=force)
        self._points = {self._pk(r) for r in self.res["rows"]}

    def _pk(self, point: dict) -> tuple:
        return tuple(json.dumps(point.get(k)) for k in self.sweep)

    def done(self, **point) -> bool:
        return self._pk(point) in self._points

    def add(self, point: dict, rows: list[dict]) -> None:
        """All rows of one point ({"image", metrics...}), written at once."""
        self.res["rows"] += [{"image": r["image"], **point,
                              **{k: v for k, v in r.items() if k != "image"}} for r in rows]
        self._points.add(self._pk(point))
        sync(self.res)
        write_result(self.out, self.res)

