import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from inrcodec.cli import main


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _png(tmp_path, rgb_image, name="in.png", mode=None):
    p = tmp_path / name
    img = Image.fromarray(rgb_image)
    (img.convert(mode) if mode else img).save(p)
    return p


def test_encode_decode_info(tmp_path, rgb_image, tiny_model_path):
    src = _png(tmp_path, rgb_image)
    inr = tmp_path / "x.inr"
    r = _run("encode", src, inr, "--mode", "weights", "--model", tiny_model_path, "--steps", 3, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["bytes"] == inr.stat().st_size
    assert s["bpp"] == 8 * s["bytes"] / (40 * 28)
    assert {"psnr", "seconds", "level", "steps"} <= set(s)
    out = tmp_path / "y.png"
    r = _run("decode", inr, out, "--model", tiny_model_path, "--scale", 2)
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (80, 56)
    r = _run("decode", inr, tmp_path / "z.png", "--model", tiny_model_path, "--size", "33x21",
             "--json")
    assert json.loads(r.stdout)["width"] == 33
    r = _run("info", inr)
    assert r.exit_code == 0 and "model_hash" in r.output and "40" in r.output
    r = _run("info", tiny_model_path)
    assert r.exit_code == 0 and "density" in r.output


def test_refuses_to_overwrite_without_force(tmp_path, rgb_image, tiny_model_path):
    src = _png(tmp_path, rgb_image)
    inr = tmp_path / "x.inr"
    inr.write_bytes(b"precious")
    r = _run("encode", src, inr, "--mode", "weights", "--model", tiny_model_path, "--steps", 1)
    assert r.exit_code == 1 and "--force" in r.output
    assert inr.read_bytes() == b"precious"
    r = _run("encode", src, inr, "--mode", "weights", "--model", tiny_model_path, "--steps", 1, "--force")
    assert r.exit_code == 0 and inr.read_bytes()[:4] == b"INRC"
    out = tmp_path / "o.png"
    out.write_bytes(b"mine")
    r = _run("decode", inr, out, "--model", tiny_model_path)
    assert r.exit_code == 1 and out.read_bytes() == b"mine"


def test_user_errors_are_one_line_no_traceback(tmp_path, rgb_image, tiny_model_path):
    src = _png(tmp_path, rgb_image)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    w = ("--mode", "weights")
    cases = [
        (("encode", tmp_path / "missing.png", tmp_path / "a.inr", *w, "--model", tiny_model_path),
         "no such file"),
        (("encode", bad, tmp_path / "a.inr", *w, "--model", tiny_model_path), "not an image"),
        (("encode", src, tmp_path / "a.inr", "--mode", "weights", "--model",
          tmp_path / "nomodel.safetensors"),
         "not found"),
        (("encode", src, tmp_path / "a.inr", *w, "--model", tiny_model_path, "--level", 9),
         "level 9"),
        (("decode", bad, tmp_path / "b.png", "--model", tiny_model_path), "magic"),
        (("info", bad), "neither"),
    ]
    for args, msg in cases:
        r = _run(*args)
        assert r.exit_code == 1, (args, r.output)
        assert msg in r.output, (args, r.output)
        assert "Traceback" not in r.output
        assert isinstance(r.exception, SystemExit)
    assert not (tmp_path / "a.inr").exists()


def test_decode_errors(tmp_path, rgb_image, tiny_model_path):
    from inrcodec.model.inr import Arch
    from inrcodec.model.shared_model import scratch_model
    src = _png(tmp_path, rgb_image)
    inr = tmp_path / "x.inr"
    assert _run("encode", src, inr, "--mode", "weights", "--model", tiny_model_path, "--steps", 1).exit_code == 0
    other = tmp_path / "other.safetensors"
    scratch_model(Arch(width=16, depth=3), tile=16, n_levels=4, seed=5).save(other)
    r = _run("decode", inr, tmp_path / "o.png", "--model", other)
    assert r.exit_code == 1 and "needs shared model" in r.output
    r = _run("decode", inr, tmp_path / "o.xyz", "--model", tiny_model_path)
    assert r.exit_code == 1 and "format" in r.output
    r = _run("decode", inr, tmp_path / "o.png", "--model", tiny_model_path, "--size", "big")
    assert r.exit_code == 2  # click usage error
    r = _run("decode", inr, tmp_path / "o.png", "--model", tiny_model_path, "--scale", 2,
             "--size", "4x4")
    assert r.exit_code == 1 and "not both" in r.output
    data = bytearray(inr.read_bytes())
    data[-1] ^= 1
    inr.write_bytes(bytes(data))
    r = _run("decode", inr, tmp_path / "o.png", "--model", tiny_model_path)
    assert r.exit_code == 1 and "checksum" in r.output
    assert not (tmp_path / "o.png").exists()


def test_greyscale_and_rgba_files(tmp_path, rgb_image, tiny_model_path):
    for mode, ch in (("L", 1), ("RGBA", 4)):
        src = _png(tmp_path, rgb_image, f"in-{mode}.png", mode)
        inr = tmp_path / f"{mode}.inr"
        assert _run("encode", src, inr, "--mode", "weights", "--model", tiny_model_path, "--steps", 2).exit_code == 0
        out = tmp_path / f"{mode}.png"
        assert _run("decode", inr, out, "--model", tiny_model_path).exit_code == 0
        img = Image.open(out)
        assert img.mode == mode
        if mode == "RGBA":
            np.testing.assert_array_equal(np.asarray(img)[:, :, 3],
                                          np.asarray(Image.open(src))[:, :, 3])


def test_help_explains():
    r = _run("--help")
    assert r.exit_code == 0 and "encode" in r.output and "decode" in r.output
    r = _run("encode", "--help")
    assert "--steps" in r.output and "--level" in r.output


def _photo_dir(d, n=6):
    import numpy as np
    from PIL import Image
    d.mkdir()
    y, x = np.mgrid[0:24, 0:30] / 24
    for i in range(n):
        img = np.stack([np.sin((i + 1) * (x + y) + c) for c in range(3)], -1)
        Image.fromarray(np.uint8((img + 1) * 127.5)).save(d / f"p{i}.png")
    return d


def test_train_target_density_and_dense_narrow(tmp_path, monkeypatch):
    from inrcodec.model.shared_model import SharedModel
    monkeypatch.setenv("INRCODEC_CACHE", str(tmp_path / "cache"))
    src = _photo_dir(tmp_path / "photos")
    common = ["train", str(src), "--mode", "weights", "--tile", "8", "--width", "8", "--depth", "2",
              "--pretrain-steps", "2", "--retrain-steps", "1", "--val-every", "0",
              "--n-train", "20", "--n-val", "2", "--threads", "1", "-q"]
    r = CliRunner().invoke(main, common[:2] + [str(tmp_path / "s.st")] + common[2:]
                           + ["--target-density", "0.6"])
    assert r.exit_code == 0, r.output
    m = SharedModel.load(tmp_path / "s.st")
    assert [round(x["density"], 3) for x in m.ladder()][-1] <= 0.6 and len(m.levels) == 4
    r = CliRunner().invoke(main, common[:2] + [str(tmp_path / "n.st")] + common[2:]
                           + ["--dense-params", "150"])
    assert r.exit_code == 0, r.output
    n = SharedModel.load(tmp_path / "n.st")
    assert len(n.levels) == 1 and n.levels[0].n_params >= 150
    assert n.arch.width == 10  # 2-w-w-3 with biases: width 9 has 147 parameters, 10 has 173
    r = CliRunner().invoke(main, common[:2] + [str(tmp_path / "x.st")] + common[2:]
                           + ["--target-density", "0"])
    assert r.exit_code == 1 and "target-density" in r.output


def test_progress_goes_to_stderr_even_with_json(tmp_path, tiny_model_path, rgb_image):
    """A long --json run must not look hung: progress on stderr, one JSON line on stdout."""
    import json

    from PIL import Image
    src = tmp_path / "a.png"
    Image.fromarray(rgb_image).save(src)
    r = CliRunner().invoke(main, ["encode", str(src), str(tmp_path / "a.inr"), "--model",
                                  str(tiny_model_path), "--steps", "3", "--json",
                                  "--mode", "weights"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["steps"] == 3
    assert "fitting: 3/3 steps" in r.stderr
    q = CliRunner().invoke(main, ["encode", str(src), str(tmp_path / "b.inr"), "--model",
                                  str(tiny_model_path), "--steps", "3", "--json", "--quiet",
                                  "--mode", "weights"])
    assert q.exit_code == 0 and q.stderr == ""
    d = CliRunner().invoke(main, ["encode-dir", str(tmp_path), str(tmp_path / "out"), "--model",
                                  str(tiny_model_path), "--steps", "2", "--json",
                                  "--mode", "weights"])
    assert d.exit_code == 0, d.output
    assert json.loads(d.stdout)["encoded"] == 1 and "encode-dir: 1.0/1 images" in d.stderr
