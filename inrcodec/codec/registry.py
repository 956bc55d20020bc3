"""The one table of codec modes: each mode's package, the format versions it writes and
reads, registered with the container (bitstream.py), and how a mode name and the encode
options become a mode and its settings. The only module of codec/ outside the modes'
packages that imports them."""
from __future__ import annotations

from ..config import DEFAULT_MODE
from . import bitstream
from .latent import codec as latent
from .options import EncodeOptions
from .weights.format import Header, TileHeader


class _Deferred:
    """The weight mode's `Mode` (weights/codec.py's RD or PAPER), imported with torch on
    first use: a call that reads or writes only latent-mode files never loads torch."""

    def __init__(self, attr: str):
        self._attr = attr

    def __getattr__(self, name):
        from .weights import codec as weights
        return getattr(getattr(weights, self._attr), name)


def _weights_settings(options: EncodeOptions):
    from .weights import codec as weights
    return weights.settings_for(options)


# format version -> the mode that reads it
READERS = {**{v: latent.MODE for v in latent.MODE.reads},
           **{v: _Deferred("RD") for v in TileHeader.LAYOUTS},
           **{v: _Deferred("PAPER") for v in Header.LAYOUTS}}
# mode name -> how the encode options choose that mode's format and settings
SETTINGS_FOR = {latent.NAME: latent.settings_for, "weights": _weights_settings}

for _h in (latent.MODE.header, TileHeader, Header):
    bitstream.register(_h)


def settings_for(options: EncodeOptions | dict | None = None, /, **more
                 ) -> tuple[object, object]:
    """(the mode, its settings) for encode options (EncodeOptions.of's arguments); the mode
    is config.DEFAULT_MODE unless they name one. Options the chosen mode does not take are
    refused by name."""
    options = EncodeOptions.of(options, **more)
    return SETTINGS_FOR[options.mode or DEFAULT_MODE](options)
