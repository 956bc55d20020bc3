"""Tests for inrcodec.training.data (synthetic images; no network or apt unless marked slow)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inrcodec.training import data as ds
from inrcodec.errors import DatasetError, InrcodecError


def _noise_image(w: int, h: int, seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


@pytest.fixture()
def photo_dir(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    _noise_image(64, 48, 0).save(root / "b.png")
    _noise_image(40, 60, 1).save(root / "a.jpg")
    _noise_image(50, 50, 2).save(root / "sub" / "c.JPEG")
    _noise_image(30, 20, 3).save(root / "sub" / "deeper" / "d.webp")
    _noise_image(33, 22, 4).save(root / "sub" / "e.bmp")
    (root / "notes.txt").write_text("not an image")
    return root


# --------------------------------------------------------------------------- image_paths


def test_image_paths_folder_recursive_sorted(photo_dir: Path) -> None:
    paths = ds.image_paths(photo_dir)
    rel = [p.relative_to(photo_dir).as_posix() for p in paths]
    assert rel == ["a.jpg", "b.png", "sub/c.JPEG", "sub/deeper/d.webp", "sub/e.bmp"]
    assert ds.image_paths(str(photo_dir)) == paths


def test_image_paths_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty" / "nested").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match="no images found"):
        ds.image_paths(tmp_path / "empty")


def test_image_paths_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        ds.image_paths(tmp_path / "nope")


def test_image_paths_file_is_not_folder(photo_dir: Path) -> None:
    with pytest.raises(DatasetError, match="not a folder"):
        ds.image_paths(photo_dir / "a.jpg")


def test_image_paths_unknown_name_lists_builders(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError) as info:
        ds.image_paths("no-such-dataset")
    for name in ds.BUILDERS:
        assert name in str(info.value)


def test_builders_table() -> None:
    assert set(ds.BUILDERS) == {"endless-sky", "mate-backgrounds", "palapeli", "gnome-faces"}
    for package, pattern in ds.BUILDERS.values():
        assert package and not pattern.startswith("/")


# --------------------------------------------------------------------------- cache / apt


def test_cache_dir_env_and_default(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INRCODEC_CACHE", str(tmp_path / "c"))
    assert ds.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("INRCODEC_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ds.cache_dir() == tmp_path / "home" / ".cache" / "inrcodec"


def test_fetch_without_apt(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(ds.shutil, "which", lambda tool: None)
    with pytest.raises(DatasetError, match="apt-get"):
        ds.fetch_debian_package("palapeli-data", cache=tmp_path)


def test_fetch_rejects_bad_package_name(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="invalid"):
        ds.fetch_debian_package("-o Foo=bar", cache=tmp_path)


class FakeApt:
    """Stands in for subprocess.run: apt-get download fails until apt-get update ran."""

    def __init__(self, update_ok: bool = True) -> None:
        self.calls: list[list[str]] = []
        self.updated = False
        self.update_ok = update_ok

    def __call__(self, cmd, cwd=None, timeout=None, **kwargs):
        assert timeout is not None
        self.calls.append(list(cmd))
        if cmd[:2] == ["apt-get", "update"]:
            self.updated = self.update_ok
            rc = 0 if self.update_ok else 100
            return subprocess.CompletedProcess(cmd, rc, "", "" if rc == 0 else "E: update broke")
        if cmd[:2] == ["apt-get", "download"]:
            if not self.updated:
                return subprocess.CompletedProcess(
                    cmd, 100, "", f"E: Unable to locate package {cmd[2]}"
                )
            (Path(cwd) / f"{cmd[2]}_1.0_all.deb").write_bytes(b"deb")
            return subprocess.CompletedProcess(cmd, 0, "", "")
        if cmd[:2] == ["dpkg-deb", "-x"]:
            target = Path(cmd[3]) / "usr" / "share" / "pics"
            target.mkdir(parents=True)
            (target / "x.jpg").write_bytes(b"jpg")
            return subprocess.CompletedProcess(cmd, 0, "", "")
        raise AssertionError(f"unexpected command {cmd}")


def test_fetch_updates_once_then_caches(tmp_path: Path, monkeypatch) -> None:
    fake = FakeApt()
    monkeypatch.setattr(ds.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(ds.subprocess, "run", fake)
    root = ds.fetch_debian_package("some-pkg", cache=tmp_path)
    assert root == tmp_path / "debian" / "some-pkg"
    assert (root / "usr/share/pics/x.jpg").is_file()
    assert [c[:2] for c in fake.calls] == [
        ["apt-get", "download"], ["apt-get", "update"], ["apt-get", "download"], ["dpkg-deb", "-x"],
    ]
    # no temporary directories left behind
    assert sorted(p.name for p in (tmp_path / "debian").iterdir()) == ["some-pkg"]

    fake.calls.clear()
    assert ds.fetch_debian_package("some-pkg", cache=tmp_path) == root
    assert fake.calls == []


def test_fetch_discards_unstamped_tree(tmp_path: Path, monkeypatch) -> None:
    half = tmp_path / "debian" / "some-pkg" / "usr"
    half.mkdir(parents=True)
    (half / "partial").write_text("half extracted")
    fake = FakeApt()
    fake.updated = True
    monkeypatch.setattr(ds.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(ds.subprocess, "run", fake)
    root = ds.fetch_debian_package("some-pkg", cache=tmp_path)
    assert not (root / "usr" / "partial").exists()
    assert (root / "usr/share/pics/x.jpg").is_file()


def test_fetch_reports_update_failure(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(ds.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(ds.subprocess, "run", FakeApt(update_ok=False))
    with pytest.raises(DatasetError) as info:
        ds.fetch_debian_package("some-pkg", cache=tmp_path)
    msg = str(info.value)
    assert "Unable to locate package some-pkg" in msg and "update broke" in msg
    assert not (tmp_path / "debian" / "some-pkg").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,count",
    [("endless-sky", 273), ("mate-backgrounds", 12), ("palapeli", 5), ("gnome-faces", 15)],
)
def test_real_builders(name: str, count: int) -> None:
    paths = ds.image_paths(name)
    assert len(paths) == count
    with Image.open(paths[0]) as im:
        assert im.mode == "RGB"


# --------------------------------------------------------------------------- crops


def test_random_crops_shape_range_determinism(photo_dir: Path) -> None:
    paths = ds.image_paths(photo_dir)
    a = ds.random_crops(paths, 16, 12, seed=3)
    assert a.shape == (12, 16, 16, 3) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert np.array_equal(a, ds.random_crops(paths, 16, 12, seed=3))
    assert not np.array_equal(a, ds.random_crops(paths, 16, 12, seed=4))
    assert ds.random_crops(paths, 8, 0, seed=0).shape == (0, 8, 8, 3)


def test_random_crops_decodes_each_image_once(photo_dir: Path, monkeypatch) -> None:
    paths = ds.image_paths(photo_dir)[:2]
    loads: list[Path] = []
    real = ds._load_array

    def counting(path):
        loads.append(path)
        return real(path)

    monkeypatch.setattr(ds, "_load_array", counting)
    ds.random_crops(paths, 8, 20, seed=0)
    assert sorted(loads) == sorted(paths)


def test_random_crops_full_scale_of_flat_image(tmp_path: Path) -> None:
    Image.new("RGB", (40, 30), (255, 0, 51)).save(tmp_path / "flat.png")
    crops = ds.random_crops([tmp_path / "flat.png"], 10, 3, seed=1, scale_range=(1.0, 1.0))
    assert np.allclose(crops, np.array([1.0, 0.0, 0.2], dtype=np.float32), atol=1e-6)


def test_random_crops_bad_arguments(photo_dir: Path) -> None:
    paths = ds.image_paths(photo_dir)
    with pytest.raises(DatasetError):
        ds.random_crops([], 8, 1, seed=0)
    with pytest.raises(DatasetError):
        ds.random_crops(paths, 8, 1, seed=0, scale_range=(0.0, 1.0))
    with pytest.raises(DatasetError):
        ds.random_crops(paths, 8, 1, seed=0, scale_range=(0.9, 0.5))


def test_centre_crops_takes_centre_square(tmp_path: Path) -> None:
    arr = np.zeros((100, 300, 3), dtype=np.uint8)
    arr[:, :100] = (255, 0, 0)
    arr[:, 100:200] = (0, 255, 0)
    arr[:, 200:] = (0, 0, 255)
    Image.fromarray(arr).save(tmp_path / "stripes.png")
    Image.fromarray(arr.transpose(1, 0, 2)).save(tmp_path / "tall.png")
    out = ds.centre_crops([tmp_path / "stripes.png", tmp_path / "tall.png"], 20)
    assert out.shape == (2, 20, 20, 3) and out.dtype == np.float32
    assert np.allclose(out, np.array([0.0, 1.0, 0.0], dtype=np.float32), atol=1e-6)


def test_unreadable_image_raises(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(DatasetError, match="broken.jpg"):
        ds.centre_crops([bad], 8)


# --------------------------------------------------------------------------- kodak_like


@pytest.mark.parametrize(
    "size,expected",
    [
        ((1600, 1000), (768, 512)),  # landscape, wider than 3:2
        ((1280, 1024), (768, 512)),  # landscape, narrower than 3:2
        ((1000, 1600), (512, 768)),  # portrait
        ((768, 512), (768, 512)),  # already the target
        ((512, 512), (510, 340)),  # small square: cropped to 3:2, not upscaled
        ((300, 500), (300, 450)),  # small portrait: not upscaled
    ],
)
def test_kodak_like_sizes(size, expected) -> None:
    out = ds.kodak_like(_noise_image(*size, seed=0))
    assert out.size == expected and out.mode == "RGB"


def test_kodak_like_modes_and_exif() -> None:
    assert ds.kodak_like(_noise_image(900, 600, 0, mode="L")).mode == "RGB"
    assert ds.kodak_like(_noise_image(900, 600, 0, mode="RGBA")).mode == "RGB"
    img = _noise_image(1600, 1000, 0)
    img.getexif()[0x0112] = 6  # Orientation: stored landscape, displayed portrait
    assert ds.kodak_like(img).size == (512, 768)


def test_kodak_like_crop_is_centred() -> None:
    arr = np.zeros((1000, 2000, 3), dtype=np.uint8)
    arr[:, 250:1750] = 255  # exactly the centred 3:2 window (1500x1000)
    out = np.asarray(ds.kodak_like(Image.fromarray(arr)))
    assert out.min() == 255


# --------------------------------------------------------------------------- build_dev_set


@pytest.fixture()
def fake_dev(tmp_path: Path, monkeypatch) -> list[Path]:
    pal = tmp_path / "cache" / "debian" / "palapeli-data" / "usr" / "share" / "palapeli"
    faces = tmp_path / "cache" / "debian" / "gnome-control-center-data" / "faces"
    other = tmp_path / "elsewhere"
    for d in (pal, faces, other):
        d.mkdir(parents=True)
    srcs = [pal / "bee.jpg", faces / "cat.jpg", other / "tree.png"]
    _noise_image(1200, 900, 0).save(srcs[0])
    _noise_image(512, 512, 1).save(srcs[1])
    _noise_image(600, 900, 2).save(srcs[2])
    monkeypatch.setattr(ds, "dev_photos", lambda: list(srcs))
    return srcs


def test_build_dev_set_writes_and_skips(tmp_path: Path, fake_dev, monkeypatch) -> None:
    out_dir = tmp_path / "dev"
    paths = ds.build_dev_set(out_dir)
    assert [p.name for p in paths] == ["palapeli-bee.png", "gnome-faces-cat.png", "elsewhere-tree.png"]
    sizes = [Image.open(p).size for p in paths]
    assert sizes == [(768, 512), (510, 340), (512, 768)]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.name for p in paths)

    paths[0].write_bytes(b"sentinel")
    assert ds.build_dev_set(out_dir) == paths
    assert paths[0].read_bytes() == b"sentinel"

    ds.build_dev_set(out_dir, force=True)
    assert Image.open(paths[0]).size == (768, 512)


def test_build_dev_set_failure_leaves_no_partial_file(tmp_path: Path, fake_dev, monkeypatch) -> None:
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    out_dir = tmp_path / "dev"
    with pytest.raises(InrcodecError, match="disk full"):  # every error is an InrcodecError
        ds.build_dev_set(out_dir)
    assert list(out_dir.iterdir()) == []


def test_build_dev_set_unreadable_source(tmp_path: Path, fake_dev) -> None:
    fake_dev[1].write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="cat.jpg"):
        ds.build_dev_set(tmp_path / "dev")
