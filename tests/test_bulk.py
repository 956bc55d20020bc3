"""Dataset API: encode_dataset / decode_dataset / InrDataset and the encode-dir / decode-dir CLI."""
import hashlib
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import inrcodec
from inrcodec import batch as bulk
from inrcodec.cli import main
from inrcodec.codec.weights.config import FitConfig

STEPS = 3
SIZES = [(40, 28), (16, 16), (33, 50), (70, 20), (5, 9), (17, 31)]


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def photo_dir(tmp_path):
    """Six small images, two in a sub-folder, sizes that are not multiples of the tile."""
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    y, x = np.mgrid[0:64, 0:80] / 10.0
    for i, (w, h) in enumerate(SIZES):
        base = np.stack([np.sin(x + i), np.cos(y * (1 + i / 5)), np.sin(x * y / 7)], -1)[:h, :w]
        a = np.clip((base * 0.4 + 0.5 + rng.normal(0, 0.03, base.shape)) * 255, 0, 255)
        Image.fromarray(a.astype(np.uint8)).save(src / ("sub" if i % 3 == 1 else ".")
                                                 / f"im{i}.png")
    return src


def _stat(p):
    st = p.stat()
    return st.st_ino, st.st_mtime_ns


def test_packed_batches_give_each_image_its_own_encode(photo_dir, tmp_path, tiny_model):
    out = tmp_path / "out"
    # a batch of ~10 tiles: several images per batch, and batches of different make-up
    r = inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS,
                                batch_pixels=10 * 16 * 16, mode="weights", format_version=2)
    assert r.encoded == len(SIZES) and r.skipped == 0 and not r.failed
    man = json.loads((out / "manifest.json").read_text())
    assert len(man["images"]) == len(SIZES)
    for e in man["images"]:
        alone = inrcodec.encode_report(photo_dir / e["source"], model=tiny_model, steps=STEPS, mode="weights", format_version=2)
        data = (out / e["file"]).read_bytes()
        assert data == alone.data, e["file"]  # byte for byte what encode writes
        assert e["bytes"] == len(data) and e["psnr"] == pytest.approx(alone.psnr)
        assert e["bpp"] == pytest.approx(alone.bpp) and e["seconds"] > 0
    assert {e["file"] for e in man["images"]} == {
        "im0.inr", "sub/im1.inr", "im2.inr", "im3.inr", "sub/im4.inr", "im5.inr"}


@pytest.mark.parametrize("opts", [
    dict(level=0, steps=20, lr=3e-3, step_scale=1.5, coder="range"),  # quantiser-aware steps
    dict(quality=40, steps=8),  # rate control's settings
])
def test_dataset_and_single_encodes_write_the_same_bytes(photo_dir, tmp_path, tiny_model, opts):
    out = tmp_path / "out"
    r = inrcodec.encode_dataset(photo_dir, out, model=tiny_model, batch_pixels=10 * 16 * 16,
                                mode="weights", format_version=2, **opts)
    assert r.encoded == len(SIZES) and not r.failed
    qat = []
    for e in json.loads((out / "manifest.json").read_text())["images"]:
        alone = inrcodec.encode_report(photo_dir / e["source"], model=tiny_model,
                                       mode="weights", format_version=2, **opts)
        assert (out / e["file"]).read_bytes() == alone.data, e["file"]
        qat.append(alone.qat_steps)
    if "step_scale" in opts:  # the batch mixed images with and without quantiser-aware steps
        assert max(qat) > 0 and min(qat) == 0, qat


def test_manifest_matches_files(photo_dir, tmp_path, tiny_model):
    out = tmp_path / "out"
    inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS, mode="weights", format_version=2)
    assert bulk.check_manifest(out) == []
    man = json.loads((out / "manifest.json").read_text())
    assert man["settings"] == {"model_hash": tiny_model.hash, "level": tiny_model.default_level,
                               "steps": STEPS, "lr": 1e-4, "seed": 0, "quantizer": "delta",
                               "step_scale": 0.5, "coder": "auto"}
    for e in man["images"]:
        data = (out / e["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e["sha256"]
        h = inrcodec.info(data)["fields"]
        fields = {k: v for k, v, _ in h}
        assert (int(fields["width"]), int(fields["height"])) == (e["width"], e["height"])
    assert man["totals"]["images"] == len(SIZES)
    assert man["totals"]["bytes"] == sum(p.stat().st_size for p in out.rglob("*.inr"))
    assert not list(out.glob("manifest.part-*"))
    # the checker notices tampering
    victim = out / man["images"][0]["file"]
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    (out / "stray.inr").write_bytes(b"x")
    problems = bulk.check_manifest(out)
    assert any("contents differ" in p for p in problems) and any("stray" in p for p in problems)


class _Stop(Exception):
    pass


def test_interrupted_run_resumes_without_redoing_finished_files(photo_dir, tmp_path, tiny_model):
    out = tmp_path / "out"

    def stop_after_two(p):
        if p.done > 2.5:
            raise _Stop
    with pytest.raises(_Stop):  # like a Ctrl-C in the middle of the third image's fit
        inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS,
                                batch_pixels=1, progress=stop_after_two, mode="weights", format_version=2)
    parts = list(out.glob("manifest.part-*.json"))
    assert len(parts) == 1
    done_files = sorted(out.rglob("*.inr"))
    assert len(done_files) == 2
    before = {p: _stat(p) for p in done_files}
    r = inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS, batch_pixels=1, mode="weights", format_version=2)
    assert (r.encoded, r.skipped) == (len(SIZES) - 2, 2)
    assert {p: _stat(p) for p in done_files} == before  # not rewritten
    assert bulk.check_manifest(out) == [] and not list(out.glob("manifest.part-*"))
    # a third run has nothing to do
    r = inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS, mode="weights", format_version=2)
    assert (r.encoded, r.skipped) == (0, len(SIZES))
    # a file that went missing (or was damaged) is redone, the others are not
    gone = out / "im2.inr"
    gone.unlink()
    r = inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS, mode="weights", format_version=2)
    assert (r.encoded, r.skipped) == (1, len(SIZES) - 1) and gone.exists()
    assert bulk.check_manifest(out) == []


def test_other_settings_are_refused_unless_forced(photo_dir, tmp_path, tiny_model):
    out = tmp_path / "out"
    inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS, mode="weights", format_version=2)
    with pytest.raises(inrcodec.InrcodecError, match="other settings"):
        inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS + 1, mode="weights", format_version=2)
    r = inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS + 1, force=True, mode="weights", format_version=2)
    assert r.encoded == len(SIZES)
    man = json.loads((out / "manifest.json").read_text())
    assert man["settings"]["steps"] == STEPS + 1 and bulk.check_manifest(out) == []


def test_foreign_inr_files_are_not_overwritten(photo_dir, tmp_path, tiny_model):
    out = tmp_path / "out"
    out.mkdir()
    (out / "im0.inr").write_bytes(b"precious")
    with pytest.raises(inrcodec.InrcodecError, match="no manifest"):
        inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS, mode="weights", format_version=2)
    assert (out / "im0.inr").read_bytes() == b"precious"
    assert sorted(p.name for p in out.iterdir()) == ["im0.inr"]


def test_bad_images_are_reported_and_retried(photo_dir, tmp_path, tiny_model):
    (photo_dir / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    r = inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS, mode="weights", format_version=2)
    assert r.encoded == len(SIZES) and [f["source"] for f in r.failed] == ["broken.png"]
    man = json.loads((out / "manifest.json").read_text())
    assert [f["source"] for f in man["failed"]] == ["broken.png"]
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photo_dir / "broken.png")
    r = inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS, mode="weights", format_version=2)
    assert (r.encoded, r.skipped, r.failed) == (1, len(SIZES), [])
    man = json.loads((out / "manifest.json").read_text())
    assert man["failed"] == [] and bulk.check_manifest(out) == []


def test_iterable_sources(tmp_path, tiny_model, rgb_image):
    grey = rgb_image[:, :, 0]
    pairs = [("a", rgb_image), ("deep/b", Image.fromarray(grey))]
    out = tmp_path / "out"
    r = inrcodec.encode_dataset(iter(pairs), out, model=tiny_model, steps=STEPS, mode="weights", format_version=2)
    assert r.encoded == 2
    assert (out / "a.inr").read_bytes() == inrcodec.encode(rgb_image, model=tiny_model,
                                                           steps=STEPS, mode="weights", format_version=2)
    assert inrcodec.decode((out / "deep" / "b.inr").read_bytes(), model=tiny_model).mode == "L"
    r = inrcodec.encode_dataset(iter(pairs), out, model=tiny_model, steps=STEPS, mode="weights", format_version=2)
    assert (r.encoded, r.skipped) == (0, 2)
    for bad in ([("../up", rgb_image)], [("/abs", rgb_image)], [42]):
        with pytest.raises(inrcodec.InrcodecError):
            inrcodec.encode_dataset(bad, tmp_path / "o2", model=tiny_model, steps=STEPS, mode="weights", format_version=2)


def test_name_collisions_are_refused(tmp_path, tiny_model, rgb_image):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(rgb_image).save(src / "x.png")
    Image.fromarray(rgb_image).save(src / "x.jpg")
    with pytest.raises(inrcodec.InrcodecError, match="x.inr"):
        inrcodec.encode_dataset(src, tmp_path / "out", model=tiny_model, steps=STEPS, mode="weights", format_version=2)


def test_decode_dataset_and_torch_dataset(photo_dir, tmp_path, tiny_model):
    out = tmp_path / "out"
    inrcodec.encode_dataset(photo_dir, out, model=tiny_model, steps=STEPS, mode="weights", format_version=2)
    dec = tmp_path / "dec"
    r = inrcodec.decode_dataset(out, dec, model=tiny_model)
    assert r.encoded == len(SIZES) and r.skipped == 0
    for e in json.loads((out / "manifest.json").read_text())["images"]:
        png = dec / e["file"].replace(".inr", ".png")
        want = inrcodec.decode_array((out / e["file"]).read_bytes(), model=tiny_model)
        assert np.array_equal(np.asarray(Image.open(png)), want)
    stamp = _stat(dec / "im0.png")
    r = inrcodec.decode_dataset(out, dec, model=tiny_model)
    assert (r.encoded, r.skipped) == (0, len(SIZES)) and _stat(dec / "im0.png") == stamp
    r = inrcodec.decode_dataset(out, tmp_path / "big", model=tiny_model, scale=2, format="webp")
    assert Image.open(tmp_path / "big" / "im0.webp").size == (80, 56)
    with pytest.raises(inrcodec.InrcodecError):
        inrcodec.decode_dataset(out, tmp_path / "x", model=tiny_model, format="nope")

    ds = inrcodec.InrDataset(out, model=tiny_model)
    assert len(ds) == len(SIZES)
    x = ds[0]  # im0.inr, 40x28
    assert x.shape == (3, 28, 40) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    want = inrcodec.decode_array((out / "im0.inr").read_bytes(), model=tiny_model)
    assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(want).permute(2, 0, 1))
    assert ds.decode(0, size=(64, 48)).shape == (3, 48, 64)
    fixed = inrcodec.InrDataset(out, model=tiny_model, size=(24, 24), dtype=torch.uint8)
    batch = next(iter(torch.utils.data.DataLoader(fixed, batch_size=4, num_workers=1)))
    assert batch.shape == (4, 3, 24, 24) and batch.dtype == torch.uint8


def test_gpu_batch_size_follows_free_memory(monkeypatch, tiny_model):
    from inrcodec.codec.weights.codec import batch_pixels_for
    arch = tiny_model.arch
    cpu = batch_pixels_for(tiny_model, torch.device("cpu"))
    assert cpu == FitConfig.max_batch_pixels
    free = 8 << 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev=None: (free, 16 << 30))
    gpu = batch_pixels_for(tiny_model, torch.device("cuda"))
    per_pixel = 4 * (3 * arch.depth * arch.width + 32)
    assert gpu == free // 2 // per_pixel > cpu
    free = 1 << 20  # almost nothing free: a small batch rather than the CPU's default
    assert batch_pixels_for(tiny_model, torch.device("cuda")) == 1 << 14


W = ("--mode", "weights")


def test_encode_dir_and_decode_dir_cli(photo_dir, tmp_path, tiny_model_path):
    out = tmp_path / "out"
    r = _cli("encode-dir", photo_dir, out, *W, "--model", tiny_model_path, "--steps", STEPS,
             "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["encoded"] == len(SIZES) and s["failed"] == 0
    r = _cli("encode-dir", photo_dir, out, *W, "--model", tiny_model_path, "--steps", STEPS)
    assert r.exit_code == 0 and f"0 encoded, {len(SIZES)} already done" in r.output
    r = _cli("encode-dir", photo_dir, out, *W, "--model", tiny_model_path, "--steps", 1)
    assert r.exit_code == 1 and "other settings" in r.output and "Traceback" not in r.output
    r = _cli("encode-dir", photo_dir, tmp_path / "o2", *W, "--model", tiny_model_path, "--steps",
             STEPS, "--compute", "compact", "-q")
    assert r.exit_code == 0, r.output
    r = _cli("decode-dir", out, tmp_path / "dec", "--model", tiny_model_path, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["decoded"] == len(SIZES)
    assert (tmp_path / "dec" / "sub" / "im1.png").is_file()
    r = _cli("encode-dir", tmp_path / "missing", tmp_path / "o3", *W, "--model", tiny_model_path)
    assert r.exit_code == 1 and "no such folder" in r.output
    (photo_dir / "bad.png").write_bytes(b"junk")
    r = _cli("encode-dir", photo_dir, out, *W, "--model", tiny_model_path, "--steps", STEPS)
    assert r.exit_code == 1 and "bad.png" in r.output


def test_encode_dir_interrupted_says_how_to_resume(monkeypatch, photo_dir, tmp_path,
                                                   tiny_model_path):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(bulk, "encode_dataset", interrupted)
    r = _cli("encode-dir", photo_dir, tmp_path / "out", *W, "--model", tiny_model_path)
    assert r.exit_code == 130 and "resume" in r.output and "Traceback" not in r.output
