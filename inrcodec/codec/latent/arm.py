"""An autoregressive entropy model of integer latent grids, in integer arithmetic.

Each latent z[y, x] is coded with a discrete Laplace whose mean and scale a small MLP
predicts from its 12 causal neighbours (CONTEXT: the two rows above, x-2..x+2, and the two
latents to its left; outside the grid they are 0). The MLP (one hidden layer; a shared
model's may add a residual second, `ArmParams.wr`) runs in fixed point on int64:
weights and biases are integers in units of 2^-FRAC, so the encoder and the decoder compute
the same mean and scale on every machine, and those pick one of SCALES x 4 integer
frequency tables (`prior.table_q4`): in format 6 the Laplace's mass on each unit bin, the
model the fit minimises; in formats 3 and 4 its density at the integers. Nothing that
reaches the coder is a float computed at run time.

Latents are coded in wavefront order t = 3y + x: every context position of (y, x) lies on
an earlier wavefront. The reader (`GridReader`) is a compiled pass (arm_kernels.py), which
may stop at any wavefront and go on: a wavefront's predictions and tables together, then
its latents' range decoding one by one (codec/rangecoder.py, which also checks that the
payload is the encoder's own words). The float
twin (`init_float`, `context_float`, `predict_float`) is the same model in torch for
fitting; `ArmParams.from_float` rounds it to fixed point. `grid_bits` gives the
grids' exact code length for encoder decisions.
"""
from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...errors import FormatError
from .. import prior, rangecoder
from . import arm_kernels
from .arm_kernels import CLIP, FRAC, HMAX, N_CONTEXT, SCALES

if TYPE_CHECKING:
    import torch

CONTEXT = ((-2, -2), (-2, -1), (-2, 0), (-2, 1), (-2, 2),
           (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2),
           (0, -2), (0, -1))
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
assert len(SCALE_M) == SCALES and len(CONTEXT) == N_CONTEXT
# The MLP's second output is log2 of the scale relative to b_0, in sixths: index
# s = clamp(round(6 * (log2 b - log2 0.04)), 0, 63). In fixed point: s = (o1 * 6) >> FRAC.


@dataclass(frozen=True)
class ArmParams:
    """Fixed-point MLP: h = relu(W1 x + b1); with a residual layer (a shared model's only),
    h <- min(relu(h + ((Wr h) >> FRAC) + br), HMAX); (mu, log2 scale) = ((W2 h) >> FRAC) + b2.
    Integers in units of 2^-FRAC (x, the latents, are plain integers). Wr = 0, br = 0 codes
    exactly as the one-layer model (h < HMAX already)."""

    w1: np.ndarray  # (H, 12) int64
    b1: np.ndarray  # (H,)
    w2: np.ndarray  # (2, H)
    b2: np.ndarray  # (2,)
    wr: np.ndarray | None = None  # (H, H): the residual layer, or None
    br: np.ndarray | None = None  # (H,)

    def __post_init__(self):
        if (self.wr is None) != (self.br is None):
            raise ValueError("a residual layer needs both wr and br")

    @property
    def hidden(self) -> int:
        return self.w1.shape[0]

    @property
    def residual(self) -> bool:
        return self.wr is not None

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """(w1, b1, w2, b2[, wr, br]): a shared model's tensors, in this order."""
        return (self.w1, self.b1, self.w2, self.b2) + ((self.wr, self.br) if self.residual
                                                       else ())

    @classmethod
    def from_float(cls, *params) -> "ArmParams":
        """Round float parameters (w1, b1, w2, b2[, wr, br]) to fixed point (what the file
        or shared model stores)."""
        def q(a):
            a = np.asarray(a, dtype=np.float64)
            return np.clip(np.round(a * (1 << FRAC)), -MAX_PARAM, MAX_PARAM).astype(np.int64)
        return cls(*[q(a) for a in params])

    def to_float(self) -> tuple[np.ndarray, ...]:
        """The values the integer MLP uses, as floats (for a training twin)."""
        s = 1.0 / (1 << FRAC)
        return tuple(a.astype(np.float64) * s for a in self.arrays)

    def with_residual(self) -> "ArmParams":
        """This model with a residual layer at zero (it codes exactly as this one)."""
        if self.residual:
            return self
        h = self.hidden
        return ArmParams(*self.arrays, np.zeros((h, h), np.int64), np.zeros(h, np.int64))

    # The parameter section: u8 hidden width, then int16 little-endian W1, b1, W2, b2.
    # (A file's own ARM has one layer; a residual layer is a shared model's.)
    def to_bytes(self) -> bytes:
        if self.residual:
            raise ValueError("a file's own ARM has no residual layer")
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
        h = np.maximum(x @ self.w1.T + self.b1, 0)  # units of 2^-FRAC; |h| < 2^26
        if self.residual:
            h = np.clip(h + ((h @ self.wr.T) >> FRAC) + self.br, 0, HMAX)
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
    """The writer's tables of one R (an encode codes several times with them)."""
    return _Tables(R, binned)


def _predict_all(grids: list[np.ndarray], qmaxes: list[int], w) -> np.ndarray:
    """Every latent's (mean's integer part, quarter offset, scale index, symbol - R) in
    coding order: the writer knows every context, so it predicts them all in one go."""
    shapes = [g.shape for g in grids]
    buf, offs = arm_kernels.padded(shapes)
    for g, (_, view) in zip(grids, arm_kernels.views(buf, offs, shapes)):
        view[:] = g
    out = np.empty((sum(h * w_ for h, w_ in shapes), 4), np.int64)
    o = 0
    for off, (h, w_), q in zip(offs, shapes, qmaxes):
        arm_kernels.predict_grid(buf, off, h, w_, q, *w, out, o)
        o += h * w_
    return out[arm_kernels.coding_order(np.array(shapes, dtype=np.int64).reshape(-1, 2))]


CODE_CHUNK = 1 << 16  # symbols per coder call of the writer (bounds its probability rows)


def _run(grids: list[np.ndarray], qmaxes: list[int], params: ArmParams, side,
         binned: bool) -> None:
    """The writer's schedule: every latent predicted at once (it knows every context),
    then side.code(symbols, probability rows) in coding order (wavefront t = 3y + x, then
    grid, then row), a chunk at a time (alphabet index = r + R)."""
    R = max(1, 2 * max(qmaxes, default=0))  # constriction needs two symbols or more
    tables = _tables(R, binned)
    w = arm_kernels.weights(params)
    pred = _predict_all([np.asarray(g, dtype=np.int64) for g in grids], qmaxes, w)
    for a in range(0, len(pred), CODE_CHUNK):
        p = pred[a:a + CODE_CHUNK]
        side.code(p[:, 3] + R, tables.rows(p[:, 2], p[:, 1]))


@functools.lru_cache(maxsize=8)
def _cumulative(R: int, binned: bool) -> np.ndarray:
    """The reader's tables: (SCALES x 4, 2R + 2) cumulative frequencies, the coder's own
    (rangecoder.cumulative) of _Tables' probabilities."""
    return rangecoder.cumulative(np.stack([prior.table_q4(m, j, R, binned)
                                           for m in SCALE_M for j in range(4)]))


class _Writer:
    def __init__(self):
        import constriction
        self.enc = constriction.stream.queue.RangeEncoder()
        self.model = constriction.stream.model.Categorical(perfect=False)

    def code(self, symbols, probs):
        self.enc.encode(symbols.astype(np.int32), self.model, probs)
        return symbols


def encode_grids(grids: list[np.ndarray], params: ArmParams, binned: bool = True
                 ) -> tuple[bytes, list[int]]:
    """Integer grids -> (payload, each grid's largest magnitude, which the file stores).
    `binned`: format 6's tables (True) or formats 3 and 4's (_Tables)."""
    grids = [np.asarray(g, dtype=np.int64) for g in grids]
    qmaxes = [int(np.abs(g).max(initial=0)) for g in grids]
    if max(qmaxes, default=0) > prior.MAX_QMAX // 2:
        raise ValueError("latents beyond the coder's range")
    w = _Writer()
    _run(grids, qmaxes, params, w, binned)
    return w.enc.get_compressed().astype("<u4").tobytes(), qmaxes


class GridReader:
    """The inverse of encode_grids, wavefront by wavefront: `read(t)` decodes the latents
    of the wavefronts before t into `grids` (int32 views, complete row by row: `rows`),
    `finish` checks the payload and returns the grids. A decoder may render the rows it
    has while it reads on (stream.py). Raises FormatError on anything encode_grids did
    not make: a payload that does not decode, a latent beyond its range, a grid whose
    declared range is not its largest magnitude (the writer stores each grid's own),
    words other than the encoder's."""

    def __init__(self, data: bytes, shapes: list[tuple[int, int]], qmaxes: list[int],
                 params: ArmParams, binned: bool = True):
        if len(data) % 4:
            raise FormatError("latent payload is not a whole number of 32-bit words")
        if any(not 0 <= q <= prior.MAX_QMAX // 2 for q in qmaxes):
            raise FormatError("a latent range in the file is out of bounds")
        self.shapes = [tuple(s) for s in shapes]
        self.R = max(1, 2 * max(qmaxes, default=0))
        self.qm = np.array(qmaxes, dtype=np.int64)
        self.peaks = np.zeros(len(qmaxes), np.int64)
        self.buf, self.offs = arm_kernels.padded(self.shapes)
        self.words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self.st = np.empty(rangecoder.STATE, np.uint64)
        rangecoder.start(self.words, self.st)
        self.shape_array = np.array(self.shapes, dtype=np.int64).reshape(-1, 2)
        self.weights = arm_kernels.weights(params)
        self.cums = _cumulative(self.R, binned)
        self.grids = [v for _, v in arm_kernels.views(self.buf, self.offs, self.shapes)]
        self.waves = max((3 * (h - 1) + w for h, w in self.shapes), default=0)
        self.t = 0  # the wavefronts before t are read
        self.checked = False

    def rows(self, g: int) -> int:
        """Grid g's rows read so far: row y is whole after wavefront 3y + w - 1."""
        h, w = self.shapes[g]
        return min(h, max(0, -(-(self.t - w + 1) // 3)))

    def read(self, t: int) -> None:
        """Decodes the wavefronts up to (not including) t."""
        t = min(t, self.waves)
        if t <= self.t:
            return
        status = arm_kernels.decode_waves(self.words, self.st, self.buf, self.offs,
                                          self.shape_array, self.qm, self.peaks,
                                          *self.weights, self.cums, self.R, self.t, t)
        if status == rangecoder.INVALID:
            raise FormatError("latent payload does not decode: invalid data")
        if status == arm_kernels.BEYOND:
            raise FormatError("latent beyond the declared range")
        self.t = t

    def check(self) -> None:
        """Reads to the end, then the checks that need the whole payload (once: the
        canonical check moves the coder's state)."""
        if self.checked:
            return
        self.read(self.waves)
        if not np.array_equal(self.peaks, self.qm):
            raise FormatError("latent payload is not in canonical form (a grid's declared "
                              "range is not its largest magnitude)")
        if not rangecoder.canonical(self.st, self.words):
            raise FormatError("latent payload is not in canonical form (damaged or "
                              "trailing data)")
        self.checked = True

    def finish(self) -> list[np.ndarray]:
        """check, then the grids (int32, their own arrays)."""
        self.check()
        return [v.copy() for v in self.grids]


def decode_grids(data: bytes, shapes: list[tuple[int, int]], qmaxes: list[int],
                 params: ArmParams, binned: bool = True) -> list[np.ndarray]:
    """Inverse of encode_grids (int32 grids): GridReader, read at once."""
    return GridReader(data, shapes, qmaxes, params, binned).finish()


# The latent section: u16 qmax per grid, then the coded words.
def encode_section(grids: list[np.ndarray], params: ArmParams, binned: bool = True) -> bytes:
    data, qmaxes = encode_grids(grids, params, binned)
    return struct.pack(f"<{len(qmaxes)}H", *qmaxes) + data


def section_reader(data: bytes, shapes: list[tuple[int, int]], params: ArmParams,
                   binned: bool = True) -> GridReader:
    n = 2 * len(shapes)
    if len(data) < n:
        raise FormatError("latent section is truncated")
    qmaxes = list(struct.unpack(f"<{len(shapes)}H", data[:n]))
    return GridReader(data[n:], shapes, qmaxes, params, binned)


def decode_section(data: bytes, shapes: list[tuple[int, int]], params: ArmParams,
                   binned: bool = True) -> list[np.ndarray]:
    return section_reader(data, shapes, params, binned).finish()


def grid_bits(grids: list[np.ndarray], params: ArmParams, binned: bool = True) -> float:
    """The exact ideal code length of the grids (bits), without running the coder."""
    total = 0.0

    class _Count:
        def code(self, symbols, probs):
            nonlocal total
            total -= float(np.log2(probs[np.arange(len(symbols)), symbols]).sum())
            return symbols
    grids = [np.asarray(g, dtype=np.int64) for g in grids]
    _run(grids, [int(np.abs(g).max(initial=0)) for g in grids], params, _Count(), binned)
    return total


# -- the float twin, for fitting (torch, imported here: the decoder needs none) ------------------
def init_float(hidden: int, generator: torch.Generator) -> list[torch.Tensor]:
    """[W1 (H, 12), b1 (H,), W2 (2, H), b2 (2,)]: the second layer starts at zero, with the
    scale at 1 (untrained, every latent gets a Laplace of scale 1)."""
    import torch
    c = len(CONTEXT)
    w1 = (torch.rand(hidden, c, generator=generator) * 2 - 1) / math.sqrt(c)
    return [w1, torch.zeros(hidden), torch.zeros(2, hidden),
            torch.tensor([0.0, -math.log2(0.04)])]


def context_float(q: torch.Tensor) -> torch.Tensor:
    """(..., h, w) latents -> (..., h * w, 12) causal neighbours, zero outside the grid,
    clipped to [-CLIP, CLIP] (before the copies: a twelfth of the work)."""
    import torch
    import torch.nn.functional as F
    h, w = q.shape[-2:]
    p = F.pad(q.clamp(-CLIP, CLIP), (2, 2, 2, 0))
    return torch.stack([p[..., 2 + dy:2 + dy + h, 2 + dx:2 + dx + w].reshape(*q.shape[:-2], -1)
                        for dy, dx in CONTEXT], -1)


def predict_float(params: list[torch.Tensor], ctx: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """ArmParams.predict in float: (mean, Laplace scale) per row of contexts. params:
    [W1, b1, W2, b2] or, with the residual layer, [W1, b1, W2, b2, Wr, br]."""
    import torch
    w1, b1, w2, b2 = params[:4]
    h = torch.relu(ctx @ w1.t() + b1)  # ctx is clipped by context_float
    if len(params) > 4:
        h = torch.relu(h + h @ params[4].t() + params[5])  # HMAX is never near in float
    o = h @ w2.t() + b2
    scale = 0.04 * torch.exp2(o[..., 1].clamp(0.0, (SCALES - 1) / 6.0))
    return o[..., 0], scale
