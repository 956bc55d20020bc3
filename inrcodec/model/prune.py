"""Pruning masks: global magnitude (Meta-SparseINR) and random (the Random Pruning baseline).

Only weights are pruned, never biases. Each call removes a fraction of the weights that
still survive, so repeated calls give nested masks with density (1 - rate)^k.
"""
from __future__ import annotations

import torch


def _n_remove(n_alive: int, rate: float) -> int:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"prune rate must be in [0, 1), got {rate}")
    return int(round(rate * n_alive))


def magnitude_prune(weights: list[torch.Tensor], masks: list[torch.Tensor],
                    rate: float) -> list[torch.Tensor]:
    """Remove the `rate` fraction of surviving weights with the smallest |w|.

    One threshold across all layers (first and last included). Ties are broken by
    position so exactly round(rate * alive) weights go.
    """
    alive_vals = torch.cat([w.detach().abs().reshape(-1)[m.reshape(-1)].float()
                            for w, m in zip(weights, masks)])
    k = _n_remove(alive_vals.numel(), rate)
    order = torch.argsort(alive_vals, stable=True)
    drop = torch.zeros(alive_vals.numel(), dtype=torch.bool)
    drop[order[:k]] = True
    return _apply_drop(masks, drop)


def random_prune(masks: list[torch.Tensor], rate: float,
                 generator: torch.Generator) -> list[torch.Tensor]:
    """Remove a uniformly random `rate` fraction of surviving weights (same schedule)."""
    n_alive = int(sum(int(m.sum()) for m in masks))
    k = _n_remove(n_alive, rate)
    drop = torch.zeros(n_alive, dtype=torch.bool)
    drop[torch.randperm(n_alive, generator=generator)[:k]] = True
    return _apply_drop(masks, drop)


def _apply_drop(masks: list[torch.Tensor], drop: torch.Tensor) -> list[torch.Tensor]:
    out, off = [], 0
    for m in masks:
        flat = m.reshape(-1).clone()
        pos = torch.nonzero(flat).squeeze(1)
        flat[pos[drop[off:off + pos.numel()]]] = False
        off += pos.numel()
        out.append(flat.reshape(m.shape))
    return out


def prune_flat(theta: torch.Tensor, mask: torch.Tensor, weights: list[slice],
               rate: float) -> torch.Tensor:
    """`magnitude_prune` on a flat parameter vector and its mask, whose weights (not
    biases) are at the slices `weights`: the latent mode's synthesis."""
    new = magnitude_prune([theta[s] for s in weights], [mask[s] for s in weights], rate)
    out = mask.clone()
    for s, m in zip(weights, new):
        out[s] = m
    return out


def rounds_for_density(n_weights: int, rate: float, density: float) -> int:
    """How many rounds of pruning `rate` of the survivors bring `n_weights` weights to
    `density` or below (each round removes round(rate x survivors), as the prunes do)."""
    if not 0 < density <= 1:
        raise ValueError("the target density must be in (0, 1]")
    n, rounds = n_weights, 0
    while n / n_weights > density:
        n -= _n_remove(n, rate)
        rounds += 1
    return rounds


def is_nested(inner: list[torch.Tensor], outer: list[torch.Tensor]) -> bool:
    """True if every weight kept by `inner` is also kept by `outer`."""
    return all(bool((a & ~b).sum() == 0) for a, b in zip(inner, outer))
