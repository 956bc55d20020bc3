"""--bpp in one encode (codec/latent/ratecontrol.py): the dead-zone trim, the file that fits
its budget, and the direction of the pilot's correction."""
import numpy as np
import pytest

import inrcodec
from inrcodec.codec.latent import codec as lc
from inrcodec.codec.latent import ratecontrol
from inrcodec.codec.latent.config import LatentFit, latent_lambda
from inrcodec.codec.latent.fit import LIM, Start, fit
from inrcodec.codec.latent.model import load_latent_model


def _photo(h=48, w=64):
    y, x = np.mgrid[0:h, 0:w] / 7.0
    base = np.stack([np.sin(x), np.cos(y * 1.3), np.sin(x * y / 5)], -1)
    noise = np.random.default_rng(1).normal(0, 0.05, base.shape)
    return np.clip((0.4 * base + 0.5 + noise) * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def fitted():
    m = load_latent_model(None)
    st = Start.of(m, m.default_level)
    img = _photo()
    lam = latent_lambda(60)
    return img, m, st, lam, fit(img, m.arch, LatentFit(lam=lam, steps=30), None, st)


def test_deadzone_rounds_toward_zero_inside_the_zone():
    v = [np.array([0.4, 0.6, 0.8, -0.6, -0.8, 1.65, -2.55, 3.0])]
    assert ratecontrol.deadzone(v, 0.0, LIM)[0].tolist() == [0, 1, 1, -1, -1, 2, -3, 3]
    assert ratecontrol.deadzone(v, 0.2, LIM)[0].tolist() == [0, 0, 1, 0, -1, 1, -2, 3]
    assert ratecontrol.deadzone(v, 0.5, LIM)[0].tolist() == [0, 0, 0, 0, 0, 1, -2, 3]
    assert ratecontrol.deadzone(v, 0.9, LIM)[0].tolist() == [0, 0, 0, 0, 0, 1, -2, 2]
    assert ratecontrol.deadzone([np.array([1e9])], 0.0, LIM)[0].tolist() == [LIM]


def test_trim_fits_the_budget_and_fails_when_nothing_can(fitted):
    img, m, st, lam, f = fitted
    full = len(ratecontrol.trim(f.values, st.arm, 10 ** 9, LIM)[1])
    rounded = ratecontrol.deadzone(f.values, 0.0, LIM)
    # a byte less: the marginal latents alone; a fifth less: a dead zone as well. (How many
    # bytes the marginal latents hold depends on the fit: 3% had been asked of them, which
    # a 30-step fit of this tiny image gives for some seeds and not others.)
    for budget in (full - 1, int(0.8 * full)):
        q, section, depth = ratecontrol.trim(f.values, st.arm, budget, LIM)
        assert len(section) <= budget and 0 < depth <= 1 + ratecontrol.TAU_MAX
        assert all(np.all(np.abs(a) <= np.abs(b)) for a, b in zip(q, rounded))  # only shrinks
        assert (depth <= 1) == (budget == full - 1)
    with pytest.raises(ValueError, match="widest dead zone"):
        ratecontrol.trim(f.values, st.arm, 1, LIM)


def test_pack_within_a_budget(fitted):
    img, m, st, lam, f = fitted
    plain, tau, latent_bytes = lc.pack(img, "RGB", None, f, lam, m.arch, m, m.default_level, st)
    assert tau == 0.0 and 0 < latent_bytes < len(plain)
    same, *_ = lc.pack(img, "RGB", None, f, lam, m.arch, m, m.default_level, st, len(plain))
    assert same == plain  # the budget counts every byte of the file
    for budget in (len(plain) - 1, int(0.8 * len(plain))):
        data, tau, _ = lc.pack(img, "RGB", None, f, lam, m.arch, m, m.default_level, st,
                               budget)
        assert len(data) <= budget
        assert inrcodec.decode_array(data).shape == img.shape
    with pytest.raises(inrcodec.InrcodecError, match="below the smallest"):
        lc.pack(img, "RGB", None, f, lam, m.arch, m, m.default_level, st, 60)


def test_pilot_correction_moves_quality_toward_the_budget():
    q, j = 40.0, 1.0
    assert ratecontrol.corrected_quality(q, 1000, 4000, j) > q  # pilot too small: more bits
    assert ratecontrol.corrected_quality(q, 4000, 1000, j) < q
    assert ratecontrol.Q_MIN <= ratecontrol.corrected_quality(q, 1, 10 ** 9, j) \
        <= ratecontrol.Q_MAX
    # a busier photo (bigger JPEG) is expected to gain more from the full fit: less quality
    assert ratecontrol.corrected_quality(q, 2000, 2000, 2.0) \
        < ratecontrol.corrected_quality(q, 2000, 2000, 0.5)


def test_first_quality_grows_with_the_budget_and_falls_with_detail():
    smooth = np.full((64, 64, 3), 128, np.uint8)
    busy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    js, jb = ratecontrol.jpeg_bpp(smooth), ratecontrol.jpeg_bpp(busy)
    assert jb > js
    assert ratecontrol.first_quality(js, 1.0) > ratecontrol.first_quality(js, 0.5)
    assert ratecontrol.first_quality(jb, 1.0) < ratecontrol.first_quality(js, 1.0)


def test_bpp_target_lands_under_the_budget():
    img = _photo()
    r = inrcodec.encode_report(img, steps=20, bpp=1.5)
    assert len(r.data) <= int(1.5 * 48 * 64 / 8) and r.search["method"] == "pilot"


def test_steer_waits_then_moves_toward_the_falling_rate_both_ways():
    import torch

    from inrcodec.codec.latent.layout import grid_shapes
    m = load_latent_model(None)
    st = Start.of(m, m.default_level)
    shapes = grid_shapes(48, 64, m.arch.levels)
    zeros = [torch.zeros(s) for s in shapes]
    busy = [torch.full(s, 3.0) for s in shapes]
    small = len(lc.arm.encode_section([np.zeros(s, np.int64) for s in shapes], st.arm))
    aim = 2 ** -ratecontrol.STEER_AIM
    fs = LatentFit(lam=latent_lambda(20), steps=100)
    s = ratecontrol.Steer(small * aim, fs, st.arm)  # the final rate is the zeros' rate
    assert s.start == 60 and s.every == 2
    assert s(0, busy) == fs.lam and not s.history  # before EARLY x steps: no move
    # at quality 20 the rate is expected above its final value early in the steered part,
    # falling to it by the end
    assert s.expected(60) > 1.04 and s.expected(80) < s.expected(60) and s.expected(100) == 1
    assert s(60, zeros) < fs.lam  # at the final rate already: under the curve, lambda down
    lam = s.lam
    assert s(61, busy) == lam  # not a steering step
    assert s(62, busy) > lam  # far over: lambda up
    # at high quality the curve is flat: the final rate itself is on target
    hq = ratecontrol.Steer(small * aim, LatentFit(lam=latent_lambda(80), steps=100), st.arm)
    assert hq.expected(60) == 1.0
    assert hq(60, zeros) == pytest.approx(latent_lambda(80)) and len(hq.history) == 1
