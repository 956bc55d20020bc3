"""SOAP (Vyas et al. 2024: Adam in the eigenbasis of Shampoo's preconditioners) for the
fit's few small tensors, in numpy on the tensors' own memory.

It follows heavyball 3.2.1's SOAP step (the optimiser the fit was measured with): the
first step only sets up the preconditioners; Adam's betas are debiased (a moving average
that starts at the first value); a matrix is preconditioned on both sides, a vector takes
plain Adam; the eigenbases are refreshed every `every` steps by one power iteration and a
QR, the momentum rotated into the new basis. Its state is float64 where heavyball's is
float32 (which moves the directions a rank-deficient first Gram matrix leaves empty by
rounding noise); the 32 development photos' curve is the same (docs/latent-mode.md).
heavyball's step cost 4-5 ms of Python per fit step on a CPU whatever the tensors' size
(13% of a 768x512 step); this one about half a millisecond.
"""
from __future__ import annotations

import numpy as np
import torch


def _debias(beta: float, step: int) -> float:
    """The weight a moving average keeps at `step` (1-based) so that it is unbiased from
    the start: 0 at step 1."""
    return 1.0 - (1.0 - beta) / (1.0 - beta ** step)


def _basis(gg: np.ndarray) -> np.ndarray:
    """The eigenvectors of a symmetric matrix, by eigenvalue from the largest."""
    _, vec = np.linalg.eigh(gg)
    return np.ascontiguousarray(vec[:, ::-1])


def _refresh(gg: np.ndarray, q: np.ndarray, floor: float) -> np.ndarray:
    """One power iteration from the basis q toward gg's eigenbasis, orthogonalised by QR
    in the order of the estimated eigenvalues, each column kept in its place. The null
    space is lifted so that QR's completion does not follow rounding noise."""
    work = gg @ q
    eig = np.einsum("ij,ij->j", q, work)
    magnitude = max(np.abs(eig).max(), np.finfo(gg.dtype).tiny)
    lift = max(floor, min(64 * gg.shape[0] * np.finfo(gg.dtype).eps, 0.125))
    work = work + (lift * magnitude) * q
    order = np.argsort(-eig, kind="stable")
    orth, tri = np.linalg.qr(work[:, order])
    signs = np.sign(np.diag(tri))
    signs[signs == 0] = 1
    out = np.empty_like(work)
    out[:, order] = orth * signs
    return out


class _Matrix:
    """A weight matrix's state: Adam's averages in the rotated basis, both sides' Gram
    averages and their bases."""

    def __init__(self, g: np.ndarray):
        self.gg = [g @ g.T, g.T @ g]
        self.q = [_basis(m) for m in self.gg]
        self.m = np.zeros_like(g)
        self.v = np.zeros_like(g)

    def project(self, x: np.ndarray) -> np.ndarray:
        return self.q[0].T @ x @ self.q[1]

    def back(self, x: np.ndarray) -> np.ndarray:
        return self.q[0] @ x @ self.q[1].T


class Soap:
    """SOAP over torch leaf tensors: `step(lr)` reads their .grad and moves them in place
    (on the CPU through numpy, which shares their memory). The state is float64."""

    def __init__(self, params: list[torch.Tensor], betas=(0.95, 0.95), shampoo_beta=0.95,
                 eps: float = 1e-8, every: int = 10):
        self.params = params
        self.betas, self.shampoo_beta, self.eps, self.every = betas, shampoo_beta, eps, every
        self.t = 0
        self.state: list = [None] * len(params)

    def step(self, lr: float) -> None:
        self.t += 1
        b1 = _debias(self.betas[0], self.t - 1) if self.t > 1 else 0.0
        b2 = _debias(self.betas[1], self.t - 1) if self.t > 1 else 0.0
        bs = _debias(self.shampoo_beta, self.t)
        refresh = self.t > 1 and (self.t - 1) % self.every == 0
        for k, p in enumerate(self.params):
            g = p.grad.detach().cpu().numpy().astype(np.float64)
            st = self.state[k]
            if st is None:  # the first step sets the state up and moves nothing
                self.state[k] = _Matrix(g) if g.ndim == 2 else [np.zeros_like(g),
                                                                 np.zeros_like(g)]
                continue
            if g.ndim == 2:
                upd = st.back(self._adam(st.m, st.v, st.project(g), b1, b2))
                for i, gram in enumerate((g @ g.T, g.T @ g)):
                    st.gg[i] += (1.0 - bs) * (gram - st.gg[i])
                if refresh:
                    m = st.back(st.m)
                    st.q = [_refresh(gg, q, self.eps) for gg, q in zip(st.gg, st.q)]
                    st.m[...] = st.project(m)
            else:
                upd = self._adam(st[0], st[1], g, b1, b2)
            if p.device.type == "cpu":
                x = p.detach().numpy()
                x -= (lr * upd).astype(x.dtype)
            else:
                with torch.no_grad():
                    p.sub_(torch.from_numpy(lr * upd).to(p))

    def _adam(self, m, v, g, b1, b2) -> np.ndarray:
        m += (1.0 - b1) * (g - m)
        v += (1.0 - b2) * (g * g - v)
        return m / np.maximum(np.sqrt(v), self.eps)
