import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import paper  # noqa: E402

METHODS = {"meta-sparse", "random-pruning", "dense-narrow", "dense-narrow-matched", "scratch", "maml-oneshot",
           "maml-imp"}


def _photos(d: Path, n: int, seed: int) -> Path:
    d.mkdir()
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:40, 0:48] / 40
    for i in range(n):
        f = rng.uniform(1, 5, 3)
        img = np.stack([np.sin(f[c] * (x + 2 * y) + c) for c in range(3)], -1)
        Image.fromarray(np.uint8((img + 1) * 127.5)).save(d / f"p{i}.png")
    return d


def _rows(path: Path) -> list[dict]:
    res = json.loads(path.read_text())
    assert res["schema"] == 2 and res["command"].startswith("python benchmarks/paper.py")
    return res["rows"]


def test_fig2_smoke_runs_all_methods_and_resumes(tmp_path, capsys):
    src, test = _photos(tmp_path / "train", 10, 0), _photos(tmp_path / "test", 3, 1)
    out = tmp_path / "res"
    argv = ["fig2", "--scale", "smoke", "--seeds", "0", "--steps", "6", "--source", str(src),
            "--test-source", str(test), "--out-dir", str(out), "--work", str(tmp_path / "work")]
    assert paper.main(argv) == 0
    d2 = out / "fig2-siren-smoke"
    assert {p.stem for p in d2.glob("*.json")} == METHODS
    rows = {m: _rows(d2 / f"{m}.json") for m in METHODS}
    # one row per test signal and point; 4 smoke crops
    assert all(len({r["image"] for r in rs}) == 4 for rs in rows.values())
    by = {(m, r["level"]): r["params"] for m, rs in rows.items() for r in rs}
    for lv in (2, 4):  # matched sizes: narrow >= sparse, pruned-in-fit == sparse
        assert by["dense-narrow", lv] >= by["meta-sparse", lv]
        assert by["dense-narrow-matched", lv] == by["dense-narrow", lv]
        for m in ("maml-imp", "maml-oneshot", "random-pruning"):
            assert by[m, lv] == by["meta-sparse", lv]
    d3 = out / "fig3-siren-smoke"
    traces = [r for m in ("meta-sparse", "dense-narrow") for r in _rows(d3 / f"{m}.json")]
    assert len(traces) == 8 and all(len(r["curve"]) == 7 for r in traces)
    assert all(abs(r["psnr_step2"] - r["curve"][2]) < 1e-3 for r in traces)
    before = {p: p.read_text() for p in out.rglob("*.json")}
    capsys.readouterr()
    assert paper.main(argv) == 0  # everything is done: nothing is re-run
    assert "PSNR" not in capsys.readouterr().out
    assert all(p.read_text() == t for p, t in before.items())

    md = tmp_path / "fig2.md"
    assert paper.main(["report", "--scale", "smoke", "--out-dir", str(out), "--md", str(md),
                       "--no-plots"]) == 0
    text = md.read_text()
    assert "Meta-SparseINR" in text and "MAML+IMP" in text and "at step 2" in text
    # the table's mean is the mean of the rows
    mean0 = np.mean([r["psnr"] for r in rows["meta-sparse"] if r["level"] == 0])
    assert f"{mean0:.2f} ± 0.00" in text


def test_report_without_results_is_a_clean_error(tmp_path, capsys):
    assert paper.main(["report", "--out-dir", str(tmp_path)]) == 1
    assert "no results" in capsys.readouterr().err


def test_ticket_smoke_rounds_shrink_and_resume(tmp_path, capsys):
    img = tmp_path / "one.png"
    y, x = np.mgrid[0:20, 0:24] / 20
    Image.fromarray(np.uint8(np.stack([np.sin(3 * x + c) * np.cos(2 * y) for c in range(3)],
                                      -1) * 127 + 128)).save(img)
    out = tmp_path / "res"
    argv = ["ticket", "--image", str(img), "--size", "16", "--width", "8", "--rounds", "2",
            "--ticket-steps", "5", "--out-dir", str(out)]
    assert paper.main(argv) == 0
    wt = _rows(out / "ticket-16" / "winning-ticket.json")
    dn = _rows(out / "ticket-16" / "dense-narrow.json")
    assert [r["level"] for r in wt] == [0, 1, 2] and [r["level"] for r in dn] == [0, 2]
    assert wt[0]["params"] > wt[1]["params"] > wt[2]["params"]
    assert dn[1]["params"] >= wt[2]["params"] and dn[0]["params"] == wt[0]["params"]
    capsys.readouterr()
    assert paper.main(argv) == 0  # done: nothing re-run
    assert "peak" not in capsys.readouterr().out
    assert paper.main(["ticket", "--image", str(tmp_path / "none.png"),
                       "--out-dir", str(out)]) == 1
    assert "no such file" in capsys.readouterr().err
