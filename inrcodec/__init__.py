"""inrcodec: an image codec whose compressed form is a small neural network.

The default (latent) mode writes an image as a pyramid of integer latent grids, coded by a
fixed-point autoregressive entropy model, and the few changes it makes to a small SIREN
synthesis that turns each pixel's upsampled latents into its colour. The synthesis starts
from a shared initialisation shipped with the package, meta-learned on photos and pruned
by global weight magnitude into a ladder of sparse levels (Meta-SparseINR, Lee, Tack,
Lee, Shin, NeurIPS 2021: Algorithm 1); its mask is implicit in the shared model, so a file
pays only for the surviving entries it changes. Encoding fits the latents and the
synthesis to the image for distortion + lambda x rate (900 optimiser steps by default);
decoding renders the network at the stored size or any other.

The weight mode (`mode="weights"`) is the paper's method made a codec: tiles of the shared
sparse SIREN whose surviving weights are fitted and stored.

    import inrcodec
    data = inrcodec.encode("photo.jpg", quality=70)   # .inr bytes
    image = inrcodec.decode(data)                      # a PIL image; decode(data, scale=2)
    report = inrcodec.encode_report("photo.jpg", bpp=0.5)
    inrcodec.encode_dataset("photos/", "encoded/")     # a folder, resumable
    dataset = inrcodec.InrDataset("encoded/", size=256)  # a torch Dataset at any size

Encode options: help(inrcodec.EncodeOptions). Importing inrcodec also lets Pillow read and
write .inr files.
"""
__version__ = "0.10.0"

import importlib

from .errors import (ChecksumError, DatasetError, FormatError, ImageError, InrcodecError,
                     ModelError, ModelMismatchError, OutputExistsError)
from .codec import registry as _registry  # noqa: F401  (every format's header, registered)
from .pillow_plugin import register as _register_pillow

_register_pillow()

# The API is imported on first use (PEP 562): `import inrcodec` stays cheap, and decoding a
# latent-mode file never imports torch (InrDataset, the weight mode and the encoder's fit do).
_LAZY = {"encode": "api", "encode_report": "api", "encode_file": "api", "decode": "api",
         "decode_array": "api", "decode_file": "api", "info": "api", "EncodeOptions": "api",
         "EncodeReport": "api", "InrDataset": "batch", "decode_dataset": "batch",
         "encode_dataset": "batch"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__", "encode", "encode_report", "encode_file", "decode", "decode_array",
    "decode_file", "info", "encode_dataset", "decode_dataset", "InrDataset", "EncodeOptions",
    "EncodeReport", "InrcodecError", "FormatError", "ChecksumError", "DatasetError",
    "ModelError", "ModelMismatchError", "ImageError", "OutputExistsError",
]
