"""Rate-distortion benchmarks: run codecs, tabulate, compare (BD) and plot results.

    python benchmarks/bench.py run --codecs jpeg,webp,avif,jpeg2000,jpegxl --images dev
    python benchmarks/bench.py run --codecs inrcodec --images dev:8 --levels 0,4,8,12,15
    python benchmarks/bench.py table benchmarks/results/rd-*.json --anchor benchmarks/results/rd-jpeg.json
    python benchmarks/bench.py bd benchmarks/results/rd-jpeg.json benchmarks/results/rd-webp.json
    python benchmarks/bench.py plot benchmarks/results/rd-*.json --out rd.png
    python benchmarks/bench.py run --quick        # smoke run of every codec, < 2 minutes
    python benchmarks/bench.py merge part-a.json part-b.json --out rd-x.json  # parallel parts

Runs are resumable: rerunning the same command skips the rows already in its results file.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from benchmarks.harness import BenchError  # noqa: E402
from inrcodec.errors import InrcodecError  # noqa: E402

PREFIX = "rd-"


def _floats(s: str) -> list[float]:
    try:
        return [float(v) for v in s.split(",") if v]
    except ValueError:
        raise BenchError(f"expected comma-separated numbers, got {s!r}") from None


def _fit(items: list[str]) -> dict:
    """--fit FIELD=VALUE items -> LatentFit overrides, each value of its field's type."""
    from inrcodec.codec.latent.config import LatentFit

    out = {}
    for item in items:
        k, eq, v = item.partition("=")
        f = LatentFit.__dataclass_fields__.get(k)
        if not eq or f is None:
            raise BenchError(f"--fit {item!r}: expected FIELD=VALUE, FIELD one of "
                             f"{', '.join(LatentFit.__dataclass_fields__)}")
        kind = type(f.default)
        try:
            out[k] = tuple(_floats(v)) if kind is tuple else kind(v)
        except ValueError:
            raise BenchError(f"--fit {item!r}: {v!r} is not a valid {kind.__name__}") from None
    return out


def _ints(s: str) -> list[int]:
    try:
        return [int(v) for v in s.split(",") if v]
    except ValueError:
        raise BenchError(f"expected comma-separated integers, got {s!r}") from None


def cmd_run(a, command: str) -> int:
    codecs = [c for c in a.codecs.split(",") if c] if a.codecs else \
        (list(harness.CLASSICAL) + ["inrcodec"] if a.quick else list(harness.CLASSICAL))
    if a.out and len(codecs) != 1:
        raise BenchError("--out names one file: use it with one codec, or use --out-dir")
    if a.values and len(codecs) != 1:
        raise BenchError("--values overrides one codec's sweep: use it with one codec")
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    out_dir = Path(a.out_dir) if a.out_dir else (
        Path(tempfile.mkdtemp(prefix="inrcodec-bench-quick-")) if a.quick
        else Path("benchmarks/results"))
    images_spec = a.images or ("quick" if a.quick else "dev")
    # build every codec first: a missing library or a bad level fails before any work
    methods = []
    for name in codecs:
        values = _floats(a.values) if a.values else (harness.QUICK.get(name) if a.quick else None)
        if name == "inrcodec" and a.mode == "weights-rd":
            from inrcodec.codec.weights.config import RD_EFFORT
            m = harness.make_codec("inrcodec", model=a.model,
                                   steps=a.steps or RD_EFFORT[a.effort][1], label=a.label,
                                   qualities=_ints(a.qualities) if a.qualities else None,
                                   mode="weights-rd", effort=a.effort)
        elif name == "inrcodec" and a.mode == "latent":
            from inrcodec.codec.latent.config import STEPS as LATENT_STEPS
            m = harness.make_codec("inrcodec", model=a.model, steps=a.steps or LATENT_STEPS,
                                   label=a.label,
                                   qualities=_ints(a.qualities) if a.qualities else None,
                                   mode="latent", fit=_fit(a.fit),
                                   levels=_ints(a.levels) if a.levels else None)
        elif name == "inrcodec":
            model = harness.Inrcodec(a.model)  # to know the ladder's length
            if a.qualities and a.levels:
                raise BenchError("--qualities and --levels: choose one sweep for inrcodec")
            levels = _ints(a.levels) if a.levels else (
                [0, len(model.model.levels) - 1] if a.quick and not a.qualities else None)
            steps = a.steps if a.steps is not None else (10 if a.quick else 100)
            m = harness.make_codec("inrcodec", model=model.model, levels=levels, steps=steps,
                                   lr=a.lr, label=a.label,
                                   qualities=_ints(a.qualities) if a.qualities else None)
        else:
            m = harness.make_codec(name, values)
            if a.label:
                m.label = a.label
        m.check()
        methods.append(m)
    images = harness.load_images(images_spec)
    log = harness.RunLog(quiet=a.quiet)
    log(f"{len(images)} images ({images_spec}); writing to {out_dir}")
    outs = []
    for m in methods:
        out = Path(a.out) if a.out else out_dir / f"{PREFIX}{m.name}{a.tag}.json"
        harness.run(m, images, out, command=command, force=a.force, log=log)
        outs.append(out)
    from benchmarks import report

    results = [harness.load_result(p) for p in outs]
    anchor = next((r for r in results if r["codec"] == "jpeg"), None)
    print(report.table(results, anchor, method=a.bd_method, how=a.front))
    for p in outs:
        print(f"wrote {p}")
    return 0


def _load_all(paths) -> list[dict]:
    return [harness.load_result(p) for p in paths]


def _images(results, common: bool):
    return harness.common_images(results) if common else None


def cmd_table(a, command: str) -> int:
    from benchmarks import report

    results = _load_all(a.results)
    anchor = None
    if a.anchor:
        anchor = next((r for r in results if Path(r["_path"]).resolve() == Path(a.anchor).resolve()),
                      None) or harness.load_result(a.anchor)
        if anchor not in results:
            results.insert(0, anchor)
    imgs = _images(results, a.common_images)
    if imgs is not None:
        print(f"over the {len(imgs)} images common to all runs")
    print(report.table(results, anchor, tuple(_floats(a.bpp)), a.bd_method, imgs, a.front))
    return 0


def cmd_merge(a, command: str) -> int:
    """One results file from runs of one codec and settings split over processes (by
    images or by swept values): the rows of all, a row present twice is an error."""
    import json
    parts = [harness.load_result(p) for p in a.results]
    first = parts[0]
    fixed = lambda r: {k: v for k, v in r["settings"].items() if k not in r["sweep"]}
    for p, path in zip(parts[1:], a.results[1:]):
        if p["codec"] != first["codec"] or fixed(p) != fixed(first) \
                or p["sweep"] != first["sweep"]:
            raise BenchError(f"{path} is a run of another codec or other settings")
    out = Path(a.out)
    if out.exists() and not a.force:
        raise BenchError(f"{out} exists (use --force to overwrite)")
    res = json.loads(json.dumps(first))
    res["rows"], seen = [], set()
    for p in parts:
        for r in p["rows"]:
            key = harness.row_key(r, res["sweep"])
            if key in seen:
                raise BenchError(f"row {key} is in more than one part")
            seen.add(key)
            res["rows"].append(r)
        res["commands"] = list(dict.fromkeys(res["commands"] + p.get("commands", [])))
    res["commands"].append(command)
    harness.sync(res)
    harness.write_result(out, res)
    print(f"{out}: {len(res['rows'])} rows from {len(parts)} parts")
    return 0


def cmd_bd(a, command: str) -> int:
    from benchmarks import report

    anchor, test = harness.load_result(a.anchor), harness.load_result(a.test)
    imgs = _images([anchor, test], a.common_images)
    ca = harness.curve(anchor, x=a.x, images=imgs)
    ct = harness.curve(test, x=a.x, images=imgs)
    print(f"anchor {ca.label}: {len(ca.x)} points on {ca.n_images} images; "
          f"test {ct.label}: {len(ct.x)} points on {ct.n_images} images")
    for method in (["cubic", "pchip"] if a.method == "both" else [a.method]):
        d = report.bd_compare(ca, ct, method, a.front)
        for side in ("anchor", "test"):
            if d[f"{side}_dropped"]:
                print(f"  {method}: {side} points off the efficient front, left out: "
                      f"{d[f'{side}_dropped']}")
        if d["bd_rate"] is not None:
            lo, hi = d["bd_rate_interval"]
            print(f"{method}: BD-rate {d['bd_rate']:+.2f}% (over PSNR {lo:.2f}-{hi:.2f} dB)")
        else:
            print(f"{method}: BD-rate not defined: {d['bd_rate_error']}")
        if d["bd_psnr"] is not None:
            lo, hi = d["bd_psnr_interval"]
            print(f"{method}: BD-PSNR {d['bd_psnr']:+.3f} dB (over {a.x} {lo:.3g}-{hi:.3g})")
        else:
            print(f"{method}: BD-PSNR not defined: {d['bd_psnr_error']}")
    return 0


def cmd_plot(a, command: str) -> int:
    from benchmarks import report

    results = _load_all(a.results)
    xlim = tuple(_floats(a.xlim)) if a.xlim else None
    if xlim is not None and len(xlim) != 2:
        raise BenchError("--xlim takes two numbers: MIN,MAX")
    report.plot(results, Path(a.out), x=a.x, y=a.y, images=_images(results, a.common_images),
                title=a.title, xlim=xlim, force=a.force, how=a.front)
    print(f"wrote {a.out}")
    return 0


FRONT_HELP = ("which points make a curve: pareto (each beats every cheaper one; for a sweep "
              "of one setting) or hull (the upper convex hull in log rate: the operational "
              "curve of a sweep over several settings, such as level x step scale)")


def _run_parser(sub) -> None:
    r = sub.add_parser("run", help="measure codecs on images (resumable)")
    r.add_argument("--codecs", help="comma-separated: inrcodec, " + ", ".join(harness.CLASSICAL)
                   + " (default: the classical ones; with --quick, all)")
    r.add_argument("--images", help="dev (all 32 development photos), dev:N (N spread over "
                   "them), quick (two small crops), or comma-separated files/folders "
                   "(default: dev; with --quick, quick)")
    r.add_argument("--out-dir", help="folder for the results files, named rd-CODEC[TAG].json "
                   "(default: benchmarks/results; with --quick, a new temporary folder)")
    r.add_argument("--out", help="results file (one codec only)")
    r.add_argument("--tag", default="", help="suffix of the results file names")
    r.add_argument("--label", help="legend label (default: the codec's name)")
    r.add_argument("--values", help="comma-separated sweep replacing the codec's default "
                   "(JPEG/WebP/AVIF quality, JPEG 2000 target bpp, JPEG XL distance)")
    r.add_argument("--model", help="inrcodec shared model (default: the shipped one)")
    r.add_argument("--levels", help="inrcodec levels, comma-separated (default: all)")
    r.add_argument("--mode", choices=["weights", "latent", "weights-rd"], default="weights",
                   help="inrcodec's mode (latent: a --qualities sweep, format 7; weights-rd: "
                   "a --qualities sweep of format 5; weights: format 2)")
    r.add_argument("--effort", choices=["fast", "default", "slow"], default="default",
                   help="inrcodec weights-rd: candidate levels and steps")
    r.add_argument("--qualities", help="inrcodec: sweep --quality (1..100, comma-separated) "
                   "instead of levels; quality sets level, quantiser and lr itself. The "
                   "latent mode also takes qualities under 1 (write --qualities=-15): the "
                   "lambda of that quality, as --bpp's control may use")
    r.add_argument("--steps", type=int, help="inrcodec encoder steps (default: the latent "
                   "mode's default effort, format 5's, 100 for format 2)")
    r.add_argument("--lr", type=float, default=1e-4, help="inrcodec encoder lr (default 1e-4)")
    r.add_argument("--fit", action="append", default=[], metavar="FIELD=VALUE",
                   help="inrcodec latent: change one LatentFit field (an ablation; repeatable), "
                   "e.g. quantizer=noise, coarse_lr_factor=1, temperature=0.3,0.1")
    r.add_argument("--threads", type=int, help="torch threads (inrcodec)")
    r.add_argument("--quick", action="store_true", help="smoke run: two small crops, three "
                   "points per classical codec, inrcodec at its first and last level, 10 steps")
    r.add_argument("--force", action="store_true",
                   help="start over when a results file exists with other settings")
    r.add_argument("--bd-method", default="pchip", choices=("cubic", "pchip"))
    r.add_argument("--front", default="pareto", choices=("pareto", "hull"), help=FRONT_HELP)
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.set_defaults(fn=cmd_run)


def _reading_parsers(sub) -> None:
    """table, bd, plot and merge: commands that read results files."""
    t = sub.add_parser("table", help="PSNR at given bpp and BD against an anchor")
    t.add_argument("results", nargs="+")
    t.add_argument("--anchor", help="results file of the anchor curve (e.g. JPEG)")
    t.add_argument("--bpp", default="0.25,0.5,1", help="rates to read PSNR at (default 0.25,0.5,1)")
    t.add_argument("--bd-method", default="pchip", choices=("cubic", "pchip"))
    t.add_argument("--front", default="pareto", choices=("pareto", "hull"), help=FRONT_HELP)
    t.add_argument("--common-images", action="store_true",
                   help="use only the images every results file has")
    t.set_defaults(fn=cmd_table)

    b = sub.add_parser("bd", help="BD-rate and BD-PSNR of one curve against another")
    b.add_argument("anchor")
    b.add_argument("test")
    b.add_argument("--method", default="both", choices=("cubic", "pchip", "both"))
    b.add_argument("--x", default="bpp", choices=("bpp", "params"), help="the rate axis")
    b.add_argument("--common-images", action="store_true")
    b.add_argument("--front", default="pareto", choices=("pareto", "hull"), help=FRONT_HELP)
    b.set_defaults(fn=cmd_bd)

    p = sub.add_parser("plot", help="PSNR (or MS-SSIM) against bpp (or params), PNG")
    p.add_argument("results", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--x", default="bpp", choices=("bpp", "params"))
    p.add_argument("--y", default="psnr", choices=("psnr", "ms_ssim"))
    p.add_argument("--xlim", help="MIN,MAX of the x axis")
    p.add_argument("--title")
    p.add_argument("--common-images", action="store_true")
    p.add_argument("--front", default="pareto", choices=("pareto", "hull"),
                   help=FRONT_HELP + "; with hull, the other points are drawn as dots")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.set_defaults(fn=cmd_plot)
    g = sub.add_parser("merge", help="one results file from parts run in parallel")
    g.add_argument("results", nargs="+")
    g.add_argument("--out", required=True)
    g.add_argument("--force", action="store_true")
    g.set_defaults(fn=cmd_merge)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    _run_parser(sub)
    _reading_parsers(sub)
    return ap


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parser().parse_args(argv)
    command = harness.command_line(__file__, argv)  # paths repo-relative
    try:
        return a.fn(a, command)
    except (BenchError, InrcodecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the rows done so far are saved; rerun the command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
