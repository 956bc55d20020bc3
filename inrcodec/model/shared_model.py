"""The weight mode's shared model: architecture, tile size and a ladder of sparse
initialisations (Algorithm 1). A model file (file.py): safetensors, never pickle, named by
the SHA-256 of its bytes. Layout: bitstream_spec/shared_model.md.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError
from .file import MAX_LEVELS, ModelFile, dumps, pack_model, read_metadata, read_tensors
from .inr import INR, Arch, fourier_matrix, init_dense
from .prune import magnitude_prune

# Version 1: pruned weights are zero. Version 2 adds a dense base per level (sparse-delta
# models: pruned weights keep shared values). A model without bases is still written as
# version 1, so existing models keep their bytes and their hash.
FORMAT_VERSION = 2
READ_VERSIONS = ("1", "2")
# A tile is fitted as one batch entry, so its T^2 pixels must fit in FitConfig.max_batch_pixels.
MAX_TILE = 1024
_TENSOR_DTYPES = ("torch.float32", "torch.uint8")  # all this format writes


@dataclass
class Level:
    """One rung of the ladder: a mask per layer and the initial surviving values."""

    masks: list[torch.Tensor]
    theta0: torch.Tensor  # (P,) float32, canonical order of inr.INR
    # Sparse-delta levels: every layer's dense weights, concatenated row-major (float32);
    # pruned weights take these values instead of zero. None for plain sparse levels.
    base: torch.Tensor | None = None

    def fill(self, shapes: list[tuple[int, int]]) -> list[torch.Tensor] | None:
        if self.base is None:
            return None
        out, off = [], 0
        for o, i in shapes:
            out.append(self.base[off:off + o * i].reshape(o, i))
            off += o * i
        return out

    @property
    def n_weights(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks))

    @property
    def n_params(self) -> int:
        return int(self.theta0.numel())


@dataclass
class SharedModel(ModelFile):
    arch: Arch
    tile: int
    levels: list[Level]
    default_level: int = 0
    info: dict = field(default_factory=dict)
    fourier: torch.Tensor | None = None
    _hash: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if not 2 <= self.tile <= MAX_TILE:
            raise ModelError(f"tile size must be in 2..{MAX_TILE}, got {self.tile}")
        if not self.levels:
            raise ModelError("a shared model needs at least one level")
        if not 0 <= self.default_level < len(self.levels):
            raise ModelError(f"default level {self.default_level} outside 0..{len(self.levels) - 1}")
        if self.arch.family == "ffn" and self.fourier is None:
            self.fourier = fourier_matrix(self.arch)
        self._nets: dict[int, INR] = {}

    def net(self, level: int) -> INR:
        self.check_level(level)
        if level not in self._nets:
            lv = self.levels[level]
            net = INR(self.arch, lv.masks, self.fourier, fill=lv.fill(self.arch.layer_shapes()))
            if net.n_params != self.levels[level].n_params:
                raise ModelError(f"level {level}: {self.levels[level].n_params} values stored, "
                                 f"mask implies {net.n_params}")
            self._nets[level] = net
        return self._nets[level]

    def check_level(self, level: int) -> None:
        if not 0 <= level < len(self.levels):
            raise ModelError(f"level {level} does not exist: this model has levels "
                             f"0..{len(self.levels) - 1}")

    @property
    def sparse_delta(self) -> bool:
        return any(lv.base is not None for lv in self.levels)

    def ladder(self) -> list[dict]:
        from .sparse import live_mask
        total = self.arch.n_weights()
        return [{"level": k, "density": lv.n_weights / total, "weights": lv.n_weights,
                 "params": lv.n_params, "live": int(live_mask(self.net(k)).sum()),
                 **({"base": "dense"} if lv.base is not None else {})}
                for k, lv in enumerate(self.levels)]

    # -- bytes -------------------------------------------------------------------
    def _tensors(self) -> dict[str, torch.Tensor]:
        t = {}
        for k, lv in enumerate(self.levels):
            t[f"level.{k:02d}.theta"] = lv.theta0.detach().to(torch.float32).contiguous()
            for li, m in enumerate(lv.masks):
                bits = np.packbits(m.reshape(-1).numpy().astype(np.uint8), bitorder="little")
                t[f"level.{k:02d}.mask.{li}"] = torch.from_numpy(bits)
            if lv.base is not None:
                t[f"level.{k:02d}.base"] = lv.base.detach().to(torch.float32).contiguous()
        if self.fourier is not None:
            t["fourier"] = self.fourier.detach().to(torch.float32).contiguous()
        return t

    def to_bytes(self) -> bytes:
        return pack_model(self._tensors(), {
            "format_version": "2" if self.sparse_delta else "1",
            "arch": dumps(self.arch.to_dict()),
            "tile": str(self.tile),
            "n_levels": str(len(self.levels)),
            "default_level": str(self.default_level),
            "info": dumps(self.info),
        })

    @classmethod
    def from_bytes(cls, data: bytes) -> "SharedModel":
        meta = read_metadata(data)
        version = meta.get("format_version")
        if version not in READ_VERSIONS:
            raise ModelError(f"shared model format version {version!r} is not "
                             f"supported (this inrcodec reads versions {', '.join(READ_VERSIONS)})")
        tensors = {k: torch.from_numpy(np.array(v)) for k, v in
                   read_tensors(data, meta, dtypes=_TENSOR_DTYPES).items()}
        try:
            arch = Arch.from_dict(json.loads(meta["arch"]))
            tile = int(meta["tile"])
            n_levels = int(meta["n_levels"])
            default_level = int(meta["default_level"])
            info = json.loads(meta["info"])
        except (KeyError, ValueError, TypeError, RecursionError) as e:
            raise ModelError(f"shared model metadata is invalid: {e}") from None
        if not isinstance(info, dict):
            raise ModelError("shared model metadata is invalid: info is not a mapping")
        if arch.in_features != 2 or arch.out_features != 3:
            raise ModelError("shared model must map 2 coordinates to 3 colour channels, not "
                             f"{arch.in_features} to {arch.out_features}")
        if not 1 <= n_levels <= MAX_LEVELS:
            raise ModelError(f"shared model claims {n_levels} levels (limit {MAX_LEVELS})")
        shapes = arch.layer_shapes()
        levels = []
        for k in range(n_levels):
            try:
                theta = tensors[f"level.{k:02d}.theta"]
                packed = [tensors[f"level.{k:02d}.mask.{li}"] for li in range(len(shapes))]
            except KeyError as e:
                raise ModelError(f"shared model lacks tensor {e}") from None
            masks = []
            for (o, i), p in zip(shapes, packed):
                # Exact size first: unpackbits would zero-pad a short mask up to `count`.
                nb = -(-o * i // 8)
                if p.dtype != torch.uint8 or p.dim() != 1 or p.numel() != nb:
                    raise ModelError(f"level {k}: the mask of a {o}x{i} layer must be {nb} "
                                     "uint8 bytes")
                bits = np.unpackbits(p.numpy(), bitorder="little", count=o * i)
                masks.append(torch.from_numpy(bits.astype(bool)).reshape(o, i))
            if theta.dtype != torch.float32 or theta.dim() != 1 or not torch.isfinite(theta).all():
                raise ModelError(f"level {k}: initial values must be finite float32")
            base = tensors.get(f"level.{k:02d}.base")
            if (base is not None) != (version == "2"):
                raise ModelError(f"level {k}: a dense base is required in version 2 files and "
                                 "only there")
            if base is not None and (base.dtype != torch.float32 or base.dim() != 1
                                     or base.numel() != arch.n_weights()
                                     or not torch.isfinite(base).all()):
                raise ModelError(f"level {k}: the dense base must be {arch.n_weights()} finite "
                                 "float32 values")
            levels.append(Level(masks=masks, theta0=theta, base=base))
        fourier = tensors.get("fourier")
        if arch.family == "ffn" and fourier is not None and (
                fourier.dtype != torch.float32
                or tuple(fourier.shape) != (arch.ffn_features, arch.in_features)
                or not torch.isfinite(fourier).all()):
            raise ModelError("Fourier matrix must be finite float32 of shape "
                             f"({arch.ffn_features}, {arch.in_features})")
        model = cls(arch=arch, tile=tile, levels=levels, default_level=default_level,
                    info=info, fourier=fourier)
        for k in range(n_levels):
            model.net(k)  # checks that each mask and value count agree
        model._hash = hashlib.sha256(data).hexdigest()
        return model


def sparse_delta_from(model: SharedModel, *, bias_only: bool = True) -> SharedModel:
    """The same ladder as a sparse-delta model whose dense base is level 0 (untrained as
    sparse-delta): every level adapts the weights its mask keeps, the others keep their
    level-0 value instead of zero; `bias_only` appends a level that adapts biases only.
    For tests and the test vectors; `inrcodec train --sparse-delta` meta-learns the base."""
    if model.levels[0].n_weights != model.arch.n_weights():
        raise ModelError("level 0 must be dense to serve as the base")
    dense = INR(model.arch, fourier=model.fourier).dense(model.levels[0].theta0)
    fill = [w for w, _ in dense]
    base = torch.cat([w.reshape(-1) for w in fill])
    masks = [lv.masks for lv in model.levels]
    if bias_only:
        masks.append([torch.zeros_like(m) for m in model.levels[0].masks])
    levels = [Level(masks=ms, theta0=INR(model.arch, ms, model.fourier, fill=fill).flatten(dense),
                    base=base.clone()) for ms in masks]
    return SharedModel(arch=model.arch, tile=model.tile, levels=levels,
                       default_level=model.default_level,
                       info={"kind": "sparse-delta-from", "source": model.hash},
                       fourier=model.fourier)


def scratch_model(arch: Arch, tile: int, *, n_levels: int = 5, prune_rate: float = 0.2,
                  seed: int = 0, default_level: int | None = None) -> SharedModel:
    """An untrained ladder: one random initialisation, magnitude-pruned per level.

    For tests and as the Scratch baseline; the meta-learned default comes from training.
    """
    g = torch.Generator().manual_seed(seed)
    dense = init_dense(arch, g)
    masks = [torch.ones(w.shape, dtype=torch.bool) for w, _ in dense]
    fourier = fourier_matrix(arch) if arch.family == "ffn" else None
    levels = []
    for k in range(n_levels):
        if k:
            masks = magnitude_prune([w for w, _ in dense], masks, prune_rate)
        net = INR(arch, masks, fourier)
        levels.append(Level(masks=masks, theta0=net.flatten(dense).clone()))
    dl = n_levels // 2 if default_level is None else default_level
    return SharedModel(arch=arch, tile=tile, levels=levels, default_level=dl,
                       info={"kind": "scratch", "seed": seed}, fourier=fourier)


# -- where models come from -----------------------------------------------------------------
ModelLike = SharedModel | str | Path | None


def weights_model_path() -> Path:
    """The weight mode's shared model shipped in the package."""
    return Path(str(resources.files("inrcodec") / "models" / "weights.safetensors"))


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> SharedModel:
    return SharedModel.load(path)


def load_model(model: ModelLike = None) -> SharedModel:
    """A SharedModel from a path, or the default model shipped in the package (cached)."""
    if isinstance(model, SharedModel):
        return model
    if isinstance(model, ModelFile):
        raise ModelError(f"the weight mode needs its shared model, not a {model.WHAT} "
                         f"({model.hash}); for that model use the latent mode")
    path = Path(model) if model is not None else weights_model_path()
    if not path.is_file():
        if model is None:
            raise ModelError(f"the default shared model is missing from the installation ({path})")
        raise ModelError(f"shared model {path} not found")
    st = path.stat()
    return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)
