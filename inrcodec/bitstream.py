"""The .inr file: the only module that lays out bytes of a compressed image.

    header (fixed 67 bytes, fields below) | payload | alpha | CRC-32 (u32, little-endian)

The payload is the zstd-compressed quantised parameter values of every tile; alpha, when
the image has one, is the zstd-compressed 8-bit alpha plane (lossless). Each section is
exactly one zstd frame, nothing after it. The CRC covers every byte before it. Field by field: bitstream_spec/README.md.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import asdict, dataclass

import zstandard

from .errors import ChecksumError, FormatError
from .quant import QUANTIZERS, payload_bytes

MAGIC = b"INRC"
VERSION = 1
SUPPORTED_VERSIONS = (1,)
MODES = {0: "L", 1: "LA", 2: "RGB", 3: "RGBA"}
MODE_IDS = {v: k for k, v in MODES.items()}
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28
MAX_TILES = 1 << 20
MAX_VALUES = 1 << 28  # tiles x parameters per tile
ZSTD_LEVEL = 19
FLAG_ALPHA = 1


@dataclass(frozen=True)
class Field:
    name: str
    fmt: str  # struct code, little-endian
    meaning: str


# The header, declared once: packing, parsing, the spec table and `inrcodec info` read this.
FIELDS = (
    Field("magic", "4s", "b'INRC'"),
    Field("version", "B", "format version (this is 1)"),
    Field("flags", "B", "bit 0: alpha plane present; other bits 0"),
    Field("model_hash", "32s", "SHA-256 of the shared-model file needed to decode"),
    Field("width", "I", "image width in pixels, 1..65536"),
    Field("height", "I", "image height in pixels, 1..65536"),
    Field("mode", "B", "0 L, 1 LA, 2 RGB, 3 RGBA"),
    Field("level", "B", "ladder level of the shared model"),
    Field("quantizer", "B", "0: fp16 (IEEE 754 half, little-endian)"),
    Field("tile", "H", "tile side T in pixels (must equal the model's)"),
    Field("tiles_y", "H", "tiles down = ceil(height / T)"),
    Field("tiles_x", "H", "tiles across = ceil(width / T)"),
    Field("n_params", "I", "values per tile (the level's surviving weights + biases)"),
    Field("payload_len", "I", "bytes of the zstd-compressed parameter payload"),
    Field("alpha_len", "I", "bytes of the zstd-compressed alpha plane (0 if none)"),
)
HEADER_FMT = "<" + "".join(f.fmt for f in FIELDS)
HEADER_SIZE = struct.calcsize(HEADER_FMT)
CRC_SIZE = 4


@dataclass(frozen=True)
class Header:
    version: int
    flags: int
    model_hash: bytes
    width: int
    height: int
    mode: int
    level: int
    quantizer: int
    tile: int
    tiles_y: int
    tiles_x: int
    n_params: int
    payload_len: int
    alpha_len: int
    magic: bytes = MAGIC

    @property
    def mode_name(self) -> str:
        return MODES[self.mode]

    @property
    def has_alpha(self) -> bool:
        return bool(self.flags & FLAG_ALPHA)

    def describe(self) -> list[tuple[str, str, str]]:
        """(field, value, meaning) rows for `inrcodec info`."""
        d = asdict(self)
        rows = []
        for f in FIELDS:
            v = d[f.name]
            if f.name == "model_hash":
                v = v.hex()
            elif f.name == "magic":
                v = v.decode("latin-1")
            elif f.name == "mode":
                v = f"{v} ({MODES[v]})"
            elif f.name == "quantizer":
                v = f"{v} ({QUANTIZERS[v]})"
            rows.append((f.name, str(v), f.meaning))
        return rows


def validate(h: Header) -> None:
    """Every limit a header must meet before any allocation is sized by it."""
    if h.magic != MAGIC:
        raise FormatError("not an inrcodec file (bad magic bytes)")
    if h.version not in SUPPORTED_VERSIONS:
        raise FormatError(f"format version {h.version} is not supported (this inrcodec reads "
                          f"{', '.join(map(str, SUPPORTED_VERSIONS))})")
    if h.flags & ~FLAG_ALPHA:
        raise FormatError(f"unknown flag bits {h.flags:#04x}")
    if not (1 <= h.width <= MAX_SIDE and 1 <= h.height <= MAX_SIDE):
        raise FormatError(f"image size {h.width}x{h.height} outside 1..{MAX_SIDE}")
    if h.width * h.height > MAX_PIXELS:
        raise FormatError(f"image of {h.width * h.height} pixels exceeds the limit {MAX_PIXELS}")
    if h.mode not in MODES:
        raise FormatError(f"unknown image mode id {h.mode}")
    if h.has_alpha != MODES[h.mode].endswith("A"):
        raise FormatError("alpha flag disagrees with the image mode")
    if h.quantizer not in QUANTIZERS:
        raise FormatError(f"unknown quantiser id {h.quantizer}")
    if h.tile < 2:
        raise FormatError(f"tile size {h.tile} is invalid")
    if h.tiles_y != -(-h.height // h.tile) or h.tiles_x != -(-h.width // h.tile):
        raise FormatError("tile grid does not match the image size")
    if h.n_params < 1:
        raise FormatError("a file must store at least one value per tile")
    n_tiles = h.tiles_y * h.tiles_x
    if n_tiles > MAX_TILES or n_tiles * h.n_params > MAX_VALUES:
        raise FormatError(f"{n_tiles} tiles x {h.n_params} values exceeds the limits")
    if (h.alpha_len == 0) == h.has_alpha:
        raise FormatError("alpha length disagrees with the alpha flag")


def pack(h: Header, payload: bytes, alpha: bytes = b"") -> bytes:
    """Header + sections + CRC. `payload` and `alpha` are already zstd-compressed."""
    if len(payload) != h.payload_len or len(alpha) != h.alpha_len:
        raise ValueError("section lengths disagree with the header")
    validate(h)
    d = asdict(h)
    head = struct.pack(HEADER_FMT, *(d[f.name] for f in FIELDS))
    body = head + payload + alpha
    return body + struct.pack("<I", zlib.crc32(body))


def unpack_header(data: bytes) -> Header:
    if len(data) < HEADER_SIZE:
        if not data.startswith(MAGIC[:len(data)]):
            raise FormatError("not an inrcodec file (bad magic bytes)")
        raise FormatError(f"file is truncated: {len(data)} bytes, the header alone is {HEADER_SIZE}")
    vals = struct.unpack(HEADER_FMT, data[:HEADER_SIZE])
    h = Header(**{f.name: v for f, v in zip(FIELDS, vals)})
    validate(h)
    return h


def verify(data: bytes) -> Header:
    """Check the header, the file length and the CRC; decompress nothing."""
    h = unpack_header(data)
    expected = HEADER_SIZE + h.payload_len + h.alpha_len + CRC_SIZE
    if len(data) < expected:
        raise FormatError(f"file is truncated: {len(data)} bytes, header declares {expected}")
    if len(data) > expected:
        raise FormatError(f"{len(data) - expected} unexpected bytes after the end of the file")
    (crc,) = struct.unpack("<I", data[-CRC_SIZE:])
    if zlib.crc32(data[:-CRC_SIZE]) != crc:
        raise ChecksumError("checksum mismatch: the file is corrupted")
    return h


def payload_section(data: bytes, h: Header) -> bytes:
    """The decompressed parameter payload of a file `verify` accepted as `h`."""
    p0 = HEADER_SIZE
    n_values = h.tiles_y * h.tiles_x * h.n_params
    return _unzstd(data[p0:p0 + h.payload_len], payload_bytes(n_values, h.quantizer), "payload")


def alpha_section(data: bytes, h: Header) -> bytes:
    """The decompressed alpha plane (b"" when there is none) of a file `verify` accepted."""
    if not h.has_alpha:
        return b""
    a0 = HEADER_SIZE + h.payload_len
    return _unzstd(data[a0:a0 + h.alpha_len], h.width * h.height, "alpha plane")


def unpack(data: bytes) -> tuple[Header, bytes, bytes]:
    """Parse and verify a whole file -> (header, raw payload, raw alpha), decompressed."""
    h = verify(data)
    return h, payload_section(data, h), alpha_section(data, h)


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=False).compress(data)


def _unzstd(blob: bytes, size: int, what: str) -> bytes:
    """Decompress to exactly `size` bytes; never allocates more than that."""
    # A zstd block holds at most 128 KiB and takes at least 4 bytes (3 of header, 1 of RLE
    # content), so a section too short to hold `size` bytes is refused before allocating.
    if len(blob) < 4 * (size >> 17):
        raise FormatError(f"{what} of {len(blob)} bytes cannot hold the {size} bytes the "
                          f"header declares")
    try:
        declared = zstandard.frame_content_size(blob)
    except zstandard.ZstdError:
        raise FormatError(f"{what} is not a valid zstd frame") from None
    if declared not in (-1, size):
        raise FormatError(f"{what} declares {declared} bytes, expected {size}")
    try:
        # One frame filling the section exactly: trailing bytes or frames are malformed.
        out = zstandard.ZstdDecompressor().decompress(blob, max_output_size=size,
                                                      allow_extra_data=False)
    except zstandard.ZstdError as e:
        raise FormatError(f"{what} does not decompress: {e}") from None
    if len(out) != size:
        raise FormatError(f"{what} decompresses to {len(out)} bytes, expected {size}")
    return out
