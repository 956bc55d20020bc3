"""constriction 0.4's `stream.queue.RangeDecoder` (32-bit words, 64-bit state, 24-bit
probabilities) as numba functions other kernels call per symbol, with its RangeEncoder run
alongside: the encoder's words for the decoded symbols are compared with the section's as
they are made, so a decode also checks that the section is the encoder's own output
(canonical) without coding it a second time. The reference is constriction itself
(`entropy.strict_decode` with a re-encode); tests hold the two to the same symbols and the
same verdicts.

A table is the coder's cumulative frequencies (`cumulative`): what constriction's
`Categorical(perfect=False)` makes of exact dyadic probabilities f / 2^24.
"""
from __future__ import annotations

import numba
import numpy as np

PRECISION = 24
# The state, one uint64 array: point - lower, range, the next word to read, then the
# encoder's twin: lower, held-back words (0: none), the first of them, whether anything was
# coded, words made so far, and a flag set once a made word differs from the section's.
D, RANGE, POS, LOWER, INVERTED, FIRST, CODED, MADE, DIFFERS = range(9)
STATE = 9
# decode's result when the section cannot be decoded (a quantile beyond the table)
INVALID = -1

_U32 = np.uint64(32)
_P = np.uint64(PRECISION)
_MASK32 = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


def cumulative(freqs: np.ndarray) -> np.ndarray:
    """Frequencies f (summing to 2^24, each >= 1) -> the cumulative table (n + 1 entries)
    constriction codes with: C'(i) = floor(C(i) (2^24 - n) / 2^24) + i, C'(n) = 2^24,
    with C(i) the sum of f below i (conformance.md, "The coder's tables")."""
    f = np.asarray(freqs, dtype=np.int64)
    n = f.shape[-1]
    c = np.concatenate([np.zeros(f.shape[:-1] + (1,), np.int64), np.cumsum(f, -1)[..., :-1]], -1)
    out = np.empty(f.shape[:-1] + (n + 1,), np.int64)
    out[..., :n] = ((c * ((1 << PRECISION) - n)) >> PRECISION) + np.arange(n)
    out[..., n] = 1 << PRECISION
    return out


@numba.njit(cache=True, nogil=True)
def start(words, st):
    """A decoder of the section `words` (uint32) in `st` (STATE uint64s)."""
    n = words.shape[0]
    d = _ZERO
    pos = 0
    if n >= 2:
        d = (np.uint64(words[0]) << _U32) | np.uint64(words[1])
        pos = 2
    elif n == 1:
        d = np.uint64(words[0]) << _U32
        pos = 1
    st[D] = d
    st[RANGE] = np.uint64(0xFFFFFFFFFFFFFFFF)
    st[POS] = np.uint64(pos)
    for k in range(LOWER, STATE):
        st[k] = _ZERO


@numba.njit(cache=True, nogil=True, inline="always")
def _emit(st, words, w):
    k = st[MADE]
    if k >= np.uint64(words.shape[0]) or np.uint64(words[k]) != w:
        st[DIFFERS] = _ONE
    st[MADE] = k + _ONE


@numba.njit(cache=True, nogil=True)
def _settle(st, words, carry):
    """The held-back words, now that the carry into them is known."""
    first = (st[FIRST] + _ONE) & _MASK32 if carry else st[FIRST]
    rest = _ZERO if carry else _MASK32
    _emit(st, words, first)
    for _ in range(int(st[INVERTED]) - 1):
        _emit(st, words, rest)
    st[INVERTED] = _ZERO


@numba.njit(cache=True, nogil=True, inline="always")
def decode(st, words, cum, guess):
    """The next symbol under the cumulative table `cum` (int64, n + 1 entries), or INVALID;
    looked for from symbol `guess` outwards (cheap where the guess is the likely one)."""
    scale = st[RANGE] >> _P
    d = st[D]
    lo = guess
    if not (scale * np.uint64(cum[lo]) <= d < scale * np.uint64(cum[lo + 1])):
        # the quantile floor(d / scale) is not the guess's: divide (products < 2^64)
        q = d // scale
        if q >= (_ONE << _P):
            return INVALID
        qi = np.int64(q)
        while cum[lo] > qi:
            lo -= 1
        while cum[lo + 1] <= qi:
            lo += 1
    c = np.uint64(cum[lo])
    new_range = scale * np.uint64(cum[lo + 1] - cum[lo])
    d -= scale * c
    # the encoder's twin: lower += scale c (mod 2^64)
    st[CODED] = _ONE
    lower = st[LOWER]
    new_lower = lower + scale * c
    if st[INVERTED] != _ZERO and new_lower + new_range > new_lower:
        _settle(st, words, new_lower < lower)  # back to normal; the carry if lower wrapped
    lower = new_lower
    if new_range < (_ONE << _U32):  # renormalise both
        word = lower >> _U32
        lower = lower << _U32
        new_range = new_range << _U32
        if st[INVERTED] != _ZERO:
            st[INVERTED] += _ONE
        elif lower + new_range > lower:
            _emit(st, words, word)
        else:
            st[INVERTED] = _ONE
            st[FIRST] = word
        pos = st[POS]
        nxt = _ZERO
        if pos < np.uint64(words.shape[0]):
            nxt = np.uint64(words[pos])
            st[POS] = pos + _ONE
        d = (d << _U32) | nxt
    st[LOWER] = lower
    st[RANGE] = new_range
    st[D] = d
    return lo


@numba.njit(cache=True, nogil=True)
def canonical(st, words):
    """After the last symbol: whether the section is exactly the encoder's sealed output
    (`get_compressed`) for the symbols decoded."""
    if st[CODED] != _ZERO:
        lower = st[LOWER]
        point = lower + _MASK32
        if st[INVERTED] != _ZERO:
            _settle(st, words, point < lower)
        point_word = point >> _U32
        _emit(st, words, point_word)
        if ((lower + st[RANGE]) >> _U32) == point_word:
            _emit(st, words, _ZERO)
    return st[DIFFERS] == _ZERO and st[MADE] == np.uint64(words.shape[0])


@numba.njit(cache=True, nogil=True)
def decode_all(words, cums, rows, out):
    """Symbols with the tables cums[rows[i]], in order, into out; 0, or INVALID (undecodable),
    or 1 (decoded, not canonical). For tests and simple sections."""
    st = np.empty(STATE, np.uint64)
    start(words, st)
    for i in range(rows.shape[0]):
        s = decode(st, words, cums[rows[i]], 0)
        if s < 0:
            return INVALID
        out[i] = s
    return 0 if canonical(st, words) else 1
