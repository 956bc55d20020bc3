"""A shared model refitted to the encoder's fits (training/refit.py)."""
import numpy as np
import pytest

from inrcodec import api
from inrcodec.codec.latent import arm
from inrcodec.codec.latent.model import load_latent_model
from inrcodec.training.refit import (exact_bits, main, read_latents, read_synthesis,
                                     refit, reptile, widened)


def _one_layer() -> arm.ArmParams:
    """0.16's default ARM (16 wide, one layer)."""
    from inrcodec.codec.latent.model import default_latent_model_path
    return arm.ArmParams(*load_latent_model(
        default_latent_model_path().with_name("latent-0.16.safetensors")).arm)


def _grids(seed: int, scale: float) -> list[np.ndarray]:
    """Integer grids whose values repeat their left neighbour's, plus Laplace noise: a
    context the ARM can learn."""
    rng = np.random.default_rng(seed)
    out = []
    for h, w in [(24, 32), (12, 16), (6, 8)]:
        g = np.zeros((h, w), np.int64)
        noise = np.round(rng.laplace(0, scale, (h, w))).astype(np.int64)
        for x in range(w):
            g[:, x] = (g[:, x - 1] if x else 0) // 2 + noise[:, x]
        out.append(g)
    return out


def test_a_refit_arm_codes_latents_in_fewer_bits_than_its_start():
    start = arm.ArmParams(*load_latent_model().arm)
    train = [_grids(s, 2.0) for s in range(4)]
    held = [_grids(10, 2.0)]
    new = refit(train, start, steps=60, batch=2)
    assert new.w1.shape == start.w1.shape and new.w1.dtype == np.int64
    assert exact_bits(held, new) < 0.97 * exact_bits(held, start)
    # the code is still exact: the latents come back from the new ARM's words
    data, qmaxes = arm.encode_grids(held[0], new)
    back = arm.decode_grids(data, [g.shape for g in held[0]], qmaxes, new)
    assert all(np.array_equal(a, b) for a, b in zip(back, held[0]))


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    from skimage import data
    path = tmp_path_factory.mktemp("refit") / "a.inr"
    path.write_bytes(api.encode(data.astronaut()[200:264, 200:296], steps=20, quality=80))
    return path


def test_read_latents_gives_the_files_grids(small_file):
    model = load_latent_model()
    grids = read_latents(small_file, model)
    assert [g.shape for g in grids][:2] == [(64, 96), (32, 48)]
    assert sum(int(np.abs(g).sum()) for g in grids) > 0


def test_the_refit_model_keeps_the_synthesis_and_names_its_source(small_file, tmp_path):
    out = tmp_path / "m.safetensors"
    main(["model", "inrcodec/models/latent.safetensors", str(out), str(small_file.parent),
          "--steps", "3", "--threads", "1"])
    old, new = load_latent_model(), load_latent_model(out)
    assert new.hash != old.hash and new.info["derived_from"] == old.hash
    assert all(np.array_equal(a, b) for a, b in zip(new.thetas, old.thetas))
    # a file of the old model is refused: its latents were coded with another ARM
    with pytest.raises(ValueError, match="not encoded with the model"):
        read_latents(small_file, new)


def test_a_reptile_step_moves_the_default_level_toward_the_fitted_synthesis(small_file):
    model = load_latent_model()
    lvl = model.default_level
    level, fitted = read_synthesis(small_file, model)
    assert level == lvl and not np.array_equal(fitted, model.thetas[lvl])
    for eps in (1.0, 0.5):
        thetas, rms = reptile(model, [(level, fitted)], eps)
        want = model.thetas[lvl] + eps * (fitted - model.thetas[lvl])
        np.testing.assert_allclose(thetas[lvl], want, atol=1e-6)
        assert rms > 0
        assert all(np.array_equal(a, b) for i, (a, b) in enumerate(zip(thetas, model.thetas))
                   if i != lvl)
    # entries the level does not send stay as they were
    kept = ~model.masks[lvl]
    assert np.array_equal(thetas[lvl][kept], model.thetas[lvl][kept])


def test_a_widened_arm_codes_as_its_start_until_refitted():
    start = _one_layer()
    wide = widened(start, 24)
    assert wide.hidden == 24 and np.array_equal(wide.w1[:16], start.w1)
    held = [_grids(3, 2.0)]
    assert exact_bits(held, wide) == exact_bits(held, start)
    with pytest.raises(ValueError):
        widened(start, 8)


def test_bad_input_is_one_line_and_nothing_is_overwritten(small_file, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"mine")
    with pytest.raises(SystemExit, match="already exists"):
        main(["model", "inrcodec/models/latent.safetensors", str(out), str(small_file.parent)])
    assert out.read_bytes() == b"mine"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.inr").write_bytes(small_file.read_bytes()[:40])
    with pytest.raises(SystemExit, match="refit: "):
        main(["model", "inrcodec/models/latent.safetensors", str(tmp_path / "n.safetensors"),
              str(bad)])
    assert not (tmp_path / "n.safetensors").exists()


def test_a_residual_layer_at_zero_codes_as_its_start_and_then_pays():
    start = _one_layer()
    res = start.with_residual()
    assert res.residual and res.wr.shape == (16, 16) and not res.wr.any()
    held = [_grids(3, 2.0)]
    assert exact_bits(held, res) == exact_bits(held, start)
    assert exact_bits(held, widened(res, 20)) == exact_bits(held, start)
    new = refit([_grids(s, 2.0) for s in range(4)], res, steps=60, batch=2)
    assert new.residual and new.wr.any()
    assert exact_bits(held, new) < exact_bits(held, start)
    with pytest.raises(ValueError, match="own ARM"):
        new.to_bytes()  # a file's own ARM section has one layer


def test_a_residual_model_is_format_4_and_the_codec_codes_with_its_arm(small_file, tmp_path):
    from skimage import data

    from inrcodec.codec.latent.model import LatentModel
    out = tmp_path / "r.safetensors"
    model = "inrcodec/models/latent-0.16.safetensors"
    (tmp_path / "fits").mkdir()
    (tmp_path / "fits" / "a.inr").write_bytes(api.encode(
        data.astronaut()[200:264, 200:296], steps=20, quality=80, model=model))
    main(["model", model, str(out), str(tmp_path / "fits"), "--steps", "3", "--threads", "1",
          "--residual"])
    new = load_latent_model(out)
    from inrcodec.model.file import read_metadata
    assert len(new.arm) == 6
    assert read_metadata(out.read_bytes(), "m")["format_version"] == "4"
    # a residual layer that matters: h <- h - (200/256) h
    w = new.arm[4].copy()
    w[np.arange(16), np.arange(16)] = -200
    m = LatentModel(arch=new.arch, thetas=new.thetas, masks=new.masks,
                    arm=(*new.arm[:4], w, new.arm[5]), default_level=new.default_level)
    path = tmp_path / "m.safetensors"
    m.save(path)
    img = data.astronaut()[200:248, 200:264]
    enc = tmp_path / "x.inr"
    enc.write_bytes(api.encode(img, steps=10, model=str(path)))
    assert api.decode_array(enc.read_bytes(), model=str(path)).shape == img.shape
    grids = read_latents(enc, load_latent_model(path))
    one = arm.ArmParams(*m.arm[:4])
    assert exact_bits([grids], arm.ArmParams(*m.arm)) != exact_bits([grids], one)
