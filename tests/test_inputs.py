"""The inputs users have, outputs that must not be lost, and reproducibility."""
from __future__ import annotations

import errno
import io
import os
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import inrcodec
from inrcodec import api
from inrcodec import io as imageio
from inrcodec.cli import main
from inrcodec.codec import bitstream
from inrcodec.codec.header import MAX_SIDE
from inrcodec.errors import ImageError, InrcodecError, ModelError, OutputExistsError
from inrcodec.model.shared_model import SharedModel

STEPS = 2


@pytest.fixture
def enc(tiny_model):
    def run(image, **kw):
        return api.encode_report(image, model=tiny_model, steps=kw.pop("steps", STEPS),
                                 mode="weights", **{"format_version": 2, **kw})
    return run


@pytest.fixture
def dec(tiny_model):
    return lambda data, **kw: api.decode_array(data, model=tiny_model, **kw)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_refused(result, *fragments, usage=False):
    """Exit status != 0, one clear line (or click's usage error), no traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert ("Error: " if usage else "inrcodec: error: ") in result.output
    for f in fragments:
        assert f in result.output, result.output


def no_leftovers(folder: Path, *expected: str):
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)


def png16(a: np.ndarray, colour_type: int, size: tuple[int, int] | None = None) -> bytes:
    """A 16-bit PNG (Pillow cannot write 16-bit RGB); `size` overrides the IHDR size."""
    h, w = a.shape[:2]
    w, h = size or (w, h)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in a)
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def noise(h, w, c, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


# -- damaged and degenerate images ------------------------------------------------------------
def _saved(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP"])
def test_truncated_and_corrupt_images(tmp_path, fmt):
    good = _saved(Image.fromarray(noise(30, 41, 3)), fmt)
    p = tmp_path / f"x.{fmt.lower()}"
    for data in (good[:len(good) // 2], good[:20], b"", b"\0" * 100,
                 good[:len(good) // 3] + bytes(len(good) // 3) + good[2 * len(good) // 3:]):
        p.write_bytes(data)
        try:
            imageio.load_image(p)
        except ImageError as e:
            assert str(p) in str(e)


def test_truncated_animated_gif(tmp_path):
    frames = [Image.fromarray(noise(20, 20, 3, s)).convert("P") for s in range(3)]
    data = _saved(frames[0], "GIF", save_all=True, append_images=frames[1:])
    p = tmp_path / "a.gif"
    for cut in range(len(data) // 3, len(data), 97):
        p.write_bytes(data[:cut])
        try:
            imageio.load_image(p)
        except ImageError:
            pass  # was IndexError while counting the frames


def test_corrupt_image_cli(tmp_path, tiny_model_path):
    p = tmp_path / "broken.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    r = cli("encode", p, tmp_path / "o.inr", "--mode", "weights", "--model", tiny_model_path, "--steps", 1)
    assert_refused(r, "broken.png")
    no_leftovers(tmp_path, "broken.png")
    r = cli("encode", tmp_path / "missing.png", tmp_path / "o.inr", "--mode", "weights", "--model", tiny_model_path)
    assert_refused(r, "no such file")
    r = cli("encode", tmp_path, tmp_path / "o.inr", "--mode", "weights", "--model", tiny_model_path)
    assert_refused(r, "is a directory", usage=True)


def test_zero_size_images(tmp_path, enc):
    # Pillow makes a 0x0 image in memory but refuses to save or open one.
    for img in (Image.new("RGB", (0, 0)), Image.new("L", (5, 0)),
                np.zeros((0, 0, 3), np.uint8), np.zeros((7, 0), np.uint8)):
        with pytest.raises(ImageError, match="no pixels"):
            enc(img)
    p = tmp_path / "empty.png"
    p.write_bytes(png16(np.zeros((0, 0, 3), np.uint16), 2))
    with pytest.raises(ImageError):
        enc(p)


def test_one_pixel(enc, dec):
    for a in (np.full((1, 1, 3), 200, np.uint8), np.full((1, 1), 9, np.uint8)):
        r = enc(a)
        out = dec(r.data)
        assert out.shape[:2] == (1, 1) and r.tiles == 1
        assert dec(r.data, size=(5, 3)).shape[:2] == (3, 5)


@pytest.mark.parametrize("h, w", [(28, 40), (17, 33), (16, 16), (1, 50), (49, 2)])
def test_sizes_not_a_multiple_of_the_tile(enc, dec, h, w):
    r = enc(noise(h, w, 3))
    assert dec(r.data).shape == (h, w, 3)
    assert r.tiles == -(-h // 16) * -(-w // 16)


def test_moderately_large_image_in_chunks(tiny_model, dec):
    """1000x600 (2370 tiles) fitted in chunks of 64 tiles: progress proves the chunking."""
    y, x = np.mgrid[0:600, 0:1000]
    a = np.stack([(x // 7) % 256, (y // 5) % 256, (x + y) % 256], -1).astype(np.uint8)
    calls = []
    r = api.encode_report(a, model=tiny_model, steps=1, batch_pixels=64 * 256,
                          progress=lambda done, total, loss: calls.append((done, total)), mode="weights", format_version=2)
    n_tiles = 38 * 63
    # one call per chunk of 64 tiles, counting the optimiser step in fractions
    assert r.tiles == n_tiles and len(calls) == -(-n_tiles // 64)
    assert calls[-1] == (1, 1) and all(0 < d <= 1 for d, _ in calls)
    assert dec(r.data).shape == (600, 1000, 3)


def test_chunk_size_does_not_change_the_output(tiny_model, rgb_image):
    a = api.encode(rgb_image, model=tiny_model, steps=2, batch_pixels=512, mode="weights", format_version=2)
    b = api.encode(rgb_image, model=tiny_model, steps=2, mode="weights", format_version=2)
    assert a == b


def test_image_too_large_is_refused(tmp_path, enc):
    """A PNG header claiming 100000x100000 (no pixel data): refused before decoding."""
    p = tmp_path / "huge.png"
    p.write_bytes(png16(np.zeros((1, 1, 3), np.uint16), 2, size=(100_000, 100_000)))
    with pytest.raises(ImageError, match="too large|exceeds"):
        enc(p)
    with pytest.raises(InrcodecError, match="larger than the format allows"):
        enc(np.zeros((1, MAX_SIDE + 1), np.uint8))


def test_non_finite_float_image(tmp_path, enc):
    p = tmp_path / "nan.tif"
    a = np.full((4, 5), np.nan, np.float32)
    Image.fromarray(a).save(p)
    with pytest.raises(ImageError, match="non-finite"):
        enc(p)
    with pytest.raises(ImageError, match="non-finite"):
        enc(a)


# -- colour modes ------------------------------------------------------------------------------
def test_greyscale(enc, dec, tiny_model, tmp_path):
    a = noise(20, 30, 1)[:, :, 0]
    r = enc(Image.fromarray(a, "L"))
    assert r.image_mode == "L" and dec(r.data).shape == (20, 30, 1)
    img = inrcodec.decode(r.data, model=tiny_model)
    assert img.mode == "L" and img.size == (30, 20)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_round_trips_exactly(enc, dec, tiny_model, tiny_model_path, tmp_path, mode):
    c = 4 if mode == "RGBA" else 2
    a = noise(23, 37, c, seed=5)
    src = tmp_path / "in.png"
    Image.fromarray(a, mode).save(src)
    r = enc(src)
    assert r.image_mode == mode
    out = dec(r.data)
    assert out.shape == (23, 37, c)
    assert np.array_equal(out[:, :, -1], a[:, :, -1])
    # through the files and the CLI as well
    inr, png = tmp_path / "x.inr", tmp_path / "out.png"
    assert cli("encode", src, inr, "--mode", "weights", "--model", tiny_model_path, "--steps", 1, "-q").exit_code == 0
    assert cli("decode", inr, png, "--model", tiny_model_path).exit_code == 0
    back = Image.open(png)
    assert back.mode == mode and np.array_equal(np.asarray(back)[:, :, -1], a[:, :, -1])


@pytest.mark.parametrize("ext", ["ppm", "bmp", "jpg", "gif"])
def test_alpha_is_not_dropped_silently_on_output(tmp_path, tiny_model, tiny_model_path, ext):
    for mode, c in (("RGBA", 4), ("LA", 2)):
        data = api.encode(noise(9, 9, c), model=tiny_model, steps=1, mode="weights", format_version=2)
        (tmp_path / "x.inr").write_bytes(data)
        r = cli("decode", tmp_path / "x.inr", tmp_path / f"o.{ext}", "--model", tiny_model_path)
        assert_refused(r, "cannot store the alpha channel")
        no_leftovers(tmp_path, "x.inr")


def test_palette_without_transparency(enc, dec):
    p = Image.fromarray(noise(16, 24, 3)).convert("P")
    r = enc(p)
    assert r.image_mode == "RGB" and any("palette" in n for n in r.notices)


def test_palette_with_transparency(enc, dec, tmp_path):
    p = Image.fromarray(noise(16, 24, 3)).convert("P")
    p.info["transparency"] = 0
    src = tmp_path / "t.png"
    p.save(src, transparency=0)
    r = enc(src)
    assert r.image_mode == "RGBA" and any("RGBA" in n for n in r.notices)
    expected = np.asarray(Image.open(src).convert("RGBA"))[:, :, 3]
    assert 0 < (expected == 0).sum() < expected.size
    assert np.array_equal(dec(r.data)[:, :, 3], expected)


def test_16_bit_png(tmp_path, enc, dec):
    g = (np.arange(12 * 10).reshape(12, 10) * 521 % 65536).astype(np.uint16)
    p = tmp_path / "g16.png"
    p.write_bytes(png16(g[:, :, None], 0))
    r = enc(p)
    assert r.image_mode == "L" and any("16" in n for n in r.notices)
    loaded = imageio.load_image(p).pixels[:, :, 0]
    assert np.array_equal(loaded, np.round(g / 65535 * 255).astype(np.uint8))
    rgb = np.stack([g, g[::-1], 65535 - g], -1)
    p = tmp_path / "rgb16.png"
    p.write_bytes(png16(rgb, 2))
    r = enc(p)
    assert r.image_mode == "RGB" and dec(r.data).shape == (12, 10, 3)
    assert np.array_equal(imageio.load_image(p).pixels, (rgb >> 8).astype(np.uint8))


def test_cmyk_jpeg(tmp_path, enc, dec):
    p = tmp_path / "c.jpg"
    Image.fromarray(noise(20, 30, 3)).convert("CMYK").save(p)
    assert Image.open(p).mode == "CMYK"
    r = enc(p)
    assert r.image_mode == "RGB" and any("CMYK" in n for n in r.notices)
    assert dec(r.data).shape == (20, 30, 3)


def test_exif_rotated_jpeg(tmp_path, enc, dec):
    a = noise(20, 40, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    p = tmp_path / "r.jpg"
    Image.fromarray(a).save(p, exif=exif.tobytes())
    assert Image.open(p).size == (40, 20)
    r = enc(p)
    assert (r.width, r.height) == (20, 40)
    assert dec(r.data).shape == (40, 20, 3)


def test_animated_gif_first_frame(tmp_path, enc):
    frames = [Image.fromarray(noise(12, 18, 3, s)).convert("P") for s in range(3)]
    p = tmp_path / "a.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=50)
    r = enc(p)
    assert any("3 frames" in n and "first" in n for n in r.notices)
    first = np.asarray(Image.open(p).convert("RGB"))
    assert np.array_equal(imageio.load_image(p).pixels, first)


def test_notices_are_printed_by_the_cli(tmp_path, tiny_model_path):
    p = tmp_path / "a.gif"
    frames = [Image.fromarray(noise(12, 18, 3, s)).convert("P") for s in range(2)]
    frames[0].save(p, save_all=True, append_images=frames[1:])
    r = cli("encode", p, tmp_path / "a.inr", "--mode", "weights", "--model", tiny_model_path, "--steps", 1, "-q")
    assert r.exit_code == 0 and "inrcodec: note: animated image with 2 frames" in r.output


# -- outputs: --force, interruption, failures ---------------------------------------------------
def test_existing_output_needs_force_api(tmp_path, tiny_model, rgb_image):
    src, dst = tmp_path / "in.png", tmp_path / "out.inr"
    Image.fromarray(rgb_image).save(src)
    dst.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        api.encode_file(src, dst, model=tiny_model, steps=1, mode="weights", format_version=2)
    assert dst.read_bytes() == b"precious"
    api.encode_file(src, dst, model=tiny_model, steps=1, force=True, mode="weights", format_version=2)
    data = dst.read_bytes()
    assert data.startswith(bitstream.MAGIC)
    png = tmp_path / "out.png"
    png.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        api.decode_file(dst, png, model=tiny_model)
    assert png.read_bytes() == b"precious"
    api.decode_file(dst, png, model=tiny_model, force=True)
    assert Image.open(png).size == (40, 28)
    no_leftovers(tmp_path, "in.png", "out.inr", "out.png")


def test_existing_output_needs_force_cli(tmp_path, tiny_model_path, rgb_image):
    src, dst = tmp_path / "in.png", tmp_path / "out.inr"
    Image.fromarray(rgb_image).save(src)
    dst.write_bytes(b"precious")
    r = cli("encode", src, dst, "--mode", "weights", "--model", tiny_model_path, "--steps", 1)
    assert_refused(r, "already exists", "--force")
    assert dst.read_bytes() == b"precious"
    r = cli("encode", src, dst, "--mode", "weights", "--model", tiny_model_path, "--steps", 1, "--force", "-q")
    assert r.exit_code == 0 and dst.read_bytes().startswith(bitstream.MAGIC)
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    assert_refused(cli("decode", dst, out, "--model", tiny_model_path), "already exists")
    assert out.read_bytes() == b"precious"
    assert cli("decode", dst, out, "--model", tiny_model_path, "--force").exit_code == 0
    no_leftovers(tmp_path, "in.png", "out.inr", "out.png")


def _interrupt(done, total, loss):
    if done >= 2:
        raise KeyboardInterrupt


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_encode_leaves_nothing(tmp_path, tiny_model, rgb_image, existing):
    src, dst = tmp_path / "in.png", tmp_path / "out.inr"
    Image.fromarray(rgb_image).save(src)
    if existing:
        dst.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        api.encode_file(src, dst, model=tiny_model, steps=5, progress=_interrupt, force=True, mode="weights", format_version=2)
    no_leftovers(tmp_path, "in.png", *(["out.inr"] if existing else []))
    if existing:
        assert dst.read_bytes() == b"old"


def test_interrupted_while_writing_leaves_nothing(tmp_path, tiny_model, rgb_image, monkeypatch):
    src, dst = tmp_path / "in.png", tmp_path / "out.inr"
    Image.fromarray(rgb_image).save(src)

    def boom(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        api.encode_file(src, dst, model=tiny_model, steps=1, mode="weights", format_version=2)
    no_leftovers(tmp_path, "in.png")


def test_interrupted_encode_cli(tmp_path, tiny_model_path, rgb_image, monkeypatch):
    from inrcodec.cli import progress as cli_progress
    src, dst = tmp_path / "in.png", tmp_path / "out.inr"
    Image.fromarray(rgb_image).save(src)

    def interrupt(self, done, total, loss):
        if done >= 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(cli_progress.StepProgress, "__call__", interrupt)
    r = cli("encode", src, dst, "--mode", "weights", "--model", tiny_model_path, "--steps", 5)
    assert r.exit_code == 130
    assert_refused(r, "interrupted; no output was written")
    no_leftovers(tmp_path, "in.png")


def test_write_failure_is_a_clear_error(tmp_path, tiny_model, rgb_image, monkeypatch):
    def full(a, b):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(InrcodecError, match="No space left"):
        api.encode_file(rgb_image_path(tmp_path, rgb_image), tmp_path / "o.inr",
                        model=tiny_model, steps=1, mode="weights", format_version=2)
    no_leftovers(tmp_path, "in.png")


def rgb_image_path(folder: Path, a: np.ndarray) -> Path:
    p = folder / "in.png"
    Image.fromarray(a).save(p)
    return p


def test_outputs_get_the_usual_permissions(tmp_path, tiny_model, rgb_image):
    umask = os.umask(0o022)
    try:
        dst = tmp_path / "o.inr"
        api.encode_file(rgb_image_path(tmp_path, rgb_image), dst, model=tiny_model, steps=1, mode="weights", format_version=2)
        assert stat.S_IMODE(dst.stat().st_mode) == 0o644
        dst.chmod(0o600)
        api.encode_file(tmp_path / "in.png", dst, model=tiny_model, steps=1, force=True, mode="weights", format_version=2)
        assert stat.S_IMODE(dst.stat().st_mode) == 0o600
    finally:
        os.umask(umask)


def test_missing_model_cli_names_the_hash(tmp_path, tiny_model, rgb_image):
    inr = tmp_path / "x.inr"
    inr.write_bytes(api.encode(rgb_image, model=tiny_model, steps=1, mode="weights", format_version=2))
    r = cli("decode", inr, tmp_path / "o.png", "--model", tmp_path / "none.safetensors")
    assert_refused(r, f"needs shared model {tiny_model.hash}")
    with pytest.raises(ModelError, match=tiny_model.hash):
        api.decode_file(inr, tmp_path / "o.png", model=tmp_path / "none.safetensors")
    no_leftovers(tmp_path, "x.inr")


def test_damaged_inr_cli(tmp_path, tiny_model, tiny_model_path, rgb_image):
    data = api.encode(rgb_image, model=tiny_model, steps=1, mode="weights", format_version=2)
    inr = tmp_path / "x.inr"
    flipped = data[:100] + bytes([data[100] ^ 1]) + data[101:]  # in the payload
    for bad, msg in ((data[:-1], "truncated"), (flipped, "checksum"),
                     (b"hello", "not an inrcodec file")):
        inr.write_bytes(bad)
        assert_refused(cli("decode", inr, tmp_path / "o.png", "--model", tiny_model_path), msg)
        assert_refused(cli("info", inr))
    no_leftovers(tmp_path, "x.inr")


# -- reproducibility ----------------------------------------------------------------------------
def test_reencode_is_byte_identical(tiny_model, tiny_model_path, rgb_image):
    a = api.encode(rgb_image, model=tiny_model, steps=3, mode="weights", format_version=2)
    b = api.encode(rgb_image.copy(), model=SharedModel.load(tiny_model_path), steps=3, mode="weights", format_version=2)
    assert a == b
    rgba = np.concatenate([rgb_image, rgb_image[:, :, :1]], 2)
    assert api.encode(rgba, model=tiny_model, steps=2, mode="weights", format_version=2) == api.encode(rgba, model=tiny_model,
                                                                     steps=2, mode="weights", format_version=2)


def test_reencode_in_a_new_process_is_byte_identical(tmp_path, tiny_model_path, rgb_image):
    src = rgb_image_path(tmp_path, rgb_image)
    here = api.encode(src, model=tiny_model_path, steps=2, mode="weights", format_version=2)
    env = dict(os.environ, PYTHONPATH=str(Path(inrcodec.__file__).parent.parent))
    subprocess.run([sys.executable, "-m", "inrcodec.cli", "encode", str(src),
                    str(tmp_path / "o.inr"), "--model", str(tiny_model_path), "--steps", "2",
                    "-q", "--device", "cpu", "--mode", "weights", "--preset", "paper"],
                   check=True, env=env, capture_output=True)
    assert (tmp_path / "o.inr").read_bytes() == here


def test_decode_is_deterministic(tmp_path, tiny_model, rgb_image):
    data = api.encode(rgb_image, model=tiny_model, steps=2, mode="weights", format_version=2)
    a, b = api.decode_array(data, model=tiny_model), api.decode_array(data, model=tiny_model)
    assert np.array_equal(a, b)
    assert np.array_equal(api.decode_array(data, model=tiny_model, scale=1.7),
                          api.decode_array(data, model=tiny_model, scale=1.7))
    for name in ("a.png", "b.png"):
        (tmp_path / "x.inr").write_bytes(data)
        api.decode_file(tmp_path / "x.inr", tmp_path / name, model=tiny_model)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
