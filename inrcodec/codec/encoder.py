"""The encoder: images + a mode's settings -> .inr bytes, with a report per image, through
a table of modes. One image and a dataset batch take the same path (`encode_images`), so
they write the same bytes.

`settings_for` is the one place where a mode name and the caller's options (the CLI's
and the API's alike) become a mode and its settings; every option not given is None.
"""
from __future__ import annotations

from ..config import DEFAULT_LR, DEFAULT_MODE, EFFORT_STEPS, FitConfig, RD_EFFORT
from ..errors import InrcodecError
from ..io import LoadedImage, colour_of
from ..metrics import psnr as psnr_u8
from . import decoder
from .latent import codec as latent
from .latent.format import VERSION as LATENT_VERSION
from .mode import Mode, ProgressFn
from .report import EncodeReport
from .weights import codec as weights
from .weights.format import RD_VERSION, SUPPORTED_VERSIONS, VERSION as PAPER_VERSION

# (mode name, format version it writes) -> the mode that writes it.
MODES: dict[tuple[str, int], Mode] = {
    ("latent", LATENT_VERSION): latent.MODE,
    ("weights", RD_VERSION): weights.RD,
    **{("weights", v): weights.PAPER for v in SUPPORTED_VERSIONS},
}
MODE_NAMES = ("latent", "weights")
PAPER_OPTIONS = ("lr", "step_scale", "quantizer", "coder", "qat_fraction")  # format 2's own
__all__ = ["EncodeReport", "ProgressFn", "MODES", "settings_for", "encode_images",
           "decoded_psnr"]


def settings_for(mode: str | None = None, *, effort: str | None = None,
                 preset: str | None = None, format_version: int | None = None,
                 steps: int | None = None, **options) -> tuple[Mode, object]:
    """(the mode, its settings) for a mode name (default config.DEFAULT_MODE) and options.

    The weight mode writes format 5 unless the paper's preset, an older format or one of
    format 2's own options (lr, step_scale, quantizer, coder, qat_fraction) is asked for.
    `effort` sets the default steps (config.EFFORT_STEPS, RD_EFFORT) and, in format 5, the
    candidate levels. Options the chosen mode does not take are refused by name.
    """
    mode = DEFAULT_MODE if mode is None else mode
    if mode not in MODE_NAMES:
        raise InrcodecError(f"unknown mode {mode!r}; expected {' or '.join(MODE_NAMES)}")
    effort = "default" if effort is None else effort
    if effort not in EFFORT_STEPS:
        raise InrcodecError(f"unknown effort {effort!r}")
    given = {k: v for k, v in options.items() if v is not None}
    if preset not in (None, "paper"):
        raise InrcodecError(f"unknown preset {preset!r}")
    paper_given = [k for k in PAPER_OPTIONS if k in given]
    if mode == "latent":
        if preset or format_version is not None:
            raise InrcodecError("the latent mode writes format 4; --preset and "
                                "--format-version are for the weight mode")
        if paper_given:
            raise InrcodecError(f"the latent mode takes --quality (or --bpp, --psnr), "
                                f"--level and --steps only, not {', '.join(paper_given)}")
        md = MODES[("latent", LATENT_VERSION)]
        return md, md.settings(steps=EFFORT_STEPS[effort]["latent"] if steps is None
                               else steps, **given)
    if preset == "paper":
        if format_version == RD_VERSION or "lr" in given:
            raise InrcodecError("--preset paper is format 2 with lr 1e-4; drop "
                                "--format-version 5 and --lr")
        given["lr"] = DEFAULT_LR
    version = format_version if format_version is not None else \
        PAPER_VERSION if preset or paper_given else RD_VERSION
    if version == RD_VERSION:
        if paper_given:
            raise InrcodecError(f"format 5 learns its step sizes and codes with its own "
                                f"priors; it takes --quality (or --bpp, --psnr), --level, "
                                f"--steps and --effort, not {', '.join(paper_given)}")
        md = MODES[("weights", RD_VERSION)]
        return md, md.settings(steps=RD_EFFORT[effort][1] if steps is None else steps,
                               effort=effort, **given)
    # a version no mode writes still goes to format 2's settings, which name the ones it can
    md = MODES.get(("weights", version), weights.PAPER)
    return md, md.settings(steps=EFFORT_STEPS[effort]["weights"] if steps is None else steps,
                           version=version, **given)


def decoded_psnr(data: bytes, img: LoadedImage, model=None, device=None) -> float:
    """PSNR of the decoded file against the source: what the receiver will see."""
    decoded = decoder.decode_array(data, model=model, device=device)
    ref = colour_of(img)
    return psnr_u8(decoded[:, :, :ref.shape[2]], ref)


def encode_images(images: list[LoadedImage], mode: Mode, model, settings, *, device=None,
                  max_batch_pixels: int = FitConfig.max_batch_pixels,
                  progress: ProgressFn | None = None) -> list[EncodeReport]:
    """Encode images with one mode, its shared model and its settings -> a report per
    image. A mode with `encode_batch` fits the images together; the others go one by one.
    `progress(done, total, loss)` counts optimiser steps."""
    settings.check(model)
    if not images:
        return []

    def check(data: bytes, img: LoadedImage) -> float:
        return decoded_psnr(data, img, model, device)
    if mode.encode_batch is not None:
        return mode.encode_batch(images, model, settings, progress, check=check,
                                 device=device, max_batch_pixels=max_batch_pixels)
    return [mode.encode(img, model, settings, progress, check=check, device=device)
            for img in images]
