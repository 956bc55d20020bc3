"""Generators of malformed .inr files, shared by tests/test_hostile.py and
benchmarks/fuzz_decoder.py. Each yields (kind, bytes) from one valid file.

Random corruption almost always breaks the CRC-32, so most generators here re-pack
their output with a correct CRC: those files reach the deeper checks (zstd frames,
section sizes, mode and alpha flags, non-finite values, level and n_params vs model, and in
version 2 the quantiser parameters, qbits, the coder and range-coded payloads).
"""
from __future__ import annotations

import random
import struct
import zlib
from dataclasses import asdict

import numpy as np
import zstandard

from inrcodec.codec import bitstream
from inrcodec.codec.header import IMAGE_MODES
from inrcodec.codec.weights import format as wformat

H = bitstream.min_header_size()  # random files: noise behind a version-1-sized header
NAMES = [f.name for f in wformat.FIELDS_V2]  # every field of either version (v2 has them all)
FMTS = {f.name: f.fmt for f in wformat.FIELDS_V2}


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def fix_crc(data: bytes) -> bytes:
    return with_crc(data[:-4]) if len(data) >= 4 else data


def build(fields: dict, payload: bytes, alpha: bytes = b"", *, fix_lengths: bool = True,
          qparams: bytes | None = None) -> bytes:
    """Header + sections + a valid CRC, with no validation of the header.

    The header is laid out as its `version` field says (version 1's layout for versions this
    inrcodec does not know, or whose fields these are not). Version-2 quantiser parameters come from `qparams`, else from
    the `qparams_bytes` that `parts` put in the fields."""
    f = dict(fields)
    qp = f.pop("qparams_bytes", b"") if qparams is None else qparams
    f.pop("qparams_bytes", None)
    layout = bitstream.layout(f["version"]) if f["version"] in bitstream.versions() \
        else wformat.FIELDS_V1
    if any(x.name not in f for x in layout):  # e.g. a weight header claiming version 3
        layout = wformat.FIELDS_V1
    if layout is wformat.FIELDS_V1:
        qp = b""
    if fix_lengths:
        f.update(payload_len=len(payload), alpha_len=len(alpha))
        if layout is not wformat.FIELDS_V1:
            f.update(qparams_len=len(qp))
    fmt = "<" + "".join(x.fmt for x in layout)
    head = struct.pack(fmt, *(f[x.name] for x in layout))
    return with_crc(head + qp + payload + alpha)


def parts(data: bytes) -> tuple[dict, bytes, bytes]:
    """(header fields, coded payload, compressed alpha) of a valid file; the fields carry
    the version-2 quantiser parameters as `qparams_bytes`."""
    h = bitstream.unpack_header(data)
    p0 = h.size + h.qparams_len
    p = data[p0:p0 + h.payload_len]
    a = data[p0 + h.payload_len:p0 + h.payload_len + h.alpha_len]
    return dict(asdict(h), qparams_bytes=wformat.qparams_section(data, h)), p, a


def field_max(name: str) -> int:
    return (1 << (8 * struct.calcsize("<" + FMTS[name]))) - 1


# -- generators ------------------------------------------------------------------------
def truncations(data: bytes):
    for i in range(len(data)):
        yield "truncated", data[:i]
    yield "extended", data + b"\0"
    yield "extended", fix_crc(data[:-4] + b"\0" + data[-4:])


def bit_flips(data: bytes, rng: random.Random, n: int, *, valid_crc: bool):
    """n copies with 1..8 flipped bits (in the whole file, or before the CRC when valid_crc)."""
    span = len(data) - 4 if valid_crc else len(data)
    for _ in range(n):
        x = bytearray(data)
        for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
            p = rng.randrange(span)
            x[p] ^= 1 << rng.randrange(8)
        yield ("flip+crc" if valid_crc else "flip"), fix_crc(bytes(x)) if valid_crc else bytes(x)


def random_files(rng: random.Random, n: int):
    """Pure noise, noise behind the magic, and noise behind a plausible header with a CRC."""
    for _ in range(n):
        k = rng.randrange(3)
        body = rng.randbytes(rng.randrange(0, 200))
        v = rng.choice(wformat.PAPER_VERSIONS)
        if k == 0:
            yield "random", body
        elif k == 1:
            yield "random+magic", bitstream.MAGIC + bytes([v]) + body
        else:
            size = bitstream.header_size(v)
            yield "random+crc", with_crc(bitstream.MAGIC + bytes([v]) + rng.randbytes(size - 5)
                                         + body)


def _field_value(rng: random.Random, name: str, old: int) -> int:
    top = field_max(name)
    return rng.choice((0, 1, 2, 3, top, top - 1, rng.randint(0, top), rng.randint(0, 255),
                       max(0, old - 1), min(top, old + 1), min(top, old * 2), old // 2))


def header_fields(data: bytes, rng: random.Random, n: int):
    """Random values of 1-3 header fields, sections unchanged, CRC valid.

    Half of them keep the tile grid consistent with the new width, height and tile, so
    they get past that check to the size limits and the model checks.
    """
    base, p, a = parts(data)
    layout = bitstream.layout(base["version"])
    ints = [x.name for x in layout if x.fmt not in ("4s", "32s")]
    for _ in range(n):
        f = dict(base)
        for name in rng.sample(ints, rng.choice((1, 1, 2, 3))):
            f[name] = _field_value(rng, name, f[name])
        if rng.random() < 0.5 and f["tile"] >= 1:
            ty, tx = -(-f["height"] // f["tile"]), -(-f["width"] // f["tile"])
            if ty <= 0xFFFF and tx <= 0xFFFF:
                f.update(tiles_y=ty, tiles_x=tx)
        yield "header+crc", build(f, p, a, fix_lengths=rng.random() < 0.8)


def _raw(data: bytes) -> tuple[dict, bytes, bytes]:
    """Fields, payload (decompressed when zstd-coded) and raw alpha."""
    f, p, a = parts(data)
    if f["coder"] == 0:
        p = zstandard.ZstdDecompressor().decompress(p)
    return f, p, (zstandard.ZstdDecompressor().decompress(a) if a else b"")


def _z(raw: bytes, *, content_size: bool = True) -> bytes:
    return zstandard.ZstdCompressor(level=1, write_content_size=content_size).compress(raw)


def _bomb(n_bytes: int) -> bytes:
    """A zstd frame of n_bytes zeros that does not declare its size (built in small pieces)."""
    c = zstandard.ZstdCompressor(level=1, write_content_size=False).compressobj()
    chunk = bytes(1 << 20)
    out = [c.compress(chunk) for _ in range(n_bytes >> 20)]
    return b"".join(out) + c.flush()


_BOMB = None


def bomb() -> bytes:
    global _BOMB
    if _BOMB is None:
        _BOMB = _bomb(256 << 20)
    return _BOMB


def section_variants(data: bytes, rng: random.Random):
    """Valid header and CRC, damaged sections: one of each kind, with random details."""
    f, raw_p, raw_a = _raw(data)
    a = _z(raw_a) if raw_a else b""
    if f["coder"] == 1:
        yield from _range_variants(f, raw_p, a, rng)
    else:
        yield from _zstd_variants(f, raw_p, a, rng)
    if f["quantizer"] == 1:
        yield from _qparam_variants(f, parts(data)[1], a, rng)
    yield from _header_variants(f, parts(data)[1], a, raw_a, rng)


def _zstd_variants(f: dict, raw_p: bytes, a: bytes, rng: random.Random):
    p = zstandard.ZstdCompressor(level=1).compress(raw_p)
    cut = rng.randrange(1, len(raw_p))
    yield "zstd:not-a-frame", build(f, rng.randbytes(len(p)), a)
    yield "zstd:empty", build(f, b"", a)
    yield "zstd:skippable", build(f, struct.pack("<II", 0x184D2A50, 4) + b"\0" * 4, a)
    yield "zstd:short", build(f, _z(raw_p[:cut]), a)
    yield "zstd:short-no-size", build(f, _z(raw_p[:cut], content_size=False), a)
    yield "zstd:long", build(f, _z(raw_p + raw_p[:cut]), a)
    yield "zstd:long-no-size", build(f, _z(raw_p + raw_p[:cut], content_size=False), a)
    yield "zstd:trailing-bytes", build(f, p + rng.randbytes(rng.randrange(1, 9)), a)
    yield "zstd:two-frames", build(f, p + p, a)
    yield "zstd:truncated-frame", build(f, p[:rng.randrange(1, len(p))], a)
    yield "zstd:bomb", build(f, bomb(), a)
    if f["quantizer"] == 0:
        vals = np.frombuffer(raw_p, "<f2").copy()
        vals[rng.randrange(vals.size)] = rng.choice((np.inf, -np.inf, np.nan))
        yield "payload:non-finite", build(f, _z(vals.tobytes()), a)
    else:  # integers beyond the range qbits declares (int8: -128; int16: +-32768 etc.)
        dt = "<i1" if f["qbits"] == 8 else "<i2"
        vals = np.frombuffer(raw_p, dt).copy()
        vals[rng.randrange(vals.size)] = np.iinfo(dt).min
        yield "payload:out-of-range", build(f, _z(vals.tobytes()), a)
        if f["qbits"] == 16:
            yield "payload:qbits", build(dict(f, qbits=8), _z(raw_p), a)
        else:
            yield "payload:qbits", build(dict(f, qbits=16), _z(raw_p), a)


def _range_variants(f: dict, p: bytes, a: bytes, rng: random.Random):
    """Damaged range-coded payloads: every one must be refused (canonical bytes only)."""
    n = len(p) // 4
    yield "range:empty", build(f, b"", a)
    yield "range:words-cut", build(f, p[:4 * rng.randrange(0, n)], a)
    yield "range:word-added", build(f, p + rng.randbytes(4), a)
    yield "range:zero-word-added", build(f, p + bytes(4), a)
    yield "range:random-words", build(f, rng.randbytes(len(p)), a)
    yield "range:odd-length", build(f, p + b"\0", a)
    x = bytearray(p)
    x[rng.randrange(len(x))] ^= 1 << rng.randrange(8)
    yield "range:bit-flip", build(f, bytes(x), a)
    yield "range:as-zstd", build(dict(f, coder=0), p, a)
    yield "range:tiny-for-size", build(f, p[:4], a)


def _qparam_variants(f: dict, p: bytes, a: bytes, rng: random.Random):
    qp = np.frombuffer(f["qparams_bytes"], "<f4").copy()
    for bad in (0.0, -1.0, np.inf, np.nan, 1e30, -0.0):
        x = qp.copy()
        x[rng.randrange(x.size)] = bad
        yield "qparams:value", build(f, p, a, qparams=x.astype("<f4").tobytes())
    yield "qparams:short", build(f, p, a, qparams=qp[:-1].astype("<f4").tobytes())
    yield "qparams:long", build(f, p, a, qparams=np.append(qp, 1.0).astype("<f4").tobytes())
    yield "qparams:odd", build(f, p, a, qparams=qp.astype("<f4").tobytes() + b"\0")
    yield "qparams:none", build(f, p, a, qparams=b"")
    yield "qparams:fp16", build(dict(f, quantizer=0), p, a)
    yield "qparams:qbits", build(dict(f, qbits=rng.choice((0, 1, 7, 9, 15, 17, 255))), p, a)


def _header_variants(f: dict, p: bytes, a: bytes, raw_a: bytes, rng: random.Random):
    if a:
        yield "alpha:short", build(f, p, _z(raw_a[:-1]))
        yield "alpha:long", build(f, p, _z(raw_a + b"\0"))
        yield "alpha:bomb", build(f, p, bomb())
        yield "alpha:not-a-frame", build(f, p, rng.randbytes(len(a)))
        yield "alpha:missing", build(f, p, b"")
        yield "alpha:flag-cleared", build(dict(f, flags=0), p, a)
    else:
        yield "alpha:unexpected", build(dict(f, flags=1), p, _z(bytes(f["width"] * f["height"])))
    for mode in IMAGE_MODES:
        yield "mode", build(dict(f, image_mode=mode), p, a)
        yield "mode+flag", build(dict(f, image_mode=mode, flags=f["flags"] ^ 1), p, a)
    yield "quantizer", build(dict(f, quantizer=rng.randrange(2, 256)), p, a)
    if f["version"] == 1:
        yield "quantizer", build(dict(f, quantizer=1), p, a)
    else:
        yield "coder", build(dict(f, coder=rng.randrange(2, 256)), p, a)
        if f["quantizer"] == 0:
            yield "coder", build(dict(f, coder=1), p, a)
    yield "version", build(dict(f, version=rng.choice((0, 3, 255))), p, a)
    yield "level", build(dict(f, level=rng.randrange(256)), p, a)
    yield "n_params", build(dict(f, n_params=f["n_params"] + rng.choice((-1, 1, 7))), p, a)


def all_kinds(data: bytes, rng: random.Random, n: int):
    """n malformed files mixing every generator (truncations are sampled, not exhaustive)."""
    gens = [
        lambda: [("truncated", data[:rng.randrange(len(data))])],
        lambda: bit_flips(data, rng, 1, valid_crc=False),
        lambda: bit_flips(data, rng, 1, valid_crc=True),
        lambda: random_files(rng, 1),
        lambda: header_fields(data, rng, 1),
    ]
    section_every = 400
    for i in range(n):
        if i % section_every == 0:
            for item in section_variants(data, rng):
                yield item
        else:
            yield from gens[i % len(gens)]()
