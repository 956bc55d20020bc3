"""Speed: fit-step time and GFLOP/s per ladder level (masked dense vs compact), encode and
decode time, dataset throughput, peak memory; bf16 autocast and torch.compile.

    python benchmarks/speed.py --out speed-cpu.json

Everything is measured in one run, as ratios where the machine is shared: the matmul
ceiling (a 2048x2048 float32 matmul, the same thread count) is measured at the start, the
middle and the end; dense and compact steps are interleaved, repetition by repetition;
the before/after encodes alternate. Each full encode runs in a fresh child process so its
peak resident memory (ru_maxrss, minus the child's resident size just before encoding) is
its own. On a GPU (--device cuda, or auto with one present) times are taken after
torch.cuda.synchronize and peak memory is torch.cuda.max_memory_allocated.

Sections (--sections): ceiling is always measured; steps (every level in --levels),
encode (--encode-levels, before = dense, after = the automatic choice, and compact where
auto keeps dense), decode, dataset (--dataset-images crops of --crop pixels through
encode_dataset), amp (bf16 autocast: step time and the decoded PSNR of a full encode),
compile (torch.compile: first-call time and step time), latent (the latent mode on a
768x512 photo at the default effort: encode and decode time, the synthesis's MACs per pixel
at every level, and a steps curve of the shipped latent model against the same
architecture with a random synthesis init, the shipped entropy model kept:
`--latent-steps`), latent-step (one step of the latent fit part by part, each next to its
floor at the ceiling measured in the same run), latent-decode (speed_decode.py: the
decoder in process, part by part and as a process, InrDataset through a DataLoader, each
next to JPEG; `--inr-dir`, `--big-inr`).

    python benchmarks/speed.py --sections latent --threads 2 --latent-steps "" \\
        --latent-big-steps 0 --out benchmarks/results/speed-latent-0.11.json

The sections live in speed_weights.py (the weight mode's, and the shared helpers),
speed_latent.py (the latent mode's) and speed_decode.py (the latent decoder's).
FLOPs counted: matmul multiply-adds only, 2 per MAC forward and 4 backward (6 x MACs x
pixels per step), executed by the path measured (the compact path executes fewer).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from inrcodec.model import accel
from inrcodec.codec.weights.tiles import image_to_tiles
from inrcodec.model.shared_model import load_model, weights_model_path

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import speed_decode, speed_latent, speed_weights  # noqa: E402
from benchmarks.harness import command_line  # noqa: E402
from benchmarks.speed_weights import ceiling, photos  # noqa: E402


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="shared model (default: the shipped one)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: the machine is shared)")
    ap.add_argument("--levels", default=None, help="levels for the step section (default: all)")
    ap.add_argument("--encode-levels", default="8,12,15")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100, help="fit steps of a full encode")
    ap.add_argument("--dataset-images", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--sections", default="steps,encode,decode,dataset,amp,compile")
    ap.add_argument("--latent-model", default=None,
                    help="latent model for the latent section (default: the shipped one)")
    ap.add_argument("--latent-steps", default="50,100,300,1000",
                    help="steps of the latent section's curve (empty: no curve)")
    ap.add_argument("--latent-big-steps", type=int, default=3,
                    help="fit steps of the latent section's 12 MP encode (0: none)")
    ap.add_argument("--inr-dir", type=Path, help="latent-decode: encode-dir's files of the "
                    "development photos")
    ap.add_argument("--source-dir", type=Path, default=None,
                    help="latent-decode: their sources (default: the development photos)")
    ap.add_argument("--big-inr", type=Path, help="latent-decode: a big photo's file")
    ap.add_argument("--workers", type=int, default=2, help="latent-decode: DataLoader workers")
    ap.add_argument("--epochs", type=int, default=3, help="latent-decode: DataLoader epochs")
    ap.add_argument("--out", required=True)
    return ap


def latent_sections(res: dict, sections: set, args, log) -> None:
    """latent-step and latent, on the first 768x512 development photo."""
    if not {"latent-step", "latent"} & sections:
        return
    photo = next(p for p in photos(32) if Image.open(p).size == (768, 512))
    if "latent-step" in sections:
        from inrcodec.codec.latent.model import load_latent_model
        prof = speed_latent.latent_step_profile(np.asarray(Image.open(photo).convert("RGB")),
                                                load_latent_model(args.latent_model),
                                                statistics.median(res["ceiling_gflops"]))
        res["latent_step"] = {"photo": photo.name, **prof}
        for v in ("reference", "new"):
            log(f"latent step, {v} (ms, floor ms): " + ", ".join(
                f"{k} {x:.1f}" + (f" ({prof['floor_ms'][v][k]:.1f})"
                                  if k in prof["floor_ms"][v] else "")
                for k, x in prof["ms"][v].items())
                + f"; step/floor {prof['step_over_floor'][v]:.1f}x")
        log(f"latent step: new/reference {prof['new_over_reference']:.2f}")
    if "latent" in sections:
        res["latent"] = speed_latent.latent_section(args, photo, log,
                                                    statistics.median(res["ceiling_gflops"]))
        lt = res["latent"]
        ceil_now = statistics.median(res["ceiling_gflops"])
        # the synthesis's share of the machine at decode: 2 flops per MAC per pixel
        lt["decode_synthesis_gflop"] = 2 * lt["dense_macs_per_pixel"] * 768 * 512 / 1e9
        lt["decode_synthesis_s_at_ceiling"] = lt["decode_synthesis_gflop"] / ceil_now


def main(argv=None):
    args = parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    sections = set(args.sections.split(","))
    model = load_model(args.model)
    model_path = str(args.model or weights_model_path())
    dev = accel.resolve_device(args.device)
    levels = [int(x) for x in args.levels.split(",")] if args.levels else \
        list(range(len(model.levels)))
    enc_levels = [int(x) for x in args.encode_levels.split(",")]
    photo = photos(1)[0]
    img = np.asarray(Image.open(photo).convert("RGB"))
    targets, weights = image_to_tiles(img.astype(np.float32) / 127.5 - 1.0, model.tile)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", file=sys.stderr, flush=True)

    res = {"benchmark": "speed", "command": command_line(sys.argv[0], sys.argv[1:]),
           "model": model.hash, "device": str(dev),
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda"
           else (platform.processor() or platform.machine()),
           "threads": args.threads, "torch": torch.__version__, "photo": photo.name,
           "photo_size": [img.shape[1], img.shape[0]], "tiles": int(targets.shape[0]),
           "default_level": model.default_level, "ceiling_gflops": []}
    res["ceiling_gflops"].append(ceiling(dev))
    log(f"matmul ceiling {res['ceiling_gflops'][-1]:.1f} GFLOP/s ({dev}, {args.threads} threads)")
    if "steps" in sections:
        res["steps"] = speed_weights.step_section(model, levels, targets, weights, dev,
                                                  args.reps, log)
        res["ceiling_gflops"].append(ceiling(dev))
        log(f"matmul ceiling {res['ceiling_gflops'][-1]:.1f} GFLOP/s")
    encodes = {}
    if "encode" in sections:
        res["encode"] = speed_weights.encode_section(model, photo, model_path, enc_levels, args,
                                                     dev, log, encodes)
    if "decode" in sections:
        res["decode"] = speed_weights.decode_section(model, img, enc_levels, dev, log, encodes)
    if "dataset" in sections:
        res["dataset"] = speed_weights.dataset_section(model, args, dev, log)
    if "amp" in sections:
        res["amp"] = speed_weights.amp_section(model, photo, model_path, targets, weights, args,
                                               dev, log, encodes, res.get("encode", []))
    if "compile" in sections:
        res["compile"] = speed_weights.compile_section(model, targets, weights, args, dev, log)
    latent_sections(res, sections, args, log)
    if "latent-decode" in sections:
        if args.source_dir is None:
            from inrcodec.training.data import cache_dir
            args.source_dir = cache_dir() / "devset"
        res["latent_decode"] = speed_decode.section(args, log)
    res["ceiling_gflops"].append(ceiling(dev))
    log(f"matmul ceiling {res['ceiling_gflops'][-1]:.1f} GFLOP/s")
    ceil = res["ceiling_gflops_median"] = statistics.median(res["ceiling_gflops"])
    for row in res.get("steps", []):
        for p in ("dense", "compact"):
            row[p]["ceiling_fraction"] = row[p]["gflops"] / ceil
    res["seconds"] = time.perf_counter() - t_start
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
