"""Masked, batched, functional INRs (SIREN and Fourier-feature networks).

A network's trainable state is a flat vector `theta` holding only the *surviving* entries:
for each linear layer in order, the weights the mask keeps (row-major positions), then all
of the layer's biases. B independent weight sets that share one mask are a (B, P) tensor,
and one forward pass evaluates all of them (`torch.bmm`). Pruned weights are not variables
at all, so they are exactly zero and can never receive an update; the flat vector is also
exactly what the bitstream stores, in the same canonical order.

Sparse-delta networks (`fill`): pruned weights keep a shared dense value instead of zero, so
the mask marks which weights each image adapts, not which exist.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

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



def init_dense(arch: Arch, generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Dense (W, b) per layer, initialised as in SIREN / the paper (or He init for FFN)."""
    layers = []
    shapes = arch.layer_shapes()
    for i, (fan_out, fan_in) in enumerate(shapes):
        if arch.family == "siren":
            bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / arch.w0
        else:
            last = i == len(shapes) - 1
            bound = math.sqrt(1.0 / fan_in) if last else math.sqrt(6.0 / fan_in)
        w = (torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound
        # nn.Linear's default bias init, as in the SIREN reference code
        bb = 1.0 / math.sqrt(fan_in)
        b = (torch.rand(fan_out, generator=generator) * 2 - 1) * bb
        layers.append((w, b))
    return layers


def fourier_matrix(arch: Arch) -> torch.Tensor:
    """The FFN's fixed random frequencies (ffn_features, in_features), ~ N(0, sigma^2)."""
    g = torch.Generator().manual_seed(arch.ffn_seed)
    return torch.randn(arch.ffn_features, arch.in_features, generator=g) * arch.ffn_sigma


class INR:
    """One architecture plus one mask per layer: maps flat parameter vectors to outputs."""

    def __init__(self, arch: Arch, masks: list[torch.Tensor] | None = None,
                 fourier: torch.Tensor | None = None,
                 fill: list[torch.Tensor] | None = None):
        self.arch = arch
        shapes = arch.layer_shapes()
        if masks is None:
            masks = [torch.ones(s, dtype=torch.bool) for s in shapes]
        if len(masks) != len(shapes):
            raise ValueError(f"expected {len(shapes)} masks, got {len(masks)}")
        self.masks = []
        self.layout = []  # per layer: (shape, weight index or None if dense, w_off, n_w, b_off)
        off = 0
        for shape, m in zip(shapes, masks):
            m = m.to(torch.bool)
            if tuple(m.shape) != shape:
                raise ValueError(f"mask shape {tuple(m.shape)} does not match layer {shape}")
            self.masks.append(m)
            n_w = int(m.sum())
            idx = None if n_w == m.numel() else torch.nonzero(m.reshape(-1)).squeeze(1)
            self.layout.append((shape, idx, off, n_w, off + n_w))
            off += n_w + shape[0]
        self.n_params = off
        self.n_weights = sum(n for _, _, _, n, _ in self.layout)
        if arch.family == "ffn":
            self.fourier = fourier if fourier is not None else fourier_matrix(arch)
        else:
            self.fourier = None
        self._compact = None
        self.fill = None
        if fill is not None:
            self.set_fill(fill)

    def set_fill(self, fill: list[torch.Tensor] | None) -> None:
        """Dense (out, in) values that pruned weights take (None: zero). May carry gradients
        (sparse-delta meta-training learns them). A filled network runs the dense path only
        (the compact one skips what the mask removes)."""
        if fill is not None:
            if len(fill) != len(self.layout) or any(
                    tuple(f.shape) != shape for f, (shape, *_) in zip(fill, self.layout)):
                raise ValueError("fill must hold one dense weight matrix per layer")
        self.fill = fill

    def compact_plan(self):
        """The mask's compact structure (sparse.CompactPlan), worked out once."""
        if self._compact is None:
            from .sparse import CompactPlan
            self._compact = CompactPlan(self)
        return self._compact

    @property
    def density(self) -> float:
        return self.n_weights / self.arch.n_weights()

    # -- conversions between the flat vector and dense layers -----------------
    def flatten(self, dense: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Dense (W, b) layers -> flat vector of this mask's surviving entries (P,)."""
        parts = []
        for (w, b), (_, idx, _, _, _) in zip(dense, self.layout):
            wf = w.reshape(-1)
            parts.append(wf if idx is None else wf[idx])
            parts.append(b.reshape(-1))
        return torch.cat(parts)

    def unflatten(self, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(B, P) -> per layer (W (B, out, in), b (B, out)); differentiable."""
        if theta.dim() != 2 or theta.shape[1] != self.n_params:
            raise ValueError(f"theta must be (B, {self.n_params}), got {tuple(theta.shape)}")
        B = theta.shape[0]
        layers = []
        for li, ((o, i), idx, w_off, n_w, b_off) in enumerate(self.layout):
            vals = theta[:, w_off:w_off + n_w]
            if idx is None:
                w = vals.reshape(B, o, i)
            elif self.fill is None:
                w = theta.new_zeros(B, o * i).index_copy(1, idx.to(theta.device), vals).reshape(B, o, i)
            else:
                base = self.fill[li].to(theta).reshape(1, o * i).expand(B, -1)
                w = base.index_copy(1, idx.to(theta.device), vals).reshape(B, o, i)
            layers.append((w, theta[:, b_off:b_off + o]))
        return layers

    def dense(self, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A single flat vector (P,) -> dense (W, b) layers (zeros or `fill` where pruned)."""
        return [(w[0], b[0]) for w, b in self.unflatten(theta.reshape(1, -1))]

    # -- evaluation ------------------------------------------------------------
    def forward(self, theta: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Evaluate B networks. theta (B, P); coords (N, in) shared or (B, N, in) per network.

        Returns (B, N, out_features). Runs the compact path (sparse.py) where it is faster
        for this mask and device, else the masked dense one; both compute the same function.
        """
        from .sparse import plan_for
        plan = plan_for(self, theta.device)
        if plan is not None:
            return plan.forward(theta, coords)
        return self.forward_dense(theta, coords)

    def forward_dense(self, theta: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """The masked dense pass: every layer at full size, pruned weights as zeros."""
        B = theta.shape[0]
        h = coords if coords.dim() == 3 else coords.unsqueeze(0).expand(B, -1, -1)
        if self.fourier is not None:
            proj = 2 * math.pi * h @ self.fourier.to(h).t()
            h = torch.cat([torch.cos(proj), torch.sin(proj)], dim=-1)
        layers = self.unflatten(theta)
        last = len(layers) - 1
        w0 = self.arch.w0
        for k, (w, b) in enumerate(layers):
            if k == last:
                return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            if self.fourier is None:
                # sin(w0 (Wx + b)): scaling the (small) weights instead of the activations
                # saves one elementwise pass over the largest tensors.
                h = torch.sin(torch.baddbmm((w0 * b).unsqueeze(1), h, (w0 * w).transpose(1, 2)))
            else:
                h = torch.relu(torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2)))
        raise AssertionError("unreachable")

    __call__ = forward


def tile_losses(net: INR, theta: torch.Tensor, coords: torch.Tensor, targets: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
    """Per-tile MSE over valid pixels: (n,)."""
    err = (net(theta, coords) - targets).square().sum(-1)
    n_valid = weights.sum(1).clamp_min(1.0) * targets.shape[-1]
    return (err * weights).sum(1) / n_valid
