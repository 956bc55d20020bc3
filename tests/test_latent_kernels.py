"""The latent fit's hand-written passes and the ARM's compiled coding path, each against
the plain expression it replaces (autograd, or the integer reference)."""
from dataclasses import replace

import numba
import numpy as np
import pytest
import torch

from inrcodec.codec import prior
from inrcodec.codec.latent import arm, arm_kernels, lanes, rate, synthesis, synthesis_kernels
from inrcodec.codec.latent.config import LatentArch, LatentFit
from inrcodec.codec.latent.fit import phases, quantised, softround
from inrcodec.codec.latent.grids import features, features_lattice
from inrcodec.codec.latent.layout import grid_shapes


def _reference_bits(params, grids):
    """The rate term as autograd sees it: arm.predict_float on context_float, grid by grid."""
    total = 0
    for g in grids:
        mu, b = arm.predict_float(params, arm.context_float(g))
        total = total + prior.rate_bits(g.reshape(-1), b, mu).sum()
    return total


def _arm_params(hidden=16, seed=0, dtype=torch.float32, residual=False):
    g = torch.Generator().manual_seed(seed)
    w1, b1, w2, b2 = arm.init_float(hidden, g)
    w2 = torch.randn(2, hidden, generator=g) * 0.3  # a trained-looking second layer
    b1 = torch.randn(hidden, generator=g) * 0.1
    res = (torch.randn(hidden, hidden, generator=g) * 0.3,
           torch.randn(hidden, generator=g) * 0.1) if residual else ()
    return [p.to(dtype) for p in (w1, b1, w2, b2, *res)]


def _grids(h, w, levels=5, seed=1, scale=0.7, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(s, generator=g, dtype=torch.float64) * scale).to(dtype)
            for s in grid_shapes(h, w, levels)]


@pytest.mark.parametrize("h,w,residual", [(37, 53, False), (16, 128, False), (64, 9, False),
                                          (37, 53, True), (64, 9, True)])
def test_rate_passes_match_autograd(h, w, residual):
    params = [p.requires_grad_(True)
              for p in _arm_params(dtype=torch.float64, residual=residual)]
    grids = [g.requires_grad_(True) for g in _grids(h, w, dtype=torch.float64)]
    ref = _reference_bits(params, grids)
    ref.backward()
    want = [g.grad.clone() for g in grids], [p.grad.clone() for p in params]
    canvas = rate.Canvas([tuple(g.shape) for g in grids])
    canvas.buf, canvas.valid = canvas.buf.double(), canvas.valid.double()
    total, g_grids, g_params = rate.torch_pass(canvas, [g.detach() for g in grids],
                                               [p.detach() for p in params], True)
    assert float(total) == pytest.approx(float(ref.detach()), rel=1e-12)
    for a, b in zip(g_grids + g_params, want[0] + want[1]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    # the compiled CPU pass, in float32, against the float64 reference
    c32 = rate.Canvas([tuple(g.shape) for g in grids])
    total, g_grids, g_params = rate.cpu_pass(c32, [g.detach().float() for g in grids],
                                             [p.detach().float() for p in params], True)
    assert float(total) == pytest.approx(float(ref.detach()), rel=1e-5)
    for a, b in zip(g_grids + g_params, want[0] + want[1]):
        assert float((a.double() - b).abs().max()) <= 1e-4 * float(b.abs().max()) + 1e-6


@pytest.mark.parametrize("residual", [False, True])
def test_the_one_thread_pass_is_the_parallel_pass(residual):
    """cpu_pass on one torch thread runs the serial twins (no numba pool): the same tasks,
    block sums and sums in lanes.py's order, so the same values, bit for bit."""
    params = _arm_params(residual=residual)
    grids = _grids(150, 170)

    def run(n):
        was = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            with rate.threads(n):
                c = rate.Canvas([tuple(g.shape) for g in grids], seed=2)
                return rate.cpu_pass(c, grids, params, True, True, 0.5)
        finally:
            torch.set_num_threads(was)
    (t1, g1, p1), (t2, g2, p2) = run(1), run(2)
    assert float(t1) == float(t2)
    assert all(torch.equal(a, b) for a, b in zip(g1 + p1, g2 + p2))


def test_rate_bits_is_an_autograd_scalar_and_sampling_is_seeded():
    params = _arm_params()
    grids = [g.requires_grad_(True) for g in _grids(40, 60)]
    canvas = rate.Canvas([tuple(g.shape) for g in grids])
    rate.bits(canvas, grids, params).backward()
    full = [g.grad.clone() for g in grids]
    total, g_grids, _ = rate.cpu_pass(canvas, [g.detach() for g in grids], params, False)
    for a, b in zip(full, g_grids):
        torch.testing.assert_close(a, b)

    def sampled(seed):
        c = rate.Canvas([tuple(g.shape) for g in grids], seed=seed)
        return rate.cpu_pass(c, [g.detach() for g in grids], params, False, False, 0.5)[1]
    a, b = sampled(3), sampled(3)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    # each latent's estimate is 0, or its full gradient's scaled share, or a mix at the
    # edges of a sampled block; never the full gradient everywhere
    assert not all(torch.allclose(x, y) for x, y in zip(a, full))


def test_canvas_holds_every_grid_apart():
    shapes = grid_shapes(50, 77, 7)
    c = rate.Canvas(shapes)
    grids = [torch.full(s, float(k + 1)) for k, s in enumerate(shapes)]
    buf = c.fill(grids).view(c.height, c.width)
    assert float(c.valid.sum()) == sum(h * w for h, w in shapes)
    for k, v in enumerate(c.views(buf)):
        assert torch.equal(v, grids[k])
    # every grid has two zero rows above and two zero columns either side
    for (h, w), (y, x) in zip(shapes, c.origins):
        assert float(buf[y - 2:y, x - 2:x + w + 2].abs().sum()) == 0
        assert float(buf[y:y + h, x - 2:x].abs().sum()) == 0
        assert float(buf[y:y + h, x + w:x + w + 2].abs().sum()) == 0


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_features_on_a_lattice_are_the_full_features_there(stride):
    arch = LatentArch(levels=5, coords=True)
    h, w = 29, 41
    grids = _grids(h, w, levels=5)
    full = features(arch, grids, h, w).reshape(-1, h, w)
    for p in phases(stride):
        got = features_lattice(arch, grids, h, w, stride, p)
        want = full[:, p[0]::stride, p[1]::stride].reshape(full.shape[0], -1)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_phases_cover_the_lattice_once():
    for s in (1, 2, 3, 4):
        assert sorted(phases(s)) == [(y, x) for y in range(s) for x in range(s)]


@pytest.mark.parametrize("arch", [LatentArch(hidden=12, act="sine", w0=5.0, coords=True),
                                  LatentArch(hidden=8, layers=3)])
def test_synthesis_mse_matches_autograd(arch, monkeypatch):
    monkeypatch.setattr(synthesis, "CHUNK", 700)  # several chunks, one short
    g = torch.Generator().manual_seed(0)
    theta = synthesis.init_synthesis(arch, g).double().requires_grad_(True)
    x = torch.randn(arch.inputs, 2500, generator=g, dtype=torch.float64).requires_grad_(True)
    y = torch.rand(3, 2500, generator=g, dtype=torch.float64)
    ref = (synthesis.synthesize_cf(arch, theta, x) - y).square().mean()
    ref.backward()
    want = theta.grad.clone(), x.grad.clone()
    theta.grad = x.grad = None
    got = synthesis.mse(arch, theta, x, y)
    got.backward()
    assert float(got.detach()) == pytest.approx(float(ref.detach()), rel=1e-12)
    torch.testing.assert_close(theta.grad, want[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x.grad, want[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("arch", [
    LatentArch(hidden=16, act="sine", w0=5.0, coords=True, upsample="learned"),
    LatentArch(hidden=8, layers=3), LatentArch(hidden=12, layers=1, act="sine", w0=30.0)])
def test_the_compiled_synthesis_pass_matches_float64(arch):
    """On the CPU in float32, mse_and_grad is synthesis_kernels' pass: the float64 torch
    path's value and gradients to float32 rounding, over several tasks (the last short)
    and a short last lane group; one and two threads alike, bit for bit (the same tasks,
    their sums in lanes.py's order)."""
    n = 2 * synthesis_kernels.BLOCK + 300
    g = torch.Generator().manual_seed(3)
    theta = synthesis.init_synthesis(arch, g)
    x = torch.randn(arch.inputs, n, generator=g) * 0.5
    y = torch.rand(3, n, generator=g)
    m64, t64, f64 = synthesis.mse_and_grad(arch, theta.double(), x.double(), y.double())
    assert torch.count_nonzero(t64[len(t64) - arch.up_params:]) == 0

    def run(threads):
        was = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return synthesis.mse_and_grad(arch, theta, x, y)
        finally:
            torch.set_num_threads(was)
    (m1, t1, f1), (m2, t2, f2) = run(1), run(2)
    assert m1.dtype == t1.dtype == f1.dtype == torch.float32
    assert float(m1) == pytest.approx(float(m64), rel=1e-6)
    for a, b in ((t1, t64), (f1, f64), (t2, t64), (f2, f64)):
        assert float((a.double() - b).abs().max()) <= 1e-5 * float(b.abs().max())
    assert float(m1) == float(m2) and torch.equal(t1, t2) and torch.equal(f1, f2)


def test_synthesize_cf_is_synthesize_transposed():
    arch = LatentArch(hidden=16, act="sine", w0=5.0, coords=True)
    theta = synthesis.init_synthesis(arch, torch.Generator().manual_seed(1))
    x = torch.randn(arch.inputs, 300)
    torch.testing.assert_close(synthesis.synthesize_cf(arch, theta, x),
                               synthesis.synthesize(arch, theta, x.t()).t())


# -- the ARM's compiled coding path -------------------------------------------------------------
def _extreme_params(hidden, seed, residual=False):
    rng = np.random.default_rng(seed)
    m = arm.MAX_PARAM
    res = (rng.integers(-m, m + 1, (hidden, hidden)), rng.integers(-m, m + 1, hidden)) \
        if residual else ()
    return arm.ArmParams(rng.integers(-m, m + 1, (hidden, len(arm.CONTEXT))),
                         rng.integers(-m, m + 1, hidden), rng.integers(-m, m + 1, (2, hidden)),
                         rng.integers(-m, m + 1, 2), *res)


@pytest.mark.parametrize("seed", range(8))
def test_compiled_prediction_is_the_integer_reference(seed):
    """The compiled MLP (float64 holding integers) and table choice must give
    ArmParams.predict to the bit, at the extremes of the weights (int16) and of the
    contexts (+-CLIP, and beyond, clipped), with and without the residual layer (whose
    outputs there reach HMAX)."""
    rng = np.random.default_rng(seed)
    p = _extreme_params(arm.MAX_HIDDEN if seed % 2 else 16, seed, residual=seed >= 4)
    n = 3000
    ctx = rng.integers(-300, 301, (n, len(arm.CONTEXT)))
    ctx[: n // 3] = rng.choice([-arm.CLIP, arm.CLIP, -300, 300], (n // 3, len(arm.CONTEXT)))
    mu4, s = p.predict(ctx)
    qmax = rng.integers(0, 40, n)
    w = arm_kernels.weights(p)
    out = np.empty((n, 3), np.int64)
    lanes = arm_kernels.LANES
    acc, hb, ra = np.empty((2, lanes)), np.empty((p.hidden, lanes)), np.empty(lanes)
    o0, o1 = np.empty(lanes, np.int64), np.empty(lanes, np.int64)
    c = np.clip(ctx, -arm.CLIP, arm.CLIP).astype(np.float64).T
    for a in range(0, n, lanes):  # the last call with fewer than LANES
        m = min(lanes, n - a)
        arm_kernels._mlp_lanes(np.ascontiguousarray(c[:, a:a + lanes]), m, *w, acc, hb, ra,
                               o0, o1)
        for k in range(m):
            arm_kernels._finish(o0[k], o1[k], qmax[a + k], out, a + k)
    mi = np.clip(mu4 >> 2, -qmax, qmax)
    assert np.array_equal(out[:, 0], mi)
    assert np.array_equal(out[:, 1], np.where((mu4 >> 2) == mi, mu4 & 3, 0))
    assert np.array_equal(out[:, 2], s)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("shapes", [[(7, 11), (4, 6), (2, 3), (1, 2)], [(1, 1)],
                                    [(33, 5), (17, 3), (9, 2)]])
def test_writer_and_reader_agree(shapes, residual):
    rng = np.random.default_rng(len(shapes))
    p = _extreme_params(8, 3, residual)
    res = (p.wr // 256, p.br // 64) if residual else ()
    p = arm.ArmParams(p.w1 // 64, p.b1 // 64, p.w2 // 64, p.b2 // 8, *res)
    grids = [rng.integers(-6, 7, s) for s in shapes]
    data, qmaxes = arm.encode_grids(grids, p)
    back = arm.decode_grids(data, shapes, qmaxes, p)
    assert all(np.array_equal(a, b) for a, b in zip(grids, back))
    assert arm.grid_bits(grids, p) == pytest.approx(8 * len(data), rel=0.05, abs=64)


def test_coding_order_is_wavefront_then_grid_then_row():
    shapes = [(5, 7), (3, 4), (2, 2)]
    order = arm_kernels.coding_order(np.array(shapes))
    start = np.cumsum([0] + [h * w for h, w in shapes])
    keys = []
    for g, (h, w) in enumerate(shapes):
        for y in range(h):
            for x in range(w):
                keys.append((3 * y + x, g, y, start[g] + y * w + x))
    assert list(order) == [k[3] for k in sorted(keys)]


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 3), (5, 1, 3), (2, 3, 3)])
def test_images_thinner_than_the_lattice_encode(shape):
    """A lattice phase with no pixels is skipped, not divided by."""
    import inrcodec
    img = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    data = inrcodec.encode(img, steps=6)
    assert inrcodec.decode_array(data).shape == shape


def test_softround_goes_from_round_to_identity():
    x = (torch.arange(-3, 4, dtype=torch.float64)[:, None]
         + torch.tensor([-0.45, -0.2, 0.0, 0.2, 0.45], dtype=torch.float64)).reshape(-1)
    assert torch.allclose(softround(x, 1e-3), torch.round(x))
    x = torch.linspace(-3.2, 3.2, 257, dtype=torch.float64)
    assert (softround(x, 10.0) - x).abs().max() < 1e-3
    # continuous at the half-integers, where floor jumps
    for t in (0.1, 0.3):
        e = 1e-9
        assert abs(float(softround(torch.tensor(0.5 - e, dtype=torch.float64), t)
                         - softround(torch.tensor(0.5 + e, dtype=torch.float64), t))) < 1e-6


@pytest.mark.parametrize("quantizer", ["noise", "softround"])
def test_the_fits_last_steps_see_rounded_latents(quantizer):
    fs = LatentFit(steps=10, ste_fraction=0.2, quantizer=quantizer)
    lat = [torch.tensor([[0.05, 0.45], [-1.4, 2.55]], requires_grad=True)]
    q = quantised(lat, fs, 9, None)
    assert torch.equal(q[0].detach(), torch.round(lat[0].detach()))
    q[0].sum().backward()
    g = lat[0].grad
    if quantizer == "noise":
        assert torch.equal(g, torch.ones_like(g))  # straight through
    else:  # softround's slope at the last temperature: steep near .5, flat near integers
        assert g[0, 1] > 1 and g[1, 1] > 1 and g[0, 0] < 0.1


def test_the_soft_phase_anneals_from_the_first_temperature_to_the_last():
    fs = LatentFit(steps=11, ste_fraction=0.0, quantizer="softround", temperature=(0.4, 0.1))
    lat = [torch.tensor([0.3])]
    zero = [torch.zeros(1)]
    assert torch.allclose(quantised(lat, fs, 0, zero)[0],
                          softround(softround(lat[0], 0.4), 0.4))
    assert torch.allclose(quantised(lat, fs, 10, zero)[0],
                          softround(softround(lat[0], 0.1), 0.1))
    u = [torch.tensor([0.25])]
    assert torch.equal(quantised(lat, replace(fs, quantizer="noise"), 3, u)[0],
                       lat[0] + 0.25)


def test_an_unknown_quantizer_is_refused():
    with pytest.raises(ValueError, match="quantizer"):
        LatentFit(quantizer="round")


@numba.njit
def _total(x):
    return lanes.total(x, x.shape[0])


@numba.njit
def _dots(x, y2, a, n):
    out = np.zeros(y2.shape[0], x.dtype)
    lanes.outer(out, x, y2, a, n)
    return out, lanes.dot(x, y2[0], a, n)


def _total_in_order(x):
    """lanes.total's order written in numpy: 2 vectors of 256 bits, the tail apart, then
    the vectors added and halved."""
    vl = 32 // x.itemsize
    step = 2 * vl
    acc = np.zeros((2, vl), x.dtype)
    blocks = len(x) // step
    for i in range(blocks):
        for u in range(2):
            acc[u] = acc[u] + x[i * step + u * vl:i * step + (u + 1) * vl]
    tail = x.dtype.type(0)
    for v in x[blocks * step:]:
        tail = tail + v
    v = acc[0] + acc[1]
    while len(v) > 1:
        v = v[:len(v) // 2] + v[len(v) // 2:]
    return v[0] + tail


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 5, 16, 256, 1000, 1003])
def test_lane_sums_keep_their_written_order(dtype, n):
    """The fit kernels' sums over positions (lanes.py) add in the order its docstring
    gives, whatever the compiler: here values of mixed magnitude, where another order gives
    other bits."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-6, 6, n)).astype(dtype)
    assert _total(x) == _total_in_order(x)
    y = rng.standard_normal((6, n + 3)).astype(dtype)
    out, d = _dots(x, y, 3, n)
    want = y[:, 3:].astype(np.float64) @ x.astype(np.float64)
    scale = np.abs(y[:, 3:]).astype(np.float64) @ np.abs(x.astype(np.float64)) + 1e-30
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(out - want) <= 8 * eps * scale)
    assert d == out[0]  # a row of outer is dot


@pytest.mark.slow
def test_a_fresh_build_computes_what_a_cached_one_does(tmp_path):
    """numba links a copy of each cached callee and prange body into its caller, which
    LLVM optimises again: the process that compiles the fit's kernels runs one copy, a
    process that loads them from the cache the other. Their sums are written out
    (lanes.py), so both compute the same bits (0.18's first encode after an install did
    not)."""
    import os
    import subprocess
    import sys
    child = """
import hashlib, torch, numpy as np
torch.set_num_threads(2)
from inrcodec.codec.latent import rate, synthesis, synthesis_kernels
from inrcodec.codec.latent.config import LatentArch
g = torch.Generator().manual_seed(5)
arch = LatentArch(hidden=16, act="sine", w0=5.0, coords=True)
theta = synthesis.init_synthesis(arch, g)
x = torch.randn(arch.inputs, 3 * synthesis_kernels.BLOCK + 77, generator=g)
y = torch.rand(3, x.shape[1], generator=g)
out = list(synthesis.mse_and_grad(arch, theta, x, y))
from tests.test_latent_kernels import _arm_params, _grids
grids, params = _grids(150, 170), _arm_params(residual=True)
c = rate.Canvas([tuple(g.shape) for g in grids], seed=2)
t, gg, gp = rate.cpu_pass(c, grids, params, True, True, 0.5)
h = hashlib.sha256()
for v in out + [t] + gg + gp:
    h.update(v.numpy().tobytes())
hits = synthesis_kernels.mse_parallel.stats.cache_hits
print(h.hexdigest(), sum(hits.values()))
"""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs = [subprocess.run([sys.executable, "-c", child], env=env, cwd=root, check=True,
                           capture_output=True, text=True).stdout.split() for _ in range(2)]
    assert runs[0][1] == "0" and runs[1][1] != "0"  # compiled, then loaded
    assert runs[0][0] == runs[1][0]
