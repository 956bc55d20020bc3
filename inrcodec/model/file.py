"""A shared-model file, whatever its kind (the weight mode's SIREN ladder, the latent mode's
synthesis ladder and entropy model): a safetensors file (a tensor container whose loader
parses a bounded JSON header and raw little-endian arrays, and never executes code, unlike
pickle), its identity the SHA-256 of its bytes (what .inr files name), loaded with bounds,
and a digest of its tensor data in its metadata that detects a tampered or truncated file.
Layout: bitstream_spec/shared_model.md. Tensors are numpy arrays here (loading a model to
decode needs no torch); a mode converts them where it fits with torch.
"""
from __future__ import annotations

import hashlib
import json
import stat
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

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


def dumps(obj) -> str:
    """Canonical JSON: a model's bytes are its identity, so its metadata's must not vary."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


# safetensors' dtype tags of the arrays a model file may hold, and their names in the
# digest (torch's: the digest of the files made before the loader was numpy's)
_DTYPES = {"F32": "torch.float32", "U8": "torch.uint8", "I16": "torch.int16",
           "F16": "torch.float16", "I64": "torch.int64", "BOOL": "torch.bool",
           "BF16": "torch.bfloat16"}


def _as_array(t) -> np.ndarray:
    return t if isinstance(t, np.ndarray) else t.detach().cpu().contiguous().numpy()


def data_digest(tensors: dict) -> str:
    """SHA-256 over the tensors (numpy arrays or torch tensors): names, types, shapes, data."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = np.ascontiguousarray(_as_array(tensors[name]))
        h.update(name.encode() + b"\0" + f"torch.{t.dtype.name}".encode() + b"\0"
                 + str(tuple(t.shape)).encode() + b"\0")
        h.update(t.tobytes())
    return h.hexdigest()


def pack_model(tensors: dict, meta: dict[str, str]) -> bytes:
    """A model file: the tensors (numpy arrays or torch tensors), and `meta` (string values)
    with the format tag and the tensors' digest added, under one metadata key (safetensors
    keeps metadata in a hash map whose order varies between processes, and the file's
    bytes must not)."""
    arrays = {k: np.ascontiguousarray(_as_array(t)) for k, t in tensors.items()}
    meta = {"format": FORMAT_NAME, **meta, "data_sha256": data_digest(arrays)}
    return st_save(arrays, metadata={META_KEY: dumps(meta)})


def read_metadata(data: bytes, what: str = "shared model") -> dict[str, str]:
    """A model file's metadata, bounded and checked for the format tag; no tensor is read."""
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(f"{what} is {len(data)} bytes, over the {MAX_MODEL_BYTES} limit")
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
    if meta.get("format") != FORMAT_NAME:
        raise ModelError("not an inrcodec shared model (format tag missing)")
    return meta


def read_tensors(data: bytes, meta: dict[str, str], what: str = "shared model",
                 dtypes: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """A model file's tensors as numpy arrays (of `dtypes` only, if given: torch's names,
    e.g. "torch.float32"), checked against the digest its metadata records."""
    (n,) = struct.unpack("<Q", data[:8])  # read_metadata has bounded and parsed it
    header = json.loads(data[8:8 + n])
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tag = entry.get("dtype") if isinstance(entry, dict) else None
        kind = _DTYPES.get(tag, str(tag))
        if (dtypes is not None and kind not in dtypes) or tag not in _DTYPES \
                or tag == "BF16":  # numpy has no bfloat16, and no model writes one
            raise ModelError(f"{what} tensor {name} has unsupported type {kind}")
    try:
        tensors = st_load(data)
    except Exception as e:  # safetensors raises its own error types
        raise ModelError(f"{what} tensors are unreadable: {e}") from None
    if data_digest(tensors) != meta.get("data_sha256"):
        raise ModelError(f"{what} is damaged: its tensor data do not match the digest "
                         "recorded in it (tampered or truncated file)")
    return tensors


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
