"""Format 5: the weight mode's rate-distortion fit, learned step sizes, per-tensor Laplace
priors coded by model, and a level per tile."""
import hashlib
import struct
import subprocess
import sys

import numpy as np
import pytest

import inrcodec
from inrcodec.codec import bitstream, prior
from inrcodec.codec.weights import format as wformat
from inrcodec.codec.weights import rdencode, rdfit, tilecode
from inrcodec.errors import FormatError, InrcodecError
from inrcodec.io import as_loaded
from inrcodec.metrics import psnr

FAST = dict(format_version=5, steps=30)


def _enc(img, model, **kw):
    return inrcodec.encode_report(img, model=model, mode="weights", **{**FAST, **kw})


def test_round_trip_and_any_size(tiny_model, rgb_image):
    r = _enc(rgb_image, tiny_model, quality=60)
    assert r.format_version == 5 and bitstream.unpack_header(r.data).version == 5
    out = inrcodec.decode_array(r.data, model=tiny_model)
    assert out.shape == rgb_image.shape
    assert abs(psnr(out, rgb_image) - r.psnr) < 1e-9
    big = inrcodec.decode_array(r.data, (80, 56), model=tiny_model)
    assert big.shape == (56, 80, 3)
    # the 2x render lands on the stored pixels at even positions
    assert np.abs(big[::2, ::2].astype(int) - out.astype(int)).max() <= 1


def test_deterministic(tiny_model, rgb_image):
    assert _enc(rgb_image, tiny_model, quality=40).data == \
        _enc(rgb_image, tiny_model, quality=40).data


def test_quality_orders_rate_and_psnr(tiny_model, rgb_image):
    lo = _enc(rgb_image, tiny_model, quality=5)
    hi = _enc(rgb_image, tiny_model, quality=95)
    assert hi.bytes > lo.bytes
    assert hi.psnr > lo.psnr


def test_bpp_target_lands_at_or_under(tiny_model, rgb_image):
    ref = _enc(rgb_image, tiny_model, quality=50)
    r = _enc(rgb_image, tiny_model, bpp=ref.bpp * 1.05)
    assert r.bpp <= ref.bpp * 1.05
    assert r.search["target"] == "bpp" and r.search["probes"]
    with pytest.raises(InrcodecError, match="below the smallest"):
        _enc(rgb_image, tiny_model, bpp=1e-4)


def test_wrong_model_is_named(tiny_model, rgb_image):
    from inrcodec.errors import ModelMismatchError
    from inrcodec.model.inr import Arch
    from inrcodec.model.shared_model import scratch_model
    r = _enc(rgb_image, tiny_model, quality=50)
    other = scratch_model(Arch(width=16, depth=3, w0=30.0), tile=16, n_levels=4, seed=2)
    with pytest.raises(ModelMismatchError, match=tiny_model.hash):
        inrcodec.decode_array(r.data, model=other)


def test_options_refused(tiny_model, rgb_image):
    with pytest.raises(InrcodecError, match="learns its step sizes"):
        _enc(rgb_image, tiny_model, quality=50, lr=1e-3)
    with pytest.raises(InrcodecError, match="learns its step sizes"):
        _enc(rgb_image, tiny_model, quality=50, coder="zstd")


def _forced(model, n, seed=0):
    """Three options (two levels, and biases only) over n tiles, random integers."""
    rng = np.random.default_rng(seed)
    forced = np.arange(n) % 3
    rng.shuffle(forced)
    opts, qs = [], []
    for k, (level, kind) in enumerate(((3, 0), (1, 0), (3, 1))):
        o = tilecode.Option(level, kind, None, None)
        pos, tensors = tilecode.layout(model, o)
        q = rng.integers(-3, 4, size=((forced == k).sum(), len(pos)))
        o.steps = np.full(len(tensors), 0.01, dtype=np.float32)
        o.params = [prior.fit_m(q[:, cols]) for cols in tensors]
        opts.append(o)
        qs.append(q)
    return opts, forced, qs


def test_level_map_round_trips(tiny_model, rgb_image):
    """Several options: each tile's option and values come back exactly."""
    img = as_loaded(rgb_image)
    cands = [rdencode.Candidate(3), rdencode.Candidate(1), rdencode.Candidate(3, True)]
    r = rdencode.encode(img, tiny_model, cands, rdfit.RDFitConfig(steps=5, lam=1e-4))
    h = bitstream.verify(r.data)
    options, choice, thetas = tilecode.decode(
        tiny_model, *(bitstream.section(r.data, h, k) for k in ("options", "map", "payload")),
        h.options, h.n_tiles)
    assert np.array_equal(choice, r.choice)
    assert [(o.level, o.kind) for o in options] == [(o.level, o.kind) for o in r.options]
    opts, forced, qs = _forced(tiny_model, h.n_tiles)
    side, tmap, payload = tilecode.encode(tiny_model, opts, forced, qs)
    back_opts, back, back_q = tilecode.decode(tiny_model, side, tmap, payload, 3, h.n_tiles)
    assert np.array_equal(back, forced)
    for q, bq in zip(qs, back_q):
        assert np.array_equal(q, bq)


def test_tables_are_integer_and_pinned():
    """The coder's tables come from integers only: the same bytes on every machine
    (checked under ATEN_CPU_CAPABILITY=default and avx2 by the next test)."""
    digest = hashlib.sha256()
    for m, qmax in ((1, 0), (30000, 5), (60000, 40), (65535, 300)):
        digest.update(prior.table(m, qmax).astype("<i8").tobytes())
    digest.update(prior.table_counts(np.array([5, 90, 1])).astype("<i8").tobytes())
    assert digest.hexdigest()[:16] == TABLES_DIGEST


TABLES_DIGEST = "1b98e6029d211eab"


@pytest.mark.parametrize("cap", ["default", "avx2"])
def test_tables_same_under_cpu_capabilities(cap):
    code = ("import hashlib, numpy as np; from inrcodec.codec import prior; d = hashlib.sha256()\n"
            "for m, q in ((1, 0), (30000, 5), (60000, 40), (65535, 300)):\n"
            "    d.update(prior.table(m, q).astype('<i8').tobytes())\n"
            "d.update(prior.table_counts(np.array([5, 90, 1])).astype('<i8').tobytes())\n"
            "print(d.hexdigest()[:16])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "ATEN_CPU_CAPABILITY": cap},
                         check=True).stdout.strip()
    assert out == TABLES_DIGEST


def _damage(data: bytes, section: str, at: int, value: int) -> bytes:
    """Overwrite one byte of a section and fix the CRC (so the parser, not the CRC,
    must catch it)."""
    import zlib
    h = bitstream.verify(data)
    off = h.size
    for name, n in h.sections():
        if name == section:
            break
        off += n
    b = bytearray(data[:-4])
    b[off + at] = value
    return bytes(b) + struct.pack("<I", zlib.crc32(bytes(b)))


def test_corrupt_options_and_map_give_clear_errors(tiny_model, rgb_image):
    n = 3 * 2  # the 40x28 image in 16-pixel tiles
    opts, forced, qs = _forced(tiny_model, n)
    side, tmap, payload = tilecode.encode(tiny_model, opts, forced, qs)
    data = wformat.write_tiles(model_hash=tiny_model.hash, width=40, height=28, image_mode="RGB",
                                 tile=tiny_model.tile, n_options=3, options=side,
                                 tile_map=tmap, payload=payload)
    assert inrcodec.decode_array(data, model=tiny_model).shape == (28, 40, 3)
    with pytest.raises(FormatError, match="level 200"):
        inrcodec.decode_array(_damage(data, "options", 0, 200), model=tiny_model)
    with pytest.raises(FormatError, match="kind"):
        inrcodec.decode_array(_damage(data, "options", 1, 7), model=tiny_model)
    bad_prior = _damage(_damage(data, "options", 3 + 4, 0), "options", 3 + 5, 0)  # m = 0
    with pytest.raises(FormatError, match="prior parameters"):
        inrcodec.decode_array(bad_prior, model=tiny_model)
    with pytest.raises(FormatError, match="tile map"):
        inrcodec.decode_array(_damage(data, "map", 0, 255), model=tiny_model)
    with pytest.raises(FormatError):
        inrcodec.decode_array(_damage(data, "map", 4 * 3, data[4 * 3] ^ 0xFF), model=tiny_model)
    with pytest.raises(FormatError):
        inrcodec.decode_array(_damage(data, "payload", 0, data[-9] ^ 0x55), model=tiny_model)


def test_cli_weights_mode_writes_format_5(tiny_model_path, rgb_image, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from inrcodec.cli import main
    src = tmp_path / "a.png"
    Image.fromarray(rgb_image).save(src)
    dst = tmp_path / "a.inr"
    res = CliRunner().invoke(main, ["encode", str(src), str(dst), "--mode", "weights",
                                    "--model", str(tiny_model_path), "--steps", "10",
                                    "--quality", "40", "-q"])
    assert res.exit_code == 0, res.output
    assert bitstream.unpack_header(dst.read_bytes()).version == 5
    paper = tmp_path / "p.inr"
    res = CliRunner().invoke(main, ["encode", str(src), str(paper), "--mode", "weights",
                                    "--model", str(tiny_model_path), "--preset", "paper", "-q"])
    assert res.exit_code == 0, res.output
    assert bitstream.unpack_header(paper.read_bytes()).version == 2
