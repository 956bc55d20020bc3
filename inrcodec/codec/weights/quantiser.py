"""Quantisers of the stored values. Each has a one-byte id carried in the bitstream, and
each is one object the encoder and the decoder both drive.

- FP16 (0): every value as an IEEE half (format versions 1 and 2).
- DELTA (1, format version 2): the change from the shared initialisation, theta - theta0,
  as integers q with theta = theta0 + s_g * q. One step size s_g per tensor g (each layer's
  weights, each layer's biases: `groups`), shared by all tiles of an image. Only the values
  that can reach the output (`live_mask`) are stored; the others keep theta0.
"""
from __future__ import annotations

import numpy as np
import torch

from dataclasses import dataclass

from ...errors import FormatError, InrcodecError
from ...model.sparse import live_mask
from .. import entropy

from .config import DELTA, DELTA_BITS, FP16, MAX_STEP_SIZE  # noqa: F401  (defined there: the format reads them without torch)

_FP16_MAX = float(np.finfo(np.float16).max)


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


def delta_step_sizes(delta: np.ndarray, net, live: np.ndarray, scale: float) -> np.ndarray:
    """The documented step-size rule: per tensor, `scale` times the RMS of its live deltas
    over all tiles (float32, one per group). A tensor that did not move gets step size 1
    (its integers are all 0 whatever the step size)."""
    if not (scale > 0 and np.isfinite(scale)):
        raise InrcodecError("the quantiser step scale must be a positive number")
    sizes = np.ones(len(groups(net)), dtype=np.float32)
    for g, s in enumerate(groups(net)):
        d = delta[:, s][:, live[s]]
        rms = float(np.sqrt(np.mean(np.square(d, dtype=np.float64)))) if d.size else 0.0
        if rms > 0:
            sizes[g] = np.float32(min(max(scale * rms, 1e-30), MAX_STEP_SIZE))
    return sizes


def step_vector(net, step_sizes: np.ndarray) -> np.ndarray:
    """(P,) float32 step size of every parameter."""
    return np.asarray(step_sizes, dtype=np.float32)[group_ids(net)]


def quantize_delta(theta: np.ndarray, theta0: np.ndarray, step: np.ndarray, live: np.ndarray,
                   bits: int) -> np.ndarray:
    """(n, P) values -> (n, L) integers of the live parameters, |q| <= 2^(bits-1) - 1.

    Round to nearest; values beyond the range are clamped (the step-size rule keeps them in it)."""
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


# -- the quantiser objects ------------------------------------------------------------------
@dataclass
class Payload:
    """What a quantiser writes: its id, integer width, coder, parameters and coded values."""

    quantizer: int
    qbits: int
    coder: int
    qparams: bytes
    data: bytes


class DeltaQuantiser:
    """The delta quantiser of one level with fixed step sizes (one per tensor).

    The encoder builds it from a fit (`from_fit`) and calls `payload`; the decoder builds it
    from the file's quantiser parameters (`from_qparams`) and calls `values`. It also gives
    the straight-through transform that the quantiser-aware optimiser steps use.
    """

    def __init__(self, net, theta0: torch.Tensor, step_sizes: np.ndarray):
        self.net = net
        self.theta0 = theta0.detach().cpu().to(torch.float32).numpy()
        self.live = live_mask(net)
        self.step_sizes = np.asarray(step_sizes, dtype=np.float32)
        self.step = step_vector(net, self.step_sizes)  # (P,) per parameter
        self.gid = group_ids(net)[self.live]

    @classmethod
    def from_fit(cls, net, theta0: torch.Tensor, theta: torch.Tensor, step_scale: float):
        t0 = theta0.detach().cpu().to(torch.float32).numpy()
        delta = theta.detach().cpu().to(torch.float32).numpy() - t0[None, :]
        return cls(net, theta0, delta_step_sizes(delta, net, live_mask(net), step_scale))

    # The quantiser parameters section: one little-endian float32 step size per tensor.
    def qparams(self) -> bytes:
        return self.step_sizes.astype("<f4").tobytes()

    @classmethod
    def from_qparams(cls, net, theta0: torch.Tensor, qparams: bytes, level: int):
        n_groups = len(groups(net))
        if len(qparams) != 4 * n_groups:
            raise FormatError(f"file carries {len(qparams) // 4} step sizes, level {level} has "
                              f"{n_groups} tensors")
        sizes = np.frombuffer(qparams, dtype="<f4").astype(np.float32)
        if not (np.isfinite(sizes).all() and (sizes > 0).all()
                and (sizes <= MAX_STEP_SIZE).all()):
            raise FormatError(f"step sizes must be finite, positive and at most "
                              f"{MAX_STEP_SIZE:g}")
        return cls(net, theta0, sizes)

    def quantize(self, theta: torch.Tensor) -> np.ndarray:
        return quantize_delta(theta.detach().cpu().to(torch.float32).numpy(), self.theta0,
                              self.step, self.live, 16)

    def dequantize(self, q: np.ndarray) -> torch.Tensor:
        return dequantize_delta(q, self.theta0, self.step, self.live)

    def straight_through(self, device) -> callable:
        """theta -> theta0 + s * round((theta - theta0) / s) on live entries, with the
        identity's gradient (non-live entries have zero gradient and stay at theta0)."""
        return straight_through([self], None, device)

    def payload(self, theta: torch.Tensor, coder: str = "auto") -> Payload:
        """Quantise and entropy-code every tile's values with `coder` ("auto": the smaller)."""
        q = self.quantize(theta)
        bits = bits_needed(q)
        choices = [entropy.ZSTD, entropy.RANGE] if coder == "auto" \
            else [entropy.CODERS_BY_NAME[coder]]
        best = None
        for c in choices:
            data = entropy.encode(q, self.gid, c, bits)
            if best is None or len(data) < len(best.data):
                best = Payload(DELTA, bits, c, self.qparams(), data)
        return best

    def values(self, payload: bytes, n_tiles: int, coder: int, qbits: int) -> torch.Tensor:
        """Inverse of `payload`: the (n_tiles, P) parameters of a verified file."""
        return self.dequantize(entropy.decode(payload, n_tiles, self.gid, coder, qbits))


def straight_through(dqs: list[DeltaQuantiser], tiles: list[int] | None, device):
    """The straight-through transform of one quantiser (tiles None: the same for every
    row), or of several images' quantisers over their stacked tiles (tiles[k] rows each):
    fit() passes the rows it is working on."""
    def stack(a):
        t = [torch.from_numpy(np.asarray(a(dq), dtype=np.float32)).reshape(1, -1) for dq in dqs]
        return (t[0] if tiles is None else
                torch.cat([x.expand(n, -1) for x, n in zip(t, tiles)])).to(device)
    t0 = stack(lambda dq: dq.theta0)
    step = stack(lambda dq: np.where(dq.live, dq.step, 1.0))
    qmax = float((1 << 15) - 1)

    def transform(theta: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
        t, s = (t0, step) if tiles is None else (t0[rows], step[rows])
        q = torch.clamp(torch.round((theta - t) / s), -qmax, qmax)
        return theta + (t + s * q - theta).detach()
    return transform


class Fp16Quantiser:
    """Every value as an IEEE half, zstd-compressed (format version 1's only quantiser)."""

    @staticmethod
    def payload(theta: torch.Tensor) -> Payload:
        return Payload(FP16, 0, entropy.ZSTD, b"", entropy.zstd(quantize(theta, FP16)))

    @staticmethod
    def values(payload: bytes, n_tiles: int, n_params: int) -> torch.Tensor:
        raw = entropy.unzstd(payload, payload_bytes(n_tiles * n_params, FP16), "payload")
        return dequantize(raw, (n_tiles, n_params), FP16)
