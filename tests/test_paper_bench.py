import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import paper  # noqa: E402


def _photos(d: Path, n: int, seed: int) -> Path:
    d.mkdir()
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:40, 0:48] / 40
    for i in range(n):
        f = rng.uniform(1, 5, 3)
        img = np.stack([np.sin(f[c] * (x + 2 * y) + c) for c in range(3)], -1)
        Image.fromarray(np.uint8((img + 1) * 127.5)).save(d / f"p{i}.png")
    return d


def test_fig2_smoke_runs_all_methods_and_resumes(tmp_path, capsys):
    src, test = _photos(tmp_path / "train", 10, 0), _photos(tmp_path / "test", 3, 1)
    argv = ["fig2", "--scale", "smoke", "--seeds", "0", "--steps", "6", "--source", str(src),
            "--test-source", str(test), "--out-dir", str(tmp_path / "res"),
            "--work", str(tmp_path / "work")]
    paper.main(argv)
    res = json.loads((tmp_path / "res" / "paper-fig2-siren-smoke.json").read_text())
    fig2 = [r for r in res["rows"] if r["kind"] == "fig2"]
    methods = {r["method"] for r in fig2}
    assert methods == {"meta-sparse", "random-pruning", "dense-narrow", "scratch",
                       "maml-oneshot", "maml-imp"}
    by = {(r["method"], r["level"]): r for r in fig2}
    for lv in (2, 4):  # matched sizes: narrow >= sparse, pruned-in-fit == sparse
        assert by["dense-narrow", lv]["params"] >= by["meta-sparse", lv]["params"]
        for m in ("maml-imp", "maml-oneshot", "random-pruning"):
            assert by[m, lv]["params"] == by["meta-sparse", lv]["params"]
    traces = [r for r in res["rows"] if r["kind"] == "fig3"]
    assert len(traces) == 2 and all(len(r["curve"]) == 7 for r in traces)
    n = len(res["rows"])
    capsys.readouterr()
    paper.main(argv)  # everything is done: nothing is re-run
    assert "PSNR" not in capsys.readouterr().out
    assert len(json.loads((tmp_path / "res" / "paper-fig2-siren-smoke.json").read_text())["rows"]) == n
