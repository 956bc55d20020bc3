"""The benchmark harness: methods and codecs, resumable runs, one results schema.

A *method* turns images into per-image rows at each of its operating points (a sweep of
settings such as a JPEG quality or an inrcodec level). A *codec* is a method measured the
standard way: compress, decompress, and score the decoded 8-bit image against the source.
Paper experiments that fit networks without writing files plug in as methods that return
at least `psnr` and `params` for a row.

Results schema (one JSON file per run of one method):

    {"schema": 2, "codec", "label", "description", "settings", "sweep": [point keys],
     "command", "commands", "machine", "images": [names],
     "rows": [{"image", <point keys>, "bytes", "bpp", "psnr", "ms_ssim",
               "encode_s", "decode_s", "params", ...}],
     "summary": [{<point keys>, "n", means of the numeric row fields, ...}]}

bpp is 8 x (file size) / pixels; PSNR and MS-SSIM are measured on the decoded 8-bit image.
The summary is always recomputed from the rows (`summarize`), and every curve, table and
plot is computed from the rows, never from a stored summary.
"""
from __future__ import annotations

import io
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from inrcodec.io import atomic_output
from inrcodec.metrics import bpp as bits_per_pixel
from inrcodec.metrics import ms_ssim, ms_ssim_min_side, psnr
from inrcodec.codec.latent import format as lformat
from inrcodec.codec.weights import format as wformat

SCHEMA = 2
METRICS = ("bytes", "bpp", "psnr", "ms_ssim", "encode_s", "decode_s", "params")


class BenchError(Exception):
    """A user error: printed as one line by the CLI."""


# -- images ---------------------------------------------------------------------------------
def _rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise BenchError(f"cannot read image {path}: {e}") from None


def dev_set(n: int | None = None) -> list[tuple[str, np.ndarray]]:
    """The development photos (768x512 Kodak-like PNGs; never used for training).

    With n, n photos spread evenly over the sorted list (so every source is represented).
    """
    from inrcodec.errors import DatasetError
    from inrcodec.training.data import build_dev_set, cache_dir

    try:
        paths = sorted(build_dev_set(cache_dir() / "devset"))
    except DatasetError as e:
        raise BenchError(f"development set unavailable: {e}") from None
    if n is not None:
        if not 1 <= n <= len(paths):
            raise BenchError(f"dev:{n}: the development set has {len(paths)} photos")
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, n).round().astype(int)]
    return [(p.name, _rgb(p)) for p in paths]


def dev_images(n: int, crop: int | None = None) -> list[tuple[str, np.ndarray]]:
    """n development photos spread over the set (dev_set(n)), each optionally cut to its
    centred crop x crop square. The names stay the photos' own (as in the results files of
    compress_rd.py, steps_curve.py, qat_lr.py and qat_continue.py, which used this)."""
    images = dev_set(n)
    if crop:
        images = [(name, centre_crop(a, crop)) for name, a in images]
    return images


def centre_crop(a: np.ndarray, side: int) -> np.ndarray:
    h, w = a.shape[:2]
    c = min(side, h, w)
    y, x = (h - c) // 2, (w - c) // 2
    return np.ascontiguousarray(a[y:y + c, x:x + c])


def quick_images(side: int = ms_ssim_min_side()) -> list[tuple[str, np.ndarray]]:
    """Two small real photos bundled with scikit-image (offline), centre crops for speed."""
    from skimage import data

    return [(f"{name}-{side}.png", centre_crop(getattr(data, name)()[:, :, :3], side))
            for name in ("astronaut", "coffee")]


def load_images(spec: str) -> list[tuple[str, np.ndarray]]:
    """`dev` (all), `dev:N` (N spread over the set), `quick`, or comma-separated files/folders."""
    if spec == "dev":
        return dev_set()
    if spec.startswith("dev:"):
        try:
            n = int(spec[4:])
        except ValueError:
            raise BenchError(f"--images {spec}: expected dev:N with N a number") from None
        return dev_set(n)
    if spec == "quick":
        return quick_images()
    from inrcodec.io import IMAGE_SUFFIXES

    out = []
    for part in filter(None, spec.split(",")):
        p = Path(part)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise BenchError(f"no images in folder {p}")
            out += [(f.name, _rgb(f)) for f in files]
        elif p.is_file():
            out.append((p.name, _rgb(p)))
        else:
            raise BenchError(f"--images: {p} is not a file or folder (or dev, dev:N, quick)")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise BenchError("--images: two images share a file name; rows are keyed by name")
    return out


# -- methods and codecs -----------------------------------------------------------------------
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
        import inrcodec

        self.mode, self.effort = mode, effort
        if fit and mode != "latent":
            raise BenchError("--fit overrides the latent mode's fit (--mode latent)")
        self.fit = dict(fit or {})
        if mode == "weights-rd":  # format 5: rate-distortion fit, a level per tile
            if levels is not None or not qualities:
                raise BenchError("the weights-rd mode sweeps --qualities (and no levels)")
            try:
                self.model = inrcodec.load_model(model)
            except inrcodec.InrcodecError as e:
                raise BenchError(str(e)) from None
            self.steps, self.lr, self.levels = steps, None, None
            self.qualities = [int(q) for q in qualities]
            self.name, self.sweep = "inrcodec-rd", ("quality",)
            self.description = (f"inrcodec --mode weights (format 5: rate-distortion fit, a "
                                f"level per tile), model {self.model.hash[:12]}, {steps} "
                                f"steps, effort {effort}")
            self.label = label or "inrcodec weights (format 5)"
            return
        if mode == "latent":  # a latent shared model, a --quality sweep (at one level)
            if not qualities or (levels is not None and len(list(levels)) != 1):
                raise BenchError("the latent mode sweeps --qualities (at one of --levels)")
            from inrcodec.codec.latent.format import VERSION
            from inrcodec.codec.latent.model import load_latent_model
            from inrcodec.config import LatentFit
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
            return
        try:
            self.model = inrcodec.load_model(model)
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
            from inrcodec.config import RD_EFFORT, weight_lambda
            cands = rd_candidates(self.model, point["quality"], RD_EFFORT[self.effort][0])
            return {"lambda": weight_lambda(point["quality"]),
                    "candidates": [c.level for c in cands]}
        if self.mode == "latent":
            from inrcodec.config import latent_lambda
            return {"lambda": latent_lambda(point["quality"])}
        if "quality" in point:
            from inrcodec.codec.weights.rate import quality_settings

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
            from inrcodec.config import LatentFit, latent_lambda
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


# -- results ------------------------------------------------------------------------------------
def row_key(row: dict, sweep: Iterable[str]) -> tuple:
    return (row["image"],) + tuple(json.dumps(row.get(k)) for k in sweep)


def _mean(values: list) -> float | None:
    if not values or any(v is None for v in values):
        return None  # a mean over some images only would not be comparable
    return float(np.mean(values))


def summarize(rows: list[dict], sweep: Iterable[str], info: Callable[[dict], dict] | None = None
              ) -> list[dict]:
    """Per-point means of every metric over the rows of that point, in first-seen order."""
    sweep = tuple(sweep)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(json.dumps(r.get(k)) for k in sweep), []).append(r)
    out = []
    for rs in groups.values():
        point = {k: rs[0].get(k) for k in sweep}
        s = {**point, "n": len(rs)}
        if info:
            s.update(info(point))
        for k in METRICS:
            if any(k in r for r in rs):
                s[k] = _mean([r.get(k) for r in rs])
        out.append(s)
    return out


def load_result(path: str | Path) -> dict:
    """A results file, with the rows' summary recomputed (older files: sweep by level)."""
    path = Path(path)
    try:
        res = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"{path}: no such results file") from None
    except (OSError, ValueError) as e:
        raise BenchError(f"{path}: not a readable results file ({e})") from None
    if not isinstance(res, dict) or not isinstance(res.get("rows"), list) or "codec" not in res:
        raise BenchError(f"{path}: not a results file (no codec or rows)")
    if "sweep" not in res:  # files written before the schema had one: the settings rows vary
        keys = ("level", "step_scale", "quality", "target_bpp", "distance")
        res["sweep"] = [k for k in keys if any(k in r for r in res["rows"])]
    res.setdefault("label", res["codec"])
    res["summary"] = summarize(res["rows"], res["sweep"])
    res["_path"] = str(path)
    return res


def write_result(path: Path, res: dict) -> None:
    res = {k: v for k, v in res.items() if not k.startswith("_")}
    with atomic_output(path, force=True) as tmp:
        tmp.write_text(json.dumps(res, indent=1) + "\n")


def machine() -> str:
    return f"{platform.machine()} {platform.processor() or ''}".strip()


@dataclass
class RunLog:
    """Progress lines to a stream (stderr by default)."""
    stream: object = field(default_factory=lambda: sys.stderr)
    quiet: bool = False

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=self.stream, flush=True)


def open_result(out: Path, *, codec: str, label: str, description: str, settings: dict,
                sweep: Iterable[str], command: str, images: list[str], force: bool = False
                ) -> dict:
    """A fresh results dict, or the rows of an existing `out` made with the same codec and
    settings (to resume; the sweep's values may grow). Other settings: refused unless force."""
    sweep = list(sweep)
    settings = json.loads(json.dumps(settings))  # as it will read back from JSON
    res = {"schema": SCHEMA, "codec": codec, "label": label, "description": description,
           "settings": settings, "sweep": sweep, "command": command, "commands": [command],
           "machine": machine(), "images": images, "rows": [], "summary": []}
    if out.exists() and not force:
        old = load_result(out)
        fixed = lambda st: {k: v for k, v in (st or {}).items() if k not in sweep}
        if old["codec"] != codec or fixed(old.get("settings")) != fixed(settings):
            raise BenchError(f"{out} holds a run of {old['codec']} with other settings; "
                             "use --force to start over, or another output")
        res.update(rows=old["rows"], command=old.get("command", command),
                   commands=old.get("commands", [old.get("command")]))
        if command not in res["commands"]:
            res["commands"].append(command)
    elif not out.parent.is_dir():
        raise BenchError(f"output folder {out.parent} does not exist")
    return res


def sync(res: dict, info: Callable[[dict], dict] | None = None) -> dict:
    """Derive a results dict's images, swept values (old runs' included) and summary from
    its rows."""
    res["images"] = list(dict.fromkeys(r["image"] for r in res["rows"]))
    for k in res["sweep"]:
        res["settings"][k] = list(dict.fromkeys(r.get(k) for r in res["rows"]))
    res["summary"] = summarize(res["rows"], res["sweep"], info)
    return res


class ResultsFile:
    """A results file filled a batch of rows at a time, by work that measures many images
    together (the paper's experiments fit all signals in one batch). Resumable like `run`:
    `done(point)` says whether the rows of a point are there already."""

    def __init__(self, out: str | Path, *, codec: str, description: str, settings: dict,
                 sweep: Iterable[str], command: str, label: str | None = None,
                 force: bool = False):
        self.out, self.sweep = Path(out), tuple(sweep)
        self.res = open_result(self.out, codec=codec, label=label or codec,
                               description=description, settings=settings, sweep=self.sweep,
                               command=command, images=[], force=force)
        self._points = {self._pk(r) for r in self.res["rows"]}

    def _pk(self, point: dict) -> tuple:
        return tuple(json.dumps(point.get(k)) for k in self.sweep)

    def done(self, **point) -> bool:
        return self._pk(point) in self._points

    def add(self, point: dict, rows: list[dict]) -> None:
        """All rows of one point ({"image", metrics...}), written at once."""
        self.res["rows"] += [{"image": r["image"], **point,
                              **{k: v for k, v in r.items() if k != "image"}} for r in rows]
        self._points.add(self._pk(point))
        sync(self.res)
        write_result(self.out, self.res)


def run(method: Method, images: list[tuple[str, np.ndarray]], out: str | Path, *,
        command: str, force: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Measure `method` on `images` at all its points, writing `out` after every row.

    An existing `out` made with the same method and settings is resumed: rows already there
    are skipped. One made otherwise is refused unless `force` (then it starts over).
    """
    log = log or RunLog()
    out = Path(out)
    method.check()
    res = open_result(out, codec=method.name, label=method.label or method.name,
                      description=method.description, settings=method.settings(),
                      sweep=method.sweep, command=command, images=[n for n, _ in images],
                      force=force)
    done = {row_key(r, method.sweep) for r in res["rows"]}
    todo = [(p, n, img) for p in method.points() for n, img in images
            if row_key({"image": n, **p}, method.sweep) not in done]
    total = len(method.points()) * len(images)
    if done:
        log(f"{out}: resuming, {total - len(todo)} of {total} rows already there")
    t0 = time.perf_counter()
    for i, (point, name, img) in enumerate(todo, 1):
        row = {"image": name, **point, **method.measure(img, point)}
        res["rows"].append(row)
        res["summary"] = summarize(res["rows"], method.sweep, method.point_info)
        write_result(out, res)
        el = time.perf_counter() - t0
        pt = " ".join(f"{k}={v}" for k, v in point.items())
        q = f"PSNR {row['psnr']:.2f}" if row.get("psnr") is not None else "PSNR inf"
        rate = f"bpp {row['bpp']:.3f} " if row.get("bpp") is not None else ""
        log(f"[{total - len(todo) + i}/{total}] {method.name} {pt} {name}: {rate}{q}  "
            f"({el:.0f} s, ~{el / i * (len(todo) - i):.0f} s left)")
    sync(res, method.point_info)
    write_result(out, res)
    return res


# -- curves -------------------------------------------------------------------------------------
@dataclass
class Curve:
    label: str
    x: np.ndarray  # mean rate (or params), increasing
    y: np.ndarray  # mean quality
    points: list[dict]  # the sweep point of each (x, y)
    n_images: int


def curve(res: dict, x: str = "bpp", y: str = "psnr", images: Iterable[str] | None = None
          ) -> Curve:
    """Per-point means over the rows (optionally only some images), sorted by x.

    Points where some image lacks x or y are left out, and so are points without a row for
    every image (of `images`, or of the run): a half-finished point is not a mean.
    """
    rows = res["rows"]
    if images is not None:
        want = set(images)
        rows = [r for r in rows if r["image"] in want]
    else:
        want = {r["image"] for r in rows}
    pts = []
    for s in summarize(rows, res["sweep"]):
        if s.get(x) is None or s.get(y) is None:
            continue
        if s["n"] != len(want):
            continue
        pts.append(s)
    pts.sort(key=lambda s: s[x])
    n = len({r["image"] for r in rows})
    return Curve(res.get("label") or res["codec"], np.array([s[x] for s in pts], float),
                 np.array([s[y] for s in pts], float),
                 [{k: s[k] for k in res["sweep"]} for s in pts], n)


def value_at(c: Curve, x: float) -> float | None:
    """y at x by linear interpolation in log(x) between the two neighbouring points of the
    mean curve; None outside the curve's range (no extrapolation)."""
    if len(c.x) == 0 or not (c.x[0] <= x <= c.x[-1]):
        return None
    return float(np.interp(math.log(x), np.log(c.x), c.y))


def common_images(results: list[dict]) -> list[str]:
    names = None
    for r in results:
        s = {row["image"] for row in r["rows"]}
        names = s if names is None else names & s
    return sorted(names or [])
