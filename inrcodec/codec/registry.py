"""The one table of codec modes: each mode's package, the format versions it writes and
reads, registered with the container (bitstream.py), and how a mode name and the encode
options become a mode and its settings. The only module of codec/ outside the modes'
packages that imports them."""
from __future__ import annotations

from ..config import DEFAULT_MODE
from . import bitstream
from .latent import codec as latent
from .mode import Mode
from .options import EncodeOptions
from .weights import codec as weights

MODES: tuple[Mode, ...] = (latent.MODE, weights.RD, weights.PAPER)
# mode name -> how the encode options choose that mode's format and settings
SETTINGS_FOR = {latent.NAME: latent.settings_for, weights.NAME: weights.settings_for}
# format version -> the mode that reads it
READERS: dict[int, Mode] = {v: m for m in MODES for v in m.reads}

for _m in MODES:
    bitstream.register(_m.header)


def settings_for(options: EncodeOptions | dict | None = None, /, **more
                 ) -> tuple[Mode, object]:
    """(the mode, its settings) for encode options (EncodeOptions.of's arguments); the mode
    is config.DEFAULT_MODE unless they name one. Options the chosen mode does not take are
    refused by name."""
    options = EncodeOptions.of(options, **more)
    return SETTINGS_FOR[options.mode or DEFAULT_MODE](options)
