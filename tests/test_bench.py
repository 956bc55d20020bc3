"""The benchmark harness: BD metrics, the results schema, resumable runs, codecs, --quick."""
import json
import math

import numpy as np
import pytest

from benchmarks import bd, harness, report
from benchmarks.bench import main as bench_main
from benchmarks.harness import BenchError

# -- BD-rate / BD-PSNR ------------------------------------------------------------------------
RATES = np.array([0.12, 0.25, 0.5, 1.0, 2.1])
PSNRS = np.array([24.0, 27.5, 30.2, 33.9, 37.0])


@pytest.mark.parametrize("method", bd.METHODS)
@pytest.mark.parametrize("factor", [0.5, 0.8, 1.0, 1.37, 3.0])
def test_bd_rate_of_a_rate_scaled_curve_is_the_scale(method, factor):
    # the same curve at `factor` times the rate everywhere: exactly (factor - 1) * 100 %
    assert bd.bd_rate(RATES, PSNRS, RATES * factor, PSNRS, method) == \
        pytest.approx((factor - 1) * 100, abs=1e-9)
    # equal PSNR at every rate of the common interval cannot be measured by BD-PSNR as a
    # constant shift, but the identity must give zero
    assert bd.bd_psnr(RATES, PSNRS, RATES, PSNRS, method) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("method", bd.METHODS)
def test_bd_psnr_of_a_psnr_shifted_curve_is_the_shift(method):
    assert bd.bd_psnr(RATES, PSNRS, RATES, PSNRS + 1.25, method) == pytest.approx(1.25, abs=1e-9)
    assert bd.bd_psnr(RATES, PSNRS, RATES, PSNRS - 0.5, method) == pytest.approx(-0.5, abs=1e-9)


@pytest.mark.parametrize("method", bd.METHODS)
def test_bd_rate_of_lines_with_other_slopes(method):
    # anchor ln r = p/10, test ln r = p/20 + 1: both interpolators reproduce lines exactly,
    # so the answer is exp(mean over the common PSNR interval of (p/20 + 1 - p/10)) - 1
    pa, pt = np.linspace(20, 40, 5), np.linspace(25, 45, 6)
    ra, rt = np.exp(pa / 10), np.exp(pt / 20 + 1)
    lo, hi = 25, 40
    mean = 1 - (lo + hi) / 2 / 20
    assert bd.bd_rate(ra, pa, rt, pt, method) == pytest.approx((math.exp(mean) - 1) * 100)


def test_bd_errors_and_sign():
    with pytest.raises(bd.BDError, match="overlap"):
        bd.bd_rate(RATES, PSNRS, RATES, PSNRS + 20)
    with pytest.raises(bd.BDError, match="at least 4"):
        bd.bd_rate(RATES[:3], PSNRS[:3], RATES, PSNRS, "cubic")
    assert bd.bd_rate(RATES[:3], PSNRS[:3], RATES * 0.9, PSNRS, "pchip") < 0
    with pytest.raises(bd.BDError, match="positive"):
        bd.bd_rate(RATES - 1, PSNRS, RATES, PSNRS)
    with pytest.raises(bd.BDError, match="unknown"):
        bd.bd_rate(RATES, PSNRS, RATES, PSNRS, "linear")


def test_pareto_drops_dominated_points():
    # the inrcodec ladder at lr 1e-4 is not monotone: sparser levels can score higher
    rate = [46.7, 19.5, 7.8, 2.6, 1.4]
    q = [23.3, 18.2, 16.2, 16.5, 16.6]
    assert bd.pareto(rate, q) == [4, 1, 0]


# -- a cheap deterministic method through the harness ----------------------------------------
class Fake(harness.Method):
    name = "fake"
    sweep = ("k",)

    def __init__(self, ks=(1, 2, 3), gain=1.0, fail_at=None):
        self.ks, self.gain, self.calls, self.fail_at = list(ks), gain, 0, fail_at

    def settings(self):
        return {"gain": self.gain, "k": self.ks}

    def points(self):
        return [{"k": k} for k in self.ks]

    def measure(self, image, point):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        b = int(image.sum()) % 97 + 100 * point["k"]
        return {"bytes": b, "bpp": 8 * b / image[..., 0].size,
                "psnr": 20 + self.gain * point["k"] + image.mean() / 100, "params": 10 * point["k"]}


@pytest.fixture
def images():
    rng = np.random.default_rng(3)
    return [(f"im{i}.png", rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)) for i in range(3)]


def test_summary_is_the_mean_of_the_rows(images, tmp_path):
    out = tmp_path / "r.json"
    harness.run(Fake(), images, out, command="test", log=lambda m: None)
    res = json.loads(out.read_text())
    assert res["schema"] == harness.SCHEMA and res["codec"] == "fake" and res["sweep"] == ["k"]
    assert len(res["rows"]) == 9 and res["images"] == [n for n, _ in images]
    for s in res["summary"]:
        rs = [r for r in res["rows"] if r["k"] == s["k"]]
        assert s["n"] == 3
        for key in ("bytes", "bpp", "psnr", "params"):
            assert s[key] == pytest.approx(np.mean([r[key] for r in rs]))
    # readers recompute the summary from the rows: an edited summary is not believed
    res["summary"][0]["psnr"] = 99.0
    out.write_text(json.dumps(res))
    assert harness.load_result(out)["summary"][0]["psnr"] != 99.0


def test_merge_joins_parts_run_in_parallel(images, tmp_path):
    a, b, whole = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "whole.json"
    harness.run(Fake(ks=(1, 2)), images[:2], a, command="a", log=lambda m: None)
    harness.run(Fake(ks=(1, 2)), images[2:], b, command="b", log=lambda m: None)
    harness.run(Fake(ks=(1, 2)), images, whole, command="w", log=lambda m: None)
    out = tmp_path / "m.json"
    assert bench_main(["merge", str(a), str(b), "--out", str(out)]) == 0
    merged, ref = harness.load_result(out), harness.load_result(whole)
    assert sorted(map(str, merged["rows"])) == sorted(map(str, ref["rows"]))
    assert merged["summary"] == ref["summary"] and merged["images"] == ref["images"]
    assert bench_main(["merge", str(a), str(a), "--out", str(tmp_path / "x.json")]) == 1
    harness.run(Fake(gain=2.0), images, tmp_path / "g.json", command="g", log=lambda m: None)
    assert bench_main(["merge", str(a), str(tmp_path / "g.json"),
                       "--out", str(tmp_path / "y.json")]) == 1
    assert bench_main(["merge", str(a), str(b), "--out", str(out)]) == 1  # exists


def test_run_resumes_and_refuses_other_settings(images, tmp_path):
    out = tmp_path / "r.json"
    with pytest.raises(KeyboardInterrupt):
        harness.run(Fake(fail_at=5), images, out, command="a", log=lambda m: None)
    assert len(json.loads(out.read_text())["rows"]) == 4  # every finished row was saved
    # point k=2 has one image of three: no mean is taken over a half-finished point
    assert [p["k"] for p in harness.curve(harness.load_result(out)).points] == [1]
    m = Fake()
    lines = []
    res = harness.run(m, images, out, command="b", log=lines.append)
    assert m.calls == 5 and len(res["rows"]) == 9 and "4 of 9 rows" in lines[0]
    assert res["commands"] == ["a", "b"]
    m = Fake(ks=(1, 2, 3, 4))  # a longer sweep adds rows only for the new point
    res = harness.run(m, images, out, command="c", log=lambda m: None)
    assert m.calls == 3 and len(res["rows"]) == 12 and res["settings"]["k"] == [1, 2, 3, 4]
    with pytest.raises(BenchError, match="other settings"):
        harness.run(Fake(gain=2.0), images, out, command="d", log=lambda m: None)
    res = harness.run(Fake(gain=2.0), images, out, command="e", force=True, log=lambda m: None)
    assert len(res["rows"]) == 9 and res["commands"] == ["e"]


def test_curves_and_interpolation(images, tmp_path):
    out = tmp_path / "r.json"
    harness.run(Fake(), images, out, command="t", log=lambda m: None)
    res = harness.load_result(out)
    c = harness.curve(res)
    assert list(c.x) == sorted(c.x) and len(c.x) == 3 and c.n_images == 3
    assert harness.value_at(c, c.x[1]) == pytest.approx(c.y[1])
    mid = math.sqrt(c.x[0] * c.x[1])  # halfway in log rate
    assert harness.value_at(c, mid) == pytest.approx((c.y[0] + c.y[1]) / 2)
    assert harness.value_at(c, c.x[0] / 2) is None and harness.value_at(c, c.x[-1] * 2) is None
    one = harness.curve(res, images=["im0.png"])
    assert one.n_images == 1 and one.x[0] == res["rows"][0]["bpp"]
    # the x axis may be the parameter count, as for the paper's figures
    assert list(harness.curve(res, x="params").x) == [10, 20, 30]


# -- real codecs -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photo():
    return harness.quick_images()[0][1]


@pytest.mark.parametrize("name", ["jpeg", "webp", "avif", "jpeg2000", "jpegxl"])
def test_classical_codecs(name, photo):
    if name == "jpegxl":
        pytest.importorskip("imagecodecs")
    c = harness.make_codec(name, harness.QUICK[name])
    c.check()
    lo, hi = (c.measure(photo, p) for p in (c.points()[0], c.points()[-1]))
    for r in (lo, hi):
        assert r["bpp"] == 8 * r["bytes"] / (photo.shape[0] * photo.shape[1])
        assert 0 < r["ms_ssim"] < 1 and r["params"] is None
    assert hi["bytes"] > lo["bytes"] and hi["psnr"] > lo["psnr"] + 5


def test_classical_values_as_numbers(photo):
    """--values reads numbers (50.0): the quality codecs take them as integers."""
    c = harness.make_codec("jpeg", [50.0, 75.0])
    assert c.settings()["quality"] == [50, 75] and c.points() == [{"quality": 50}, {"quality": 75}]
    assert c.measure(photo, c.points()[0])["bytes"] > 0


def test_inrcodec_codec(tiny_model, photo):
    photo = photo[:40, :56]  # too small for MS-SSIM: the row says None rather than failing
    c = harness.make_codec("inrcodec", model=tiny_model, levels=[0, 3], steps=3)
    assert c.settings()["model"] == tiny_model.hash
    dense, sparse = (c.measure(photo, p) for p in c.points())
    assert sparse["params"] < dense["params"] and sparse["bytes"] < dense["bytes"]
    n_tiles = math.ceil(photo.shape[0] / tiny_model.tile) * math.ceil(photo.shape[1] / tiny_model.tile)
    assert dense["params"] == tiny_model.net(0).n_params * n_tiles
    assert dense["ms_ssim"] is None and dense["psnr"] > 0
    with pytest.raises(BenchError, match="level 9"):
        harness.make_codec("inrcodec", model=tiny_model, levels=[9])
    assert "NON-DEFAULT" in harness.make_codec("inrcodec", model=tiny_model, lr=1e-3).description


def test_inrcodec_latent_codec(photo):
    photo = photo[:40, :56]
    from inrcodec.codec import bitstream
    from inrcodec.codec.latent.model import load_latent_model
    m = load_latent_model()
    c = harness.make_codec("inrcodec", qualities=[10, 60], steps=3, mode="latent")
    assert c.name == "inrcodec-latent" and c.settings() == {
        "mode": "latent", "model": m.hash, "steps": 3, "quality": [10, 60]}
    row = c.measure(photo, c.points()[0])
    data = c.compress(photo, c.points()[0])
    sent = int(m.masks[m.default_level].sum()) if bitstream.verify(data).synth_len else 0
    assert row["bpp"] > 0 and row["psnr"] > 0 and row["params"] == sent
    with pytest.raises(BenchError, match="qualities"):
        harness.make_codec("inrcodec", levels=[0, 1], qualities=[5], mode="latent")


def test_inrcodec_latent_ablations(photo):
    """--fit and one --levels value: the codec's own compress with that fit or level; a
    default-valued override gives the codec's bytes."""
    photo = photo[:40, :56]
    plain = harness.make_codec("inrcodec", qualities=[30], steps=3, mode="latent")
    same = harness.make_codec("inrcodec", qualities=[30], steps=3, mode="latent",
                              fit={"seed": 0})
    noise = harness.make_codec("inrcodec", qualities=[30], steps=3, mode="latent",
                               fit={"quantizer": "noise", "temperature": (0.3, 0.1)})
    p = plain.points()[0]
    assert same.compress(photo, p) == plain.compress(photo, p)
    assert noise.compress(photo, p) != plain.compress(photo, p)
    assert noise.settings()["fit"] == {"quantizer": "noise", "temperature": [0.3, 0.1]}
    assert "quantizer=noise" in noise.description
    lv = harness.make_codec("inrcodec", qualities=[30], steps=3, mode="latent", levels=[2])
    assert lv.settings()["level"] == 2 and lv.measure(photo, p)["params"] in (
        0, int(lv.model.masks[2].sum()))
    with pytest.raises(BenchError, match="not LatentFit fields"):
        harness.make_codec("inrcodec", qualities=[5], mode="latent", fit={"width": 3})
    with pytest.raises(BenchError, match="own flags"):
        harness.make_codec("inrcodec", qualities=[5], mode="latent", fit={"steps": 3})
    with pytest.raises(BenchError, match="--mode latent"):
        harness.make_codec("inrcodec", qualities=[5], fit={"seed": 1})


def test_inrcodec_latent_quality_under_one_is_its_lambda(photo):
    """A latent sweep may reach past --quality's 1..100 (the curve's low end): that
    quality's lambda, fewer bytes than quality 1."""
    photo = photo[:128, :192]  # big and fitted enough that lambda, not the header, sets the size
    c = harness.make_codec("inrcodec", qualities=[-30, 1], steps=60, mode="latent")
    low, one = c.points()
    assert len(c.compress(photo, low)) < len(c.compress(photo, one))
    with pytest.raises(Exception, match="from 1 to 100"):  # the codec's own door stays shut
        import inrcodec
        inrcodec.encode_report(photo, mode="latent", quality=-15, steps=3)


def test_fit_option_parsing():
    from benchmarks.bench import _fit
    assert _fit(["quantizer=noise", "coarse_lr_factor=1", "temperature=0.3,0.1", "stride=1"]) == {
        "quantizer": "noise", "coarse_lr_factor": 1.0, "temperature": (0.3, 0.1), "stride": 1}
    with pytest.raises(BenchError, match="FIELD=VALUE"):
        _fit(["quantizer"])
    with pytest.raises(BenchError, match="not a valid int"):
        _fit(["stride=two"])


def test_missing_optional_libraries_say_what_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # import now raises ImportError
    with pytest.raises(BenchError, match="pip install imagecodecs"):
        harness.make_codec("jpegxl").check()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(BenchError, match="pip install matplotlib"):
        report.plot([], tmp_path / "x.png")


# -- the command line --------------------------------------------------------------------------
def test_quick_smoke_run(tiny_model_path, tmp_path, capsys):
    """`run --quick` end to end (tiny model), then table, bd and plot on its files."""
    try:
        import imagecodecs  # noqa: F401
        codecs = "jpeg,webp,avif,jpeg2000,jpegxl,inrcodec"
    except ImportError:
        codecs = "jpeg,webp,avif,jpeg2000,inrcodec"
    out = tmp_path / "quick"
    out.mkdir()
    rc = bench_main(["run", "--quick", "--codecs", codecs, "--model", str(tiny_model_path),
                     "--steps", "2", "--out-dir", str(out), "--quiet"])
    assert rc == 0
    files = sorted(out.glob("rd-*.json"))
    assert len(files) == len(codecs.split(","))
    for f in files:
        res = harness.load_result(f)
        stored = json.loads(f.read_text())["summary"]
        assert [{k: v for k, v in s.items() if k != "density"} for s in stored] == res["summary"]
        assert len(res["rows"]) == 2 * len(res["summary"]) and res["command"].startswith("python")
        assert all(r["ms_ssim"] is not None for r in res["rows"])
    table = capsys.readouterr().out
    assert "| jpeg |" in table and "BD-rate vs jpeg" in table
    jpeg, webp = out / "rd-jpeg.json", out / "rd-webp.json"
    assert bench_main(["bd", str(jpeg), str(webp)]) == 0
    assert "BD-rate" in capsys.readouterr().out
    # a rerun resumes: nothing left to do, same rows
    before = jpeg.read_text()
    assert bench_main(["run", "--quick", "--codecs", "jpeg", "--out-dir", str(out), "--quiet"]) == 0
    assert json.loads(jpeg.read_text())["rows"] == json.loads(before)["rows"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    png = tmp_path / "rd.png"
    assert bench_main(["plot", *map(str, files), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert bench_main(["plot", str(jpeg), "--out", str(png)]) == 1  # exists: needs --force
    assert "--force" in capsys.readouterr().err


def test_cli_user_errors(tmp_path, capsys):
    assert bench_main(["run", "--codecs", "gif", "--out-dir", str(tmp_path)]) == 1
    assert "unknown codec" in capsys.readouterr().err
    assert bench_main(["table", str(tmp_path / "none.json")]) == 1
    assert "no such results file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert bench_main(["bd", str(bad), str(bad)]) == 1
    assert "not a readable results file" in capsys.readouterr().err


def test_a_method_without_files_plugs_in(tmp_path):
    """Paper experiments fit networks without writing files: psnr and params are enough."""
    class Widths(harness.Method):
        name, sweep = "toy-fit", ("width",)

        def points(self):
            return [{"width": w} for w in (4, 8, 16)]

        def measure(self, image, point):
            return {"psnr": 10 + point["width"] + image.mean() / 255,
                    "params": 3 * point["width"] ** 2}

    imgs = [("a", np.zeros((8, 8, 3), np.uint8)), ("b", np.full((8, 8, 3), 255, np.uint8))]
    harness.run(Widths(), imgs, tmp_path / "toy.json", command="t", log=lambda m: None)
    res = harness.load_result(tmp_path / "toy.json")
    c = harness.curve(res, x="params")
    assert list(c.x) == [48, 192, 768] and list(c.y) == [14.5, 18.5, 26.5]
    assert len(harness.curve(res).x) == 0  # no bpp: no rate curve, and the table says so
    assert "| toy-fit | 2 | - |" in report.table([res], None)


def test_inrcodec_quality_sweep(tiny_model, photo):
    """--qualities: the codec encodes with ratecontrol.py's settings for each quality."""
    from inrcodec.codec.weights.ratecontrol import quality_settings

    photo = photo[:40, :56]
    c = harness.make_codec("inrcodec", model=tiny_model, qualities=[1, 100], steps=3)
    assert c.sweep == ("quality",) and c.points() == [{"quality": 1}, {"quality": 100}]
    assert c.settings()["quality"] == [1, 100] and "level" not in c.settings()
    for q in (1, 100):
        info = c.point_info({"quality": q})
        s = quality_settings(tiny_model, q, 3)
        assert (info["level"], info["step_scale"], info["lr"]) == (s.level, s.quant.step_scale, s.lr)
    lo, hi = (c.measure(photo, p) for p in c.points())
    assert lo["bytes"] < hi["bytes"]
    with pytest.raises(BenchError, match="quality 0"):
        harness.make_codec("inrcodec", model=tiny_model, qualities=[0])
    with pytest.raises(BenchError, match="not both"):
        harness.make_codec("inrcodec", model=tiny_model, qualities=[5], levels=[0])


def test_results_file_batches_resume_and_refuse_other_settings(tmp_path):
    out = tmp_path / "m.json"
    kw = dict(codec="toy", description="d", settings={"steps": 3}, sweep=("seed", "level"),
              command="c1")
    f = harness.ResultsFile(out, **kw)
    f.add({"seed": 0, "level": 2}, [{"image": "a", "psnr": 10.0, "params": 5},
                                    {"image": "b", "psnr": 12.0, "params": 5}])
    g = harness.ResultsFile(out, **{**kw, "command": "c2"})  # resumed by another command
    assert g.done(seed=0, level=2) and not g.done(seed=1, level=2)
    g.add({"seed": 1, "level": 2}, [{"image": "a", "psnr": 14.0, "params": 5}])
    res = harness.load_result(out)
    assert res["commands"] == ["c1", "c2"] and res["settings"]["seed"] == [0, 1]
    assert [(s["seed"], s["psnr"], s["n"]) for s in res["summary"]] == [(0, 11.0, 2), (1, 14.0, 1)]
    with pytest.raises(BenchError, match="other settings"):
        harness.ResultsFile(out, **{**kw, "settings": {"steps": 4}})
    assert not harness.ResultsFile(out, **{**kw, "settings": {"steps": 4}}, force=True).done(
        seed=0, level=2)


def test_hull_is_the_operational_curve():
    r = [0.1, 0.2, 0.4, 0.8]
    q = [20.0, 23.0, 26.0, 29.0]
    assert bd.hull(r, q) == [0, 1, 2, 3]  # a straight line in log rate: all of it
    # a dominated point, and one not beaten on both axes but under the chord: both dropped
    assert bd.hull(r + [0.5], q + [21.0]) == [0, 1, 2, 3]
    assert bd.hull(r + [0.5], q + [26.5]) == [0, 1, 2, 3]
    assert bd.pareto(r + [0.5], q + [26.5]) == [0, 1, 2, 4, 3]
    # above the chord from 0.4 to 0.8: kept, and 0.2 and 0.4 fall under the chords to it
    assert bd.hull(r + [0.5], q + [28.0]) == [0, 4, 3]
    assert bd.hull([0.1, 0.2, 0.4], [25.0, 24.0, 26.0]) == [0, 2]  # rising part only


def test_table_and_bd_on_the_hull(tmp_path):
    """Several settings per rate (level x step): --front hull reads the operational curve."""
    def write(name, pts):
        rows = [{"image": "a", "level": i, "bpp": b, "psnr": p} for i, (b, p) in enumerate(pts)]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"codec": name, "rows": rows}))
        return harness.load_result(path)
    anchor = write("a", [(0.1, 20.0), (0.2, 23.0), (0.4, 26.0), (0.8, 29.0)])
    half = write("h", [(0.05, 20.0), (0.1, 23.0), (0.2, 26.0), (0.4, 29.0), (0.25, 24.0)])
    ca, ch = harness.curve(anchor), harness.curve(half)
    assert report.bd_compare(ca, ch, "pchip", "hull")["bd_rate"] == pytest.approx(-50.0)
    text = report.table([anchor, half], anchor, bpps=(0.2,), how="hull")
    assert "| h | 1 |" in text and "| 26.00 |" in text and "-50.0%" in text


def test_dev_images_spread_crop_and_keep_names(monkeypatch, tmp_path):
    """dev_set / dev_images (the scripts' development photos) without the real set: n
    photos spread over the sorted list, centre crops, the photos' own names; a missing
    set is a one-line BenchError."""
    from PIL import Image

    from inrcodec.errors import DatasetError
    from inrcodec.training import data

    paths = []
    for i in range(5):
        p = tmp_path / f"p{i}.png"
        Image.fromarray(np.full((12, 20, 3), 40 * i, np.uint8)).save(p)
        paths.append(p)
    monkeypatch.setattr(data, "build_dev_set", lambda out, **kw: list(reversed(paths)))
    got = harness.dev_images(3, crop=8)
    assert [n for n, _ in got] == ["p0.png", "p2.png", "p4.png"]
    assert all(a.shape == (8, 8, 3) and a.dtype == np.uint8 for _, a in got)
    assert int(got[1][1][0, 0, 0]) == 80
    assert harness.dev_images(1)[0][1].shape == (12, 20, 3)
    with pytest.raises(BenchError, match="5 photos"):
        harness.dev_images(6)

    def missing(out, **kw):
        raise DatasetError("no network")
    monkeypatch.setattr(data, "build_dev_set", missing)
    with pytest.raises(BenchError, match="development set unavailable"):
        harness.load_images("dev:2")

