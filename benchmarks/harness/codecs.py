"""Methods and codecs: what the harness measures, one row per image and sweep point."""
from __future__ import annotations

import io
import math
import time
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from inrcodec.metrics import bpp as bits_per_pixel
from inrcodec.metrics import ms_ssim, ms_ssim_min_side, psnr
from inrcodec.codec.latent import format as lformat
from inrcodec.codec.weights import format as wformat
from inrcodec.model.shared_model import load_model

from .schema import BenchError


class Method:
    """Something measured per image at each point of a sweep.

    Subclasses set `name`, `description`, `sweep` (the keys of a point) and implement
    `points()` and `measure()`; `settings()` is what stays fixed across the sweep (a resumed
    run must have the same settings).
    """
    name = "method"
    description = ""
    sweep: tuple[str, ...] = ()
    label: str | None = None  # legend text; defaults to the name

    def settings(self) -> dict:
        return {}

    def points(self) -> list[dict]:
        raise NotImplementedError

    def point_info(self, point: dict) -> dict:
        """Extra per-point facts for the summary (e.g. a level's density)."""
        return {}

    def check(self) -> None:
        """Raise BenchError when an optional library this method needs is missing."""

    def measure(self, image: np.ndarray, point: dict) -> dict:
        """Metric fields of one row (at least `psnr`)."""
        raise NotImplementedError


class Codec(Method):
    """compress / decompress; measured on the real bytes and the decoded 8-bit image."""

    def compress(self, image: np.ndarray, point: dict) -> bytes:
        raise NotImplementedError

    def decompress(self, data: bytes) -> np.ndarray:
        raise NotImplementedError

    def params(self, data: bytes) -> int | None:
        """Stored parameters (network values) of a compressed image, where that means something."""
        return None

    def measure(self, image: np.ndarray, point: dict) -> dict:
        t = time.perf_counter()
        data = self.compress(image, point)
        enc = time.perf_counter() - t
        t = time.perf_counter()
        out = self.decompress(data)
        dec = time.perf_counter() - t
        if out.shape != image.shape or out.dtype != np.uint8:
            raise BenchError(f"{self.name} decoded {out.shape} {out.dtype}, expected "
                             f"{image.shape} uint8")
        h, w = image.shape[:2]
        q = psnr(out, image)
        return {"bytes": len(data), "bpp": bits_per_pixel(len(data), h, w),
                "psnr": None if math.isinf(q) else q,
                "ms_ssim": ms_ssim(out, image) if min(h, w) >= ms_ssim_min_side() else None,
                "encode_s": enc, "decode_s": dec, "params": self.params(data)}


class PillowCodec(Codec):
    """A Pillow image plugin at a sweep of one quality-like parameter."""

    def __init__(self, name: str, fmt: str, key: str, values: Iterable, description: str,
                 save_args: dict | None = None, to_save: Callable | None = None):
        self.name, self.fmt, self.key, self.values = name, fmt, key, list(values)
        self.description, self.save_args = description, dict(save_args or {})
        self.sweep = (key,)
        self._to_save = to_save or (lambda v: {key: v})

    def check(self):
        from PIL import features

        feature = {"JPEG": "jpg", "WEBP": "webp", "AVIF": "avif", "JPEG2000": "jpg_2000"}[self.fmt]
        if not features.check(feature):
            raise BenchError(f"this Pillow build has no {self.fmt} support "
                             f"(pip install --upgrade pillow)")

    def settings(self):
        import PIL

        return {"library": f"Pillow {PIL.__version__}", "format": self.fmt,
                "save_args": self.save_args, self.key: self.values}

    def points(self):
        return [{self.key: v} for v in self.values]

    def compress(self, image, point):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, self.fmt, **self.save_args, **self._to_save(point[self.key]))
        return buf.getvalue()

    def decompress(self, data):
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))


class JpegXL(Codec):
    name = "jpegxl"
    sweep = ("distance",)
    description = "JPEG XL (libjxl via imagecodecs), lossy, effort 7"

    def __init__(self, distances: Iterable[float], effort: int = 7):
        self.distances, self.effort = list(distances), effort

    def check(self):
        try:
            import imagecodecs
        except ImportError:
            raise BenchError("JPEG XL needs imagecodecs: pip install imagecodecs "
                             "(or the bench extra: pip install -e '.[bench]')") from None
        if not imagecodecs.JPEGXL.available:
            raise BenchError("this imagecodecs build has no JPEG XL codec")

    def settings(self):
        import imagecodecs

        return {"library": f"imagecodecs {imagecodecs.__version__}", "effort": self.effort,
                "distance": self.distances}

    def points(self):
        return [{"distance": d} for d in self.distances]

    def compress(self, image, point):
        import imagecodecs

        return bytes(imagecodecs.jpegxl_encode(image, effort=self.effort,
                                               distance=point["distance"], numthreads=1))

    def decompress(self, data):
        import imagecodecs

        return np.ascontiguousarray(imagecodecs.jpegxl_decode(data, numthreads=1))


class Inrcodec(Codec):
    """inrcodec at levels of one shared model, or at `--quality` settings (encode_report,
    then decode_array)."""
    name = "inrcodec"
    sweep = ("level",)

    def __init__(self, model=None, levels: Iterable[int] | None = None, steps: int = 100,
                 lr: float = 1e-4, label: str | None = None,
                 qualities: Iterable[int] | None = None, mode: str = "weights",
                 effort: str = "default", fit: dict | None = None):
        self.mode, self.effort = mode, effort
        if fit and mode != "latent":
            raise BenchError("--fit overrides the latent mode's fit (--mode latent)")
        self.fit = dict(fit or {})
        if mode == "weights-rd":  # format 5: rate-distortion fit, a level per tile
            self._init_weights_rd(model, levels, steps, label, qualities, effort)
        elif mode == "latent":  # a latent shared model, a --quality sweep (at one level)
            self._init_latent(model, levels, steps, label, qualities)
        else:  # format 2: levels of one shared model, or --quality
            self._init_weights(model, levels, steps, lr, label, qualities)

    def _init_weights_rd(self, model, levels, steps, label, qualities, effort) -> None:
        import inrcodec

        if levels is not None or not qualities:
            raise BenchError("the weights-rd mode sweeps --qualities (and no levels)")
        try:
            self.model = load_model(model)
        except inrcodec.InrcodecError as e:
            raise BenchError(str(e)) from None
        self.steps, self.lr, self.levels = steps, None, None
        self.qualities = [int(q) for q in qualities]
        self.name, self.sweep = "inrcodec-rd", ("quality",)
        self.description = (f"inrcodec --mode weights (format 5: rate-distortion fit, a "
                            f"level per tile), model {self.model.hash[:12]}, {steps} "
                            f"steps, effort {effort}")
        self.label = label or "inrcodec weights (format 5)"

    def _init_latent(self, model, levels, steps, label, qualities) -> None:
        import inrcodec
        from inrcodec.codec.latent.format import LATENT_VERSION as VERSION
        from inrcodec.codec.latent.model import load_latent_model
        from inrcodec.codec.latent.config import LatentFit

        if not qualities or (levels is not None and len(list(levels)) != 1):
            raise BenchError("the latent mode sweeps --qualities (at one of --levels)")
        try:
            self.model = load_latent_model(model)
        except inrcodec.InrcodecError as e:
            raise BenchError(str(e)) from None
        unknown = sorted(set(self.fit) - set(LatentFit.__dataclass_fields__) - {"steps", "lam"})
        if unknown or {"steps", "lam"} & set(self.fit):
            raise BenchError(f"--fit: {', '.join(unknown) or 'steps and lam'} "
                             f"{'are not LatentFit fields' if unknown else 'have their own flags'}")
        self.steps, self.lr = steps, None
        self.levels = None if levels is None else list(levels)
        self.level = self.model.default_level if levels is None else self.levels[0]
        try:
            self.model.check_level(self.level)
        except inrcodec.InrcodecError as e:
            raise BenchError(str(e)) from None
        self.qualities = [int(q) for q in qualities]
        self.name, self.sweep = "inrcodec-latent", ("quality",)
        fit_s = "".join(f", {k}={v}" for k, v in sorted(self.fit.items()))
        self.description = (f"inrcodec {inrcodec.__version__} --mode latent (format "
                            f"{VERSION}, latent model "
                            f"{self.model.hash[:12]}, level {self.level}), "
                            f"{steps} steps{fit_s}")
        self.label = label or "inrcodec latent"

    def _init_weights(self, model, levels, steps, lr, label, qualities) -> None:
        import inrcodec

        try:
            self.model = load_model(model)
        except inrcodec.InrcodecError as e:
            raise BenchError(str(e)) from None
        n = len(self.model.levels)
        self.steps, self.lr = steps, lr
        if qualities is not None:
            # --quality chooses level, quantiser step and learning rate itself (rate.py)
            if levels is not None:
                raise BenchError("inrcodec sweeps either levels or qualities, not both")
            self.qualities = [int(q) for q in qualities]
            bad = [q for q in self.qualities if not 1 <= q <= 100]
            if bad:
                raise BenchError(f"quality {bad[0]} is not in 1..100")
            self.sweep, self.levels, self.lr = ("quality",), None, None
            self.description = (f"Meta-SparseINR, model {self.model.hash[:12]}, "
                                f"{steps} steps, --quality (level, quantiser and lr by rate.py)")
            self.label = label or "inrcodec --quality"
            return
        self.qualities = None
        self.levels = list(range(n)) if levels is None else list(levels)
        bad = [lv for lv in self.levels if not 0 <= lv < n]
        if bad:
            raise BenchError(f"level {bad[0]} is not in the model's ladder (0..{n - 1})")
        default = "" if lr == 1e-4 else f", NON-DEFAULT encoder lr {lr:g}"
        self.description = (f"Meta-SparseINR, model {self.model.hash[:12]}, "
                            f"{steps} steps, lr {lr:g}{default}")
        self.label = label or (f"inrcodec (lr {lr:g}, non-default)" if lr != 1e-4 else "inrcodec")

    def settings(self):
        if self.mode == "weights-rd":
            return {"mode": "weights-rd", "model": self.model.hash, "steps": self.steps,
                    "effort": self.effort, "quality": self.qualities}
        if self.mode == "latent":
            s = {"mode": "latent", "model": self.model.hash, "steps": self.steps,
                 "quality": self.qualities}
            if self.level != self.model.default_level:
                s["level"] = self.level
            fit = {k: list(v) if isinstance(v, tuple) else v for k, v in self.fit.items()}
            return {**s, "fit": fit} if fit else s
        m = self.model
        s = {"model": m.hash, "tile": m.tile, "arch": m.arch.to_dict(), "steps": self.steps}
        if self.qualities is not None:
            return {**s, "quality": self.qualities}
        return {**s, "lr": self.lr, "level": self.levels}

    def points(self):
        if self.qualities is not None:
            return [{"quality": q} for q in self.qualities]
        return [{"level": lv} for lv in self.levels]

    def point_info(self, point):
        if self.mode == "weights-rd":
            from inrcodec.codec.weights.codec import rd_candidates
            from inrcodec.codec.weights.config import RD_EFFORT, weight_lambda
            cands = rd_candidates(self.model, point["quality"], RD_EFFORT[self.effort][0])
            return {"lambda": weight_lambda(point["quality"]),
                    "candidates": [c.level for c in cands]}
        if self.mode == "latent":
            from inrcodec.codec.latent.config import latent_lambda
            return {"lambda": latent_lambda(point["quality"])}
        if "quality" in point:
            from inrcodec.codec.weights.ratecontrol import quality_settings

            s = quality_settings(self.model, point["quality"], self.steps)
            return {"level": s.level, "step_scale": s.quant.step_scale, "lr": s.lr,
                    "density": self.model.ladder()[s.level]["density"]}
        return {"density": self.model.ladder()[point["level"]]["density"]}

    def compress(self, image, point):
        import inrcodec

        if self.mode == "latent" and (self.fit or self.level != self.model.default_level
                                      or not 1 <= point["quality"] <= 100):
            # an ablation, or a lambda past --quality's 1..100 (a curve's low end, which
            # --bpp's control reaches): the codec's own compress, its fit changed
            from dataclasses import replace

            from inrcodec.codec.latent.codec import compress
            from inrcodec.codec.latent.config import LatentFit, latent_lambda
            fs = replace(LatentFit(steps=self.steps, lam=latent_lambda(point["quality"])),
                         **self.fit)
            return compress(image, "RGB", None, fs, self.model, self.level)
        if self.mode == "latent":
            return inrcodec.encode_report(image, mode="latent", model=self.model,
                                          quality=point["quality"], steps=self.steps).data
        if self.mode == "weights-rd":
            return inrcodec.encode_report(image, mode="weights", model=self.model,
                                          format_version=5,
                                          quality=point["quality"], steps=self.steps,
                                          effort=self.effort).data
        if "quality" in point:
            return inrcodec.encode_report(image, mode="weights", format_version=2,
                                          model=self.model, quality=point["quality"],
                                          steps=self.steps).data
        return inrcodec.encode_report(image, mode="weights", format_version=2,
                                      model=self.model, level=point["level"],
                                      steps=self.steps, lr=self.lr).data

    def decompress(self, data):
        import inrcodec

        return inrcodec.decode_array(data, model=self.model)

    def params(self, data):
        from inrcodec.codec import bitstream

        h = bitstream.unpack_header(data)
        if isinstance(h, wformat.TileHeader):  # every tile's stored values
            from inrcodec.codec.weights.codec import read_tiles
            return sum(th.shape[0] * th.shape[1] for _, th, _ in read_tiles(data, self.model)[2])
        if isinstance(h, lformat.LatentHeader):  # the synthesis parameters it adapts
            from inrcodec.codec.latent.format import arch_of
            if h.shared:
                return int(self.model.masks[h.level].sum()) if h.synth_len else 0
            return arch_of(h).n_params()
        return h.n_params * h.tiles_y * h.tiles_x


# Sweeps from each codec's lowest setting up to past 2 bpp: on the development photos the
# lowest settings of JPEG, WebP, AVIF and JPEG XL stay above 0.1 bpp on the busiest photos
# (it is their floor), and the smoothest photos stay under 2 bpp even at the top settings
# of some; `--quick` takes three points of each.
SWEEPS = {
    "jpeg": [1, 3, 5, 10, 15, 20, 30, 50, 70, 85, 95, 100],
    "webp": [0, 5, 10, 20, 30, 50, 70, 85, 95, 100],
    "avif": [0, 15, 30, 45, 60, 70, 80, 90, 95, 100],
    "jpeg2000": [0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0],
    "jpegxl": [25.0, 15.0, 10.0, 6.0, 4.0, 2.5, 1.5, 1.0, 0.5, 0.3, 0.15],
}
QUICK = {k: [v[0], v[len(v) // 2], v[-1]] for k, v in SWEEPS.items()}
CLASSICAL = tuple(SWEEPS)


def make_codec(name: str, values=None, **inr) -> Method:
    """A codec by name; `values` overrides its sweep; `inr` are Inrcodec's arguments."""
    if name == "inrcodec":
        return Inrcodec(**inr)
    if name not in SWEEPS:
        raise BenchError(f"unknown codec {name!r} (choose from inrcodec, {', '.join(CLASSICAL)})")
    vals = SWEEPS[name] if values is None else list(values)
    if name in ("jpeg", "webp", "avif"):  # qualities: Pillow takes integers (--values 50.0)
        vals = [int(v) for v in vals]
    if name == "jpeg":
        return PillowCodec("jpeg", "JPEG", "quality", vals,
                           "JPEG (Pillow, libjpeg-turbo), 4:2:0, optimised Huffman tables",
                           {"subsampling": 2, "optimize": True})
    if name == "webp":
        return PillowCodec("webp", "WEBP", "quality", vals, "WebP (Pillow, libwebp), lossy, method 6",
                           {"method": 6})
    if name == "avif":
        return PillowCodec("avif", "AVIF", "quality", vals,
                           "AVIF (Pillow, libavif), 4:2:0, speed 6, 1 thread",
                           {"speed": 6, "max_threads": 1, "subsampling": "4:2:0"})
    if name == "jpeg2000":
        # OpenJPEG takes a compression ratio against the raw 24-bit image: 24 / target bpp
        return PillowCodec("jpeg2000", "JPEG2000", "target_bpp", vals,
                           "JPEG 2000 (Pillow, OpenJPEG), 9/7 wavelet, one layer at a target rate",
                           {"irreversible": True, "quality_mode": "rates"},
                           to_save=lambda v: {"quality_layers": [24.0 / v]})
    return JpegXL(vals)
