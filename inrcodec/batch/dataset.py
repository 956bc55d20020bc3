"""A torch Dataset of .inr files: decoded images for training pipelines."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..api import read_inr
from ..codec import decoder
from ..codec.latent import render
from ..errors import InrcodecError


class InrDataset(torch.utils.data.Dataset):
    """Decoded images from .inr files, for training pipelines.

    `root`: a folder (searched recursively) or a list of .inr paths. Items are float
    tensors (C, H, W) in [0, 1] (or uint8 with `dtype=torch.uint8`), C = 1, 2, 3 or 4 as
    stored, rendered at the stored size, at `size` = (W, H), at `size` = n (the shorter side
    n, aspect kept) or at `scale`: the network is continuous, so any resolution works, and
    `decode(i, size)` renders one item at a size of its own. `transform` is applied to each tensor.
    The shared model is loaded once per process (DataLoader workers included).

    With a `torch.utils.data.DataLoader` (`num_workers` > 0, `pin_memory` for a GPU), each
    worker decodes on one thread, as torch's own ops do there; in the main process a
    decode uses every CPU the process may.
    """

    def __init__(self, root, *, model=None,
                 size: tuple[int, int] | int | None = None,
                 scale: float | None = None, dtype: torch.dtype = torch.float32,
                 transform: Callable | None = None, device: str = "cpu"):
        if isinstance(root, (str, Path)):
            root = Path(root)
            if not root.is_dir():
                raise InrcodecError(f"{root} is not a folder")
            self.paths = sorted(p for p in root.rglob("*.inr") if p.is_file())
        else:
            self.paths = [Path(p) for p in root]
        self.model = str(model) if isinstance(model, Path) else model
        self.size, self.scale, self.dtype = size, scale, dtype
        self.transform, self.device = transform, device

    def __len__(self) -> int:
        return len(self.paths)

    def decode(self, index: int, size: tuple[int, int] | int | None = None,
               scale: float | None = None) -> torch.Tensor:
        """Item `index` at a resolution of its own."""
        if torch.utils.data.get_worker_info() is not None:
            render.THREADS = 1  # a DataLoader's worker: one thread each, as torch's are
        arr = decoder.decode_array(read_inr(self.paths[index]), size, scale=scale,
                                   model=self.model, device=self.device)
        t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        if self.dtype != torch.uint8:
            t = t.to(self.dtype) / 255.0
        return self.transform(t) if self.transform is not None else t

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.decode(index, self.size, self.scale)
