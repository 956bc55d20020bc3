"""Quality and rate measures, computed on the 8-bit images a decoder writes."""
from __future__ import annotations

import math

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of one shape (inf when identical)."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def bpp(n_bytes: int, height: int, width: int) -> float:
    """Honest bits per pixel: the whole file, header included."""
    return 8.0 * n_bytes / (height * width)
