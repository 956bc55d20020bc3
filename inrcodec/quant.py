"""Quantisers of the stored values. Each has a one-byte id carried in the bitstream.

- FP16 (0): every value as an IEEE half (format versions 1 and 2).
- DELTA (1, format version 2): the change from the shared initialisation, theta - theta0,
  as integers q with theta = theta0 + step_g * q. One step size per tensor g (each layer's
  weights, each layer's biases: `groups`), shared by all tiles of an image. Only the values
  that can reach the output (`live_mask`) are stored; the others keep theta0.
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import FormatError, InrcodecError

FP16 = 0
DELTA = 1
QUANTIZERS = {FP16: "fp16", DELTA: "delta"}
_FP16_MAX = float(np.finfo(np.float16).max)
# Largest step a file may carry: keeps theta0 + step * q finite in float32 for |q| < 2^15.
MAX_STEP = 65536.0
DELTA_BITS = (8, 16)  # integer widths: |q| <= 2^(bits-1) - 1


def quantize(theta: torch.Tensor, qid: int = FP16) -> bytes:
    """(n, P) float values -> bytes, canonical order (row-major: tile, then parameter)."""
    if qid != FP16:
        raise InrcodecError(f"unknown quantiser id {qid}")
    a = theta.detach().cpu().to(torch.float32).numpy()
    if not np.isfinite(a).all() or np.abs(a).max(initial=0.0) > _FP16_MAX:
        raise InrcodecError("fitted weights are not representable in fp16 (the fit diverged; "
                            "try a smaller --lr)")
    return a.astype("<f2").tobytes()


def dequantize(data: bytes, shape: tuple[int, int], qid: int = FP16) -> torch.Tensor:
    if qid != FP16:
        raise FormatError(f"unknown quantiser id {qid}")
    if len(data) != 2 * shape[0] * shape[1]:
        raise FormatError(f"payload holds {len(data)} bytes, expected {2 * shape[0] * shape[1]}")
    a = np.frombuffer(data, dtype="<f2").astype(np.float32).reshape(shape)  # a fresh array
    if not np.isfinite(a).all():
        raise FormatError("payload holds non-finite values")
    return torch.from_numpy(a)


def payload_bytes(n_values: int, qid: int) -> int:
    """Exact size of the fp16 payload before entropy coding."""
    if qid != FP16:
        raise FormatError(f"unknown quantiser id {qid}")
    return 2 * n_values


# -- delta quantiser -----------------------------------------------------------------------
def groups(net) -> list[slice]:
    """The tensors of the canonical parameter order: per layer, its kept weights, then its
    biases. Each has its own step size."""
    out = []
    for (o, _), _, w_off, n_w, b_off in net.layout:
        out.append(slice(w_off, w_off + n_w))
        out.append(slice(b_off, b_off + o))
    return out


def group_ids(net) -> np.ndarray:
    """(P,) index of each parameter's group."""
    gid = np.empty(net.n_params, dtype=np.int64)
    for g, s in enumerate(groups(net)):
        gid[s] = g
    return gid


def live_mask(net) -> np.ndarray:
    """(P,) bool: the parameters that can change the output.

    A unit whose output reaches no weight of the next layer (pruned to zero, with no shared
    value in its place) never influences the image, so its incoming weights and its bias get
    exactly zero gradient: the encoder leaves them at theta0 and the file does not store them.
    Computed from the masks alone (and the sparse-delta fill), so the decoder derives the
    same set.
    """
    live = np.zeros(net.n_params, dtype=bool)
    live_units = np.ones(net.layout[-1][0][0], dtype=bool)  # the output units
    for li in range(len(net.layout) - 1, -1, -1):
        (o, i), _, w_off, n_w, b_off = net.layout[li]
        kept = net.masks[li].cpu().numpy()
        present = kept if net.fill is None else kept | (net.fill[li].detach().cpu().numpy() != 0)
        feeds = present & live_units[:, None]  # (o, i): weights into live units
        live[w_off:w_off + n_w] = (kept & live_units[:, None]).reshape(-1)[kept.reshape(-1)]
        live[b_off:b_off + o] = live_units
        live_units = feeds.any(0)
    return live


def delta_steps(delta: np.ndarray, net, live: np.ndarray, scale: float) -> np.ndarray:
    """The documented step-size rule: per tensor, `scale` times the RMS of its live deltas
    over all tiles (float32, one per group). A tensor that did not move gets step 1 (its
    integers are all 0 whatever the step)."""
    if not (scale > 0 and np.isfinite(scale)):
        raise InrcodecError("the quantiser step scale must be a positive number")
    steps = np.ones(len(groups(net)), dtype=np.float32)
    for g, s in enumerate(groups(net)):
        d = delta[:, s][:, live[s]]
        rms = float(np.sqrt(np.mean(np.square(d, dtype=np.float64)))) if d.size else 0.0
        if rms > 0:
            steps[g] = np.float32(min(max(scale * rms, 1e-30), MAX_STEP))
    return steps


def step_vector(net, steps: np.ndarray) -> np.ndarray:
    """(P,) float32 step of every parameter."""
    return np.asarray(steps, dtype=np.float32)[group_ids(net)]


def quantize_delta(theta: np.ndarray, theta0: np.ndarray, step: np.ndarray, live: np.ndarray,
                   bits: int) -> np.ndarray:
    """(n, P) values -> (n, L) integers of the live parameters, |q| <= 2^(bits-1) - 1.

    Round to nearest; values beyond the range are clamped (the step rule keeps them in it)."""
    qmax = (1 << (bits - 1)) - 1
    d = (theta[:, live].astype(np.float64) - theta0[live]) / step[live]
    if not np.isfinite(d).all():
        raise InrcodecError("fitted weights are not finite (the fit diverged; try a smaller --lr)")
    return np.clip(np.rint(d), -qmax, qmax).astype(np.int32)


def dequantize_delta(q: np.ndarray, theta0: np.ndarray, step: np.ndarray,
                     live: np.ndarray) -> torch.Tensor:
    """(n, L) integers -> (n, P) float32 values; parameters not stored keep theta0."""
    out = np.repeat(theta0[None, :].astype(np.float32), q.shape[0], axis=0)
    out[:, live] = (theta0[live].astype(np.float32)
                    + step[live].astype(np.float32) * q.astype(np.float32))
    return torch.from_numpy(out)


def bits_needed(q: np.ndarray) -> int:
    """The smallest width in DELTA_BITS holding every integer of q."""
    m = int(np.abs(q).max(initial=0))
    for b in DELTA_BITS:
        if m <= (1 << (b - 1)) - 1:
            return b
    raise InrcodecError("quantised values exceed 16 bits")
