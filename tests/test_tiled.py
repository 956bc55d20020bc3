"""The tiled fit (codec/latent/tiled.py): its windows give the whole image's cascade
exactly, its tiles partition every grid, and a tiled fit makes a file that decodes."""
import numpy as np
import pytest
import torch

from inrcodec.codec.latent import tiled, upsampling
from inrcodec.codec.latent.config import LatentFit
from inrcodec.codec.latent.layout import grid_shapes


def _grids(h, w, levels, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g) * 3 for s in grid_shapes(h, w, levels)]


@pytest.mark.parametrize("h,w,size", [(200, 330, 64), (256, 256, 128), (97, 300, 32)])
@pytest.mark.parametrize("phase", [None, (0, 0), (1, 0), (1, 1)])
def test_window_cascade_is_the_whole_images(h, w, size, phase):
    levels = 6
    grids = _grids(h, w, levels)
    taps = torch.tensor([-0.05, 0.3, 0.8, -0.05] * (levels - 1))
    whole = upsampling.cascade(taps, grids, phase)
    shapes = [tuple(g.shape) for g in grids]
    for box in tiled.tiles(h, w, size, 1 << (levels - 1)):
        if phase is not None and (phase[0] >= box[1] - box[0] or phase[1] >= box[3] - box[2]):
            continue  # no pixel of the tile is on that lattice
        wins, at = tiled.windows(box, shapes)
        part = upsampling.cascade(taps, [g[r0:r1, c0:c1] for g, ((r0, r1), (c0, c1))
                                         in zip(grids, wins)], phase, at)
        y0, y1, x0, x1 = box
        if phase is None:
            ref = whole[:, y0:y1, x0:x1]
        else:  # the tile's rows of the phase's lattice (tiles start on even rows)
            ref = whole[:, y0 // 2:y0 // 2 + len(range(phase[0], y1 - y0, 2)),
                        x0 // 2:x0 // 2 + len(range(phase[1], x1 - x0, 2))]
        assert torch.equal(part, ref), box


def test_window_cascade_gradient_matches_the_whole_images():
    h, w, levels, phase = 150, 170, 5, (1, 0)
    grids = [g.requires_grad_(True) for g in _grids(h, w, levels, 1)]
    taps = torch.tensor([0.0, 0.25, 0.75, 0.0] * (levels - 1), requires_grad=True)
    box = (32, 96, 64, 128)
    shapes = [tuple(g.shape) for g in grids]
    wins, at = tiled.windows(box, shapes)
    weight = torch.randn(levels, 32, 32, generator=torch.Generator().manual_seed(2))
    whole = upsampling.cascade(taps, grids, phase)[:, 16:48, 32:64]
    (whole * weight).sum().backward()
    ref = [g.grad.clone() for g in grids] + [taps.grad.clone()]
    for p in grids + [taps]:
        p.grad = None
    wl = [g.detach()[r0:r1, c0:c1].clone().requires_grad_(True)
          for g, ((r0, r1), (c0, c1)) in zip(grids, wins)]
    (upsampling.cascade(taps, wl, phase, at) * weight).sum().backward()
    for k, (v, ((r0, r1), (c0, c1))) in enumerate(zip(wl, wins)):
        assert torch.allclose(v.grad, ref[k][r0:r1, c0:c1], atol=1e-5)
        outside = ref[k].clone()
        outside[r0:r1, c0:c1] = 0
        assert not outside.any()  # the window holds everything the tile reads
    assert torch.allclose(taps.grad, ref[-1], rtol=1e-4, atol=1e-4)


def test_tiles_partition_every_grid():
    h, w, levels = 700, 1000, 7
    shapes = grid_shapes(h, w, levels)
    for k, s in enumerate(shapes):
        seen = np.zeros(s, np.int64)
        for box in tiled.tiles(h, w, 256):
            ry, rx = tiled._own(box, k)
            seen[ry, rx] += 1
        assert (seen == 1).all(), k


def _image(h, w, seed=0):
    y, x = np.mgrid[0:h, 0:w] / 11.0
    base = np.stack([np.sin(x), np.cos(y * 1.3), np.sin(x * y / 7)], -1)
    noise = np.random.default_rng(seed).normal(0, 0.02, base.shape)
    return np.clip((0.4 * base + 0.5 + noise) * 255, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("stride,phase", [(2, (1, 0)), (4, (3, 2))])
def test_a_step_in_tiles_is_the_step_in_one(stride, phase):
    """A step's gradient computed in 12 tiles is the one computed in one, up to the order
    of float sums: the windows, the rate's own cells and the sum over the tiles make the
    whole image's gradient."""
    from dataclasses import replace

    from inrcodec.codec.latent.config import latent_lambda
    from inrcodec.codec.latent.fit import Start, networks
    from inrcodec.codec.latent.model import load_latent_model
    img, m = _image(150, 230), load_latent_model()
    start = Start.of(m, m.default_level)
    fs = replace(LatentFit(steps=4, lam=latent_lambda(30)), rate_sample=1.0)
    shapes = grid_shapes(150, 230, m.arch.levels)[1:]
    g = torch.Generator().manual_seed(3)
    values = [torch.randn(s, generator=g) * 2 for s in shapes]
    u = [torch.rand(s, generator=g) - 0.5 for s in shapes]
    grads = []
    for size in (256, 64):
        parts = tiled._Tiles(img, m.arch, size, torch.device("cpu"), 0)
        lat = [v.clone().requires_grad_(True) for v in values]
        for v in lat:
            v.grad = torch.zeros_like(v)
        nets, armp = networks(m.arch, fs, start, torch.device("cpu"), None)
        nets.zero_grad()
        mse = parts.gradient(lat, u, nets, armp, fs, 1, phase, fs.lam, stride)
        grads.append(([v.grad for v in lat], [x.grad for x in nets.leaves], mse))
    assert len(tiled.tiles(150, 230, 256)) == 1 and len(tiled.tiles(150, 230, 64)) == 12
    (g1, n1, e1), (g12, n12, e12) = grads
    assert e1 == pytest.approx(e12, rel=1e-5)
    for a, b in zip(g1 + n1, g12 + n12):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(a.abs().max())), \
            float((a - b).abs().max())


@pytest.fixture(scope="module")
def tiled_files():
    """A 160 x 200 image in 64-pixel tiles (12 of them), through the encoder (above
    tiles_above), and the same image fitted whole, as version-7 files of the shipped model."""
    from inrcodec.codec.latent.codec import compress
    from inrcodec.codec.latent.config import latent_lambda
    from inrcodec.codec.latent.model import load_latent_model
    img, m = _image(160, 200), load_latent_model()
    saved = tiled.TILE
    tiled.TILE = 64
    try:
        # stride 2, as the whole fit's: 60 steps at 4 see each pixel about 4 times
        return img, {name: compress(img, "RGB", None, LatentFit(
            steps=60, lam=latent_lambda(50), tiles_above=above, tile_stride=2), m,
            m.default_level)
            for name, above in (("tiled", 1), ("whole", 0), ("again", 1))}
    finally:
        tiled.TILE = saved


def test_a_tiled_fit_makes_a_file_like_a_whole_fit(tiled_files):
    import inrcodec
    from inrcodec.metrics import psnr
    img, files = tiled_files
    assert files["tiled"] != files["whole"]
    assert files["tiled"] == files["again"]  # the same seed, the same file
    p_tiled = psnr(img, inrcodec.decode_array(files["tiled"]))
    p_whole = psnr(img, inrcodec.decode_array(files["whole"]))
    assert abs(p_tiled - p_whole) < 0.5 and p_tiled > 25, (p_tiled, p_whole)
    assert abs(len(files["tiled"]) / len(files["whole"]) - 1) < 0.1


def test_a_tiled_fit_leaves_grid_0_at_zero(tiled_files):
    from inrcodec.codec import bitstream
    from inrcodec.codec.latent import arm
    from inrcodec.codec.latent.model import load_latent_model
    img, files = tiled_files
    data = files["tiled"]
    h = bitstream.verify(data)
    grids = arm.decode_section(bitstream.section(data, h, "latents"),
                               grid_shapes(160, 200, 7), arm.ArmParams(*load_latent_model().arm),
                               h.binned)
    assert not grids[0].any() and grids[1].any()


def test_the_cli_encodes_a_photo_over_the_threshold_in_tiles(tmp_path, monkeypatch):
    """The default door: `inrcodec encode` of an image over LatentFit.tiles_above takes
    the tiled fit, and the file decodes at its size."""
    from click.testing import CliRunner
    from PIL import Image

    import inrcodec
    from inrcodec.cli import main
    from inrcodec.codec.latent.config import TILES_ABOVE
    calls, real = [], tiled.fit_tiled

    def spy(img, *a, **k):
        calls.append(img.shape)
        return real(img, *a, **k)
    monkeypatch.setattr(tiled, "fit_tiled", spy)
    h, w = 1000, 1100  # over the threshold lowered to 1 MP (16 MP would take minutes)
    names = list(LatentFit.__dataclass_fields__)
    defaults = list(LatentFit.__init__.__defaults__)
    defaults[names.index("tiles_above")] = 1_000_000
    monkeypatch.setattr(LatentFit.__init__, "__defaults__", tuple(defaults))
    assert h * w > 1_000_000 and TILES_ABOVE > 1_000_000
    for name, size in (("big", (h, w)), ("small", (100, 120))):
        Image.fromarray(_image(*size)).save(tmp_path / f"{name}.png")
        r = CliRunner().invoke(main, ["encode", str(tmp_path / f"{name}.png"),
                                      str(tmp_path / f"{name}.inr"), "--steps", "3", "-q"])
        assert r.exit_code == 0, r.output
    assert calls == [(h, w, 3)]  # the small one was fitted whole
    assert inrcodec.decode_array((tmp_path / "big.inr").read_bytes()).shape == (h, w, 3)
