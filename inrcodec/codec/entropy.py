"""Entropy coders: zstd frames, and the coders of the delta quantiser's integers (format v2).

Both take the (tiles, live parameters) integer matrix q, plus each column's tensor (group)
index, and return the payload section; both decoders are strict (bounded work and memory,
exactly the declared count, canonical bytes only).

- ZSTD (0): q as little-endian int8 (8-bit files) or int16 (16-bit files), tensor by
  tensor, and within a tensor parameter by parameter with all tiles' values of a parameter
  together; one zstd frame. A parameter's values across tiles are alike (many barely move
  in any tile), which this order turns into repeats zstd finds.
- RANGE (1): an adaptive binary range coder (constriction's RangeEncoder) with context
  modelling, tile by tile. Each integer is binarised as: zero flag, sign, magnitude class
  c = floor(log2 |q|) in unary, then the c bits below the leading one (the first modelled,
  the rest at probability 1/2). Every modelled bit's probability comes from counts of the
  same decision in earlier tiles, in a context made of the tensor and of how much the same
  parameter moved in earlier tiles. Field by field: bitstream_spec/README.md.
"""
from __future__ import annotations

import numpy as np

import zstandard

from ..errors import FormatError

ZSTD = 0
RANGE = 1
CODERS = {ZSTD: "zstd", RANGE: "range"}
CODERS_BY_NAME = {v: k for k, v in CODERS.items()}
ZSTD_LEVEL = 19

# Context of a parameter at tile t: bucket 0 at the first tile, else 1 + the number of
# edges e with 4*A > e*t, where A is the sum of |q| of that parameter over tiles 0..t-1
# (edges are 4x the mean-magnitude thresholds 0.25, 0.5, ..., 32; integer arithmetic only).
BUCKET_EDGES = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.int64)
N_BUCKETS = len(BUCKET_EDGES) + 2
N_CLASSES = 15  # |q| < 2^15
COUNT_LIMIT = 1024  # counts are halved above this: keeps adapting, and bounds p (see below)
# With n0 + n1 <= COUNT_LIMIT, a modelled bit costs at least -log2(1 - 1/(2 * 1024 + 2))
# > 7e-4 bits, and every value codes at least its zero flag: a payload shorter than
# values / MIN_VALUES_PER_BYTE bytes cannot be genuine, and is refused before decoding.
MIN_VALUES_PER_BYTE = 16384


class _Contexts:
    """Adaptive bit statistics, updated once per tile (identically in encoder and decoder)."""

    def __init__(self, n_groups: int):
        g = n_groups
        self.zero = np.zeros((g, N_BUCKETS, 2), dtype=np.int64)
        self.sign = np.zeros((g, 3, 2), dtype=np.int64)
        self.cls = np.zeros((g, N_BUCKETS, N_CLASSES - 1, 2), dtype=np.int64)
        self.top = np.zeros((g, N_CLASSES, 2), dtype=np.int64)
        self.pending = []

    def p1(self, table: np.ndarray, idx: tuple) -> np.ndarray:
        """Krichevsky-Trofimov estimate of P(bit = 1): (2 n1 + 1) / (2 (n0 + n1) + 2)."""
        c = table[idx]
        return (2 * c[..., 1] + 1) / (2 * (c[..., 0] + c[..., 1]) + 2).astype(np.float64)

    def note(self, table: np.ndarray, idx: tuple, bits: np.ndarray) -> None:
        self.pending.append((table, idx, bits))

    def end_tile(self) -> None:
        for table, idx, bits in self.pending:
            np.add.at(table, idx + (bits.astype(np.int64),), 1)
        self.pending = []
        for table in (self.zero, self.sign, self.cls, self.top):
            over = table.sum(-1) > COUNT_LIMIT
            while over.any():
                table[over] = (table[over] + 1) // 2
                over = table.sum(-1) > COUNT_LIMIT


def _buckets(abs_sum: np.ndarray, t: int) -> np.ndarray:
    if t == 0:
        return np.zeros(abs_sum.shape, dtype=np.int64)
    return 1 + (4 * abs_sum[:, None] > BUCKET_EDGES[None, :] * t).sum(1)


def _bernoulli():
    import constriction
    return constriction.stream.model.Bernoulli(perfect=False)


class _Writer:
    """One side of the range coder: codes the bits it is given and returns them."""

    def __init__(self):
        import constriction
        self.enc = constriction.stream.queue.RangeEncoder()
        self.fam = _bernoulli()

    def bits(self, p1: np.ndarray, truth) -> np.ndarray:
        bits = np.asarray(truth, dtype=bool)
        if bits.size:
            self.enc.encode(bits.astype(np.int32), self.fam, p1)
        return bits

    def words(self) -> bytes:
        return self.enc.get_compressed().astype("<u4").tobytes()


class _Reader:
    """The other side: decodes as many bits as it is asked for (the truth is not known)."""

    def __init__(self, data: bytes):
        import constriction
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self.dec = constriction.stream.queue.RangeDecoder(words)
        self.fam = _bernoulli()

    def bits(self, p1: np.ndarray, truth) -> np.ndarray:
        if p1.size == 0:
            return np.zeros(0, dtype=bool)
        return np.asarray(self.dec.decode(self.fam, p1)).astype(bool)


def _schedule(side, n: int, gid: np.ndarray, q: np.ndarray | None, qmax: int) -> np.ndarray:
    """The binarisation and context schedule, written once and run by either side.

    `side.bits(p1, truth)` codes a vector of bits whose probabilities of 1 are p1: the
    writer is given `truth` (a thunk over the known integers q) and returns it, the reader
    ignores it and returns what it decodes. Returns the (n, L) integers either way.
    """
    L = gid.shape[0]
    ctx = _Contexts(int(gid.max(initial=-1)) + 1)
    abs_sum = np.zeros(L, dtype=np.int64)
    sgn_sum = np.zeros(L, dtype=np.int64)
    out = np.zeros((n, L), dtype=np.int32)
    writing = q is not None

    def code(table, idx, truth):
        bits = side.bits(ctx.p1(table, idx), truth() if writing else None)
        ctx.note(table, idx, bits)
        return bits

    for t in range(n):
        if writing:
            v_true = q[t].astype(np.int64)
            a_true = np.abs(v_true)
            cls_true = np.zeros(L, dtype=np.int64)
            nz_true = a_true > 0
            cls_true[nz_true] = np.floor(np.log2(a_true[nz_true])).astype(np.int64)
        b = _buckets(abs_sum, t)
        # zero flag, then the sign of each non-zero value
        nz = code(ctx.zero, (gid, b), lambda: nz_true)
        neg = code(ctx.sign, (gid[nz], np.sign(sgn_sum[nz]) + 1), lambda: v_true[nz] < 0)
        # magnitude class c = floor(log2 |q|) in unary
        cls = np.zeros(L, dtype=np.int64)
        active = nz.copy()
        for k in range(N_CLASSES - 1):
            if not active.any():
                break
            idx = np.nonzero(active)[0]
            more = code(ctx.cls, (gid[idx], b[idx], np.full(idx.size, k)),
                        lambda: cls_true[idx] > k)
            cls[idx[more]] += 1
            active[idx[~more]] = False
        a = np.where(nz, np.int64(1) << cls, 0)
        # the bit below the leading one, modelled; the rest at probability 1/2, MSB first
        m = cls >= 1
        top = code(ctx.top, (gid[m], cls[m]), lambda: (a_true[m] >> (cls[m] - 1)) & 1)
        a[m] |= top.astype(np.int64) << (cls[m] - 1)
        for j in range(N_CLASSES - 3, -1, -1):
            sel = cls >= j + 2
            if sel.any():
                bits = side.bits(np.full(int(sel.sum()), 0.5),
                                 ((a_true[sel] >> j) & 1) if writing else None)
                a[sel] |= bits.astype(np.int64) << j
        if a.max(initial=0) > qmax:
            raise FormatError(f"payload holds a value beyond the declared {qmax}")
        v = a.copy()
        v[nz] = np.where(neg, -a[nz], a[nz])
        out[t] = v
        ctx.end_tile()
        abs_sum += a
        sgn_sum += v
    return out


def range_encode(q: np.ndarray, gid: np.ndarray) -> bytes:
    """(tiles, L) integers with |q| < 2^15, gid (L,) group index -> payload bytes."""
    w = _Writer()
    _schedule(w, q.shape[0], gid, q, (1 << 15) - 1)
    return w.words()


def range_decode(data: bytes, n: int, gid: np.ndarray, qmax: int) -> np.ndarray:
    """Inverse of range_encode for n tiles; raises FormatError on anything it did not make."""
    L = gid.shape[0]
    if len(data) % 4:
        raise FormatError("range-coded payload is not a whole number of 32-bit words")
    if len(data) < (n * L) // MIN_VALUES_PER_BYTE:
        raise FormatError(f"payload of {len(data)} bytes cannot hold the {n * L} values the "
                          "header declares")
    return strict_decode(lambda: _schedule(_Reader(data), n, gid, None, qmax),
                         lambda q: range_encode(q, gid), data, "range-coded payload")


def strict_decode(decode, encode, data: bytes, what: str):
    """decode() with every failure a FormatError, and only the encoder's exact output
    accepted: encode(decoded) must give `data` back (no trailing words, no alternative
    endings of the same values)."""
    try:
        out = decode()
    except FormatError:
        raise
    except Exception as e:  # constriction reports undecodable input with its own errors
        raise FormatError(f"{what} does not decode: {e}") from None
    if encode(out) != data:
        raise FormatError(f"{what} is not in canonical form (damaged or trailing data)")
    return out


def zstd_layout(q: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """Column order of the zstd payload: tensor by tensor, parameter by parameter, tiles
    innermost. Returns the column permutation (a stable sort by group)."""
    return np.argsort(gid, kind="stable")


def zstd_encode(q: np.ndarray, gid: np.ndarray, bits: int) -> bytes:
    order = zstd_layout(q, gid)
    raw = np.ascontiguousarray(q[:, order].T).astype("<i1" if bits == 8 else "<i2").tobytes()
    return zstd(raw)


def zstd_decode(blob: bytes, n: int, gid: np.ndarray, bits: int, qmax: int) -> np.ndarray:
    L = gid.shape[0]
    width = 1 if bits == 8 else 2
    raw = unzstd(blob, n * L * width, "payload")
    vals = np.frombuffer(raw, dtype="<i1" if bits == 8 else "<i2").astype(np.int32)
    if np.abs(vals).max(initial=0) > qmax:
        raise FormatError(f"payload holds a value beyond the declared {qmax}")
    q = np.empty((n, L), dtype=np.int32)
    q[:, zstd_layout(q, gid)] = vals.reshape(L, n).T
    return q


def encode(q: np.ndarray, gid: np.ndarray, coder: int, bits: int) -> bytes:
    if coder == ZSTD:
        return zstd_encode(q, gid, bits)
    if coder == RANGE:
        return range_encode(q, gid)
    raise ValueError(f"unknown coder {coder}")


def decode(blob: bytes, n: int, gid: np.ndarray, coder: int, bits: int) -> np.ndarray:
    qmax = (1 << (bits - 1)) - 1
    if coder == ZSTD:
        return zstd_decode(blob, n, gid, bits, qmax)
    if coder == RANGE:
        return range_decode(blob, n, gid, qmax)
    raise FormatError(f"unknown coder id {coder}")


# -- zstd frames (also the alpha plane's) -----------------------------------------------------
def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=False).compress(data)


def unzstd(blob: bytes, size: int, what: str) -> bytes:
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
