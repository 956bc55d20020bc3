"""`inrcodec encode`, `decode` and `info`: one file at a time."""
from __future__ import annotations

import json
import time

import click

from .. import api
from .base import (MODEL_OPTION, device_option, encode_options, fmt_psnr, main, render_options,
                   take_encode_options, user_errors)
from .progress import StepProgress


def describe(r) -> str:
    """One line for an encode report: size, quality and how it was made."""
    where = f"level {r.level}" if not r.levels else "tiles per level " + ", ".join(
        f"{lv}: {n}" for lv, n in sorted(r.levels.items()))
    how = [f"format {r.format_version}", where, f"{r.steps} steps"]
    if r.quantizer is not None:
        how.append(r.quantizer + (f" x{r.step_scale:g}" if r.step_scale is not None else "")
                   + f", {r.coder}")
    if r.quality is not None:
        how.append(f"quality {r.quality:g}")
    return (f"{r.bytes} bytes, {r.bpp:.3f} bpp, PSNR {fmt_psnr(r.psnr)} dB, "
            + ", ".join(how) + f", {r.seconds:.1f} s")


@main.command()
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@encode_options
@MODEL_OPTION
@device_option("fit")
@click.option("--force", is_flag=True, help="Overwrite DST if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line on stdout "
              "(progress stays on stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@user_errors
def encode(src, dst, model, device, force, as_json, quiet, **kw):
    """Compress the image SRC into the .inr file DST.

    Reads PNG, JPEG, WebP, TIFF, BMP, GIF... Greyscale stays greyscale; an alpha channel is
    kept losslessly; palette, 16-bit and CMYK images are converted (with a notice).
    Prints the size, bits per pixel and the PSNR the decoder will reproduce.
    """
    options = take_encode_options(kw)
    progress = StepProgress("fitting", not quiet)
    try:
        r = api.encode_file(src, dst, options, force=force, model=model, device=device,
                            progress=progress if progress.enabled else None)
    finally:
        progress.close()
    for n in r.notices:
        click.echo(f"inrcodec: note: {n}", err=True)
    if as_json:
        click.echo(json.dumps({**r.summary(), "src": src, "dst": dst}))
    else:
        click.echo(f"{dst}: {describe(r)}")


@main.command()
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@render_options
@click.option("--force", is_flag=True, help="Overwrite DST if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line on stdout.")
@user_errors
def decode(src, dst, scale, size, model, device, force, as_json):
    """Decode the .inr file SRC into the image DST (format from DST's extension).

    The network is continuous, so --scale or --size renders at any resolution.
    """
    t0 = time.perf_counter()
    img = api.decode_file(src, dst, size=size, scale=scale, force=force, model=model, device=device)
    secs = time.perf_counter() - t0
    if as_json:
        click.echo(json.dumps({"src": src, "dst": dst, "width": img.width, "height": img.height,
                               "image_mode": img.mode, "seconds": secs}))
    else:
        click.echo(f"{dst}: {img.width}x{img.height} {img.mode}, {secs:.2f} s")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@user_errors
def info(file, as_json):
    """Describe a .inr file (its header) or a shared model (its sparsity ladder)."""
    d = api.info(file)
    if as_json:
        if d["kind"] == "inr":
            d["fields"] = {name: value for name, value, _ in d["fields"]}
        click.echo(json.dumps(d))
    elif d["kind"] == "inr":
        _echo_inr(file, d)
    elif d["kind"] == "latent-model":
        _echo_latent_model(file, d)
    else:
        _echo_weight_model(file, d)


def _echo_inr(file, d: dict) -> None:
    click.echo(f"{file}: inrcodec image, {d['bytes']} bytes, {d['bpp']:.3f} bpp")
    for name, value, meaning in d["fields"]:
        click.echo(f"  {name:<12} {value:<66} {meaning}" if len(value) > 20 else
                   f"  {name:<12} {value:<20} {meaning}")


def _echo_latent_model(file, d: dict) -> None:
    a = d["arch"]
    click.echo(f"{file}: inrcodec latent model {d['hash']}")
    click.echo(f"  {a['levels']} latent grids{' + coordinates' if a['coords'] else ''}; "
               f"synthesis {a['layers']} x {a['hidden']} {a['act']}"
               + (f" w0 {a['w0']:g}" if a["act"] == "sine" else "")
               + f"; ARM {a['arm_hidden']} wide"
               + (", 2 layers (residual)" if d.get("arm_layers") == 2 else "")
               + f"; default level {d['default_level']}")
    for k, v in sorted(d["info"].items()):
        click.echo(f"  {k}: {v}")
    click.echo(f"  {'level':>5} {'params':>8} {'MACs/px':>8}")
    for lv in d["levels"]:
        click.echo(f"  {lv['level']:>5} {lv['params']:>8} {lv['macs_per_pixel']:>8}")


def _echo_weight_model(file, d: dict) -> None:
    a = d["arch"]
    click.echo(f"{file}: inrcodec shared model (weight mode) {d['hash']}")
    click.echo(f"  {a['family'].upper()} depth {a['depth']} width {a['width']}"
               + (f" w0 {a['w0']:g}" if a["family"] == "siren" else f" sigma {a['ffn_sigma']:g}")
               + f", tile {d['tile']}x{d['tile']}, default level {d['default_level']}")
    for k, v in sorted(d["info"].items()):
        click.echo(f"  {k}: {v}")
    click.echo(f"  {'level':>5} {'density':>8} {'weights':>8} {'params':>8} {'live':>8}"
               + ("  base" if any("base" in lv for lv in d["levels"]) else ""))
    for lv in d["levels"]:
        click.echo(f"  {lv['level']:>5} {lv['density']:>8.4f} {lv['weights']:>8} {lv['params']:>8}"
                   f" {lv['live']:>8}" + (f"  {lv['base']}" if "base" in lv else ""))
