"""Parametric priors over integer symbols, turned into exact integer probability tables.

The discrete Laplace (two-sided geometric) distribution over q in [-qmax, qmax]:

    P(q) proportional to theta^|q|,   theta = m / 2^16,  m an integer in 1..65535,

is the Laplace density sampled at the integers (scale b = -1 / ln theta, in units of the
quantisation step). A file stores (m, qmax) per coded tensor. The frequency table a range
coder uses is derived from them with integer arithmetic only (`table`), so the encoder
and the decoder build the same table on every machine; constriction receives it as exact
dyadic probabilities f / 2^PRECISION. Float arithmetic appears only on the encoder's side:
choosing m (`fit_m`), and the differentiable rate estimate a fit minimises (`rate_bits`).
"""
from __future__ import annotations

import math

from typing import TYPE_CHECKING

import numpy as np

from ..errors import FormatError
from .entropy import strict_decode

if TYPE_CHECKING:
    import torch

M_BITS = 16  # theta = m / 2^16
PRECISION = 24  # frequencies sum to 2^24: constriction's default categorical precision
MAX_QMAX = (1 << 15) - 1
_ONE = 1 << 32  # fixed point of the unnormalised weights theta^n


def check_params(m: int, qmax: int) -> None:
    if not (1 <= m < (1 << M_BITS)) or not (0 <= qmax <= MAX_QMAX):
        raise FormatError(f"prior parameters m={m}, qmax={qmax} are out of range")


def table(m: int, qmax: int) -> np.ndarray:
    """Integer frequencies (int64, length 2 qmax + 1, symbol s = q + qmax), each >= 1,
    summing to exactly 2^PRECISION. Integer arithmetic only."""
    check_params(m, qmax)
    w = _pow_table(m, qmax + 1)  # w[k] = floor(2^32 theta^k)
    return _normalise(np.concatenate([w[:0:-1], w]), qmax)  # |q| = qmax .. 1, 0, 1 .. qmax


def _pow_table(m: int, n: int) -> np.ndarray:
    """floor(2^32 theta^k) for k = 0..n-1, theta = m / 2^16: repeated fixed-point products."""
    w = np.empty(n, dtype=np.int64)
    v = _ONE
    for k in range(n):
        w[k] = v
        v = (v * m) >> M_BITS
    return w


def _normalise(weights: np.ndarray, peak: int) -> np.ndarray:
    """Integer weights (each <= 2^33, at most 2^17 of them) -> frequencies >= 1 summing to
    2^PRECISION; the rounding remainder goes to index `peak`."""
    n = len(weights)
    total = int(weights.sum())  # <= 2^33 x 2^17: no overflow in int64
    spare = (1 << PRECISION) - n  # every symbol gets 1, the rest in proportion
    if spare < 0:
        raise FormatError(f"an alphabet of {n} symbols exceeds the coder's precision")
    f = 1 + (weights * spare) // total  # products < 2^57: exact in int64
    f[peak] += (1 << PRECISION) - int(f.sum())
    return f


def table_counts(counts: np.ndarray) -> np.ndarray:
    """Frequencies over symbols 0..K-1 in proportion to integer counts (each >= 1, sum
    below 2^32): the static model of a file's small alphabets (the tile map)."""
    c = np.asarray(counts, dtype=np.int64)
    if c.ndim != 1 or not 1 <= len(c) <= 1 << 16 or (c < 1).any() or int(c.sum()) >= 1 << 32:
        raise FormatError("symbol counts are out of range")
    return _normalise(c, int(np.argmax(c)))


def table_q4(m: int, j: int, R: int, binned: bool = False) -> np.ndarray:
    """Frequencies over r in [-R, R] (index r + R) of a Laplace centred at j/4 (j = 0..3),
    theta = m / 2^16 per quarter unit (theta = exp(-1 / 4b) for scale b). Integer
    arithmetic only.

    binned=False (latent format 4): P(r) proportional to theta^e, e = |4r - j|, the
    density sampled at r. binned=True (format 6): the density's mass on [r - 1/2, r + 1/2],
    the model the fit's rate term (rate.py) minimises. Up to a common factor, that is
    theta^(e-2) - theta^(e+2) outside the bin holding the centre (e >= 2) and
    2 - theta^(2-e) - theta^(2+e) in it (e < 2): the density sampled at the points is
    overconfident where the scale is small, and cost 7-17% more bits
    (docs/studies/latent-mode-log.md, "Format 6")."""
    if not (1 <= m < (1 << M_BITS)) or not (0 <= R <= MAX_QMAX) or j not in (0, 1, 2, 3):
        raise FormatError(f"prior parameters m={m}, j={j}, R={R} are out of range")
    r = np.arange(-R, R + 1, dtype=np.int64)
    e = np.abs(4 * r - j)
    if not binned:
        w = _pow_table(m, int(e.max(initial=0)) + 1)[e]
        return _normalise(w, int(np.argmin(e)))
    p = _pow_table(m, int(e.max(initial=0)) + 3)  # theta^0 .. theta^(e_max + 2)
    out = e >= 2
    w = np.where(out, p[np.where(out, e - 2, 0)] - p[e + 2],
                 2 * _ONE - p[np.where(out, 0, 2 - e)] - p[e + 2])
    return _normalise(w, int(np.argmin(e)))


def code_length(q: np.ndarray, m: int, qmax: int) -> float:
    """Bits to code q with the table of (m, qmax) (ideal, without coder overhead)."""
    f = table(m, qmax)
    s = np.asarray(q, dtype=np.int64).ravel() + qmax
    return float(-(np.log2(f[s]) - PRECISION).sum())


def theta_for(mean_abs: float) -> float:
    """The theta whose two-sided geometric distribution has E|q| = mean_abs (ML fit)."""
    if mean_abs <= 0:
        return 1.0 / (1 << M_BITS)
    return (math.sqrt(1.0 + mean_abs * mean_abs) - 1.0) / mean_abs


def fit_m(q: np.ndarray) -> tuple[int, int]:
    """(m, qmax) for the integers q: qmax their largest magnitude, m the parameter with
    the shortest exact code among a few candidates around the ML estimate."""
    q = np.asarray(q, dtype=np.int64).ravel()
    qmax = int(np.abs(q).max(initial=0))
    if qmax > MAX_QMAX:
        raise ValueError(f"|q| up to {qmax} exceeds {MAX_QMAX}")
    m0 = theta_for(float(np.abs(q).mean()) if q.size else 0.0) * (1 << M_BITS)
    cands = {min(max(int(round(m0 * f)), 1), (1 << M_BITS) - 1)
             for f in (0.9, 0.95, 0.98, 1.0, 1.02, 1.05)}
    hist_q, counts = np.unique(q, return_counts=True)

    def bits(m):
        f = table(m, qmax)
        return float(-(counts * (np.log2(f[hist_q + qmax]) - PRECISION)).sum())
    return min(sorted(cands), key=bits), qmax


def rate_bits(x: torch.Tensor, scale: torch.Tensor, mean: torch.Tensor | float = 0.0
              ) -> torch.Tensor:
    """Differentiable bits of x (noisy or soft-rounded integers) under a Laplace density of
    `mean` and `scale` (in quantisation steps) integrated over [x - 1/2, x + 1/2]: the
    training proxy of the coded rate. Elementwise; sum it for a total."""
    import torch
    b = scale.clamp_min(1e-3)
    hi = _laplace_cdf(x - mean + 0.5, b)
    lo = _laplace_cdf(x - mean - 0.5, b)
    return -torch.log2((hi - lo).clamp_min(2.0 ** -PRECISION))


def _laplace_cdf(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    import torch
    return 0.5 + 0.5 * torch.sign(x) * (1.0 - torch.exp(-x.abs() / b))


# -- coding with constriction ------------------------------------------------------------------
def _categorical(f: np.ndarray):
    import constriction
    return constriction.stream.model.Categorical(f.astype(np.float64) / (1 << PRECISION),
                                                 perfect=False)


def encode_tensors(parts: list[np.ndarray], params: list[tuple[int, int]]) -> bytes:
    """Range-code each integer array of `parts` with its (m, qmax) prior, in order."""
    import constriction
    enc = constriction.stream.queue.RangeEncoder()
    for q, (m, qmax) in zip(parts, params):
        q = np.asarray(q, dtype=np.int64).ravel()
        if q.size and qmax > 0:
            enc.encode((q + qmax).astype(np.int32), _categorical(table(m, qmax)))
    return enc.get_compressed().astype("<u4").tobytes()


def encode_symbols(symbols: np.ndarray, f: np.ndarray) -> bytes:
    """Range-code symbols 0..len(f)-1 with the fixed integer frequencies f."""
    import constriction
    enc = constriction.stream.queue.RangeEncoder()
    s = np.asarray(symbols, dtype=np.int32).ravel()
    if s.size:
        enc.encode(s, _categorical(f))
    return enc.get_compressed().astype("<u4").tobytes()


def decode_symbols(data: bytes, n: int, f: np.ndarray) -> np.ndarray:
    """Inverse of encode_symbols; raises FormatError on anything it did not make."""
    import constriction
    if len(data) % 4:
        raise FormatError("range-coded section is not a whole number of 32-bit words")

    def run():
        dec = constriction.stream.queue.RangeDecoder(
            np.frombuffer(data, dtype="<u4").astype(np.uint32))
        return np.asarray(dec.decode(_categorical(f), n), dtype=np.int64)
    return strict_decode(run, lambda out: encode_symbols(out, f), data, "range-coded section")


def decode_tensors(data: bytes, sizes: list[int], params: list[tuple[int, int]]
                   ) -> list[np.ndarray]:
    """Inverse of encode_tensors; raises FormatError on anything it did not make."""
    import constriction
    if len(data) % 4:
        raise FormatError("range-coded payload is not a whole number of 32-bit words")

    def run():
        dec = constriction.stream.queue.RangeDecoder(
            np.frombuffer(data, dtype="<u4").astype(np.uint32))
        out = []
        for n, (m, qmax) in zip(sizes, params):
            if n == 0 or qmax == 0:
                table(max(m, 1), qmax)  # parameters are still checked
                out.append(np.zeros(n, dtype=np.int64))
                continue
            s = np.asarray(dec.decode(_categorical(table(m, qmax)), n), dtype=np.int64)
            out.append(s - qmax)
        return out
    return strict_decode(run, lambda out: encode_tensors(out, params), data,
                         "range-coded payload")
