"""What every mode shares: which mode is the default, the efforts and the quality scale.
Each mode's own defaults live beside it (codec/latent/config.py, codec/weights/config.py),
and training's in training/."""
from __future__ import annotations

# The mode `inrcodec encode`, `encode-dir`, `train`, the Python API, the Pillow plugin and
# the dataset tools use when no mode is named: the latent mode, the best codec we have.
DEFAULT_MODE = "latent"
MODES = ("latent", "weights")
# --effort: each mode maps these to its steps (and the weight mode's format 5 to its
# candidate levels).
EFFORTS = ("fast", "default", "slow")
DEFAULT_EFFORT = "default"
QUALITY_RANGE = (1, 100)  # --quality: each mode maps it to its lambda
