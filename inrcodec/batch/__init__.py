"""Datasets: encode a folder (or any iterable) of images (encode.py), decode a folder of
.inr files (decode.py), and a torch Dataset that yields decoded images (dataset.py); the
manifest that makes a run resumable (manifest.py)."""
from .dataset import InrDataset
from .decode import decode_dataset
from .encode import encode_dataset
from .manifest import check_manifest, merge_manifest
from .report import DatasetReport, Progress

__all__ = ["encode_dataset", "decode_dataset", "InrDataset", "DatasetReport", "Progress",
           "merge_manifest", "check_manifest"]
