"""The latent mode's file format (versions 3, 4, 6 and 7): its header fields, its whole files
(`write`) and the synthesis section. bitstream.py lays the header and the sections out in
a file; arm.py codes the latents section and the autoregressive model's parameters.

Sections, in file order:
- synthesis: per tensor of the flat parameter vector (synthesis.py: the layers, then in
  version 7 with a learned upsampling its taps), only the entries the level keeps with a
  shared model, one byte k (step size 2^-k), u16 m and u16 qmax of its discrete Laplace
  prior (codec/prior.py), then the range-coded integers of every tensor; empty with a
  shared model: no deltas;
- arm: the fixed-point autoregressive model (arm.py, ArmParams.to_bytes), or empty:
  the shared model's;
- latents: u16 qmax per grid, then the grids coded by that model (arm.py; version 6
  codes with the Laplace's mass per unit bin, 3 and 4 with its density at the integers);
- alpha: the zstd-compressed 8-bit alpha plane (0 bytes if none).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ...errors import FormatError
from .. import bitstream, prior
from ..header import (IMAGE_MODE_IDS, MAGIC, MAX_SECTION, Field, ImageHeader, common_fields,
                      validate_alpha_len, validate_image)
from .config import UPSAMPLING, LatentArch
from .layout import synthesis_tensors

LATENT_VERSION = 7  # what the encoder writes; LatentHeader.LAYOUTS: what the decoder reads
BINNED = 6  # from this version on, the latents' tables are binned (arm._Tables)
ACTIVATIONS = {0: "relu", 1: "sine"}
UPSAMPLINGS = dict(enumerate(UPSAMPLING))  # version 7's upsample field
NO_MODEL = bytes(32)  # model_hash of a self-contained file
K_MIN, K_MAX = 2, 16  # synthesis step sizes 2^-k

_SHARED_HASH = ("SHA-256 of the latent shared model the synthesis starts from and whose "
                "entropy model codes the latents; all zero: none (self-contained file)")
_ARCH = (
    Field("levels", "B", "latent grids, 1..12; grid k is ceil(height/2^k) x ceil(width/2^k)"),
    Field("hidden", "B", "synthesis hidden width, 1..255"),
    Field("layers", "B", "synthesis hidden layers, 1..8"),
    Field("act", "B", "synthesis activation: 0 ReLU, 1 sine"),
    Field("w0", "H", "sine frequency factor (1..65535; act 1 only, else 0)"),
)
FIELDS_V3 = common_fields(3, "latent mode", "SHA-256 of the shared model needed to decode; "
                          "all zero: none") + _ARCH + (
    Field("synth_len", "I", "bytes of the synthesis parameters section"),
    Field("arm_len", "I", "bytes of the autoregressive model section"),
    Field("latent_len", "I", "bytes of the latent grids section"),
    Field("alpha_len", "I", "bytes of the zstd-compressed alpha plane (0 if none)"),
)


def _fields_shared(version: int) -> tuple[Field, ...]:
    """Versions 4, 6 and 7 (6 bins the latents' probability tables; 7 adds the upsampling)."""
    up = (Field("upsample", "B", "how the grids reach the image's size: 0 bilinear, "
                "1 bicubic, 2 learned (taps in the synthesis)"),) if version >= 7 else ()
    return common_fields(version, "latent mode", _SHARED_HASH) + (
        Field("level", "B", "ladder level of the shared model (0 without one)"),
        _ARCH[0],
        Field("coords", "B", "1: the pixel's two coordinates are synthesis inputs too; else 0"),
    ) + up + _ARCH[1:] + (
        Field("synth_len", "I", "bytes of the synthesis section (0 with a shared model: no "
              "deltas)"),
        Field("arm_len", "I", "bytes of the autoregressive model section (0: the shared "
              "model's)"),
        Field("latent_len", "I", "bytes of the latent grids section"),
        Field("alpha_len", "I", "bytes of the zstd-compressed alpha plane (0 if none)"),
    )


FIELDS_V4, FIELDS_V6, FIELDS_V7 = _fields_shared(4), _fields_shared(6), _fields_shared(7)


@dataclass(frozen=True)
class LatentHeader(ImageHeader):
    """Format versions 3, 4, 6 and 7: an image as latent grids decoded by a synthesis
    network. Version 3 has no level and no coordinates (both read as 0) and is
    self-contained; before 7 the upsampling is the shared model's, else bilinear."""

    LAYOUTS = {3: FIELDS_V3, 4: FIELDS_V4, 6: FIELDS_V6, 7: FIELDS_V7}
    NAMES = {"act": ACTIVATIONS, "upsample": UPSAMPLINGS}

    version: int
    flags: int
    model_hash: bytes
    width: int
    height: int
    image_mode: int
    levels: int
    hidden: int
    layers: int
    act: int
    w0: int
    synth_len: int
    arm_len: int
    latent_len: int
    alpha_len: int
    magic: bytes = MAGIC
    level: int = 0  # versions 4, 6 and 7
    coords: int = 0  # versions 4, 6 and 7
    upsample: int = 0  # version 7

    @property
    def shared(self) -> bool:
        return any(self.model_hash)

    @property
    def binned(self) -> bool:
        """Whether the latents are coded with binned tables (arm._Tables)."""
        return self.version >= BINNED

    def sections(self) -> list[tuple[str, int]]:
        return [("synthesis", self.synth_len), ("arm", self.arm_len),
                ("latents", self.latent_len), ("alpha", self.alpha_len)]

    def validate(self) -> None:
        h = self
        validate_image(h)
        if not 1 <= h.levels <= 12 or not 1 <= h.hidden or not 1 <= h.layers <= 8:
            raise FormatError(f"latent architecture (levels {h.levels}, hidden {h.hidden}, "
                              f"layers {h.layers}) is out of range")
        if h.act not in ACTIVATIONS or (h.act == 1) != (h.w0 > 0):
            raise FormatError(f"activation {h.act} with w0 {h.w0} is invalid")
        if h.version == 3 and h.shared:
            raise FormatError("a version-3 file names no shared model (model_hash must be zero)")
        if h.coords not in (0, 1):
            raise FormatError(f"coords field {h.coords} is not 0 or 1")
        if h.upsample not in UPSAMPLINGS:
            raise FormatError(f"upsample field {h.upsample} is not 0, 1 or 2")
        if not h.shared and (h.level or h.synth_len == 0 or h.arm_len == 0):
            raise FormatError("a self-contained latent file needs its synthesis and its "
                              "autoregressive model, and has no level")
        if (h.arm_len % 2 == 0 and h.arm_len) or h.latent_len < 2 * h.levels or \
                (h.latent_len - 2 * h.levels) % 4:
            raise FormatError("latent sections have impossible lengths")
        if max(h.synth_len, h.arm_len, h.latent_len, h.alpha_len) > MAX_SECTION:
            raise FormatError("a section is larger than any valid file's")
        validate_alpha_len(h)


def arch_of(h: LatentHeader) -> LatentArch:
    """The architecture a latent-mode header declares (before version 7 a shared model's
    upsampling is the model's)."""
    try:
        return LatentArch(levels=h.levels, hidden=h.hidden, layers=h.layers,
                          act=ACTIVATIONS[h.act], w0=float(h.w0 or 30),
                          arm_hidden=1, coords=bool(h.coords),  # the ARM states its width
                          upsample=UPSAMPLINGS[h.upsample])
    except ValueError as e:
        raise FormatError(str(e)) from None


def write(*, model_hash: bytes, width: int, height: int, image_mode: str, levels: int,
          hidden: int, layers: int, act: str, w0: int, synthesis: bytes, arm: bytes,
          latents: bytes, alpha_plane: bytes | None = None, level: int = 0,
          coords: bool = False, upsample: str = "bilinear", version: int = LATENT_VERSION
          ) -> bytes:
    """A whole latent-mode file from its coded sections and, for LA/RGBA, the raw alpha.
    Version 3 has no level, no coordinates and no shared model; before 7, no upsample."""
    if version == 3 and (level or coords or any(model_hash)):
        raise ValueError("version 3 has no level, coordinates or shared model")
    if version < 7 and upsample == "learned":
        raise ValueError("a learned upsampling needs version 7")
    flags, alpha = bitstream.alpha_of(alpha_plane)
    act_id = {v: k for k, v in ACTIVATIONS.items()}[act]
    up = UPSAMPLING.index(upsample) if version >= 7 else 0
    h = LatentHeader(version=version, flags=flags, level=level, coords=int(coords), upsample=up,
                     model_hash=model_hash, width=width, height=height,
                     image_mode=IMAGE_MODE_IDS[image_mode], levels=levels, hidden=hidden,
                     layers=layers, act=act_id, w0=w0 if act == "sine" else 0,
                     synth_len=len(synthesis), arm_len=len(arm), latent_len=len(latents),
                     alpha_len=len(alpha))
    return bitstream.pack_sections(h, {"synthesis": synthesis, "arm": arm, "latents": latents,
                                       "alpha": alpha})


# -- the synthesis section ---------------------------------------------------------------------
def _entries(arch: LatentArch, mask: np.ndarray | None) -> list[np.ndarray]:
    """Per tensor of the flat vector, the indices a file codes (with a shared model only
    the level's surviving entries; the mask is implicit in the model)."""
    out = []
    for s in synthesis_tensors(arch):
        idx = np.arange(s.start, s.stop)
        out.append(idx if mask is None else idx[mask[s]])
    return out


def pack_synthesis(theta: np.ndarray, arch: LatentArch, k: int,
                   base: np.ndarray | None = None, mask: np.ndarray | None = None,
                   k_taps: int | None = None) -> bytes:
    """Quantise every tensor (its deltas from `base` at `mask`, with a shared model) to step
    2^-k (a learned upsampling's taps to 2^-k_taps, default k) and code it with its own
    discrete Laplace."""
    parts, params, head = [], [], b""
    d = theta.astype(np.float64) - (0.0 if base is None else base.astype(np.float64))
    entries = _entries(arch, mask)
    ks = [k] * len(entries)
    if arch.up_params and k_taps is not None:
        ks[-1] = k_taps
    for idx, k in zip(entries, ks):
        q = np.round(d[idx] * (1 << k)).astype(np.int64)
        q = np.clip(q, -prior.MAX_QMAX, prior.MAX_QMAX)
        m, qmax = prior.fit_m(q)
        parts.append(q)
        params.append((m, qmax))
        head += struct.pack("<BHH", k, m, qmax)
    return head + prior.encode_tensors(parts, params)


def unpack_synthesis(data: bytes, arch: LatentArch, base: np.ndarray | None = None,
                     mask: np.ndarray | None = None) -> np.ndarray:
    theta = np.zeros(arch.n_params(), dtype=np.float32) if base is None else base.copy()
    if base is not None and not data:
        return theta  # no deltas: the shared initialisation as is
    entries = _entries(arch, mask)
    n = 5 * len(entries)
    if len(data) < n or (len(data) - n) % 4:
        raise FormatError("synthesis section has an impossible length")
    heads = [struct.unpack_from("<BHH", data, 5 * i) for i in range(len(entries))]
    if any(not K_MIN <= k <= K_MAX for k, _, _ in heads):
        raise FormatError("synthesis step size out of range")
    qs = prior.decode_tensors(data[n:], [len(i) for i in entries],
                              [(m, qmax) for _, m, qmax in heads])
    for idx, q, (k, _, _) in zip(entries, qs, heads):
        # exact: integer / 2^k, plus a float32 base, in float64 then rounded once
        theta[idx] = (theta[idx].astype(np.float64) + q.astype(np.float64) / (1 << k)
                      ).astype(np.float32)
    return theta
