"""render.py, the decoder's pixels: its fused bands (the cascade's last step and the
synthesis per band of rows) against the same synthesis on the whole cascade's features,
and both against the float32 torch synthesis the encoder fits."""
import numba
import numpy as np
import pytest
import torch

from inrcodec.codec.latent import render, render_kernels
from inrcodec.codec.latent.config import LatentArch
from inrcodec.codec.latent.grids import features
from inrcodec.codec.latent.layout import grid_shapes
from inrcodec.codec.latent.synthesis import init_synthesis, synthesize_cf, taps


def _case(h, w, upsample="learned", act="sine", seed=0):
    arch = LatentArch(levels=4, hidden=8, layers=2, act=act, upsample=upsample)
    g = torch.Generator().manual_seed(seed)
    theta = init_synthesis(arch, g)
    if arch.up_params:  # taps away from bilinear, so every tap matters
        theta[-arch.up_params:] += 0.2 * torch.rand(arch.up_params, generator=g) - 0.1
    rng = np.random.default_rng(seed)
    grids = [rng.integers(-9, 10, s).astype(np.float32) for s in grid_shapes(h, w, 4)]
    return arch, theta.numpy(), grids


def _generic(arch, theta, grids, h, w):
    """The synthesis kernel on the whole features tensor (torch's cascade)."""
    t = torch.from_numpy(theta)
    f = features(arch, [torch.from_numpy(g) for g in grids], h, w, taps(arch, t)).numpy()
    out = np.empty((h * w, 3), np.uint8)
    dims = np.array([arch.inputs] + [arch.hidden] * arch.layers + [3])
    render_kernels.chunks(0, -(-h * w // render_kernels.CHUNK), np.ascontiguousarray(f), dims,
                   render_kernels.net_of(dims, theta), arch.act == "sine", np.float32(arch.w0), out)
    return out.reshape(h, w, 3), f


@pytest.mark.parametrize("h,w", [(37, 53), (16, 16), (9, 2), (1, 7), (21, 1)])
def test_bands_are_the_whole_cascade_exactly(h, w):
    arch, theta, grids = _case(h, w)
    got = render.render(arch, theta, grids, h, w)
    want, _ = _generic(arch, theta, grids, h, w)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("upsample,act", [("learned", "sine"), ("bilinear", "sine"),
                                          ("learned", "relu"), ("bicubic", "relu")])
def test_render_is_the_float32_synthesis_within_rounding(upsample, act):
    h, w = 29, 40
    arch, theta, grids = _case(h, w, upsample, act, seed=3)
    for size in ((h, w), (50, 17)):
        got = render.render(arch, theta, grids, *size)
        t = torch.from_numpy(theta)
        f = features(arch, [torch.from_numpy(g) for g in grids], *size, taps(arch, t))
        ref = synthesize_cf(arch, t, f).clamp(0, 1).mul(255).t().reshape(*size, 3).numpy()
        d = np.abs(got.astype(np.float32) - ref)
        assert d.max() < 0.5 + 5e-3  # rounded; float32 noise, w0-amplified, under 0.005


def test_synthesis_sums_in_float64_and_rounds_once():
    """0.5 + 2^-25 + 2^-25: float32 sums in order give 0.5 (each addition ties to even),
    the spec's float64 sum 0.5 + 2^-24. Among biases b, those where that ulp moves the
    8-bit sample show which sum the decoder takes."""
    f = np.float32
    b = (np.arange(-20000, 20000) * np.float64(2.0 ** -24) - 0.3).astype(f)

    def sample(y):  # one output unit: clamp(y + 1/2, 0, 1) x 255, rounded
        return np.rint(f(np.clip((y + f(0.5)).astype(f), 0, 1) * f(255))).astype(np.uint8)
    spec = sample((np.float64(0.5) + 2.0 ** -24 + b).astype(f))
    in_float32 = sample((f(0.5) + b).astype(f))
    moved = np.flatnonzero(spec != in_float32)
    assert len(moved) > 0
    feat = np.array([[0.5], [2.0 ** -25], [2.0 ** -25]], f)
    for k in moved[:20]:
        theta = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, b[k], b[k], b[k]], f)
        out = np.empty((1, 3), np.uint8)
        dims = np.array([3, 3])
        render_kernels.chunks(0, 1, feat, dims, render_kernels.net_of(dims, theta), False, f(1.0), out)
        assert out[0, 0] == spec[k] != in_float32[k]


def test_sine_is_within_two_float64_ulps():
    x = np.concatenate([np.linspace(-300, 300, 200001), [0.0, np.pi, -np.pi / 2, 1e-8]])
    got = np.array([render_kernels._sin(v) for v in x[::97]])
    want = np.sin(x[::97])
    assert np.all(np.abs(got - want) <= 2 * np.spacing(np.abs(want)) + 1e-300)


def _sin_as_written(x):
    """render_kernels._sin step by step in numpy, its quadrant as int64(k) & 3."""
    rk = render_kernels
    with np.errstate(invalid="ignore"):
        k = np.floor(x * rk._INVPIO2 + 0.5)
        r = ((x - k * rk._PIO2_1) - k * rk._PIO2_2) - k * rk._PIO2_3
        z = r * r
        s = r + (z * r) * (rk._S1 + z * (rk._S2 + z * (rk._S3 + z * (rk._S4 + z * (
            rk._S5 + z * rk._S6)))))
        c = 1.0 - (0.5 * z - z * z * (rk._C1 + z * (rk._C2 + z * (rk._C3 + z * (
            rk._C4 + z * (rk._C5 + z * rk._C6))))))
        q = np.where(np.isfinite(k), k, 0).astype(np.int64) & 3
    a = np.where(q & 1, c, s)
    return np.where(q & 2, -a, a)


def test_the_sine_keeps_its_quadrant_for_any_float32():
    """_sin takes the quadrant as k mod 4 in float64 (it vectorises): the bits of the
    integer's, for every float32 a synthesis can feed it, huge, infinite or NaN."""
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2 ** 32, 1 << 16, dtype=np.uint64).astype(np.uint32)
    with np.errstate(invalid="ignore"):  # signalling NaNs among the bits
        x = np.concatenate([bits.view(np.float32), rng.standard_normal(1 << 14).astype(
            np.float32) * 40, np.array([0, -0.0, np.inf, -np.inf, np.nan, 2 ** 31, -2 ** 33,
                                        2 ** 62, -2 ** 64, 3.4e38, 1e-45], np.float32)]
                           ).astype(np.float64)
    got = np.empty_like(x)
    _sines(x, got)
    want = _sin_as_written(x)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan) and nan.sum() > 100
    assert np.array_equal(got[~nan].view(np.uint64), want[~nan].view(np.uint64))


@numba.njit
def _sines(x, out):
    for i in range(x.shape[0]):
        out[i] = render_kernels._sin(x[i])


def test_threads_split_the_bands_and_give_the_same_pixels(monkeypatch):
    arch, theta, grids = _case(203, 77)
    monkeypatch.setattr(render, "THREADS", 1)
    one = render.render(arch, theta, grids, 203, 77)
    monkeypatch.setattr(render, "THREADS", 3)
    assert np.array_equal(render.render(arch, theta, grids, 203, 77), one)


@pytest.mark.parametrize("size", [(10, 13), (37, 53), (80, 120), (5, 140)])
def test_other_sizes_read_the_cascade_where_the_whole_cascade_has_it(size):
    """A render at another size computes only the cascade's rows and columns its bilinear
    taps read: the same samples as resampling the whole cascade's output."""
    from inrcodec.codec.latent import upsampling
    h, w = 37, 53
    arch, theta, grids = _case(h, w, seed=4)
    got = render.render(arch, theta, grids, *size)
    e = theta[-arch.up_params:].reshape(-1, upsampling.TAPS)
    x = grids[-1][None]
    for k in range(len(grids) - 2, -1, -1):
        y, _ = upsampling.step(x, e[k], grids[k].shape)
        x = np.concatenate([grids[k][None], y])
    want = np.empty((size[0] * size[1], 3), np.uint8)
    net, dims, sine, w0 = render_kernels.kernel_args(arch, theta)
    render_kernels.resampled(0, -(-size[0] // render_kernels.BAND), *render_kernels.planes(list(x), *size),
                      arch.coords, *size, dims, net, sine, w0, want)
    assert np.array_equal(got, want.reshape(*size, 3))
