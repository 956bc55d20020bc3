"""A shared-model file, whatever its kind (the weight mode's SIREN ladder, the latent mode's
synthesis ladder and entropy model): a safetensors file (a tensor container whose loader
parses a bounded JSON header and raw little-endian arrays, and never executes code, unlike
pickle), its identity the SHA-256 of its bytes (what .inr files name), loaded with bounds,
and a digest of its tensor data in its metadata that detects a tampered or truncated file.
Layout: bitstream_spec/shared_model.md.
"""
from __future__ import annotations

import hashlib
import json
import stat
import struct
from pathlib import Path

import torch

from ..errors import ModelError

FORMAT_NAME = "inrcodec-shared-model"
MAX_MODEL_BYTES = 256 << 20
MAX_LEVELS = 64
META_KEY = "inrcodec"


class ModelFile:
    """What every shared-model file has: its identity, the SHA-256 of its bytes (what .inr
    files name), and loading with bounds. Subclasses give to_bytes, from_bytes and WHAT."""

    WHAT = "shared model"

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the file this model saves to: what .inr files name."""
        if self._hash is None:
            self._hash = hashlib.sha256(self.to_bytes()).hexdigest()
        return self._hash

    def save(self, path: str | Path) -> str:
        from ..io import atomic_write_bytes
        data = self.to_bytes()
        atomic_write_bytes(Path(path), data, force=True)
        self._hash = hashlib.sha256(data).hexdigest()
        return self._hash

    @classmethod
    def load(cls, path: str | Path):
        path, what = Path(path), cls.WHAT
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                raise ModelError(f"{what} {path} is not a regular file")
            size = st.st_size
            if size > MAX_MODEL_BYTES:
                raise ModelError(f"{path}: {size} bytes is too large for a {what}")
            data = path.read_bytes()
        except OSError as e:
            raise ModelError(f"cannot read {what} {path}: {e.strerror or e}") from None
        try:
            return cls.from_bytes(data)
        except ModelError as e:
            raise ModelError(f"{path}: {e}") from None


def _dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _data_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(name.encode() + b"\0" + str(t.dtype).encode() + b"\0"
                 + str(tuple(t.shape)).encode() + b"\0")
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _read_metadata(data: bytes) -> dict:
    if len(data) < 8:
        raise ModelError("shared model file is truncated")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > (16 << 20):
        raise ModelError("shared model header length is invalid (truncated or not a model)")
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, RecursionError):
        raise ModelError("shared model header is not valid JSON") from None
    try:
        meta = json.loads(header["__metadata__"][META_KEY])
    except (ValueError, AttributeError, KeyError, TypeError, RecursionError):
        raise ModelError("shared model metadata is missing or malformed") from None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelError("shared model metadata is malformed")
    return meta


def load_named(load, model, needed: str, what: str):
    """The shared model a file names (SHA-256 hex `needed`): `load(model)` (a model, a path,
    or None for the shipped one), refused with both hashes if it is another."""
    from ..errors import ModelMismatchError
    try:
        m = load(model)
    except ModelError as e:
        raise ModelError(f"{e}; this file needs {what} {needed}") from None
    if m.hash != needed:
        where = f" ({model})" if isinstance(model, (str, Path)) else ""
        raise ModelMismatchError(f"this file needs {what} {needed}, but the model "
                                 f"supplied{where} is {m.hash}; pass the right one with --model")
    return m
