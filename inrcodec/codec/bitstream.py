"""The .inr container: magic, the version table, sections, CRC. The only module that lays
out a file; what a header's fields mean belongs to its mode (latent/format.py,
weights/format.py), and what is inside a section to the coder that wrote it.

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
from .header import FLAG_ALPHA, MAGIC, MAX_PIXELS, MAX_SIDE, MODE_IDS, MODES, struct_format
from .latent.format import LatentHeader
from .weights.format import Header, TileHeader

# The version table: which header (and so which mode) each format version is.
HEADERS = {1: Header, 2: Header, 3: LatentHeader, 4: LatentHeader, 5: TileHeader,
           6: LatentHeader}
READ_VERSIONS = tuple(sorted(HEADERS))
LAYOUTS = {v: cls.LAYOUTS[v] for v, cls in HEADERS.items()}
FORMATS = {v: struct_format(fs) for v, fs in LAYOUTS.items()}
HEADER_SIZES = {v: struct.calcsize(fmt) for v, fmt in FORMATS.items()}
HEADER_SIZE = max(HEADER_SIZES.values())
MIN_HEADER_SIZE = min(HEADER_SIZES.values())
CRC_SIZE = 4

__all__ = ["MAGIC", "MODES", "MODE_IDS", "MAX_SIDE", "MAX_PIXELS", "FLAG_ALPHA", "HEADERS",
           "READ_VERSIONS", "LAYOUTS", "HEADER_SIZES", "HEADER_SIZE", "MIN_HEADER_SIZE",
           "pack_sections", "unpack_header", "verify", "section", "alpha_section",
           "alpha_of"]


def pack_sections(h, sections: dict[str, bytes]) -> bytes:
    """Header + its sections in file order + CRC-32 of everything before it."""
    if any(len(sections.get(name, b"")) != n for name, n in h.sections()):
        raise ValueError("section lengths disagree with the header")
    h.validate()
    d = asdict(h)
    head = struct.pack(FORMATS[h.version], *(d[f.name] for f in LAYOUTS[h.version]))
    body = head + b"".join(sections.get(name, b"") for name, _ in h.sections())
    return body + struct.pack("<I", zlib.crc32(body))


def unpack_header(data: bytes):
    """The header of `data`, checked against every limit its version sets."""
    if len(data) < 5:
        if not data.startswith(MAGIC[:len(data)]):
            raise FormatError("not an inrcodec file (bad magic bytes)")
        raise FormatError(f"file is truncated: {len(data)} bytes, the header alone is "
                          f"at least {MIN_HEADER_SIZE}")
    if data[:4] != MAGIC:
        raise FormatError("not an inrcodec file (bad magic bytes)")
    version = data[4]
    if version not in HEADERS:
        raise FormatError(f"format version {version} is not supported (this inrcodec reads "
                          f"{', '.join(map(str, READ_VERSIONS))})")
    size = HEADER_SIZES[version]
    if len(data) < size:
        raise FormatError(f"file is truncated: {len(data)} bytes, the header alone is {size}")
    vals = struct.unpack(FORMATS[version], data[:size])
    h = HEADERS[version](**{f.name: v for f, v in zip(LAYOUTS[version], vals)})
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
