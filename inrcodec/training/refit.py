"""A latent shared model refitted to the codec's own fits of training photos.

Meta-training (latent_train.py) learns the shared ARM and synthesis on 128-pixel crops,
each fitted for 300 steps beside them. The encoder fits whole photos for 900 steps, and
its latents and synthesis end elsewhere. This takes files the encoder made of training
photos (never evaluation photos) and moves the model to them:
- the ARM (same shape) is refitted to their integer latents: Adam on the fit's own float
  rate (rate.bits, the ARM's float twin), from the model's ARM, then rounded to fixed
  point (ArmParams.from_float); --hidden N widens it first (the new units start silent),
  --residual adds a second, residual hidden layer at zero first (it starts by coding as
  the one-layer model does; the model becomes shared-model format 4);
- with --reptile EPS, the default level's synthesis init moves EPS of the way to the
  mean of the files' fitted synthesis (their synthesis sections): one Reptile step whose
  inner loop is the encoder's own fit. Only the entries its mask sends move; the ladder's
  other levels are unchanged.
The format is unchanged; the model (and its hash) is new. Three commands:

    python -m inrcodec.training.refit photos DIR             # links to 24 training photos
    inrcodec encode-dir DIR FITS/q5 --quality 5 --model MODEL   # and 30, 55, 80
    python -m inrcodec.training.refit model MODEL OUT FITS/q5 FITS/q30 ... [--reptile EPS]

The exact code lengths of the files' latents before and after are printed and kept in the
model's info.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..codec import bitstream
from ..errors import InrcodecError
from ..io import check_writable
from ..codec.latent import arm, rate
from ..codec.latent.format import unpack_synthesis
from ..codec.latent.layout import grid_shapes
from ..codec.latent.model import LatentModel, load_latent_model


def _file(path: Path, model: LatentModel) -> tuple[bytes, object]:
    data = path.read_bytes()
    h = bitstream.unpack_header(data)
    if not h.shared or h.model_hash.hex() != model.hash:
        raise ValueError(f"{path} was not encoded with the model {model.hash[:12]}")
    return data, h


def read_latents(path: Path, model: LatentModel) -> list[np.ndarray]:
    """The integer grids of a latent file made with `model` (its shared ARM)."""
    data, h = _file(path, model)
    if bitstream.section(data, h, "arm"):
        raise ValueError(f"{path} carries its own ARM")
    return arm.decode_section(bitstream.section(data, h, "latents"),
                              grid_shapes(h.height, h.width, model.arch.levels),
                              arm.ArmParams(*model.arm), h.binned)


def read_synthesis(path: Path, model: LatentModel) -> tuple[int, np.ndarray]:
    """(level, fitted synthesis parameters) of a latent file made with `model`."""
    data, h = _file(path, model)
    return h.level, unpack_synthesis(bitstream.section(data, h, "synthesis"), model.arch,
                                     model.thetas[h.level], model.masks[h.level])


def exact_bits(sets: list[list[np.ndarray]], params: arm.ArmParams) -> float:
    """The latents' code length under the fixed-point ARM, as the coder counts it."""
    return sum(arm.grid_bits(g, params) for g in sets)


def refit(sets: list[list[np.ndarray]], start: arm.ArmParams, steps: int = 400,
          batch: int = 8, lr: float = 2e-3, seed: int = 0,
          log=lambda s: None) -> arm.ArmParams:
    """Adam on the mean bits per latent of `batch` files a step, cosine-decayed, from
    `start`; returns the rounded parameters."""
    gen = np.random.default_rng(seed)
    params = [torch.from_numpy(a).float().requires_grad_(True) for a in start.to_float()]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.02)
    canvases = {}
    grids = [[torch.from_numpy(g.astype(np.float32)) for g in s] for s in sets]
    for t in range(steps):
        opt.zero_grad()
        pick = gen.choice(len(sets), size=min(batch, len(sets)), replace=False)
        n = sum(sum(g.size for g in sets[i]) for i in pick)
        total = 0.0
        for i in pick:
            key = tuple(g.shape for g in sets[i])
            if key not in canvases:
                canvases[key] = rate.Canvas([tuple(s) for s in key])
            b = rate.bits(canvases[key], grids[i], params) / n
            b.backward()
            total += float(b.detach())
        opt.step()
        sched.step()
        if t % 50 == 0 or t == steps - 1:
            log(f"step {t + 1}/{steps}: {total:.4f} bits a latent")
    return arm.ArmParams.from_float(*[p.detach().numpy() for p in params])


def widened(params: arm.ArmParams, hidden: int, seed: int = 0) -> arm.ArmParams:
    """`params` with hidden units added up to `hidden`: their first layer small and random,
    their second zero, so the wider ARM starts by coding as `params` does."""
    extra = hidden - params.hidden
    if extra < 0 or hidden > arm.MAX_HIDDEN:
        raise ValueError(f"cannot make an ARM of {params.hidden} hidden units {hidden} wide")
    rng = np.random.default_rng(seed)
    w1 = np.round(rng.uniform(-0.1, 0.1, (extra, params.w1.shape[1])) * (1 << arm.FRAC))
    res = (np.pad(params.wr, ((0, extra), (0, extra))),
           np.concatenate([params.br, np.zeros(extra, np.int64)])) if params.residual else ()
    return arm.ArmParams(np.concatenate([params.w1, w1.astype(np.int64)]),
                         np.concatenate([params.b1, np.zeros(extra, np.int64)]),
                         np.concatenate([params.w2, np.zeros((2, extra), np.int64)], 1),
                         params.b2, *res)


def reptile(model: LatentModel, fitted: list[tuple[int, np.ndarray]], eps: float
            ) -> tuple[list[np.ndarray], float]:
    """The model's per-level inits with the default level's moved eps of the way to the
    mean of its fitted synthesis vectors; and the RMS of that move."""
    lvl = model.default_level
    mine = [t for level, t in fitted if level == lvl]
    if not mine:
        raise ValueError(f"no file of the default level {lvl}")
    base = model.thetas[lvl].astype(np.float64)
    move = eps * (np.mean(mine, 0) - base) * model.masks[lvl]
    thetas = [t.copy() for t in model.thetas]
    thetas[lvl] = (base + move).astype(np.float32)
    return thetas, float(np.sqrt(np.mean(move ** 2)))


def training_photo_links(out: Path, count: int = 24) -> list[Path]:
    """Links in `out` to `count` photos spread over meta-training's split (never the
    development set)."""
    from .data import training_photos
    from .train import split_photos
    train, _ = split_photos(list(training_photos()))
    picked = train[::max(1, len(train) // count)][:count]
    out.mkdir(parents=True, exist_ok=True)
    for p in picked:
        link = out / p.name
        if not link.exists():
            link.symlink_to(p)
    return [out / p.name for p in picked]


def _model(a, log) -> None:
    check_writable(Path(a.out), a.force)  # before minutes of work, not after
    torch.set_num_threads(a.threads)
    model = load_latent_model(a.model)
    files = sorted(p for d in a.dirs for p in Path(d).glob("*.inr"))
    if not files:
        sys.exit(f"no .inr files in {' '.join(a.dirs)}")
    sets = [read_latents(p, model) for p in files]
    start = arm.ArmParams(*model.arm)
    before = exact_bits(sets, start)
    t0 = time.perf_counter()
    first = widened(start, a.hidden) if a.hidden else start
    new = refit(sets, first.with_residual() if a.residual else first, a.steps, lr=a.lr,
                log=log)
    after = exact_bits(sets, new)
    log(f"ARM: {len(files)} files, {before:.0f} -> {after:.0f} bits "
        f"({after / before - 1:+.2%}), {time.perf_counter() - t0:.0f} s")
    thetas, info = model.thetas, {}
    if a.reptile:
        thetas, rms = reptile(model, [read_synthesis(p, model) for p in files], a.reptile)
        log(f"synthesis: level {model.default_level} moved by {rms:.4f} (RMS)")
        info = {"reptile": a.reptile, "reptile_rms": round(rms, 6)}
    info = {"derived_from": model.hash, "derivation": "refitted to the encoder's fits of "
            "training photos (training/refit.py)", "command": a.command, "files": len(files),
            "arm_bits_before": round(before), "arm_bits_after": round(after), **info,
            "source_info": model.info}
    out = LatentModel(arch=dataclasses.replace(model.arch, arm_hidden=new.hidden),
                      thetas=thetas, masks=model.masks,
                      arm=new.arrays,
                      default_level=model.default_level, info=info)
    print(out.save(a.out))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m inrcodec.training.refit",
                                 description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("photos", help="link the training photos to fit into DIR")
    p.add_argument("dir", type=Path)
    p.add_argument("--count", type=int, default=24)
    m = sub.add_parser("model", help="refit MODEL to the .inr files in DIRS, into OUT")
    m.add_argument("model")
    m.add_argument("out")
    m.add_argument("dirs", nargs="+")
    m.add_argument("--steps", type=int, default=400)
    m.add_argument("--lr", type=float, default=2e-3)
    m.add_argument("--reptile", type=float, default=0.0, metavar="EPS",
                   help="move the default level's synthesis EPS of the way to the files' mean")
    m.add_argument("--hidden", type=int, help="widen the ARM to this many hidden units first")
    m.add_argument("--residual", action="store_true",
                   help="add a residual second hidden layer (at zero) first")
    m.add_argument("--threads", type=int, default=2)
    m.add_argument("--force", action="store_true", help="overwrite OUT")
    a = ap.parse_args(argv)
    a.command = "python -m inrcodec.training.refit " + " ".join(shlex.quote(x) for x in argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if a.what == "photos":
            for path in training_photo_links(a.dir, a.count):
                print(path)
        else:
            _model(a, log)
    except (InrcodecError, ValueError, OSError) as e:  # a wrong or damaged file: one line
        sys.exit(f"refit: {e}")


if __name__ == "__main__":
    main()
