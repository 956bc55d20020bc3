"""The weight mode's rate-distortion encoder (format 5): a level per tile.

Every candidate option (a ladder level, storing all its live parameters or its biases
only) is fitted over all tiles to D + lambda R (codec/weights/rdfit.py). Each tile then takes the
option with the smallest J = squared error + lambda x bits, where its bits are the ideal
code length under each option's per-tensor priors. The priors actually written are fitted
again on the tiles that chose each option; options no tile chose are dropped. The ladder
is nested, so one training run gives every candidate: this is where a ladder pays.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...io import LoadedImage, alpha_plane
from ...model.shared_model import SharedModel
from .. import prior
from . import rdfit, tilecode
from .format import write_tiles
from .session import colour_target
from .tiles import image_to_tiles, tile_coords


@dataclass(frozen=True)
class Candidate:
    level: int
    biases_only: bool = False


@dataclass
class Chosen:
    data: bytes
    options: list[tilecode.Option]
    choice: np.ndarray  # option per tile


def encode(img: LoadedImage, m: SharedModel, candidates: list[Candidate],
           cfg: rdfit.RDFitConfig, *, dense_share: float = 1.0,
           progress: Callable[[float, int, float], None] | None = None,
           device=None) -> Chosen:
    """candidates[0] is fitted on every tile; the others only on the `dense_share` of
    tiles with the largest squared error under candidates[0] (the tiles that can gain)."""
    h, w = img.pixels.shape[:2]
    targets, weights = image_to_tiles(colour_target(img), m.tile)
    coords = tile_coords(m.tile)
    n = targets.shape[0]
    fits, rows = [], []
    n_more = min(n, max(1, int(round(dense_share * n))))
    total = int(round(cfg.steps * (1 + (len(candidates) - 1) * n_more / n)))
    for k, c in enumerate(candidates):
        idx = np.arange(n) if k == 0 else np.sort(np.argsort(-fits[0].sse, kind="stable")[:n_more])
        done0 = 0 if k == 0 else cfg.steps * (1 + (k - 1) * n_more / n)
        share = len(idx) / n

        def report(done, steps, loss, done0=done0, share=share):
            if progress is not None:
                progress(min(done0 + done * share, total), total, loss)
        sel = torch.from_numpy(idx)
        fits.append(rdfit.fit(m.net(c.level), m.levels[c.level].theta0, coords,
                              targets[sel], weights[sel], cfg, biases_only=c.biases_only,
                              progress=report, device=device))
        rows.append(idx)
    j = np.full((len(candidates), n), np.inf)  # J of every tile at every candidate
    for k, (f, idx) in enumerate(zip(fits, rows)):
        j[k, idx] = f.sse + cfg.lam * f.bits
    choice = np.argmin(j, axis=0)
    used = [k for k in range(len(candidates)) if (choice == k).any()]
    options, q = [], []
    for k in used:
        c, f = candidates[k], fits[k]
        qk = f.q[choice[rows[k]] == k]
        params = [prior.fit_m(qk[:, cols]) for cols in f.tensors]
        options.append(tilecode.Option(c.level, int(c.biases_only), f.steps, params))
        q.append(qk)
    remap = np.full(len(candidates), -1)
    remap[used] = np.arange(len(used))
    choice = remap[choice]
    side, tmap, payload = tilecode.encode(m, options, choice, q)
    data = write_tiles(model_hash=m.hash, width=w, height=h, image_mode=img.image_mode,
                             tile=m.tile, n_options=len(options), options=side,
                             tile_map=tmap, payload=payload, alpha_plane=alpha_plane(img))
    return Chosen(data, options, choice)
