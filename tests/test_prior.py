"""The discrete Laplace prior: exact integer tables, range coding by model, clear errors."""
import hashlib

import numpy as np
import pytest
import torch

from inrcodec.codec import prior
from inrcodec.errors import FormatError

CASES = ((1, 0), (1, 3), (32768, 5), (65535, 200), (50000, 1000))


def test_tables_are_exact_and_pinned():
    """Integer arithmetic only, so these bytes hold on every machine and CPU capability
    (the suite runs under ATEN_CPU_CAPABILITY=default and =avx2)."""
    for m, qmax in CASES:
        t = prior.table(m, qmax)
        assert t.dtype == np.int64 and len(t) == 2 * qmax + 1
        assert t.sum() == 1 << prior.PRECISION and (t >= 1).all()
        assert (t == t[::-1]).all() and t[qmax] == t.max()  # symmetric, peaked at 0
    blob = b"".join(prior.table(m, q).astype("<i8").tobytes() for m, q in CASES)
    assert hashlib.sha256(blob).hexdigest() == \
        "d922e151ea7d6241de09b6ca79e4a8a600ce29744eb7b71d58da0a5af701b2dd"


def test_wider_prior_for_larger_values():
    narrow, wide = prior.table(10000, 20), prior.table(60000, 20)
    assert narrow[20] > wide[20] and narrow[0] < wide[0]


def test_round_trip_near_the_ideal_length():
    rng = np.random.default_rng(0)
    parts = [np.round(rng.laplace(0, s, n)).astype(np.int64)
             for s, n in ((0.3, 500), (4, 900), (40, 50), (0.0, 10))]
    params = [prior.fit_m(p) for p in parts]
    assert params[-1][1] == 0  # all zeros: nothing to code
    data = prior.encode_tensors(parts, params)
    back = prior.decode_tensors(data, [len(p) for p in parts], params)
    assert all((a == b).all() for a, b in zip(parts, back))
    ideal = sum(prior.code_length(p, *pp) for p, pp in zip(parts, params))
    assert ideal <= 8 * len(data) <= ideal + 64


def test_fit_m_beats_its_neighbours():
    q = np.round(np.random.default_rng(1).laplace(0, 3, 2000)).astype(np.int64)
    m, qmax = prior.fit_m(q)
    best = prior.code_length(q, m, qmax)
    for other in (int(m * 0.8), int(m * 1.1)):
        assert prior.code_length(q, min(other, 65535), qmax) >= best


def test_damaged_payloads_and_parameters_fail_clearly():
    q = [np.arange(-5, 6)]
    params = [prior.fit_m(q[0])]
    data = prior.encode_tensors(q, params)
    for bad in (data + b"\0\0\0\0", data[:-4], data[:3]):
        with pytest.raises(FormatError):
            prior.decode_tensors(bad, [11], params)
    for m, qmax in ((0, 5), (1 << 16, 5), (100, prior.MAX_QMAX + 1)):
        with pytest.raises(FormatError):
            prior.table(m, qmax)


def test_rate_proxy_tracks_the_table():
    """The training proxy (continuous Laplace) and the integer table agree to a few %."""
    q = np.round(np.random.default_rng(2).laplace(0, 2.5, 5000)).astype(np.int64)
    m, qmax = prior.fit_m(q)
    b = -1.0 / np.log(m / 65536)
    proxy = float(prior.rate_bits(torch.tensor(q, dtype=torch.float64),
                                  torch.tensor(b, dtype=torch.float64)).sum())
    assert proxy == pytest.approx(prior.code_length(q, m, qmax), rel=0.05)
