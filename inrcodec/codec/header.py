"""What every .inr header shares, declared once: a field (name, struct code, meaning), the
image fields every mode has (size, mode, alpha) and their limits, and the describer behind
`inrcodec info`. Each mode declares its own header fields in its package (latent/format.py,
weights/format.py); bitstream.py lays them out in a file."""
from __future__ import annotations

import struct
from dataclasses import asdict, dataclass

from ..errors import FormatError

MAGIC = b"INRC"
MODES = {0: "L", 1: "LA", 2: "RGB", 3: "RGBA"}
MODE_IDS = {v: k for k, v in MODES.items()}
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28
MAX_SECTION = 1 << 30
FLAG_ALPHA = 1


@dataclass(frozen=True)
class Field:
    name: str
    fmt: str  # struct code, little-endian
    meaning: str


def struct_format(fields: tuple[Field, ...]) -> str:
    return "<" + "".join(f.fmt for f in fields)


class ImageHeader:
    """Mixin of every header dataclass. A subclass sets LAYOUTS (version -> its fields) and
    NAMES (field -> {id: name} for `describe`), and implements `sections` (its sections
    in file order, with their lengths) and `validate`."""

    LAYOUTS: dict[int, tuple[Field, ...]] = {}
    NAMES: dict[str, dict[int, str]] = {}

    @property
    def size(self) -> int:
        """Bytes of the header in this file's version."""
        return struct.calcsize(struct_format(self.LAYOUTS[self.version]))

    @property
    def mode_name(self) -> str:
        return MODES[self.mode]

    @property
    def has_alpha(self) -> bool:
        return bool(self.flags & FLAG_ALPHA)

    def sections(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def describe(self) -> list[tuple[str, str, str]]:
        """(field, value, meaning) rows, ids spelled out: `inrcodec info`."""
        names = {"mode": MODES, **self.NAMES}
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
    if h.mode not in MODES:
        raise FormatError(f"unknown image mode id {h.mode}")
    if h.has_alpha != MODES[h.mode].endswith("A"):
        raise FormatError("alpha flag disagrees with the image mode")


def validate_alpha_len(h) -> None:
    if (h.alpha_len == 0) == h.has_alpha:
        raise FormatError("alpha length disagrees with the alpha flag")
