"""The .inr container: magic, the version table, sections, CRC. The only module that lays
out a file; it knows no mode. Each mode's header class (its versions' fields, sections and
rules) is registered here by the one table of modes (registry.py); what a header's fields
mean belongs to its mode, and what is inside a section to the coder that wrote it.

    header (its version's fields) | sections, in the order the header lists them | CRC-32

The CRC (u32, little-endian) covers every byte before it. Field by field:
bitstream_spec/README.md.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import asdict

from ..errors import ChecksumError, FormatError
from .entropy import unzstd, zstd
from .header import FLAG_ALPHA, MAGIC, Field, struct_format

CRC_SIZE = 4
# format version -> its header class; filled by register() (registry.py), read-only after.
_HEADERS: dict[int, type] = {}


def register(header_cls) -> None:
    """Make the versions a header class lays out (its LAYOUTS) readable and writable."""
    for v in header_cls.LAYOUTS:
        if _HEADERS.get(v, header_cls) is not header_cls:
            raise ValueError(f"format version {v} is registered twice")
        _HEADERS[v] = header_cls


def versions() -> tuple[int, ...]:
    """Every format version this inrcodec reads."""
    return tuple(sorted(_HEADERS))


def layout(version: int) -> tuple[Field, ...]:
    return _HEADERS[version].LAYOUTS[version]


def header_size(version: int) -> int:
    return struct.calcsize(struct_format(layout(version)))


def max_header_size() -> int:
    return max(header_size(v) for v in _HEADERS)


def min_header_size() -> int:
    return min(header_size(v) for v in _HEADERS)


def pack_sections(h, sections: dict[str, bytes]) -> bytes:
    """Header + its sections in file order + CRC-32 of everything before it."""
    if any(len(sections.get(name, b"")) != n for name, n in h.sections()):
        raise ValueError("section lengths disagree with the header")
    h.validate()
    d = asdict(h)
    fields = layout(h.version)
    head = struct.pack(struct_format(fields), *(d[f.name] for f in fields))
    body = head + b"".join(sections.get(name, b"") for name, _ in h.sections())
    return body + struct.pack("<I", zlib.crc32(body))


def unpack_header(data: bytes):
    """The header of `data`, checked against every limit its version sets."""
    if len(data) < 5:
        if not data.startswith(MAGIC[:len(data)]):
            raise FormatError("not an inrcodec file (bad magic bytes)")
        raise FormatError(f"file is truncated: {len(data)} bytes, the header alone is "
                          f"at least {min_header_size()}")
    if data[:4] != MAGIC:
        raise FormatError("not an inrcodec file (bad magic bytes)")
    version = data[4]
    if version not in _HEADERS:
        raise FormatError(f"format version {version} is not supported (this inrcodec reads "
                          f"{', '.join(map(str, versions()))})")
    fields, size = layout(version), header_size(version)
    if len(data) < size:
        raise FormatError(f"file is truncated: {len(data)} bytes, the header alone is {size}")
    vals = struct.unpack(struct_format(fields), data[:size])
    h = _HEADERS[version](**{f.name: v for f, v in zip(fields, vals)})
    h.validate()
    return h


def verify(data: bytes):
    """Check the header, the file length and the CRC; decompress nothing."""
    h = unpack_header(data)
    expected = h.size + sum(n for _, n in h.sections()) + CRC_SIZE
    if len(data) < expected:
        raise FormatError(f"file is truncated: {len(data)} bytes, header declares {expected}")
    if len(data) > expected:
        raise FormatError(f"{len(data) - expected} unexpected bytes after the end of the file")
    (crc,) = struct.unpack("<I", data[-CRC_SIZE:])
    if zlib.crc32(data[:-CRC_SIZE]) != crc:
        raise ChecksumError("checksum mismatch: the file is corrupted")
    return h


def section(data: bytes, h, name: str) -> bytes:
    """One section (as stored) of a file `verify` accepted as `h`."""
    off = h.size
    for n, length in h.sections():
        if n == name:
            return data[off:off + length]
        off += length
    raise KeyError(name)


def alpha_section(data: bytes, h) -> bytes:
    """The decompressed alpha plane (b"" when there is none) of a file `verify` accepted."""
    if not h.has_alpha:
        return b""
    return unzstd(section(data, h, "alpha"), h.width * h.height, "alpha plane")


def alpha_of(alpha_plane: bytes | None) -> tuple[int, bytes]:
    """(flags, alpha section) a writer puts in a file for a raw alpha plane (or None):
    stored losslessly, zstd-compressed."""
    alpha = zstd(alpha_plane) if alpha_plane else b""
    return (FLAG_ALPHA if alpha else 0), alpha
