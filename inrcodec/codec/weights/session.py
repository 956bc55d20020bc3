"""The encoder's work on 1..N images: fit, quantise, code, pack, decode-check.

A Session holds the tiles of 1..N images. Every fit runs over the tiles of all images
that need it as one batch (each tile is an independent network with its own loss, so an
image gets the same numbers alone or in a batch); everything that decides an image's
bytes (step sizes, whether the last steps see the quantiser, the payload) is decided per
image. Plain (not quantiser-aware) fits are cached per image and (level, lr, steps), and a
longer fit continues the longest shorter one, so rate control can try several quantisers
and levels while fitting each level once. `measure` is the encoder's check: it decodes
a file with the decoder and gives the PSNR the receiver will see.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ...errors import InrcodecError
from ...io import LoadedImage, alpha_plane, rgb_of
from ...model.inr import tile_losses
from ...model.shared_model import SharedModel
from ..header import MAX_PIXELS, MAX_SIDE
from .config import PAPER_LR, PAPER_STEPS, STEP_SIZE_REF_STEPS, FitConfig, QuantConfig
from .fit import AdamState, fit
from .format import PAPER_VERSION, PAPER_VERSIONS, write_file
from .quantiser import DeltaQuantiser, Fp16Quantiser, Payload, straight_through
from .tiles import image_to_tiles, tile_coords

ProgressFn = Callable[[float, int, float], None]
MeasureFn = Callable[[bytes, LoadedImage], float]  # a file's decoded PSNR against its image


def colour_target(img: LoadedImage) -> np.ndarray:
    """rgb_of in [-1, 1], what the weight mode's tiles fit."""
    return rgb_of(img).astype(np.float32) / 127.5 - 1.0


@dataclass(frozen=True)
class Settings:
    """Everything that decides the bytes of one encode (besides image, model and seed).
    `steps` are optimiser steps."""

    level: int
    steps: int = PAPER_STEPS
    lr: float = PAPER_LR
    quant: QuantConfig = QuantConfig()
    version: int = PAPER_VERSION

    def check(self, m: SharedModel) -> None:
        m.check_level(self.level)
        if self.steps < 0:
            raise InrcodecError("steps must be zero or more")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InrcodecError("the learning rate must be a positive number")
        if self.version not in PAPER_VERSIONS:
            raise InrcodecError(f"format version {self.version} cannot be written (choose from "
                                f"{', '.join(map(str, PAPER_VERSIONS))})")
        if self.version == 1 and self.quant.quantizer != "fp16":
            raise InrcodecError("format version 1 stores fp16 values only (use the fp16 "
                                "quantiser, or version 2)")


@dataclass
class Result:
    data: bytes
    psnr: float  # on the decoded 8-bit image, as the receiver sees it
    settings: Settings
    payload: Payload
    qat: bool = False  # the last optimiser steps were quantiser-aware


@dataclass
class _Image:
    """One image of a session: its tiles and its cached fits."""

    img: LoadedImage
    targets: torch.Tensor  # (tiles, T*T, 3)
    weights: torch.Tensor  # (tiles, T*T)
    fits: dict = field(default_factory=dict)  # (level, lr, steps) -> (theta, AdamState)
    qat_fits: dict = field(default_factory=dict)


class Session:
    def __init__(self, images: list[LoadedImage], m: SharedModel, device: torch.device, *,
                 seed: int = 0, max_batch_pixels: int = FitConfig.max_batch_pixels,
                 progress: ProgressFn | None = None, measure: MeasureFn):
        self.m, self.dev, self.seed = m, device, seed
        self.measure_psnr = measure
        self.max_batch_pixels = max_batch_pixels
        self.progress = progress
        self.images = []
        for img in images:
            h, w = img.pixels.shape[:2]
            if h > MAX_SIDE or w > MAX_SIDE or h * w > MAX_PIXELS:
                raise InrcodecError(f"{w}x{h} is larger than the format allows")
            self.images.append(_Image(img, *image_to_tiles(colour_target(img), m.tile)))
        self.coords = tile_coords(m.tile)
        self.fitted_steps = 0  # optimiser steps run so far (rate control reports its cost)
        self.progress_steps = 0  # the encode's optimiser steps, for progress

    @property
    def img(self) -> LoadedImage:  # the single image of a one-image session
        return self.images[0].img

    # -- fitting --------------------------------------------------------------------------
    def _cfg(self, steps: int, lr: float, n_tiles: int) -> FitConfig:
        # On a GPU one pass over the whole batch fills the device; on a CPU small passes win.
        batch = max(self.max_batch_pixels, n_tiles * self.m.tile ** 2) \
            if len(self.images) > 1 else self.max_batch_pixels
        chunk = batch if self.dev.type == "cuda" else FitConfig.chunk_pixels
        return FitConfig(steps=steps, lr=lr, seed=self.seed, max_batch_pixels=batch,
                         chunk_pixels=chunk)

    def _fit(self, which: list[int], level: int, steps: int, lr: float, offset: int, *,
             start: list[torch.Tensor] | None = None, adam: list[AdamState] | None = None,
             transform=None) -> tuple[list[torch.Tensor], list[AdamState]]:
        """`steps` optimiser steps for the tiles of images `which`, in one batch."""
        sizes = [self.images[i].targets.shape[0] for i in which]
        targets = torch.cat([self.images[i].targets for i in which])
        weights = torch.cat([self.images[i].weights for i in which])
        total = max(self.progress_steps, 1)

        def report(done, n, loss):
            self.progress(min(offset + steps * done / max(n, 1), total), total, loss)
        out: list[AdamState] = []
        theta = fit(self.m.net(level), self.m.levels[level].theta0, self.coords, targets,
                    weights, self._cfg(steps, lr, targets.shape[0]), device=self.dev,
                    progress=report if self.progress is not None else None,
                    start=None if start is None else torch.cat(start),
                    adam=None if adam is None else AdamState.cat(adam), adam_out=out,
                    transform=transform)
        self.fitted_steps += steps
        bounds = np.cumsum([0] + sizes)
        return ([theta[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
                [out[0].rows(a, b) for a, b in zip(bounds[:-1], bounds[1:])])

    def plain_fit(self, level: int, steps: int, lr: float, which: list[int] | None = None
                  ) -> list[torch.Tensor]:
        """The fits without the quantiser: `steps` optimiser steps from the level's init.
        Cached per image; a longer fit continues the longest shorter one (the same numbers
        as an unbroken fit). Images at the same point are fitted together."""
        which = list(range(len(self.images))) if which is None else which
        groups: dict[int, list[int]] = {}
        for i in which:
            fits = self.images[i].fits
            if (level, lr, steps) in fits:
                continue
            done = [k[2] for k in fits if k[0] == level and k[1] == lr and k[2] < steps]
            groups.setdefault(max(done, default=0), []).append(i)
        for prev, idx in sorted(groups.items()):
            start = adam = None
            if prev > 0:
                start = [self.images[i].fits[(level, lr, prev)][0] for i in idx]
                adam = [self.images[i].fits[(level, lr, prev)][1] for i in idx]
            thetas, states = self._fit(idx, level, steps - prev, lr, prev, start=start,
                                       adam=adam)
            for i, th, st in zip(idx, thetas, states):
                self.images[i].fits[(level, lr, steps)] = (th, st)
        return [self.images[i].fits[(level, lr, steps)][0] for i in which]

    def _theta0(self, i: int, level: int) -> torch.Tensor:
        return self.m.levels[level].theta0.reshape(1, -1).expand(
            self.images[i].targets.shape[0], -1)

    def loss(self, i: int, level: int, theta: torch.Tensor) -> float:
        """The fit's objective for image i (sum over tiles of their MSE), no gradients."""
        net = self.m.net(level)
        im = self.images[i]
        per = max(1, FitConfig.chunk_pixels // max(1, im.targets.shape[1]))
        total = 0.0
        with torch.no_grad():
            for a in range(0, theta.shape[0], per):
                total += float(tile_losses(net, theta[a:a + per].to(self.dev),
                                           self.coords.to(self.dev),
                                           im.targets[a:a + per].to(self.dev),
                                           im.weights[a:a + per].to(self.dev)).sum())
        return total

    def plain_part(self, s: Settings, which: list[int] | None = None):
        """Per image: (the plain fit n steps before the switch, the plain fit at the switch),
        n = the quantiser-aware steps of `s`. Every plain fit `s` needs (these two, the
        step-size reference, the whole plain fit) is run once, shortest first, each
        continuing the last."""
        which = list(range(len(self.images))) if which is None else which
        n_qat = s.quant.qat_steps(s.steps)
        plain = s.steps - n_qat
        for k in sorted({plain - n_qat, min(plain, STEP_SIZE_REF_STEPS), plain} - {0}):
            if k > 0:
                self.plain_fit(s.level, k, s.lr, which)
        if n_qat and plain > n_qat:
            before = self.plain_fit(s.level, plain - n_qat, s.lr, which)
        else:
            before = [self._theta0(i, s.level) for i in which]
        theta = self.plain_fit(s.level, plain, s.lr, which) if plain > 0 \
            else [self._theta0(i, s.level) for i in which]
        return before, theta

    def quantiser(self, s: Settings, plain: int | None = None, i: int = 0) -> DeltaQuantiser:
        """Image i's delta quantiser for `s` after `plain` plain steps (default: all of them):
        step sizes from how far each tensor moved in its first min(plain, 100) plain steps.
        Longer fits therefore keep the precision of a 100-step fit and spend more bits on
        the larger changes they make, instead of coarsening the step sizes as they grow."""
        k = min(s.steps if plain is None else plain, STEP_SIZE_REF_STEPS)
        ref = self.plain_fit(s.level, k, s.lr, [i])[0] if k > 0 else self._theta0(i, s.level)
        return DeltaQuantiser.from_fit(self.m.net(s.level), self.m.levels[s.level].theta0, ref,
                                       s.quant.step_scale)

    def use_qat(self, s: Settings, i: int, dq: DeltaQuantiser, before: torch.Tensor,
                theta: torch.Tensor) -> bool:
        """Whether image i's last steps should see the quantiser: yes when rounding the fit
        now costs more (in the fit's own loss) than the same number of plain steps just
        gained. Otherwise the fit is still improving faster than quantisation hurts it."""
        n_qat = s.quant.qat_steps(s.steps)
        if s.quant.qat_fraction is not None:  # fixed by the caller
            return n_qat > 0
        if n_qat == 0:
            return False
        gain = self.loss(i, s.level, before) - self.loss(i, s.level, theta)
        with torch.no_grad():
            rounded = dq.straight_through("cpu")(theta)
        cost = self.loss(i, s.level, rounded) - self.loss(i, s.level, theta)
        return cost > gain

    def fitted(self, s: Settings, which: list[int] | None = None
               ) -> list[tuple[torch.Tensor, DeltaQuantiser | None, bool]]:
        """Per image: the final float parameters of `s`, the delta quantiser they are for,
        and whether the last steps were quantiser-aware.

        Delta quantiser: `steps - n` plain steps (n = the quantiser-aware share of the
        steps, QuantConfig), then either n quantiser-aware steps (use_qat) or n more plain
        steps."""
        which = list(range(len(self.images))) if which is None else which
        if s.quant.quantizer != "delta":
            return [(th, None, False) for th in self.plain_fit(s.level, s.steps, s.lr, which)]
        q = s.quant
        n_qat = q.qat_steps(s.steps)
        before, theta = self.plain_part(s, which)
        out: dict[int, tuple] = {}
        qat_idx, qat_dq = [], {}
        if n_qat:
            for k, i in enumerate(which):
                dq = self.quantiser(s, s.steps - n_qat, i)  # what those steps would use
                if self.use_qat(s, i, dq, before[k], theta[k]):
                    qat_idx.append(i)
                    qat_dq[i] = dq
        key = (s.level, s.steps, s.lr, q.step_scale, n_qat, q.qat_lr_factor, q.qat_adam)
        todo = [i for i in qat_idx if key not in self.images[i].qat_fits]
        if todo:
            plain = [self.images[i].fits[(s.level, s.lr, s.steps - n_qat)] for i in todo]
            transform = straight_through(
                [qat_dq[i] for i in todo], [self.images[i].targets.shape[0] for i in todo],
                self.dev)
            thetas, _ = self._fit(todo, s.level, n_qat, s.lr * q.qat_lr_factor,
                                  s.steps - n_qat, start=[p[0] for p in plain],
                                  adam=[p[1] for p in plain] if q.qat_adam == "continued"
                                  else None, transform=transform)
            for i, th in zip(todo, thetas):
                self.images[i].qat_fits[key] = th
        for i in qat_idx:
            out[i] = (self.images[i].qat_fits[key], qat_dq[i], True)
        rest = [i for i in which if i not in out]
        if rest:
            thetas = self.plain_fit(s.level, s.steps, s.lr, rest)
            for i, th in zip(rest, thetas):
                out[i] = (th, self.quantiser(s, None, i), False)
        return [out[i] for i in which]

    # -- writing ----------------------------------------------------------------------------
    def pack(self, i: int, s: Settings, payload: Payload) -> bytes:
        img, m = self.images[i].img, self.m
        h, w = img.pixels.shape[:2]
        return write_file(version=s.version, model_hash=m.hash, width=w, height=h,
                          image_mode=img.image_mode, level=s.level, tile=m.tile,
                          n_params=m.net(s.level).n_params, payload=payload,
                          alpha_plane=alpha_plane(img))

    def measure(self, i: int, data: bytes) -> float:
        return self.measure_psnr(data, self.images[i].img)

    def write(self, i: int, s: Settings, theta: torch.Tensor, dq: DeltaQuantiser | None,
              qat: bool = False) -> Result:
        """Quantise and code image i's fitted values, pack the file, decode it to measure."""
        s.check(self.m)
        if s.quant.quantizer == "fp16":
            payload = Fp16Quantiser.payload(theta)
        else:
            if dq is None:
                dq = DeltaQuantiser.from_fit(self.m.net(s.level), self.m.levels[s.level].theta0,
                                             theta, s.quant.step_scale)
            payload = dq.payload(theta, s.quant.coder)
        data = self.pack(i, s, payload)
        return Result(data=data, psnr=self.measure(i, data), settings=s, payload=payload,
                      qat=qat)

    def encode(self, s: Settings) -> list[Result]:
        """Every image of the session with settings `s`: fit, quantise, code, pack, check."""
        s.check(self.m)
        self.progress_steps = s.steps
        return [self.write(i, s, theta, dq, qat)
                for i, (theta, dq, qat) in enumerate(self.fitted(s))]
