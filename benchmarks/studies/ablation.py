"""Issue 22's ablation table: each part of the latent mode's model and fit turned off (or
changed) alone, on 8 development photos at full size, default effort, against the default.

Each row is a bench.py run on dev:8 at qualities 5 / 30 / 55 / 80, one thread, whose
BD-rate (pchip) is taken against the default's run on the same photos; its cost is the
fit's step time as a ratio to the default's, timed here one after the other on one photo
(`time`), and the decoder's synthesis MACs per pixel (the model's ladder).

    python benchmarks/studies/ablation.py commands --dir D      # the bench runs to make
    python benchmarks/studies/ablation.py make-random D/latent-random.safetensors \\
        --model M                                   # M's ARM and architecture, random synthesis
    python benchmarks/studies/ablation.py make-arch D/latent-bicubic.safetensors \\
        --set upsample=bicubic                      # the same weights, upsampled bicubically
    python benchmarks/studies/ablation.py time --out D/step-time.json --threads 2
    python benchmarks/studies/ablation.py report --dir D --out benchmarks/results/ablation-0.10.json

`report` reads D/rd-NAME.json for each row (NAME below); rows missing from D are left out.
A row with a `rows_from` takes its runs from that results file (the rows of the 8 photos).

The 0.10.0 runs are kept in benchmarks/results/ablation-0.10/ (the default's rows are the
32-photo run's, benchmarks/results/rd-inrcodec-latent-0.10.json; the 24-wide model's, the
0.9.0 run's, rd-inrcodec-latent-0.9.json, removed in issue 37: git show a0e75cf:PATH).

Result: benchmarks/results/ablation-0.10.json (docs/latent-mode.md, "Ablations (0.10.0)"):
against the default, uniform-noise rounding +29.8% BD-rate, a random synthesis init
+27.5%, one learning rate for all grids +25.4%, 300 steps +21.1%, level 3 +6.8%, the
24-wide model +3.6%, no straight-through phase -10.8% (8 of 8 photos better); step times
in benchmarks/results/ablation-0.10-step-time.json.

Result: benchmarks/results/ablation-0.11.json: bicubic upsampling with the shipped weights
as they are (make-arch --set upsample=bicubic), +1.85% BD-rate against the 0.10.0 default
(no straight-through phase) on dev:8, worse on 8 of 8 photos; a model trained with bicubic
upsampling (benchmarks/models/latent-bicubic16.safetensors), BD-rate in the same file.

Result: benchmarks/results/ablation-0.11-step-time.json (`time --rows fit-0.10,no-soap,
no-clip --repeats 6 --steps 150`): 0.10's fit (Adam, unclipped) steps in 0.87x the time of
0.11's default (SOAP, clipped). Their BD-rates: benchmarks/studies/fit_parts.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import harness, report  # noqa: E402

QUALITIES = "5,30,55,80"
IMAGES = "dev:8"
# name: (what it is, bench run arguments, LatentFit overrides for `time`)
ROWS = {
    "default": ("the default (900 steps, level 0)", [], {}),
    "noise": ("rounding modelled by uniform noise (0.8.0's fit), not noisy soft rounding",
              ["--fit", "quantizer=noise"], {"quantizer": "noise"}),
    "one-lr": ("one learning rate for all grids (coarse_lr_factor 1, not 6)",
               ["--fit", "coarse_lr_factor=1"], {"coarse_lr_factor": 1.0}),
    "no-ste": ("no straight-through rounding phase at the end (ste_fraction 0, not 0.2)",
               ["--fit", "ste_fraction=0"], {"ste_fraction": 0.0}),
    "all-pixels": ("every pixel each step (stride 1), not a quarter",
                   ["--fit", "stride=1"], {"stride": 1}),
    "all-blocks": ("the rate of every block each step (rate_sample 1), not half",
                   ["--fit", "rate_sample=1"], {"rate_sample": 1.0}),
    "no-soap": ("Adam for the synthesis (its gradient still clipped), not SOAP",
                ["--fit", "net_optimizer=adam"], {"net_optimizer": "adam"}),
    "no-clip": ("the synthesis's gradient not clipped (clip 0, not 0.1)",
                ["--fit", "clip=0"], {"clip": 0.0}),
    "fit-0.10": ("0.10's fit: Adam for the synthesis, unclipped",
                 ["--fit", "net_optimizer=adam", "--fit", "clip=0"],
                 {"net_optimizer": "adam", "clip": 0.0}),
    "fast": ("300 steps (--effort fast)", ["--steps", "300"], {}),
    "random-init": ("a random synthesis init (the same ARM), not the meta-learned one",
                    ["--model", "{dir}/latent-random.safetensors"], {}),
    "level3": ("the ladder's level 3 (3 rounds of 20% pruning), not level 0",
               ["--levels", "3"], {}),
    "bicubic": ("bicubic upsampling of the grids (the same weights, not retrained), not "
                "bilinear", ["--model", "{dir}/latent-bicubic.safetensors"], {}),
    "bilinear": ("bilinear upsampling (the 0.11 model: the same synthesis and ARM), not the "
                 "learned cascade", ["--model", "inrcodec/models/latent-0.11.safetensors"], {}),
    "bicubic-trained": ("bicubic upsampling, a model trained with it (`inrcodec train "
                        "endless-sky OUT --mode latent --width 16 --upsample bicubic "
                        "--threads 1`), not the shipped bilinear one",
                        ["--model", "benchmarks/models/latent-bicubic16.safetensors"], {}),
}


def make_arch(out: str, model: str | None, changes: list[str]) -> None:
    """`model` (default: the shipped one) with architecture fields changed (e.g.
    upsample=bicubic): the same weights, read differently."""
    from inrcodec.codec.latent.model import load_latent_model
    m = load_latent_model(model)
    kv = dict(c.split("=", 1) for c in changes)
    arch = replace(m.arch, **{k: type(getattr(m.arch, k))(v) for k, v in kv.items()})
    r = replace(m, arch=arch, _hash=None)
    Path(out).write_bytes(r.to_bytes())
    print(f"{out}: {m.hash[:12]} with {kv}; model {load_latent_model(out).hash[:12]}")


def commands(d: str, model: str | None, images: str = IMAGES) -> None:
    for name, (_, args, _) in ROWS.items():
        args = [a.replace("{dir}", d) for a in args]
        m = [] if model is None or "--model" in args else ["--model", model]
        print(" ".join(["python benchmarks/bench.py run --codecs inrcodec --mode latent",
                        f"--qualities {QUALITIES} --images {images} --threads 1", *m, *args,
                        f"--out {d}/rd-{name}.json"]))


def step_time(out: str, model: str | None, threads: int, steps: int, repeats: int,
              others: dict[str, str], argv: list[str], images: str = "dev",
              photo: str = "mate-backgrounds-Aqua", only: list[str] | None = None) -> None:
    """ms per fit step of each fit override, of level 3 and of each other model (NAME ->
    path, its level 0), on one photo (the first of `images` whose name holds `photo`; by
    default the 768x512 Aqua), in turns with the default (default, variant, default, ...)
    so that drift hits both; and the decode of each model."""
    import torch

    from inrcodec.codec.latent.fit import Start, fit
    from inrcodec.codec.latent.model import load_latent_model
    from inrcodec.codec.latent.config import LatentFit, latent_lambda
    torch.set_num_threads(threads)
    m = load_latent_model(model)
    name, img = next((k, p) for k, p in harness.load_images(images) if photo in k)
    base = LatentFit(steps=steps, lam=latent_lambda(55))

    def once(fs, level, mm=m):
        t = time.perf_counter()
        fit(img, mm.arch, fs, None, Start.of(mm, level))
        return (time.perf_counter() - t) / fs.steps * 1e3

    variants = {k: (replace(base, **v[2]), 0, m) for k, v in ROWS.items() if v[2]}
    variants["level3"] = (base, 3, m)
    for k, path in others.items():
        variants[k] = (base, 0, load_latent_model(path))
    if only:
        variants = {k: v for k, v in variants.items() if k in only}
    once(base, 0)  # warm-up
    res = {}
    for k, (fs, level, mm) in variants.items():
        a, b = [], []
        for _ in range(repeats):
            a.append(once(base, 0))
            b.append(once(fs, level, mm))
        res[k] = {"ms": min(b), "default_ms": min(a), "ratio": min(b) / min(a)}
        print(f"{k}: {min(b):.1f} ms a step, default {min(a):.1f} ms, x{min(b) / min(a):.2f}",
              flush=True)
    # decode: a short fit's file per model, each decoded in turns with the default's
    from inrcodec import decode_array
    from inrcodec.codec.latent.codec import compress
    short = replace(base, steps=30)
    files = {"default": compress(img, "RGB", None, short, m, 0)}
    files.update({k: compress(img, "RGB", None, short, v[2], 0)
                  for k, v in variants.items() if k in others})
    dec = {k: [] for k in files}
    for _ in range(5):
        for k, data in files.items():
            t = time.perf_counter()
            decode_array(data, model=m if k == "default" else variants[k][2])
            dec[k].append(time.perf_counter() - t)
    for k, v in dec.items():
        res.setdefault(k, {})["decode_s"] = min(v)
        res[k]["decode_ratio"] = min(v) / min(dec["default"])
        print(f"decode {k}: {min(v):.3f} s, x{min(v) / min(dec['default']):.2f}", flush=True)
    Path(out).write_text(json.dumps({"command": harness.command_line(__file__, argv), "photo": name,
                                     "model": m.hash, "threads": threads, "steps": steps,
                                     "rows": res}, indent=1) + "\n")


def _f(v, fmt: str) -> str:
    """v formatted, or n/a where the BD metric is undefined (curves that do not overlap)."""
    return "n/a" if v is None else format(v, fmt)


def do_report(d: Path, out: str, model: str | None, times: str | None,
              rows_from: dict[str, str], others: list[str], images: str = IMAGES) -> None:
    from inrcodec.codec.latent.model import load_latent_model
    runs = {k: harness.load_result(d / f"rd-{k}.json") for k in ROWS if (d / f"rd-{k}.json").exists()}
    for k, p in rows_from.items():
        runs[k] = harness.load_result(p)
    images = sorted(k for k, _ in harness.load_images(images))
    base = runs["default"]
    st = json.loads(Path(times).read_text())["rows"] if times else {}
    m = load_latent_model(model)
    lad = m.ladder()
    ladders = {x.hash: x.ladder() for x in [m, *map(load_latent_model, others)]}
    if (d / "latent-random.safetensors").exists():
        x = load_latent_model(d / "latent-random.safetensors")
        ladders[x.hash] = x.ladder()
    res = {"images": images, "model": m.hash, "rows": {}}
    print("| change | BD-rate vs default | BD-PSNR | photos worse | step time | MACs/px |")
    print("|---|---|---|---|---|---|")
    for k, r in runs.items():
        if k == "default":
            continue
        nq = len(QUALITIES.split(","))
        ims = [i for i in images if sum(x["image"] == i for x in r["rows"]) >= nq]
        if not ims:  # a run still under way
            continue
        c = report.bd_compare(harness.curve(base, images=ims), harness.curve(r, images=ims), "pchip")
        per = [report.bd_compare(harness.curve(base, images=[i]), harness.curve(r, images=[i]),
                                 "pchip")["bd_rate"] for i in ims]
        worse = sum(v is not None and v > 0 for v in per)
        level = r["settings"].get("level", 0)
        macs = (ladders[r["settings"]["model"]][level]["macs_per_pixel"]
                if r["settings"]["model"] in ladders else None)
        res["rows"][k] = {"what": ROWS.get(k, (k,))[0], "bd_rate": c["bd_rate"],
                          "bd_psnr": c["bd_psnr"], "photos": len(ims), "photos_worse": worse,
                          "per_photo": dict(zip(ims, per)), "step_ratio": st.get(k, {}).get("ratio"),
                          "macs_per_pixel": macs, "command": r.get("command"),
                          "steps": r["settings"].get("steps")}
        s = res["rows"][k]
        print(f"| {k} | {_f(s['bd_rate'], '+.2f')}% | {_f(s['bd_psnr'], '+.3f')} dB | "
              f"{worse}/{len(ims)} | "
              f"{'x%.2f' % s['step_ratio'] if s['step_ratio'] else '-'} | {macs or '-'} |")
    res["default_macs_per_pixel"] = lad[0]["macs_per_pixel"]
    Path(out).write_text(json.dumps(res, indent=1) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("commands")
    c.add_argument("--dir", required=True)
    c.add_argument("--model")
    c.add_argument("--images", default=IMAGES, help=f"bench.py's --images (default {IMAGES})")
    mk = sub.add_parser("make-random")
    mk.add_argument("out")
    mk.add_argument("--model")
    mk.add_argument("--seed", type=int, default=1)
    ma = sub.add_parser("make-arch")
    ma.add_argument("out")
    ma.add_argument("--model")
    ma.add_argument("--set", action="append", required=True, metavar="FIELD=VALUE",
                    help="a LatentArch field to change (e.g. upsample=bicubic)")
    t = sub.add_parser("time")
    t.add_argument("--out", required=True)
    t.add_argument("--model")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--steps", type=int, default=120)
    t.add_argument("--repeats", type=int, default=2)
    t.add_argument("--other-model", action="append", default=[], metavar="NAME=PATH",
                   help="also time this model's level 0 (e.g. width24=inrcodec/models/latent-24.safetensors)")
    t.add_argument("--images", default="dev", help="where the photo is (default: dev)")
    t.add_argument("--rows", help="time only these rows (comma list; default: all)")
    t.add_argument("--photo", default="mate-backgrounds-Aqua",
                   help="the first photo whose name holds this (default: mate-backgrounds-Aqua)")
    rp = sub.add_parser("report")
    rp.add_argument("--dir", required=True, help="folder of rd-NAME.json bench runs")
    rp.add_argument("--out", required=True)
    rp.add_argument("--model")
    rp.add_argument("--times", help="the `time` output")
    rp.add_argument("--rows-from", action="append", default=[], metavar="NAME=FILE",
                    help="a row's runs from another results file (e.g. width24=rd-....json)")
    rp.add_argument("--other-model", action="append", default=[],
                    help="a model file a row ran with, for its MACs per pixel")
    rp.add_argument("--images", default=IMAGES, help=f"the runs' photos (default {IMAGES})")
    argv = sys.argv[1:] if argv is None else list(argv)
    a = ap.parse_args(argv)
    if a.cmd == "commands":
        commands(a.dir, a.model, a.images)
    elif a.cmd == "make-random":
        from benchmarks.studies.seed_claims import make_random
        make_random(a.out, a.seed, a.model)
    elif a.cmd == "make-arch":
        make_arch(a.out, a.model, a.set)
    elif a.cmd == "time":
        step_time(a.out, a.model, a.threads, a.steps, a.repeats,
                  dict(x.split("=", 1) for x in a.other_model), argv, a.images, a.photo,
                  a.rows.split(",") if a.rows else None)
    else:
        do_report(Path(a.dir), a.out, a.model, a.times,
                  dict(x.split("=", 1) for x in a.rows_from), a.other_model, a.images)


if __name__ == "__main__":
    main()
