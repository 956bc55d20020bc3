"""Differential fuzzing of the alpha plane's zstd frame alone: inrcodec's `unzstd` (Python's
libzstd) against web/'s (libzstd 1.5.7 as WebAssembly, src/zstd.js), on mutated frames of
many kinds (levels, checksums, with and without a content size, raw, RLE and compressed
blocks, planes of one and of several 128 KiB blocks). Much faster than whole files, so it
reaches the frame's corners whole-file fuzzing seldom does. Each disagreement is printed
and written to web/fuzz/found/zstd-SEED-I.{bin,txt} (the section, and its size).

    PYTHONPATH=. nice -n 19 python web/fuzz/fuzz_zstd.py --n 100000 --seed 1
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zstandard

from inrcodec.codec.entropy import unzstd
from inrcodec.errors import InrcodecError

HERE = Path(__file__).resolve().parent


def planes(rng: np.random.Generator) -> list[np.ndarray]:
    """Alpha planes of several kinds and sizes (bytes)."""
    out = []
    for h, w in ((28, 40), (64, 64), (200, 300), (512, 384)):
        yy, xx = np.mgrid[:h, :w]
        out.append(np.full((h, w), 255, np.uint8))                         # RLE
        out.append(((xx * 255) // max(w - 1, 1)).astype(np.uint8))          # gradient
        out.append(np.where((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (h / 3) ** 2, 255, 0).astype(np.uint8))
        out.append(rng.integers(0, 256, (h, w), dtype=np.uint8))            # raw blocks
        out.append((rng.integers(0, 4, (h, w)) * 85).astype(np.uint8))      # few symbols
    return [p.tobytes() for p in out]


def frames(raws: list[bytes]) -> list[tuple[bytes, int]]:
    out = []
    for raw in raws:
        for level in (-5, 1, 3, 19):
            for checksum in (False, True):
                for size in (True, False):
                    c = zstandard.ZstdCompressor(level=level, write_checksum=checksum,
                                                 write_content_size=size)
                    out.append((c.compress(raw), len(raw)))
    return out


def mutate(rng: random.Random, blob: bytes) -> bytes:
    b = bytearray(blob)
    kind = rng.randrange(7)
    if kind <= 2:  # bit flips, most often in the first bytes (headers) or anywhere
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(min(len(b), 24)) if rng.random() < 0.4 else rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 3:  # a byte set to a value
        b[rng.randrange(len(b))] = rng.choice((0, 1, 0x7f, 0x80, 0xff, rng.randrange(256)))
    elif kind == 4:  # truncate or extend
        if rng.random() < 0.5:
            del b[rng.randrange(len(b)):]
        else:
            b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif kind == 5:  # insert or delete a few bytes
        i = rng.randrange(len(b) + 1)
        if rng.random() < 0.5:
            del b[i:i + rng.randint(1, 4)]
        else:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    else:  # a 32-bit word changed
        if len(b) >= 4:
            i = rng.randrange(len(b) - 3)
            b[i:i + 4] = rng.randrange(2 ** 32).to_bytes(4, "little")
    return bytes(b)


def python_side(blob: bytes, size: int) -> dict:
    try:
        out = unzstd(blob, size, "alpha plane")
    except InrcodecError as e:
        return {"ok": False, "error": str(e)}
    return {"ok": True, "sha256": hashlib.sha256(out).hexdigest()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pool = frames(planes(np.random.default_rng(args.seed)))
    node = subprocess.Popen(["node", str(HERE.parent / "tools" / "decode-server.mjs")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    counts = {"inputs": 0, "both_accept": 0, "both_refuse": 0, "disagreements": 0, "crashes": 0}
    t0 = time.time()
    for i in range(args.n):
        blob, size = rng.choice(pool)
        if rng.random() < 0.9:
            blob = mutate(rng, blob)
        if rng.random() < 0.05:
            size += rng.choice((-1, 1))
        if size < 1 or not blob:
            continue
        py = python_side(blob, size)
        node.stdin.write(json.dumps({"id": i, "unzstd": base64.b64encode(blob).decode(), "size": size}) + "\n")
        node.stdin.flush()
        js = json.loads(node.stdout.readline())
        counts["inputs"] += 1
        if js.get("kind") == "crash":
            counts["crashes"] += 1
        if py["ok"] != js["ok"] or (py["ok"] and py["sha256"] != js["sha256"]) or js.get("kind") == "crash":
            counts["disagreements"] += 1
            found = HERE / "found"
            found.mkdir(exist_ok=True)
            (found / f"zstd-{args.seed}-{i}.bin").write_bytes(blob)
            (found / f"zstd-{args.seed}-{i}.txt").write_text(
                f"size {size}\npython: {py}\nnode: {js.get('error', js.get('sha256'))[:300]}\n")
            print(f"[{i}] python {py}; node {js.get('error', js.get('sha256'))[:200]}", flush=True)
        elif py["ok"]:
            counts["both_accept"] += 1
        else:
            counts["both_refuse"] += 1
    node.stdin.close()
    node.wait(10)
    print(json.dumps({"seed": args.seed, "n": args.n, "seconds": round(time.time() - t0, 1), **counts}), flush=True)
    return 1 if counts["disagreements"] else 0


if __name__ == "__main__":
    sys.exit(main())
