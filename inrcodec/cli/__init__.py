"""The `inrcodec` command: a thin layer over inrcodec.api and inrcodec.batch, one module
per group of commands (codec.py: encode, decode, info; datasets.py: encode-dir,
decode-dir; train.py: train)."""
from . import codec, datasets, train  # noqa: F401  (each registers its commands)
from .base import main

__all__ = ["main"]
