"""The fit's proxy of rounding: Agustsson & Theis' soft rounding, and C3's noisy soft
rounding softround(softround(x, T) + s u, T) with u ~ U[-1/2, 1/2).

On the CPU the noisy form runs as one compiled pass over each grid that writes the value
and its derivative, which the backward multiplies in: torch's two dozen elementwise ops
and their graph were 5 ms of a 768x512 step (14%); this pass is a fraction of that. Its
tanh is a rational approximation (absolute error < 4e-7), so the fit's values differ
from torch's in their last bits.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch


def softround(x: torch.Tensor, t: "float | torch.Tensor") -> torch.Tensor:
    """Agustsson & Theis' soft rounding: round(x) as t -> 0, x as t grows; continuous in x.
    t: a number, or a tensor that broadcasts against x (one temperature per crop)."""
    f = torch.floor(x)
    k = 0.5 / (math.tanh(0.5 / t) if isinstance(t, (int, float)) else torch.tanh(0.5 / t))
    return f + 0.5 + k * torch.tanh((x - f - 0.5) / t)


# tanh(x) = x P(x^2) / Q(x^2) on [-7.9, 7.9], +-1 beyond: Eigen's float approximation
_P = (np.float32(4.89352455891786e-03), np.float32(6.37261928875436e-04),
      np.float32(1.48572235717979e-05), np.float32(5.12229709037114e-08),
      np.float32(-8.60467152213735e-11), np.float32(2.00018790482477e-13),
      np.float32(-2.76076847742355e-16))
_Q = (np.float32(4.89352518554385e-03), np.float32(2.26843463243900e-03),
      np.float32(1.18534705686654e-04), np.float32(1.19825839466702e-06))
_CLAMP = np.float32(7.90531110763549805)


# error_model "numpy": no zero test before each division, which kept the loop from
# vectorising (x11)
@numba.njit(fastmath={"contract", "nnan", "ninf", "nsz", "arcp"}, error_model="numpy",
            cache=True, nogil=True, inline="always")
def _tanh(x):
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = _P[6]
    p = p * x2 + _P[5]
    p = p * x2 + _P[4]
    p = p * x2 + _P[3]
    p = p * x2 + _P[2]
    p = p * x2 + _P[1]
    p = p * x2 + _P[0]
    q = _Q[3]
    q = q * x2 + _Q[2]
    q = q * x2 + _Q[1]
    q = q * x2 + _Q[0]
    return x * p / q


@numba.njit(fastmath={"contract", "nnan", "ninf", "nsz", "arcp"}, error_model="numpy",
            cache=True, nogil=True)
def _noisy(x, u, inv_t, k, s, out, d):
    """out = softround(softround(x, T) + s u, T) and d = its derivative in x, elementwise
    (inv_t = 1 / T, k = 1 / (2 tanh(1 / 2T)))."""
    half = np.float32(0.5)
    one = np.float32(1.0)
    kt = k * inv_t
    for i in range(x.shape[0]):
        v = x[i]
        f = np.floor(v)
        a = _tanh((v - f - half) * inv_t)
        y = f + half + k * a + s * u[i]
        g = np.floor(y)
        b = _tanh((y - g - half) * inv_t)
        out[i] = g + half + k * b
        d[i] = (kt * (one - a * a)) * (kt * (one - b * b))


class _NoisySoftround(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, u, t, s):
        out, d = torch.empty_like(x), torch.empty_like(x)
        _noisy(x.detach().reshape(-1).numpy(), u.reshape(-1).numpy(), np.float32(1.0 / t),
               np.float32(0.5 / math.tanh(0.5 / t)), np.float32(s), out.view(-1).numpy(),
               d.view(-1).numpy())
        ctx.save_for_backward(d)
        return out

    @staticmethod
    def backward(ctx, g):
        (d,) = ctx.saved_tensors
        return g * d, None, None, None


def noisy_softround(x: torch.Tensor, u: torch.Tensor, t: "float | torch.Tensor",
                    s: float) -> torch.Tensor:
    """softround(softround(x, t) + s u, t), u ~ U[-1/2, 1/2) of x's shape: compiled on the
    CPU (one temperature, float32), torch's ops elsewhere."""
    if x.device.type == "cpu" and x.dtype == torch.float32 and isinstance(t, (int, float)) \
            and x.is_contiguous() and u.is_contiguous():
        return _NoisySoftround.apply(x, u, float(t), float(s))
    return softround(softround(x, t) + s * u, t)
