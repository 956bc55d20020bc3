"""Writing outputs safely: temp file in the same folder, fsync, rename into place."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import InrcodecError, OutputExistsError


def check_writable(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists (use --force to overwrite)")
    if path.is_dir():
        raise InrcodecError(f"{path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InrcodecError(f"output folder {parent} does not exist")


@contextlib.contextmanager
def atomic_output(path: Path, force: bool = False):
    """Yield a temporary path; on success it replaces `path`, on any failure it is removed.

    A Ctrl-C or crash mid-write leaves no partial file behind at `path`.
    """
    path = Path(path)
    check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        # mkstemp makes 0600 files; give the output the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if not force and path.exists():  # appeared while we worked
            raise OutputExistsError(f"{path} already exists (use --force to overwrite)")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes, force: bool = False) -> None:
    with atomic_output(path, force) as tmp:
        tmp.write_bytes(data)
