"""The paper's experiments (Lee et al. 2021, Figures 2-3, Appendix B, Section 5.3), scaled.

    python benchmarks/paper.py fig2 --family siren --seeds 0,1,2      # Figure 2 (+ Figure 3)
    python benchmarks/paper.py fig2 --family ffn --seeds 0,1,2        # Appendix B
    python benchmarks/paper.py ticket                                 # Section 5.3
    python benchmarks/paper.py fig2 --scale paper ...                 # the paper's sizes (GPU)
    python benchmarks/paper.py report --family siren --md out.md      # tables and plots

`fig2` trains, per seed, a Meta-SparseINR ladder, a Random Pruning ladder and Dense-Narrow
networks matched to every other level (twice: with the ladder's pretraining steps, and with
as many steps as the level they match), then fits held-out signals for 100 Adam steps
(lr 1e-4) with each of the six methods (Scratch, MAML+OneShot and MAML+IMP need no training
of their own) and records per-signal PSNR. It also traces PSNR at every one of the 100
steps for Meta-SparseINR and Dense-Narrow at the scale's trace level (Figure 3).
`ticket` runs IMP with weight rewinding on one 512x512 development photo against dense
networks of matched size (Section 5.3), with far fewer steps than the paper's 50k.

Results are harness files (benchmarks/harness/, one per method, rows per test signal) under
benchmarks/results/paper/. Everything is resumable: trained models are kept under --work and
finished points are skipped, so a rerun picks up where an interrupted one stopped.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from inrcodec.training.baselines import (dense_fit_peak, evaluate, ladder_params, narrow_width,
                                psnr_rows, train_dense_narrow, winning_ticket)
from inrcodec.model.inr import Arch
from inrcodec.codec.weights.config import FitConfig
from inrcodec.training.config import MetaConfig
from inrcodec.training.data import centre_crops, dev_photos, image_paths, random_crops
from inrcodec.training.meta import train_meta_sparse
from inrcodec.model.shared_model import SharedModel
from inrcodec.codec.weights.tiles import tile_coords
from inrcodec.training.train import signals

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.harness import BenchError, ResultsFile, command_line  # noqa: E402
from benchmarks.paper_report import DEFAULT_LR, LABELS, fig2_dir, report  # noqa: E402

# cpu: 32x32 crops of the photos (an Imagenette-like set of small natural images), a
# width-32 SIREN, a first-order MAML schedule a 2-core CPU runs in minutes per ladder.
# paper: the paper's CelebA configuration (whole 178x178 crops, width 256, 150k + 20 x 30k
# second-order steps), for a GPU.
SCALES = {
    "cpu": dict(tile=32, width=32, n_train=10000, n_test=64, crop_scale=(0.5, 1.0),
                meta=MetaConfig(first_order=True, outer_lr=5e-5, pretrain_steps=1000,
                                retrain_steps=200, rounds=12, val_every=250),
                narrow_every=2, trace_level=8, ffn_sigma=2.0),
    "paper": dict(tile=178, width=256, n_train=0, n_test=500, crop_scale=None,
                  meta=MetaConfig(pretrain_steps=150_000, retrain_steps=30_000, rounds=20),
                  narrow_every=2, trace_level=14, ffn_sigma=10.0),
    # A seconds-long run of the whole pipeline, for the test suite.
    "smoke": dict(tile=8, width=8, n_train=40, n_test=4, crop_scale=(0.5, 1.0),
                  meta=MetaConfig(first_order=True, outer_lr=1e-3, pretrain_steps=4,
                                  retrain_steps=2, rounds=4, val_every=2),
                  narrow_every=2, trace_level=2, ffn_sigma=2.0),
}
TEST_SEED = 12345


def u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)


def test_signals(sc: dict, source: str | None) -> np.ndarray:
    """Held-out signals from the development photos (never seen in training)."""
    paths = image_paths(source) if source else dev_photos()
    if sc["crop_scale"] is None:
        return u8(centre_crops(paths, sc["tile"]))[:sc["n_test"]]
    return u8(random_crops(paths, sc["tile"], sc["n_test"], seed=TEST_SEED,
                           scale_range=sc["crop_scale"]))


def _trained(path: Path, fn) -> SharedModel:
    ckpt = path.with_suffix(".ckpt.safetensors")
    if path.exists() and not ckpt.exists():
        return SharedModel.load(path)
    m = fn(resume=ckpt.exists())
    ckpt.unlink(missing_ok=True)
    return m


def _command() -> str:
    return command_line(__file__, sys.argv[1:])


def _arch(args, sc) -> Arch:
    return Arch(family=args.family, width=sc["width"], depth=4, w0=30.0,
                ffn_sigma=sc["ffn_sigma"])


def _fig2_models(args, sc: dict, arch: Arch, work: Path, seed: int, levels: list[int]):
    """One seed's trained models (kept under `work`, resumed): the Meta-SparseINR and Random
    Pruning ladders, and per matched level a Dense-Narrow with the ladder's pretraining steps
    and one with as many steps as the level it matches."""
    meta = sc["meta"]
    m_cfg = dataclasses.replace(meta, seed=seed)
    tr, va = signals(args.source, sc["tile"], sc["n_train"], 16,
                     whole_image=sc["crop_scale"] is None, seed=seed,
                     crop_scale=sc["crop_scale"] or (0.5, 1.0))
    log = print if args.verbose else None

    def ladder(pruning):
        p = work / f"{pruning}-s{seed}.safetensors"
        c = dataclasses.replace(m_cfg, pruning=pruning)
        return _trained(p, lambda resume: train_meta_sparse(
            arch, sc["tile"], tr, va, c, p, resume=resume, log=log))
    t0 = time.perf_counter()
    sparse = ladder("magnitude")
    rand = ladder("random")
    print(f"seed {seed}: ladders ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    params = ladder_params(arch, meta.rounds)
    # Dense-Narrow as the reference code trains it (the ladder's pretraining only), and
    # with as many MAML steps as the sparse level it matches had (pretraining + its
    # rounds of retraining), so that training length cannot explain the gap.
    narrow, matched = {}, {}
    for lv in levels[1:]:
        w = narrow_width(arch, params[lv])
        p = work / f"narrow-w{w}-s{seed}.safetensors"
        narrow[lv] = _trained(p, lambda resume, w=w, p=p: train_dense_narrow(
            arch, w, sc["tile"], tr, va, m_cfg, p, resume=resume, log=log))
        n = meta.pretrain_steps + lv * meta.retrain_steps
        p = work / f"narrow-w{w}-n{n}-s{seed}.safetensors"
        c = dataclasses.replace(m_cfg, pretrain_steps=n)
        matched[lv] = _trained(p, lambda resume, w=w, p=p, c=c: train_dense_narrow(
            arch, w, sc["tile"], tr, va, c, p, resume=resume, log=log))
    print(f"seed {seed}: dense-narrow ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    return sparse, rand, narrow, matched


def _fig3_traces(results, sc: dict, seed: int, test: np.ndarray, names: list[str],
                 cfg: FitConfig, sparse: SharedModel, narrow: dict) -> None:
    """Figure 3: PSNR at every step for the sparse level and its dense-narrow match."""
    tl = sc["trace_level"]
    for method, model, lv in (("meta-sparse", sparse, tl), ("dense-narrow", narrow[tl], 0)):
        res = results("fig3", method)
        if res.done(seed=seed):
            continue
        net = model.net(lv)
        coords = tile_coords(sc["tile"])
        curves = [psnr_rows(net, model.levels[lv].theta0.expand(len(test), -1), coords, test)]
        evaluate(method, test, model=model, level=lv, cfg=cfg, trace=lambda step, th:
                 curves.append(psnr_rows(net, th, coords, test)))
        c = np.asarray(curves, float).T  # (signals, steps + 1)
        res.add({"seed": seed}, [{"image": n, "params": net.n_params, "level": tl,
                                  "psnr": float(row[-1]), "psnr_step2": float(row[2]),
                                  "curve": [round(float(v), 3) for v in row]}
                                 for n, row in zip(names, c)])
        print(f"seed {seed} trace {method}: step 2 {c[:, 2].mean():.2f} dB, step "
              f"{c.shape[1] - 1} {c[:, -1].mean():.2f} dB", flush=True)


def fig2(args) -> None:
    sc = SCALES[args.scale]
    arch = _arch(args, sc)
    meta = sc["meta"]
    work = args.work / f"{args.scale}-{args.family}"
    work.mkdir(parents=True, exist_ok=True)
    d2, d3 = (fig2_dir(args.out_dir, args.family, args.scale, f, args.lr)
              for f in ("fig2", "fig3"))
    d2.mkdir(parents=True, exist_ok=True)
    d3.mkdir(parents=True, exist_ok=True)
    settings = {"scale": args.scale, "tile": sc["tile"], "arch": arch.to_dict(),
                "meta": {k: v for k, v in dataclasses.asdict(meta).items() if k != "seed"},
                "steps": args.steps, "lr": args.lr, "train_source": args.source,
                "test": {"source": args.test_source or "dev", "n": sc["n_test"],
                         "crop_scale": sc["crop_scale"], "seed": TEST_SEED}}
    files = {}

    def results(fig: str, method: str) -> ResultsFile:
        if (fig, method) not in files:
            d, sweep, what = ((d2, ("seed", "level"), f"PSNR after {args.steps} Adam steps")
                              if fig == "fig2" else
                              (d3, ("seed",), f"PSNR at every one of {args.steps} Adam steps"))
            files[fig, method] = ResultsFile(
                d / f"{method}.json", codec=method, label=LABELS[method], sweep=sweep,
                description=f"Lee et al. 2021 {'Figure 2' if fig == 'fig2' else 'Figure 3'} "
                            f"({args.family}, {args.scale} scale): {LABELS[method]}, {what}",
                settings=settings, command=_command(), force=args.force)
        return files[fig, method]

    test = test_signals(sc, args.test_source)
    names = [f"crop-{i:03d}" for i in range(len(test))]
    cfg = FitConfig(steps=args.steps, lr=args.lr)
    levels = list(range(0, meta.rounds + 1, sc["narrow_every"]))
    for seed in args.seeds:
        sparse, rand, narrow, matched = _fig2_models(args, sc, arch, work, seed, levels)

        def run(method, at, as_method=None, **kw):  # `at`: the sparse level matched
            res = results("fig2", method)
            if res.done(seed=seed, level=at):
                return
            t = time.perf_counter()
            r = evaluate(as_method or method, test, cfg=cfg, seed=seed, **kw)
            res.add({"seed": seed, "level": at},
                    [{"image": n, "psnr": q, "params": r.params} for n, q in zip(names, r.psnr)])
            print(f"seed {seed} level {at:>2} {method:<15} params {r.params:>6} "
                  f"PSNR {r.mean:6.2f} ({time.perf_counter() - t:.0f} s)", flush=True)
        for lv in levels:
            run("meta-sparse", lv, model=sparse, level=lv)
            run("random-pruning", lv, model=rand, level=lv)
            nm = narrow.get(lv, sparse if lv == 0 else None)
            run("dense-narrow", lv, model=nm, level=0)
            run("dense-narrow-matched", lv, "dense-narrow", model=matched.get(lv, nm), level=0)
            run("scratch", lv, model=nm)
            if lv:
                run("maml-oneshot", lv, model=sparse, imp_rounds=lv)
                run("maml-imp", lv, model=sparse, imp_rounds=lv)
        _fig3_traces(results, sc, seed, test, names, cfg, sparse, narrow)


def ticket(args) -> None:
    """Section 5.3: IMP with rewinding on one photo vs dense networks of matched size."""
    if args.image:
        path = Path(args.image)
        if not path.is_file():
            raise BenchError(f"--image {path}: no such file")
    else:
        photos = sorted(dev_photos())
        if not 0 <= args.photo < len(photos):
            raise BenchError(f"--photo {args.photo}: the development set has {len(photos)} photos")
        path = photos[args.photo]
    img = u8(centre_crops([path], args.size))[0]
    arch = Arch(width=args.width, depth=4, w0=args.w0)
    d = args.out_dir / f"ticket-{args.size}"
    d.mkdir(parents=True, exist_ok=True)
    settings = {"size": args.size, "arch": arch.to_dict(), "steps": args.ticket_steps,
                "lr": args.ticket_lr, "rounds": args.rounds, "photo": path.name}
    what = (f"Lee et al. 2021 Section 5.3: peak PSNR over {args.ticket_steps} Adam steps on "
            f"one {args.size}x{args.size} photo (paper: 50k steps)")
    wt = ResultsFile(d / "winning-ticket.json", codec="winning-ticket", sweep=("level",),
                     label=LABELS["winning-ticket"], settings=settings, command=_command(),
                     description=f"{what}; IMP, 20% per round, rewound to the init",
                     force=args.force)
    if not wt.done(level=0):
        t0 = time.perf_counter()

        def progress(step, total, loss):
            if step % 50 == 0 or step == total:
                el = time.perf_counter() - t0
                print(f"ticket step {step}/{total} loss {loss:.4g} ({el:.0f} s, "
                      f"~{el / step * (total - step):.0f} s left)", flush=True)
        rows = winning_ticket(arch, img, steps=args.ticket_steps, rounds=args.rounds,
                              lr=args.ticket_lr, progress=progress)
        for r in rows:  # one round's point each; all are written together
            wt.add({"level": r["round"]}, [{"image": path.name, "params": r["params"],
                                            "density": r["density"], "psnr": r["peak_psnr"]}])
            print(f"ticket round {r['round']:>2} params {r['params']:>6} "
                  f"peak {r['peak_psnr']:.2f}", flush=True)
    dn = ResultsFile(d / "dense-narrow.json", codec="dense-narrow", sweep=("level",),
                     label=LABELS["dense-narrow"], settings=settings, command=_command(),
                     description=f"{what}; dense networks as wide as the ticket's rounds",
                     force=args.force)
    params = ladder_params(arch, args.rounds)
    for lv in range(0, args.rounds + 1, 2):
        if dn.done(level=lv):
            continue
        w = narrow_width(arch, params[lv])
        r = dense_fit_peak(dataclasses.replace(arch, width=w), img, steps=args.ticket_steps,
                           lr=args.ticket_lr)
        dn.add({"level": lv}, [{"image": path.name, "params": r["params"], "width": w,
                                "psnr": r["peak_psnr"]}])
        print(f"dense-narrow width {w:>3} params {r['params']:>6} peak {r['peak_psnr']:.2f}",
              flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fig2", help="Figure 2 / Figure 3 / Appendix B")
    f.add_argument("--family", choices=["siren", "ffn"], default="siren")
    f.add_argument("--seeds", default="0,1,2")
    f.add_argument("--scale", choices=list(SCALES), default="cpu")
    f.add_argument("--quick", action="store_true",
                   help="smoke run: --scale smoke, seed 0, 10 steps, into a temporary folder")
    f.add_argument("--steps", type=int, default=100)
    f.add_argument("--lr", type=float, default=DEFAULT_LR,
                   help="test-time Adam learning rate (default: the paper's 1e-4; other values "
                        "write to folders named -lrX)")
    f.add_argument("-v", "--verbose", action="store_true")
    f.add_argument("--source", default="endless-sky", help="training photos")
    f.add_argument("--test-source", help="held-out photos (default: the development set)")
    t = sub.add_parser("ticket", help="Section 5.3")
    t.add_argument("--photo", type=int, default=0, help="index into the sorted dev photos")
    t.add_argument("--image", help="another photo instead (its centre square is used)")
    t.add_argument("--size", type=int, default=512)
    t.add_argument("--width", type=int, default=64)
    t.add_argument("--w0", type=float, default=30.0)
    t.add_argument("--rounds", type=int, default=10)
    t.add_argument("--ticket-steps", type=int, default=200)
    t.add_argument("--ticket-lr", type=float, default=1e-3)
    r = sub.add_parser("report", help="tables and plots from finished results")
    r.add_argument("--family", choices=["siren", "ffn"], default="siren")
    r.add_argument("--scale", choices=list(SCALES), default="cpu")
    r.add_argument("--size", type=int, default=512, help="the ticket run's photo size")
    r.add_argument("--lr", type=float, default=DEFAULT_LR, help="the fig2 run's test-time lr")
    r.add_argument("--md", help="also write the tables to this markdown file")
    r.add_argument("--no-plots", dest="plots", action="store_false",
                   help="tables only (plots need matplotlib)")
    for p in (f, t, r):
        p.add_argument("--out-dir", type=Path, default=None,
                       help="results folder (default: benchmarks/results/paper)")
    for p in (f, t):
        p.add_argument("--work", type=Path, default=Path("benchmarks/work"),
                       help="trained models, kept for resuming")
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--force", action="store_true",
                       help="start over where a results file holds other settings")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "report":
            args.out_dir = args.out_dir or Path("benchmarks/results/paper")
            report(args)
            return 0
        if args.cmd == "fig2" and args.quick:
            args.scale, args.seeds, args.steps = "smoke", "0", 10
            if args.out_dir is None:
                args.out_dir = Path(tempfile.mkdtemp(prefix="inrcodec-paper-quick-"))
                args.work = args.out_dir / "work"
        args.out_dir = args.out_dir or Path("benchmarks/results/paper")
        torch.set_num_threads(args.threads)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        if args.cmd == "fig2":
            try:
                args.seeds = [int(x) for x in args.seeds.split(",")]
            except ValueError:
                raise BenchError(f"--seeds {args.seeds}: expected comma-separated integers") \
                    from None
            fig2(args)
        else:
            ticket(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
