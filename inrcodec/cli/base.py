"""The `inrcodec` command group and what its commands share: errors as one line and an
exit status, the options generated from EncodeOptions, the render options, torchrun."""
from __future__ import annotations

import functools
import math
import re
import sys
from dataclasses import fields

import click

from .. import __version__
from ..codec.latent.config import EFFORT_STEPS as LATENT_EFFORT
from ..codec.options import EncodeOptions
from ..codec.weights.config import PAPER_EFFORT_STEPS, RD_EFFORT
from ..errors import InrcodecError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="inrcodec")
def main():
    """Compress images into small neural networks (Meta-SparseINR, with latent grids).

    The default (latent) mode writes each image as a pyramid of entropy-coded integer
    latent grids and a few changes to a meta-learned, magnitude-pruned SIREN synthesis
    shipped with the package; encoding fits both to the image (900 optimisation steps by
    default) for distortion + lambda x rate. Decoding renders the network at the stored
    size or any other. The weight mode (--mode weights) is the paper's own method: tiles
    of the shared sparse SIREN whose surviving weights are fitted and stored.

    \b
    Examples:
      inrcodec encode photo.png photo.inr
      inrcodec encode photo.png photo.inr --quality 70
      inrcodec decode photo.inr photo-decoded.png
      inrcodec decode photo.inr big.png --scale 2
      inrcodec info photo.inr
    """


def fail(msg: str, code: int = 1):
    click.echo(f"inrcodec: error: {msg}", err=True)
    sys.exit(code)


def user_errors(fn):
    """Codec errors become one line on stderr and exit 1; Ctrl-C exits 130. No tracebacks."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InrcodecError as e:
            fail(str(e))
        except KeyboardInterrupt:
            fail("interrupted; no output was written", 130)
    return wrapper


def distributed():
    """The torch.distributed group when launched by torchrun (WORLD_SIZE > 1), else None."""
    import atexit

    from ..distributed import from_env, shutdown
    try:
        dist = from_env()
    except (RuntimeError, ValueError, KeyError) as e:
        raise InrcodecError(f"cannot join the torchrun process group: {e}") from None
    if dist is not None:
        atexit.register(shutdown)  # leave the group cleanly when the command ends
    return dist


def fmt_psnr(p: float | None) -> str:
    return "inf" if p is None or math.isinf(p) else f"{p:.2f}"


def _effort_help() -> str:
    return ("; ".join(f"{k}: {LATENT_EFFORT[k]} steps (latent), {RD_EFFORT[k][1]} steps and "
                      f"{RD_EFFORT[k][0]} candidate level(s) per tile (format 5), "
                      f"{PAPER_EFFORT_STEPS[k]} (format 2)" for k in LATENT_EFFORT) + ".")


def _click_type(f):
    kind, rng = f.metadata["kind"], f.metadata["range"]
    if isinstance(kind, tuple):
        return click.Choice([str(c) for c in kind])
    if kind is int and rng:
        return click.IntRange(*rng)
    return kind


def _to_choice_type(f):
    """Choices that are numbers come back from click as strings: give the number."""
    kind = f.metadata["kind"]
    if isinstance(kind, tuple) and all(isinstance(c, int) for c in kind):
        return lambda ctx, param, v: None if v is None else int(v)
    return None


def encode_options(fn):
    """EncodeOptions' fields as command-line options (--format-version for format_version);
    the command receives them as keywords: `take_encode_options` gathers them."""
    for f in reversed(fields(EncodeOptions)):
        help = f.metadata["help"] + (" " + _effort_help() if f.name == "effort" else "")
        fn = click.option("--" + f.name.replace("_", "-"), f.name, type=_click_type(f),
                          callback=_to_choice_type(f), help=help)(fn)
    return fn


def take_encode_options(kw: dict) -> EncodeOptions:
    """The EncodeOptions among a command's keywords (removed from them)."""
    return EncodeOptions(**{k: kw.pop(k) for k in EncodeOptions.names()})


def _size(ctx, param, value):
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not m:
        raise click.BadParameter("expected WIDTHxHEIGHT, e.g. 1024x768")
    return int(m.group(1)), int(m.group(2))


MODEL_OPTION = click.option("--model", type=click.Path(dir_okay=False),
                            help="Shared model file (default: the one shipped with inrcodec "
                            "for the mode; a file names its model, and shipped ones are "
                            "found by themselves).")


def device_option(what: str):
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                        show_default=True, help=f"Where to {what}: auto uses a GPU when "
                        "there is one.")


def render_options(fn):
    """--scale / --size / --model / --device: what decode and decode-dir render with."""
    for opt in reversed((
            click.option("--scale", type=float,
                         help="Render at this multiple of the stored size, e.g. 2 or 0.5."),
            click.option("--size", callback=_size,
                         help="Render at WIDTHxHEIGHT pixels, e.g. 1920x1080."),
            MODEL_OPTION, device_option("render"))):
        fn = opt(fn)
    return fn
