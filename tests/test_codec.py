import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import inrcodec
from inrcodec.codec import bitstream
from inrcodec.codec.weights import format as wformat
from inrcodec.codec.weights.codec import read
from inrcodec.codec.weights.tiles import image_to_tiles, render
from inrcodec.errors import ChecksumError, FormatError, ModelMismatchError
from inrcodec.metrics import psnr
from inrcodec.model.inr import Arch
from inrcodec.model.shared_model import SharedModel, scratch_model


def test_round_trip_rgb(tiny_model, rgb_image):
    r = inrcodec.encode_report(rgb_image, model=tiny_model, level=1, steps=30, lr=1e-2,
                               quantizer="fp16", mode="weights", format_version=2)
    img = inrcodec.decode(r.data, model=tiny_model)
    assert img.size == (40, 28) and img.mode == "RGB"
    a = np.asarray(img)
    assert r.psnr == pytest.approx(psnr(a, rgb_image))  # reported = what the receiver sees
    assert r.psnr > 20  # 10.2 dB before fitting
    h = bitstream.verify(r.data)
    assert (h.width, h.height, h.level, h.tile) == (40, 28, 1, 16)
    assert (h.tiles_y, h.tiles_x) == (2, 3)
    assert h.n_params == tiny_model.net(1).n_params
    # bytes: header + payload + crc, nothing else
    assert len(r.data) == bitstream.header_size(2) + h.payload_len + 4
    assert h.qparams_len == 0 and h.version == 2


def test_more_steps_better(tiny_model, rgb_image):
    a = inrcodec.encode_report(rgb_image, model=tiny_model, steps=5, lr=1e-3, mode="weights", format_version=2).psnr
    b = inrcodec.encode_report(rgb_image, model=tiny_model, steps=60, lr=1e-3, mode="weights", format_version=2).psnr
    assert b > a


def test_payload_holds_surviving_values_only(tiny_model, rgb_image):
    for level in (0, 3):
        r = inrcodec.encode_report(rgb_image, model=tiny_model, level=level, steps=2, mode="weights", format_version=2)
        h, m, theta = read(r.data, tiny_model)
        net = tiny_model.net(level)
        assert theta.shape == (6, net.n_params)
        assert net.n_params == net.n_weights + tiny_model.arch.n_biases()


def test_render_2x_size_and_shared_pixels(tiny_model, rgb_image):
    data = inrcodec.encode(rgb_image, model=tiny_model, steps=10, lr=1e-3, mode="weights", format_version=2)
    one = inrcodec.decode_array(data, model=tiny_model)
    two = inrcodec.decode_array(data, model=tiny_model, scale=2)
    assert two.shape == (56, 80, 3)
    np.testing.assert_array_equal(two[::2, ::2], one)
    three = inrcodec.decode(data, size=(100, 30), model=tiny_model)
    assert three.size == (100, 30)
    small = inrcodec.decode(data, scale=0.5, model=tiny_model)
    assert small.size == (20, 14)


def test_render_float_matches_tiles_at_1x(tiny_model):
    net = tiny_model.net(2)
    theta = tiny_model.levels[2].theta0 + 0.05 * torch.randn(6, net.n_params)
    img = render(net, theta, 28, 40, 16)
    from inrcodec.codec.weights.tiles import tile_coords
    per_tile = net(theta, tile_coords(16)).reshape(2, 3, 16, 16, 3)
    stitched = per_tile.permute(0, 2, 1, 3, 4).reshape(32, 48, 3)[:28, :40]
    np.testing.assert_allclose(img, stitched.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_image_to_tiles_round_trip():
    img = np.random.default_rng(0).random((21, 37, 3)).astype(np.float32)
    tiles, w = image_to_tiles(img, 8)
    assert tiles.shape == (3 * 5, 64, 3)
    assert float(w.sum()) == 21 * 37
    back = tiles.reshape(3, 5, 8, 8, 3).permute(0, 2, 1, 3, 4).reshape(24, 40, 3)[:21, :37]
    np.testing.assert_array_equal(back.numpy(), img)


def test_greyscale_stays_greyscale(tiny_model, rgb_image):
    grey = rgb_image[:, :, 1]
    r = inrcodec.encode_report(grey, model=tiny_model, steps=20, lr=1e-3, mode="weights", format_version=2)
    img = inrcodec.decode(r.data, model=tiny_model)
    assert img.mode == "L" and img.size == (40, 28)
    assert r.psnr == pytest.approx(psnr(np.asarray(img), grey))


def test_rgba_alpha_is_lossless(tiny_model, rgb_image):
    alpha = np.random.default_rng(1).integers(0, 256, rgb_image.shape[:2], dtype=np.uint8)
    rgba = np.dstack([rgb_image, alpha])
    data = inrcodec.encode(rgba, model=tiny_model, steps=2, mode="weights", format_version=2)
    img = inrcodec.decode(data, model=tiny_model)
    assert img.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(img)[:, :, 3], alpha)
    assert inrcodec.decode(data, model=tiny_model, scale=2).size == (80, 56)


def test_header_pack_unpack():
    h = wformat.Header(version=1, flags=0, model_hash=bytes(range(32)), width=300, height=17,
                         image_mode=2, level=7, quantizer=0, tile=64, tiles_y=1, tiles_x=5, n_params=99,
                         payload_len=3, alpha_len=0)
    data = wformat.pack(h, b"abc")
    assert bitstream.unpack_header(data) == h
    assert data[:4] == b"INRC" and data[4] == 1
    assert len(data) == bitstream.header_size(1) + 3 + 4
    (crc,) = struct.unpack("<I", data[-4:])
    assert crc == zlib.crc32(data[:-4])
    names = [row[0] for row in h.describe()]
    assert names == [f.name for f in wformat.FIELDS_V1]
    h2 = wformat.Header(version=2, flags=0, model_hash=bytes(range(32)), width=300, height=17,
                          image_mode=2, level=7, quantizer=1, qbits=8, coder=1, tile=64, tiles_y=1,
                          tiles_x=5, n_params=99, qparams_len=8, payload_len=4, alpha_len=0)
    data = wformat.pack(h2, b"abcd", qparams=b"\0" * 8)
    assert bitstream.unpack_header(data) == h2
    assert len(data) == bitstream.header_size(2) + 8 + 4 + 4 == 89
    assert [row[0] for row in h2.describe()] == [f.name for f in wformat.FIELDS_V2]


def test_flipped_byte_is_a_checksum_error(tiny_model, rgb_image):
    data = bytearray(inrcodec.encode(rgb_image, model=tiny_model, steps=1, mode="weights", format_version=2))
    for pos in (bitstream.max_header_size() + 1, len(data) - 6, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x10
        with pytest.raises(ChecksumError):
            inrcodec.decode(bytes(bad), model=tiny_model)


def test_wrong_model_names_both_hashes(tiny_model, tiny_model_path, rgb_image):
    data = inrcodec.encode(rgb_image, model=tiny_model_path, steps=1, mode="weights", format_version=2)
    other = scratch_model(tiny_model.arch, tile=16, n_levels=4, seed=2)
    with pytest.raises(ModelMismatchError) as e:
        inrcodec.decode(data, model=other)
    assert tiny_model.hash in str(e.value) and other.hash in str(e.value)


def test_truncated_and_foreign_files(tiny_model, rgb_image):
    data = inrcodec.encode(rgb_image, model=tiny_model, steps=1, mode="weights", format_version=2)
    for cut in (0, 3, 10, bitstream.max_header_size(), len(data) - 1):
        with pytest.raises(FormatError):
            inrcodec.decode(data[:cut], model=tiny_model)
    with pytest.raises(FormatError, match="magic"):
        inrcodec.decode(b"\x89PNG\r\n\x1a\n" + bytes(100), model=tiny_model)


def test_shared_model_reloads_bit_for_bit(tiny_model, tiny_model_path):
    m = SharedModel.load(tiny_model_path)
    assert m.hash == tiny_model.hash
    assert m.to_bytes() == tiny_model.to_bytes()
    for a, b in zip(m.levels, tiny_model.levels):
        assert torch.equal(a.theta0, b.theta0)
        assert all(torch.equal(x, y) for x, y in zip(a.masks, b.masks))


def test_ffn_model_round_trip(tmp_path, rgb_image):
    m = scratch_model(Arch(family="ffn", width=16, depth=2, ffn_features=8), tile=16,
                      n_levels=3)
    m.save(tmp_path / "ffn.safetensors")
    m2 = SharedModel.load(tmp_path / "ffn.safetensors")
    assert torch.equal(m2.fourier, m.fourier)
    r = inrcodec.encode_report(rgb_image, model=m2, steps=5, lr=1e-3, mode="weights", format_version=2)
    assert np.asarray(inrcodec.decode(r.data, model=m2)).shape == (28, 40, 3)


def test_info_describes_file_and_model(tiny_model, tiny_model_path, rgb_image):
    data = inrcodec.encode(rgb_image, model=tiny_model, steps=1, mode="weights", format_version=2)
    d = inrcodec.info(data)
    assert d["kind"] == "inr"
    fields = {k: v for k, v, _ in d["fields"]}
    assert fields["width"] == "40" and fields["model_hash"] == tiny_model.hash
    d = inrcodec.info(tiny_model_path)
    assert d["kind"] == "model" and len(d["levels"]) == 4
    dens = [lv["density"] for lv in d["levels"]]
    assert dens[0] == 1.0 and all(b < a for a, b in zip(dens, dens[1:]))


def test_encode_from_pil_and_path(tiny_model, rgb_image, tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(rgb_image).save(p)
    a = inrcodec.encode(p, model=tiny_model, steps=3, mode="weights", format_version=2)
    b = inrcodec.encode(Image.fromarray(rgb_image), model=tiny_model, steps=3, mode="weights", format_version=2)
    assert a == b
