"""The `inrcodec` command: a thin layer over inrcodec.api and inrcodec.batch, one module
per group of commands (codec.py: encode, decode, info; datasets.py: encode-dir,
decode-dir; train.py: train). `run` is the console script."""
import sys

from . import codec, datasets, train  # noqa: F401  (each registers its commands)
from .base import main

__all__ = ["main", "run"]


def _numba_without_scipy() -> None:
    """numba's first compile or cache load imports scipy.linalg only to learn whether it
    has a BLAS for np.dot (numba.np.arraymath's probe): 0.15 s of a decode's 0.9 s. No
    kernel of ours calls BLAS, so the command's own process answers the probe with no;
    scipy stays importable afterwards."""
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    sys.modules["scipy.linalg.cython_blas"] = None  # the probe's import fails at once
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        del sys.modules["scipy.linalg.cython_blas"]


def run() -> None:
    """The console script `inrcodec`."""
    _numba_without_scipy()
    main()
