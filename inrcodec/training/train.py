"""Training entry point: real photos -> training/validation signals -> Algorithm 1."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InrcodecError
from ..model.inr import Arch
from ..model.shared_model import SharedModel
from .config import TRAINING_PRESETS, MetaConfig
from .data import cache_dir, centre_crops, image_paths, random_crops
from .meta import train_meta_sparse

PRESETS = TRAINING_PRESETS


def split_photos(paths: list[Path], val_fraction: float = 0.1) -> tuple[list[Path], list[Path]]:
    """Deterministic photo-level split, so validation signals come from unseen photos."""
    keyed = sorted(paths, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
    n_val = max(1, round(len(keyed) * val_fraction)) if len(keyed) > 1 else 0
    return sorted(keyed[n_val:]), sorted(keyed[:n_val])


def signals(source: str | Path, tile: int, n_train: int, n_val: int, *, whole_image: bool,
            seed: int = 0, cache: bool = True, crop_scale: tuple[float, float] = (0.5, 1.0)
            ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 training and validation signals (n, T, T, 3) from a builder name or folder.

    Random crops take a square window of a `crop_scale` fraction of each photo's shorter
    side, resized to T x T.
    """
    paths = image_paths(source)
    train_paths, val_paths = split_photos(paths)
    key = hashlib.sha256(json.dumps([str(source), [p.name for p in paths], tile, n_train, n_val,
                                     whole_image, seed]
                                    + ([list(crop_scale)] if tuple(crop_scale) != (0.5, 1.0)
                                       else [])).encode()).hexdigest()[:16]
    f = cache_dir() / "signals" / f"{key}.npz"
    if cache and f.exists():
        with np.load(f, allow_pickle=False) as z:
            return z["train"], z["val"]

    def u8(a):
        return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    if whole_image:
        train, val = u8(centre_crops(train_paths, tile)), u8(centre_crops(val_paths, tile))
    else:
        sr = tuple(crop_scale)
        train = u8(random_crops(train_paths, tile, n_train, seed=seed, scale_range=sr))
        val = u8(random_crops(val_paths, tile, n_val, seed=seed + 1, scale_range=sr)) \
            if val_paths else \
            np.zeros((0, tile, tile, 3), np.uint8)
    if cache:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f"{f.name}.{os.getpid()}.part.npz")  # ranks may race to write
        np.savez(tmp, train=train, val=val)
        tmp.replace(f)
    return train, val


def train(source: str | Path, out: Path, *, arch: Arch, tile: int, meta: MetaConfig,
          whole_image: bool = False, crop_scale: tuple[float, float] = (0.5, 1.0),
          n_train: int = 20000, n_val: int = 32,
          resume: bool = False, log_path: Path | None = None, command: str = "",
          progress: Callable[[int, int, float], None] | None = None,
          device: str = "cpu", dist=None, init: SharedModel | None = None) -> SharedModel:
    train_u8, val_u8 = signals(source, tile, n_train, n_val, whole_image=whole_image,
                               seed=meta.seed, crop_scale=crop_scale)
    log_path = log_path or out.with_suffix(".log.jsonl")

    def log(entry: dict):
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **entry}
        with open(log_path, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
    info = {"data": str(source), "n_train_signals": int(len(train_u8)),
            "n_val_signals": int(len(val_u8)), "command": command}
    if not whole_image:
        info["crop_scale"] = list(crop_scale)
    start = None
    if init is not None:
        # Continue from another model's dense level 0 (e.g. skip MAML pretraining).
        if init.arch != arch or init.tile != tile or init.levels[0].n_weights != arch.n_weights():
            raise InrcodecError("the --init model's level 0 must be dense, with the same "
                                "architecture and tile size")
        start = init.levels[0].theta0
        info["init_model"] = init.hash
    return train_meta_sparse(arch, tile, train_u8, val_u8, meta, out, resume=resume, info=info,
                             log=log, progress=progress, device=device, dist=dist,
                             init=start)
