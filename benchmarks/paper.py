"""The paper's experiments (Lee et al. 2021, Figures 2-3, Appendix B, Section 5.3), scaled.

    python benchmarks/paper.py fig2 --family siren --seeds 0,1,2      # Figure 2 (+ Figure 3)
    python benchmarks/paper.py fig2 --family ffn --seeds 0,1,2        # Appendix B
    python benchmarks/paper.py ticket                                 # Section 5.3
    python benchmarks/paper.py fig2 --scale paper ...                 # the paper's sizes (GPU)

`fig2` trains, per seed, a Meta-SparseINR ladder, a Random Pruning ladder and Dense-Narrow
networks matched to every other level, then fits held-out signals for 100 Adam steps
(lr 1e-4) with each of the six methods (Scratch, MAML+OneShot and MAML+IMP need no training
of their own) and records per-signal PSNR. It also traces PSNR at every one of the 100
steps for Meta-SparseINR and Dense-Narrow at the `--trace-level` (Figure 3).
`ticket` runs IMP with weight rewinding on one 512x512 development photo against dense
networks of matched size (Section 5.3), with far fewer steps than the paper's 50k.

Everything is resumable: trained models are kept under --work and finished result rows are
skipped, so a rerun picks up where an interrupted one stopped.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from inrcodec.baselines import (dense_fit_peak, evaluate, ladder_params, narrow_width,
                                psnr_rows, train_dense_narrow, winning_ticket)
from inrcodec.config import Arch, FitConfig, MetaConfig
from inrcodec.datasets import centre_crops, dev_photos, image_paths, random_crops
from inrcodec.meta import train_meta_sparse
from inrcodec.shared_model import SharedModel
from inrcodec.train import signals

# cpu: 32x32 crops of the photos (an Imagenette-like set of small natural images), a
# width-32 SIREN, a first-order MAML schedule a 2-core CPU runs in minutes per ladder.
# paper: the paper's CelebA configuration (whole 178x178 crops, width 256, 150k + 20 x 30k
# second-order steps), for a GPU.
SCALES = {
    "cpu": dict(tile=32, width=32, n_train=10000, n_test=64, crop_scale=(0.5, 1.0),
                meta=MetaConfig(first_order=True, outer_lr=5e-5, pretrain_steps=1000,
                                retrain_steps=200, rounds=12, val_every=250),
                narrow_every=2, trace_level=8),
    "paper": dict(tile=178, width=256, n_train=0, n_test=500, crop_scale=None,
                  meta=MetaConfig(pretrain_steps=150_000, retrain_steps=30_000, rounds=20),
                  narrow_every=2, trace_level=14),
    # A seconds-long run of the whole pipeline, for the test suite.
    "smoke": dict(tile=8, width=8, n_train=40, n_test=4, crop_scale=(0.5, 1.0),
                  meta=MetaConfig(first_order=True, outer_lr=1e-3, pretrain_steps=4,
                                  retrain_steps=2, rounds=4, val_every=2),
                  narrow_every=2, trace_level=2),
}
W0 = {"siren": 30.0}


def u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)


def test_signals(sc: dict, source: str | None) -> np.ndarray:
    """Held-out signals from the development photos (never seen in training)."""
    paths = image_paths(source) if source else dev_photos()
    if sc["crop_scale"] is None:
        return u8(centre_crops(paths, sc["tile"]))[:sc["n_test"]]
    return u8(random_crops(paths, sc["tile"], sc["n_test"], seed=12345,
                           scale_range=sc["crop_scale"]))


class Results:
    """A JSON results file whose rows are keyed, so reruns skip finished work."""

    def __init__(self, path: Path, header: dict):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {**header, "rows": []}
        self.keys = {self._key(r) for r in self.data["rows"]}

    @staticmethod
    def _key(r: dict) -> str:
        return json.dumps({k: r[k] for k in ("kind", "family", "seed", "method", "level")
                           if k in r}, sort_keys=True)

    def has(self, **key) -> bool:
        return self._key(key) in self.keys

    def add(self, row: dict) -> None:
        self.data["rows"].append(row)
        self.keys.add(self._key(row))
        tmp = self.path.with_name(self.path.name + ".part")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def _trained(path: Path, fn) -> SharedModel:
    ckpt = path.with_suffix(".ckpt.safetensors")
    if path.exists() and not ckpt.exists():
        return SharedModel.load(path)
    m = fn(resume=ckpt.exists())
    ckpt.unlink(missing_ok=True)
    return m


def fig2(args) -> None:
    sc = SCALES[args.scale]
    arch = Arch(family=args.family, width=sc["width"], depth=4, w0=W0.get(args.family, 30.0))
    meta = sc["meta"]
    work = args.work / f"{args.scale}-{args.family}"
    work.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"paper-fig2-{args.family}-{args.scale}.json"
    res = Results(out, {
        "description": f"Figure 2 ({args.family}): PSNR after {args.steps} Adam steps vs "
                       "parameters, six methods", "scale": args.scale,
        "settings": {"tile": sc["tile"], "arch": arch.to_dict(),
                     "meta": dataclasses.asdict(meta), "steps": args.steps, "lr": args.lr},
        "command": "python benchmarks/paper.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])})
    test = test_signals(sc, args.test_source)
    cfg = FitConfig(steps=args.steps, lr=args.lr)
    levels = list(range(0, meta.rounds + 1, sc["narrow_every"]))
    for seed in args.seeds:
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
        narrow = {}
        for lv in levels[1:]:
            w = narrow_width(arch, params[lv])
            p = work / f"narrow-w{w}-s{seed}.safetensors"
            narrow[lv] = _trained(p, lambda resume, w=w, p=p: train_dense_narrow(
                arch, w, sc["tile"], tr, va, m_cfg, p, resume=resume, log=log))
        print(f"seed {seed}: dense-narrow ready ({time.perf_counter() - t0:.0f} s)", flush=True)

        def run(method, at, **kw):  # `at`: the sparse level whose size this row matches
            key = dict(kind="fig2", family=args.family, seed=seed, method=method, level=at)
            if res.has(**key):
                return
            t = time.perf_counter()
            r = evaluate(method, test, cfg=cfg, seed=seed, **kw)
            res.add({**key, "params": r.params, "mean": r.mean, "psnr": r.psnr,
                     "seconds": time.perf_counter() - t})
            print(f"seed {seed} level {at:>2} {method:<15} params {r.params:>6} "
                  f"PSNR {r.mean:6.2f}", flush=True)
        for lv in levels:
            run("meta-sparse", lv, model=sparse, level=lv)
            run("random-pruning", lv, model=rand, level=lv)
            nm = narrow.get(lv, sparse if lv == 0 else None)
            run("dense-narrow", lv, model=nm, level=0)
            run("scratch", lv, model=nm)
            if lv:
                run("maml-oneshot", lv, model=sparse, imp_rounds=lv)
                run("maml-imp", lv, model=sparse, imp_rounds=lv)
        # Figure 3: PSNR at every step for the sparse level and its dense-narrow match.
        tl = sc["trace_level"]
        for method, model, lv in (("meta-sparse", sparse, tl), ("dense-narrow", narrow[tl], 0)):
            key = dict(kind="fig3", family=args.family, seed=seed, method=method, level=tl)
            if res.has(**key):
                continue
            net = model.net(lv)
            from inrcodec.tiling import tile_coords
            coords = tile_coords(sc["tile"])
            curve = []
            r0 = evaluate(method, test, model=model, level=lv, cfg=FitConfig(steps=0))
            curve.append(r0.mean)
            evaluate(method, test, model=model, level=lv, cfg=cfg, trace=lambda step, th:
                     curve.append(float(np.mean(psnr_rows(net, th, coords, test)))))
            res.add({**key, "params": net.n_params, "curve": curve, "psnr_at_2": curve[2]})
            print(f"seed {seed} trace {method}: step 2 {curve[2]:.2f} dB, step "
                  f"{len(curve) - 1} {curve[-1]:.2f} dB", flush=True)


def ticket(args) -> None:
    """Section 5.3: IMP with rewinding on one photo vs dense networks of matched size."""
    path = sorted(dev_photos())[args.photo]
    img = u8(centre_crops([path], args.size))[0]
    arch = Arch(width=args.width, depth=4, w0=args.w0)
    out = args.out_dir / f"paper-ticket-{args.size}.json"
    res = Results(out, {
        "description": f"Section 5.3: winning ticket (IMP with rewinding to init) vs dense "
                       f"narrow, peak PSNR over {args.ticket_steps} Adam steps (paper: 50k)",
        "image": path.name, "settings": {"size": args.size, "arch": arch.to_dict(),
                                         "steps": args.ticket_steps, "lr": args.ticket_lr,
                                         "rounds": args.rounds},
        "command": "python benchmarks/paper.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])})
    if not res.has(kind="ticket", method="winning-ticket"):
        rows = winning_ticket(arch, img, steps=args.ticket_steps, rounds=args.rounds,
                              lr=args.ticket_lr)
        res.add({"kind": "ticket", "method": "winning-ticket", "rows": rows})
        for r in rows:
            print(f"ticket round {r['round']:>2} params {r['params']:>6} peak {r['peak_psnr']:.2f}",
                  flush=True)
    params = ladder_params(arch, args.rounds)
    for lv in range(0, args.rounds + 1, 2):
        w = narrow_width(arch, params[lv])
        if res.has(kind="ticket", method="dense-narrow", level=lv):
            continue
        r = dense_fit_peak(dataclasses.replace(arch, width=w), img, steps=args.ticket_steps,
                           lr=args.ticket_lr)
        res.add({"kind": "ticket", "method": "dense-narrow", "level": lv, "width": w, **r})
        print(f"dense-narrow width {w:>3} params {r['params']:>6} peak {r['peak_psnr']:.2f}",
              flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fig2", help="Figure 2 / Figure 3 / Appendix B")
    f.add_argument("--family", choices=["siren", "ffn"], default="siren")
    f.add_argument("--seeds", default="0,1,2")
    f.add_argument("--scale", choices=list(SCALES), default="cpu")
    f.add_argument("--steps", type=int, default=100)
    f.add_argument("--lr", type=float, default=1e-4)
    f.add_argument("-v", "--verbose", action="store_true")
    f.add_argument("--source", default="endless-sky", help="training photos")
    f.add_argument("--test-source", help="held-out photos (default: the development set)")
    t = sub.add_parser("ticket", help="Section 5.3")
    t.add_argument("--photo", type=int, default=0, help="index into the sorted dev photos")
    t.add_argument("--size", type=int, default=512)
    t.add_argument("--width", type=int, default=64)
    t.add_argument("--w0", type=float, default=30.0)
    t.add_argument("--rounds", type=int, default=10)
    t.add_argument("--ticket-steps", type=int, default=200)
    t.add_argument("--ticket-lr", type=float, default=1e-3)
    for p in (f, t):
        p.add_argument("--out-dir", type=Path, default=Path("benchmarks/results"))
        p.add_argument("--work", type=Path, default=Path("benchmarks/work"))
        p.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.cmd == "fig2":
        args.seeds = [int(s) for s in args.seeds.split(",")]
        fig2(args)
    else:
        ticket(args)


if __name__ == "__main__":
    main()
