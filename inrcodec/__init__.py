"""inrcodec: an image codec whose compressed form is a small sparse neural network.

Meta-SparseINR (Lee, Tack, Lee, Shin, NeurIPS 2021): a meta-learned, magnitude-pruned SIREN
initialisation is shared; each image is fitted from it and only the surviving weights are stored.
"""
__version__ = "0.10.0"

from .api import (EncodeReport, decode, decode_array, decode_file, default_model_path, encode,
                  encode_file, encode_report, info, load_model)
from .batch import InrDataset, decode_dataset, encode_dataset
from .config import Arch, FitConfig, MetaConfig
from .errors import (ChecksumError, DatasetError, FormatError, ImageError, InrcodecError,
                     ModelError, ModelMismatchError, OutputExistsError)
from .model.shared_model import SharedModel, scratch_model
from .pillow_plugin import register as _register_pillow

_register_pillow()

__all__ = [
    "__version__", "encode", "encode_report", "encode_file", "decode", "decode_array",
    "decode_file", "encode_dataset", "decode_dataset", "InrDataset", "info", "load_model", "default_model_path", "EncodeReport", "Arch",
    "FitConfig", "MetaConfig", "SharedModel", "scratch_model", "InrcodecError", "FormatError",
    "ChecksumError", "DatasetError", "ModelError", "ModelMismatchError", "ImageError", "OutputExistsError",
]
