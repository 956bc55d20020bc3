"""The `inrcodec` command: a thin layer over inrcodec.api."""
from __future__ import annotations

import functools
import json
import math
import re
import sys

import click

from . import __version__, api
from .codec.encoder import MODE_NAMES
from .config import (DEFAULT_LR, DEFAULT_MODE, DEFAULT_STEPS, EFFORT_STEPS, LATENT_STEPS,
                     QUALITY_LR, RD_EFFORT)
from .errors import InrcodecError


def _fail(msg: str, code: int = 1):
    click.echo(f"inrcodec: error: {msg}", err=True)
    sys.exit(code)


def user_errors(fn):
    """Codec errors become one line on stderr and exit 1; Ctrl-C exits 130. No tracebacks."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InrcodecError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted; no output was written", 130)
    return wrapper


class _Progress:
    """Progress on stderr (stdout stays clean for --json): a bar on a terminal, else a
    plain line every `every` seconds so logs of background runs show rate and ETA."""

    def __init__(self, label: str, enabled: bool, every: float = 30.0):
        self.label, self.enabled, self.every = label, enabled, every
        self.bar, self.last, self.t0, self.t_print = None, 0, None, 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: float, total: int, loss: float):
        if not self.enabled:
            return
        import time
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = self.t_print = now
        if not self.tty:
            if now - self.t_print >= self.every or done == total:
                rate = done / max(now - self.t0, 1e-9)
                eta = (total - done) / rate if rate > 0 else float("inf")
                click.echo(f"{self.label}: {done:.0f}/{total} steps ({100 * done / total:.1f}%), "
                           f"{rate:.2f} steps/s, ETA {eta / 60:.1f} min, loss {loss:.5f}",
                           err=True)
                self.t_print = now
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr,
                                         show_eta=True, item_show_func=lambda x: x)
            self.bar.__enter__()
        step = int(done) - self.last
        if step > 0:
            self.bar.update(step, f"loss {loss:.5f}")
            self.last = int(done)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


class _DatasetProgress:
    """Images done, rate and ETA on stderr: one updating line on a terminal, else a line
    every `every` seconds (and at the end) for logs."""

    def __init__(self, label: str, enabled: bool, every: float = 30.0):
        self.label, self.enabled, self.every = label, enabled, every
        self.tty = sys.stderr.isatty()
        self.t_print = None
        self.last = None

    def __call__(self, p):
        if not self.enabled:
            return
        import time
        now = time.monotonic()
        total = "?" if p.total is None else str(p.total)
        eta = "?" if p.eta is None else f"{p.eta / 60:.1f} min"
        line = (f"{self.label}: {p.done:.1f}/{total} images, {p.rate:.3f} images/s, ETA {eta}"
                + (f", {p.skipped} already done" if p.skipped else "")
                + (f", {p.failed} failed" if p.failed else ""))
        self.last = line
        if self.tty:
            click.echo("\r" + line + " " * 8, err=True, nl=False)
        elif self.t_print is None or now - self.t_print >= self.every \
                or (p.total is not None and p.done >= p.total):
            click.echo(line, err=True)
            self.t_print = now

    def close(self):
        if self.enabled and self.tty and self.last is not None:
            click.echo("", err=True)
        self.last = None  # closing twice prints nothing more


def _distributed():
    """The torch.distributed group when launched by torchrun (WORLD_SIZE > 1), else None."""
    import atexit

    from .distributed import from_env, shutdown
    try:
        dist = from_env()
    except (RuntimeError, ValueError, KeyError) as e:
        raise InrcodecError(f"cannot join the torchrun process group: {e}") from None
    if dist is not None:
        atexit.register(shutdown)  # leave the group cleanly when the command ends
    return dist


def _size(ctx, param, value):
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not m:
        raise click.BadParameter("expected WIDTHxHEIGHT, e.g. 1024x768")
    return int(m.group(1)), int(m.group(2))


def _fmt_psnr(p: float) -> str:
    return "inf" if p is None or math.isinf(p) else f"{p:.2f}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="inrcodec")
def main():
    """Compress images into small sparse neural networks (Meta-SparseINR).

    A shared, meta-learned sparse SIREN is shipped with the package. Encoding fits a copy
    of it to your image (a fixed number of optimisation steps) and stores only the
    surviving weights; decoding rebuilds the network and renders it at any size.

    \b
    Examples:
      inrcodec encode photo.png photo.inr
      inrcodec decode photo.inr photo-decoded.png
      inrcodec decode photo.inr big.png --scale 2
      inrcodec info photo.inr
    """


def _encode_options(fn):
    """The options encode and encode-dir share: what decides the bytes of each file."""
    for opt in reversed(_ENCODE_OPTIONS):
        fn = opt(fn)
    return fn


_ENCODE_OPTIONS = (
    click.option("--model", type=click.Path(dir_okay=False),
                 help="Shared model file (default: the model shipped with inrcodec)."),
    click.option("--level", type=int, help="Ladder level of the shared model: higher is sparser, "
                 "smaller and lower quality (default: the model's default level; see "
                 "`inrcodec info`)."),
    click.option("--steps", type=click.IntRange(0),
                 help=f"Optimiser steps: more takes longer and gives higher quality (default "
                 f"{LATENT_STEPS} in the latent mode, {RD_EFFORT['default'][1]} in the weight "
                 f"mode, {DEFAULT_STEPS} in format 2)."),
    click.option("--effort", type=click.Choice(list(EFFORT_STEPS)), default="default",
                 show_default=True, help="Steps preset when --steps is not given: "
                 + "; ".join(f"{k} {v['latent']} (latent) / {RD_EFFORT[k][1]} with "
                             f"{RD_EFFORT[k][0]} candidate level(s) per tile (weights) / "
                             f"{v['weights']} (weights, format 2)"
                             for k, v in EFFORT_STEPS.items()) + "."),
    click.option("--lr", type=float, help=f"Adam learning rate (default {DEFAULT_LR:g}; "
                 f"{QUALITY_LR:g} under --quality, --bpp and --psnr)."),
    click.option("--quality", type=click.IntRange(1, 100),
                 help="1..100 (default 50): the rate-distortion trade-off (higher: larger file, "
                 "higher PSNR); in format 2, level, quantiser step and learning rate together."),
    click.option("--bpp", type=float, help="A file of at most this many bits per pixel. Latent "
                 "mode: a short pilot fit sets the rate, then one full fit (about 1.3 "
                 "encodes); weight mode: searches --quality (fits each level it tries once)."),
    click.option("--psnr", type=float, help="Smallest file whose decoded PSNR is at least this "
                 "many dB (searches --quality)."),
    click.option("--quantizer", type=click.Choice(["delta", "fp16"]),
                 help="Format 2: delta (default): integer changes from the shared "
                 "initialisation; fp16: every value as a half float (the version-1 storage)."),
    click.option("--step-scale", type=float, help="Delta quantiser step, as a multiple of each "
                 "tensor's RMS change (default 0.5): larger is coarser and smaller."),
    click.option("--mode", type=click.Choice(list(MODE_NAMES)), default=DEFAULT_MODE,
                 show_default=True, help="weights: tiles of the shared sparse network "
                 "(format 5: fitted to distortion + rate, a level per tile; format 2 with "
                 "--preset paper or --lr, --step-scale, --quantizer, --coder); latent: entropy-coded latent grids and the deltas of a shared "
                 "sparse SIREN synthesis (format 6; takes --quality, --bpp, --psnr, --level, "
                 "--steps and a latent --model)."),
    click.option("--preset", type=click.Choice(["paper"]), help="paper: the paper's encoder "
                 "(format 2: one level for every tile, lr 1e-4, 100 steps, step sizes by rule)."),
    click.option("--coder", type=click.Choice(["auto", "zstd", "range"]),
                 help="Format 2: entropy coder of the delta integers (default auto: the "
                 "smaller)."),
    click.option("--seed", type=int, default=0, show_default=True, help="Random seed."),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                 show_default=True, help="Where to fit: auto uses a GPU when there is one."),
)


@main.command()
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@_encode_options
@click.option("--format-version", type=click.Choice(["1", "2", "5"]),
              help="Weight mode: 5 (default), 2, or 1 (fp16 files that inrcodec 0.1 reads).")
@click.option("--force", is_flag=True, help="Overwrite DST if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line on stdout "
              "(progress stays on stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@user_errors
def encode(src, dst, model, level, steps, effort, lr, quality, bpp, psnr, quantizer, step_scale,
           mode, preset, coder, seed, device, format_version, force, as_json, quiet):
    """Compress the image SRC into the .inr file DST.

    Reads PNG, JPEG, WebP, TIFF, BMP, GIF... Greyscale stays greyscale; an alpha channel is
    kept losslessly; palette, 16-bit and CMYK images are converted (with a notice).
    Prints the size, bits per pixel and the PSNR the decoder will reproduce.
    """
    progress = _Progress("fitting", not quiet)
    try:
        r = api.encode_file(src, dst, force=force, model=model, level=level, steps=steps, lr=lr,
                            seed=seed, device=device, quality=quality, bpp=bpp, psnr=psnr,
                            quantizer=quantizer, step_scale=step_scale, coder=coder,
                            format_version=int(format_version) if format_version else None,
                            mode=mode, effort=effort, preset=preset,
                            progress=progress if progress.enabled else None)
    finally:
        progress.close()
    for n in r.notices:
        click.echo(f"inrcodec: note: {n}", err=True)
    if as_json:
        s = r.summary()
        s.update(src=src, dst=dst)
        click.echo(json.dumps(s))
    else:
        how = (f"{r.quantizer}" + (f" x{r.step_scale:g}" if r.step_scale is not None else "")
               + f", {r.coder}" + (f", quality {r.quality}" if r.quality is not None else ""))
        where = f"level {r.level}" if not r.levels else "tiles per level " + ", ".join(
            f"{lv}: {n}" for lv, n in sorted(r.levels.items()))
        click.echo(f"{dst}: {r.bytes} bytes, {r.bpp:.3f} bpp, PSNR {_fmt_psnr(r.psnr)} dB, "
                   f"{where}, {r.steps} steps, {how}, {r.seconds:.1f} s")


def _render_options(fn):
    """--scale / --size / --model / --device: what decode and decode-dir render with."""
    for opt in reversed((
            click.option("--scale", type=float,
                         help="Render at this multiple of the stored size, e.g. 2 or 0.5."),
            click.option("--size", callback=_size,
                         help="Render at WIDTHxHEIGHT pixels, e.g. 1920x1080."),
            click.option("--model", type=click.Path(dir_okay=False),
                         help="Shared model file (default: the model shipped with inrcodec)."),
            click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
                         default="auto", show_default=True,
                         help="Where to render: auto uses a GPU when there is one."))):
        fn = opt(fn)
    return fn


@main.command()
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@_render_options
@click.option("--force", is_flag=True, help="Overwrite DST if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line on stdout.")
@user_errors
def decode(src, dst, scale, size, model, device, force, as_json):
    """Decode the .inr file SRC into the image DST (format from DST's extension).

    The network is continuous, so --scale or --size renders at any resolution.
    """
    import time
    t0 = time.perf_counter()
    img = api.decode_file(src, dst, size=size, scale=scale, force=force, model=model, device=device)
    secs = time.perf_counter() - t0
    if as_json:
        click.echo(json.dumps({"src": src, "dst": dst, "width": img.width, "height": img.height,
                               "mode": img.mode, "seconds": secs}))
    else:
        click.echo(f"{dst}: {img.width}x{img.height} {img.mode}, {secs:.2f} s")


def _compute_options(fn):
    """--compute / --amp / --compile: how the networks run (not what they compute)."""
    fn = click.option("--compile", "compile_", is_flag=True,
                      help="torch.compile the fitting pass (experimental; off by default: "
                      "no measured gain yet, see benchmarks/speed.py).")(fn)
    fn = click.option("--amp", type=click.Choice(["bf16"]), default=None,
                      help="Fit in bfloat16 autocast (experimental; lower PSNR, see "
                      "benchmarks/speed.py). Default: float32.")(fn)
    fn = click.option("--compute", type=click.Choice(["auto", "dense", "compact"]),
                      default="auto", show_default=True,
                      help="Masked dense layers, or only the weights the mask keeps "
                      "(compact); auto picks the faster per level and device.")(fn)
    return fn


@main.command("encode-dir")
@click.argument("src", type=click.Path(file_okay=False))
@click.argument("dst", type=click.Path(file_okay=False))
@_encode_options
@click.option("--batch-pixels", type=click.IntRange(1),
              help="Pixels (tiles of several images) fitted in one batch; default: what "
              "fills the GPU's free memory, or 2^20 on a CPU.")
@_compute_options
@click.option("--force", is_flag=True,
              help="Re-encode every image, overwriting DST's files and manifest.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line on stdout "
              "(progress stays on stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@user_errors
def encode_dir(src, dst, model, level, steps, effort, lr, quality, bpp, psnr, quantizer,
               step_scale, mode, preset, coder, seed, device, batch_pixels, compute, amp, compile_, force, as_json,
               quiet):
    """Compress every image under the folder SRC into DST (one .inr each + manifest.json).

    Sub-folders are kept (SRC/a/b.png -> DST/a/b.inr). Tiles of several images are fitted
    in one batch. The manifest lists bytes, bpp, PSNR and seconds per image; images it
    already lists are skipped, so running the command again resumes an interrupted run.
    Under torchrun (e.g. `torchrun --nproc_per_node 2 -m inrcodec.cli encode-dir SRC DST`)
    the images are shared out across the processes.
    """
    from . import batch
    from .model import accel
    dist = _distributed()
    writer = dist is None or dist.is_writer
    progress = _DatasetProgress("encode-dir", not quiet and writer)
    try:
        with accel.options(compute=compute, amp=amp, compile=compile_):
            r = batch.encode_dataset(src, dst, model=model, level=level, steps=steps, lr=lr,
                                     seed=seed, quality=quality, bpp=bpp, psnr=psnr,
                                     quantizer=quantizer, step_scale=step_scale, coder=coder,
                                     mode=mode, preset=preset, effort=effort,
                                     device=device, batch_pixels=batch_pixels,
                                     force=force,
                                     progress=progress if progress.enabled else None,
                                     dist=dist)
    except KeyboardInterrupt:
        progress.close()
        _fail("interrupted; the images finished so far are kept: run the same command again "
              "to resume", 130)
    finally:
        progress.close()
    for f in r.failed:
        click.echo(f"inrcodec: warning: {f['source']}: {f['error']}", err=True)
    if writer:
        if as_json:
            click.echo(json.dumps(r.summary()))
        else:
            click.echo(f"{dst}: {r.encoded} encoded, {r.skipped} already done, "
                       f"{len(r.failed)} failed, {r.seconds:.1f} s; manifest {r.manifest}")
    if r.failed:
        sys.exit(1)


@main.command("decode-dir")
@click.argument("src", type=click.Path(file_okay=False))
@click.argument("dst", type=click.Path(file_okay=False))
@click.option("--format", "fmt", default="png", show_default=True,
              help="Output image format (file extension): png, webp, tiff, jpg, bmp...")
@_render_options
@click.option("--force", is_flag=True, help="Overwrite images that already exist in DST.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line on stdout "
              "(progress stays on stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@user_errors
def decode_dir(src, dst, fmt, scale, size, model, device, force, as_json, quiet):
    """Decode every .inr file under the folder SRC into images under DST.

    Images that already exist in DST are skipped (a rerun resumes) unless --force.
    """
    from . import batch
    dist = _distributed()
    writer = dist is None or dist.is_writer
    progress = _DatasetProgress("decode-dir", not quiet and writer)
    try:
        r = batch.decode_dataset(src, dst, format=fmt, size=size, scale=scale, model=model,
                                device=device, force=force,
                                progress=progress if progress.enabled else None, dist=dist)
    finally:
        progress.close()
    for f in r.failed:
        click.echo(f"inrcodec: warning: {f['source']}: {f['error']}", err=True)
    if writer:
        if as_json:
            s = r.summary()
            s["decoded"] = s.pop("encoded")
            s.pop("manifest")
            click.echo(json.dumps(s))
        else:
            click.echo(f"{dst}: {r.encoded} decoded, {r.skipped} already there, "
                       f"{len(r.failed)} failed, {r.seconds:.1f} s")
    if r.failed:
        sys.exit(1)


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
        return
    if d["kind"] == "latent-model":
        a = d["arch"]
        click.echo(f"{file}: inrcodec latent model {d['hash']}")
        click.echo(f"  {a['levels']} latent grids{' + coordinates' if a['coords'] else ''}; "
                   f"synthesis {a['layers']} x {a['hidden']} {a['act']}"
                   + (f" w0 {a['w0']:g}" if a["act"] == "sine" else "")
                   + f"; ARM {a['arm_hidden']} wide; default level {d['default_level']}")
        for k, v in sorted(d["info"].items()):
            click.echo(f"  {k}: {v}")
        click.echo(f"  {'level':>5} {'params':>8} {'MACs/px':>8}")
        for lv in d["levels"]:
            click.echo(f"  {lv['level']:>5} {lv['params']:>8} {lv['macs_per_pixel']:>8}")
        return
    if d["kind"] == "inr":
        click.echo(f"{file}: inrcodec image, {d['bytes']} bytes, {d['bpp']:.3f} bpp")
        for name, value, meaning in d["fields"]:
            click.echo(f"  {name:<12} {value:<66} {meaning}" if len(value) > 20 else
                       f"  {name:<12} {value:<20} {meaning}")
        return
    a = d["arch"]
    click.echo(f"{file}: inrcodec shared model {d['hash']}")
    fam = a["family"].upper()
    click.echo(f"  {fam} depth {a['depth']} width {a['width']}"
               + (f" w0 {a['w0']:g}" if a["family"] == "siren" else f" sigma {a['ffn_sigma']:g}")
               + f", tile {d['tile']}x{d['tile']}, default level {d['default_level']}")
    for k, v in sorted(d["info"].items()):
        click.echo(f"  {k}: {v}")
    click.echo(f"  {'level':>5} {'density':>8} {'weights':>8} {'params':>8} {'live':>8}"
               + ("  base" if any("base" in lv for lv in d["levels"]) else ""))
    for lv in d["levels"]:
        click.echo(f"  {lv['level']:>5} {lv['density']:>8.4f} {lv['weights']:>8} {lv['params']:>8}"
                   f" {lv['live']:>8}" + (f"  {lv['base']}" if "base" in lv else ""))


@main.command()
@click.argument("source")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--mode", type=click.Choice(["weights", "latent"]), default="weights",
              show_default=True, help="What to train: the weight mode's SIREN ladder "
              "(Algorithm 1), or the latent mode's shared synthesis and entropy model "
              "(options that apply: --width, --depth, --w0, --upsample, --pretrain-steps, "
              "--retrain-steps, --rounds, --meta-batch, --seed, --resume, --threads).")
@click.option("--preset", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True,
              help="Starting configuration: 'cpu' (tiles of 64, width 64, first-order MAML, "
              "about half an hour on 2 cores) or 'paper' (178x178 whole images, width 256, "
              "150k + 20 x 30k second-order steps: GPU work). Options below override it.")
@click.option("--family", type=click.Choice(["siren", "ffn"]))
@click.option("--width", type=int)
@click.option("--depth", type=int, help="Number of hidden layers.")
@click.option("--w0", type=float, help="SIREN frequency factor.")
@click.option("--upsample", type=click.Choice(["bilinear", "bicubic"]),
              help="--mode latent: how the grids are upsampled (default bilinear).")
@click.option("--tile", type=int, help="Tile side in pixels.")
@click.option("--whole-image/--crops", default=None,
              help="Train on centre crops of whole photos (paper) or random tiles.")
@click.option("--crop-scale", type=(float, float), metavar="LOW HIGH",
              help="Random crops span LOW..HIGH of each photo's shorter side before being "
              "resized to the tile (cpu preset: 0.18 0.25, near native resolution).")
@click.option("--first-order/--second-order", default=None, help="MAML gradient.")
@click.option("--meta-batch", type=int)
@click.option("--inner-steps", type=int)
@click.option("--inner-lr", type=float)
@click.option("--outer-lr", type=float)
@click.option("--pretrain-steps", type=int, help="MAML steps before the first pruning (tau).")
@click.option("--retrain-steps", type=int, help="MAML steps after each pruning.")
@click.option("--rounds", type=int, help="Pruning rounds: the ladder has rounds + 1 levels.")
@click.option("--target-density", type=float,
              help="Prune until the density is at or below this (sets --rounds).")
@click.option("--dense-params", type=int,
              help="Dense-Narrow baseline: no pruning, and the narrowest width with at least "
              "this many parameters (overrides --width and --rounds).")
@click.option("--pruning", type=click.Choice(["magnitude", "random"]))
@click.option("--val-every", type=int, help="Validate every N steps of a phase and keep the "
              "best weights (early stopping); 0 validates once at the end of each phase.")
@click.option("--seed", type=int)
@click.option("--sparse-delta", is_flag=True, default=None,
              help="Sparse-delta model: the shared base stays dense and each level's mask marks "
              "which weights an image adapts (pruned weights keep the base value, not zero).")
@click.option("--bias-only-steps", type=int,
              help="With --sparse-delta: add a last level where only biases adapt, retrained "
              "this many steps.")
@click.option("--init", "init_model", type=click.Path(dir_okay=False),
              help="Start from this shared model's dense level 0 instead of a random "
              "initialisation (use with --pretrain-steps 0 to skip pretraining).")
@click.option("--n-train", type=int, default=20000, show_default=True,
              help="Random training crops to draw.")
@click.option("--n-val", type=int, default=32, show_default=True,
              help="Held-out validation crops (from photos kept out of training).")
@click.option("--resume", is_flag=True, help="Continue from OUT's checkpoint.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--threads", type=int, help="CPU threads for torch.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists (and not resuming).")
@click.option("-q", "--quiet", is_flag=True)
@user_errors
def train(source, out, mode, preset, family, width, depth, w0, upsample, tile, whole_image,
          crop_scale, first_order, meta_batch, inner_steps, inner_lr, outer_lr, pretrain_steps,
          retrain_steps, rounds, target_density, dense_params, pruning, val_every, seed,
          sparse_delta, bias_only_steps, init_model, n_train, n_val, resume, device, threads,
          force, quiet):
    """Meta-learn a sparse shared model (Meta-SparseINR, Algorithm 1) from photos.

    SOURCE is a folder of images or a dataset name (endless-sky: the training photos,
    fetched from Debian). Writes OUT (a shared model with one level per pruning round,
    rewritten after every round), OUT's checkpoint and a JSON-lines log with the
    validation PSNR of every level after a real 100-step encode.
    """
    import dataclasses
    import shlex
    from pathlib import Path

    import torch

    from .config import TRAINING_PRESETS as PRESETS
    from .model.accel import resolve_device
    from .errors import DatasetError
    from .training.train import train as run_train
    if threads:
        torch.set_num_threads(threads)
    if mode == "latent":
        given = [n for n, v in dict(
            family=family, tile=tile, whole_image=whole_image, crop_scale=crop_scale,
            first_order=first_order, inner_steps=inner_steps, inner_lr=inner_lr,
            outer_lr=outer_lr, target_density=target_density, dense_params=dense_params,
            pruning=pruning, val_every=val_every, sparse_delta=sparse_delta,
            bias_only_steps=bias_only_steps, init=init_model).items() if v is not None]
        if given:
            raise InrcodecError(f"--mode latent does not take --{given[0].replace('_', '-')}")
        return _train_latent(source, Path(out), width=width, depth=depth, w0=w0,
                             upsample=upsample, steps=pretrain_steps,
                             round_steps=retrain_steps, rounds=rounds, batch=meta_batch,
                             seed=seed, resume=resume, force=force, quiet=quiet)
    if upsample is not None:
        raise InrcodecError("--upsample is for --mode latent")
    p = PRESETS[preset]
    arch_over = {k: v for k, v in dict(family=family, width=width, depth=depth, w0=w0).items()
                 if v is not None}
    meta_over = {k: v for k, v in dict(
        first_order=first_order, meta_batch=meta_batch, inner_steps=inner_steps,
        inner_lr=inner_lr, outer_lr=outer_lr, pretrain_steps=pretrain_steps,
        retrain_steps=retrain_steps, rounds=rounds, pruning=pruning, val_every=val_every,
        seed=seed, sparse_delta=sparse_delta, bias_only_steps=bias_only_steps).items()
        if v is not None}
    arch = dataclasses.replace(p["arch"], **arch_over)
    meta = dataclasses.replace(p["meta"], **meta_over)
    if target_density is not None:
        if not 0 < target_density <= 1:
            raise InrcodecError("--target-density must be in (0, 1]")
        n = arch.n_weights()
        r = 0
        while n / arch.n_weights() > target_density:
            n -= int(round(meta.prune_rate * n))
            r += 1
        meta = dataclasses.replace(meta, rounds=r)
    if dense_params is not None:
        from .training.baselines import narrow_width
        if dense_params < 1:
            raise InrcodecError("--dense-params must be positive")
        arch = dataclasses.replace(arch, width=narrow_width(arch, dense_params))
        meta = dataclasses.replace(meta, rounds=0)
    out = Path(out)
    if out.exists() and not (force or resume):
        raise InrcodecError(f"{out} already exists (use --resume to continue, --force to restart)")
    dist = _distributed()  # under torchrun: the meta-batch is split across the processes
    writer = dist is None or dist.is_writer
    progress = _Progress("meta-training", not quiet and writer)
    command = "inrcodec " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    init = api.load_model(init_model) if init_model else None
    try:
        m = run_train(source, out, arch=arch, tile=tile or p["tile"], meta=meta,
                      whole_image=p["whole_image"] if whole_image is None else whole_image,
                      crop_scale=crop_scale or p["crop_scale"],
                      n_train=n_train, n_val=n_val, resume=resume, command=command,
                      progress=progress if progress.enabled else None,
                      device=str(dist.device(device) if dist else resolve_device(device)),
                      dist=dist, init=init)
    except DatasetError as e:
        raise InrcodecError(str(e)) from None
    finally:
        progress.close()
    if writer:
        click.echo(f"{out}: {len(m.levels)} levels, model {m.hash}")


def _train_latent(source, out, *, width, depth, w0, upsample, steps, round_steps, rounds,
                  batch, seed, resume, force, quiet):
    import dataclasses
    import json
    import shlex

    from .config import LATENT_ARCH
    from .errors import DatasetError
    from .training.data import image_paths
    from .training.latent_train import LatentTrainConfig, train_latent
    arch = dataclasses.replace(LATENT_ARCH, **{k: v for k, v in dict(
        hidden=width, layers=depth, w0=w0, upsample=upsample).items() if v is not None})
    cfg = dataclasses.replace(LatentTrainConfig(), **{k: v for k, v in dict(
        steps=steps, round_steps=round_steps, rounds=rounds, batch=batch,
        seed=seed).items() if v is not None})
    if out.exists() and not (force or resume):
        raise InrcodecError(f"{out} already exists (use --resume to continue, --force to restart)")
    try:
        photos = image_paths(source)
    except DatasetError as e:
        raise InrcodecError(str(e)) from None
    command = "inrcodec " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    log_path = out.with_suffix(".log.jsonl")
    logf = open(log_path, "a" if resume else "w")
    progress = _Progress("latent training", not quiet)

    def log(rec):
        logf.write(json.dumps(rec) + "\n")
        logf.flush()
        progress(rec["step"], rec["of"], rec["loss"])

    try:
        m = train_latent(out, arch=arch, cfg=cfg, photos=photos, resume=resume,
                         command=command, log=log)
    finally:
        progress.close()
        logf.close()
    click.echo(f"{out}: {m.n_levels} levels, model {m.hash}")


if __name__ == "__main__":
    main()
