"""Learning-rate schedules the modes' fits share."""
from __future__ import annotations

import math


def cosine_decay(t: int, span: int, final: float) -> float:
    """A learning rate's factor at step t: 1 at t = 0, falling on a cosine to `final` at
    t = span (the latent and format-5 fits)."""
    f = 0.5 * (1.0 + math.cos(math.pi * t / max(span, 1)))
    return final + (1.0 - final) * f
