"""Training the latent mode's shared model: its crops see the encoder's rounding proxy, and
a short run gives a loadable ladder that resumes exactly. Synthetic photos (unit tests)."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from inrcodec.codec.latent.config import LatentArch, LatentFit
from inrcodec.codec.latent.fit import quantised
from inrcodec.codec.latent.model import load_latent_model
from inrcodec.training.latent_train import LatentTrainConfig, _proxy, train_latent

VISITS = 20


@pytest.mark.parametrize("quantizer", ["softround", "noise"])
@pytest.mark.parametrize("t", [0, 7, 15, 16, 19])  # soft steps 0..15, rounded 16..19
def test_a_crop_at_step_t_sees_what_the_encoder_sees_at_step_t(quantizer, t):
    cfg = LatentTrainConfig(visits=VISITS, quantizer=quantizer)
    fs = LatentFit(steps=VISITS, quantizer=quantizer, ste_fraction=cfg.ste_fraction)
    n_ste = int(round(cfg.ste_fraction * cfg.visits))
    g = torch.Generator().manual_seed(t)
    lat = [(torch.randn(1, 6, 5, generator=g) * 2).requires_grad_(True),
           (torch.randn(1, 3, 3, generator=g) * 2).requires_grad_(True)]
    torch.manual_seed(11)
    got = _proxy(lat, torch.tensor([t]), cfg, n_ste)
    torch.manual_seed(11)
    u = [(torch.rand(v.shape) - 0.5).reshape(-1) for v in lat]
    want = quantised([v[0] for v in lat], fs, t, None if t >= VISITS - n_ste else u)
    for a, b in zip(got, want):
        torch.testing.assert_close(a[0], b)
    # and the same gradient
    ga = torch.autograd.grad(sum((a ** 2).sum() for a in got), lat)
    gb = torch.autograd.grad(sum((b ** 2).sum() for b in want), lat)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b)


def test_crops_at_different_steps_anneal_apart():
    cfg = LatentTrainConfig(visits=VISITS)
    lat = [torch.full((2, 4, 4), 0.3)]
    torch.manual_seed(0)
    early, late = _proxy(lat, torch.tensor([0, 15]), cfg, 4)[0]
    # a cooler crop (late) sits nearer the integers
    assert float((late - late.round()).abs().mean()) < float((early - early.round()).abs().mean())


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(10):
        y, x = np.mgrid[0:80, 0:96]
        img = np.stack([(x * (i + 1)) % 256, (y * 3 + i * 20) % 256, (x + y) % 256], -1)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        p = tmp_path / f"p{i}.png"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def test_a_short_run_gives_a_ladder_and_resumes_exactly(photos, tmp_path):
    arch = LatentArch()
    cfg = LatentTrainConfig(steps=6, rounds=1, round_steps=4, crop=32, batch=2, pool=4,
                            visits=5, ckpt_every=3)
    a = train_latent(tmp_path / "a.safetensors", arch=arch, cfg=cfg, photos=photos,
                     threads=1)
    m = load_latent_model(tmp_path / "a.safetensors")
    assert m.n_levels == 2
    d0, d1 = (float(k.mean()) for k in m.masks)
    assert d0 == 1.0 and d1 < 1.0
    assert np.array_equal(a.thetas[1], m.thetas[1])
    # stopped at a checkpoint and resumed: the checkpoint holds the shared parts, and
    # a resumed run refuses another configuration
    with pytest.raises(SystemExit, match="another configuration"):
        train_latent(tmp_path / "a.safetensors", arch=arch, cfg=replace(cfg, lr=1e-3),
                     photos=photos, resume=True, threads=1)


@pytest.mark.parametrize("upsample", ["bilinear", "bicubic", "learned"])
def test_crops_are_upsampled_as_the_encoder_upsamples(upsample):
    from inrcodec.codec.latent import grids, layout, upsampling
    from inrcodec.training.latent_train import _upsample_batch
    arch = LatentArch(upsample=upsample)
    g = torch.Generator().manual_seed(0)
    lat = [torch.randn(2, *s, generator=g) for s in layout.grid_shapes(24, 20, arch.levels)]
    taps = upsampling.init(arch.levels) + 0.1 * torch.randn(arch.up_params, generator=g) \
        if arch.up_params else None
    up = _upsample_batch(arch, lat, 24, 20, taps)
    for b in range(2):
        want = grids.features(arch, [v[b] for v in lat], 24, 20, taps)[:arch.levels]
        torch.testing.assert_close(up[b].reshape(arch.levels, -1), want)


def test_a_learned_upsampling_is_trained(photos, tmp_path):
    """Its taps are shared parameters: they move from bilinear, and are never pruned."""
    from inrcodec.codec.latent import upsampling
    arch = LatentArch(levels=4, upsample="learned")
    cfg = LatentTrainConfig(steps=6, rounds=1, round_steps=2, crop=32, batch=2, pool=4,
                            visits=5, ckpt_every=100)
    m = train_latent(tmp_path / "u.safetensors", arch=arch, cfg=cfg, photos=photos, threads=1)
    taps = slice(arch.n_params() - arch.up_params, arch.n_params())
    assert m.arch.upsample == "learned" and all(bool(k[taps].all()) for k in m.masks)
    assert not np.array_equal(m.thetas[1][taps], upsampling.init(4).numpy())


def test_upsample_is_a_latent_training_option(tmp_path):
    from click.testing import CliRunner

    from inrcodec.cli import main
    r = CliRunner().invoke(main, ["train", str(tmp_path), str(tmp_path / "m.safetensors"),
                                  "--mode", "weights", "--upsample", "bicubic"])
    assert r.exit_code != 0 and "--mode weights does not take --upsample" in r.output
    assert not (tmp_path / "m.safetensors").exists()


def test_training_reads_its_own_recipe():
    """Training's defaults are the recipe that made the shipped model (its recorded config
    and architecture), and the fields it shares with the encoder's fit on purpose
    (SHARED_WITH_FIT) equal the fit's: a change to either fails here until it is made on
    purpose in both places."""
    import dataclasses
    import json

    from inrcodec.codec.latent.model import load_latent_model
    from inrcodec.training.latent_train import SHARED_WITH_FIT, TRAIN_ARCH, LatentTrainConfig
    shipped = load_latent_model()
    # the default is the trained 0.10.0 model with a learned upsampling added untrained
    # (training/derive.py), then its ARM refitted (training/refit.py) and refitted again
    # with a residual layer: the recipe is the trained model's, three derivations down
    assert shipped.info["derived_from"] and shipped.arch.upsample == "learned"
    refitted = shipped.info["source_info"]
    assert "refitted" in shipped.info["derivation"] and "refitted" in refitted["derivation"]
    derived = refitted["source_info"]
    assert derived["derived_from"] and "learned upsampling" in derived["derivation"]
    cfg = LatentTrainConfig()
    assert json.loads(json.dumps(dataclasses.asdict(cfg))) == \
        derived["source_info"]["config"]
    assert TRAIN_ARCH == dataclasses.replace(shipped.arch, upsample="bilinear")
    for name in SHARED_WITH_FIT:
        assert getattr(cfg, name) == getattr(LatentFit(), name), name
