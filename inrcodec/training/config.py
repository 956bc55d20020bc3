"""The weight mode's meta-training recipe: MAML and Algorithm 1 (MetaConfig) and the
presets of `inrcodec train --mode weights`. The latent mode's recipe is in latent_train.py."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..model.inr import Arch


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


# -- meta-training presets (inrcodec train --preset) -----------------------------------------
TRAINING_PRESETS = {
    # The paper's configuration (GPU work): whole 178x178 images, width 256, w0 = 200.
    "paper": dict(arch=Arch(width=256, depth=4, w0=200.0), tile=178, whole_image=True,
                  crop_scale=(0.5, 1.0),
                  meta=MetaConfig(pretrain_steps=150_000, retrain_steps=30_000, rounds=20)),
    # What a 2-core CPU trains in well under an hour (see inrcodec/models/README.md).
    # First-order MAML at this lr peaks after ~1500-3000 steps and then degrades
    # (docs/studies/models-log.md), so validation picks each phase's weights.
    # Crops of 18-25% of the photos' short side (64-90 px of endless-sky's 360) resized to
    # 64: close to the native resolution of the tiles the codec fits in a 768x512 photo.
    "cpu": dict(arch=Arch(width=64, depth=4, w0=60.0), tile=64, whole_image=False,
                crop_scale=(0.18, 0.25),
                meta=MetaConfig(first_order=True, outer_lr=2e-5, pretrain_steps=3000,
                                retrain_steps=300, rounds=15, val_every=500)),
}
