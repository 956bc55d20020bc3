"""The fit step's own passes: SOAP (soap.py) against its algorithm written out, and the
compiled noisy soft rounding (softround.py) against torch's expression."""
import numpy as np
import pytest
import torch

from inrcodec.codec.latent.soap import Soap, _debias
from inrcodec.codec.latent.softround import noisy_softround, softround


# -- SOAP -----------------------------------------------------------------------------------------
def _leaf(a):
    return torch.tensor(a, dtype=torch.float32, requires_grad=True)


def _step(opt, params, grads, lr):
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g, dtype=torch.float32)
    opt.step(lr)


def test_soap_first_step_moves_nothing():
    ps = [_leaf(np.ones((3, 2))), _leaf(np.ones(4))]
    opt = Soap(ps)
    _step(opt, ps, [np.arange(6.0).reshape(3, 2), np.arange(4.0)], 0.1)
    assert all(torch.equal(p.detach(), torch.ones_like(p)) for p in ps)


def test_soap_moves_a_vector_by_adam_with_debiased_betas():
    rng = np.random.default_rng(0)
    p = _leaf(np.zeros(5))
    opt = Soap([p], betas=(0.9, 0.8))
    grads = rng.normal(size=(6, 5))
    m = v = np.zeros(5)
    x = np.zeros(5)
    for t, g in enumerate(grads, start=1):
        _step(opt, [p], [g], 0.01)
        if t == 1:
            continue
        b1, b2 = _debias(0.9, t - 1), _debias(0.8, t - 1)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - 0.01 * m / np.maximum(np.sqrt(v), 1e-8)
    np.testing.assert_allclose(p.detach().numpy(), x, rtol=1e-5, atol=1e-7)


def test_soap_moves_a_matrix_by_adam_in_the_eigenbases_of_the_first_gradient():
    """Step 2 of a matrix: Adam's first update (the sign) in the basis of both sides'
    Gram matrices, then rotated back. A full-rank first gradient makes the bases unique
    (up to signs, which the result does not depend on); the rotation's sides transposed
    would give another matrix."""
    g1 = np.array([[3.0, 1.0], [0.5, -2.0]])
    g2 = np.array([[0.3, -1.2], [2.0, 0.7]])
    p = _leaf(np.zeros((2, 2)))
    opt = Soap([p])
    _step(opt, [p], [g1], 0.1)
    _step(opt, [p], [g2], 0.1)
    ql = np.linalg.eigh(g1 @ g1.T)[1]
    qr = np.linalg.eigh(g1.T @ g1)[1]
    expected = -0.1 * ql @ np.sign(ql.T @ g2 @ qr) @ qr.T
    np.testing.assert_allclose(p.detach().numpy(), expected, atol=1e-6)
    wrong = -0.1 * qr @ np.sign(qr.T @ g2 @ ql) @ ql.T
    assert not np.allclose(expected, wrong, atol=1e-3)


def test_soap_refresh_keeps_the_momentum_and_orthonormal_bases():
    rng = np.random.default_rng(1)
    p = _leaf(rng.normal(size=(4, 3)))
    opt = Soap([p], every=3)
    for t in range(1, 4):
        _step(opt, [p], [rng.normal(size=(4, 3))], 0.01)
    st = opt.state[0]
    before = st.back(st.m).copy()
    q_before = [q.copy() for q in st.q]
    _step(opt, [p], [rng.normal(size=(4, 3))], 0.01)  # step 4 refreshes the bases
    assert opt.t == 4 and any(not np.allclose(a, b) for a, b in zip(q_before, st.q))
    for q in st.q:
        np.testing.assert_allclose(q.T @ q, np.eye(q.shape[0]), atol=1e-10)
    # the momentum, in the parameters' own space, is what step 4 made of it
    np.testing.assert_allclose(st.back(st.m), before * _debias(0.95, 3)
                               + (1 - _debias(0.95, 3)) * p.grad.numpy(), rtol=1e-5,
                               atol=1e-6)


def test_soap_fits_a_least_squares_problem():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(32, 6))
    w_true = rng.normal(size=(6, 3))
    y = torch.tensor(a @ w_true, dtype=torch.float32)
    a = torch.tensor(a, dtype=torch.float32)
    w = torch.zeros((6, 3), requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    opt = Soap([w, b])
    loss0 = float(((a @ w + b - y) ** 2).mean().detach())
    for _ in range(300):
        w.grad = b.grad = None
        ((a @ w + b - y) ** 2).mean().backward()
        opt.step(0.02)
    assert float(((a @ w + b - y) ** 2).mean().detach()) < 1e-3 * loss0


# -- noisy soft rounding --------------------------------------------------------------------------
@pytest.mark.parametrize("t,s", [(0.5, 1.0), (0.1, 1.0), (0.3, 0.6)])
def test_noisy_softround_is_torchs_expression_with_its_derivative(t, s):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(20_000, generator=g) * 4).requires_grad_(True)
    u = torch.rand(20_000, generator=g) - 0.5
    got = noisy_softround(x, u, t, s)
    (g_got,) = torch.autograd.grad(got.sum(), x)
    xd = x.detach().double().requires_grad_(True)
    ref = softround(softround(xd, t) + s * u.double(), t)
    (g_ref,) = torch.autograd.grad(ref.sum(), xd)
    assert (got.double() - ref).abs().max() < 1e-5
    # against its largest value (25 at T = 0.1): 1 - tanh^2 near 1 cancels in float32
    assert (g_got.double() - g_ref).abs().max() < 1e-5 * g_ref.abs().max()


def test_noisy_softround_takes_torchs_path_off_its_kernel():
    """A tensor of temperatures (training's crops) or float64 goes through torch's ops."""
    x = torch.linspace(-2, 2, 11, dtype=torch.float64)
    u = torch.zeros(11, dtype=torch.float64)
    t = torch.full((11,), 0.3, dtype=torch.float64)
    assert torch.equal(noisy_softround(x, u, t, 1.0), softround(softround(x, t) + u, t))
