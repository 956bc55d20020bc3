"""From fitted parameters to a payload and back: quantiser, quantiser-aware steps, coders.

The encoder (api.encode_report) fits in two stages when the delta quantiser is used:
`steps - qat_steps` plain Adam steps, then the step sizes are fixed from those deltas
(quant.delta_steps) and the last `qat_steps` steps see the quantised network
(straight-through: the forward pass uses the rounded values, the gradient updates the
float ones), so the decoded image is what the fit optimised.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import entropy, quant
from .errors import FormatError, InrcodecError

QUANTIZER_NAMES = {"fp16": quant.FP16, "delta": quant.DELTA}
QAT_FRACTION = 0.2
QAT_MIN_SCALE = 0.4
CODER_NAMES = {"zstd": entropy.ZSTD, "range": entropy.RANGE, "auto": None}


@dataclass(frozen=True)
class QuantConfig:
    """How the fitted values are stored.

    quantizer: "delta" (integers q, theta = theta0 + step * q) or "fp16" (the v1 baseline).
    step_scale: delta step of each tensor = step_scale x RMS of its deltas (quant.delta_steps);
      smaller is finer: larger file, closer to the float fit.
    coder: "auto" (write both, keep the smaller), "zstd" or "range".
    qat_fraction: share of the fitting steps that are quantiser-aware (the last ones); None:
      0.2 at step scales of QAT_MIN_SCALE and above, else 0 (measured on development photos:
      the quantiser-aware steps gain up to 3 dB at coarse steps and nothing below 0.4,
      where the plain steps they replace are worth more: README, "Compression").
    qat_lr_factor: the quantiser-aware steps run Adam at lr x this factor ...
    qat_adam: ... "fresh" (new moments) or "continued" (the plain steps' moments).
    """

    quantizer: str = "delta"
    step_scale: float = 0.5
    coder: str = "auto"
    qat_fraction: float | None = None
    qat_lr_factor: float = 0.1
    qat_adam: str = "fresh"

    def __post_init__(self):
        if self.quantizer not in QUANTIZER_NAMES:
            raise InrcodecError(f"unknown quantiser {self.quantizer!r}; expected one of "
                                f"{', '.join(QUANTIZER_NAMES)}")
        if self.coder not in CODER_NAMES:
            raise InrcodecError(f"unknown coder {self.coder!r}; expected one of "
                                f"{', '.join(CODER_NAMES)}")
        if self.quantizer == "fp16" and self.coder == "range":
            raise InrcodecError("the range coder codes delta integers only; fp16 uses zstd")
        if not (self.step_scale > 0 and math.isfinite(self.step_scale)):
            raise InrcodecError("the quantiser step scale must be a positive number")
        if self.qat_fraction is not None and not 0.0 <= self.qat_fraction < 1.0:
            raise InrcodecError("qat_fraction must be in [0, 1)")
        if not (self.qat_lr_factor > 0 and math.isfinite(self.qat_lr_factor)):
            raise InrcodecError("qat_lr_factor must be a positive number")
        if self.qat_adam not in ("fresh", "continued"):
            raise InrcodecError("qat_adam must be 'fresh' or 'continued'")

    @property
    def qat_share(self) -> float:
        if self.quantizer != "delta":
            return 0.0
        if self.qat_fraction is not None:
            return self.qat_fraction
        return QAT_FRACTION if self.step_scale >= QAT_MIN_SCALE else 0.0

    def qat_steps(self, steps: int) -> int:
        return int(round(steps * self.qat_share))


@dataclass
class Payload:
    quantizer: int
    qbits: int
    coder: int
    qparams: bytes
    data: bytes


class DeltaQuantiser:
    """The delta quantiser of one level with fixed step sizes; also the straight-through
    transform used by the quantiser-aware steps."""

    def __init__(self, net, theta0: torch.Tensor, steps: np.ndarray):
        self.net = net
        self.theta0 = theta0.detach().cpu().to(torch.float32).numpy()
        self.live = quant.live_mask(net)
        self.steps = np.asarray(steps, dtype=np.float32)
        self.step = quant.step_vector(net, self.steps)
        self.gid = quant.group_ids(net)[self.live]

    @classmethod
    def from_fit(cls, net, theta0: torch.Tensor, theta: torch.Tensor, step_scale: float):
        t0 = theta0.detach().cpu().to(torch.float32).numpy()
        delta = theta.detach().cpu().to(torch.float32).numpy() - t0[None, :]
        live = quant.live_mask(net)
        return cls(net, theta0, quant.delta_steps(delta, net, live, step_scale))

    def quantize(self, theta: torch.Tensor) -> np.ndarray:
        return quant.quantize_delta(theta.detach().cpu().to(torch.float32).numpy(), self.theta0,
                                    self.step, self.live, 16)

    def dequantize(self, q: np.ndarray) -> torch.Tensor:
        return quant.dequantize_delta(q, self.theta0, self.step, self.live)

    def straight_through(self, device) -> callable:
        """theta -> theta0 + step * round((theta - theta0) / step) on live entries, with the
        identity's gradient (non-live entries have zero gradient and stay at theta0)."""
        t0 = torch.from_numpy(self.theta0).to(device)
        step = torch.from_numpy(np.where(self.live, self.step, 1.0).astype(np.float32)).to(device)
        qmax = float((1 << 15) - 1)

        def transform(theta: torch.Tensor) -> torch.Tensor:
            q = torch.clamp(torch.round((theta - t0) / step), -qmax, qmax)
            return theta + (t0 + step * q - theta).detach()
        return transform

    def payload(self, theta: torch.Tensor, coder: str = "auto") -> Payload:
        q = self.quantize(theta)
        bits = quant.bits_needed(q)
        qparams = self.steps.astype("<f4").tobytes()
        choices = [entropy.ZSTD, entropy.RANGE] if coder == "auto" else [CODER_NAMES[coder]]
        best = None
        for c in choices:
            data = entropy.encode(q, self.gid, c, bits)
            if best is None or len(data) < len(best.data):
                best = Payload(quant.DELTA, bits, c, qparams, data)
        return best


def fp16_payload(theta: torch.Tensor) -> Payload:
    from .bitstream import zstd
    return Payload(quant.FP16, 0, entropy.ZSTD, b"", zstd(quant.quantize(theta, quant.FP16)))


def decode_delta(h, net, theta0: torch.Tensor, qparams: bytes, payload: bytes) -> torch.Tensor:
    """The parameters of every tile from a verified version-2 delta file."""
    n_groups = len(quant.groups(net))
    if len(qparams) != 4 * n_groups:
        raise FormatError(f"file carries {len(qparams) // 4} step sizes, level {h.level} has "
                          f"{n_groups} tensors")
    steps = np.frombuffer(qparams, dtype="<f4").astype(np.float32)
    if not (np.isfinite(steps).all() and (steps > 0).all() and (steps <= quant.MAX_STEP).all()):
        raise FormatError("step sizes must be finite, positive and at most "
                          f"{quant.MAX_STEP:g}")
    dq = DeltaQuantiser(net, theta0, steps)
    q = entropy.decode(payload, h.n_tiles, dq.gid, h.coder, h.qbits)
    return dq.dequantize(q)
