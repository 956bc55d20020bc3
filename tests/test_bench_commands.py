"""The harness's inputs and records: development photos by name (--images dev:NAME), and
commands recorded without machine paths."""
import json

import numpy as np
import pytest

from benchmarks import harness
from benchmarks.harness import BenchError


def test_dev_photos_by_name(monkeypatch, tmp_path):
    """--images dev:NAME[,dev:NAME...]: development photos by name (how recorded commands
    write the photos' cache paths), with or without .png; mixed with files."""
    from PIL import Image

    from inrcodec.training import data

    paths = []
    for i in range(3):
        p = tmp_path / f"p{i}.png"
        Image.fromarray(np.full((8, 12, 3), 50 * i, np.uint8)).save(p)
        paths.append(p)
    monkeypatch.setattr(data, "build_dev_set", lambda out, **kw: paths)
    got = harness.load_images("dev:p2.png,dev:p0," + str(paths[1]))
    assert [n for n, _ in got] == ["p2.png", "p0.png", "p1.png"]
    assert int(got[0][1][0, 0, 0]) == 100
    assert [n for n, _ in harness.load_images("dev:2")] == ["p0.png", "p2.png"]
    with pytest.raises(BenchError, match="no development photo named nine"):
        harness.load_images("dev:nine")


class Widths(harness.Method):
    name, sweep = "toy", ("width",)

    def points(self):
        return [{"width": w} for w in (4, 8)]

    def measure(self, image, point):
        return {"psnr": 10.0 + point["width"], "params": point["width"]}


def test_recorded_commands_have_no_machine_paths(monkeypatch, tmp_path):
    """Paths in a recorded command: repo-relative inside the repository (from any working
    directory), dev:NAME for the cached development photos, the file name elsewhere."""
    root = harness.ROOT
    monkeypatch.setenv("INRCODEC_CACHE", str(tmp_path / "cache"))
    dev = tmp_path / "cache" / "devset"
    argv = ["run", "--out", str(root / "benchmarks/results/x.json"),
            "--model", "/elsewhere/m.safetensors", "--images", f"{dev}/a.png,{dev}/b.png",
            f"--out-dir={root}/benchmarks/results", "--qualities=-15",
            "--fit", "temperature=0.3,0.1", "--label", "weights, format 5", "--images", str(dev)]
    assert harness.command_line(root / "benchmarks/bench.py", argv, cwd=tmp_path) == (
        "python benchmarks/bench.py run --out benchmarks/results/x.json --model m.safetensors"
        " --images dev:a.png,dev:b.png --out-dir=benchmarks/results --qualities=-15"
        " --fit temperature=0.3,0.1 --label 'weights, format 5' --images dev")
    assert harness.portable_path("results/x.json", cwd=root / "benchmarks") == \
        "benchmarks/results/x.json"
    assert harness.portable_path("benchmarks/results/x.json", cwd=root) == \
        "benchmarks/results/x.json"
    assert harness.portable_path("part-a.json", cwd=tmp_path) == "part-a.json"
    assert harness.portable_path("dev:8", cwd=tmp_path) == "dev:8"
    assert harness.portable_path("0.5", cwd=root / "benchmarks") == "0.5"
    merge = ("python benchmarks/bench.py merge /tmp/s/a.json "
             f"{root}/benchmarks/results/b.json --out /tmp/s/c.json")
    for cwd in (root, tmp_path, None):
        assert harness.portable_command(merge, cwd=cwd) == \
            "python benchmarks/bench.py merge a.json benchmarks/results/b.json --out c.json"
    note = "python: the rows of a.json and b.json in one file (bench.py merge refuses them)"
    assert harness.portable_command(note, cwd=root) == note
    # the harness records them so, whatever the caller passed
    out = tmp_path / "r.json"
    images = [("a.png", np.zeros((4, 4, 3), np.uint8))]
    harness.run(Widths(), images, out, command=f"python {root}/benchmarks/bench.py --out {out}",
                log=lambda m: None)
    assert json.loads(out.read_text())["command"] == "python benchmarks/bench.py --out r.json"
