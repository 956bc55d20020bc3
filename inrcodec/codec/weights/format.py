"""The weight mode's file formats: the header fields of versions 1, 2 (one level for every
tile: the paper's encoder) and 5 (a level per tile, fitted to distortion + lambda x rate),
and their whole files. bitstream.py lays headers and sections out in a file.

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
from .. import bitstream
from ..entropy import CODERS, RANGE, ZSTD
from ..header import (IMAGE_MODE_IDS, MAGIC, MAX_SECTION, Field, ImageHeader, common_fields,
                      validate_alpha_len, validate_image)
from .config import DELTA, DELTA_BITS, FP16, QUANTIZERS

PAPER_VERSION = 2  # the paper's encoder (--preset paper) writes this
PAPER_VERSIONS = (1, 2)  # one level for every tile
RD_VERSION = 5  # a level per tile, fitted for distortion + lambda x rate
MAX_TILES = 1 << 20
MAX_VALUES = 1 << 28  # tiles x parameters per tile
MAX_QPARAMS = 4096  # bytes; a model has 2 step sizes (4 bytes each) per layer
MAX_OPTIONS = 16  # version 5: options (level, kind) a file may offer its tiles

_TILE_GRID = (
    Field("tile", "H", "tile side T in pixels (must equal the model's)"),
    Field("tiles_y", "H", "tiles down = ceil(height / T)"),
    Field("tiles_x", "H", "tiles across = ceil(width / T)"),
)
_N_PARAMS = Field("n_params", "I", "values per tile (the level's surviving weights + biases)")
_LEVEL = Field("level", "B", "ladder level of the shared model")
_ALPHA = Field("alpha_len", "I", "bytes of the zstd-compressed alpha plane (0 if none)")
FIELDS_V1 = common_fields(1) + (
    _LEVEL,
    Field("quantizer", "B", "0: fp16 (IEEE 754 half, little-endian)"),
) + _TILE_GRID + (
    _N_PARAMS,
    Field("payload_len", "I", "bytes of the zstd-compressed parameter payload"),
    _ALPHA,
)
FIELDS_V2 = common_fields(2) + (
    _LEVEL,
    Field("quantizer", "B", "0: fp16 values; 1: integer deltas from the level's initialisation"),
    Field("qbits", "B", "quantiser 1: integer width, 8 or 16 (magnitudes below 2^(qbits-1)); "
          "else 0"),
    Field("coder", "B", "0: zstd; 1: adaptive range coder (quantiser 1 only)"),
) + _TILE_GRID + (
    _N_PARAMS,
    Field("qparams_len", "I", "bytes of the quantiser parameters (quantiser 1: 4 x tensors; "
          "else 0)"),
    Field("payload_len", "I", "bytes of the coded parameter payload"),
    _ALPHA,
)
FIELDS_V5 = common_fields(RD_VERSION, "weight mode, a level per tile") + _TILE_GRID + (
    Field("options", "B", "K, the options a tile can take (level and what it stores), 1..16"),
    Field("options_len", "I", "bytes of the options section (step sizes and priors)"),
    Field("map_len", "I", "bytes of the tile map section (0 when K = 1)"),
    Field("payload_len", "I", "bytes of the range-coded integers"),
    _ALPHA,
)


def _validate_tile_grid(h) -> None:
    if h.tile < 2:
        raise FormatError(f"tile size {h.tile} is invalid")
    if h.tiles_y != -(-h.height // h.tile) or h.tiles_x != -(-h.width // h.tile):
        raise FormatError("tile grid does not match the image size")


@dataclass(frozen=True)
class Header(ImageHeader):
    """Versions 1 and 2: every tile stores the same level's values."""

    LAYOUTS = {1: FIELDS_V1, PAPER_VERSION: FIELDS_V2}
    NAMES = {"quantizer": QUANTIZERS, "coder": CODERS}

    version: int
    flags: int
    model_hash: bytes
    width: int
    height: int
    image_mode: int
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
        if h.version not in PAPER_VERSIONS:
            raise FormatError(f"format version {h.version} is not supported (this inrcodec "
                              f"reads {', '.join(map(str, PAPER_VERSIONS))})")
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
    image_mode: int
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


# -- whole files ---------------------------------------------------------------------
def pack(h: Header, payload: bytes, alpha: bytes = b"", qparams: bytes = b"") -> bytes:
    """Header + sections + CRC. `payload` is coded and `alpha` zstd-compressed already."""
    if h.version == 1 and (h.qbits, h.coder, h.qparams_len) != (0, ZSTD, 0):
        raise ValueError("version 1 has no qbits, coder or quantiser parameters")
    return bitstream.pack_sections(h, {"qparams": qparams, "payload": payload, "alpha": alpha})


def write_file(*, version: int, model_hash: str, width: int, height: int, image_mode: str,
               level: int, tile: int, n_params: int, payload,
               alpha_plane: bytes | None = None) -> bytes:
    """A whole version-1/2 file from a quantiser's Payload and, for LA/RGBA images, the raw
    alpha plane."""
    flags, alpha = bitstream.alpha_of(alpha_plane)
    header = Header(
        version=version, flags=flags, model_hash=bytes.fromhex(model_hash),
        width=width, height=height, image_mode=IMAGE_MODE_IDS[image_mode], level=level,
        quantizer=payload.quantizer, qbits=payload.qbits, coder=payload.coder, tile=tile,
        tiles_y=-(-height // tile), tiles_x=-(-width // tile), n_params=n_params,
        qparams_len=len(payload.qparams), payload_len=len(payload.data), alpha_len=len(alpha))
    return pack(header, payload.data, alpha, payload.qparams)


def write_tiles(*, model_hash: str, width: int, height: int, image_mode: str, tile: int,
                n_options: int, options: bytes, tile_map: bytes, payload: bytes,
                alpha_plane: bytes | None = None) -> bytes:
    """A whole format-5 file from its coded sections (tilecode.py) and, for LA/RGBA
    images, the raw alpha plane."""
    flags, alpha = bitstream.alpha_of(alpha_plane)
    h = TileHeader(version=RD_VERSION, flags=flags,
                   model_hash=bytes.fromhex(model_hash), width=width, height=height,
                   image_mode=IMAGE_MODE_IDS[image_mode], tile=tile, tiles_y=-(-height // tile),
                   tiles_x=-(-width // tile), options=n_options, options_len=len(options),
                   map_len=len(tile_map), payload_len=len(payload), alpha_len=len(alpha))
    return bitstream.pack_sections(h, {"options": options, "map": tile_map,
                                       "payload": payload, "alpha": alpha})


def qparams_section(data: bytes, h: Header) -> bytes:
    """The quantiser parameters (raw) of a file `verify` accepted as `h`."""
    return bitstream.section(data, h, "qparams")


def coded_payload(data: bytes, h: Header) -> bytes:
    """The payload section as stored (still entropy-coded)."""
    return bitstream.section(data, h, "payload")
