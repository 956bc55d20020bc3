"""The latent mode (format versions 3, 4, 6 and 7), both directions: an image as a pyramid of
integer latent grids (grids.py), entropy-coded by a fixed-point autoregressive model
(arm.py), and a small synthesis network (synthesis.py) that maps the upsampled latents of
each pixel (and its coordinates) to its colour (Cool-chic's design).

Version 4 and 6 files name a latent shared model (model.py): the fit (fit.py) starts the
synthesis from one of its levels and codes the latents with its frozen ARM, so a file
sends its latents and the quantised deltas of the level's surviving synthesis entries
(or none). Without a shared model (version 3, and 4 or 6 with a zero hash) a file
carries its whole synthesis and ARM, fitted from scratch. Header and sections: format.py.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

import numpy as np

from ...config import DEFAULT_EFFORT
from ...errors import FormatError, InrcodecError
from ...io import LoadedImage, alpha_plane, rgb_of
from ...model.file import load_named
from .. import bitstream, search
from ..mode import Mode
from ..options import EncodeOptions
from ..report import EncodeReport
from . import arm, stream
from .config import (COARSE_DETAIL, COARSE_SHARES, COARSE_WHOLE, EFFORT_STEPS, QUALITY,
                     STEPS, LatentArch, LatentFit, latent_lambda)
from .format import (LATENT_VERSION, NO_MODEL, LatentHeader, arch_of, pack_synthesis,
                     unpack_synthesis, write)
from .layout import grid_shapes
from .model import LatentModel, load_latent_model, shipped_latent_model

if TYPE_CHECKING:
    from .fit import Fitted, Start
# The encoder's own modules (the fit, with torch) are imported where it starts, so that a
# decode loads none of them.

NAME = "latent"
# --psnr: real encodes on this grid of qualities, by bisection (search.on_grid).
TARGET_QUALITIES = (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
CHOICE_PIXELS = 1 << 17  # pixels that judge the synthesis step size
TRIM_OPTIONS = 1  # synthesis options tried with trimmed latents when a file is over budget
SYNTH_STEPS = range(4, 13)  # the synthesis step sizes 2^-k a file may take
TAP_STEPS = (6, 8, 10)  # and those of a learned upsampling's taps (with each of the above)


@dataclass(frozen=True)
class Settings(search.Targets):
    """What decides a latent-mode file's bytes besides the image and the model: quality
    (lambda = config.latent_lambda; default QUALITY) or a bpp / psnr target, the
    model's ladder level (default: the model's), optimiser steps and the seed."""

    level: int | None = None
    steps: int = STEPS
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.steps < 1:
            raise InrcodecError("the latent mode needs at least one step")

    def check(self, model: LatentModel) -> None:
        if self.level is not None:
            model.check_level(self.level)

    def manifest(self, model: LatentModel) -> dict:
        """The settings a dataset manifest records (with the model hash, seed and steps)."""
        return {"mode": NAME, "quality": self.quality,
                **({"level": self.level} if self.level is not None else {}),
                **{k: v for k, v in self.targets().items() if k != "quality"}}


def settings_for(options: EncodeOptions) -> tuple[Mode, Settings]:
    """The latent mode's settings from the encode options (steps by effort when not given);
    an option it does not take is refused by name."""
    steps = EFFORT_STEPS[options.effort or DEFAULT_EFFORT] if options.steps is None \
        else options.steps
    return MODE, options.build(Settings, "the latent mode", steps=steps)


# -- encoding ------------------------------------------------------------------------------------
def compress(img: np.ndarray, image_mode: str, alpha: bytes | None, fs: LatentFit,
             model: LatentModel | None = None, level: int = 0, arch: LatentArch | None = None,
             progress=None, start: Start | None = None, device=None,
             budget: int | None = None) -> bytes:
    """(H, W, 3) uint8 -> a version-7 file. With a shared latent model (its `level`) the
    synthesis starts from the model and the file sends the deltas of the level's entries;
    without, a self-contained file (`arch`, default LatentArch()). The synthesis step size
    (or, with a model, sending no deltas) is chosen by D + lambda R on a lattice of pixels.
    `start` overrides the model's level (for ablations: a random init, the model's ARM).
    With a `budget` (bytes) the file fits in it (see `pack`).
    The fit runs on `device`; coding and the choice of step size stay on the CPU, so the
    file decodes the same on every machine."""
    from .fit import Start
    if model is not None:
        model.check_level(level)
        start = start or Start.of(model, level)
        arch = model.arch
    arch = arch or LatentArch()
    f = fit_image(img, arch, fs, progress, start, device)
    return pack(img, image_mode, alpha, f, fs.lam, arch, model, level, start, budget)[0]


def detail(img: np.ndarray) -> float:
    """The mean square (in [0, 1] units) of the photo less its 2x2 block means: what its
    finest octave holds, which a fit at half its size cannot see."""
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    x = img[:h, :w].astype(np.float32) / 255.0
    m = x.reshape(h // 2, 2, w // 2, 2, -1).mean((1, 3), dtype=np.float32)
    return float(np.mean((x.reshape(h // 2, 2, w // 2, 2, -1) - m[:, None, :, None]) ** 2,
                         dtype=np.float64))


def coarse_plan(img: np.ndarray, arch: LatentArch, fs: LatentFit) -> LatentFit:
    """fs with its fits at reduced sizes decided: an explicit coarse_first stays as it is;
    "auto" becomes COARSE_SHARES of the steps at those sizes and COARSE_WHOLE of them
    whole, from fs.coarse_above pixels up to the tiled fit's, with a finest octave of at
    most COARSE_DETAIL x lambda (a learned upsampling, 3 grids or more), else none ("")."""
    if fs.coarse_first != "auto":
        return fs
    n = img.shape[0] * img.shape[1]
    if not (0 < fs.coarse_above <= n and not 0 < fs.tiles_above < n
            and arch.upsample == "learned" and arch.levels > 2
            and detail(img) <= COARSE_DETAIL * fs.lam):
        return replace(fs, coarse_first="")
    return replace(fs, steps=max(1, round(COARSE_WHOLE * fs.steps)), coarse_first="/".join(
        f"{s}:{round(share * fs.steps)}" for s, share in COARSE_SHARES))


def fit_image(img: np.ndarray, arch: LatentArch, fs: LatentFit, progress=None,
              start: Start | None = None, device=None, steer=None) -> Fitted:
    """The fit an image takes: fit.fit, or above fs.tiles_above pixels (with a learned
    upsampling) tiled.fit_tiled: the same steps, computed tile by tile. Without tiles or
    a steer, `coarse_plan`'s fits at reduced sizes come first, each from the last;
    `progress` counts the steps of all."""
    if 0 < fs.tiles_above < img.shape[0] * img.shape[1] and arch.upsample == "learned":
        from .tiled import fit_tiled
        return fit_tiled(img, arch, fs, progress, start, device, steer)
    from .fit import fit
    fs = coarse_plan(img, arch, fs) if steer is None else replace(fs, coarse_first="")
    plan = fs.coarse_plan()
    total, done, f = sum(n for _, n in plan) + fs.steps, 0, None
    for s, n in plan:
        part = None if progress is None else \
            (lambda t, _, mse, d=done: progress(d + t, total, mse))
        f = fit(img, arch, replace(fs, steps=n), part, start, device, init=f, shrink=s)
        done += n
    part = progress if progress is None or not plan else \
        (lambda t, _, mse: progress(done + t, total, mse))
    return fit(img, arch, fs, part, start, device, steer, init=f)


def pack(img: np.ndarray, image_mode: str, alpha: bytes | None, f: Fitted, lam: float,
         arch: LatentArch, model: LatentModel | None, level: int, start: Start | None,
         budget: int | None = None) -> tuple[bytes, float, int]:
    """A fit -> (its file, how deep its latents were trimmed (ratecontrol.trim's depth;
    0 if not; reports call it "dead_zone"), the size of its latent section). The synthesis
    option is the one with the least D + lambda R. With a `budget` that file does not fit,
    the file is the one of least distortion among: the best option that fits as it is,
    and the TRIM_OPTIONS best options each with its latents trimmed (ratecontrol.trim) to
    the bytes left."""
    from . import ratecontrol
    from .fit import LIM
    h, w = img.shape[:2]
    own_arm = model is None or start.arm is None
    latents = arm.encode_section(f.latents, f.arm)
    arm_bytes = f.arm.to_bytes() if own_arm else b""
    base = mask = None
    if model is not None:
        base = start.theta.numpy().astype(np.float32)
        mask = start.mask.numpy()
    options = ([b""] if model is not None else []) + [
        pack_synthesis(f.theta, arch, k, base, mask, kt) for k in SYNTH_STEPS
        for kt in (TAP_STEPS if arch.up_params else (None,))]
    mses = _synthesis_mse(img, arch, f.latents, options, base, mask)
    fixed = (bitstream.header_size(LATENT_VERSION) + bitstream.CRC_SIZE
             + len(bitstream.alpha_of(alpha)[1]) + len(arm_bytes))
    order = sorted(range(len(options)), key=lambda i: mses[i] + lam * 8 * (
        len(options[i]) + len(latents) + len(arm_bytes)) / (h * w))
    synth, tau = options[order[0]], 0.0
    if budget is not None and fixed + len(synth) + len(latents) > budget:
        room = budget - fixed
        whole = [i for i in order if len(options[i]) + len(latents) <= room]
        found = [(mses[i], options[i], latents, 0.0) for i in whole[:1]]
        for i in order[:TRIM_OPTIONS]:
            if i in whole:
                continue
            try:
                q, section, t = ratecontrol.trim(f.values, f.arm, room - len(options[i]), LIM)
            except ValueError:
                continue
            d = _synthesis_mse(img, arch, q, [options[i]], base, mask)[0]
            found.append((d, options[i], section, t))
        if not found:
            raise InrcodecError(f"{8 * budget / (h * w):.4g} bpp is below the smallest "
                                "latent-mode file for this image")
        _, synth, latents, tau = min(found, key=lambda c: c[0])
    data = write(model_hash=bytes.fromhex(model.hash) if model is not None else NO_MODEL,
                 width=w, height=h, image_mode=image_mode, levels=arch.levels, hidden=arch.hidden,
                 layers=arch.layers, act=arch.act, w0=int(arch.w0) if arch.act == "sine" else 0,
                 synthesis=synth, arm=arm_bytes, latents=latents, alpha_plane=alpha,
                 level=level if model is not None else 0, coords=arch.coords,
                 upsample=arch.upsample)
    return data, tau, len(latents)


def _synthesis_mse(img, arch, latents: list[np.ndarray], options, base, mask) -> list[float]:
    """Each synthesis option's MSE, with these integer latents, on a lattice of about 2^17
    pixels (the full render is the check-decode's): the choice costs the same at any size."""
    import torch

    from .grids import features_lattice, lattice
    from .synthesis import synthesize_cf, taps
    h, w = img.shape[:2]
    stride = max(1, math.ceil(math.sqrt(h * w / CHOICE_PIXELS)))
    phase = (min(stride // 2, h - 1), min(stride // 2, w - 1))
    grids = [torch.from_numpy(g.astype(np.float32)) for g in latents]
    rows, cols = lattice(h, w, stride, phase)
    ref = img[rows, cols].reshape(-1, 3).T.astype(np.float64) / 255.0
    out, feats = [], {}  # features per distinct taps (a few), not per option
    with torch.no_grad():
        for synth in options:
            theta_q = torch.from_numpy(unpack_synthesis(synth, arch, base, mask))
            t = taps(arch, theta_q)
            key = None if t is None else t.numpy().tobytes()
            if key not in feats:
                feats[key] = features_lattice(arch, grids, h, w, stride, phase, t)
            rgb = synthesize_cf(arch, theta_q, feats[key]).clamp_(0, 1).double().numpy()
            out.append(float(np.mean((np.round(rgb * 255) / 255 - ref) ** 2)))
    return out


def encode(img: LoadedImage, model: LatentModel, settings: Settings, progress=None, *,
           check: Callable[[bytes, LoadedImage], float], device=None) -> EncodeReport:
    """One image -> its file and report; `check` decodes a file and gives its PSNR (the
    encoder's check-decode). A bpp target runs a pilot fit and one full fit
    (ratecontrol.py); a psnr target searches the quality with whole encodes (search.on_grid)."""
    from ...model.accel import resolve_device
    t0 = time.perf_counter()
    if settings.target == "bpp":
        return _encode_to_bpp(img, model, settings, progress, check, device, t0)
    if settings.target is not None:
        def at(q: int) -> EncodeReport:
            return encode(img, model, replace(settings, quality=q, bpp=None, psnr=None),
                          progress, check=check, device=device)
        r = search.on_grid(at, settings.target, getattr(settings, settings.target),
                           TARGET_QUALITIES, "latent-mode ")
        return replace(r, seconds=time.perf_counter() - t0)
    quality = QUALITY if settings.quality is None else settings.quality
    level = model.default_level if settings.level is None else settings.level
    rgb = rgb_of(img)
    fs = coarse_plan(rgb, model.arch, LatentFit(steps=settings.steps,
                                                lam=latent_lambda(quality), seed=settings.seed))
    data = compress(rgb, img.image_mode, alpha_plane(img), fs, model, level,
                    progress=progress, device=resolve_device(device))
    r = _report(data, img, model, level, settings.steps, quality, check, t0)
    if fs.coarse_first:
        r.notices.append("fitted coarse first (a big photo, little fine detail): " + ", ".join(
            f"{n} steps at 1/{1 << s} of its size" for s, n in fs.coarse_plan())
            + f", then {fs.steps} whole")
    return r


def _report(data: bytes, img: LoadedImage, model: LatentModel, level: int, steps: int,
            quality: float, check, t0: float, search: dict | None = None) -> EncodeReport:
    h, w = img.pixels.shape[:2]
    return EncodeReport(data=data, mode=NAME, format_version=LATENT_VERSION, width=w,
                        height=h, image_mode=img.image_mode, level=level, steps=steps,
                        params=int(model.masks[level].sum()), psnr=check(data, img),
                        seconds=time.perf_counter() - t0, model_hash=model.hash,
                        notices=list(img.notices), quality=quality, search=search)


def _encode_to_bpp(img: LoadedImage, model: LatentModel, settings: Settings, progress,
                   check, device, t0: float) -> EncodeReport:
    """The file within settings.bpp, in about one encode's time: a pilot fit at a first
    guess of lambda, one full fit at the lambda the pilot points to, then the latents
    trimmed if the file is over (ratecontrol.py)."""
    from ...model.accel import resolve_device
    from . import ratecontrol
    from .fit import Start
    h, w = img.pixels.shape[:2]
    budget = int(settings.bpp * h * w / 8)
    level = model.default_level if settings.level is None else settings.level
    model.check_level(level)
    start = Start.of(model, level)
    rgb, alpha, dev = rgb_of(img), alpha_plane(img), resolve_device(device)
    if budget <= bitstream.header_size(LATENT_VERSION) + bitstream.CRC_SIZE:
        raise InrcodecError(f"{settings.bpp:g} bpp is below the smallest latent-mode file "
                            f"for this image ({budget} bytes: not even a header)")
    pilot_steps = max(1, round(ratecontrol.PILOT * settings.steps))
    total = pilot_steps + settings.steps

    def part(offset):  # one progress bar over both fits
        return None if progress is None else \
            (lambda t, n, mse: progress(offset + t, total, mse))

    jpeg = ratecontrol.jpeg_bpp(rgb)
    q0 = ratecontrol.first_quality(jpeg, settings.bpp)
    # both whole fits (no coarse_first): the pilot predicts the steered fit's rate
    fs0 = LatentFit(steps=pilot_steps, lam=latent_lambda(q0), seed=settings.seed,
                    coarse_first="")
    f0 = fit_image(rgb, model.arch, fs0, part(0), start, dev)
    pilot, _, pilot_latents = pack(rgb, img.image_mode, alpha, f0, fs0.lam, model.arch, model,
                                   level, start)
    q1 = ratecontrol.corrected_quality(q0, len(pilot), budget, jpeg)
    fs1 = LatentFit(steps=settings.steps, lam=latent_lambda(q1), seed=settings.seed,
                    coarse_first="")
    steer = ratecontrol.Steer(budget - (len(pilot) - pilot_latents), fs1, start.arm)
    f1 = fit_image(rgb, model.arch, fs1, part(pilot_steps), start, dev, steer)
    data, tau, _ = pack(rgb, img.image_mode, alpha, f1, steer.lam, model.arch, model, level,
                        start, budget)
    return _report(data, img, model, level, settings.steps, round(q1), check, t0, search={
        "target": "bpp", "value": float(settings.bpp), "method": "pilot",
        "budget_bytes": budget, "pilot_steps": pilot_steps, "pilot_quality": round(q0, 2),
        "pilot_bytes": len(pilot), "quality": round(q1, 2),
        "steered": [[t, b, round(lam, 9)] for t, b, lam in steer.history],
        "dead_zone": round(tau, 4)})


# -- decoding ------------------------------------------------------------------------------------
def model_for(h: LatentHeader, model) -> LatentModel:
    """The shared latent model a file names: `model` (a LatentModel or a path) or the
    shipped one of that hash (the default or an earlier default), checked against the file."""
    m = None if model is not None else shipped_latent_model(h.model_hash.hex())
    m = m or load_named(load_latent_model, model, h.model_hash.hex(), "latent model")
    a = m.arch
    if (a.levels, a.hidden, a.layers, a.act, a.coords) != \
            (h.levels, h.hidden, h.layers, arch_of(h).act, bool(h.coords)) \
            or (a.act == "sine" and int(a.w0) != h.w0) \
            or (h.version >= 7 and a.upsample != arch_of(h).upsample):
        raise FormatError("the file's synthesis architecture differs from its latent model's")
    if h.version < 7 and a.upsample == "learned":
        raise FormatError(f"a version-{h.version} file cannot use a latent model with a "
                          "learned upsampling (version 7 can)")
    if h.level >= m.n_levels:
        raise FormatError(f"file uses level {h.level}; the latent model has {m.n_levels}")
    return m


def decode(data: bytes, h: LatentHeader, model, size: tuple[int, int], device=None
           ) -> np.ndarray:
    """A verified latent-mode file -> (height, width, 3) uint8, rendered at size =
    (width, height)."""
    if h.shared:
        m = model_for(h, model)
        a = m.arch
        theta = unpack_synthesis(bitstream.section(data, h, "synthesis"), a,
                                 m.thetas[h.level], m.masks[h.level])
        own = bitstream.section(data, h, "arm")
        params = arm.ArmParams.from_bytes(own) if own else arm.ArmParams(*m.arm)
    else:
        a = arch_of(h)
        theta = unpack_synthesis(bitstream.section(data, h, "synthesis"), a)
        params = arm.ArmParams.from_bytes(bitstream.section(data, h, "arm"))
    reader = arm.section_reader(bitstream.section(data, h, "latents"),
                                grid_shapes(h.height, h.width, a.levels), params, h.binned)
    return stream.decode(reader, a, theta, size[1], size[0])


MODE = Mode(name=NAME, header=LatentHeader, writes=(LATENT_VERSION,), settings=Settings,
            load_model=load_latent_model, encode=encode, decode=decode)
