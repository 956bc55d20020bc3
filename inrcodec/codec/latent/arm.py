"""An autoregressive entropy model of integer latent grids, in integer arithmetic.

Each latent z[y, x] is coded with a discrete Laplace whose mean and scale a small MLP
predicts from its 12 causal neighbours (CONTEXT: the two rows above, x-2..x+2, and the two
latents to its left; outside the grid they are 0). The MLP runs in fixed point on int64:
weights and biases are integers in units of 2^-FRAC, so the encoder and the decoder compute
the same mean and scale on every machine, and those pick one of SCALES x 4 integer
frequency tables (`prior.table_q4`). Nothing that reaches the coder is a float computed at
run time.

Latents are coded in wavefront order t = 3y + x: every context position of (y, x) lies on
an earlier wavefront, so the decoder decodes one wavefront of every grid at a time, as a
batch. The float twin (`init_float`, `context_float`, `predict_float`) is the same model in
torch for fitting; `ArmParams.from_float` rounds it to fixed point. `grid_bits` gives the
grids' exact code length for encoder decisions.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import math

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
    as exact dyadic probabilities for constriction."""

    def __init__(self, R: int):
        self.R = R
        f = np.stack([np.stack([prior.table_q4(m, j, R) for j in range(4)])
                      for m in SCALE_M])  # (SCALES, 4, 2R + 1)
        self.freq = f
        self.prob = f.astype(np.float64) / (1 << prior.PRECISION)

    def split(self, mu4: np.ndarray, qmax: int) -> tuple[np.ndarray, np.ndarray]:
        """Integer part of the mean (clamped to the grid's range) and quarter offset j."""
        mi = np.clip(mu4 >> 2, -qmax, qmax)
        j = np.where((mu4 >> 2) == mi, mu4 & 3, 0)
        return mi, j


def _positions(t: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y0 = max(0, -(-(t - w + 1) // 3))
    y1 = min(h - 1, t // 3)
    if y1 < y0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    y = np.arange(y0, y1 + 1, dtype=np.int64)
    return y, t - 3 * y


def _run(grids: list[np.ndarray], shapes: list[tuple[int, int]], qmaxes: list[int],
         params: ArmParams, side) -> list[np.ndarray]:
    """The schedule shared by the writer and the reader: wavefront by wavefront, every
    grid's latents on it, contexts -> tables -> side.code. `side.code(symbols | None,
    probs)` returns the symbols (alphabet index = r + R)."""
    R = max(1, 2 * max(qmaxes, default=0))  # constriction needs two symbols or more
    tables = _Tables(R)
    padded = [np.zeros((h + 2, w + 4), dtype=np.int64) for h, w in shapes]
    n_wave = max((3 * (h - 1) + w for h, w in shapes), default=0)
    dy = np.array([d[0] for d in CONTEXT]) + 2
    dx = np.array([d[1] for d in CONTEXT]) + 2
    for t in range(n_wave):
        ctx, where = [], []
        for g, (h, w) in enumerate(shapes):
            y, x = _positions(t, h, w)
            if y.size:
                ctx.append(padded[g][y[:, None] + dy[None, :], x[:, None] + dx[None, :]])
                where.append((g, y, x))
        if not ctx:
            continue
        ctx = np.concatenate(ctx)
        mu4, s = params.predict(ctx)
        truth, mis, k = [], [], 0
        for g, y, x in where:
            mi, j = tables.split(mu4[k:k + y.size], qmaxes[g])
            mis.append((mi, j))
            if grids is not None:
                truth.append(grids[g][y, x] - mi + R)
            k += y.size
        j_all = np.concatenate([j for _, j in mis])
        probs = tables.prob[s, j_all]
        sym = side.code(np.concatenate(truth) if grids is not None else None, probs)
        k = 0
        for (g, y, x), (mi, _) in zip(where, mis):
            v = sym[k:k + y.size] - R + mi
            if np.abs(v).max(initial=0) > qmaxes[g]:
                raise FormatError(f"latent beyond the declared range {qmaxes[g]}")
            padded[g][y + 2, x + 2] = v
            k += y.size
    return [p[2:, 2:-2].copy() for p in padded]


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


def encode_grids(grids: list[np.ndarray], params: ArmParams) -> tuple[bytes, list[int]]:
    """Integer grids -> (payload, each grid's largest magnitude, which the file stores)."""
    grids = [np.asarray(g, dtype=np.int64) for g in grids]
    qmaxes = [int(np.abs(g).max(initial=0)) for g in grids]
    if max(qmaxes, default=0) > prior.MAX_QMAX // 2:
        raise ValueError("latents beyond the coder's range")
    w = _Writer()
    _run(grids, [g.shape for g in grids], qmaxes, params, w)
    return w.enc.get_compressed().astype("<u4").tobytes(), qmaxes


def decode_grids(data: bytes, shapes: list[tuple[int, int]], qmaxes: list[int],
                 params: ArmParams) -> list[np.ndarray]:
    """Inverse of encode_grids; raises FormatError on anything it did not make."""
    if len(data) % 4:
        raise FormatError("latent payload is not a whole number of 32-bit words")
    if any(not 0 <= q <= prior.MAX_QMAX // 2 for q in qmaxes):
        raise FormatError("a latent range in the file is out of bounds")
    return strict_decode(lambda: _run(None, shapes, qmaxes, params, _Reader(data)),
                         lambda grids: encode_grids(grids, params)[0], data, "latent payload")


# The latent section: u16 qmax per grid, then the coded words.
def encode_section(grids: list[np.ndarray], params: ArmParams) -> bytes:
    data, qmaxes = encode_grids(grids, params)
    return struct.pack(f"<{len(qmaxes)}H", *qmaxes) + data


def decode_section(data: bytes, shapes: list[tuple[int, int]], params: ArmParams
                   ) -> list[np.ndarray]:
    n = 2 * len(shapes)
    if len(data) < n:
        raise FormatError("latent section is truncated")
    qmaxes = list(struct.unpack(f"<{len(shapes)}H", data[:n]))
    return decode_grids(data[n:], shapes, qmaxes, params)


def grid_bits(grids: list[np.ndarray], params: ArmParams) -> float:
    """The exact ideal code length of the grids (bits), without running the coder."""
    total = 0.0

    class _Count:
        def code(self, symbols, probs):
            nonlocal total
            total -= float(np.log2(probs[np.arange(len(symbols)), symbols]).sum())
            return symbols
    grids = [np.asarray(g, dtype=np.int64) for g in grids]
    _run(grids, [g.shape for g in grids], [int(np.abs(g).max(initial=0)) for g in grids],
         params, _Count())
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
