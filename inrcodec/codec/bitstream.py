"""The .inr container: header, sections, CRC. The only module that lays out a file's
sections; what is inside a section belongs to the quantiser and coder that wrote it.

    version 1: header (67 bytes) | payload | alpha | CRC-32 (u32, little-endian)
    version 2: header (73 bytes) | qparams | payload | alpha | CRC-32

The payload holds the quantised parameter values of every tile: zstd-compressed fp16
(quantiser 0, both versions), or, in version 2, integer deltas from the shared
initialisation (quantiser 1) whose step sizes are the qparams section, entropy-coded by
zstd or an adaptive range coder (`coder`). Alpha, when the image has one, is the
zstd-compressed 8-bit alpha plane (lossless). Each zstd section is exactly one zstd frame,
nothing after it. The CRC covers every byte before it. Field by field: bitstream_spec/README.md.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import asdict, dataclass

from ..errors import ChecksumError, FormatError
from .entropy import CODERS, RANGE, ZSTD, unzstd, zstd
from .quantiser import DELTA, DELTA_BITS, FP16, QUANTIZERS

MAGIC = b"INRC"
VERSION = 2  # what the weight-mode encoder writes by default
SUPPORTED_VERSIONS = (1, 2)  # weight mode (tiles of network weights)
LATENT_VERSION = 4  # latent mode: what the encoder writes (3 is read too)
LATENT_VERSIONS = (3, 4)
READ_VERSIONS = (1, 2, 3, 4, 5)
ACTIVATIONS = {0: "relu", 1: "sine"}
MODES = {0: "L", 1: "LA", 2: "RGB", 3: "RGBA"}
MODE_IDS = {v: k for k, v in MODES.items()}
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28
MAX_TILES = 1 << 20
MAX_VALUES = 1 << 28  # tiles x parameters per tile
FLAG_ALPHA = 1
MAX_QPARAMS = 4096  # bytes; a model has 2 step sizes (4 bytes each) per layer


@dataclass(frozen=True)
class Field:
    name: str
    fmt: str  # struct code, little-endian
    meaning: str


# The headers, declared once: packing, parsing, the spec tables and `inrcodec info` read these.
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
FIELDS_V3 = (
    Field("magic", "4s", "b'INRC'"),
    Field("version", "B", "format version (this is 3: latent mode)"),
    Field("flags", "B", "bit 0: alpha plane present; other bits 0"),
    Field("model_hash", "32s", "SHA-256 of the shared model needed to decode; all zero: none"),
    Field("width", "I", "image width in pixels, 1..65536"),
    Field("height", "I", "image height in pixels, 1..65536"),
    Field("mode", "B", "0 L, 1 LA, 2 RGB, 3 RGBA"),
    Field("levels", "B", "latent grids, 1..12; grid k is ceil(height/2^k) x ceil(width/2^k)"),
    Field("hidden", "B", "synthesis hidden width, 1..255"),
    Field("layers", "B", "synthesis hidden layers, 1..8"),
    Field("act", "B", "synthesis activation: 0 ReLU, 1 sine"),
    Field("w0", "H", "sine frequency factor (1..65535; act 1 only, else 0)"),
    Field("synth_len", "I", "bytes of the synthesis parameters section"),
    Field("arm_len", "I", "bytes of the autoregressive model section"),
    Field("latent_len", "I", "bytes of the latent grids section"),
    Field("alpha_len", "I", "bytes of the zstd-compressed alpha plane (0 if none)"),
)
FIELDS_V4 = (
    Field("magic", "4s", "b'INRC'"),
    Field("version", "B", "format version (this is 4: latent mode)"),
    Field("flags", "B", "bit 0: alpha plane present; other bits 0"),
    Field("model_hash", "32s", "SHA-256 of the latent shared model the synthesis starts from "
          "and whose entropy model codes the latents; all zero: none (self-contained file)"),
    Field("width", "I", "image width in pixels, 1..65536"),
    Field("height", "I", "image height in pixels, 1..65536"),
    Field("mode", "B", "0 L, 1 LA, 2 RGB, 3 RGBA"),
    Field("level", "B", "ladder level of the shared model (0 without one)"),
    Field("levels", "B", "latent grids, 1..12; grid k is ceil(height/2^k) x ceil(width/2^k)"),
    Field("coords", "B", "1: the pixel's two coordinates are synthesis inputs too; else 0"),
    Field("hidden", "B", "synthesis hidden width, 1..255"),
    Field("layers", "B", "synthesis hidden layers, 1..8"),
    Field("act", "B", "synthesis activation: 0 ReLU, 1 sine"),
    Field("w0", "H", "sine frequency factor (1..65535; act 1 only, else 0)"),
    Field("synth_len", "I", "bytes of the synthesis section (0 with a shared model: no deltas)"),
    Field("arm_len", "I", "bytes of the autoregressive model section (0: the shared model's)"),
    Field("latent_len", "I", "bytes of the latent grids section"),
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
RD_VERSION = 5  # weight mode with a rate-distortion fit and a level per tile
MAX_OPTIONS = 16  # version 5: options (level, kind) a file may offer its tiles
LAYOUTS = {1: FIELDS_V1, 2: FIELDS_V2, 3: FIELDS_V3, 4: FIELDS_V4, 5: FIELDS_V5}
FIELDS = FIELDS_V2  # the current version
FORMATS = {v: "<" + "".join(f.fmt for f in fs) for v, fs in LAYOUTS.items()}
HEADER_SIZES = {v: struct.calcsize(fmt) for v, fmt in FORMATS.items()}
HEADER_FMT = FORMATS[VERSION]
HEADER_SIZE = max(HEADER_SIZES.values())
MIN_HEADER_SIZE = min(HEADER_SIZES.values())
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
    # version 2 only (version 1 files read as fp16, zstd, no quantiser parameters)
    qbits: int = 0
    coder: int = ZSTD
    qparams_len: int = 0

    @property
    def size(self) -> int:
        """Bytes of the header in this file's version."""
        return HEADER_SIZES[self.version]

    @property
    def n_tiles(self) -> int:
        return self.tiles_y * self.tiles_x

    @property
    def mode_name(self) -> str:
        return MODES[self.mode]

    @property
    def has_alpha(self) -> bool:
        return bool(self.flags & FLAG_ALPHA)

    def sections(self) -> list[tuple[str, int]]:
        """The sections after the header, in file order, with their lengths."""
        return [("qparams", self.qparams_len), ("payload", self.payload_len),
                ("alpha", self.alpha_len)]

    def describe(self) -> list[tuple[str, str, str]]:
        """(field, value, meaning) rows for `inrcodec info`."""
        return _describe(self, LAYOUTS[self.version])


@dataclass(frozen=True)
class LatentHeader:
    """Format versions 3 and 4: an image as latent grids decoded by a synthesis network.
    Version 3 has no level and no coordinates (both read as 0) and is self-contained."""

    version: int
    flags: int
    model_hash: bytes
    width: int
    height: int
    mode: int
    levels: int
    hidden: int
    layers: int
    act: int
    w0: int
    synth_len: int
    arm_len: int
    latent_len: int
    alpha_len: int
    magic: bytes = MAGIC
    level: int = 0  # version 4 only
    coords: int = 0  # version 4 only

    @property
    def shared(self) -> bool:
        return any(self.model_hash)

    size = property(lambda self: HEADER_SIZES[self.version])
    mode_name = property(lambda self: MODES[self.mode])
    has_alpha = property(lambda self: bool(self.flags & FLAG_ALPHA))

    def sections(self) -> list[tuple[str, int]]:
        return [("synthesis", self.synth_len), ("arm", self.arm_len),
                ("latents", self.latent_len), ("alpha", self.alpha_len)]

    def describe(self) -> list[tuple[str, str, str]]:
        return _describe(self, LAYOUTS[self.version])


@dataclass(frozen=True)
class TileHeader:
    """Format version 5: tiles of network weights, each tile with its own option (a
    ladder level and what it stores); sections laid out by codec/tilecode.py."""

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

    size = property(lambda self: HEADER_SIZES[self.version])
    mode_name = property(lambda self: MODES[self.mode])
    has_alpha = property(lambda self: bool(self.flags & FLAG_ALPHA))
    n_tiles = property(lambda self: self.tiles_y * self.tiles_x)

    def sections(self) -> list[tuple[str, int]]:
        return [("options", self.options_len), ("map", self.map_len),
                ("payload", self.payload_len), ("alpha", self.alpha_len)]

    def describe(self) -> list[tuple[str, str, str]]:
        return _describe(self, LAYOUTS[self.version])


def _describe(h, fields) -> list[tuple[str, str, str]]:
    """(field, value, meaning) rows, ids spelled out: `inrcodec info`."""
    names = {"mode": MODES, "quantizer": QUANTIZERS, "coder": CODERS, "act": ACTIVATIONS}
    d = asdict(h)
    rows = []
    for f in fields:
        v = d[f.name]
        if f.name == "model_hash":
            v = v.hex()
        elif f.name == "magic":
            v = v.decode("latin-1")
        elif f.name in names:
            v = f"{v} ({names[f.name].get(v, '?')})"
        rows.append((f.name, str(v), f.meaning))
    return rows


MAX_SECTION = 1 << 30


def _validate_image(h) -> None:
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


def _validate_alpha_len(h) -> None:
    if (h.alpha_len == 0) == h.has_alpha:
        raise FormatError("alpha length disagrees with the alpha flag")


def validate_latent(h: LatentHeader) -> None:
    _validate_image(h)
    if not 1 <= h.levels <= 12 or not 1 <= h.hidden or not 1 <= h.layers <= 8:
        raise FormatError(f"latent architecture (levels {h.levels}, hidden {h.hidden}, "
                          f"layers {h.layers}) is out of range")
    if h.act not in ACTIVATIONS or (h.act == 1) != (h.w0 > 0):
        raise FormatError(f"activation {h.act} with w0 {h.w0} is invalid")
    if h.version == 3 and h.shared:
        raise FormatError("a version-3 file names no shared model (model_hash must be zero)")
    if h.coords not in (0, 1):
        raise FormatError(f"coords field {h.coords} is not 0 or 1")
    if not h.shared and (h.level or h.synth_len == 0 or h.arm_len == 0):
        raise FormatError("a self-contained latent file needs its synthesis and its "
                          "autoregressive model, and has no level")
    if (h.arm_len % 2 == 0 and h.arm_len) or h.latent_len < 2 * h.levels or \
            (h.latent_len - 2 * h.levels) % 4:
        raise FormatError("latent sections have impossible lengths")
    if max(h.synth_len, h.arm_len, h.latent_len, h.alpha_len) > MAX_SECTION:
        raise FormatError("a section is larger than any valid file's")
    _validate_alpha_len(h)


def validate_tiles(h: TileHeader) -> None:
    _validate_image(h)
    if h.tile < 2:
        raise FormatError(f"tile size {h.tile} is invalid")
    if h.tiles_y != -(-h.height // h.tile) or h.tiles_x != -(-h.width // h.tile):
        raise FormatError("tile grid does not match the image size")
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
    _validate_alpha_len(h)


def validate(h: Header) -> None:
    """Every limit a header must meet before any allocation is sized by it."""
    if isinstance(h, LatentHeader):
        return validate_latent(h)
    if isinstance(h, TileHeader):
        return validate_tiles(h)
    if h.magic != MAGIC:
        raise FormatError("not an inrcodec file (bad magic bytes)")
    if h.version not in SUPPORTED_VERSIONS:
        raise FormatError(f"format version {h.version} is not supported (this inrcodec reads "
                          f"{', '.join(map(str, SUPPORTED_VERSIONS))})")
    _validate_image(h)
    if h.quantizer not in QUANTIZERS or (h.version == 1 and h.quantizer != FP16):
        raise FormatError(f"unknown quantiser id {h.quantizer}")
    if h.coder not in CODERS:
        raise FormatError(f"unknown coder id {h.coder}")
    if h.quantizer == FP16 and (h.coder != ZSTD or h.qbits != 0 or h.qparams_len != 0):
        raise FormatError("fp16 values are zstd-coded, with no qbits and no quantiser parameters")
    if h.quantizer == DELTA:
        if h.qbits not in DELTA_BITS:
            raise FormatError(f"qbits {h.qbits} is not one of {DELTA_BITS}")
        if not (0 < h.qparams_len <= MAX_QPARAMS) or h.qparams_len % 4:
            raise FormatError(f"quantiser parameters of {h.qparams_len} bytes are invalid")
    if h.coder == RANGE and h.payload_len % 4:
        raise FormatError("a range-coded payload is a whole number of 32-bit words")
    if h.tile < 2:
        raise FormatError(f"tile size {h.tile} is invalid")
    if h.tiles_y != -(-h.height // h.tile) or h.tiles_x != -(-h.width // h.tile):
        raise FormatError("tile grid does not match the image size")
    if h.n_params < 1:
        raise FormatError("a file must store at least one value per tile")
    n_tiles = h.tiles_y * h.tiles_x
    if n_tiles > MAX_TILES or n_tiles * h.n_params > MAX_VALUES:
        raise FormatError(f"{n_tiles} tiles x {h.n_params} values exceeds the limits")
    _validate_alpha_len(h)


def pack(h: Header, payload: bytes, alpha: bytes = b"", qparams: bytes = b"") -> bytes:
    """Header + sections + CRC. `payload` is coded and `alpha` zstd-compressed already."""
    if h.version == 1 and (h.qbits, h.coder, h.qparams_len) != (0, ZSTD, 0):
        raise ValueError("version 1 has no qbits, coder or quantiser parameters")
    return pack_sections(h, {"qparams": qparams, "payload": payload, "alpha": alpha})


def pack_sections(h, sections: dict[str, bytes]) -> bytes:
    """Header + its sections in file order + CRC-32 of everything before it."""
    if any(len(sections.get(name, b"")) != n for name, n in h.sections()):
        raise ValueError("section lengths disagree with the header")
    validate(h)
    d = asdict(h)
    head = struct.pack(FORMATS[h.version], *(d[f.name] for f in LAYOUTS[h.version]))
    body = head + b"".join(sections.get(name, b"") for name, _ in h.sections())
    return body + struct.pack("<I", zlib.crc32(body))


def unpack_header(data: bytes) -> Header:
    if len(data) < 5:
        if not data.startswith(MAGIC[:len(data)]):
            raise FormatError("not an inrcodec file (bad magic bytes)")
        raise FormatError(f"file is truncated: {len(data)} bytes, the header alone is "
                          f"at least {MIN_HEADER_SIZE}")
    if data[:4] != MAGIC:
        raise FormatError("not an inrcodec file (bad magic bytes)")
    version = data[4]
    if version not in READ_VERSIONS:
        raise FormatError(f"format version {version} is not supported (this inrcodec reads "
                          f"{', '.join(map(str, READ_VERSIONS))})")
    size = HEADER_SIZES[version]
    if len(data) < size:
        raise FormatError(f"file is truncated: {len(data)} bytes, the header alone is {size}")
    vals = struct.unpack(FORMATS[version], data[:size])
    cls = LatentHeader if version in LATENT_VERSIONS else \
        TileHeader if version == RD_VERSION else Header
    h = cls(**{f.name: v for f, v in zip(LAYOUTS[version], vals)})
    validate(h)
    return h


def verify(data: bytes) -> Header:
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


def qparams_section(data: bytes, h: Header) -> bytes:
    """The quantiser parameters (raw) of a file `verify` accepted as `h`."""
    return section(data, h, "qparams")


def coded_payload(data: bytes, h: Header) -> bytes:
    """The payload section as stored (still entropy-coded)."""
    return section(data, h, "payload")


def alpha_section(data: bytes, h) -> bytes:
    """The decompressed alpha plane (b"" when there is none) of a file `verify` accepted."""
    if not h.has_alpha:
        return b""
    return unzstd(section(data, h, "alpha"), h.width * h.height, "alpha plane")


def write(*, version: int, model_hash: str, width: int, height: int, mode: str, level: int,
          tile: int, n_params: int, payload, alpha_plane: bytes | None = None) -> bytes:
    """A whole file from a quantiser's Payload and, for LA/RGBA images, the raw alpha plane
    (stored losslessly, zstd-compressed)."""
    alpha = zstd(alpha_plane) if alpha_plane else b""
    header = Header(
        version=version, flags=FLAG_ALPHA if alpha else 0, model_hash=bytes.fromhex(model_hash),
        width=width, height=height, mode=MODE_IDS[mode], level=level,
        quantizer=payload.quantizer, qbits=payload.qbits, coder=payload.coder, tile=tile,
        tiles_y=-(-height // tile), tiles_x=-(-width // tile), n_params=n_params,
        qparams_len=len(payload.qparams), payload_len=len(payload.data), alpha_len=len(alpha))
    return pack(header, payload.data, alpha, payload.qparams)


def write_latent(*, model_hash: bytes, width: int, height: int, mode: str, levels: int,
                 hidden: int, layers: int, act: str, w0: int, synthesis: bytes, arm: bytes,
                 latents: bytes, alpha_plane: bytes | None = None, level: int = 0,
                 coords: bool = False, version: int = LATENT_VERSION) -> bytes:
    """A whole latent-mode file from its coded sections and, for LA/RGBA, the raw alpha.
    Version 3 (for its test vectors) has no level, no coordinates and no shared model."""
    if version == 3 and (level or coords or any(model_hash)):
        raise ValueError("version 3 has no level, coordinates or shared model")
    alpha = zstd(alpha_plane) if alpha_plane else b""
    act_id = {v: k for k, v in ACTIVATIONS.items()}[act]
    h = LatentHeader(version=version, flags=FLAG_ALPHA if alpha else 0, level=level,
                     coords=int(coords),
                     model_hash=model_hash, width=width, height=height, mode=MODE_IDS[mode],
                     levels=levels, hidden=hidden, layers=layers, act=act_id,
                     w0=w0 if act == "sine" else 0, synth_len=len(synthesis),
                     arm_len=len(arm), latent_len=len(latents), alpha_len=len(alpha))
    return pack_sections(h, {"synthesis": synthesis, "arm": arm, "latents": latents,
                             "alpha": alpha})


def write_tiles(*, model_hash: str, width: int, height: int, mode: str, tile: int,
                n_options: int, options: bytes, tile_map: bytes, payload: bytes,
                alpha_plane: bytes | None = None) -> bytes:
    """A whole format-5 file from its coded sections (codec/tilecode.py) and, for LA/RGBA
    images, the raw alpha plane."""
    alpha = zstd(alpha_plane) if alpha_plane else b""
    h = TileHeader(version=RD_VERSION, flags=FLAG_ALPHA if alpha else 0,
                   model_hash=bytes.fromhex(model_hash), width=width, height=height,
                   mode=MODE_IDS[mode], tile=tile, tiles_y=-(-height // tile),
                   tiles_x=-(-width // tile), options=n_options, options_len=len(options),
                   map_len=len(tile_map), payload_len=len(payload), alpha_len=len(alpha))
    return pack_sections(h, {"options": options, "map": tile_map, "payload": payload,
                             "alpha": alpha})
