"""The default mode (config.DEFAULT_MODE, the latent mode) through every door: the Python
API, `inrcodec encode`, `encode-dir` (with resume), `decode-dir`, InrDataset, the Pillow
plugin and `inrcodec train`; and the one place where options become a mode and its
settings (codec.registry.settings_for)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import inrcodec
from inrcodec.cli import main
from inrcodec.codec import bitstream
from inrcodec.codec.encoder import settings_for
from inrcodec.codec.latent.format import LatentHeader
from inrcodec.config import DEFAULT_MODE
from inrcodec.errors import InrcodecError, ModelError

STEPS = 4


def _photo(seed, h=24, w=32):
    y, x = np.mgrid[0:h, 0:w] / 7.0
    base = np.stack([np.sin(x + seed), np.cos(y * 1.3), np.sin(x * y / 5)], -1)
    return np.clip((0.4 * base + 0.5) * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    for k in range(2):
        Image.fromarray(_photo(k)).save(d / f"p{k}.png")
    return d


def test_the_default_mode_is_the_latent_mode():
    assert DEFAULT_MODE == "latent"
    mode, s = settings_for()
    assert mode.name == "latent" and mode.writes == (7,)


def test_api_and_cli_write_the_same_bytes(folder, tmp_path):
    src = folder / "p0.png"
    r = CliRunner().invoke(main, ["encode", str(src), str(tmp_path / "a.inr"), "--steps",
                                  str(STEPS), "-q"])
    assert r.exit_code == 0, r.output
    cli = (tmp_path / "a.inr").read_bytes()
    assert isinstance(bitstream.verify(cli), LatentHeader)
    assert inrcodec.encode(src, steps=STEPS) == cli
    assert inrcodec.encode(np.asarray(Image.open(src)), steps=STEPS) == cli


def test_encode_dir_resumes_and_every_reader_reads_it(folder, tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["encode-dir", str(folder), str(out), "--steps", str(STEPS),
                                  "-q", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["encoded"] == 2
    man = json.loads((out / "manifest.json").read_text())
    assert man["settings"]["mode"] == "latent" and len(man["images"]) == 2
    for e in man["images"]:  # each file is the one `encode` writes for the image alone
        assert (out / e["file"]).read_bytes() == inrcodec.encode(folder / e["source"],
                                                                   steps=STEPS)
    again = inrcodec.encode_dataset(folder, out, steps=STEPS)
    assert again.encoded == 0 and again.skipped == 2
    ds = inrcodec.InrDataset(out)
    assert len(ds) == 2 and tuple(ds[0].shape) == (3, 24, 32)
    assert tuple(inrcodec.InrDataset(out, size=(16, 12))[1].shape) == (3, 12, 16)
    # one file, many training resolutions: the shorter side set, aspect kept
    assert [tuple(ds.decode(0, n).shape) for n in (12, 48)] == [(3, 12, 16), (3, 48, 64)]
    assert tuple(inrcodec.InrDataset(out, size=6)[0].shape) == (3, 6, 8)
    # through a DataLoader's forked workers, after this process has decoded (and encoded:
    # numba's OpenMP pool, which a fork kills, must not be what the decoder runs on)
    import torch
    loaded = list(torch.utils.data.DataLoader(inrcodec.InrDataset(out, dtype=torch.uint8),
                                              batch_size=1, num_workers=2))
    assert [torch.equal(b[0], torch.from_numpy(inrcodec.decode_array(
        (out / f"p{i}.inr").read_bytes())).permute(2, 0, 1)) for i, b in enumerate(loaded)] \
        == [True, True]
    r = CliRunner().invoke(main, ["decode-dir", str(out), str(tmp_path / "png"), "-q"])
    assert r.exit_code == 0, r.output
    png = np.asarray(Image.open(tmp_path / "png" / "p0.png"))
    assert np.array_equal(png, inrcodec.decode_array((out / "p0.inr").read_bytes()))


def test_weight_mode_resolves_as_on_the_command_line():
    assert settings_for(mode="weights")[0].writes == (5,)
    assert settings_for(mode="weights", preset="paper")[1].version == 2
    assert settings_for(mode="weights", coder="range")[1].version == 2  # format 2's own
    assert settings_for(mode="weights", format_version=1, quantizer="fp16")[1].version == 1
    with pytest.raises(InrcodecError, match="latent mode does not take lr"):
        settings_for(mode="latent", lr=1e-3)
    with pytest.raises(InrcodecError, match="learns its step sizes"):
        settings_for(mode="weights", format_version=5, step_scale=1.0)
    with pytest.raises(InrcodecError, match="unknown mode"):
        settings_for(mode="pixels")
    with pytest.raises(InrcodecError, match="unknown encode option stpes"):
        settings_for(stpes=3)


def test_one_options_object_through_every_door(folder, tmp_path):
    """EncodeOptions (or a mapping of it) is what the API, encode-dir and the Pillow plugin
    take, and the command line's options are its fields."""
    from inrcodec.codec.options import EncodeOptions
    src = folder / "p0.png"
    opts = EncodeOptions(steps=STEPS, quality=60)
    a = inrcodec.encode(src, opts)
    assert inrcodec.encode(src, {"steps": STEPS, "quality": 60}) == a
    assert inrcodec.encode(src, steps=STEPS, quality=60) == a
    Image.open(src).save(tmp_path / "pil.inr", steps=STEPS, quality=60)
    assert (tmp_path / "pil.inr").read_bytes() == a
    inrcodec.encode_dataset([src], tmp_path / "d", opts)
    assert (tmp_path / "d" / "p0.inr").read_bytes() == a
    help = CliRunner().invoke(main, ["encode", "--help"]).output
    assert all("--" + n.replace("_", "-") in help for n in EncodeOptions.names())


@pytest.mark.parametrize("flag", [["--compute", "dense"], ["--amp", "bf16"], ["--compile"],
                                  ["--batch-pixels", "4096"]])
def test_options_that_do_nothing_in_the_latent_mode_are_refused(folder, tmp_path, flag):
    r = CliRunner().invoke(main, ["encode-dir", str(folder), str(tmp_path / "o"), "--steps",
                                  "1", *flag])
    assert r.exit_code == 1 and "nothing in the latent mode" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "o").exists()
    with pytest.raises(InrcodecError, match="nothing in the latent mode"):
        inrcodec.encode(folder / "p0.png", steps=1, batch_pixels=4096)


def test_train_defaults_to_the_default_mode(tmp_path):
    """`inrcodec train` trains the default mode's model: the weight mode's options are
    refused without --mode weights."""
    r = CliRunner().invoke(main, ["train", str(tmp_path), str(tmp_path / "m.safetensors"),
                                  "--tile", "32"])
    assert r.exit_code == 1 and "--mode latent does not take --tile" in r.output


def test_a_model_of_the_other_mode_is_a_clear_error(tiny_model):
    with pytest.raises(ModelError, match="latent mode needs a latent model"):
        inrcodec.encode(_photo(0), model=tiny_model, steps=1)
    from inrcodec.codec.latent.model import load_latent_model
    with pytest.raises(ModelError, match="weight mode needs its shared model"):
        inrcodec.encode(_photo(0), mode="weights", model=load_latent_model(), steps=1)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is here")
@pytest.mark.parametrize("mode", [[], ["--mode", "weights"]])
def test_a_missing_gpu_is_a_clear_error(folder, tmp_path, mode):
    dst = tmp_path / "x.inr"
    r = CliRunner().invoke(main, ["encode", str(folder / "p0.png"), str(dst), "--steps", "1",
                                  "--device", "cuda", *mode])
    assert r.exit_code == 1 and "CUDA was requested" in r.output
    assert "Traceback" not in r.output and not dst.exists()


def test_the_latent_fit_on_the_cpu_device_is_the_default(folder):
    src = folder / "p1.png"
    assert inrcodec.encode(src, steps=STEPS, device="cpu") == inrcodec.encode(src, steps=STEPS)


@pytest.mark.parametrize("extra", [[], ["--preset", "paper"]])
def test_encode_dir_in_the_weight_mode(folder, tmp_path, tiny_model_path, extra):
    out = tmp_path / "w"
    r = CliRunner().invoke(main, ["encode-dir", str(folder), str(out), "--mode", "weights",
                                  "--model", str(tiny_model_path), "--steps", "2", "-q",
                                  *extra])
    assert r.exit_code == 0, r.output
    versions = {bitstream.verify(p.read_bytes()).version for p in out.glob("*.inr")}
    assert versions == ({2} if extra else {5})
    ds = inrcodec.InrDataset(out, model=tiny_model_path)
    assert len(ds) == 2 and tuple(ds[0].shape) == (3, 24, 32)
    again = inrcodec.encode_dataset(folder, out, mode="weights", model=tiny_model_path,
                                    steps=2, **({"preset": "paper"} if extra else {}))
    assert again.encoded == 0 and again.skipped == 2


def test_a_bpp_target_through_every_door(folder, tmp_path):
    """--bpp in the default mode (a pilot and one steered fit): the API, `encode` and
    `encode-dir` write the same file, within the budget."""
    src = folder / "p1.png"
    api = inrcodec.encode_report(src, steps=STEPS * 5, bpp=3.0)
    assert len(api.data) <= 3.0 * 24 * 32 / 8 and api.search["method"] == "pilot"
    r = CliRunner().invoke(main, ["encode", str(src), str(tmp_path / "a.inr"), "--steps",
                                  str(STEPS * 5), "--bpp", "3", "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a.inr").read_bytes() == api.data
    r = CliRunner().invoke(main, ["encode-dir", str(folder), str(tmp_path / "out"), "--steps",
                                  str(STEPS * 5), "--bpp", "3", "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "p1.inr").read_bytes() == api.data


def test_a_big_smooth_photo_is_fitted_coarse_first(tmp_path):
    """From 1 MP, a photo with little fine detail takes the coarse-first fit by default
    (`inrcodec encode` says so) and decodes."""
    y, x = np.mgrid[0:1024, 0:1024] / 300.0
    img = np.clip((0.4 * np.stack([np.sin(x), np.cos(y), np.sin(x + y)], -1) + 0.5) * 255,
                  0, 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "big.png")
    r = CliRunner().invoke(main, ["encode", str(tmp_path / "big.png"), str(tmp_path / "b.inr"),
                                  "--steps", "6", "-q"])
    assert r.exit_code == 0, r.output
    assert "fitted coarse first" in r.output and "4 steps at 1/4 of its size" in r.output
    assert inrcodec.decode((tmp_path / "b.inr").read_bytes()).size == (1024, 1024)
