"""What is where, for the format and the fit alike: the latent grids' sizes, and the
synthesis's flat parameter vector (per layer its weights (out x in, row-major) then its
biases, then (learned upsampling) the upsampling's taps), which the format's sections, the
optimiser's tensors and a shared model's pruning index by. No torch here, so the decoder
reads a file without it."""
from __future__ import annotations

import math

from .config import LatentArch
from .upsampling import TAPS


def grid_shapes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """Grid k of an H x W image: ceil(H / 2^k) x ceil(W / 2^k)."""
    return [(math.ceil(height / 2 ** k), math.ceil(width / 2 ** k)) for k in range(levels)]


def synthesis_tensors(arch: LatentArch) -> list[slice]:
    """The slices of the flat vector that are tensors: each layer's weights, its biases,
    then (learned upsampling) the upsampling's taps."""
    out, off = [], 0
    for o, i in arch.shapes():
        out.append(slice(off, off + o * i))
        out.append(slice(off + o * i, off + o * i + o))
        off += o * i + o
    if arch.up_params:
        out.append(slice(off, off + arch.up_params))
    return out


def tensor_shapes(arch: LatentArch) -> list[tuple[int, ...]]:
    """The shapes of `synthesis_tensors`: (out, in), (out,), ..., then (levels - 1, 4)."""
    out = [x for o, i in arch.shapes() for x in ((o, i), (o,))]
    return out + ([(arch.levels - 1, TAPS)] if arch.up_params else [])


def weight_tensors(arch: LatentArch) -> list[slice]:
    """The layers' weight matrices: what a shared model prunes and MACs count."""
    return synthesis_tensors(arch)[0:2 * len(arch.shapes()):2]
