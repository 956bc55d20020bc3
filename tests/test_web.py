"""The second decoder (web/, JavaScript) against inrcodec's: every latent test vector and
the development photos' files decode to identical latents and pixels within the
conformance tolerance (bitstream_spec/conformance.md), in Node and, marked slow, in
headless Chromium through the page itself.

Needs `node` (18 or later) on PATH, and nothing from npm: the decoder has no dependencies
(skipped without node). The browser tests need `npm ci --prefix web` (playwright-core) and
the system's Chromium (`apt-get install -y chromium`), run with `pytest -m slow`, and skip
with the reason when either is missing."""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
VECTORS = ROOT / "bitstream_spec" / "vectors"
PHOTOS = sorted((WEB / "test" / "photos").glob("*.inr"))
LATENT_VECTORS = sorted(VECTORS.glob("v[3467]-*.inr"))
# The conformance tolerance: no sample more than 1 level off, and at most this share of
# samples off at all (bitstream_spec/conformance.md).
MAX_SHARE_OFF = 1e-3

def _node_major() -> int:
    if shutil.which("node") is None:
        return 0
    r = subprocess.run(["node", "--version"], capture_output=True, text=True)
    return int(r.stdout.strip().lstrip("v").split(".")[0] or 0) if r.returncode == 0 else 0


pytestmark = pytest.mark.skipif(_node_major() < 18, reason="needs node (18 or later) on PATH")

sys.path.insert(0, str(WEB / "fuzz"))


@pytest.fixture(scope="module")
def reference():
    import reference as ref  # web/fuzz/reference.py: inrcodec's decoder
    return ref


@pytest.fixture(scope="module")
def node():
    p = subprocess.Popen(["node", str(WEB / "tools" / "decode-server.mjs")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(data: bytes, size=None) -> dict:
        p.stdin.write(json.dumps({"id": 0, "data": base64.b64encode(data).decode(),
                                  "pixels": True, "size": size}) + "\n")
        p.stdin.flush()
        return json.loads(p.stdout.readline())
    yield ask
    p.stdin.close()
    p.wait(10)


def _compare(ref, js: dict, data: bytes, size=None) -> tuple[int, int, int]:
    """(max error, samples off, samples) after checking latents and the tolerance."""
    r = ref.decode(data, size)
    assert r["ok"], r.get("error")
    assert js["ok"], js.get("error")
    assert js["latents_sha256"] == r["latents_sha256"]
    px = np.frombuffer(base64.b64decode(js["pixels"]), np.uint8).reshape(r["pixels"].shape)
    d = np.abs(px.astype(np.int16) - r["pixels"].astype(np.int16))
    assert d.max(initial=0) <= 1
    assert (d > 0).mean() <= MAX_SHARE_OFF
    return int(d.max(initial=0)), int((d > 0).sum()), int(d.size)


def test_node_suite():
    r = subprocess.run(["node", "--test", "test/"], cwd=WEB, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.parametrize("path", LATENT_VECTORS, ids=lambda p: p.stem)
def test_vector_matches_python(reference, node, path):
    """At the stored size the two decoders follow the same arithmetic (the spec's synthesis
    arithmetic): the same samples, not just within the tolerance."""
    data = path.read_bytes()
    assert _compare(reference, node(data), data)[1] == 0


@pytest.mark.parametrize("path", LATENT_VECTORS[::3], ids=lambda p: p.stem)
def test_vector_other_size_matches_python(reference, node, path):
    data = path.read_bytes()
    _compare(reference, node(data, [57, 31]), data, (57, 31))


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.stem)
def test_photo_matches_python(reference, node, path):
    """Files of `inrcodec encode --steps 30` of the 8 development photos (dev:8); the
    panther's by the default model with the learned upsampling. The same samples (see
    test_vector_matches_python)."""
    data = path.read_bytes()
    assert _compare(reference, node(data), data)[1] == 0


def test_photos_present():
    assert len(PHOTOS) == 8, "web/test/photos holds the 8 development photos' files"
    # one of them is format 7 with the learned upsampling (header byte 50: upsample = 2)
    assert any(p.read_bytes()[4] == 7 and p.read_bytes()[50] == 2 for p in PHOTOS)


# -- the alpha plane's zstd frame: what libzstd accepts and refuses ------------------------
def _zstd_cases() -> dict:
    """Alpha sections crafted around what libzstd (Python's, 64-bit) checks, with what the
    reference decoder does with them: (section bytes, accepted?)."""
    import zstandard
    src = VECTORS / "v7-rgba-latent.inr"
    import fuzz
    _, _, spans = fuzz.layout(src.read_bytes())
    a, e = spans["alpha_len"]
    raw = zstandard.ZstdDecompressor().decompress(src.read_bytes()[a:e])
    plain = zstandard.ZstdCompressor(level=19).compress(raw)
    checked = zstandard.ZstdCompressor(level=19, write_checksum=True).compress(raw)
    nosize = zstandard.ZstdCompressor(level=19, write_content_size=False).compress(raw)
    assert nosize[4] & 0xE3 == 0  # no content size, not single-segment: a window byte at 5

    def window(wd: int, fcs: bool) -> bytes:
        """`nosize` with another window byte and, if fcs, a 4-byte content size."""
        head = bytes([nosize[4] | (0x80 if fcs else 0), wd])
        return nosize[:4] + head + (len(raw).to_bytes(4, "little") if fcs else b"") + nosize[6:]

    short = zstandard.ZstdCompressor(write_content_size=False).compress(raw[:-1])
    long = zstandard.ZstdCompressor(write_content_size=False).compress(raw + b"\0")
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"abcd"
    half = len(raw) // 2
    two = (zstandard.ZstdCompressor().compress(raw[:half])
           + zstandard.ZstdCompressor().compress(raw[half:]))
    bad_sum = checked[:-1] + bytes([checked[-1] ^ 1])
    dict_id = plain[:4] + bytes([plain[4] | 1, 7]) + plain[5:]
    return {
        "plain": (plain, True), "checksum": (checked, True), "checksum-wrong": (bad_sum, False),
        "no-content-size": (nosize, True),
        "window-2^27": (window(17 << 3, False), True),
        "window-over-2^27-no-size": (window(17 << 3 | 1, False), False),
        "window-2^31-no-size": (window(21 << 3, False), False),
        "window-2^31-with-size": (window(21 << 3, True), True),
        "window-2^32": (window(22 << 3, True), False),
        "window-2^30-with-size": (window(20 << 3 | 7, True), True),
        "trailing-byte": (plain + b"\0", False), "trailing-skippable": (plain + skippable, False),
        "skippable-only": (skippable, False), "two-frames": (two, False),
        "one-short": (short, False), "one-long": (long, False),
        "dictionary-id": (dict_id, False), "truncated": (plain[:-1], False),
        "header-only": (plain[:6], False), "magic-only": (plain[:4], False),
    }


_ZSTD_CASES = _zstd_cases() if (VECTORS / "v7-rgba-latent.inr").exists() else {}


@pytest.mark.parametrize("case", sorted(_ZSTD_CASES))
def test_alpha_zstd_frame_agrees(reference, node, case):
    """Both decoders accept exactly the alpha frames libzstd accepts (conformance.md)."""
    import fuzz
    section, accepted = _ZSTD_CASES[case]
    data = (VECTORS / "v7-rgba-latent.inr").read_bytes()
    _, f, spans = fuzz.layout(data)
    a, e = spans["alpha_len"]
    body = bytearray(data[:a] + section + data[e:-4])
    off = f["alpha_len"][0]
    body[off:off + 4] = len(section).to_bytes(4, "little")
    data = fuzz.with_crc(bytes(body))
    r = reference.decode(data)
    assert r["ok"] == accepted, r.get("error")
    js = node(data)
    assert js["ok"] == accepted, js.get("error")
    if accepted:
        _compare(reference, js, data)
    else:
        assert "alpha plane" in r["error"] and "alpha plane" in js["error"], (r["error"], js["error"])


def test_found_inputs_agree(reference, node):
    """web/test/found: the fuzzer's finds; both decoders do what each file's .txt expects."""
    found = sorted((WEB / "test" / "found").glob("*.inr"))
    assert found
    for path in found:
        expect = [ln for ln in path.with_suffix(".txt").read_text().splitlines()
                  if ln.startswith("expect: ")][0][len("expect: "):]
        data = path.read_bytes()
        r, js = reference.decode(data), node(data)
        if expect == "accept":
            _compare(reference, js, data)
        else:
            words = expect[len("refuse: "):]
            assert not r["ok"] and words in r["error"], (path.name, r.get("error"))
            assert not js["ok"] and words in js["error"], (path.name, js.get("error"))


# -- in the browser ---------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    p = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/web/index.html"
    p.terminate()
    p.wait(10)


def _browser(url: str, out: Path, files: list[str]) -> list[dict]:
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.skip("needs the JS test dependencies: npm ci --prefix web")
    chromium = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.skip("needs the system's Chromium: apt-get install -y chromium")
    r = subprocess.run(["node", str(WEB / "tools" / "browser.mjs"), url, str(out), *files],
                       capture_output=True, text=True, timeout=900,
                       env={**os.environ, "CHROMIUM": chromium})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)["results"]


def _rgba_of(pixels: np.ndarray) -> np.ndarray:
    """What the page draws: grey replicated, alpha 255 where the image has none."""
    h, w, c = pixels.shape
    out = np.full((h, w, 4), 255, np.uint8)
    out[..., :3] = pixels[..., :1] if c <= 2 else pixels[..., :3]
    if c in (2, 4):
        out[..., 3] = pixels[..., -1]
    return out


@pytest.mark.slow
def test_page_in_chromium(reference, server, tmp_path):
    """The page opens each file with its file picker and shows it (the vectors, two
    photos' files and one made now by `inrcodec.encode`): the canvas is the reference
    decoder's image within the tolerance; a damaged file gets an error message;
    another size renders. Screenshots go to $INR_WEB_SCREENSHOTS (or the test's tmp)."""
    shots = Path(os.environ.get("INR_WEB_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    damaged = tmp_path / "damaged.inr"
    good = (PHOTOS or LATENT_VECTORS)[0].read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x10
    damaged.write_bytes(bytes(bad))
    today = tmp_path / "today.inr"  # a file of today's encoder and shipped default model
    from skimage import data as skdata

    import inrcodec
    today.write_bytes(inrcodec.encode(skdata.astronaut()[40:136, 200:328], steps=20))
    files = [str(p) for p in LATENT_VECTORS] + [str(p) for p in PHOTOS[:2]] + [str(today)] \
        + [str(damaged)] + [f"80x60@{LATENT_VECTORS[-1]}"]
    results = _browser(server, shots, files)
    for res in results:
        path = Path(res["file"])
        if path == damaged:
            assert res["state"] == "error"
            assert "checksum mismatch" in res["error"] and "cannot be shown" in res["error"]
            continue
        assert res["state"] == "decoded", res["error"]
        assert res["zstd"] == "wasm64"  # the exact libzstd build (src/zstd.js)
        data = path.read_bytes()
        ref = reference.decode(data, tuple(res["size"]) if res["size"] else None)
        want = _rgba_of(ref["pixels"])
        got = np.frombuffer(base64.b64decode(res["rgba"]), np.uint8).reshape(want.shape)
        if ref["pixels"].shape[2] in (2, 4):  # canvas alpha is premultiplied: compare opaque pixels
            keep = want[..., 3] == 255
            got, want = got[keep], want[keep]
        d = np.abs(got.astype(np.int16) - want.astype(np.int16))
        assert d.max(initial=0) <= 1, (path.name, int(d.max()))
        assert (d > 0).mean() <= MAX_SHARE_OFF
        assert res["header"]["version"] == str(data[4])
        print(path.name, res["width"], res["height"], f"{res['decodeMs']:.0f} ms", res["screenshot"])
