"""Frozen configuration records: network architecture, fitting, meta-training."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

FAMILIES = ("siren", "ffn")


@dataclass(frozen=True)
class Arch:
    """One INR family and shape. Coordinates in [-1, 1]^2 map to `out_features` values.

    SIREN: `depth` sine layers of `width` units and a linear output layer
    (the paper: depth 4, width 256, w0 = 200 at 178x178).
    FFN: a fixed random Fourier encoding of `ffn_features` frequencies drawn from
    N(0, ffn_sigma^2) (seeded by `ffn_seed`), then `depth` ReLU layers and a linear output.
    """

    family: str = "siren"
    width: int = 64
    depth: int = 4
    in_features: int = 2
    out_features: int = 3
    w0: float = 30.0
    ffn_features: int = 64
    ffn_sigma: float = 10.0
    ffn_seed: int = 0

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown INR family {self.family!r}; expected one of {FAMILIES}")
        if self.width < 1 or self.depth < 1 or self.ffn_features < 1:
            raise ValueError("width, depth and ffn_features must be positive")

    def layer_shapes(self) -> list[tuple[int, int]]:
        """(out, in) of every linear layer, in order."""
        first_in = self.in_features if self.family == "siren" else 2 * self.ffn_features
        dims = [first_in] + [self.width] * self.depth + [self.out_features]
        return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]

    def n_weights(self) -> int:
        return sum(o * i for o, i in self.layer_shapes())

    def n_biases(self) -> int:
        return sum(o for o, _ in self.layer_shapes())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Arch":
        if not isinstance(d, dict):
            raise ValueError("an architecture must be a mapping")
        kinds = {f.name: type(f.default) for f in dataclasses.fields(cls)}
        unknown = set(d) - set(kinds)
        if unknown:
            raise ValueError(f"unknown architecture fields {sorted(unknown)}")
        for k, v in d.items():
            want = kinds[k]
            ok = (isinstance(v, str) if want is str else
                  isinstance(v, int) and not isinstance(v, bool) if want is int else
                  isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
            if not ok:
                raise ValueError(f"architecture field {k}={v!r} is not a valid {want.__name__}")
        return cls(**d)


@dataclass(frozen=True)
class FitConfig:
    """Test-time fitting (the encoder's optimisation): full-batch Adam from the shared init."""

    steps: int = 100
    lr: float = 1e-4
    seed: int = 0
    # Upper bound on pixels (tiles x T^2) fitted in one batch; bounds peak memory.
    max_batch_pixels: int = 1 << 20
    # Pixels per forward/backward pass inside one step (gradients accumulate over passes).
    chunk_pixels: int = 1 << 15


@dataclass(frozen=True)
class MetaConfig:
    """MAML and Algorithm 1 (Meta-SparseINR) schedule."""

    meta_batch: int = 3
    inner_steps: int = 2
    inner_lr: float = 1e-2
    outer_lr: float = 1e-5
    first_order: bool = False
    pretrain_steps: int = 1000
    retrain_steps: int = 200
    rounds: int = 10
    prune_rate: float = 0.2
    pruning: str = "magnitude"  # or "random"
    # Validate every val_every steps within a phase and keep the best weights (early
    # stopping); 0 = validate once at the end of each phase and keep the last weights.
    val_every: int = 0
    seed: int = 0
    # Sparse-delta (issue 5): the shared base stays dense and the mask marks which weights
    # each image adapts; the outer loop learns every base weight. bias_only_steps > 0 adds a
    # last level where only biases adapt (retrained that many steps).
    sparse_delta: bool = False
    bias_only_steps: int = 0
    tags: tuple = field(default_factory=tuple)
