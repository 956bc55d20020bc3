"""The encoder: images + a mode's settings -> .inr bytes, with a report per image. One
image and a dataset batch take the same path (`encode_images`), so they write the same
bytes. Which mode and settings the caller's options name is registry.settings_for's."""
from __future__ import annotations

from ..errors import InrcodecError
from ..io import LoadedImage, colour_of
from ..metrics import psnr as psnr_u8
from . import decoder
from .mode import Mode, ProgressFn
from .registry import settings_for
from .report import EncodeReport

__all__ = ["EncodeReport", "ProgressFn", "settings_for", "encode_images", "decoded_psnr",
           "check_runtime"]


def decoded_psnr(data: bytes, img: LoadedImage, model=None, device=None) -> float:
    """PSNR of the decoded file against the source: what the receiver will see."""
    decoded = decoder.decode_array(data, model=model, device=device)
    ref = colour_of(img)
    return psnr_u8(decoded[:, :, :ref.shape[2]], ref)


def check_runtime(mode: Mode, given: dict) -> None:
    """Refuse the run-time options (mode.RUNTIME_OPTIONS) given that `mode` ignores."""
    ignored = [k for k, v in given.items() if v is not None and k not in mode.runtime]
    if ignored:
        what = f"format {mode.writes[-1]}" if mode.name == "weights" else f"the {mode.name} mode"
        raise InrcodecError(f"{', '.join(ignored)} do{'es' * (len(ignored) == 1)} nothing in "
                            f"{what}; drop {'it' if len(ignored) == 1 else 'them'}")


def encode_images(images: list[LoadedImage], mode: Mode, model, settings, *, device=None,
                  batch_pixels: int | None = None,
                  progress: ProgressFn | None = None) -> list[EncodeReport]:
    """Encode images with one mode, its shared model and its settings -> a report per
    image. A mode with `encode_batch` fits the images together (at most `batch_pixels`
    in a batch); the others go one by one. `progress(done, total, loss)` counts optimiser
    steps."""
    settings.check(model)
    if not images:
        return []

    def check(data: bytes, img: LoadedImage) -> float:
        return decoded_psnr(data, img, model, device)
    if mode.encode_batch is not None:
        return mode.encode_batch(images, model, settings, progress, check=check,
                                 device=device, batch_pixels=batch_pixels)
    return [mode.encode(img, model, settings, progress, check=check, device=device)
            for img in images]
