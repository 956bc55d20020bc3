"""Quantisers of the surviving values. Each has a one-byte id carried in the bitstream."""
from __future__ import annotations

import numpy as np
import torch

from .errors import FormatError, InrcodecError

FP16 = 0
QUANTIZERS = {FP16: "fp16"}
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
    """Exact size of the quantised payload before entropy coding."""
    if qid != FP16:
        raise FormatError(f"unknown quantiser id {qid}")
    return 2 * n_values
