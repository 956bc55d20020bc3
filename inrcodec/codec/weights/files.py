"""The weight mode's files, whole: a header of its format (format.py) and its coded
sections, laid out by bitstream.py."""
from __future__ import annotations

from .. import bitstream
from ..entropy import ZSTD
from ..header import MODE_IDS
from .format import RD_VERSION, Header, TileHeader


def pack(h: Header, payload: bytes, alpha: bytes = b"", qparams: bytes = b"") -> bytes:
    """Header + sections + CRC. `payload` is coded and `alpha` zstd-compressed already."""
    if h.version == 1 and (h.qbits, h.coder, h.qparams_len) != (0, ZSTD, 0):
        raise ValueError("version 1 has no qbits, coder or quantiser parameters")
    return bitstream.pack_sections(h, {"qparams": qparams, "payload": payload, "alpha": alpha})


def write(*, version: int, model_hash: str, width: int, height: int, mode: str, level: int,
          tile: int, n_params: int, payload, alpha_plane: bytes | None = None) -> bytes:
    """A whole version-1/2 file from a quantiser's Payload and, for LA/RGBA images, the raw
    alpha plane."""
    flags, alpha = bitstream.alpha_of(alpha_plane)
    header = Header(
        version=version, flags=flags, model_hash=bytes.fromhex(model_hash),
        width=width, height=height, mode=MODE_IDS[mode], level=level,
        quantizer=payload.quantizer, qbits=payload.qbits, coder=payload.coder, tile=tile,
        tiles_y=-(-height // tile), tiles_x=-(-width // tile), n_params=n_params,
        qparams_len=len(payload.qparams), payload_len=len(payload.data), alpha_len=len(alpha))
    return pack(header, payload.data, alpha, payload.qparams)


def write_tiles(*, model_hash: str, width: int, height: int, mode: str, tile: int,
                n_options: int, options: bytes, tile_map: bytes, payload: bytes,
                alpha_plane: bytes | None = None) -> bytes:
    """A whole format-5 file from its coded sections (tilecode.py) and, for LA/RGBA
    images, the raw alpha plane."""
    flags, alpha = bitstream.alpha_of(alpha_plane)
    h = TileHeader(version=RD_VERSION, flags=flags,
                   model_hash=bytes.fromhex(model_hash), width=width, height=height,
                   mode=MODE_IDS[mode], tile=tile, tiles_y=-(-height // tile),
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
