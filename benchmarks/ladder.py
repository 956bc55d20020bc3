"""Rate-distortion of a shared model's ladder on (crops of) development photos.

    python benchmarks/ladder.py --levels 0,4,8,12,15 --images 4 --crop 256 \\
        --out benchmarks/results/ladder-default.json

A shortcut for the harness (benchmarks/harness.py) that can crop: the same results schema
as every benchmark here, and the run resumes if interrupted. Images: N development photos
spread over the set (never used for training); --crop takes a centred square to save time.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="shared model (default: the shipped one)")
    ap.add_argument("--levels", default=None, help="comma-separated levels (default: all)")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--crop", type=int, default=None)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--out", required=True)
    ap.add_argument("--force", action="store_true", help="start over if --out exists")
    args = ap.parse_args(argv)
    try:
        levels = [int(x) for x in args.levels.split(",")] if args.levels else None
        codec = harness.Inrcodec(args.model, levels, args.steps, args.lr)
        images = harness.dev_set(args.images)
        if args.crop:  # crops get their own names: rows are keyed by image name
            images = [(f"{Path(n).stem}-crop{args.crop}.png", harness.centre_crop(a, args.crop))
                      for n, a in images]
        res = harness.run(codec, images, args.out, force=args.force,
                          command="python benchmarks/ladder.py " + shlex.join(argv))
    except (harness.BenchError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for s in res["summary"]:
        print(f"level {s['level']:>2} density {s['density']:.3f}  bpp {s['bpp']:.3f}  "
              f"PSNR {s['psnr']:.2f}  encode {s['encode_s']:.1f} s  decode {s['decode_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
