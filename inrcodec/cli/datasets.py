"""`inrcodec encode-dir` and `decode-dir`: folders of images and of .inr files, resumable,
shared out across torchrun's processes."""
from __future__ import annotations

import json
import sys

import click

from .base import (MODEL_OPTION, device_option, distributed, encode_options, fail, main,
                   render_options, take_encode_options, user_errors)
from .progress import DatasetProgress


def _runtime_options(fn):
    """How format 2's batched fit runs (not what it writes); the other formats refuse them."""
    fn = click.option("--compile", "compile_", is_flag=True, default=None,
                      help="Format 2: torch.compile the fitting pass (experimental: no "
                      "measured gain yet, see benchmarks/speed.py).")(fn)
    fn = click.option("--amp", type=click.Choice(["bf16"]), default=None,
                      help="Format 2: fit in bfloat16 autocast (experimental; lower PSNR, "
                      "see benchmarks/speed.py). Default: float32.")(fn)
    fn = click.option("--compute", type=click.Choice(["auto", "dense", "compact"]),
                      help="Weight mode: masked dense layers, or only the weights the mask "
                      "keeps (compact); default auto: the faster per level and device.")(fn)
    fn = click.option("--batch-pixels", type=click.IntRange(1),
                      help="Format 2: pixels (tiles of several images) fitted in one batch; "
                      "default: what fills the GPU's free memory, or 2^20 on a CPU.")(fn)
    return fn


def _finish(report, writer: bool, as_json: bool, line: str, summary: dict) -> None:
    for f in report.failed:
        click.echo(f"inrcodec: warning: {f['source']}: {f['error']}", err=True)
    if writer:
        click.echo(json.dumps(summary) if as_json else line)
    if report.failed:
        sys.exit(1)


@main.command("encode-dir")
@click.argument("src", type=click.Path(file_okay=False))
@click.argument("dst", type=click.Path(file_okay=False))
@encode_options
@MODEL_OPTION
@device_option("fit")
@_runtime_options
@click.option("--force", is_flag=True,
              help="Re-encode every image, overwriting DST's files and manifest.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line on stdout "
              "(progress stays on stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@user_errors
def encode_dir(src, dst, model, device, batch_pixels, compute, amp, compile_, force, as_json,
               quiet, **kw):
    """Compress every image under the folder SRC into DST (one .inr each + manifest.json).

    Sub-folders are kept (SRC/a/b.png -> DST/a/b.inr). The manifest lists bytes, bpp, PSNR
    and seconds per image; images it already lists are skipped, so running the command
    again resumes an interrupted run. Under torchrun (e.g. `torchrun --nproc_per_node 2 -m
    inrcodec.cli encode-dir SRC DST`) the images are shared out across the processes.
    """
    from .. import batch
    from ..codec.encoder import check_runtime, settings_for
    from ..model import accel
    options = take_encode_options(kw)
    md, _ = settings_for(options)
    check_runtime(md, {"compute": compute, "amp": amp, "compile": compile_,
                       "batch_pixels": batch_pixels})
    dist = distributed()
    writer = dist is None or dist.is_writer
    progress = DatasetProgress("encode-dir", not quiet and writer)
    try:
        with accel.options(compute=compute or "auto", amp=amp, compile=bool(compile_)):
            r = batch.encode_dataset(src, dst, options, model=model, device=device,
                                     batch_pixels=batch_pixels, force=force,
                                     progress=progress if progress.enabled else None,
                                     dist=dist)
    except KeyboardInterrupt:
        progress.close()
        fail("interrupted; the images finished so far are kept: run the same command again "
             "to resume", 130)
    finally:
        progress.close()
    _finish(r, writer, as_json, f"{dst}: {r.encoded} encoded, {r.skipped} already done, "
            f"{len(r.failed)} failed, {r.seconds:.1f} s; manifest {r.manifest}", r.summary())


@main.command("decode-dir")
@click.argument("src", type=click.Path(file_okay=False))
@click.argument("dst", type=click.Path(file_okay=False))
@click.option("--format", "fmt", default="png", show_default=True,
              help="Output image format (file extension): png, webp, tiff, jpg, bmp...")
@render_options
@click.option("--force", is_flag=True, help="Overwrite images that already exist in DST.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line on stdout "
              "(progress stays on stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@user_errors
def decode_dir(src, dst, fmt, scale, size, model, device, force, as_json, quiet):
    """Decode every .inr file under the folder SRC into images under DST.

    Images that already exist in DST are skipped (a rerun resumes) unless --force.
    """
    from .. import batch
    dist = distributed()
    writer = dist is None or dist.is_writer
    progress = DatasetProgress("decode-dir", not quiet and writer)
    try:
        r = batch.decode_dataset(src, dst, format=fmt, size=size, scale=scale, model=model,
                                device=device, force=force,
                                progress=progress if progress.enabled else None, dist=dist)
    finally:
        progress.close()
    summary = r.summary()
    summary["decoded"] = summary.pop("encoded")
    summary.pop("manifest")
    _finish(r, writer, as_json, f"{dst}: {r.encoded} decoded, {r.skipped} already there, "
            f"{len(r.failed)} failed, {r.seconds:.1f} s", summary)
