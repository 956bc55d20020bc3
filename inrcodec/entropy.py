"""Entropy coders for the delta quantiser's integers (format version 2).

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

from .errors import FormatError

ZSTD = 0
RANGE = 1
CODERS = {ZSTD: "zstd", RANGE: "range"}
CODERS_BY_NAME = {v: k for k, v in CODERS.items()}

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


def range_encode(q: np.ndarray, gid: np.ndarray) -> bytes:
    """(tiles, L) integers with |q| < 2^15, gid (L,) group index -> payload bytes."""
    import constriction
    n, L = q.shape
    fam = _bernoulli()
    enc = constriction.stream.queue.RangeEncoder()
    ctx = _Contexts(int(gid.max(initial=-1)) + 1)
    abs_sum = np.zeros(L, dtype=np.int64)
    sgn_sum = np.zeros(L, dtype=np.int64)

    def put(table, idx, bits):
        if bits.size:
            enc.encode(bits.astype(np.int32), fam, ctx.p1(table, idx))
            ctx.note(table, idx, bits)

    for t in range(n):
        v = q[t].astype(np.int64)
        a = np.abs(v)
        b = _buckets(abs_sum, t)
        nz = a > 0
        put(ctx.zero, (gid, b), nz)
        put(ctx.sign, (gid[nz], np.sign(sgn_sum[nz]) + 1), v[nz] < 0)
        cls = np.zeros(L, dtype=np.int64)
        cls[nz] = np.floor(np.log2(a[nz])).astype(np.int64)
        active = nz.copy()
        for k in range(N_CLASSES - 1):
            if not active.any():
                break
            put(ctx.cls, (gid[active], b[active], np.full(int(active.sum()), k)),
                cls[active] > k)
            active &= cls > k
        m = cls >= 1
        put(ctx.top, (gid[m], cls[m]), (a[m] >> (cls[m] - 1)) & 1)
        for j in range(N_CLASSES - 3, -1, -1):  # the remaining bits, MSB first, at 1/2
            sel = cls >= j + 2
            if sel.any():
                enc.encode(((a[sel] >> j) & 1).astype(np.int32), fam,
                           np.full(int(sel.sum()), 0.5))
        ctx.end_tile()
        abs_sum += a
        sgn_sum += v
    return enc.get_compressed().astype("<u4").tobytes()


def range_decode(data: bytes, n: int, gid: np.ndarray, qmax: int) -> np.ndarray:
    """Inverse of range_encode for n tiles; raises FormatError on anything it did not make."""
    import constriction
    L = gid.shape[0]
    if len(data) % 4:
        raise FormatError("range-coded payload is not a whole number of 32-bit words")
    if len(data) < (n * L) // MIN_VALUES_PER_BYTE:
        raise FormatError(f"payload of {len(data)} bytes cannot hold the {n * L} values the "
                          "header declares")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    fam = _bernoulli()
    dec = constriction.stream.queue.RangeDecoder(words)
    ctx = _Contexts(int(gid.max(initial=-1)) + 1)
    abs_sum = np.zeros(L, dtype=np.int64)
    sgn_sum = np.zeros(L, dtype=np.int64)
    q = np.zeros((n, L), dtype=np.int32)

    def get(table, idx, count):
        if count == 0:
            return np.zeros(0, dtype=bool)
        bits = np.asarray(dec.decode(fam, ctx.p1(table, idx))).astype(bool)
        ctx.note(table, idx, bits)
        return bits

    try:
        for t in range(n):
            b = _buckets(abs_sum, t)
            nz = get(ctx.zero, (gid, b), L)
            sgn = np.sign(sgn_sum[nz]) + 1
            neg = get(ctx.sign, (gid[nz], sgn), int(nz.sum()))
            cls = np.zeros(L, dtype=np.int64)
            active = nz.copy()
            for k in range(N_CLASSES - 1):
                if not active.any():
                    break
                more = get(ctx.cls, (gid[active], b[active], np.full(int(active.sum()), k)),
                           int(active.sum()))
                idx = np.nonzero(active)[0]
                cls[idx[more]] += 1
                active[idx[~more]] = False
            a = np.where(nz, np.int64(1) << cls, 0)
            m = cls >= 1
            top = get(ctx.top, (gid[m], cls[m]), int(m.sum()))
            a[m] |= top.astype(np.int64) << (cls[m] - 1)
            for j in range(N_CLASSES - 3, -1, -1):
                sel = cls >= j + 2
                if sel.any():
                    bits = np.asarray(dec.decode(fam, np.full(int(sel.sum()), 0.5)))
                    a[sel] |= bits.astype(np.int64) << j
            if a.max(initial=0) > qmax:
                raise FormatError(f"payload holds a value beyond the declared {qmax}")
            v = a.copy()
            v[nz] = np.where(neg, -a[nz], a[nz])
            q[t] = v
            ctx.end_tile()
            abs_sum += a
            sgn_sum += v
    except FormatError:
        raise
    except Exception as e:  # constriction reports undecodable input with its own errors
        raise FormatError(f"range-coded payload does not decode: {e}") from None
    # Only the encoder's exact output is valid: no trailing words, no alternative endings.
    if range_encode(q, gid) != data:
        raise FormatError("range-coded payload is not in canonical form (damaged or trailing "
                          "data)")
    return q


def zstd_layout(q: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """Column order of the zstd payload: tensor by tensor, parameter by parameter, tiles
    innermost. Returns the column permutation (a stable sort by group)."""
    return np.argsort(gid, kind="stable")


def zstd_encode(q: np.ndarray, gid: np.ndarray, bits: int) -> bytes:
    from .bitstream import zstd
    order = zstd_layout(q, gid)
    raw = np.ascontiguousarray(q[:, order].T).astype("<i1" if bits == 8 else "<i2").tobytes()
    return zstd(raw)


def zstd_decode(blob: bytes, n: int, gid: np.ndarray, bits: int, qmax: int) -> np.ndarray:
    from .bitstream import unzstd
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
