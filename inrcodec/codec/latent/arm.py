"""An autoregressive entropy model of integer latent grids, in integer arithmetic.

Each latent z[y, x] is coded with a discrete Laplace whose mean and scale a small MLP
predicts from its 12 causal neighbours (CONTEXT: the two rows above, x-2..x+2, and the two
latents to its left; outside the grid they are 0). The MLP runs in fixed point on int64:
weights and biases are integers in units of 2^-FRAC, so the encoder and the decoder compute
the same mean and scale on every machine, and those pick one of SCALES x 4 integer
frequency tables (`prior.table_q4`): in format 6 the Laplace's mass on each unit bin, the
model the fit minimises; in formats 3 and 4 its density at the integers. Nothing that
reaches the coder is a float computed at run time.

Latents are coded in wavefront order t = 3y + x: every context position of (y, x) lies on
an earlier wavefront, so the decoder decodes one wavefront of every grid at a time, as a
batch. The float twin (`init_float`, `context_float`, `predict_float`) is the same model in
torch for fitting; `ArmParams.from_float` rounds it to fixed point. `grid_bits` gives the
grids' exact code length for encoder decisions.
"""
from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

import math

import numba
import numpy as np
import torch
import torch.nn.functional as F

from ...errors import FormatError
from .. import prior
from ..entropy import strict_decode

CONTEXT = ((-2, -2), (-2, -1), (-2, 0), (-2, 1), (-2, 2),
           (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2),
           (0, -2), (0, -1))
FRAC = 8  # fixed point: a value v is stored as round(v * 2^FRAC)
CLIP = 127  # context latents are clipped to [-CLIP, CLIP] before the MLP
MAX_HIDDEN = 64
MAX_PARAM = (1 << 15) - 1  # int16 storage
# The scale ladder: theta (per quarter unit of the latent) = m / 2^16 for Laplace scales
# b_s = 0.04 x 2^(s/6), s = 0..63, i.e. m_s = round(2^16 exp(-1 / (4 b_s))). Frozen as
# integers so no machine computes an exponential to build a table.
SCALE_M = (127, 250, 459, 789, 1278, 1964, 2879, 4049, 5486, 7191, 9152, 11345, 13737,
           16290, 18962, 21709, 24491, 27267, 30005, 32674, 35252, 37719, 40063, 42273,
           44344, 46275, 48065, 49719, 51240, 52634, 53908, 55069, 56125, 57082, 57949,
           58732, 59439, 60075, 60648, 61163, 61626, 62041, 62413, 62746, 63045, 63312,
           63551, 63764, 63955, 64126, 64278, 64414, 64536, 64644, 64741, 64827, 64904,
           64973, 65034, 65089, 65137, 65181, 65219, 65254)
SCALES = len(SCALE_M)
# The MLP's second output is log2 of the scale relative to b_0, in sixths: index
# s = clamp(round(6 * (log2 b - log2 0.04)), 0, 63). In fixed point: s = (o1 * 6) >> FRAC.


@dataclass(frozen=True)
class ArmParams:
    """Fixed-point MLP: h = relu(W1 x + b1); (mu, log2 scale) = W2 h + b2. Integers in
    units of 2^-FRAC (x, the latents, are plain integers)."""

    w1: np.ndarray  # (H, 12) int64
    b1: np.ndarray  # (H,)
    w2: np.ndarray  # (2, H)
    b2: np.ndarray  # (2,)

    @property
    def hidden(self) -> int:
        return self.w1.shape[0]

    @classmethod
    def from_float(cls, w1, b1, w2, b2) -> "ArmParams":
        """Round float parameters to fixed point (what the file or shared model stores)."""
        def q(a):
            a = np.asarray(a, dtype=np.float64)
            return np.clip(np.round(a * (1 << FRAC)), -MAX_PARAM, MAX_PARAM).astype(np.int64)
        return cls(q(w1), q(b1), q(w2), q(b2))

    def to_float(self) -> tuple[np.ndarray, ...]:
        """The values the integer MLP uses, as floats (for a training twin)."""
        s = 1.0 / (1 << FRAC)
        return tuple(a.astype(np.float64) * s for a in (self.w1, self.b1, self.w2, self.b2))

    # The parameter section: u8 hidden width, then int16 little-endian W1, b1, W2, b2.
    def to_bytes(self) -> bytes:
        return struct.pack("<B", self.hidden) + np.concatenate(
            [self.w1.ravel(), self.b1, self.w2.ravel(), self.b2]).astype("<i2").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ArmParams":
        if len(data) < 1:
            raise FormatError("autoregressive model parameters are missing")
        h = data[0]
        n = h * len(CONTEXT) + h + 2 * h + 2
        if not 1 <= h <= MAX_HIDDEN or len(data) != 1 + 2 * n:
            raise FormatError(f"autoregressive model of {len(data)} bytes (hidden width {h}) "
                              "is malformed")
        v = np.frombuffer(data, dtype="<i2", offset=1).astype(np.int64)
        k = h * len(CONTEXT)
        return cls(v[:k].reshape(h, len(CONTEXT)), v[k:k + h],
                   v[k + h:k + 3 * h].reshape(2, h), v[k + 3 * h:])

    def predict(self, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 12) integer contexts -> (mean in quarter units, scale index), both int64."""
        x = np.clip(ctx, -CLIP, CLIP).astype(np.int64)
        h = np.maximum(x @ self.w1.T + self.b1, 0)  # units of 2^-FRAC; |h| < 2^31
        o = ((h @ self.w2.T) >> FRAC) + self.b2  # units of 2^-FRAC
        mu4 = (o[:, 0] + (1 << (FRAC - 3))) >> (FRAC - 2)  # round to quarters
        s = np.clip((o[:, 1] * 6) >> FRAC, 0, SCALES - 1)
        return mu4, s


class _Tables:
    """Frequencies for every (scale index, quarter offset j) over residuals r in [-R, R],
    as exact dyadic probabilities for constriction; `rows` picks one per latent. `binned`:
    the Laplace's mass per unit bin (format 6), else its density at the integers (3, 4)."""

    def __init__(self, R: int, binned: bool):
        f = np.stack([np.stack([prior.table_q4(m, j, R, binned) for j in range(4)])
                      for m in SCALE_M])  # (SCALES, 4, 2R + 1)
        self._flat = (f.astype(np.float64) / (1 << prior.PRECISION)).reshape(SCALES * 4, -1)

    def rows(self, s: np.ndarray, j: np.ndarray) -> np.ndarray:
        """The probability rows of scale indices s and quarter offsets j."""
        return self._flat[s * 4 + j]


@functools.lru_cache(maxsize=8)
def _tables(R: int, binned: bool) -> _Tables:
    """The tables of one R (a decode builds them once for its check's re-encode too)."""
    return _Tables(R, binned)


# -- the schedule, compiled --------------------------------------------------------------------
# The decoder walks the wavefronts one by one (each needs the last); a wavefront's
# contexts, fixed-point MLP and table choice are one compiled call (numba), and the
# coder one call. The writer knows every latent, so it predicts all of them at once and
# codes them in the same order in a few large calls. Both run the same integer code.


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _predict(ctx, n, w1, b1, w2, b2, qmax, out):
    """ArmParams.predict and the table choice for contexts ctx[:, :n] (float64 holding
    integers, one column per latent): out[k] = (mean's integer part, quarter offset,
    scale index). Every product and sum is an integer below 2^46, exact in float64 in any
    order, so this is ArmParams.predict to the bit; 64 latents go side by side."""
    hdim, c = w1.shape
    acc = np.empty(64, np.float64)
    f0 = np.empty(64, np.float64)
    f1 = np.empty(64, np.float64)
    for k0 in range(0, n, 64):
        m = min(64, n - k0)
        f0[:] = 0.0
        f1[:] = 0.0
        for j in range(hdim):
            for k in range(m):
                acc[k] = b1[j]
            for i in range(c):
                w = w1[j, i]
                row = ctx[i, k0:k0 + m]  # a slice: unit stride, no index wrap-around
                for k in range(m):
                    acc[k] += w * row[k]
            wa = w2[0, j]
            wb = w2[1, j]
            for k in range(m):
                h = acc[k] if acc[k] > 0.0 else 0.0
                f0[k] += h * wa
                f1[k] += h * wb
        for k in range(m):
            o0 = (np.int64(f0[k]) >> FRAC) + np.int64(b2[0])
            o1 = (np.int64(f1[k]) >> FRAC) + np.int64(b2[1])
            mu4 = (o0 + (1 << (FRAC - 3))) >> (FRAC - 2)
            mh = mu4 >> 2
            q = qmax[k0 + k]
            mi = min(max(mh, -q), q)
            out[k0 + k, 0] = mi
            out[k0 + k, 1] = (mu4 & 3) if mh == mi else 0
            out[k0 + k, 2] = min(max((o1 * 6) >> FRAC, 0), SCALES - 1)


@numba.njit(cache=True, nogil=True)
def _gather(padded, g, y, x, ctx, k):
    """The clipped context of latent (y, x) of grid g into column k (CONTEXT's order:
    two rows above at x-2..x+2, then the two latents to the left)."""
    r0 = padded[g, y]
    r1 = padded[g, y + 1]
    r2 = padded[g, y + 2]
    for i in range(5):
        ctx[i, k] = min(max(r0[x + i], -CLIP), CLIP)
        ctx[5 + i, k] = min(max(r1[x + i], -CLIP), CLIP)
    for i in range(2):
        ctx[10 + i, k] = min(max(r2[x + i], -CLIP), CLIP)


@numba.njit(cache=True, nogil=True)
def _wave(padded, shapes, qmaxes, t, w1, b1, w2, b2, ctx, qk, out, where):
    """The latents on wavefront t (every grid, grid by grid, rows ascending): their
    predictions in out[:n] and (grid, y, x) in where[:n]; returns n."""
    n = 0
    for g in range(shapes.shape[0]):
        h, w = shapes[g, 0], shapes[g, 1]
        y0 = max(0, -(-(t - w + 1) // 3))
        y1 = min(h - 1, t // 3)
        for y in range(y0, y1 + 1):
            x = t - 3 * y
            _gather(padded, g, y, x, ctx, n)
            qk[n] = qmaxes[g]
            where[n, 0] = g
            where[n, 1] = y
            where[n, 2] = x
            n += 1
    _predict(ctx, n, w1, b1, w2, b2, qk, out)
    return n


@numba.njit(cache=True, nogil=True)
def _store(padded, sym, pred, where, n, R, qmaxes):
    """Decoded symbols -> latents in the padded grids; False if one is out of range."""
    for k in range(n):
        g = where[k, 0]
        v = sym[k] - R + pred[k, 0]
        if abs(v) > qmaxes[g]:
            return False
        padded[g, where[k, 1] + 2, where[k, 2] + 2] = v
    return True


@numba.njit(cache=True, nogil=True)
def _coding_order(shapes):
    """Index, into the grids' latents concatenated row-major, of each latent in coding
    order (wavefront t = 3y + x, then grid, then row)."""
    n_grids = shapes.shape[0]
    start = np.zeros(n_grids + 1, np.int64)
    n_wave = 0
    for g in range(n_grids):
        start[g + 1] = start[g] + shapes[g, 0] * shapes[g, 1]
        n_wave = max(n_wave, 3 * (shapes[g, 0] - 1) + shapes[g, 1])
    order = np.empty(start[n_grids], np.int64)
    n = 0
    for t in range(n_wave):
        for g in range(n_grids):
            h, w = shapes[g, 0], shapes[g, 1]
            for y in range(max(0, -(-(t - w + 1) // 3)), min(h - 1, t // 3) + 1):
                order[n] = start[g] + y * w + t - 3 * y
                n += 1
    return order


@numba.njit(cache=True, nogil=True)
def _predict_grid(padded, g, h, w, qmax, w1, b1, w2, b2, out, o):
    """_predict for every latent of grid g, row by row (contexts gathered 64 at a time,
    never all at once), into out[o:o + h * w] in row-major order, with each latent's
    symbol (latent - mean's integer part) in column 3."""
    c = w1.shape[1]
    ctx = np.empty((c, 64), np.float64)
    qk = np.full(64, qmax, np.int64)
    for y in range(h):
        for x0 in range(0, w, 64):
            m = min(64, w - x0)
            for k in range(m):
                _gather(padded, g, y, x0 + k, ctx, k)
            r = o + y * w + x0
            _predict(ctx, m, w1, b1, w2, b2, qk, out[r:r + m])
            for k in range(m):
                out[r + k, 3] = padded[g, y + 2, x0 + k + 2] - out[r + k, 0]


def _predict_all(grids: list[np.ndarray], qmaxes: list[int], w) -> np.ndarray:
    """Every latent's (mean's integer part, quarter offset, scale index, symbol - R) in
    coding order: the writer knows every context, so it predicts them all in one go."""
    shapes = [g.shape for g in grids]
    padded = _padded(shapes)
    for k, g in enumerate(grids):
        padded[k, 2:2 + g.shape[0], 2:2 + g.shape[1]] = g
    out = np.empty((sum(h * w_ for h, w_ in shapes), 4), np.int64)
    o = 0
    for k, ((h, w_), q) in enumerate(zip(shapes, qmaxes)):
        _predict_grid(padded, k, h, w_, q, *w, out, o)
        o += h * w_
    return out[_coding_order(np.array(shapes, dtype=np.int64).reshape(-1, 2))]


def _padded(shapes: list[tuple[int, int]]) -> np.ndarray:
    """Grids in one zero-padded array (grid, y + 2, x + 2); int32 holds any latent."""
    h = max((s[0] for s in shapes), default=0)
    w = max((s[1] for s in shapes), default=0)
    return np.zeros((len(shapes), h + 2, w + 4), dtype=np.int32)


CODE_CHUNK = 1 << 16  # symbols per coder call of the writer (bounds its probability rows)


def _run(grids: list[np.ndarray] | None, shapes: list[tuple[int, int]], qmaxes: list[int],
         params: ArmParams, side, binned: bool, record: list | None = None
         ) -> list[np.ndarray]:
    """The schedule shared by the writer and the reader: wavefront by wavefront (t = 3y +
    x), every grid's latents on it, contexts -> tables -> side.code(symbols | None, probs),
    which returns the symbols (alphabet index = r + R). The reader appends each
    wavefront's (symbols, scale indices, quarter offsets) to `record` if given."""
    R = max(1, 2 * max(qmaxes, default=0))  # constriction needs two symbols or more
    tables = _tables(R, binned)
    shp = np.array(shapes, dtype=np.int64).reshape(-1, 2)
    qm = np.array(qmaxes, dtype=np.int64)
    w = tuple(np.asarray(v, dtype=np.float64) for v in (params.w1, params.b1, params.w2, params.b2))
    if grids is not None:
        grids = [np.asarray(g, dtype=np.int64) for g in grids]
        pred = _predict_all(grids, qmaxes, w)
        for a in range(0, len(pred), CODE_CHUNK):
            p = pred[a:a + CODE_CHUNK]
            side.code(p[:, 3] + R, tables.rows(p[:, 2], p[:, 1]))
        return grids
    padded = _padded(shapes)
    n_max = sum(min(h, w_ // 3 + 2) for h, w_ in shapes) + len(shapes)
    pred = np.empty((n_max, 3), np.int64)
    where = np.empty((n_max, 3), np.int64)
    ctx = np.empty((len(CONTEXT), n_max), np.float64)
    qk = np.empty(n_max, np.int64)
    n_wave = max((3 * (h - 1) + w_ for h, w_ in shapes), default=0)
    for t in range(n_wave):
        n = _wave(padded, shp, qm, t, *w, ctx, qk, pred, where)
        if not n:
            continue
        sym = np.asarray(side.code(None, tables.rows(pred[:n, 2], pred[:n, 1])),
                         dtype=np.int64)
        if not _store(padded, sym, pred, where, n, R, qm):
            raise FormatError("latent beyond the declared range")
        if record is not None:
            record.append((sym, pred[:n, 2].copy(), pred[:n, 1].copy()))
    return [padded[g, 2:2 + h, 2:2 + w_].astype(np.int64) for g, (h, w_) in enumerate(shapes)]


class _Writer:
    def __init__(self):
        import constriction
        self.enc = constriction.stream.queue.RangeEncoder()
        self.model = constriction.stream.model.Categorical(perfect=False)

    def code(self, symbols, probs):
        self.enc.encode(symbols.astype(np.int32), self.model, probs)
        return symbols


class _Reader:
    def __init__(self, data: bytes):
        import constriction
        self.dec = constriction.stream.queue.RangeDecoder(
            np.frombuffer(data, dtype="<u4").astype(np.uint32))
        self.model = constriction.stream.model.Categorical(perfect=False)

    def code(self, symbols, probs):
        return np.asarray(self.dec.decode(self.model, probs), dtype=np.int64)


def encode_grids(grids: list[np.ndarray], params: ArmParams, binned: bool = True
                 ) -> tuple[bytes, list[int]]:
    """Integer grids -> (payload, each grid's largest magnitude, which the file stores).
    `binned`: format 6's tables (True) or formats 3 and 4's (_Tables)."""
    grids = [np.asarray(g, dtype=np.int64) for g in grids]
    qmaxes = [int(np.abs(g).max(initial=0)) for g in grids]
    if max(qmaxes, default=0) > prior.MAX_QMAX // 2:
        raise ValueError("latents beyond the coder's range")
    w = _Writer()
    _run(grids, [g.shape for g in grids], qmaxes, params, w, binned)
    return w.enc.get_compressed().astype("<u4").tobytes(), qmaxes


def decode_grids(data: bytes, shapes: list[tuple[int, int]], qmaxes: list[int],
                 params: ArmParams, binned: bool = True) -> list[np.ndarray]:
    """Inverse of encode_grids; raises FormatError on anything it did not make."""
    if len(data) % 4:
        raise FormatError("latent payload is not a whole number of 32-bit words")
    if any(not 0 <= q <= prior.MAX_QMAX // 2 for q in qmaxes):
        raise FormatError("a latent range in the file is out of bounds")
    record: list = []

    def again(grids: list[np.ndarray]) -> bytes | None:
        """encode_grids(grids)'s payload, from what the decode recorded: the same
        symbols under the same predictions (the decoded grids' contexts), so no latent
        is predicted twice; None when the file's ranges are not the grids' own."""
        if [int(np.abs(g).max(initial=0)) for g in grids] != list(qmaxes):
            return None
        if not record:
            return _Writer().enc.get_compressed().astype("<u4").tobytes()
        tables = _tables(max(1, 2 * max(qmaxes, default=0)), binned)
        sym, s, j = (np.concatenate(c) for c in zip(*record))
        w = _Writer()
        for a in range(0, len(sym), CODE_CHUNK):
            w.code(sym[a:a + CODE_CHUNK], tables.rows(s[a:a + CODE_CHUNK], j[a:a + CODE_CHUNK]))
        return w.enc.get_compressed().astype("<u4").tobytes()
    return strict_decode(lambda: _run(None, shapes, qmaxes, params, _Reader(data), binned, record),
                         again, data, "latent payload")


# The latent section: u16 qmax per grid, then the coded words.
def encode_section(grids: list[np.ndarray], params: ArmParams, binned: bool = True) -> bytes:
    data, qmaxes = encode_grids(grids, params, binned)
    return struct.pack(f"<{len(qmaxes)}H", *qmaxes) + data


def decode_section(data: bytes, shapes: list[tuple[int, int]], params: ArmParams,
                   binned: bool = True) -> list[np.ndarray]:
    n = 2 * len(shapes)
    if len(data) < n:
        raise FormatError("latent section is truncated")
    qmaxes = list(struct.unpack(f"<{len(shapes)}H", data[:n]))
    return decode_grids(data[n:], shapes, qmaxes, params, binned)


def grid_bits(grids: list[np.ndarray], params: ArmParams, binned: bool = True) -> float:
    """The exact ideal code length of the grids (bits), without running the coder."""
    total = 0.0

    class _Count:
        def code(self, symbols, probs):
            nonlocal total
            total -= float(np.log2(probs[np.arange(len(symbols)), symbols]).sum())
            return symbols
    grids = [np.asarray(g, dtype=np.int64) for g in grids]
    _run(grids, [g.shape for g in grids], [int(np.abs(g).max(initial=0)) for g in grids],
         params, _Count(), binned)
    return total


# -- the float twin, for fitting --------------------------------------------------------------
def init_float(hidden: int, generator: torch.Generator) -> list[torch.Tensor]:
    """[W1 (H, 12), b1 (H,), W2 (2, H), b2 (2,)]: the second layer starts at zero, with the
    scale at 1 (untrained, every latent gets a Laplace of scale 1)."""
    c = len(CONTEXT)
    w1 = (torch.rand(hidden, c, generator=generator) * 2 - 1) / math.sqrt(c)
    return [w1, torch.zeros(hidden), torch.zeros(2, hidden),
            torch.tensor([0.0, -math.log2(0.04)])]


def context_float(q: torch.Tensor) -> torch.Tensor:
    """(..., h, w) latents -> (..., h * w, 12) causal neighbours, zero outside the grid,
    clipped to [-CLIP, CLIP] (before the copies: a twelfth of the work)."""
    h, w = q.shape[-2:]
    p = F.pad(q.clamp(-CLIP, CLIP), (2, 2, 2, 0))
    return torch.stack([p[..., 2 + dy:2 + dy + h, 2 + dx:2 + dx + w].reshape(*q.shape[:-2], -1)
                        for dy, dx in CONTEXT], -1)


def predict_float(params: list[torch.Tensor], ctx: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """ArmParams.predict in float: (mean, Laplace scale) per row of contexts."""
    w1, b1, w2, b2 = params
    o = torch.relu(ctx @ w1.t() + b1) @ w2.t() + b2  # ctx is clipped by context_float
    scale = 0.04 * torch.exp2(o[..., 1].clamp(0.0, (SCALES - 1) / 6.0))
    return o[..., 0], scale
