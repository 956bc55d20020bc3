"""Pillow reads and writes .inr files: `Image.open("x.inr")`, `im.save("y.inr", quality=40)`.

Registered when `inrcodec` is imported. Opening reads the header only (size and mode);
the network is decoded on `load()`. The decoder renders at any size, so `draft()` (used by
`thumbnail`) and `reduce()` ask it for the smaller picture directly instead of rendering
the full one and shrinking it.
"""
from __future__ import annotations

import math
from io import BytesIO

from PIL import Image, ImageFile, UnidentifiedImageError

from .codec import bitstream
from .errors import InrcodecError

FORMAT = "INR"
# Save parameters passed on to the encoder besides its options (EncodeOptions); Pillow's
# own (and other formats') are ignored, as Pillow's plugins do.
SAVE_EXTRAS = ("model", "device")


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == bitstream.MAGIC


class InrImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "inrcodec neural image"

    def _open(self) -> None:
        head = self.fp.read(bitstream.max_header_size())
        try:
            h = bitstream.unpack_header(head)
        except InrcodecError as e:
            # The magic matched, so this is a damaged .inr file, not some other format.
            raise UnidentifiedImageError(f"damaged .inr file: {e}") from None
        self._mode = h.image_mode_name
        self._size = (h.width, h.height)
        self.info["inr_version"] = h.version
        self._render_size = self._size
        self.tile = [ImageFile._Tile("inr", (0, 0, *self._size), 0, None)]

    def draft(self, mode, size):
        """Render at the smallest size, aspect kept, that covers `size` (never larger than
        the stored size). Returns (mode, box) as Pillow's other drafts do."""
        if size is None or not self.tile or self.tile[0].codec_name != "inr":
            return None
        w, h = self.size
        s = min(w / size[0], h / size[1])
        if s <= 1:
            return None
        self._render_size = (max(size[0], min(w, math.ceil(w / s))),
                             max(size[1], min(h, math.ceil(h / s))))
        self._size = self._render_size
        self.tile = [ImageFile._Tile("inr", (0, 0, *self._size), 0, None)]
        return self.mode, (0, 0, *self._size)

    def reduce(self, factor, box=None):
        """Rendered at the reduced size when nothing has been loaded yet (Pillow's size
        rule: each side divided by its factor, rounded up)."""
        fx, fy = factor if isinstance(factor, (list, tuple)) else (factor, factor)
        full = box is None or tuple(box) == (0, 0, *self.size)
        if not (full and self.tile and self.tile[0].codec_name == "inr"):
            return super().reduce(factor, box)
        w, h = self.size
        size = (-(-w // fx), -(-h // fy))
        return Image.frombytes(self.mode, size, self._render(size))

    def _render(self, size) -> bytes:
        from .api import decode_array  # the codec, imported on first use

        self.fp.seek(0)
        data = self.fp.read()
        try:
            a = decode_array(data, size)
        except InrcodecError as e:
            raise OSError(f"cannot decode .inr file: {e}") from None
        return a.tobytes()

    def load(self):
        if self.tile and self.tile[0].codec_name == "inr":
            pixels = self._render(self._render_size)
            if self._exclusive_fp and self.fp:
                self.fp.close()
            self.fp = BytesIO(pixels)
            self.tile = [ImageFile._Tile("raw", (0, 0, *self.size), 0, self.mode)]
        return super().load()


def _save(im: Image.Image, fp, filename) -> None:
    from .api import EncodeOptions, encode  # the codec, imported on first use

    info = im.encoderinfo
    try:
        options = EncodeOptions.of({k: info[k] for k in EncodeOptions.names() if k in info})
        data = encode(im, options, **{k: info[k] for k in SAVE_EXTRAS if k in info})
    except InrcodecError as e:
        raise OSError(f"cannot write INR: {e}") from None
    fp.write(data)


def register() -> None:
    Image.register_open(FORMAT, InrImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".inr")
    Image.register_mime(FORMAT, "image/x-inr")
