"""Where a dataset's images come from: a folder (searched recursively, sorted) or an
iterable of paths or (name, image) pairs, each with the name of the .inr it becomes."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from ..errors import InrcodecError
from ..io import scan_images


@dataclass
class Item:
    name: str  # output path relative to dst, without ".inr", POSIX separators
    source: str  # for the manifest and messages
    image: object  # a path, PIL image, array or LoadedImage


def _check_name(name: str) -> str:
    p = PurePosixPath(name.replace(os.sep, "/"))
    if not name or p.is_absolute() or any(part in ("", ".", "..") for part in p.parts):
        raise InrcodecError(f"invalid output name {name!r} (a relative path without '..')")
    return str(p)


def _folder_items(folder: Path) -> list[Item]:
    paths = scan_images(folder)
    items, seen = [], {}
    for p in paths:
        rel = p.relative_to(folder)
        name = str(PurePosixPath(*rel.parts).with_suffix(""))
        if name in seen:
            raise InrcodecError(f"{seen[name]} and {rel} would both be written as {name}.inr; "
                                "rename one of them")
        seen[name] = rel
        items.append(Item(name, str(rel), p))
    return items


def iter_items(src) -> tuple[Iterable[Item], int | None]:
    """Items of a folder (sorted) or of an iterable of paths or (name, image) pairs."""
    if isinstance(src, (str, Path)):
        items = _folder_items(Path(src))
        return items, len(items)

    def gen() -> Iterator[Item]:
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
            yield Item(name, source, image)
    try:
        total = len(src)
    except TypeError:
        total = None
    return gen(), total
