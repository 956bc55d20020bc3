"""Synthetic training signals for unit tests (real photos are for training and evaluation)."""
import numpy as np


def sine_signals(n: int, seed: int, size: int = 8) -> np.ndarray:
    """(n, size, size, 3) uint8 sinusoid images with random frequencies and phases."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        f, p = rng.uniform(1, 4, 3), rng.uniform(0, 6, 3)
        out.append(np.stack([np.sin(f[c] * (x + y) * 3 + p[c]) for c in range(3)], -1))
    return np.clip(np.round((np.stack(out) + 1) * 127.5), 0, 255).astype(np.uint8)
