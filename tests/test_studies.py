"""The studies (benchmarks/studies/) run end to end, as `python benchmarks/studies/NAME.py`
would (runpy, in this process), on tiny synthetic photos standing in for the development
set and with a few fit steps: every script a release re-runs still works with today's
package, and writes what its results file holds.
"""
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import inrcodec

from benchmarks.bench import main as bench_main

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "bitstream_spec" / "vectors"
STUDIES = ROOT / "benchmarks" / "studies"
NAMES = ("gnome-faces-a", "mate-backgrounds-Aqua", "palapeli-b", "mate-backgrounds-c")


@pytest.fixture
def dev(monkeypatch, tmp_path):
    """Four synthetic 32x48 "development photos" in a temporary cache: the harness's
    development set (build_dev_set) and the photos the tiles come from (dev_photos)."""
    from inrcodec.training import data

    cache = tmp_path / "cache"
    folder = cache / "devset"
    folder.mkdir(parents=True)
    monkeypatch.setenv("INRCODEC_CACHE", str(cache))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:48] / 32
    paths = []
    for name in NAMES:
        f = rng.uniform(1, 4, 3)
        img = np.stack([np.sin(f[c] * (x + 2 * y) + c) for c in range(3)], -1)
        paths.append(folder / f"{name}.png")
        Image.fromarray(np.uint8((img + 1) * 127.5)).save(paths[-1])
    monkeypatch.setattr(data, "build_dev_set", lambda out, **kw: list(paths))
    monkeypatch.setattr(data, "dev_photos", lambda: list(paths))
    return paths


def run_study(name: str, *argv, capsys=None) -> str:
    """`python benchmarks/studies/NAME.py ARGV...` in this process; its stdout if capsys."""
    path = STUDIES / f"{name}.py"
    old_argv, old_path, old_mods = sys.argv[:], sys.path[:], set(sys.modules)
    sys.argv = [str(path), *map(str, argv)]
    sys.path.insert(0, str(STUDIES))
    if capsys:
        capsys.readouterr()
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as e:
        assert e.code in (0, None), f"{name} exited with {e.code!r}"
    finally:
        sys.argv, sys.path[:] = old_argv, old_path
        for m in set(sys.modules) - old_mods:  # ablation.py imports seed_claims.py
            if m.startswith("benchmarks.studies"):
                del sys.modules[m]
    return capsys.readouterr().out if capsys else ""


def bench_run(out: Path, *extra, images="dev:2", qualities="5,30,55,80", steps=3) -> Path:
    """A latent-mode bench.py run (the studies read these)."""
    assert bench_main(["run", "--codecs", "inrcodec", "--mode", "latent", "--qualities",
                       qualities, "--images", images, "--steps", str(steps), "--threads", "1",
                       "--out", str(out), "--quiet", *map(str, extra)]) == 0
    return out


def no_machine_paths(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    assert str(tmp_path) not in text and str(ROOT) not in text, text[:2000]


def test_every_study_has_a_test():
    here = Path(__file__).read_text()
    untested = [p.stem for p in STUDIES.glob("*.py") if f'"{p.stem}"' not in here]
    assert not untested, f"studies without an end-to-end test here: {untested}"


def test_seed_claims(dev, tmp_path, capsys):
    d = tmp_path / "runs"
    d.mkdir()
    random = tmp_path / "latent-random.safetensors"
    assert "random synthesis" in run_study("seed_claims", "make-random", random, capsys=capsys)
    bench_run(d / "rd-meta-100.json")
    bench_run(d / "rd-random-100.json", "--model", random)
    bench_run(d / "rd-level2.json", "--levels", "2")
    bench_run(d / "rd-narrow12.json", "--model",
              ROOT / "benchmarks/models/latent-narrow12.safetensors")
    full = bench_run(tmp_path / "full.json")
    out = tmp_path / "claims.json"
    text = run_study("seed_claims", "report", "--dir", d, "--out", out, "--full", full,
                     capsys=capsys)
    assert "meta-learned against random init" in text and "against dense 12-wide" in text
    res = json.loads(out.read_text())
    assert set(res["runs"]) == {"meta-100", "random-100", "level2", "narrow12", "meta-900"}
    assert "100" in res["meta_vs_random"] and "level2_vs_narrow12" in res
    assert res["images"] == ["gnome-faces-a.png", "palapeli-b.png"]
    no_machine_paths(out, tmp_path)


MODEL_011 = str(Path(inrcodec.__file__).parent / "models" / "latent-0.11.safetensors")


def test_ablation(dev, tmp_path, capsys):
    d = tmp_path / "abl"
    d.mkdir()
    run_study("ablation", "make-random", d / "latent-random.safetensors")
    run_study("ablation", "make-arch", d / "latent-bicubic.safetensors", "--set",
              "upsample=bicubic", "--model", MODEL_011)
    text = run_study("ablation", "commands", "--dir", d, "--images", "dev:2", capsys=capsys)
    assert "--fit quantizer=noise" in text and f"--out {d}/rd-bicubic.json" in text
    bench_run(d / "rd-default.json")
    bench_run(d / "rd-noise.json", "--fit", "quantizer=noise")
    bench_run(d / "rd-bicubic.json", "--model", d / "latent-bicubic.safetensors")
    times = tmp_path / "step-time.json"
    run_study("ablation", "time", "--out", times, "--images", "dev", "--photo", "Aqua",
              "--steps", "3", "--repeats", "1", "--threads", "1")
    t = json.loads(times.read_text())
    assert t["photo"] == "mate-backgrounds-Aqua.png" and t["rows"]["noise"]["ratio"] > 0
    assert t["rows"]["default"]["decode_s"] > 0
    no_machine_paths(times, tmp_path)
    out = tmp_path / "ablation.json"
    text = run_study("ablation", "report", "--dir", d, "--out", out, "--times", times,
                     "--images", "dev:2", "--other-model", d / "latent-bicubic.safetensors",
                     capsys=capsys)
    assert "| noise |" in text
    res = json.loads(out.read_text())
    assert set(res["rows"]) == {"noise", "bicubic"}
    assert res["rows"]["noise"]["step_ratio"] == t["rows"]["noise"]["ratio"]
    from inrcodec.codec.latent.model import load_latent_model
    assert res["rows"]["bicubic"]["macs_per_pixel"] == \
        load_latent_model(MODEL_011).ladder()[0]["macs_per_pixel"]  # no taps: fixed
    assert res["default_macs_per_pixel"] == load_latent_model().ladder()[0]["macs_per_pixel"]


def test_bpp_pilot(dev, tmp_path):
    full = bench_run(tmp_path / "full.json", images="dev")
    jpeg = tmp_path / "jpeg.json"
    assert bench_main(["run", "--codecs", "jpeg", "--values", "50", "--images", "dev",
                       "--out", str(jpeg), "--quiet"]) == 0
    pilots, out = tmp_path / "pilots.jsonl", tmp_path / "pilot.json"
    run_study("bpp_pilot", "--pilots", pilots, "--pilot-steps", "2", "--full", full,
              "--jpeg", jpeg, "--targets", "0.5,1", "--out", out)
    assert len(pilots.read_text().splitlines()) == 4 * 4  # photos x qualities
    res = json.loads(out.read_text())
    assert res["images"] == 4 and res["pilots"] == "pilots.jsonl"
    assert {"BASE", "SLOPE", "JPEG_W", "PILOT_GAIN"} <= set(res["constants"])
    assert set(res["targets"]) == {"0.5", "1.0"}


def test_bpp_target(dev, tmp_path):
    curve = bench_run(tmp_path / "curve.json", steps=30)  # enough steps for a rate curve
    out = tmp_path / "target.json"
    run_study("bpp_target", "--images", "dev:2", "--bpp", "1.5", "--steps", "30",
              "--threads", "1", "--curve", curve, "--out", out)
    res = json.loads(out.read_text())
    assert [r["image"] for r in res["rows"]] == ["gnome-faces-a.png", "palapeli-b.png"]
    for r in res["rows"]:
        assert r["target"] == 1.5 and r["share"] > 0 and r["time_ratio"] > 0
        assert r["curve"] == "curve.json" and r["curve_psnr"] is not None
    assert res["command"].startswith("python benchmarks/studies/bpp_target.py --images dev:2")
    no_machine_paths(out, tmp_path)


def test_steer_traces(dev, tmp_path):
    out = tmp_path / "traces.json"
    run_study("steer_traces", "--images", "dev:2", "--pick", "0", "--qualities", "10,60",
              "--steps", "20", "--threads", "1", "--out", out)
    res = json.loads(out.read_text())
    assert [(r["image"], r["quality"]) for r in res["rows"]] == [
        ("gnome-faces-a.png", 10), ("gnome-faces-a.png", 60), ("palapeli-b.png", 10),
        ("palapeli-b.png", 60)]
    for r in res["rows"]:
        assert r["final"] > 0 and r["trace"] and r["trace"][0][0] == 12  # EARLY x steps
    no_machine_paths(out, tmp_path)


@pytest.mark.parametrize("mode", ["latent", "weights"])
def test_latent_crop(dev, tmp_path, mode):
    # a noisy photo: an inrcodec file larger than the smallest JPEG of it
    noise = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(dev[0].parent / "noise.png")
    out = tmp_path / f"{mode}-crop.png"
    run_study("latent_crop", "--photo", "noise", "--quality", "95", "--steps", "40",
              "--mode", mode, "--box", "4,4,16,12", "--out", out)
    with Image.open(out) as im:
        assert im.size == ((5 * 16 + 4 * 4) * 2, 12 * 2)  # five crops and four gaps, 2x
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["mode"] == mode and res["jpeg_bytes"] <= res["inrcodec_bytes"]
    assert res["webp_bytes"] <= res["inrcodec_bytes"] and res["out"] == out.name
    assert res["avif_bytes"] <= res["inrcodec_bytes"] and res["avif_psnr"] > 0
    no_machine_paths(out.with_suffix(".json"), tmp_path)


def test_rd_rate_control(dev, tmp_path):
    out = tmp_path / "rc.json"
    run_study("rd_rate_control", "--images", "dev:1", "--bpp", "2", "--psnr", "10",
              "--steps", "3", "--threads", "1", "--out", out)
    res = json.loads(out.read_text())
    assert [(r["target"], r["value"]) for r in res["rows"]] == [("bpp", 2.0), ("psnr", 10.0)]
    assert res["summary"]["files"] == sum("ratio" in r for r in res["rows"])
    no_machine_paths(out, tmp_path)


def test_dense_narrow_then_sparse_vs_narrow(dev, tmp_path, tiny_model_path):
    narrow = tmp_path / "narrow"
    run_study("dense_narrow", "--model", tiny_model_path, "--levels", "2", "--out-dir", narrow,
              "--source", dev[0].parent, "--pretrain-steps", "2", "--signals", "16")
    models = sorted(narrow.glob("w*.safetensors"))
    assert len(models) == 1 and models[0].with_suffix(".log.jsonl").exists()
    out = tmp_path / "svn"
    run_study("sparse_vs_narrow", "--model", tiny_model_path, "--narrow-dir", narrow,
              "--levels", "0,2", "--steps", "2", "--out", out)
    res = json.loads(out.with_suffix(".json").read_text())
    assert sorted((r["method"], r["level"]) for r in res["rows"]) == [
        ("dense-narrow", 2), ("meta-sparse", 0), ("meta-sparse", 2)]
    assert "| 2 |" in out.with_suffix(".md").read_text()
    no_machine_paths(out.with_suffix(".json"), tmp_path)


def test_fit_parts(dev, tmp_path, monkeypatch, capsys):
    from inrcodec.training import data
    monkeypatch.setattr(data, "image_paths", lambda name: list(dev))
    net = tmp_path / "analysis.safetensors"
    run_study("fit_parts", "train-analysis", "--steps", "2", "--crop", "16", "--out", net)
    rows = tmp_path / "parts.json"
    run_study("fit_parts", "run", "--images", "dev:2", "--qualities", "20,45,70", "--steps",
              "3", "--variants", "base,soap+clip,up,conv,gnoise,sa", "--analysis", net,
              "--out", rows)
    res = json.loads(rows.read_text())
    assert len(res["rows"]) == 2 * 3 * 6 and res["command"].startswith("python benchmarks/")
    assert all(r["bytes"] > 75 and r["psnr"] > 5 for r in res["rows"])
    out = tmp_path / "summary.json"
    text = run_study("fit_parts", "report", rows, rows, "--out", out, capsys=capsys)
    assert "soap+clip: BD-rate against base" in text
    summary = json.loads(out.read_text())["variants"]
    assert set(summary) == {"soap+clip", "up", "conv", "gnoise", "sa"}
    assert summary["up"]["time_ratio"] > 0
    no_machine_paths(out, tmp_path)


def test_native_crops(dev, tmp_path, capsys):
    """Centre crops of the source photos at their own resolution, spread by --pick; a
    source smaller than the crop is skipped."""
    out = tmp_path / "native"
    text = run_study("native_crops", "--out", out, "--size", "16x12", "--pick", "3",
                     capsys=capsys)
    assert "3 crops in" in text
    files = sorted(out.iterdir())
    assert len(files) == 3 and all(f.name.endswith(".png") for f in files)
    first = next(f for f in files if "gnome-faces-a" in f.name)  # dev[0], picked first
    src = np.asarray(Image.open(dev[0]))  # 32x48: the centre, not downscaled
    assert np.array_equal(np.asarray(Image.open(first)), src[10:22, 16:32])
    text = run_study("native_crops", "--out", tmp_path / "big", "--size", "64x40",
                     capsys=capsys)
    assert "0 crops in" in text


def test_decoder_versions(tmp_path):
    """This tree against itself, on two self-contained vectors: the same samples."""
    folder = tmp_path / "inr"
    folder.mkdir()
    for name in ("v3-rgb-latent", "v3-rgba-latent"):
        (folder / f"{name}.inr").write_bytes((VECTORS / f"{name}.inr").read_bytes())
    out = tmp_path / "versions.json"
    run_study("decoder_versions", "--old-tree", ROOT, "--inr-dir", folder, "--reps", 1,
              "--rounds", 1, "--out", out)
    res = json.loads(out.read_text())
    assert res["files"] == 2 and res["samples_off"] == 0 and res["samples"] == 40 * 28 * (3 + 4)
    assert res["median_decode_s"]["old"] > 0 and res["median_decode_s"]["new"] > 0
    no_machine_paths(out, tmp_path)


def test_fit_versions(dev, tmp_path):
    """This tree against itself on one photo: both trees' steps timed, the same loss."""
    out = tmp_path / "fit.json"
    run_study("fit_versions", "--old-tree", ROOT, "--image", dev[1], "--steps", 4,
              "--rounds", 1, "--threads", 1, "--out", out)
    res = json.loads(out.read_text())
    assert res["size"] == [48, 32] and res["steps"] == 4
    assert res["median_step_ms"]["old"] > 0 and res["median_step_ms"]["new"] > 0
    assert res["last_mse"]["old"] == res["last_mse"]["new"]
    no_machine_paths(out, tmp_path)


def test_arm_shapes(tmp_path):
    """Float ARMs of two shapes trained on three files' latents and counted on a fourth."""
    folder = tmp_path / "inr"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        img = np.uint8(np.clip(rng.normal(128, 40, (32, 48, 3)).cumsum(1) / 8 + 64, 0, 255))
        (folder / f"{i}.inr").write_bytes(inrcodec.encode(img, steps=8, quality=90))
    out = tmp_path / "shapes.json"
    run_study("arm_shapes", "--files", folder, "--rows", "8x1,8x2:parent", "--epochs", 2,
              "--threads", 1, "--out", out)
    res = json.loads(out.read_text())
    assert res["test"] == ["0.inr"] and [r["row"] for r in res["rows"]] == ["8x1", "8x2:parent"]
    assert res["rows"][0]["vs_first"] == 0 and all(r["total"] > 0 for r in res["rows"])
    assert res["rows"][1]["macs_per_latent"] == (12 + 9) * 8 + 8 * 8 + 2 * 8
    no_machine_paths(out, tmp_path)


@pytest.mark.parametrize("one_clock", [False, True])
def test_coarse_first(dev, tmp_path, one_clock):
    """The whole fit and a coarse-first fit (quarter size, half size, then whole) each make
    a file that decodes; each phase timed."""
    out = tmp_path / "cf.json"
    run_study("coarse_first", "--images", dev[1], "--qualities", 50, "--runs",
              "0:4,2:3/1:2/0:2", "--threads", 1, "--out", out,
              *(["--one-clock"] if one_clock else []))
    rows = json.loads(out.read_text())["rows"]
    assert [r["how"] for r in rows] == ["0:4", "2:3/1:2/0:2"]
    assert all(r["bytes"] > 0 and 5 < r["psnr"] < 99 and r["one_clock"] == one_clock
               for r in rows)
    assert len(rows[1]["phase_s"]) == 3
    no_machine_paths(out, tmp_path)
