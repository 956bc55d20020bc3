"""The latent mode's shared model: the synthesis network's initialisation, as a ladder of
sparse levels (Algorithm 1's pruning rounds), and the autoregressive entropy model that
every file coded with it uses.

A file that names this model sends only its latents and the quantised deltas of the
surviving synthesis parameters of one level; the mask is implicit here. Stored like the
weight mode's shared model (model/file.py): one safetensors file, never pickle,
its identity the SHA-256 of its bytes. Layout: bitstream_spec/shared_model.md, version 3,
or 4 where the ARM has a residual second layer (a new version, so that a reader of version 3
alone refuses the model instead of ignoring the layer).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ...errors import ModelError
from ...model.file import MAX_LEVELS, ModelFile, dumps, pack_model, read_metadata, read_tensors
from .arm import ArmParams
from .config import LatentArch
from .layout import weight_tensors

FORMAT_VERSION = "3"
FORMAT_VERSION_RESIDUAL = "4"  # the same, and the ARM's residual layer
KIND = "latent"
ARM_TENSORS = ("w1", "b1", "w2", "b2")
ARM_RESIDUAL = ("wr", "br")
MAX_ARM = (1 << 15) - 1


@dataclass
class LatentModel(ModelFile):
    WHAT = "latent model"

    arch: LatentArch
    # numpy (a fit takes torch copies: fit.Start); torch tensors given are converted
    thetas: list[np.ndarray]  # per level: (n_params,) float32, pruned entries 0
    masks: list[np.ndarray]  # per level: (n_params,) bool, True where a file sends a delta
    # fixed-point ARM: w1 (H, 12), b1 (H,), w2 (2, H), b2 (2,)[, wr (H, H), br (H,)]
    arm: tuple[np.ndarray, ...]
    default_level: int = 0
    info: dict = field(default_factory=dict)
    _hash: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.thetas = [_array(t, np.float32) for t in self.thetas]
        self.masks = [_array(m, bool) for m in self.masks]
        n = self.arch.n_params()
        if not self.thetas or len(self.thetas) != len(self.masks) \
                or len(self.thetas) > MAX_LEVELS:
            raise ModelError(f"a latent model needs 1..{MAX_LEVELS} levels, each with a mask")
        for k, (t, m) in enumerate(zip(self.thetas, self.masks)):
            if tuple(t.shape) != (n,) or tuple(m.shape) != (n,):
                raise ModelError(f"level {k}: expected {n} synthesis values and mask bits")
            if bool((t[~m] != 0).any()):
                raise ModelError(f"level {k}: pruned synthesis values must be zero")
        if not 0 <= self.default_level < len(self.thetas):
            raise ModelError(f"default level {self.default_level} is not in the ladder")
        if len(self.arm) not in (4, 6):
            raise ModelError("the autoregressive model needs 4 tensors, or 6 with a residual "
                             "layer")
        w1, b1, w2, b2 = self.arm[:4]
        hid = w1.shape[0] if w1.ndim == 2 else -1
        if not (1 <= hid <= 64 and w1.shape == (hid, 12) and b1.shape == (hid,)
                and w2.shape == (2, hid) and b2.shape == (2,)) or (
                len(self.arm) == 6 and (self.arm[4].shape != (hid, hid)
                                        or self.arm[5].shape != (hid,))):
            raise ModelError("the autoregressive model's tensors have inconsistent shapes")
        if hid != self.arch.arm_hidden:
            raise ModelError(f"the autoregressive model is {hid} wide, its arch says "
                             f"{self.arch.arm_hidden}")
        if any(np.abs(a).max(initial=0) > MAX_ARM for a in self.arm):
            raise ModelError("the autoregressive model's values exceed int16")

    @property
    def n_levels(self) -> int:
        return len(self.thetas)

    def check_level(self, level: int) -> None:
        if not 0 <= level < self.n_levels:
            raise ModelError(f"level {level} is not in this latent model (0..{self.n_levels - 1})")

    def ladder(self) -> list[dict]:
        """Per level: transmitted parameters and the synthesis's nonzero MACs per pixel."""
        out = []
        for k, m in enumerate(self.masks):
            macs = sum(int(m[s].sum()) for s in weight_tensors(self.arch))
            if self.arch.up_params:
                macs += self.arch.macs_per_pixel() - sum(o * i for o, i in self.arch.shapes())
            out.append({"level": k, "params": int(m.sum()), "macs_per_pixel": macs})
        return out

    # -- bytes -------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        t = {}
        for k, (theta, m) in enumerate(zip(self.thetas, self.masks)):
            t[f"level.{k:02d}.theta"] = theta
            t[f"level.{k:02d}.mask"] = np.packbits(m.astype(np.uint8), bitorder="little")
        for name, a in zip(ARM_TENSORS + ARM_RESIDUAL, self.arm):
            t[f"arm.{name}"] = np.ascontiguousarray(a, dtype=np.int16)
        arch = dataclasses.asdict(self.arch)
        if arch["upsample"] == "bilinear":  # the models made before the key had it implicitly
            del arch["upsample"]
        version = FORMAT_VERSION_RESIDUAL if len(self.arm) == 6 else FORMAT_VERSION
        return pack_model(t, {"format_version": version, "kind": KIND,
                              "arch": dumps(arch), "n_levels": str(self.n_levels),
                              "default_level": str(self.default_level),
                              "info": dumps(self.info)})

    @classmethod
    def from_bytes(cls, data: bytes) -> "LatentModel":
        meta = read_metadata(data, "latent model")
        if meta.get("format_version") in ("1", "2"):
            raise ModelError("this is a weight-mode shared model: encode with --mode weights "
                             "to use it, or give a latent model (format version 3)")
        version = meta.get("format_version")
        if version not in (FORMAT_VERSION, FORMAT_VERSION_RESIDUAL) or meta.get("kind") != KIND:
            raise ModelError("not a latent-mode shared model (format version "
                             f"{version!r}, this needs version 3 or 4)")
        tensors = read_tensors(data, meta, "latent model")
        try:
            arch = LatentArch(**json.loads(meta["arch"]))
            n_levels = int(meta["n_levels"])
            default_level = int(meta["default_level"])
            info = json.loads(meta["info"])
        except (KeyError, ValueError, TypeError, RecursionError) as e:
            raise ModelError(f"latent model metadata is invalid: {e}") from None
        if not 1 <= n_levels <= MAX_LEVELS or not isinstance(info, dict):
            raise ModelError("latent model metadata is invalid")
        n = arch.n_params()
        thetas, masks = [], []
        try:
            for k in range(n_levels):
                theta, packed = tensors[f"level.{k:02d}.theta"], tensors[f"level.{k:02d}.mask"]
                if theta.dtype != np.float32 or theta.ndim != 1 or theta.size != n \
                        or not np.isfinite(theta).all():
                    raise ModelError(f"level {k}: expected {n} finite float32 values")
                if packed.dtype != np.uint8 or packed.ndim != 1 \
                        or packed.size != -(-n // 8):
                    raise ModelError(f"level {k}: the mask must be {-(-n // 8)} bytes")
                thetas.append(theta)
                masks.append(np.unpackbits(packed, bitorder="little", count=n).astype(bool))
            arm = []
            for name in ARM_TENSORS + (ARM_RESIDUAL if version == FORMAT_VERSION_RESIDUAL
                                       else ()):
                a = tensors[f"arm.{name}"]
                if a.dtype != np.int16:
                    raise ModelError(f"arm.{name} must be int16")
                arm.append(a.astype(np.int64))
        except KeyError as e:
            raise ModelError(f"latent model lacks tensor {e}") from None
        model = cls(arch=arch, thetas=thetas, masks=masks, arm=tuple(arm),
                    default_level=default_level, info=info)
        model._hash = hashlib.sha256(data).hexdigest()
        return model


def scratch_latent_model(arch: LatentArch, *, n_levels: int = 2, seed: int = 0,
                         arm_params: tuple[np.ndarray, ...] | None = None) -> LatentModel:
    """An untrained latent model: a seeded random synthesis, pruned by magnitude into
    `n_levels` levels, and an untrained ARM (or `arm_params`). For tests and ablations."""
    import torch

    from ...model.prune import prune_flat
    from .arm import init_float
    from .synthesis import init_synthesis
    gen = torch.Generator().manual_seed(seed)
    theta = init_synthesis(arch, gen)
    armf = init_float(arch.arm_hidden, gen)
    if arm_params is None:
        a = ArmParams.from_float(*[p.numpy() for p in armf])
        arm_params = (a.w1, a.b1, a.w2, a.b2)
    mask = torch.ones(arch.n_params(), dtype=torch.bool)
    thetas, masks = [], []
    for k in range(n_levels):
        if k:
            mask = prune_flat(theta, mask, weight_tensors(arch), 0.2)
        thetas.append(theta * mask)
        masks.append(mask)
    return LatentModel(arch=arch, thetas=thetas, masks=masks, arm=tuple(arm_params),
                       info={"trainer": "scratch_latent_model", "seed": seed})


def _array(t, dtype) -> np.ndarray:
    """A level's values as a numpy array of `dtype` (from numpy or torch)."""
    if not isinstance(t, np.ndarray):
        t = t.detach().cpu().numpy()
    return np.array(t, dtype=dtype)


def default_latent_model_path() -> Path:
    return Path(str(resources.files("inrcodec") / "models" / "latent.safetensors"))


# Earlier default latent models, shipped so that the files they made still decode with no
# --model (a file names its model by hash): 0.16's (the ARM of one layer, refitted),
# 0.12-0.15's (the meta-trained ARM), 0.10.0-0.11's
# (bilinear upsampling) and 0.5.0-0.9.1's 24-wide synthesis.
EARLIER_LATENT_MODELS = ("latent-0.16.safetensors", "latent-0.12.safetensors",
                         "latent-0.11.safetensors",
                         "latent-24.safetensors")


def shipped_latent_model(needed: str) -> "LatentModel | None":
    """The shipped latent model (the default or an earlier one) whose hash is `needed`."""
    for name in ("latent.safetensors", *EARLIER_LATENT_MODELS):
        m = load_latent_model(default_latent_model_path().with_name(name))
        if m.hash == needed:
            return m
    return None


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int) -> LatentModel:
    return LatentModel.load(path)


def load_latent_model(model: "LatentModel | str | Path | None" = None) -> LatentModel:
    """The shipped latent model, a path to one, or a model as is."""
    if isinstance(model, LatentModel):
        return model
    if isinstance(model, ModelFile):
        raise ModelError(f"the latent mode needs a latent model, not a {model.WHAT} "
                         f"({model.hash}); for that model use the weight mode")
    path = Path(model) if model is not None else default_latent_model_path()
    try:
        st = path.stat()
    except OSError as e:
        raise ModelError(f"cannot read latent model {path}: {e.strerror or e}") from None
    return _load_cached(str(path), st.st_mtime_ns, st.st_size)
