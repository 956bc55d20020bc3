"""Recorded commands without machine paths.

A results file records the command that made it. Paths in it are written so that the
command means the same on another machine: a path inside the repository relative to its
root (whatever the working directory was), a development photo in the cache as
`dev:NAME.png` and the cache's folder of them as `dev` (which `load_images` reads), and any other file outside the repository (a
part to be merged, an output copied here later) by its file name alone.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parents[2]  # the repository
_FILE_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]*")


def _dev_dir() -> Path:
    from inrcodec.training.data import cache_dir

    return cache_dir() / "devset"


def _forms(p: Path) -> list[Path]:
    """The path as written (made absolute) and with symbolic links resolved."""
    out = [Path(os.path.abspath(p))]
    try:
        out.append(p.resolve())
    except OSError:
        pass
    return out


def portable_path(part: str, cwd: str | Path | None = None) -> str:
    """One path of a command line as a results file records it (see the module's doc).

    Relative paths are taken from `cwd` (default: the working directory). They stay as
    they are when they do not look like a path (no `/` and no file suffix, e.g. `5,30`,
    `dev:8`, a label), when `cwd` is the repository root, and when their folder is not
    there from `cwd` (a path written from the root, as `python benchmarks/NAME.py`)."""
    if not part or part.startswith("dev:") or part.startswith("-"):
        return part
    p = Path(part).expanduser()
    if not p.is_absolute():
        here = Path.cwd() if cwd is None else Path(cwd)
        looks = "/" in part or _FILE_SUFFIX.fullmatch(p.suffix) is not None
        if not looks or any(f == ROOT for f in _forms(here)):
            return part
        if not (here / p).parent.is_dir():  # not a path from here: from the root, or unknown
            return part
        p = here / p
    forms = _forms(p)
    devs = _forms(_dev_dir())
    if any(f == d for f in forms for d in devs):
        return "dev"
    if any(f.parent == d for f in forms for d in devs) and p.suffix.lower() == ".png":
        return f"dev:{p.name}"
    roots = _forms(ROOT)
    for f in forms:
        for r in roots:
            if f == r:
                return "."
            if r in f.parents:
                return f.relative_to(r).as_posix()
    return p.name


def _portable_token(token: str, cwd) -> str:
    if token.startswith("--") and "=" in token:  # --out=PATH
        opt, _, value = token.partition("=")
        return f"{opt}={_portable_token(value, cwd)}" if value else token
    if token.startswith("-"):
        return token
    return ",".join(portable_path(part, cwd) for part in token.split(","))


def portable_args(argv: Iterable[str], cwd: str | Path | None = None) -> list[str]:
    """Each argument with its paths made portable (comma-separated lists part by part)."""
    return [_portable_token(str(a), cwd) for a in argv]


def command_line(script: str | Path, argv: Iterable[str], cwd: str | Path | None = None) -> str:
    """`python SCRIPT ARGS...` as a results file records it: SCRIPT and the paths in ARGS
    portable, shell-quoted."""
    return shlex.join(["python", portable_path(str(script), cwd), *portable_args(argv, cwd)])


def portable_command(command: str, cwd: str | Path | None = None) -> str:
    """A recorded command line with its paths made portable; text that is not a command
    line (a note, unbalanced quotes) is returned as it is."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        return command
    new = portable_args(tokens, cwd)
    return command if new == tokens else shlex.join(new)
