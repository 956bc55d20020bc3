"""codec/rangecoder.py against constriction, the coder it reimplements: the same symbols
from the same words, and the same verdict on words the encoder did not make."""
import constriction
import numpy as np
import pytest

from inrcodec.codec import rangecoder as rc


def _tables(rng, k: int, n: int) -> np.ndarray:
    f = rng.integers(1, 1000, size=(k, n)).astype(np.int64)
    f = 1 + (f * ((1 << 24) - n)) // f.sum(1, keepdims=True)
    f[:, 0] += (1 << 24) - f.sum(1)
    return f


def _same_verdict(words: np.ndarray, f: np.ndarray, rows: np.ndarray) -> None:
    verdict, ref = _reference(words, f, rows)
    got = np.zeros(len(rows), np.int64)
    assert rc.decode_all(words, rc.cumulative(f), rows, got) == verdict
    if verdict >= 0:
        assert np.array_equal(got, ref)


def _reference(words: np.ndarray, f: np.ndarray, rows: np.ndarray):
    """constriction's decode, then its re-encode compared: (verdict, symbols) as
    rangecoder.decode_all's (0 canonical, 1 not, INVALID undecodable)."""
    model = constriction.stream.model.Categorical(perfect=False)
    probs = f[rows] / float(1 << 24)
    try:
        s = constriction.stream.queue.RangeDecoder(words).decode(model, probs)
    except Exception:
        return rc.INVALID, None
    enc = constriction.stream.queue.RangeEncoder()
    enc.encode(np.asarray(s, np.int32), model, probs)
    return (0 if np.array_equal(enc.get_compressed(), words) else 1), np.asarray(s)


@pytest.mark.parametrize("seed", range(3))
def test_decodes_what_constriction_encodes_and_judges_as_it_does(seed):
    rng = np.random.default_rng(seed)
    for trial in range(60):
        n, k = int(rng.integers(2, 40)), 5
        f = _tables(rng, k, n)
        m = int(rng.integers(1, 3000))
        rows = rng.integers(0, k, m)
        sym = np.array([rng.choice(n, p=f[r] / f[r].sum()) for r in rows], dtype=np.int32)
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(sym, constriction.stream.model.Categorical(perfect=False),
                   f[rows] / float(1 << 24))
        words = enc.get_compressed().astype(np.uint32)
        out = np.zeros(m, np.int64)
        assert rc.decode_all(words, rc.cumulative(f), rows, out) == 0
        assert np.array_equal(out, sym)
        for bad in (np.append(words, np.uint32(7)), words[:-1],
                    np.where(np.arange(len(words)) == len(words) - 1, words ^ 1, words)):
            _same_verdict(bad.astype(np.uint32), f, rows)


def test_random_words_get_constriction_verdict():
    rng = np.random.default_rng(5)
    for trial in range(1500):
        n = int(rng.integers(2, 10))
        f = _tables(rng, 3, n)
        m = int(rng.integers(1, 50))
        rows = rng.integers(0, 3, m)
        _same_verdict(rng.integers(0, 2 ** 32, int(rng.integers(0, 6)),
                                   dtype=np.uint64).astype(np.uint32), f, rows)


def test_cumulative_is_constrictions_quantisation():
    """C'(i) = floor(C(i) (2^24 - n) / 2^24) + i: a symbol of frequency 1 keeps width >= 1."""
    f = np.array([(1 << 24) - 2, 1, 1])
    c = rc.cumulative(f)
    assert c[0] == 0 and c[-1] == 1 << 24 and (np.diff(c) >= 1).all()
