"""Pillow opens and saves .inr files once inrcodec is imported (inrcodec/pillow_plugin.py),
through real Pillow calls: open, load, convert, thumbnail, reduce, ImageOps, save and a
damaged file."""
import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps, UnidentifiedImageError

import inrcodec
from inrcodec.cli import main
from inrcodec.codec import bitstream

STEPS = 4


def _photo(h=36, w=48):
    y, x = np.mgrid[0:h, 0:w] / 6.0
    base = np.stack([np.sin(x), np.cos(y * 1.3), np.sin(x * y / 5)], -1)
    return np.clip((0.4 * base + 0.5) * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def inr_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("pil") / "photo.inr"
    Image.fromarray(_photo()).save(p, quality=40, steps=STEPS)
    return p


def test_save_writes_what_the_api_writes(inr_file):
    assert inr_file.read_bytes() == inrcodec.encode(_photo(), quality=40, steps=STEPS)


def test_open_reads_the_header_only_and_load_gives_the_decoders_pixels(inr_file):
    im = Image.open(inr_file)
    assert (im.format, im.mode, im.size) == ("INR", "RGB", (48, 36))
    assert im.tile  # nothing decoded yet
    expected = np.asarray(inrcodec.decode(inr_file.read_bytes()))
    assert np.array_equal(np.asarray(im.convert("RGB")), expected)
    assert np.array_equal(np.asarray(Image.open(inr_file)), expected)


def test_a_saved_file_is_read_by_the_command_line(tmp_path):
    src = tmp_path / "y.inr"
    Image.fromarray(_photo()).save(src, quality=40, steps=STEPS)
    r = CliRunner().invoke(main, ["decode", str(src), str(tmp_path / "y.png")])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "y.png")),
                          np.asarray(Image.open(src)))


def test_save_to_a_stream_with_the_format_named(inr_file):
    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, format="INR", quality=40, steps=STEPS)
    assert buf.getvalue() == inr_file.read_bytes()


def test_save_passes_the_codec_options(tmp_path):
    a, b = tmp_path / "a.inr", tmp_path / "b.inr"
    Image.fromarray(_photo()).save(a, quality=5, steps=STEPS)
    Image.fromarray(_photo()).save(b, quality=90, steps=STEPS)
    assert a.stat().st_size < b.stat().st_size
    with pytest.raises(OSError, match="quality"):
        Image.fromarray(_photo()).save(tmp_path / "c.inr", quality=500, steps=STEPS)
    assert not (tmp_path / "c.inr").exists()  # no half-written file


def test_thumbnail_renders_small_directly(inr_file):
    im = Image.open(inr_file)
    im.thumbnail((12, 12))
    assert im.size == (12, 9)
    # draft asked the decoder for a render between the target and the stored size
    im = Image.open(inr_file)
    mode, box = im.draft("RGB", (24, 18))
    assert im.size == (24, 18) and box == (0, 0, 24, 18)
    expected = np.asarray(inrcodec.decode(inr_file.read_bytes(), (24, 18)))
    assert np.array_equal(np.asarray(im), expected)


def test_draft_never_renders_larger_than_stored(inr_file):
    im = Image.open(inr_file)
    assert im.draft("RGB", (100, 100)) is None
    assert im.size == (48, 36)


def test_reduce_renders_at_the_reduced_size(inr_file):
    im = Image.open(inr_file).reduce(5)
    assert im.size == (10, 8)  # Pillow's rule: rounded up
    expected = np.asarray(inrcodec.decode(inr_file.read_bytes(), (10, 8)))
    assert np.array_equal(np.asarray(im), expected)
    loaded = Image.open(inr_file)
    loaded.load()
    assert loaded.reduce(2).size == (24, 18)


def test_imageops_and_greyscale(inr_file):
    im = Image.open(inr_file)
    assert ImageOps.mirror(im).size == (48, 36)
    assert Image.open(inr_file).convert("L").mode == "L"


def test_alpha_round_trip(tmp_path):
    rgba = np.concatenate([_photo(), np.full((36, 48, 1), 77, np.uint8)], 2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.inr", steps=STEPS)
    im = Image.open(tmp_path / "a.inr")
    assert im.mode == "RGBA"
    assert (np.asarray(im)[:, :, 3] == 77).all()


def test_damaged_files_raise_pillows_errors(inr_file, tmp_path):
    data = inr_file.read_bytes()
    bad_crc = tmp_path / "crc.inr"
    bad_crc.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    im = Image.open(bad_crc)  # the header is fine
    with pytest.raises(OSError, match="checksum"):
        im.load()
    cut = tmp_path / "cut.inr"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(OSError, match="truncated"):
        Image.open(cut).load()
    head = tmp_path / "head.inr"
    head.write_bytes(data[:10])
    with pytest.raises(UnidentifiedImageError, match="damaged .inr file"):
        Image.open(head)
    other = tmp_path / "other.inr"
    other.write_bytes(b"not an image at all")
    with pytest.raises(UnidentifiedImageError):
        Image.open(other)


def test_registered_with_pillow():
    assert Image.registered_extensions()[".inr"] == "INR"
    assert Image.MIME["INR"] == "image/x-inr"
    assert bitstream.MAGIC == b"INRC"
