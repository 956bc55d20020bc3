"""A dataset folder's manifest: ``manifest.json`` (the settings and one entry per encoded
image: file, source, bytes, sha256, bpp, PSNR, seconds, size, image mode) and, while a run
is in progress, ``manifest.part-R.json`` per process R (what it has finished so far,
rewritten atomically after every batch), folded into ``manifest.json`` by the next run or
the end of this one. A file counts as done when the manifest lists it with the same
settings and the file on disk has the recorded SHA-256."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

from .. import __version__
from ..errors import InrcodecError
from ..io import atomic_write_bytes

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "inrcodec-dataset-manifest"
MANIFEST_VERSION = 1
PART_PREFIX = "manifest.part-"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InrcodecError(f"cannot read {path}: {e}") from None
    if not isinstance(d, dict) or not isinstance(d.get("images", []), list):
        raise InrcodecError(f"{path} is not an inrcodec dataset manifest")
    return d


def write_json(path: Path, d: dict) -> None:
    atomic_write_bytes(path, (json.dumps(d, indent=1, sort_keys=True) + "\n").encode(), force=True)


def _totals(entries: list[dict]) -> dict:
    n = len(entries)
    psnrs = [e["psnr"] for e in entries if e.get("psnr") is not None]
    return {"images": n, "bytes": sum(e["bytes"] for e in entries),
            "mean_bpp": sum(e["bpp"] for e in entries) / n if n else None,
            "mean_psnr": sum(psnrs) / len(psnrs) if psnrs else None,
            "seconds": sum(e["seconds"] for e in entries)}


def part_files(dst: Path) -> list[Path]:
    return sorted(dst.glob(PART_PREFIX + "*.json"))


def merge_manifest(dst: str | Path, settings: dict | None = None, force: bool = False) -> dict:
    """Fold the per-process partial manifests in `dst` into manifest.json; return it.

    Entries are keyed by file; a later success replaces an earlier failure. With
    `settings` given, a manifest or part made with other settings is an error (or, with
    `force`, discarded).
    """
    dst = Path(dst)
    sources = ([dst / MANIFEST] if (dst / MANIFEST).exists() else []) + part_files(dst)
    images: dict[str, dict] = {}
    failed: dict[str, dict] = {}
    current = settings
    for f in sources:
        d = read_json(f)
        if current is None:
            current = d.get("settings")
        if d.get("settings") != current:
            if not force:
                raise InrcodecError(
                    f"{dst} holds a dataset encoded with other settings ({f.name}: "
                    f"{d.get('settings')}); use --force to re-encode it with "
                    f"{current}")
            continue
        for e in d.get("images", []):
            images[e["file"]] = e
            failed.pop(e["source"], None)
        for e in d.get("failed", []):
            failed[e["source"]] = e
    entries = [images[k] for k in sorted(images)]
    merged = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "settings": current,
              "inrcodec": __version__, "images": entries,
              "failed": [failed[k] for k in sorted(failed)], "totals": _totals(entries)}
    if sources or settings is not None:
        write_json(dst / MANIFEST, merged)
    for f in part_files(dst):
        f.unlink()
    return merged


def check_manifest(dst: str | Path) -> list[str]:
    """Problems between manifest.json and the .inr files in `dst` (an empty list if none)."""
    dst = Path(dst)
    d = read_json(dst / MANIFEST)
    problems = []
    listed = set()
    for e in d["images"]:
        f = dst / e["file"]
        listed.add(e["file"])
        if not f.is_file():
            problems.append(f"{e['file']}: listed but missing")
        elif f.stat().st_size != e["bytes"] or sha256(f) != e["sha256"]:
            problems.append(f"{e['file']}: contents differ from the manifest")
    for f in sorted(dst.rglob("*.inr")):
        rel = str(PurePosixPath(*f.relative_to(dst).parts))
        if rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    if d.get("totals") != _totals(d["images"]):
        problems.append("totals do not add up")
    return problems
