"""Train the Dense-Narrow baseline for the levels of a Meta-SparseINR shared model.

For each level, the narrowest dense SIREN with at least that level's parameter count is
meta-learned (MAML, one dense level) with the `cpu` preset's schedule for pretraining,
on the same training signals. Finished models are skipped; an interrupted one resumes.

    python benchmarks/studies/dense_narrow.py --model inrcodec/models/weights.safetensors \
        --levels 15,14,12,10,8,6,4,2 --out-dir benchmarks/models/dense-narrow --threads 1

Result: the models in benchmarks/models/dense-narrow/ (w*.safetensors, with their
*.log.jsonl; made as `python benchmarks/dense_narrow.py --model
inrcodec/models/weights.safetensors --levels 15,14,12,10,8,6,4,2 --out-dir
benchmarks/models/dense-narrow ...`, before the script moved here), which
benchmarks/studies/sparse_vs_narrow.py compares against.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from inrcodec.model.shared_model import SharedModel  # noqa: E402
from inrcodec.training.baselines import narrow_width  # noqa: E402
from inrcodec.training.config import TRAINING_PRESETS as PRESETS
from inrcodec.training.train import train  # noqa: E402
from benchmarks.harness import command_line  # noqa: E402


def parse_levels(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="the Meta-SparseINR shared model")
    ap.add_argument("--levels", default="1-15")
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--source", default="endless-sky")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pretrain-steps", type=int,
                    help="MAML steps (default: the cpu preset's pretraining)")
    ap.add_argument("--signals", type=int, default=20000, help="training signals (crops)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = SharedModel.load(args.model)
    preset = PRESETS["cpu"]
    meta = dataclasses.replace(preset["meta"], rounds=0)
    if args.pretrain_steps:
        meta = dataclasses.replace(meta, pretrain_steps=args.pretrain_steps,
                                   val_every=min(meta.val_every, args.pretrain_steps))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = command_line(__file__, argv)
    for level in parse_levels(args.levels):
        width = narrow_width(m.arch, m.levels[level].n_params)
        out = args.out_dir / f"w{width}.safetensors"
        ckpt = out.with_suffix(".ckpt.safetensors")
        if out.exists() and not ckpt.exists():
            print(f"level {level}: width {width} done", flush=True)
            continue
        print(f"level {level}: training width {width} -> {out}", flush=True)
        train(args.source, out, arch=dataclasses.replace(m.arch, width=width), tile=m.tile,
              meta=meta, crop_scale=preset["crop_scale"], n_train=args.signals,
              resume=ckpt.exists(), command=command)
        ckpt.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
