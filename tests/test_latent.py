"""The latent mode (format version 7, with the shipped latent model): round trip, any
resolution, rate control by quality, determinism, and clear errors for damaged files or
the wrong model."""
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import inrcodec
from inrcodec.cli import main
from inrcodec.codec import bitstream
from inrcodec.codec.latent import format as lformat
from inrcodec.codec.latent import layout
from inrcodec.codec.latent.model import load_latent_model, scratch_latent_model
from inrcodec.errors import FormatError, InrcodecError, ModelMismatchError
from inrcodec.metrics import psnr

STEPS = 100


def _image(h=40, w=56, c=3, seed=0):
    y, x = np.mgrid[0:h, 0:w] / 9.0
    base = np.stack([np.sin(x), np.cos(y * 1.3), np.sin(x * y / 5)], -1)[:, :, :c]
    noise = np.random.default_rng(seed).normal(0, 0.02, base.shape)
    return np.clip((0.4 * base + 0.5 + noise) * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def encoded():
    img = _image()
    return img, inrcodec.encode_report(img, mode="latent", steps=STEPS, quality=60)


def test_round_trip(encoded):
    img, r = encoded
    assert r.format_version == 7 and r.mode == "latent"
    h = bitstream.verify(r.data)
    assert isinstance(h, lformat.LatentHeader) and (h.width, h.height) == (56, 40)
    assert h.model_hash.hex() == load_latent_model().hash == r.model_hash
    assert h.arm_len == 0  # the shared model's entropy model codes the latents
    out = inrcodec.decode_array(r.data)
    assert out.shape == (40, 56, 3)
    assert r.psnr == pytest.approx(psnr(out, img))  # reported = what the receiver sees
    assert r.psnr > 20
    fields = {k: v for k, v, _ in inrcodec.info(r.data)["fields"]}
    assert fields["version"] == "7" and fields["levels"] == "7" and fields["coords"] == "1"
    assert fields["upsample"] == "2 (learned)"


def test_reencoding_is_deterministic_on_this_machine(encoded):
    img, r = encoded
    assert inrcodec.encode(img, mode="latent", steps=STEPS, quality=60) == r.data
    # the fit runs with deterministic algorithms and leaves the caller's setting as it was
    assert not torch.are_deterministic_algorithms_enabled()


def test_any_resolution_agrees_with_the_stored_one(encoded):
    """A 2x render, averaged down 2x2, is the 1x render within a small bound (bilinear
    upsampling of the latents is continuous; the synthesis is applied per pixel)."""
    _, r = encoded
    one = inrcodec.decode_array(r.data).astype(np.float64)
    two = inrcodec.decode_array(r.data, scale=2).astype(np.float64)
    assert two.shape == (80, 112, 3)
    down = two.reshape(40, 2, 56, 2, 3).mean((1, 3))
    assert np.abs(down - one).mean() < 2.5 and psnr(down.round().astype(np.uint8),
                                                    one.astype(np.uint8)) > 35
    assert inrcodec.decode_array(r.data, size=(30, 17)).shape == (17, 30, 3)


def test_higher_quality_gives_more_bytes_and_more_psnr():
    img = _image()
    lo = inrcodec.encode_report(img, mode="latent", steps=200, quality=20)
    hi = inrcodec.encode_report(img, mode="latent", steps=200, quality=90)
    assert hi.bytes > lo.bytes and hi.psnr > lo.psnr


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_greyscale_and_alpha(mode):
    img = _image(c=3)
    if mode == "L":
        img = img[:, :, 1]
    else:
        img = np.dstack([img, np.tile(np.arange(56, dtype=np.uint8) * 4, (40, 1))])
    r = inrcodec.encode_report(img, mode="latent", steps=10)
    out = inrcodec.decode_array(r.data)
    assert r.image_mode == mode and inrcodec.decode(r.data).mode == mode
    if mode == "RGBA":
        assert (out[:, :, 3] == img[:, :, 3]).all()  # alpha is lossless


def test_latent_mode_refuses_weight_options():
    for bad in (dict(level=99), dict(bpp=0.5), dict(step_scale=1.0), dict(lr=1e-3),
                dict(quality=0), dict(steps=0)):
        with pytest.raises(InrcodecError):
            inrcodec.encode_report(_image(8, 8), mode="latent", **bad)


def test_damaged_sections_fail_clearly(encoded, tmp_path):
    _, r = encoded
    data = r.data
    h = bitstream.verify(data)
    starts, off = {}, h.size
    for name, n in h.sections():
        starts[name] = (off, n)
        off += n
    refused = 0
    for name in ("synthesis", "arm", "latents"):
        a, n = starts[name]
        if n == 0:
            continue
        for pos in (a, a + n // 2, a + n - 1):
            bad = bytearray(data)
            bad[pos] ^= 0x10
            body = bytes(bad[:-4])
            bad = body + bitstream.struct.pack("<I", bitstream.zlib.crc32(body))
            try:
                inrcodec.decode_array(bad)
            except FormatError:
                refused += 1
                continue  # refused, as it should be (or decoded: checked below)
            # A flip the entropy coder absorbs must still give a full image
            assert inrcodec.decode_array(bad).shape == (40, 56, 3)
    assert refused >= 3, refused  # the canonical-form checks catch most flips
    # truncated and CRC-damaged files, through the command line: no traceback, no output
    src = tmp_path / "a.inr"
    src.write_bytes(data[:-9])
    res = CliRunner().invoke(main, ["decode", str(src), str(tmp_path / "a.png")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert not (tmp_path / "a.png").exists()


def test_cli_encodes_and_decodes_latent(tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(_image()).save(src)
    r = CliRunner().invoke(main, ["encode", str(src), str(tmp_path / "a.inr"), "--mode",
                                  "latent", "--steps", "5", "--quality", "40"])
    assert r.exit_code == 0, r.output
    d = CliRunner().invoke(main, ["decode", str(tmp_path / "a.inr"), str(tmp_path / "b.png"),
                                  "--scale", "2"])
    assert d.exit_code == 0, d.output
    assert Image.open(tmp_path / "b.png").size == (112, 80)


def test_a_file_needs_its_latent_model(encoded, tmp_path):
    _, r = encoded
    other = scratch_latent_model(load_latent_model().arch, n_levels=1, seed=5)
    with pytest.raises(ModelMismatchError, match="needs latent model"):
        inrcodec.decode_array(r.data, model=other)
    path = tmp_path / "other.safetensors"
    other.save(path)
    (tmp_path / "a.inr").write_bytes(r.data)
    res = CliRunner().invoke(main, ["decode", str(tmp_path / "a.inr"), str(tmp_path / "a.png"),
                                    "--model", str(path)])
    assert res.exit_code != 0 and "needs latent model" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "a.png").exists()


def test_files_of_an_earlier_shipped_model_decode_with_no_model(tmp_path):
    """0.16 files name the model of the refitted one-layer ARM, 0.12-0.15 files the
    learned-upsampling model of the meta-trained ARM,
    0.10.0-0.11 files the bilinear 16-wide model, 0.5.0-0.9.1 files the 24-wide one; all
    ship, so their files decode as they did. A model that ships nowhere is still refused
    with both hashes."""
    from inrcodec.codec.latent.model import EARLIER_LATENT_MODELS, default_latent_model_path
    olds = [load_latent_model(default_latent_model_path().with_name(n))
            for n in EARLIER_LATENT_MODELS]
    assert [(m.arch.hidden, m.arch.upsample, len(m.arm)) for m in olds] == [
        (16, "learned", 4), (16, "learned", 4), (16, "bilinear", 4), (24, "bilinear", 4)]
    assert len(load_latent_model().arm) == 6  # the default's ARM has the residual layer
    assert len({m.hash for m in olds} | {load_latent_model().hash}) == 5
    img = _image(24, 32)
    for i, old in enumerate(olds):
        data = inrcodec.encode_report(img, mode="latent", model=old, steps=5, quality=40).data
        assert np.array_equal(inrcodec.decode_array(data),
                              inrcodec.decode_array(data, model=old))
        (tmp_path / f"{i}.inr").write_bytes(data)
        res = CliRunner().invoke(main, ["decode", str(tmp_path / f"{i}.inr"),
                                        str(tmp_path / f"{i}.png")])
        assert res.exit_code == 0, res.output
    other = scratch_latent_model(old.arch, n_levels=1, seed=5)
    orphan = inrcodec.encode_report(img, mode="latent", model=other, steps=5, quality=40).data
    with pytest.raises(ModelMismatchError, match=other.hash):
        inrcodec.decode_array(orphan)


def test_every_level_of_the_ladder_round_trips():
    img = _image()
    m = load_latent_model()
    for level in range(m.n_levels):
        r = inrcodec.encode_report(img, mode="latent", steps=20, level=level)
        h = bitstream.verify(r.data)
        assert h.level == level and r.params == int(m.masks[level].sum())
        assert inrcodec.decode_array(r.data).shape == (40, 56, 3)


def test_sampled_features_match_the_full_upsample():
    """The fit reads the synthesis inputs at sampled pixels only; they must be the values
    the decoder's full upsampling gives there (bilinear; the learned cascade's lattice:
    tests/test_upsampling.py)."""
    from dataclasses import replace

    import torch

    from inrcodec.codec.latent import grids as lm
    arch = replace(load_latent_model().arch, upsample="bilinear")
    for h, w in ((40, 56), (37, 53), (64, 64)):
        grids = [torch.randn(s) for s in layout.grid_shapes(h, w, arch.levels)]
        full = lm.features(arch, grids, h, w).t()
        idx = torch.arange(h * w)
        assert torch.allclose(lm.features_at(arch, grids, h, w, idx), full, atol=1e-5)


@pytest.mark.parametrize("size", [(40, 56), (37, 53)])
def test_bicubic_features_agree_everywhere_and_interpolate(size):
    """A bicubic model's features: the lattice's and the sampled pixels' are the full
    upsampling's; constants stay constant and a ramp stays a ramp (Catmull-Rom)."""
    from dataclasses import replace

    from inrcodec.codec.latent import grids as lm
    arch = replace(load_latent_model().arch, upsample="bicubic")
    h, w = size
    grids = [torch.randn(s) for s in layout.grid_shapes(h, w, arch.levels)]
    full = lm.features(arch, grids, h, w)
    rows, cols = lm.lattice(h, w, 3, (1, 2))
    lat = lm.features_lattice(arch, grids, h, w, 3, (1, 2))
    assert torch.allclose(full.reshape(arch.inputs, h, w)[:, rows, cols].reshape(
        arch.inputs, -1), lat, atol=1e-6)
    assert torch.allclose(lm.features_at(arch, grids, h, w, torch.arange(h * w)), full.t(),
                          atol=1e-5)
    bil = lm.features(replace(arch, upsample="bilinear"), grids, h, w)
    assert not torch.allclose(full[1:arch.levels], bil[1:arch.levels], atol=1e-3)
    const = [torch.full(s, 3.0) for s in layout.grid_shapes(h, w, arch.levels)]
    assert torch.allclose(lm.features(arch, const, h, w)[:arch.levels], torch.tensor(3.0))
    ramp = lm.upsample_grid(arch, torch.arange(20.0).repeat(10, 1), 20, 40)
    assert torch.allclose(ramp[:, 4:36], torch.arange(4, 36) / 2 - 0.25)


def test_a_bicubic_model_round_trips_and_bilinear_keeps_its_bytes(tmp_path):
    """`upsample` is stored only when it is not bilinear: the models made before it keep
    their bytes and hashes; a bicubic one encodes and decodes with it."""
    from dataclasses import replace

    from inrcodec.codec.latent.model import LatentModel, default_latent_model_path
    path0 = default_latent_model_path().with_name("latent-0.11.safetensors")  # bilinear
    m = load_latent_model(path0)
    assert m.to_bytes() == path0.read_bytes()
    b = replace(m, arch=replace(m.arch, upsample="bicubic"), _hash=None)
    path = tmp_path / "bicubic.safetensors"
    path.write_bytes(b.to_bytes())
    back = LatentModel.from_bytes(path.read_bytes())
    assert back.arch.upsample == "bicubic" and back.hash != m.hash
    img = _image()
    r = inrcodec.encode_report(img, mode="latent", steps=20, model=str(path))
    out = inrcodec.decode_array(r.data, model=str(path))
    assert abs(psnr(img, out) - r.psnr) < 0.01


def test_bpp_and_psnr_targets():
    img = _image()
    r = inrcodec.encode_report(img, mode="latent", steps=20, bpp=2.0)
    assert r.bpp <= 2.0 and r.search["target"] == "bpp" and r.search["method"] == "pilot"
    assert r.search["pilot_steps"] == 4 and len(r.data) <= r.search["budget_bytes"]
    assert inrcodec.decode_array(r.data).shape == img.shape
    p = inrcodec.encode_report(img, mode="latent", steps=20, psnr=r.psnr - 3)
    assert p.psnr >= r.psnr - 3 and p.search["probes"]
    with pytest.raises(InrcodecError, match="below the smallest"):
        inrcodec.encode_report(img, mode="latent", steps=20, bpp=0.001)
    with pytest.raises(InrcodecError, match="one of quality"):
        inrcodec.encode_report(img, mode="latent", bpp=1.0, quality=50)


def test_latent_model_file_round_trips_and_refuses_damage():
    from inrcodec.codec.latent.model import LatentModel
    from inrcodec.errors import ModelError
    m = scratch_latent_model(load_latent_model().arch, n_levels=3, seed=2)
    w = weight_mask(m)
    kept = [int((mk & w).sum()) for mk in m.masks]
    assert kept[1] == round(0.8 * kept[0]) and kept[2] == kept[1] - round(0.2 * kept[1])
    assert all(bool((a | ~b).all()) for a, b in zip(m.masks, m.masks[1:]))  # nested
    data = m.to_bytes()
    again = LatentModel.from_bytes(data)
    assert again.hash == m.hash and again.to_bytes() == data
    bad = bytearray(data)
    bad[-3] ^= 1
    with pytest.raises(ModelError, match="damaged"):
        LatentModel.from_bytes(bytes(bad))


def weight_mask(m):
    """True at the synthesis's layer weights (what pruning counts: not the biases, nor a
    learned upsampling's taps)."""
    from inrcodec.codec.latent.layout import weight_tensors
    out = np.zeros(m.arch.n_params(), dtype=bool)
    for s in weight_tensors(m.arch):
        out[s] = True
    return out


@pytest.mark.parametrize("optimizer", ["adam", "soap"])
def test_the_networks_optimisers_keep_the_mask(optimizer):
    """Adam (on the flat synthesis) and SOAP (on each layer's matrix, gradients clipped):
    the pruned entries of a sparse level never move, the others do, and the same seed
    gives the same fit."""
    from inrcodec.codec.latent.config import LatentFit
    from inrcodec.codec.latent.fit import Start, fit
    m = load_latent_model()
    start = Start.of(m, 2)
    fs = LatentFit(steps=30, lam=1e-3, net_optimizer=optimizer, clip=0.1)
    a = fit(_image(), m.arch, fs, start=start)
    b = fit(_image(), m.arch, fs, start=start)
    theta0, keep = start.theta.numpy(), start.mask.numpy()
    assert np.array_equal(a.theta[~keep], theta0[~keep]) and not keep.all()
    assert np.abs(a.theta[keep] - theta0[keep]).max() > 1e-4
    assert np.array_equal(a.theta, b.theta)
    assert all(np.array_equal(x, y) for x, y in zip(a.latents, b.latents))


def test_an_unknown_network_optimiser_is_refused():
    from inrcodec.codec.latent.config import LatentFit
    with pytest.raises(ValueError, match="net_optimizer"):
        LatentFit(net_optimizer="sgd")


def test_the_browser_decoder_loads_every_shipped_latent_model():
    """web/ names its models by path: a new default (or a retired one kept for its files)
    must reach both of its lists, or the browser refuses files the package decodes."""
    from inrcodec.codec.latent.model import EARLIER_LATENT_MODELS
    root = Path(__file__).resolve().parent.parent / "web"
    for js in ("worker.js", "src/models-node.js"):
        text = (root / js).read_text()
        for name in ("latent.safetensors", *EARLIER_LATENT_MODELS):
            assert f"inrcodec/models/{name}'" in text, (js, name)


def test_a_fit_goes_on_from_another_on_its_schedule():
    """fit(init=...) starts from a fit's latents (before rounding) and synthesis: zero
    further steps keep the fit as it is, more move it. clock=(0, steps) is a fit's own
    schedule; a later part of a longer schedule steps otherwise."""
    from dataclasses import replace

    from inrcodec.codec.latent.config import LatentFit
    from inrcodec.codec.latent.fit import Start, fit
    m = load_latent_model()
    start = Start.of(m, 0)
    fs = LatentFit(steps=12, lam=1e-3)
    a = fit(_image(), m.arch, fs, start=start)
    same = fit(_image(), m.arch, fs, start=start, clock=(0, 12))
    assert np.array_equal(a.theta, same.theta)
    kept = fit(_image(), m.arch, replace(fs, steps=0), start=start, init=a)
    assert np.array_equal(kept.theta, a.theta)
    assert all(np.array_equal(x, y) for x, y in zip(kept.values, a.values))
    more = fit(_image(), m.arch, replace(fs, steps=4), start=start, init=a, clock=(12, 16))
    assert not np.array_equal(more.theta, a.theta)
    assert any(not np.array_equal(x, y) for x, y in zip(more.values, a.values))
    own = fit(_image(), m.arch, replace(fs, steps=4), start=start, init=a)
    assert not np.array_equal(own.theta, more.theta)


def test_a_coarse_fit_moves_only_the_coarser_grids():
    """fit(shrink=s) fits grids s.. to the image's 2^s x 2^s block means (the finer grids
    stay at zero); codec.fit_image runs coarse_first's fits before the whole one, from
    each other, and counts their steps in its progress."""
    from inrcodec.codec.latent import codec
    from inrcodec.codec.latent.config import LatentFit
    from inrcodec.codec.latent.fit import Start, _targets, fit
    m = load_latent_model()
    start = Start.of(m, 0)
    img = _image(37, 50)
    order, targets = _targets(img, (19, 25), 1, 2, torch.device("cpu"))
    padded = np.pad(img.astype(np.float32) / 255, ((0, 1), (0, 0), (0, 0)), mode="edge")
    want = padded.reshape(19, 2, 25, 2, 3).mean((1, 3))[order[1][0]::2, order[1][1]::2]
    assert np.allclose(targets[1].numpy(), want.reshape(-1, 3).T, atol=1e-7)
    f = fit(img, m.arch, LatentFit(steps=8, lam=1e-3), start=start, shrink=2)
    assert [g.shape for g in f.latents] == [g.shape for g in fit(
        img, m.arch, LatentFit(steps=0), start=start).latents]
    assert not f.values[0].any() and not f.values[1].any() and f.values[2].any()
    seen = []
    both = codec.fit_image(img, m.arch, LatentFit(steps=3, lam=1e-3, coarse_first="2:4/1:2"),
                           lambda t, n, mse: seen.append((t, n)), start)
    assert seen[0] == (1, 9) and seen[-1] == (9, 9) and len(seen) == 9
    assert both.values[0].any()
    with pytest.raises(ValueError, match="grid 7"):
        fit(img, m.arch, LatentFit(steps=1), start=start, shrink=7)


@pytest.mark.parametrize("plan", ["0:30", "x", "2:", "2:3:4", "1:-1"])
def test_a_bad_coarse_plan_is_refused(plan):
    from inrcodec.codec.latent.config import LatentFit
    with pytest.raises(ValueError, match="coarse_first"):
        LatentFit(coarse_first=plan)


def test_the_finest_octave_and_the_coarse_first_rule():
    """detail: what the 2x2 block means miss (0 for a photo of 2x2 blocks, a^2 for a
    checkerboard of +-a). coarse_plan "auto": from coarse_above pixels and a finest octave
    of at most COARSE_DETAIL x lambda, the steps shared out as COARSE_SHARES, the rest
    whole; smaller, tiled or more detailed photos, and "", take none; a plan string is
    itself."""
    from dataclasses import replace

    from inrcodec.codec.latent import codec
    from inrcodec.codec.latent.config import LatentFit
    m = load_latent_model()
    blocks = np.repeat(np.repeat(_image(20, 30), 2, 0), 2, 1)
    assert codec.detail(blocks) == 0
    board = np.full((8, 10, 3), 128, np.uint8) + (np.indices((8, 10)).sum(0) % 2 * 20)[..., None]
    assert codec.detail(board.astype(np.uint8)) == pytest.approx((10 / 255) ** 2, rel=1e-5)
    fs = LatentFit(steps=900, lam=2.0 ** -11, coarse_above=1000)
    smooth = blocks
    whole = codec.coarse_plan(smooth, m.arch, fs)
    assert whole.coarse_plan() == [(2, 600), (1, 400)] and whole.steps == 150
    assert codec.coarse_plan(smooth, m.arch, whole) == whole
    noisy = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    assert codec.coarse_plan(noisy, m.arch, fs) == replace(fs, coarse_first="")
    for other in (replace(fs, coarse_above=10 ** 6), replace(fs, tiles_above=1000),
                  replace(fs, coarse_first="")):
        assert codec.coarse_plan(smooth, m.arch, other) == replace(other, coarse_first="")
    mine = replace(fs, coarse_first="1:7")
    assert codec.coarse_plan(noisy, m.arch, mine) == mine and mine.coarse_plan() == [(1, 7)]
