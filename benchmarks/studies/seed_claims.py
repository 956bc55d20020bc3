"""The seed's two claims in the latent mode, on 8 development photos at full size:
meta-learned against random synthesis init over a steps curve, and sparse against
dense-narrow at equal MACs per pixel.

Runs (each a bench.py run at qualities 5/30/55/80 on dev:8, one thread; `make-random`
writes the random-init model: the shipped model's architecture and entropy model, its
synthesis a seeded random init, one level):

    python benchmarks/studies/seed_claims.py make-random D/latent-random.safetensors
    python benchmarks/bench.py run --codecs inrcodec --mode latent --qualities 5,30,55,80 \\
        --images dev:8 --threads 1 --steps N --model M --out D/rd-NAME.json
      (meta-N: the shipped model, random-N: the random one, N in 100 / 300 / 900;
       level2: the shipped model with `--levels 2`; narrow12: `--model
       benchmarks/models/latent-narrow12.safetensors`, both at the default 900 steps)
    python benchmarks/studies/seed_claims.py report --dir D --out OUT.json \\
        --full benchmarks/results/rd-inrcodec-latent-0.10-no-ste.json

meta-900 is the shipped model at the default: its rows come from `--full` when --dir has
no rd-meta-900.json. The dense 12-wide synthesis (288 MACs/px, against level 2's 286) is
trained with the shipped model's recipe and steps: `inrcodec train endless-sky OUT --mode
latent --width 12 --rounds 0 --pretrain-steps 24500 --threads 1`. 0.10's runs are kept in
benchmarks/results/seed-claims-0.10/ (the random model:
benchmarks/results/ablation-0.10/latent-random.safetensors, `ab82638dd25e`; random-900 in
two halves of qualities merged by `bench.py merge`).

Result: benchmarks/results/seed-claims-0.10.json (0.10's model and fit): meta-learned
against random init -30.7% / -24.2% / -17.8% BD-rate at 100 / 300 / 900 steps (8/8
photos each); sparse level 2 against dense 12-wide -3.79% (+0.16 dB; sparse ahead on 6/8
photos); level 2 against level 0 +4.50%, dense 12-wide against level 0 +8.59%.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import harness, report  # noqa: E402

STEPS = (100, 300, 900)
# (sparse run, dense-narrow run, (their descriptions, the shipped level 0's)): 0.9's
# 24-wide model, 0.10's 16-wide one
PAIRS = (("level3", "narrow16", ("sparse level 3 (442 MACs/px)", "dense 16-wide (448)",
                                 "level 0 (864 MACs/px)")),
         ("level2", "narrow12", ("sparse level 2 (286 MACs/px)", "dense 12-wide (288)",
                                 "level 0 (448 MACs/px)")))


def make_random(out: str, seed: int, model: str | None = None) -> None:
    """`model`'s (default: the shipped one) architecture and ARM, a seeded random synthesis."""
    from inrcodec.codec.latent.model import load_latent_model, scratch_latent_model
    m = load_latent_model(model)
    r = scratch_latent_model(m.arch, n_levels=1, seed=seed, arm_params=m.arm)
    Path(out).write_bytes(r.to_bytes())
    print(f"{out}: random synthesis (seed {seed}), the ARM of {m.hash[:12]}; model {r.hash[:12]}")


def _f(v, fmt: str) -> str:
    """v formatted, or n/a where the BD metric is undefined (curves that do not overlap)."""
    return "n/a" if v is None else format(v, fmt)


def bd(anchor: dict, test: dict, images: list[str]) -> dict:
    """pchip BD-rate (%) and BD-PSNR (dB) of test against anchor over `images`, and per photo."""
    def one(ims):
        d = report.bd_compare(harness.curve(anchor, images=ims), harness.curve(test, images=ims),
                              "pchip")
        return {"bd_rate": d["bd_rate"], "bd_psnr": d["bd_psnr"]}
    out = one(images)
    out["per_photo"] = {i: one([i]) for i in images}
    return out


def mean_point(res: dict, images: list[str]) -> list[dict]:
    by_q: dict = {}
    for r in res["rows"]:
        if r["image"] in images:
            by_q.setdefault(r["quality"], []).append(r)
    return [{"quality": q, "bpp": sum(r["bpp"] for r in rs) / len(rs),
             "psnr": sum(r["psnr"] for r in rs) / len(rs),
             "encode_s": sum(r["encode_s"] for r in rs) / len(rs)}
            for q, rs in sorted(by_q.items())]


def do_report(d: Path, out: str, full: str) -> None:
    runs = {p.stem[3:]: harness.load_result(p) for p in sorted(d.glob("rd-*.json"))}
    if "meta-900" not in runs:
        runs["meta-900"] = harness.load_result(full)
    images = sorted({r["image"] for r in runs["random-100"]["rows"]} if "random-100" in runs
                    else {r["image"] for r in next(runs[p[0]] for p in PAIRS
                                                   if p[0] in runs)["rows"]})
    res = {"images": images, "runs": {k: {"command": v.get("command"),
                                          "model": v["settings"].get("model", "")[:12],
                                          "steps": v["settings"].get("steps"),
                                          "mean": mean_point(v, images)}
                                      for k, v in runs.items()}}
    res["meta_vs_random"] = {}
    for n in STEPS:
        if f"meta-{n}" in runs and f"random-{n}" in runs:
            b = bd(runs[f"random-{n}"], runs[f"meta-{n}"], images)
            res["meta_vs_random"][n] = b
            wins = sum(v["bd_rate"] is not None and v["bd_rate"] < 0 for v in b["per_photo"].values())
            print(f"{n} steps: meta-learned against random init: BD-rate {_f(b['bd_rate'], '+.2f')}%, "
                  f"BD-PSNR {_f(b['bd_psnr'], '+.3f')} dB; ahead on {wins}/{len(images)} photos")
    for sparse, narrow, what in PAIRS:
        if sparse not in runs or narrow not in runs:
            continue
        b = bd(runs[narrow], runs[sparse], images)
        res[f"{sparse}_vs_{narrow}"] = b
        if sparse == "level3":  # the 0.9 report's key
            res["sparse_vs_narrow"] = b
        wins = sum(v["bd_rate"] is not None and v["bd_rate"] < 0 for v in b["per_photo"].values())
        print(f"{what[0]} against {what[1]}: BD-rate {_f(b['bd_rate'], '+.2f')}%, BD-PSNR "
              f"{_f(b['bd_psnr'], '+.3f')} dB; sparse ahead on {wins}/{len(images)} photos")
        for i, v in b["per_photo"].items():
            print(f"  {i}: {_f(v['bd_rate'], '+.2f')}% {_f(v['bd_psnr'], '+.3f')} dB")
        for name in (sparse, narrow):  # each against the shipped model's level 0
            b = bd(runs["meta-900"], runs[name], images)
            res[f"{name}_vs_level0"] = b
            wins = sum(v["bd_rate"] is not None and v["bd_rate"] < 0
                       for v in b["per_photo"].values())
            print(f"{name} against {what[2]}: BD-rate {_f(b['bd_rate'], '+.2f')}%, "
                  f"BD-PSNR {_f(b['bd_psnr'], '+.3f')} dB; ahead on {wins}/{len(images)} photos")
    for k in sorted(res["runs"]):
        pts = " ".join(f"q{p['quality']} {p['bpp']:.3f}/{p['psnr']:.2f}" for p in
                       res["runs"][k]["mean"])
        print(f"{k}: {pts}")
    Path(out).write_text(json.dumps(res, indent=1) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-random")
    mk.add_argument("out")
    mk.add_argument("--seed", type=int, default=1)
    mk.add_argument("--model", help="the model whose architecture and ARM to keep (default: "
                    "the shipped one)")
    rp = sub.add_parser("report")
    rp.add_argument("--dir", required=True, help="folder of rd-NAME.json bench runs")
    rp.add_argument("--out", required=True)
    rp.add_argument("--full", default=str(ROOT / "benchmarks/results/rd-inrcodec-latent-0.10-no-ste.json"),
                    help="the shipped model's default run, for meta-900 when --dir has no "
                    "rd-meta-900.json (default: 0.10.0's 32-photo run)")
    a = ap.parse_args(argv)
    if a.cmd == "make-random":
        make_random(a.out, a.seed, a.model)
    else:
        do_report(Path(a.dir), a.out, a.full)


if __name__ == "__main__":
    main()
