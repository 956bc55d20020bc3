"""Quality and rate measures, computed on the 8-bit images a decoder writes."""
from __future__ import annotations

import math

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of one shape (inf when identical)."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    # In blocks of rows: float64 copies of a whole large image would be 16 bytes a value.
    # Sums of squared 8-bit differences stay exact in float64, so the result is the same.
    step = max(1, (1 << 20) // max(1, a[0].size))
    sse = 0.0
    for i in range(0, a.shape[0], step):
        d = a[i:i + step].astype(np.float64) - b[i:i + step].astype(np.float64)
        sse += float(np.square(d, out=d).sum())
    mse = sse / a.size
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def bpp(n_bytes: int, height: int, width: int) -> float:
    """Honest bits per pixel: the whole file, header included."""
    return 8.0 * n_bytes / (height * width)
