"""What every .inr header shares, declared once: a field (name, struct code, meaning), the
seven fields every version starts with (`common_fields`), the image fields' limits and
the describer behind `inrcodec info`. Each mode declares the rest of its header in its
package (latent/format.py, weights/format.py); bitstream.py lays headers out in a file."""
from __future__ import annotations

import struct
from dataclasses import asdict, dataclass

from ..errors import FormatError

MAGIC = b"INRC"
# The image's channels (not the codec mode: that is the format version's).
IMAGE_MODES = {0: "L", 1: "LA", 2: "RGB", 3: "RGBA"}
IMAGE_MODE_IDS = {v: k for k, v in IMAGE_MODES.items()}
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28
MAX_SECTION = 1 << 30
FLAG_ALPHA = 1
MODEL_HASH = "SHA-256 of the shared-model file needed to decode"


@dataclass(frozen=True)
class Field:
    name: str
    fmt: str  # struct code, little-endian
    meaning: str


def common_fields(version: int, what: str = "", model_hash: str = MODEL_HASH
                  ) -> tuple[Field, ...]:
    """The fields every version's header starts with, in this order; `what` names the
    version's mode in the version field's meaning, `model_hash` says what the hash names."""
    return (
        Field("magic", "4s", "b'INRC'"),
        Field("version", "B", f"format version (this is {version}{what and ': ' + what})"),
        Field("flags", "B", "bit 0: alpha plane present; other bits 0"),
        Field("model_hash", "32s", model_hash),
        Field("width", "I", "image width in pixels, 1..65536"),
        Field("height", "I", "image height in pixels, 1..65536"),
        Field("image_mode", "B", "0 L, 1 LA, 2 RGB, 3 RGBA"),
    )


def struct_format(fields: tuple[Field, ...]) -> str:
    return "<" + "".join(f.fmt for f in fields)


class ImageHeader:
    """Mixin of every header dataclass. A subclass sets LAYOUTS (version -> its fields,
    `common_fields` first) and NAMES (field -> {id: name} for `describe`), and implements
    `sections` (its sections in file order, with their lengths) and `validate`."""

    LAYOUTS: dict[int, tuple[Field, ...]] = {}
    NAMES: dict[str, dict[int, str]] = {}

    @property
    def size(self) -> int:
        """Bytes of the header in this file's version."""
        return struct.calcsize(struct_format(self.LAYOUTS[self.version]))

    @property
    def image_mode_name(self) -> str:
        return IMAGE_MODES[self.image_mode]

    @property
    def has_alpha(self) -> bool:
        return bool(self.flags & FLAG_ALPHA)

    def sections(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def describe(self) -> list[tuple[str, str, str]]:
        """(field, value, meaning) rows, ids spelled out: `inrcodec info`."""
        names = {"image_mode": IMAGE_MODES, **self.NAMES}
        d = asdict(self)
        rows = []
        for f in self.LAYOUTS[self.version]:
            v = d[f.name]
            if f.name == "model_hash":
                v = v.hex()
            elif f.name == "magic":
                v = v.decode("latin-1")
            elif f.name in names:
                v = f"{v} ({names[f.name].get(v, '?')})"
            rows.append((f.name, str(v), f.meaning))
        return rows

    def validate(self) -> None:
        raise NotImplementedError


def validate_image(h) -> None:
    """The fields every mode has: flags, size, image mode and the alpha plane's length."""
    if h.flags & ~FLAG_ALPHA:
        raise FormatError(f"unknown flag bits {h.flags:#04x}")
    if not (1 <= h.width <= MAX_SIDE and 1 <= h.height <= MAX_SIDE):
        raise FormatError(f"image size {h.width}x{h.height} outside 1..{MAX_SIDE}")
    if h.width * h.height > MAX_PIXELS:
        raise FormatError(f"image of {h.width * h.height} pixels exceeds the limit {MAX_PIXELS}")
    if h.image_mode not in IMAGE_MODES:
        raise FormatError(f"unknown image mode id {h.image_mode}")
    if h.has_alpha != IMAGE_MODES[h.image_mode].endswith("A"):
        raise FormatError("alpha flag disagrees with the image mode")


def validate_alpha_len(h) -> None:
    if (h.alpha_len == 0) == h.has_alpha:
        raise FormatError("alpha length disagrees with the alpha flag")
