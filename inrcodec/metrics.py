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


# -- SSIM / MS-SSIM ------------------------------------------------------------------------
# Wang, Simoncelli, Bovik, "Multi-scale structural similarity for image quality assessment"
# (2003): weights of scales 1 (finest) to 5, fitted there to human ratings.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WIN, _SIGMA, _K1, _K2 = 11, 1.5, 0.01, 0.03


def _gauss_valid(x: np.ndarray) -> np.ndarray:
    """11-tap Gaussian (sigma 1.5) over axes 0 and 1, 'valid' region only (no padding)."""
    from scipy.ndimage import correlate1d

    t = np.arange(_WIN, dtype=np.float64) - _WIN // 2
    g = np.exp(-t ** 2 / (2 * _SIGMA ** 2))
    g = (g / g.sum()).astype(x.dtype)
    r = _WIN // 2
    y = correlate1d(x, g, axis=0, mode="reflect")
    y = correlate1d(y[r:y.shape[0] - r], g, axis=1, mode="reflect")
    return y[:, r:y.shape[1] - r]


def _ssim_terms(a: np.ndarray, b: np.ndarray, peak: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel means of (luminance x contrast-structure) and (contrast-structure)."""
    c1, c2 = (_K1 * peak) ** 2, (_K2 * peak) ** 2
    # float32 and centred values: one filtering pass over the five stacked statistics is
    # several times faster than float64 maps; centring keeps the squares small, so the
    # variances lose little precision (differences from float64 are ~1e-6)
    off = peak / 2
    x, y = (a - off).astype(np.float32), (b - off).astype(np.float32)
    nc = x.shape[2]
    f = _gauss_valid(np.concatenate([x, y, x * x, y * y, x * y], axis=2)).astype(np.float64)
    mu_x, mu_y = f[..., :nc], f[..., nc:2 * nc]
    # population (not sample) statistics, as in Wang et al.'s reference code
    var_x = f[..., 2 * nc:3 * nc] - mu_x ** 2
    var_y = f[..., 3 * nc:4 * nc] - mu_y ** 2
    cov = f[..., 4 * nc:] - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    mu_a, mu_b = mu_x + off, mu_y + off
    lum = (2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
    return (lum * cs).mean(axis=(0, 1)), cs.mean(axis=(0, 1))


def _as_hwc(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {x.shape}")
    return x.astype(np.float64)


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Single-scale SSIM (Gaussian 11x11 window, sigma 1.5), averaged over channels."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"shape mismatch {np.shape(a)} vs {np.shape(b)}")
    a, b = _as_hwc(a), _as_hwc(b)
    if min(a.shape[:2]) < _WIN:
        raise ValueError(f"SSIM needs images at least {_WIN} pixels a side")
    return float(_ssim_terms(a, b, peak)[0].mean())


def ms_ssim_min_side(scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """Smallest side that keeps the coarsest scale at least one 11x11 window."""
    return _WIN * 2 ** (scales - 1)


def ms_ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0,
            weights: tuple[float, ...] = MS_SSIM_WEIGHTS) -> float:
    """Multi-scale SSIM (Wang et al. 2003) of two 8-bit images, in [0, 1] (1: identical).

    Each scale halves the image by 2x2 averaging; scales 1..M-1 contribute their mean
    contrast-structure term, scale M the full SSIM, each to the power of its weight. Colour
    images: computed per channel, then averaged over channels. Images need a side of at least
    11 * 2^(M-1) pixels (176 for the standard 5 scales).
    """
    if np.shape(a) != np.shape(b):
        raise ValueError(f"shape mismatch {np.shape(a)} vs {np.shape(b)}")
    a, b = _as_hwc(a), _as_hwc(b)
    need = ms_ssim_min_side(len(weights))
    if min(a.shape[:2]) < need:
        raise ValueError(f"MS-SSIM with {len(weights)} scales needs images at least {need} "
                         f"pixels a side, got {a.shape[1]}x{a.shape[0]}")
    w = np.asarray(weights, dtype=np.float64)
    terms = []
    for i in range(len(w)):
        full, cs = _ssim_terms(a, b, peak)
        terms.append(full if i == len(w) - 1 else cs)
        if i < len(w) - 1:
            h, wd = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2  # drop an odd last row/column
            a = a[:h, :wd].reshape(h // 2, 2, wd // 2, 2, -1).mean(axis=(1, 3))
            b = b[:h, :wd].reshape(h // 2, 2, wd // 2, 2, -1).mean(axis=(1, 3))
    # negative terms (anti-correlated structure) would make fractional powers undefined
    t = np.maximum(np.stack(terms), 0.0)
    return float(np.prod(t ** w[:, None], axis=0).mean())
