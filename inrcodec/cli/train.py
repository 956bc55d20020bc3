"""`inrcodec train`: meta-learn a shared model from photos, for either mode (training/)."""
from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path

import click

from ..config import DEFAULT_MODE, MODES
from ..errors import DatasetError, InrcodecError
from .base import distributed, main, user_errors
from .progress import StepProgress

# Options only one mode's training takes; the other refuses them by name.
WEIGHTS_ONLY = ("preset", "family", "tile", "whole_image", "crop_scale", "first_order",
                "inner_steps", "inner_lr", "outer_lr", "target_density", "dense_params",
                "pruning", "val_every", "sparse_delta", "bias_only_steps", "init_model",
                "n_train", "n_val", "device")
LATENT_ONLY = ("upsample",)


def _options(fn):
    for opt in reversed((
        click.option("--mode", type=click.Choice(MODES), default=DEFAULT_MODE,
                     show_default=True, help="What to train: the latent mode's shared "
                     "synthesis ladder and entropy model, or the weight mode's SIREN "
                     "ladder (Algorithm 1). Options marked (weights) or (latent) are one "
                     "mode's."),
        click.option("--preset", type=click.Choice(["cpu", "paper"]),
                     help="(weights) Starting configuration: cpu (default: tiles of 64, "
                     "width 64, first-order MAML, about half an hour on 2 cores) or paper "
                     "(178x178 whole images, width 256, 150k + 20 x 30k second-order steps: "
                     "GPU work). Options below override it."),
        click.option("--family", type=click.Choice(["siren", "ffn"]), help="(weights)"),
        click.option("--width", type=int, help="Hidden width (latent: the synthesis')."),
        click.option("--depth", type=int, help="Number of hidden layers."),
        click.option("--w0", type=float, help="SIREN frequency factor."),
        click.option("--upsample", type=click.Choice(["bilinear", "bicubic", "learned"]),
                     help="(latent) How the grids are upsampled (default bilinear)."),
        click.option("--tile", type=int, help="(weights) Tile side in pixels."),
        click.option("--whole-image/--crops", default=None, help="(weights) Train on centre "
                     "crops of whole photos (paper) or random tiles."),
        click.option("--crop-scale", type=(float, float), metavar="LOW HIGH",
                     help="(weights) Random crops span LOW..HIGH of each photo's shorter "
                     "side before being resized to the tile (cpu preset: 0.18 0.25)."),
        click.option("--first-order/--second-order", default=None,
                     help="(weights) MAML gradient."),
        click.option("--meta-batch", type=int, help="Signals per outer step (latent: crops "
                     "per step)."),
        click.option("--inner-steps", type=int, help="(weights)"),
        click.option("--inner-lr", type=float, help="(weights)"),
        click.option("--outer-lr", type=float, help="(weights)"),
        click.option("--pretrain-steps", type=int,
                     help="Steps before the first pruning (tau)."),
        click.option("--retrain-steps", type=int, help="Steps after each pruning."),
        click.option("--rounds", type=int,
                     help="Pruning rounds: the ladder has rounds + 1 levels."),
        click.option("--target-density", type=float, help="(weights) Prune until the "
                     "density is at or below this (sets --rounds)."),
        click.option("--dense-params", type=int, help="(weights) Dense-Narrow baseline: no "
                     "pruning, and the narrowest width with at least this many parameters "
                     "(overrides --width and --rounds)."),
        click.option("--pruning", type=click.Choice(["magnitude", "random"]),
                     help="(weights)"),
        click.option("--val-every", type=int, help="(weights) Validate every N steps of a "
                     "phase and keep the best weights; 0 validates once at each phase's end."),
        click.option("--seed", type=int),
        click.option("--sparse-delta", is_flag=True, default=None,
                     help="(weights) The shared base stays dense and each level's mask "
                     "marks which weights an image adapts."),
        click.option("--bias-only-steps", type=int, help="(weights) With --sparse-delta: a "
                     "last level where only biases adapt, retrained this many steps."),
        click.option("--init", "init_model", type=click.Path(dir_okay=False),
                     help="(weights) Start from this shared model's dense level 0 (with "
                     "--pretrain-steps 0 to skip pretraining)."),
        click.option("--n-train", type=int, help="(weights) Random training crops to draw "
                     "(default 20000)."),
        click.option("--n-val", type=int, help="(weights) Held-out validation crops, from "
                     "photos kept out of training (default 32)."),
        click.option("--resume", is_flag=True, help="Continue from OUT's checkpoint."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
                     help="(weights) Where to train (default auto)."),
        click.option("--threads", type=int, help="CPU threads for torch."),
        click.option("--force", is_flag=True,
                     help="Overwrite OUT if it exists (and not resuming)."),
        click.option("-q", "--quiet", is_flag=True),
    )):
        fn = opt(fn)
    return fn


@main.command()
@click.argument("source")
@click.argument("out", type=click.Path(dir_okay=False))
@_options
@user_errors
def train(source, out, mode, threads, **kw):
    """Meta-learn a shared model from photos: a ladder of sparse levels (Algorithm 1).

    SOURCE is a folder of images or a dataset name (endless-sky: the training photos,
    fetched from Debian). Writes OUT (rewritten after every pruning round), its checkpoint
    and a JSON-lines log beside it. --mode latent (the default) trains the latent mode's
    shared synthesis and entropy model; --mode weights the paper's SIREN ladder.
    """
    import torch
    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    refused = [k for k in (WEIGHTS_ONLY if mode == "latent" else LATENT_ONLY)
               if kw.get(k) is not None]
    if refused:
        names = ", ".join("--" + ("init" if k == "init_model" else k.replace("_", "-"))
                          for k in refused)
        raise InrcodecError(f"--mode {mode} does not take {names}")
    if out.exists() and not (kw["force"] or kw["resume"]):
        raise InrcodecError(f"{out} already exists (use --resume to continue, --force to "
                            "restart)")
    command = "inrcodec " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    (_train_latent if mode == "latent" else _train_weights)(source, out, command, **kw)


def _train_latent(source, out: Path, command: str, *, width, depth, w0, upsample,
                  pretrain_steps, retrain_steps, rounds, meta_batch, seed, resume, quiet,
                  **_):
    from ..training.data import image_paths
    from ..training.latent_train import TRAIN_ARCH, LatentTrainConfig, train_latent
    arch = dataclasses.replace(TRAIN_ARCH, **{k: v for k, v in dict(
        hidden=width, layers=depth, w0=w0, upsample=upsample).items() if v is not None})
    cfg = dataclasses.replace(LatentTrainConfig(), **{k: v for k, v in dict(
        steps=pretrain_steps, round_steps=retrain_steps, rounds=rounds, batch=meta_batch,
        seed=seed).items() if v is not None})
    try:
        photos = image_paths(source)
    except DatasetError as e:
        raise InrcodecError(str(e)) from None
    progress = StepProgress("latent training", not quiet)
    with open(out.with_suffix(".log.jsonl"), "a" if resume else "w") as logf:
        def log(rec):
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            progress(rec["step"], rec["of"], rec["loss"])
        try:
            m = train_latent(out, arch=arch, cfg=cfg, photos=photos, resume=resume,
                             command=command, log=log)
        finally:
            progress.close()
    click.echo(f"{out}: {m.n_levels} levels, model {m.hash}")


def _train_weights(source, out: Path, command: str, *, preset, target_density, dense_params,
                   tile, whole_image, crop_scale, init_model, n_train, n_val, resume, device,
                   quiet, **kw):
    from ..model.accel import resolve_device
    from ..model.prune import rounds_for_density
    from ..model.shared_model import load_model
    from ..training.baselines import narrow_width
    from ..training.config import TRAINING_PRESETS
    from ..training.train import train as run_train
    p = TRAINING_PRESETS[preset or "cpu"]
    arch = dataclasses.replace(p["arch"], **{k: kw[k] for k in ("family", "width", "depth", "w0")
                                             if kw[k] is not None})
    meta = dataclasses.replace(p["meta"], **{k: v for k, v in dict(
        first_order=kw["first_order"], meta_batch=kw["meta_batch"],
        inner_steps=kw["inner_steps"], inner_lr=kw["inner_lr"], outer_lr=kw["outer_lr"],
        pretrain_steps=kw["pretrain_steps"], retrain_steps=kw["retrain_steps"],
        rounds=kw["rounds"], pruning=kw["pruning"], val_every=kw["val_every"],
        seed=kw["seed"], sparse_delta=kw["sparse_delta"],
        bias_only_steps=kw["bias_only_steps"]).items() if v is not None})
    if target_density is not None:
        try:
            rounds = rounds_for_density(arch.n_weights(), meta.prune_rate, target_density)
        except ValueError as e:
            raise InrcodecError(f"--target-density: {e}") from None
        meta = dataclasses.replace(meta, rounds=rounds)
    if dense_params is not None:
        if dense_params < 1:
            raise InrcodecError("--dense-params must be positive")
        arch = dataclasses.replace(arch, width=narrow_width(arch, dense_params))
        meta = dataclasses.replace(meta, rounds=0)
    dist = distributed()  # under torchrun: the meta-batch is split across the processes
    writer = dist is None or dist.is_writer
    progress = StepProgress("meta-training", not quiet and writer)
    try:
        m = run_train(source, out, arch=arch, tile=tile or p["tile"], meta=meta,
                      whole_image=p["whole_image"] if whole_image is None else whole_image,
                      crop_scale=crop_scale or p["crop_scale"], n_train=n_train or 20000,
                      n_val=32 if n_val is None else n_val,
                      resume=resume, command=command,
                      progress=progress if progress.enabled else None,
                      device=str(dist.device(device or "auto") if dist
                                 else resolve_device(device)),
                      dist=dist, init=load_model(init_model) if init_model else None)
    except DatasetError as e:
        raise InrcodecError(str(e)) from None
    finally:
        progress.close()
    if writer:
        click.echo(f"{out}: {len(m.levels)} levels, model {m.hash}")
