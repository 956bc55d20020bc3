"""The encoder's work on one image: fit, quantise, code, pack, decode-check.

A session keeps the image's tiles and caches the plain (not quantiser-aware) fits per
(level, lr, steps), so rate control can try several quantisers and levels while fitting
each level once.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import bitstream
from .compress import DeltaQuantiser, Payload, QuantConfig, fp16_payload
from .config import FitConfig
from .errors import InrcodecError
from .fit import fit, tile_losses
from .imageio import LoadedImage
from .metrics import psnr as psnr_u8
from .shared_model import SharedModel
from .tiling import image_to_tiles, tile_coords

ProgressFn = Callable[[int, int, float], None]
# The delta quantiser's step sizes come from the fit's first REF_STEPS plain steps (the
# encoder's default step count), whatever the total: see Session.quantiser.
REF_STEPS = 100


def colour_target(img: LoadedImage) -> np.ndarray:
    """The 3 channels the network fits, in [-1, 1]; greyscale is replicated."""
    c = img.pixels[:, :, :1].repeat(3, axis=2) if img.mode in ("L", "LA") else img.pixels[:, :, :3]
    return c.astype(np.float32) / 127.5 - 1.0


def colour_of(img: LoadedImage) -> np.ndarray:
    return img.pixels[:, :, :1] if img.mode in ("L", "LA") else img.pixels[:, :, :3]


@dataclass(frozen=True)
class Settings:
    """Everything that decides the bytes of one encode (besides image, model and seed)."""

    level: int
    steps: int = 100
    lr: float = 1e-4
    quant: QuantConfig = QuantConfig()
    version: int = bitstream.VERSION

    def check(self, m: SharedModel) -> None:
        m.check_level(self.level)
        if self.steps < 0:
            raise InrcodecError("steps must be zero or more")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InrcodecError("the learning rate must be a positive number")
        if self.version not in bitstream.SUPPORTED_VERSIONS:
            raise InrcodecError(f"format version {self.version} cannot be written (choose from "
                                f"{', '.join(map(str, bitstream.SUPPORTED_VERSIONS))})")
        if self.version == 1 and self.quant.quantizer != "fp16":
            raise InrcodecError("format version 1 stores fp16 values only (use the fp16 "
                                "quantiser, or version 2)")


@dataclass
class Result:
    data: bytes
    psnr: float  # on the decoded 8-bit image, as the receiver sees it
    settings: Settings
    payload: Payload
    qat: bool = False  # the last steps were quantiser-aware


class Session:
    def __init__(self, img: LoadedImage, m: SharedModel, device: torch.device, *, seed: int = 0,
                 max_batch_pixels: int = FitConfig.max_batch_pixels,
                 progress: ProgressFn | None = None):
        self.img, self.m, self.dev, self.seed = img, m, device, seed
        self.max_batch_pixels = max_batch_pixels
        self.progress = progress
        h, w = img.pixels.shape[:2]
        if h > bitstream.MAX_SIDE or w > bitstream.MAX_SIDE or h * w > bitstream.MAX_PIXELS:
            raise InrcodecError(f"{w}x{h} is larger than the format allows")
        self.targets, self.weights = image_to_tiles(colour_target(img), m.tile)
        self.coords = tile_coords(m.tile)
        self._fits: dict[tuple, tuple[torch.Tensor, list]] = {}
        self.fitted_steps = 0  # Adam steps run so far (rate control reports its cost)
        self.last_qat = False  # whether the last fitted() ran quantiser-aware steps

    def _cfg(self, steps: int, lr: float) -> FitConfig:
        # On a GPU one pass over the whole batch fills the device; on a CPU small passes win.
        chunk = self.max_batch_pixels if self.dev.type == "cuda" else FitConfig.chunk_pixels
        return FitConfig(steps=steps, lr=lr, seed=self.seed,
                         max_batch_pixels=self.max_batch_pixels, chunk_pixels=chunk)

    def _progress(self, offset: int, stage: int, total: int):
        """Progress of one fit() call (`stage` steps over some chunks of tiles, reported as
        done / chunks x stage) as part of an encode of `total` steps starting at `offset`:
        in chunk-steps, like a single fit."""
        if self.progress is None:
            return None

        def report(done, n, loss):
            chunks = max(1, n // max(1, stage))
            self.progress(offset * chunks + done, total * chunks, loss)
        return report

    def plain_fit(self, level: int, steps: int, lr: float, *, total_steps: int | None = None,
                  with_adam: bool = False):
        """The fit without the quantiser: `steps` Adam steps from the level's init, and with
        `with_adam` a copy of its optimiser states. Cached; a longer fit continues the
        longest shorter one (exactly the same numbers as an unbroken fit)."""
        key = (level, steps, lr)
        if key not in self._fits:
            m = self.m
            done = [k for k in self._fits if k[0] == level and k[2] == lr and k[1] < steps]
            prev = max(done, key=lambda k: k[1]) if done else None
            start, states = (None, []) if prev is None else \
                (self._fits[prev][0], copy.deepcopy(self._fits[prev][1]))
            n = steps - (prev[1] if prev else 0)
            theta = fit(m.net(level), m.levels[level].theta0, self.coords, self.targets,
                        self.weights, self._cfg(n, lr), device=self.dev,
                        progress=self._progress(steps - n, n, total_steps or steps),
                        adam=states, start=start)
            self._fits[key] = (theta, states)
            self.fitted_steps += n
        theta, states = self._fits[key]
        return (theta, copy.deepcopy(states)) if with_adam else theta

    def loss(self, level: int, theta: torch.Tensor) -> float:
        """The fit's objective (sum over tiles of their MSE) at `theta`, without gradients."""
        net = self.m.net(level)
        per = max(1, FitConfig.chunk_pixels // max(1, self.targets.shape[1]))
        total = 0.0
        with torch.no_grad():
            for a in range(0, theta.shape[0], per):
                total += float(tile_losses(net, theta[a:a + per].to(self.dev),
                                           self.coords.to(self.dev),
                                           self.targets[a:a + per].to(self.dev),
                                           self.weights[a:a + per].to(self.dev)).sum())
        return total

    def use_qat(self, s: Settings, dq: DeltaQuantiser, theta: torch.Tensor) -> bool:
        """Whether the last steps should see the quantiser: yes when rounding the fit now
        costs more (in the fit's own loss) than the same number of plain steps just gained.
        Otherwise the fit is still improving faster than quantisation hurts it, and the
        remaining steps stay plain."""
        n_qat = s.quant.qat_steps(s.steps)
        if s.quant.qat_fraction is not None:  # fixed by the caller
            return n_qat > 0
        if n_qat == 0:
            return False
        before = self.plain_part(s)[0]
        gain = self.loss(s.level, before) - self.loss(s.level, theta)
        with torch.no_grad():
            rounded = dq.straight_through("cpu")(theta)
        cost = self.loss(s.level, rounded) - self.loss(s.level, theta)
        return cost > gain

    def plain_part(self, s: Settings):
        """(the plain fit n steps before the switch, the plain fit at the switch, a copy of
        its Adam states), n = the quantiser-aware steps of `s`. Every plain fit `s` needs
        (these two, the step-size reference, the whole plain fit) is run once, shortest
        first, each continuing the last."""
        n_qat = s.quant.qat_steps(s.steps)
        plain = s.steps - n_qat
        for k in sorted({plain - n_qat, min(plain, REF_STEPS), plain} - {0}):
            if k > 0:
                self.plain_fit(s.level, k, s.lr, total_steps=s.steps)
        if n_qat and plain > n_qat:
            before = self.plain_fit(s.level, plain - n_qat, s.lr)
        else:
            before = self.m.levels[s.level].theta0.reshape(1, -1).expand(
                self.targets.shape[0], -1)
        theta, adam = self.plain_fit(s.level, plain, s.lr, total_steps=s.steps, with_adam=True)
        return before, theta, adam

    def quantiser(self, s: Settings, plain: int | None = None) -> DeltaQuantiser:
        """The delta quantiser of `s` for a fit whose plain steps number `plain` (default:
        all of them): step sizes from how far each tensor moved in its first
        min(plain, 100) plain steps (quant.delta_steps). Longer fits therefore keep the
        precision of a 100-step fit and spend more bits on the larger changes they make,
        instead of coarsening the steps as their changes grow."""
        m = self.m
        k = min(s.steps if plain is None else plain, REF_STEPS)
        ref = self.plain_fit(s.level, k, s.lr) if k > 0 \
            else m.levels[s.level].theta0.reshape(1, -1).expand(self.targets.shape[0], -1)
        return DeltaQuantiser.from_fit(m.net(s.level), m.levels[s.level].theta0, ref,
                                       s.quant.step_scale)

    def fitted(self, s: Settings) -> tuple[torch.Tensor, DeltaQuantiser | None]:
        """The final float parameters of `s` and the delta quantiser they are for.

        Delta quantiser: `steps - n` plain steps (n = 20% of the steps; none below step
        scale 0.4, see QuantConfig), then either n quantiser-aware steps (use_qat) or n more
        plain steps."""
        m = self.m
        net, theta0 = m.net(s.level), m.levels[s.level].theta0
        if s.quant.quantizer != "delta":
            return self.plain_fit(s.level, s.steps, s.lr), None
        n_qat = s.quant.qat_steps(s.steps)
        _, theta, adam = self.plain_part(s)
        dq = self.quantiser(s, s.steps - n_qat)  # what the quantiser-aware steps would use
        self.last_qat = False
        if n_qat and self.use_qat(s, dq, theta):
            q = s.quant
            key = ("qat", s.level, s.steps, s.lr, q.step_scale, n_qat, q.qat_lr_factor,
                   q.qat_adam)
            if key not in self._fits:
                self._fits[key] = (fit(
                    net, theta0, self.coords, self.targets, self.weights,
                    self._cfg(n_qat, s.lr * s.quant.qat_lr_factor), device=self.dev,
                    progress=self._progress(s.steps - n_qat, n_qat, s.steps),
                    start=theta, transform=dq.straight_through(self.dev),
                    adam=adam if s.quant.qat_adam == "continued" else None), None)
                self.fitted_steps += n_qat
            self.last_qat = True
            return self._fits[key][0], dq
        theta = self.plain_fit(s.level, s.steps, s.lr, total_steps=s.steps)
        return theta, self.quantiser(s)

    def pack(self, s: Settings, payload: Payload) -> bytes:
        img, m = self.img, self.m
        h, w = img.pixels.shape[:2]
        alpha = b""
        if img.mode in ("LA", "RGBA"):
            alpha = bitstream.zstd(np.ascontiguousarray(img.pixels[:, :, -1]).tobytes())
        header = bitstream.Header(
            version=s.version, flags=bitstream.FLAG_ALPHA if alpha else 0,
            model_hash=bytes.fromhex(m.hash), width=w, height=h,
            mode=bitstream.MODE_IDS[img.mode], level=s.level, quantizer=payload.quantizer,
            qbits=payload.qbits, coder=payload.coder, tile=m.tile,
            tiles_y=-(-h // m.tile), tiles_x=-(-w // m.tile), n_params=m.net(s.level).n_params,
            qparams_len=len(payload.qparams), payload_len=len(payload.data),
            alpha_len=len(alpha))
        return bitstream.pack(header, payload.data, alpha, payload.qparams)

    def measure(self, data: bytes) -> float:
        """PSNR of the decoded file against the source: what the receiver will see."""
        from .api import decode_array
        decoded = decode_array(data, model=self.m, device=self.dev)
        ref = colour_of(self.img)
        return psnr_u8(decoded[:, :, :ref.shape[2]], ref)

    def encode(self, s: Settings, *, theta: torch.Tensor | None = None,
               dq: DeltaQuantiser | None = None) -> Result:
        """Fit (unless theta is given), quantise, code, pack, and decode to measure."""
        s.check(self.m)
        qat = False
        if theta is None:
            theta, dq = self.fitted(s)
            qat = self.last_qat
        if s.quant.quantizer == "fp16":
            payload = fp16_payload(theta)
        else:
            if dq is None:
                dq = DeltaQuantiser.from_fit(self.m.net(s.level), self.m.levels[s.level].theta0,
                                             theta, s.quant.step_scale)
            payload = dq.payload(theta, s.quant.coder)
        data = self.pack(s, payload)
        return Result(data=data, psnr=self.measure(data), settings=s, payload=payload, qat=qat)
