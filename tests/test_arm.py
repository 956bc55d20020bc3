"""The autoregressive entropy model of latent grids: integer arithmetic, exact round trip,
bytes that are the same on every machine, clear errors."""
import hashlib

import numpy as np
import pytest

from inrcodec.codec.latent import arm
from inrcodec.errors import FormatError


def _case():
    rng = np.random.default_rng(5)
    h = 8
    p = arm.ArmParams.from_float(rng.normal(0, 0.05, (h, 12)), rng.normal(0, 0.2, h),
                                 rng.normal(0, 0.05, (2, h)), np.array([0.0, 4.0]))
    grids = [np.round(rng.laplace(0, 2.0, (9, 13))).astype(np.int64),
             np.round(rng.laplace(0, 1.0, (5, 7))).astype(np.int64)]
    return p, grids


def test_predictions_and_bytes_are_pinned():
    """Integer MLP and integer tables: these hashes hold on every machine and capability."""
    p, grids = _case()
    mu, s = p.predict(np.arange(-60, 60).reshape(10, 12))
    assert hashlib.sha256(mu.astype("<i8").tobytes() + s.astype("<i8").tobytes()).hexdigest() \
        == "3aba1db9e5b25806646d0fad8b5ec01b0fc18b7a3bfe5ac035b9aec3ece4d5dd"
    data, qmaxes = arm.encode_grids(grids, p)  # format 6: binned tables
    assert qmaxes == [26, 3] and len(data) == 84
    assert hashlib.sha256(data).hexdigest() == \
        "9ccea7af4da2a54f93d2fd153463c1616cd5c90a1eece7c9bb6f6801359c745b"
    data, qmaxes = arm.encode_grids(grids, p, binned=False)  # formats 3 and 4
    assert qmaxes == [26, 3] and len(data) == 88
    assert hashlib.sha256(data).hexdigest() == \
        "b279fde1a9bc0aa1b8fb075ddfa2dd945c930a52ab51ae78d86700631f085dd1"


@pytest.mark.parametrize("binned", [True, False])
def test_both_table_rules_round_trip(binned):
    p, grids = _case()
    data, qmaxes = arm.encode_grids(grids, p, binned)
    back = arm.decode_grids(data, [g.shape for g in grids], qmaxes, p, binned)
    assert all((a == b).all() for a, b in zip(grids, back))
    assert arm.grid_bits(grids, p, binned) == pytest.approx(8 * len(data), rel=0.1, abs=64)


def test_binned_tables_are_the_laplace_mass_per_bin():
    """prior.table_q4(binned=True) against the Laplace's CDF differences in float64; the
    density at the integers (formats 3, 4) is far more peaked where the scale is small."""
    from inrcodec.codec import prior
    for m in (arm.SCALE_M[0], arm.SCALE_M[12], arm.SCALE_M[30], arm.SCALE_M[63]):
        b = -1 / (4 * np.log(m / 65536))
        for j in range(4):
            r = np.arange(-40, 41)
            cdf = lambda x: 0.5 + 0.5 * np.sign(x) * (1 - np.exp(-np.abs(x) / b))
            mass = cdf(r - j / 4 + 0.5) - cdf(r - j / 4 - 0.5)
            f = prior.table_q4(m, j, 40, binned=True)
            assert f.sum() == 1 << prior.PRECISION and f.min() >= 1
            assert np.abs(f / (1 << prior.PRECISION) - mass / mass.sum()).max() < 1e-5
    b = 0.3  # P(0) at mean 0: 1 - e^(-1/2b) binned; (1 - e^(-1/b)) / (1 + e^(-1/b)) sampled
    m = round(65536 * np.exp(-1 / (4 * b)))
    p0 = [prior.table_q4(m, 0, 8, binned)[8] / (1 << prior.PRECISION) for binned in (True, False)]
    assert p0[0] == pytest.approx(1 - np.exp(-1 / (2 * b)), abs=1e-4)
    assert p0[1] == pytest.approx((1 - np.exp(-1 / b)) / (1 + np.exp(-1 / b)), abs=1e-4)


def test_round_trip_and_parameter_section():
    p, grids = _case()
    q = arm.ArmParams.from_bytes(p.to_bytes())
    assert all((a == b).all() for a, b in zip((q.w1, q.b1, q.w2, q.b2), (p.w1, p.b1, p.w2, p.b2)))
    data, qmaxes = arm.encode_grids(grids, q)
    back = arm.decode_grids(data, [g.shape for g in grids], qmaxes, q)
    assert all((a == b).all() for a, b in zip(grids, back))


def test_a_good_model_codes_near_its_ideal_length():
    """Smooth grids and an MLP that predicts the left neighbour: close to grid_bits, and
    far below coding without context."""
    y, x = np.mgrid[0:40, 0:60]
    g = np.round(6 * np.sin(x / 9.0) + 4 * np.cos(y / 7.0)).astype(np.int64)
    w1 = np.zeros((2, 12))
    w1[0, 11], w1[1, 11] = 1.0, -1.0  # relu(left) - relu(-left) = left
    p = arm.ArmParams.from_float(w1, np.zeros(2), np.array([[1.0, -1.0], [0.0, 0.0]]),
                                 np.array([0.0, 3.0]))
    data, _ = arm.encode_grids([g], p)
    ideal = arm.grid_bits([g], p)
    assert abs(8 * len(data) - ideal) <= 0.02 * ideal + 64
    flat = arm.ArmParams.from_float(np.zeros((2, 12)), np.zeros(2), np.zeros((2, 2)),
                                    np.array([0.0, 3.0]))
    assert 8 * len(data) < 0.6 * arm.grid_bits([g], flat)


def test_damaged_latent_payloads_fail_clearly():
    p, grids = _case()
    data, qmaxes = arm.encode_grids(grids, p)
    shapes = [g.shape for g in grids]
    bad = bytearray(data)
    bad[10] ^= 0x40
    for d in (bytes(bad), data + b"\0\0\0\0", data[:-4], data[:5]):
        with pytest.raises(FormatError):
            arm.decode_grids(d, shapes, qmaxes, p)
    with pytest.raises(FormatError):
        arm.decode_grids(data, shapes, [1 << 20, 3], p)  # a range no file can declare


def test_a_declared_range_must_be_the_grids_own():
    """The writer stores each grid's largest magnitude. A payload coded under wider tables
    (another range declared) can decode to grids whose largest magnitude is less: it is
    not the encoder's own section, and is refused (the fuzzer found a reader that took it)."""
    rng = np.random.default_rng(3)
    grids = [rng.integers(-2, 3, (9, 13)), rng.integers(-1, 2, (5, 7))]
    p = arm.ArmParams.from_float(np.zeros((4, 12)), np.zeros(4), np.zeros((2, 4)),
                                 np.array([0.0, 12.0]))
    data, qmaxes = arm.encode_grids(grids, p)
    back = arm.decode_grids(data, [g.shape for g in grids], qmaxes, p)
    assert all(np.array_equal(a, b) for a, b in zip(grids, back))
    wider = [q + 1 for q in qmaxes]
    coded = arm._Writer()
    arm._run(grids, wider, p, coded, True)  # the same grids, coded under the wider range
    words = coded.enc.get_compressed().astype("<u4").tobytes()
    with pytest.raises(FormatError, match="largest magnitude"):
        arm.decode_grids(words, [g.shape for g in grids], wider, p)
    for blob in (b"", b"\x00", p.to_bytes()[:-1], b"\x41" + p.to_bytes()[1:]):
        with pytest.raises(FormatError):
            arm.ArmParams.from_bytes(blob)
