"""The weight mode's file formats: the header fields of versions 1, 2 (one level for every
tile: the paper's encoder) and 5 (a level per tile, fitted to distortion + lambda x rate).
bitstream.py lays headers and sections out in a file; files.py writes them.

    version 1: header (67 bytes) | payload | alpha | CRC-32 (u32, little-endian)
    version 2: header (73 bytes) | qparams | payload | alpha | CRC-32
    version 5: header | options | map | payload | alpha | CRC-32 (sections: tilecode.py)

In versions 1 and 2 the payload holds the quantised parameter values of every tile:
zstd-compressed fp16 (quantiser 0, both versions), or, in version 2, integer deltas from
the shared initialisation (quantiser 1) whose step sizes are the qparams section,
entropy-coded by zstd or an adaptive range coder (`coder`). Alpha, when the image has
one, is the zstd-compressed 8-bit alpha plane (lossless). Each zstd section is exactly one
zstd frame, nothing after it. Field by field: bitstream_spec/README.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import FormatError
from ..entropy import CODERS, RANGE, ZSTD
from ..header import MAGIC, MAX_SECTION, Field, ImageHeader, validate_alpha_len, validate_image
from .quantiser import DELTA, DELTA_BITS, FP16, QUANTIZERS

VERSION = 2  # the paper's encoder (--preset paper) writes this
SUPPORTED_VERSIONS = (1, 2)  # one level for every tile
RD_VERSION = 5  # a level per tile, fitted for distortion + lambda x rate
MAX_TILES = 1 << 20
MAX_VALUES = 1 << 28  # tiles x parameters per tile
MAX_QPARAMS = 4096  # bytes; a model has 2 step sizes (4 bytes each) per layer
MAX_OPTIONS = 16  # version 5: options (level, kind) a file may offer its tiles

FIELDS_V1 = (
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
FIELDS_V2 = (
    Field("magic", "4s", "b'INRC'"),
    Field("version", "B", "format version (this is 2)"),
    Field("flags", "B", "bit 0: alpha plane present; other bits 0"),
    Field("model_hash", "32s", "SHA-256 of the shared-model file needed to decode"),
    Field("width", "I", "image width in pixels, 1..65536"),
    Field("height", "I", "image height in pixels, 1..65536"),
    Field("mode", "B", "0 L, 1 LA, 2 RGB, 3 RGBA"),
    Field("level", "B", "ladder level of the shared model"),
    Field("quantizer", "B", "0: fp16 values; 1: integer deltas from the level's initialisation"),
    Field("qbits", "B", "quantiser 1: integer width, 8 or 16 (magnitudes below 2^(qbits-1)); else 0"),
    Field("coder", "B", "0: zstd; 1: adaptive range coder (quantiser 1 only)"),
    Field("tile", "H", "tile side T in pixels (must equal the model's)"),
    Field("tiles_y", "H", "tiles down = ceil(height / T)"),
    Field("tiles_x", "H", "tiles across = ceil(width / T)"),
    Field("n_params", "I", "values per tile (the level's surviving weights + biases)"),
    Field("qparams_len", "I", "bytes of the quantiser parameters (quantiser 1: 4 x tensors; else 0)"),
    Field("payload_len", "I", "bytes of the coded parameter payload"),
    Field("alpha_len", "I", "bytes of the zstd-compressed alpha plane (0 if none)"),
)
FIELDS_V5 = (
    Field("magic", "4s", "b'INRC'"),
    Field("version", "B", "format version (this is 5: weight mode, a level per tile)"),
    Field("flags", "B", "bit 0: alpha plane present; other bits 0"),
    Field("model_hash", "32s", "SHA-256 of the shared-model file needed to decode"),
    Field("width", "I", "image width in pixels, 1..65536"),
    Field("height", "I", "image height in pixels, 1..65536"),
    Field("mode", "B", "0 L, 1 LA, 2 RGB, 3 RGBA"),
    Field("tile", "H", "tile side T in pixels (must equal the model's)"),
    Field("tiles_y", "H", "tiles down = ceil(height / T)"),
    Field("tiles_x", "H", "tiles across = ceil(width / T)"),
    Field("options", "B", "K, the options a tile can take (level and what it stores), 1..16"),
    Field("options_len", "I", "bytes of the options section (step sizes and priors)"),
    Field("map_len", "I", "bytes of the tile map section (0 when K = 1)"),
    Field("payload_len", "I", "bytes of the range-coded integers"),
    Field("alpha_len", "I", "bytes of the zstd-compressed alpha plane (0 if none)"),
)


def _validate_tile_grid(h) -> None:
    if h.tile < 2:
        raise FormatError(f"tile size {h.tile} is invalid")
    if h.tiles_y != -(-h.height // h.tile) or h.tiles_x != -(-h.width // h.tile):
        raise FormatError("tile grid does not match the image size")


@dataclass(frozen=True)
class Header(ImageHeader):
    """Versions 1 and 2: every tile stores the same level's values."""

    LAYOUTS = {1: FIELDS_V1, 2: FIELDS_V2}
    NAMES = {"quantizer": QUANTIZERS, "coder": CODERS}

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
    # version 2 only (version 1 files read as fp16, zstd, no quantiser parameters)
    qbits: int = 0
    coder: int = ZSTD
    qparams_len: int = 0

    @property
    def n_tiles(self) -> int:
        return self.tiles_y * self.tiles_x

    def sections(self) -> list[tuple[str, int]]:
        return [("qparams", self.qparams_len), ("payload", self.payload_len),
                ("alpha", self.alpha_len)]

    def validate(self) -> None:
        """Every limit a header must meet before any allocation is sized by it."""
        h = self
        if h.magic != MAGIC:
            raise FormatError("not an inrcodec file (bad magic bytes)")
        if h.version not in SUPPORTED_VERSIONS:
            raise FormatError(f"format version {h.version} is not supported (this inrcodec "
                              f"reads {', '.join(map(str, SUPPORTED_VERSIONS))})")
        validate_image(h)
        if h.quantizer not in QUANTIZERS or (h.version == 1 and h.quantizer != FP16):
            raise FormatError(f"unknown quantiser id {h.quantizer}")
        if h.coder not in CODERS:
            raise FormatError(f"unknown coder id {h.coder}")
        if h.quantizer == FP16 and (h.coder != ZSTD or h.qbits != 0 or h.qparams_len != 0):
            raise FormatError("fp16 values are zstd-coded, with no qbits and no quantiser "
                              "parameters")
        if h.quantizer == DELTA:
            if h.qbits not in DELTA_BITS:
                raise FormatError(f"qbits {h.qbits} is not one of {DELTA_BITS}")
            if not (0 < h.qparams_len <= MAX_QPARAMS) or h.qparams_len % 4:
                raise FormatError(f"quantiser parameters of {h.qparams_len} bytes are invalid")
        if h.coder == RANGE and h.payload_len % 4:
            raise FormatError("a range-coded payload is a whole number of 32-bit words")
        _validate_tile_grid(h)
        if h.n_params < 1:
            raise FormatError("a file must store at least one value per tile")
        if h.n_tiles > MAX_TILES or h.n_tiles * h.n_params > MAX_VALUES:
            raise FormatError(f"{h.n_tiles} tiles x {h.n_params} values exceeds the limits")
        validate_alpha_len(h)


@dataclass(frozen=True)
class TileHeader(ImageHeader):
    """Version 5: tiles of network weights, each tile with its own option (a ladder level
    and what it stores); sections laid out by tilecode.py."""

    LAYOUTS = {RD_VERSION: FIELDS_V5}

    version: int
    flags: int
    model_hash: bytes
    width: int
    height: int
    mode: int
    tile: int
    tiles_y: int
    tiles_x: int
    options: int
    options_len: int
    map_len: int
    payload_len: int
    alpha_len: int
    magic: bytes = MAGIC

    @property
    def n_tiles(self) -> int:
        return self.tiles_y * self.tiles_x

    def sections(self) -> list[tuple[str, int]]:
        return [("options", self.options_len), ("map", self.map_len),
                ("payload", self.payload_len), ("alpha", self.alpha_len)]

    def validate(self) -> None:
        h = self
        validate_image(h)
        _validate_tile_grid(h)
        if h.n_tiles > MAX_TILES:
            raise FormatError(f"{h.n_tiles} tiles exceeds the limit {MAX_TILES}")
        if not 1 <= h.options <= MAX_OPTIONS:
            raise FormatError(f"{h.options} options is outside 1..{MAX_OPTIONS}")
        if (h.options == 1) != (h.map_len == 0):
            raise FormatError("the tile map is empty exactly when there is one option")
        if h.payload_len % 4 or h.map_len % 4:
            raise FormatError("range-coded sections are whole numbers of 32-bit words")
        if max(h.options_len, h.map_len, h.payload_len, h.alpha_len) > MAX_SECTION:
            raise FormatError("a section is larger than any valid file's")
        validate_alpha_len(h)
