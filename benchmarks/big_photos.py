"""Encode and decode time and peak memory against photo size, through the command line.

The photos are real and not upscaled: centre crops, at 4:3, of mate-backgrounds'
Elephants painting (5640x3172; its centre 4000x3000 is a 12 MP photo), or with
`--source wood` the Wood photo (2560x1920) resized with Lanczos (upscaled past 4.9 MP: for
timing only, as the 0.11 runs did). Each is encoded with `inrcodec encode` at the default
settings (or `--steps`), then decoded with `inrcodec decode`, each in its own process; the
peak resident memory is that process's (os.wait4). Pillow's JPEG (quality 90) encodes and
decodes the same photo in the same run, in process, as the reference. Run it with nothing
else on the machine:

    python benchmarks/big_photos.py --mp 12 --out benchmarks/results/big-photos-12mp.json

With `--step-times`, no encode: the fit's step, in process, whole (fit.fit) against tiled
(tiled.fit_tiled at tile strides 2 and 4, with tiles of each of `--tiles` pixels),
alternating, `--reps` times each: the seconds of steps 2 to 6 of a 6-step fit at the
default quality.
"""
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import command_line  # noqa: E402


def source(name: str) -> Image.Image:
    from inrcodec.training.data import fetch_debian_package
    root = fetch_debian_package("mate-backgrounds") / "usr/share/backgrounds/mate"
    path = root / ("abstract/Elephants_5640x3172.jpg" if name == "elephants"
                   else "nature/Wood.jpg")
    return Image.open(path).convert("RGB")


def photo(src: Image.Image, name: str, w: int, h: int) -> Image.Image:
    if name == "wood":
        return src.resize((w, h), Image.LANCZOS)
    if w > src.width or h > src.height:
        sys.exit(f"{w}x{h} is larger than the Elephants painting ({src.width}x{src.height})")
    x, y = (src.width - w) // 2, (src.height - h) // 2
    return src.crop((x, y, x + w, y + h))


def jpeg_seconds(img: Image.Image) -> tuple[float, float]:
    """Pillow's JPEG (quality 90) encode and decode of `img`, in process: the reference."""
    import io
    t = time.perf_counter()
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    enc = time.perf_counter() - t
    t = time.perf_counter()
    Image.open(io.BytesIO(buf.getvalue())).load()
    return enc, time.perf_counter() - t


def step_times(img: Image.Image, reps: int, sizes: list[int]) -> dict:
    """Seconds of each of steps 2-6 of 6-step fits, whole and tiled (tiles of each of
    `sizes` pixels), alternating."""
    from dataclasses import replace

    import numpy as np

    from inrcodec.codec.latent import tiled
    from inrcodec.codec.latent.config import QUALITY, LatentFit, latent_lambda
    from inrcodec.codec.latent.fit import Start, fit
    from inrcodec.codec.latent.model import load_latent_model
    rgb = np.asarray(img)
    m = load_latent_model()
    start, fs = Start.of(m, m.default_level), LatentFit(steps=6, lam=latent_lambda(QUALITY))
    fits = {"whole": lambda p: fit(rgb, m.arch, fs, p, start),
            **{f"tiled, stride {s}" + (f", tiles {z}" if len(sizes) > 1 else ""):
               lambda p, s=s, z=z: tiled.fit_tiled(rgb, m.arch, replace(fs, tile_stride=s), p,
                                                   start, size=z)
               for s in (2, 4) for z in sizes}}
    out = {k: [] for k in fits}
    for _ in range(reps):
        for name, f in fits.items():
            marks = []
            f(lambda t, n, mse: marks.append(time.perf_counter()))
            out[name] += [round(b - a, 3) for a, b in zip(marks, marks[1:])]
            print(name, out[name][-5:], file=sys.stderr, flush=True)
    return out


def run(cmd: list[str], logdir: Path) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in bytes, stdout) of one process."""
    out_f, err_f = logdir / "stdout", logdir / "stderr"
    t = time.perf_counter()
    with open(out_f, "w") as o, open(err_f, "w") as e:
        p = subprocess.Popen(cmd, stdout=o, stderr=e)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{' '.join(cmd)} failed:\n{err_f.read_text()}")
    return wall, usage.ru_maxrss * 1024, out_f.read_text()  # ru_maxrss: KiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", default="1,4,12", help="megapixels, comma-separated")
    ap.add_argument("--steps", type=int, help="fit steps (default: the encoder's default)")
    ap.add_argument("--source", choices=["elephants", "wood"], default="elephants")
    ap.add_argument("--step-times", action="store_true",
                    help="time the fit's steps in process, whole and tiled (no encode)")
    ap.add_argument("--reps", type=int, default=2, help="--step-times: runs of each")
    ap.add_argument("--threads", type=int, default=2, help="--step-times: torch threads")
    ap.add_argument("--tiles", default=None,
                    help="--step-times: tile sizes in pixels, comma-separated (default: the "
                         "encoder's)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    from inrcodec.codec.latent.tiled import TILE
    sizes = [int(z) for z in a.tiles.split(",")] if a.tiles else [TILE]
    src = source(a.source)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for mp in map(float, a.mp.split(",")):
            w = round(math.sqrt(mp * 1e6 * 4 / 3))
            h = round(w * 3 / 4)
            png, inr, dec = (Path(d) / f"{mp:g}{ext}" for ext in (".png", ".inr", "-dec.png"))
            img = photo(src, a.source, w, h)
            if a.step_times:
                import torch
                torch.set_num_threads(a.threads)
                rows.append({"mp": round(w * h / 1e6, 2), "width": w, "height": h,
                             "threads": a.threads,
                             "step_s": step_times(img, a.reps, sizes)})
                continue
            img.save(png)
            j_enc, j_dec = jpeg_seconds(img)
            steps = ["--steps", str(a.steps)] if a.steps else []
            cli = [sys.executable, "-m", "inrcodec.cli"]
            e_wall, e_rss, out = run(cli + ["encode", str(png), str(inr), "--json", "-q"]
                                     + steps, Path(d))
            rep = json.loads(out.strip().splitlines()[-1])
            d_wall, d_rss, _ = run(cli + ["decode", str(inr), str(dec)], Path(d))
            row = {"mp": round(w * h / 1e6, 2), "width": w, "height": h,
                   "encode_s": round(e_wall, 1), "encode_peak_gb": round(e_rss / 2**30, 2),
                   "decode_s": round(d_wall, 2), "decode_peak_gb": round(d_rss / 2**30, 2),
                   "bytes": rep.get("bytes"), "bpp": rep.get("bpp"), "psnr": rep.get("psnr"),
                   "steps": rep.get("steps"), "jpeg_encode_s": round(j_enc, 3),
                   "jpeg_decode_s": round(j_dec, 3)}
            print(row, file=sys.stderr, flush=True)
            rows.append(row)
    Path(a.out).write_text(json.dumps({
        "command": command_line(__file__, sys.argv[1:]), "source": a.source,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
