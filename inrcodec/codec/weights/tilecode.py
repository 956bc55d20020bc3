"""What is inside a format-5 (weight mode, rate-distortion) file's sections.

Every tile takes one of K options. An option is a ladder level and what its tiles store:
all the level's live parameters (kind 0) or its live biases only (kind 1); everything else
keeps the level's shared initialisation theta0. A stored value is theta0 + s_g q, with q an
integer and s_g the option's step size for tensor g (each layer's weights, each layer's
biases; tensors with nothing stored are skipped).

    options section:  per option: level (u8), kind (u8), G (u8: stored tensors), then per
                      stored tensor: step size (f32), m (u16), qmax (u16), little-endian
    map section:      K = 1: empty. Else K tile counts (u32), then the option index of
                      every tile in raster order, range-coded with frequencies derived
                      from the counts (prior.table_counts)
    payload section:  range-coded integers: option by option, tensor by tensor, the
                      integers of the option's tiles (raster order), parameter order within
                      a tile; each tensor under its discrete Laplace table (prior.table)

All coder tables come from integers (prior.py), so they are the same on every machine.
Field by field: bitstream_spec/README.md, "Version 5".
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import FormatError
from ...model.sparse import live_mask
from .. import prior
from .quantiser import MAX_STEP_SIZE, dequantize_delta, groups

KINDS = {0: "all", 1: "biases"}


@dataclass
class Option:
    level: int
    kind: int  # 0: every live parameter; 1: live biases only
    steps: np.ndarray  # (G,) float32 step size per stored tensor
    params: list[tuple[int, int]]  # (m, qmax) per stored tensor

    def pack(self) -> bytes:
        out = struct.pack("<BBB", self.level, self.kind, len(self.params))
        for s, (m, qmax) in zip(self.steps, self.params):
            out += struct.pack("<fHH", float(s), m, qmax)
        return out


def stored(net, biases_only: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """The parameters a tile stores (live ones; biases only if asked), as positions in the
    canonical order, and per tensor their columns among them (tensors with none are left
    out)."""
    keep = live_mask(net).copy()
    if biases_only:
        for _, _, w_off, n_w, _ in net.layout:
            keep[w_off:w_off + n_w] = False
    pos = np.nonzero(keep)[0]
    where = np.full(len(keep), -1)
    where[pos] = np.arange(len(pos))
    tensors = [where[g][where[g] >= 0] for g in groups(net)]
    return pos, [cols for cols in tensors if len(cols)]


def layout(model, option: Option):
    """(stored positions, per-tensor columns) of an option, from the model's level."""
    return stored(model.net(option.level), option.kind == 1)


def encode(model, options: list[Option], choice: np.ndarray, q: list[np.ndarray]
           ) -> tuple[bytes, bytes, bytes]:
    """The three sections. choice (n_tiles,) option per tile; q[k] the integers (tiles of
    option k in raster order, stored parameters), whose priors options[k].params hold."""
    side = b"".join(o.pack() for o in options)
    counts = np.bincount(choice, minlength=len(options))
    tmap = b""
    if len(options) > 1:
        tmap = counts.astype("<u4").tobytes() + prior.encode_symbols(
            choice, prior.table_counts(counts))
    parts, params = [], []
    for o, qk in zip(options, q):
        _, tensors = layout(model, o)
        for cols, p in zip(tensors, o.params):
            parts.append(qk[:, cols])
            params.append(p)
    return side, tmap, prior.encode_tensors(parts, params)


def read_options(model, side: bytes, n_options: int) -> list[Option]:
    options, off = [], 0
    for _ in range(n_options):
        if off + 3 > len(side):
            raise FormatError("options section is truncated")
        level, kind, g = struct.unpack_from("<BBB", side, off)
        off += 3
        if level >= len(model.levels):
            raise FormatError(f"option uses level {level}; the model has {len(model.levels)}")
        if kind not in KINDS:
            raise FormatError(f"unknown option kind {kind}")
        _, tensors = layout(model, Option(level, kind, np.zeros(0), []))
        if g != len(tensors):
            raise FormatError(f"option (level {level}, kind {kind}) declares {g} tensors; "
                              f"the model stores {len(tensors)}")
        if off + 8 * g > len(side):
            raise FormatError("options section is truncated")
        steps, params = [], []
        for _ in range(g):
            s, m, qmax = struct.unpack_from("<fHH", side, off)
            off += 8
            if not (np.isfinite(s) and 0 < s <= MAX_STEP_SIZE):
                raise FormatError(f"step size {s} is not in (0, {MAX_STEP_SIZE:g}]")
            prior.check_params(m, qmax)
            steps.append(s)
            params.append((m, qmax))
        options.append(Option(level, kind, np.array(steps, dtype=np.float32), params))
    if off != len(side):
        raise FormatError(f"{len(side) - off} unexpected bytes in the options section")
    if len({(o.level, o.kind) for o in options}) != len(options):
        raise FormatError("two options name the same level and kind")
    return options


def decode(model, side: bytes, tmap: bytes, payload: bytes, n_options: int, n_tiles: int
           ) -> tuple[list[Option], np.ndarray, list[np.ndarray]]:
    """-> (options, option of every tile, per option the (tiles, stored) integers of its
    tiles in raster order; `values` turns them into parameters)."""
    options = read_options(model, side, n_options)
    if n_options == 1:
        if tmap:
            raise FormatError("a file with one option has no tile map")
        choice = np.zeros(n_tiles, dtype=np.int64)
    else:
        if len(tmap) < 4 * n_options:
            raise FormatError("tile map section is truncated")
        counts = np.frombuffer(tmap[:4 * n_options], dtype="<u4").astype(np.int64)
        if counts.sum() != n_tiles or (counts == 0).any():
            raise FormatError("tile map counts disagree with the tile grid")
        f = prior.table_counts(counts)
        choice = prior.decode_symbols(tmap[4 * n_options:], n_tiles, f)
        if not np.array_equal(np.bincount(choice, minlength=n_options), counts):
            raise FormatError("tile map disagrees with its counts")
    sizes, params, shapes = [], [], []
    for k, o in enumerate(options):
        n_k = int((choice == k).sum())
        pos, tensors = layout(model, o)
        for cols, p in zip(tensors, o.params):
            sizes.append(n_k * len(cols))
            params.append(p)
        shapes.append((n_k, pos, tensors))
    flat = prior.decode_tensors(payload, sizes, params)
    qs, i = [], 0
    for o, (n_k, pos, tensors) in zip(options, shapes):
        q = np.zeros((n_k, len(pos)), dtype=np.int64)
        for cols in tensors:
            q[:, cols] = flat[i].reshape(n_k, len(cols))
            i += 1
        qs.append(q)
    return options, choice, qs


def values(model, o: Option, q: np.ndarray) -> torch.Tensor:
    """(n, stored) integers -> (n, P) float32 parameters: theta0 + s q where stored."""
    theta0 = model.levels[o.level].theta0.detach().float().numpy()
    return dequantize(theta0, *layout(model, o), o.steps, q)


def dequantize(theta0: np.ndarray, pos: np.ndarray, tensors: list[np.ndarray],
               steps: np.ndarray, q: np.ndarray) -> torch.Tensor:
    """theta0 + s_g q at the stored positions (version 2's float32 arithmetic)."""
    step = np.ones(len(theta0), dtype=np.float32)
    for s, cols in zip(steps, tensors):
        step[pos[cols]] = s
    mask = np.zeros(len(theta0), dtype=bool)
    mask[pos] = True
    return dequantize_delta(q, theta0, step, mask)
