"""Long decoder fuzz: N malformed .inr files through the decoder, counted by outcome.

    python benchmarks/fuzz_decoder.py --count 200000 [--seed 0] [--render-every 25]

Uses the generators of tests/malformed.py (truncations, bit flips with and without a
valid CRC, random bytes, random header fields, damaged zstd and range-coded sections and
quantiser parameters with a valid CRC) on small valid files made with a tiny scratch
model: format version 1 (fp16; RGB, and RGBA with an alpha section) and version 2
(integer deltas coded by zstd and by the range coder; RGB and RGBA). Every file goes through
inrcodec.codec.wcodec.read, bitstream.verify and api.info; every
--render-every'th also through inrcodec.decode (rendering is the slow part). Any
exception that is not an InrcodecError is printed and makes the exit status 1.
"""
from __future__ import annotations

import argparse
import collections
import random
import resource
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import inrcodec  # noqa: E402
import malformed  # noqa: E402
from inrcodec import api  # noqa: E402
from inrcodec.codec import bitstream  # noqa: E402
from inrcodec.errors import InrcodecError  # noqa: E402
from inrcodec.codec.weights import codec as wcodec  # noqa: E402
from inrcodec.model.inr import Arch  # noqa: E402
from inrcodec.model.shared_model import scratch_model  # noqa: E402


def base_files(model) -> list[bytes]:
    y, x = np.mgrid[0:28, 0:40].astype(np.float32)
    rgb = np.stack([0.5 + 0.5 * np.sin(x / 6.0), 0.5 + 0.5 * np.cos(y / 5.0), (x + y) / 66.0], -1)
    rgb = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    rgba = np.concatenate([rgb, (np.arange(28 * 40) % 251).reshape(28, 40, 1).astype(np.uint8)], 2)
    v1 = dict(mode="weights", quantizer="fp16", format_version=1)
    v2 = dict(mode="weights", steps=4, lr=1e-2)
    return [api.encode(rgb, model=model, steps=2, **v1), api.encode(rgba, model=model, steps=2, **v1),
            api.encode(rgb, model=model, coder="zstd", **v2),
            api.encode(rgb, model=model, coder="range", **v2),
            api.encode(rgba, model=model, coder="range", **v2)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10000, help="malformed files to try")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--render-every", type=int, default=25,
                    help="run every Nth file through inrcodec.decode (0: never)")
    args = ap.parse_args(argv)

    model = scratch_model(Arch(width=16, depth=3, w0=30.0), tile=16,
                                   n_levels=4, seed=1)
    bases = base_files(model)
    rng = random.Random(args.seed)
    outcomes: collections.Counter = collections.Counter()
    by_kind: collections.Counter = collections.Counter()
    unexpected: collections.Counter = collections.Counter()
    shown = 0
    t0 = time.perf_counter()
    gens = [malformed.all_kinds(b, rng, args.count) for b in bases]
    n = 0
    while n < args.count:
        kind, data = next(gens[n % len(gens)])
        full = args.render_every and n % args.render_every == 0
        result = "ok"
        for step in ("decode" if full else "read", "info"):
            try:
                if step == "decode":
                    inrcodec.decode(data, model=model)
                elif step == "read":
                    wcodec.read(data, model=model)
                    bitstream.verify(data)
                else:
                    api.info(data)
            except InrcodecError as e:
                if step != "info":
                    result = type(e).__name__
            except Exception as e:  # noqa: BLE001 - the point of the exercise
                key = f"{step}: {type(e).__name__}: {str(e)[:100]}"
                unexpected[key] += 1
                result = "UNEXPECTED " + type(e).__name__
                if shown < 5:
                    shown += 1
                    print(f"--- {kind}, {len(data)} bytes: {data[:64].hex()}", file=sys.stderr)
                    traceback.print_exc()
        outcomes[result] += 1
        by_kind[kind, result] += 1
        n += 1
    secs = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"malformed files: {n} in {secs:.1f} s ({n / secs:.0f}/s), seed {args.seed}, "
          f"render every {args.render_every}; peak RSS {peak_mib:.0f} MiB")
    print("outcomes:")
    for k, v in outcomes.most_common():
        print(f"  {k:<22} {v:>9}")
    print("by generator:")
    for (kind, res), v in sorted(by_kind.items()):
        print(f"  {kind:<22} {res:<20} {v:>9}")
    if unexpected:
        print("UNEXPECTED exceptions:")
        for k, v in unexpected.most_common():
            print(f"  {v:>7}  {k}")
        return 1
    print("no unexpected exceptions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
