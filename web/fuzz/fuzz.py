"""Differential fuzzing of the two latent-mode decoders: inrcodec's (Python, in this
process) and web/'s (Node, a long-running tools/decode-server.mjs over stdin/stdout).

Valid files (the latent test vectors and small files of today's encoder, see `seeds`) are
mutated: bit flips, truncations and extensions, byte inserts and deletes (the CRC then
fails, as it should), and, with the CRC recomputed so the sections are reached: header
field changes, bit flips and byte changes inside one section, sections moved between
files, word-level edits of the range-coded payloads. For each input the script checks
that both decoders accept or both refuse it; where both accept, that the latents are
identical and the pixels within the conformance tolerance (bitstream_spec/conformance.md);
that neither crashes (Node: an error that is not a FormatError; Python: an exception that
is not an InrcodecError) nor hangs (a time limit per input). Each disagreement is written
to web/fuzz/found/ (not committed); once fixed, move the input to web/test/found/ with a
.txt whose `expect:` line says what the reference decoder does with it.

    PYTHONPATH=. nice -n 10 python web/fuzz/fuzz.py --n 20000 --seed 1
"""
from __future__ import annotations

import argparse
import base64
import json
import random
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import reference  # noqa: E402

ROOT = HERE.parents[1]
FOUND = HERE / "found"
TIMEOUT_S = 60
# the header's fields of each latent version: (offset, struct code, name)
_COMMON = [(4, "B", "version"), (5, "B", "flags"), (38, "I", "width"), (42, "I", "height"),
           (46, "B", "image_mode")]
FIELDS = {
    3: _COMMON + [(47, "B", "levels"), (48, "B", "hidden"), (49, "B", "layers"), (50, "B", "act"),
                  (51, "H", "w0"), (53, "I", "synth_len"), (57, "I", "arm_len"),
                  (61, "I", "latent_len"), (65, "I", "alpha_len")],
    4: _COMMON + [(47, "B", "level"), (48, "B", "levels"), (49, "B", "coords"), (50, "B", "hidden"),
                  (51, "B", "layers"), (52, "B", "act"), (53, "H", "w0"), (55, "I", "synth_len"),
                  (59, "I", "arm_len"), (63, "I", "latent_len"), (67, "I", "alpha_len")],
    7: _COMMON + [(47, "B", "level"), (48, "B", "levels"), (49, "B", "coords"),
                  (50, "B", "upsample"), (51, "B", "hidden"), (52, "B", "layers"), (53, "B", "act"),
                  (54, "H", "w0"), (56, "I", "synth_len"), (60, "I", "arm_len"),
                  (64, "I", "latent_len"), (68, "I", "alpha_len")],
}
FIELDS[6] = FIELDS[4]
HEADER = {3: 69, 4: 71, 6: 71, 7: 72}
SECTIONS = ("synth_len", "arm_len", "latent_len", "alpha_len")


def seeds() -> list[bytes]:
    """The latent vectors, and the small files of web/fuzz/seeds/ (today's encoder)."""
    out = [p.read_bytes() for p in sorted((ROOT / "bitstream_spec" / "vectors").glob("v[3467]*.inr"))]
    out += [p.read_bytes() for p in sorted((HERE / "seeds").glob("*.inr"))]
    return out


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def layout(data: bytes):
    """(version, {field: (offset, code, value)}, section spans) of a well-formed header."""
    v = data[4]
    f = {name: (off, code, struct.unpack_from("<" + code, data, off)[0]) for off, code, name in FIELDS[v]}
    spans, off = {}, HEADER[v]
    for s in SECTIONS:
        spans[s] = (off, off + f[s][2])
        off += f[s][2]
    return v, f, spans


INTERESTING = (0, 1, 2, 3, 4, 7, 8, 12, 13, 16, 64, 127, 128, 255, 256, 65535, 65536, 65537)


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> tuple[str, bytes]:
    kind = rng.choices(["flip", "trunc", "insert", "header", "section", "words", "splice",
                        "lengths"], weights=[5, 4, 3, 20, 35, 20, 6, 7])[0]
    b = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return kind, bytes(b)
    if kind == "trunc":
        if rng.random() < 0.5:
            return kind, bytes(b[:rng.randrange(len(b))])
        return kind, bytes(b) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    if kind == "insert":
        i = rng.randrange(len(b) + 1)
        if rng.random() < 0.5 and len(b) > 1:
            del b[i:i + rng.randint(1, 4)]
        else:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        return kind, bytes(b)
    v, f, spans = layout(data)
    body = bytearray(data[:-4])
    if kind == "header":
        off, code, val = f[rng.choice(list(f))] if rng.random() < 0.8 else \
            (rng.randrange(HEADER[v]), "B", 0)
        size = struct.calcsize(code)
        r = rng.random()
        if r < 0.4:
            new = rng.choice(INTERESTING)
        elif r < 0.7:
            new = val + rng.choice((-2, -1, 1, 2))
        else:
            new = rng.randrange(256 ** size)
        new %= 256 ** size
        if off == 4 and new in (1, 2, 5):
            new = rng.choice((3, 4, 6, 7))  # the weight-mode versions are not compared
        if code in ("I",) and off in (38, 42) and new > 4096 and new not in INTERESTING:
            new %= 4096  # sizes the decoders can run through in the time limit
        body[off:off + size] = new.to_bytes(size, "little")
        return kind, with_crc(bytes(body))
    if kind in ("section", "words"):
        names = [s for s in SECTIONS if spans[s][1] > spans[s][0]]
        a, e = spans[rng.choice(names)]
        if kind == "section":
            for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
                i = rng.randrange(a, e)
                if rng.random() < 0.7:
                    body[i] ^= 1 << rng.randrange(8)
                else:
                    body[i] = rng.randrange(256)
        else:
            # a 32-bit word of a range-coded payload: zeroed, all ones, +-1, swapped, dropped
            n = (e - a) // 4
            if n:
                w = a + 4 * rng.randrange(n)
                op = rng.randrange(5)
                word = int.from_bytes(body[w:w + 4], "little")
                if op == 0:
                    word = 0
                elif op == 1:
                    word = 0xFFFFFFFF
                elif op == 2:
                    word = (word + rng.choice((-1, 1))) % 2 ** 32
                elif op == 3:
                    word = rng.randrange(2 ** 32)
                if op == 4 and e - a >= 4:
                    sec = next(s for s in SECTIONS if spans[s] == (a, e))
                    del body[w:w + 4]
                    off = f[sec][0]
                    body[off:off + 4] = struct.pack("<I", f[sec][2] - 4)
                else:
                    body[w:w + 4] = word.to_bytes(4, "little")
        return kind, with_crc(bytes(body))
    if kind == "splice":
        other = rng.choice(pool)
        if other[4] != data[4]:
            return kind, with_crc(bytes(body))
        _, f2, spans2 = layout(other)
        sec = rng.choice(SECTIONS)
        a, e = spans[sec]
        a2, e2 = spans2[sec]
        body[a:e] = other[a2:e2]
        off = f[sec][0]
        body[off:off + 4] = struct.pack("<I", e2 - a2)
        return kind, with_crc(bytes(body))
    # lengths: move bytes across a section boundary (both lengths change, total kept)
    i = rng.randrange(3)
    d = rng.choice((-4, -2, -1, 1, 2, 4))
    s1, s2 = SECTIONS[i], SECTIONS[i + 1]
    o1, o2 = f[s1][0], f[s2][0]
    body[o1:o1 + 4] = struct.pack("<I", (f[s1][2] + d) % 2 ** 32)
    body[o2:o2 + 4] = struct.pack("<I", (f[s2][2] - d) % 2 ** 32)
    return kind, with_crc(bytes(body))


class Node:
    """tools/decode-server.mjs, restarted after a hang."""

    def __init__(self):
        self.start()

    def start(self):
        self.p = subprocess.Popen(["node", str(HERE.parent / "tools" / "decode-server.mjs")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def decode(self, data: bytes, pixels: bool) -> dict:
        self.p.stdin.write(json.dumps({"id": 0, "data": base64.b64encode(data).decode(),
                                       "pixels": pixels}) + "\n")
        self.p.stdin.flush()
        import select
        r, _, _ = select.select([self.p.stdout], [], [], TIMEOUT_S)
        if not r:
            self.p.kill()
            self.p.wait()
            self.start()
            return {"ok": False, "kind": "hang", "error": f"no answer in {TIMEOUT_S} s"}
        line = self.p.stdout.readline()
        if not line:
            self.p.wait()
            self.start()
            return {"ok": False, "kind": "crash", "error": "the Node process died"}
        return json.loads(line)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def python_decode(data: bytes) -> dict:
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT_S)
    try:
        r = reference.decode(data)
        r["kind"] = "ok" if r["ok"] else "format"
    except Hang:
        r = {"ok": False, "kind": "hang", "error": f"no answer in {TIMEOUT_S} s"}
    except Exception as e:  # noqa: BLE001 - anything not an InrcodecError is a crash
        r = {"ok": False, "kind": "crash", "error": f"{type(e).__name__}: {e}"}
    finally:
        signal.alarm(0)
    return r


def compare(py: dict, js: dict) -> str | None:
    """None when the two agree; else what differs."""
    for who, r in (("python", py), ("node", js)):
        if r.get("kind") in ("crash", "hang"):
            return f"{who} {r['kind']}: {r['error'][:300]}"
    if py["ok"] != js["ok"]:
        tag = "[alpha zstd] " if "alpha plane" in py.get("error", "") + js.get("error", "") else ""
        return (tag + f"accept/reject: python {'accepts' if py['ok'] else 'refuses: ' + py['error']}; "
                f"node {'accepts' if js['ok'] else 'refuses: ' + js['error'][:200]}")
    if not py["ok"]:
        return None
    if py["latents_sha256"] != js["latents_sha256"]:
        return "latents differ"
    px = np.frombuffer(base64.b64decode(js["pixels"]), np.uint8)
    d = np.abs(px.astype(np.int16) - py["pixels"].reshape(-1).astype(np.int16))
    if d.size != py["pixels"].size or d.max(initial=0) > 1:
        return f"pixels differ by up to {int(d.max(initial=0))}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="inputs to run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log", type=Path, help="append a JSON line of the counts here")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pool = seeds()
    node = Node()
    counts = {"inputs": 0, "both_refuse": 0, "both_accept": 0, "disagreements": 0,
              "pixels_off_by_one": 0, "pixels_compared": 0}
    kinds: dict[str, int] = {}
    t0 = time.time()
    FOUND.mkdir(exist_ok=True)
    for i in range(args.n):
        kind, data = mutate(rng, rng.choice(pool), pool)
        kinds[kind] = kinds.get(kind, 0) + 1
        py = python_decode(data)
        js = node.decode(data, pixels=py["ok"])
        counts["inputs"] += 1
        bad = compare(py, js)
        if bad:
            counts["disagreements"] += 1
            if bad.startswith("[alpha zstd]"):
                counts["alpha_zstd"] = counts.get("alpha_zstd", 0) + 1
            name = f"s{args.seed}-{i}-{kind}"
            (FOUND / f"{name}.inr").write_bytes(data)
            (FOUND / f"{name}.txt").write_text(bad + "\n")
            print(f"[{i}] {kind}: {bad}", flush=True)
        elif py["ok"]:
            counts["both_accept"] += 1
            px = np.frombuffer(base64.b64decode(js["pixels"]), np.uint8)
            d = px.astype(np.int16) != py["pixels"].reshape(-1)
            counts["pixels_off_by_one"] += int(d.sum())
            counts["pixels_compared"] += int(d.size)
        else:
            counts["both_refuse"] += 1
        if (i + 1) % 1000 == 0:
            print(f"{i + 1} inputs, {time.time() - t0:.0f} s: {counts}", flush=True)
    node.p.stdin.close()
    out = {"seed": args.seed, "n": args.n, "seconds": round(time.time() - t0, 1), **counts,
           "mutations": kinds}
    print(json.dumps(out), flush=True)
    if args.log:
        with args.log.open("a") as fh:
            fh.write(json.dumps(out) + "\n")
    return 1 if counts["disagreements"] else 0


if __name__ == "__main__":
    sys.exit(main())
