"""Writing outputs safely: temp file in the same folder, fsync, rename into place."""
from __future__ import annotations

import contextlib
import os
import stat
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


def _new_file_mode(path: Path) -> int:
    """What a plain open() would give: the mode of the file replaced, else 0o666 less umask."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: Path, force: bool = False):
    """Yield a temporary path; on success it replaces `path`, on any failure it is removed.

    A Ctrl-C or crash mid-write leaves no partial file behind at `path`.
    """
    path = Path(path)
    check_writable(path, force)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    except OSError as e:
        raise InrcodecError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(path))  # mkstemp makes it 0600
        if not force and path.exists():  # appeared while we worked
            raise OutputExistsError(f"{path} already exists (use --force to overwrite)")
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):  # disk full, permissions...
            raise InrcodecError(f"cannot write {path}: {e.strerror or e}") from None
        raise


def atomic_write_bytes(path: Path, data: bytes, force: bool = False) -> None:
    with atomic_output(path, force) as tmp:
        tmp.write_bytes(data)
