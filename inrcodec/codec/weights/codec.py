"""The weight mode, both directions: tiles of the shared sparse SIREN, each tile's
surviving weights fitted from the shared initialisation and stored. Two modes of it:

- format 5 (`RD`, the default): every tile fitted for distortion + lambda x rate with
  learned step sizes (rdfit.py), a ladder level per tile (rdencode.py, tilecode.py);
- formats 1 and 2 (`PAPER`): the paper's encoder, one level for every tile, a fixed
  number of Adam steps, step sizes by rule (session.py, quantiser.py); --quality picks
  level and step size from measured curves (ratecontrol.py). It fits the tiles of many images
  as one batch.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from ...config import DEFAULT_EFFORT
from ...errors import FormatError, InrcodecError
from ...io import LoadedImage
from ...model.accel import resolve_device
from ...model.file import load_named
from ...model.shared_model import SharedModel, load_model
from .. import bitstream, search
from ..entropy import CODERS
from ..mode import Mode
from ..options import EncodeOptions
from ..report import EncodeReport
from . import ratecontrol, rdencode, rdfit, tilecode
from .config import (PAPER_EFFORT_STEPS, PAPER_LR, PAPER_STEPS, RD_EFFORT, RD_QUALITY, FitConfig,
                     QuantConfig, rd_density, weight_lambda)
from .format import (PAPER_VERSION, PAPER_VERSIONS, RD_VERSION, Header, TileHeader, coded_payload,
                     qparams_section)
from .quantiser import DELTA, DeltaQuantiser, Fp16Quantiser
from .session import Result, Session
from .session import Settings as FixedSettings
from .tiles import render_groups

NAME = "weights"
# --bpp / --psnr in format 5 (search.by_curve). log2(bpp) and PSNR are close to linear in
# quality, with a slope that varies from image to image. Means over the 32 development
# photos at qualities 15 / 50 / 85 (inrcodec 0.4.1, benchmarks/results/rd-inrcodec-rd.json):
# log2 bpp -2.60 / -0.59 / 1.02, PSNR 24.02 / 29.53 / 33.81 dB.
RD_CURVE = {"bpp": search.Curve(50.0, -0.586, 0.052, aim=-0.05),
            "psnr": search.Curve(50.0, 29.53, 0.14, aim=0.15)}
RD_MAX_PROBES = 5


# -- format 5 ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RDSettings(search.Targets):
    """Format 5: quality (lambda = config.weight_lambda; default RD_QUALITY) or a bpp /
    psnr target, one level for every tile (default: candidates by quality), optimiser
    steps, effort (config.RD_EFFORT: candidate levels and the default steps), seed."""

    level: int | None = None
    steps: int = RD_EFFORT["default"][1]
    effort: str = "default"
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.effort not in RD_EFFORT:
            raise InrcodecError(f"unknown effort {self.effort!r}")
        if self.steps < 1:
            raise InrcodecError("format 5 needs at least one step")

    def check(self, m: SharedModel) -> None:
        if self.level is not None:
            m.check_level(self.level)

    def manifest(self, m: SharedModel) -> dict:
        return {"format_version": RD_VERSION, "effort": self.effort, "level": self.level,
                **self.targets()}


def rd_candidates(m: SharedModel, quality: float, n: int, level: int | None = None
                  ) -> list[rdencode.Candidate]:
    """Format 5's candidate levels, sparsest first: the level nearest rd_density(quality)
    and up to n - 1 more, each 3 pruning rounds sparser (nearest in density); `level`
    alone if given."""
    if level is not None:
        return [rdencode.Candidate(level)]
    ladder = [lv for lv in m.ladder() if lv["weights"] > 0]
    out: list[int] = []
    d = rd_density(quality)
    for _ in range(n):
        lv = min(ladder, key=lambda x: (abs(math.log(x["density"] / d)), -x["level"]))["level"]
        if lv not in out:
            out.append(lv)
        d *= 0.8 ** 3
    return [rdencode.Candidate(lv) for lv in reversed(out)]


def encode_rd(img: LoadedImage, m: SharedModel, s: RDSettings, progress=None, *, check,
              device=None) -> EncodeReport:
    """One image in format 5; a bpp / psnr target searches the quality (search.by_curve).
    The fit runs on `device`; the integers, the choice per tile and the coding stay on the
    CPU, so the file decodes the same on every machine."""
    dev = resolve_device(device)
    t0 = time.perf_counter()
    if s.target is not None:
        def at(q: int) -> EncodeReport:
            return encode_rd(img, m, replace(s, quality=q, bpp=None, psnr=None), progress,
                             check=check, device=device)
        r = search.by_curve(at, s.target, getattr(s, s.target), RD_CURVE[s.target],
                            RD_MAX_PROBES)
        return replace(r, seconds=time.perf_counter() - t0)
    h, w = img.pixels.shape[:2]
    q = RD_QUALITY if s.quality is None else s.quality
    cands = rd_candidates(m, q, RD_EFFORT[s.effort][0], s.level)
    cfg = rdfit.RDFitConfig(steps=s.steps, lam=weight_lambda(q), seed=s.seed)
    r = rdencode.encode(img, m, cands, cfg, dense_share=RD_EFFORT[s.effort][2],
                        progress=progress, device=dev)
    tiles = np.bincount(r.choice, minlength=len(r.options))
    levels: dict[int, int] = {}
    for o, n in zip(r.options, tiles):
        levels[o.level] = levels.get(o.level, 0) + int(n)
    return EncodeReport(data=r.data, mode=NAME, format_version=RD_VERSION, width=w, height=h,
                        image_mode=img.image_mode, level=max(levels), steps=s.steps,
                        params=int(sum(len(tilecode.layout(m, o)[0]) * int(n)
                                       for o, n in zip(r.options, tiles))),
                        psnr=check(r.data, img), seconds=time.perf_counter() - t0,
                        model_hash=m.hash, notices=list(img.notices), quality=q,
                        tiles=len(r.choice), levels=dict(sorted(levels.items())),
                        quantizer="learned", coder="laplace")


# -- formats 1 and 2: the paper's encoder ---------------------------------------------------------
@dataclass(frozen=True)
class PaperSettings(search.Targets):
    """Formats 1 and 2: fixed settings (level, steps, lr, quantiser, step scale, coder,
    share of quantiser-aware steps) or a rate target (quality: ratecontrol.py's path of level
    and step size; bpp, psnr: searched)."""

    level: int | None = None
    steps: int = PAPER_STEPS
    lr: float | None = None
    seed: int = 0
    quantizer: str = "delta"
    step_scale: float | None = None
    coder: str = "auto"
    qat_fraction: float | None = None
    version: int = PAPER_VERSION

    def __post_init__(self):
        super().__post_init__()
        if self.steps < 0:
            raise InrcodecError("steps must be zero or more")
        if self.quality is not None or self.target is not None:
            fixed = [k for k in ("level", "lr", "step_scale") if getattr(self, k) is not None]
            if fixed or self.quantizer != "delta" or self.version != PAPER_VERSION:
                knob = "quality" if self.quality is not None else self.target
                raise InrcodecError(
                    f"{knob} chooses the level, learning rate and quantiser itself; it "
                    f"cannot be combined with "
                    f"{', '.join(fixed) or 'another quantiser or format version'}")
            QuantConfig(coder=self.coder)
        else:
            self._quant()

    def _quant(self) -> QuantConfig:
        return QuantConfig(quantizer=self.quantizer,
                           step_scale=QuantConfig.step_scale if self.step_scale is None
                           else self.step_scale,
                           coder=self.coder, qat_fraction=self.qat_fraction)

    def fixed(self, m: SharedModel) -> FixedSettings:
        """The fixed settings these name (not for bpp / psnr targets)."""
        if self.quality is not None:
            return ratecontrol.quality_settings(m, self.quality, self.steps, self.coder)
        return FixedSettings(level=m.default_level if self.level is None else self.level,
                             steps=self.steps, lr=PAPER_LR if self.lr is None else self.lr,
                             quant=self._quant(), version=self.version)

    def check(self, m: SharedModel) -> None:
        if self.target is None:
            self.fixed(m).check(m)

    def manifest(self, m: SharedModel) -> dict:
        if self.quality is not None or self.target is not None:
            return {**self.targets(), "coder": self.coder}
        s = self.fixed(m)
        return {"level": s.level, "lr": s.lr, "quantizer": s.quant.quantizer,
                "step_scale": s.quant.step_scale, "coder": s.quant.coder}


def _report(r: Result, img: LoadedImage, m: SharedModel, seconds: float) -> EncodeReport:
    h, w = img.pixels.shape[:2]
    s = r.settings
    return EncodeReport(data=r.data, mode=NAME, format_version=s.version, width=w, height=h,
                        image_mode=img.image_mode, level=s.level, steps=s.steps,
                        params=m.net(s.level).n_params, psnr=r.psnr, seconds=seconds,
                        model_hash=m.hash, notices=list(img.notices),
                        tiles=-(-h // m.tile) * -(-w // m.tile), lr=s.lr,
                        quantizer=s.quant.quantizer, coder=CODERS[r.payload.coder],
                        step_scale=s.quant.step_scale if s.quant.quantizer == "delta" else None,
                        qat_steps=s.quant.qat_steps(s.steps) if r.qat else 0)


def encode_paper(images: list[LoadedImage], m: SharedModel, s: PaperSettings, progress=None,
                 *, check, device=None, batch_pixels: int | None = None
                 ) -> list[EncodeReport]:
    """Fixed settings and `quality` fit all images together (one batch of tiles); `bpp`
    and `psnr` search per image. Seconds are shared out over a batch's images by tiles."""
    dev = resolve_device(device)
    batch_pixels = batch_pixels or FitConfig.max_batch_pixels
    t0 = time.perf_counter()
    if s.target is not None:
        out = []
        for img in images:
            t1 = time.perf_counter()
            session = Session([img], m, dev, seed=s.seed, max_batch_pixels=batch_pixels,
                              progress=progress, measure=check)
            r, quality, found = ratecontrol.encode_target(session, bpp=s.bpp, psnr=s.psnr,
                                                          steps=s.steps, coder=s.coder)
            rep = _report(r, img, m, time.perf_counter() - t1)
            rep.quality, rep.search = quality, found.summary()
            out.append(rep)
        return out
    session = Session(images, m, dev, seed=s.seed, max_batch_pixels=batch_pixels,
                      progress=progress, measure=check)
    results = session.encode(s.fixed(m))
    seconds = time.perf_counter() - t0
    tiles = [im.targets.shape[0] for im in session.images]
    reports = [_report(r, img, m, seconds * n / sum(tiles))
               for r, img, n in zip(results, images, tiles)]
    for rep in reports:
        rep.quality = s.quality
    return reports


# -- decoding ------------------------------------------------------------------------------------
def model_for(h, model) -> SharedModel:
    """The shared model a weight-mode file names, checked against the file's tiles."""
    m = load_named(load_model, model, h.model_hash.hex(), "shared model")
    if h.tile != m.tile:
        raise FormatError(f"file tile size {h.tile} differs from the model's {m.tile}")
    return m


def read_tiles(data: bytes, model=None):
    """Parse and verify a format-5 file -> (header, model, render groups: (net, theta,
    raster indices of its tiles) per option)."""
    h = bitstream.verify(data)
    if not isinstance(h, TileHeader):
        raise FormatError(f"a version-{h.version} file has no level per tile")
    m = model_for(h, model)
    options, choice, qs = tilecode.decode(
        m, *(bitstream.section(data, h, k) for k in ("options", "map", "payload")),
        h.options, h.n_tiles)
    groups = [(m.net(o.level), tilecode.values(m, o, q), np.nonzero(choice == k)[0])
              for k, (o, q) in enumerate(zip(options, qs))]
    return h, m, [g for g in groups if len(g[2])]


def read(data: bytes, model=None) -> tuple[Header, SharedModel, torch.Tensor]:
    """Parse and verify a weight-mode file (one level for all tiles: versions 1 and 2)
    against its shared model -> (header, model, theta)."""
    h = bitstream.verify(data)
    if not isinstance(h, Header):
        raise FormatError("a version-5 file has a level per tile (use read_tiles)"
                          if isinstance(h, TileHeader) else
                          f"a version-{h.version} file has no tiles of weights")
    m = model_for(h, model)
    if h.level >= len(m.levels):
        raise FormatError(f"file uses level {h.level}; the model has {len(m.levels)} levels")
    net = m.net(h.level)
    if h.n_params != net.n_params:
        raise FormatError(f"file stores {h.n_params} values per tile, level {h.level} has "
                          f"{net.n_params}")
    # Only now, with the sizes checked against the model, is the payload decompressed.
    payload = coded_payload(data, h)
    if h.quantizer == DELTA:
        dq = DeltaQuantiser.from_qparams(net, m.levels[h.level].theta0,
                                         qparams_section(data, h), h.level)
        theta = dq.values(payload, h.n_tiles, h.coder, h.qbits)
    else:
        theta = Fp16Quantiser.values(payload, h.n_tiles, h.n_params)
    return h, m, theta


def decode(data: bytes, h, model, size: tuple[int, int], device=None) -> np.ndarray:
    """A verified weight-mode file (any of its versions) -> (height, width, 3) float32 in
    [0, 255] (unrounded), rendered at size = (width, height)."""
    if isinstance(h, TileHeader):
        h, m, groups = read_tiles(data, model)
    else:
        h, m, theta = read(data, model)
        groups = [(m.net(h.level), theta, np.arange(h.n_tiles))]
    dev = resolve_device(device)
    out = render_groups([(net, th.to(dev), ids) for net, th, ids in groups],
                        h.height, h.width, m.tile, size[1], size[0])
    # In place, (out + 1) * 127.5 without full-size float temporaries.
    out += 1.0
    out *= 127.5
    return out


def batch_pixels_for(m: SharedModel, device: torch.device,
                     memory_fraction: float = 0.5) -> int:
    """Pixels of tiles to fit in one batch: a GPU's free memory, else FitConfig's bound.

    On a GPU the whole batch runs as one pass (that is what fills the device). A fit step
    keeps, per pixel and hidden layer, the pre-activation and the activation (and autograd
    a copy for the backward), 4 bytes each; the estimate uses the dense widths, an upper
    bound for the compact path.
    """
    if device.type != "cuda":
        return FitConfig.max_batch_pixels
    free, _ = torch.cuda.mem_get_info(device)
    per_pixel = 4 * (3 * m.arch.depth * m.arch.width + 32)
    tiles_px = int(free * memory_fraction) // per_pixel
    # at least one 128x128 tile's worth, whatever the estimate says
    return int(min(max(tiles_px, 1 << 14), 1 << 26))


def _encode_one_paper(img: LoadedImage, m: SharedModel, s: PaperSettings, progress=None, *,
                      check, device=None) -> EncodeReport:
    return encode_paper([img], m, s, progress, check=check, device=device)[0]


# The paper's own options: any of them (or --preset paper) asks for format 2.
PAPER_OPTIONS = ("lr", "step_scale", "quantizer", "coder", "qat_fraction")


def settings_for(options: EncodeOptions) -> tuple[Mode, "RDSettings | PaperSettings"]:
    """The weight mode's format and settings from the encode options: format 5 unless the
    paper's preset, an older format or one of format 2's own options is asked for.
    `effort` sets the default steps and, in format 5, the candidate levels."""
    effort = options.effort or DEFAULT_EFFORT
    paper_given = [k for k in PAPER_OPTIONS if getattr(options, k) is not None]
    version = options.format_version
    if options.preset == "paper":
        if version == RD_VERSION or options.lr is not None:
            raise InrcodecError("preset paper is format 2 with lr 1e-4; drop format_version 5 "
                                "and lr")
        options = replace(options, lr=PAPER_LR)
    if version is None:
        version = PAPER_VERSION if options.preset or paper_given else RD_VERSION
    options = replace(options, preset=None, format_version=None)
    if version == RD_VERSION:
        return RD, options.build(RDSettings, "format 5 (it learns its step sizes and codes "
                                 "with its own priors)", effort=effort,
                                 steps=RD_EFFORT[effort][1])
    # a version no mode writes still goes to format 2's settings, which name the ones it can
    return PAPER, options.build(PaperSettings, f"format {version}", version=version,
                                steps=PAPER_EFFORT_STEPS[effort])


RD = Mode(name=NAME, header=TileHeader, writes=(RD_VERSION,), settings=RDSettings,
          load_model=load_model, encode=encode_rd, decode=decode, runtime=frozenset({"compute"}))
PAPER = Mode(name=NAME, header=Header, writes=PAPER_VERSIONS, settings=PaperSettings,
             load_model=load_model, encode=_encode_one_paper, decode=decode,
             encode_batch=encode_paper, batch_pixels=batch_pixels_for,
             runtime=frozenset({"compute", "amp", "compile", "batch_pixels"}))
