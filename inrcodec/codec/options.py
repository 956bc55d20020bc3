"""What decides a file's bytes besides the image and the shared model, declared once: the
encode options of the command line (`encode`, `encode-dir`), the Python API, the dataset
tools and the Pillow plugin. Each field's metadata is its command-line help; None means
the mode's default. `registry.settings_for` turns these into a mode and its settings,
refusing by name what the chosen mode does not take."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

from ..config import EFFORTS, MODES, QUALITY_RANGE
from ..errors import InrcodecError


def _opt(text: str, kind: type | tuple = str, bounds: tuple | None = None):
    """An option's command-line face: its help text, its type (or a tuple of choices) and
    its bounds."""
    return {"help": text, "kind": kind, "range": bounds}


@dataclass(frozen=True)
class EncodeOptions:
    mode: str | None = field(default=None, metadata=_opt(
        "latent (the default): entropy-coded latent grids and a shared sparse SIREN "
        "synthesis (format 7); weights: tiles of the shared sparse network (format 5, or "
        "format 2 with --preset paper or one of --lr, --step-scale, --quantizer, --coder).",
        MODES))
    quality: int | None = field(default=None, metadata=_opt(
        "1..100 (default 50): the rate-distortion trade-off (higher: larger file, higher "
        "PSNR); in format 2, level, quantiser step and learning rate together.", int,
        QUALITY_RANGE))
    bpp: float | None = field(default=None, metadata=_opt(
        "A file of at most this many bits per pixel. Latent mode: a short pilot fit sets the "
        "rate, then one full fit (about 1.3 encodes); weight mode: searches --quality.",
        float))
    psnr: float | None = field(default=None, metadata=_opt(
        "Smallest file whose decoded PSNR is at least this many dB (searches --quality).",
        float))
    level: int | None = field(default=None, metadata=_opt(
        "Ladder level of the shared model: higher is sparser, faster to decode and lower "
        "quality (default: the model's default level; see `inrcodec info MODEL`).", int))
    steps: int | None = field(default=None, metadata=_opt(
        "Optimiser steps: more takes longer and gives higher quality (default: by --effort).",
        int, (0, None)))
    effort: str | None = field(default=None, metadata=_opt(
        "How many steps when --steps is not given (default: default).", EFFORTS))
    seed: int | None = field(default=None, metadata=_opt("Random seed (default 0).", int))
    preset: str | None = field(default=None, metadata=_opt(
        "Weight mode: paper is the paper's encoder (format 2: one level for every tile, lr "
        "1e-4, 100 steps, step sizes by rule).", ("paper",)))
    format_version: int | None = field(default=None, metadata=_opt(
        "Weight mode: 5 (default), 2, or 1 (fp16 files that inrcodec 0.1 reads).", (1, 2, 5)))
    lr: float | None = field(default=None, metadata=_opt(
        "Format 2: Adam learning rate (default 1e-4; 1e-3 under --quality, --bpp, --psnr).",
        float))
    quantizer: str | None = field(default=None, metadata=_opt(
        "Format 2: delta (default): integer changes from the shared initialisation; fp16: "
        "every value as a half float (the version-1 storage).", ("delta", "fp16")))
    step_scale: float | None = field(default=None, metadata=_opt(
        "Format 2: the delta quantiser's step, as a multiple of each tensor's RMS change "
        "(default 0.5): larger is coarser and smaller.", float))
    coder: str | None = field(default=None, metadata=_opt(
        "Format 2: entropy coder of the delta integers (default auto: the smaller).",
        ("auto", "zstd", "range")))
    qat_fraction: float | None = field(default=None, metadata=_opt(
        "Format 2: the last share of the steps that are quantiser-aware.", float))

    def __post_init__(self):
        if self.mode is not None and self.mode not in MODES:
            raise InrcodecError(f"unknown mode {self.mode!r}; expected {' or '.join(MODES)}")
        if self.effort is not None and self.effort not in EFFORTS:
            raise InrcodecError(f"unknown effort {self.effort!r}; expected one of "
                                f"{', '.join(EFFORTS)}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def of(cls, options: "EncodeOptions | Mapping | None" = None, **more) -> "EncodeOptions":
        """Options from an EncodeOptions, a mapping of them, keywords, or none (defaults);
        an unknown name is an error that lists the known ones."""
        if isinstance(options, EncodeOptions) and not more:
            return options
        d = dict(asdict(options) if isinstance(options, EncodeOptions) else options or {})
        d.update(more)
        unknown = sorted(set(d) - set(cls.names()))
        if unknown:
            raise InrcodecError(f"unknown encode option{'s' * (len(unknown) > 1)} "
                                f"{', '.join(unknown)}; the options are "
                                f"{', '.join(cls.names())}")
        return cls(**d)

    def build(self, settings: type, what: str, **defaults):
        """`settings` (a mode's settings dataclass) from the options given, over `defaults`;
        an option that is not one of its fields is refused, by name, for `what`."""
        given = self.given()
        taken = {f.name for f in fields(settings)}
        refused = [k for k in given if k not in taken]
        if refused:
            raise InrcodecError(
                f"{what} does not take {', '.join(refused)}; it takes "
                f"{', '.join(k for k in self.names() if k in taken or k in ('mode', 'effort'))}")
        return settings(**{**defaults, **given})

    def given(self) -> dict:
        """The options set (not None), mode and effort aside."""
        return {k: v for k, v in asdict(self).items()
                if v is not None and k not in ("mode", "effort")}


EncodeOptions.__doc__ = (
    "What decides a file's bytes besides the image and the shared model (None: the mode's "
    "default). Build one with EncodeOptions(...) or EncodeOptions.of(mapping, **more).\n\n"
    + "\n".join(f"{f.name}: {f.metadata['help']}" for f in fields(EncodeOptions)))
