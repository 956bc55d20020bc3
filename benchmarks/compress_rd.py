"""Rate-distortion of inrcodec's storage modes (issue 5) and JPEG on development photos.

    python benchmarks/compress_rd.py --images 4 --crop 256 --levels 15,11,7 \
        --scales 2,1,0.5 --sparse-delta-model inrcodec/models/sparse-delta.safetensors \
        --sd-levels 15,11,7 --bias-only-level 16 --out benchmarks/results/compress-rd

Per image and level, one plain fit of --steps Adam steps at --lr gives the fp16 + zstd
baseline (format version 1's way of storing values, here in a version-2 file). For every
--scales value the encoder's own fit (inrcodec.codec.weights.session.Session: the last 20% of the steps
quantiser-aware when that pays, else plain) is stored with zstd (delta-zstd), with the
range coder (delta-range), and the smaller of the two (delta-auto, the default). Two
ablations: the plain fit quantised as it is (delta-noqat) and always 20% quantiser-aware
steps (delta-qat), both with the auto coder. Sparse-delta and bias-only levels of a
sparse-delta model run the same way. JPEG: Pillow (libjpeg) at --jpeg-qualities, 4:2:0.

Writes one results file per codec into --out (benchmarks/harness.py's schema; inrcodec
modes sweep level x step scale, JPEG its quality). One fit serves several storage modes, so
this does its own loop rather than harness.run. Tables, BD-rates and plots: the operational
curve (upper convex hull) of each mode, e.g.

    python benchmarks/bench.py table benchmarks/results/compress-rd/*.json --front hull \
        --anchor benchmarks/results/compress-rd/inrcodec-fp16-zstd.json
Images: 256x256 (--crop) centre crops of --images development photos, spread over the
three sources as in ladder.py (harness.dev_images).

A tiny run to check that it works (seconds):

    OMP_NUM_THREADS=1 python benchmarks/compress_rd.py --quick --out /tmp/compress-rd-quick
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import inrcodec  # noqa: E402
from inrcodec.codec.weights.quantiser import DeltaQuantiser, Fp16Quantiser  # noqa: E402
from inrcodec.codec.weights.session import Session, Settings  # noqa: E402
from inrcodec.config import QuantConfig  # noqa: E402
from inrcodec.io import as_loaded  # noqa: E402
from inrcodec.metrics import psnr  # noqa: E402
from benchmarks import harness  # noqa: E402


def _decode_time(data, model) -> float:
    t = time.perf_counter()
    inrcodec.decode_array(data, model=model)
    return time.perf_counter() - t


def inr_rows(name, img, model, levels, scales, steps, lr, tag):
    """Rows for every storage mode of one model on one image.

    One session per image: the plain fit of a level is run once (to 60%, 80% and 100% of
    the steps, each continuing the last) and shared by the settings that need it.
    encode_s is the time of the fits a setting needs (the shared plain fit counted in
    full, which is what a lone encode of it costs) plus its coding."""
    sess = Session([as_loaded(img)], model, torch.device("cpu"))
    out = {}
    for level in levels:
        net = model.net(level)
        t = time.perf_counter()
        full = sess.plain_fit(level, steps, lr)[0]  # the baseline's fit
        t_plain = time.perf_counter() - t
        n_tiles = sess.images[0].targets.shape[0]
        base = dict(image=name, level=level, params=net.n_params * n_tiles,
                    lr=lr, steps=steps)

        def add(codec, data, enc_s, **extra):
            out.setdefault(codec, []).append(dict(
                base, bytes=len(data), bpp=8 * len(data) / img.shape[0] / img.shape[1],
                psnr=sess.measure(0, data), encode_s=enc_s, decode_s=_decode_time(data, model),
                **extra))
            r = out[codec][-1]
            print(json.dumps({"codec": codec, **{k: (round(v, 4) if isinstance(v, float) else v)
                                                 for k, v in r.items()}}), flush=True)

        s16 = Settings(level=level, steps=steps, lr=lr, quant=QuantConfig(quantizer="fp16"))
        t = time.perf_counter()
        add(f"{tag}fp16-zstd", sess.pack(0, s16, Fp16Quantiser.payload(full)),
            t_plain + time.perf_counter() - t)
        for scale in scales:
            # ablation 1: the plain fit quantised as it is (auto coder)
            t = time.perf_counter()
            s = Settings(level=level, steps=steps, lr=lr, quant=QuantConfig(step_scale=scale))
            dq = DeltaQuantiser.from_fit(net, model.levels[level].theta0, full, scale)
            add(f"{tag}delta-noqat", sess.pack(0, s, dq.payload(full, "auto")),
                t_plain + time.perf_counter() - t, step_scale=scale)
            # ablation 2: always 20% quantiser-aware steps (auto coder)
            t = time.perf_counter()
            forced = Settings(level=level, steps=steps, lr=lr,
                              quant=QuantConfig(step_scale=scale, qat_fraction=0.2))
            theta, dq, _ = sess.fitted(forced)[0]
            t_forced = time.perf_counter() - t
            add(f"{tag}delta-qat", sess.pack(0, forced, dq.payload(theta, "auto")),
                t_plain + t_forced, step_scale=scale)
            # the encoder's default: quantiser-aware steps when they pay (Session.use_qat),
            # stored with each coder
            t = time.perf_counter()
            theta, dq, qat = sess.fitted(s)[0]
            t_fit = t_plain + (t_forced if qat else 0.0) + time.perf_counter() - t
            for coder in ("zstd", "range"):
                t = time.perf_counter()
                data = sess.pack(0, s, dq.payload(theta, coder))
                add(f"{tag}delta-{coder}", data, t_fit + time.perf_counter() - t,
                    step_scale=scale, qat=qat)
    return out


def auto_rows(zstd_rows: list[dict], range_rows: list[dict]) -> list[dict]:
    """What the encoder's default coder choice ("auto": the smaller file) gives: the same
    integers, so the same PSNR, at the smaller of the two sizes."""
    out = []
    for z, r in zip(zstd_rows, range_rows):
        assert (z["image"], z["level"], z["step_scale"]) == (r["image"], r["level"],
                                                             r["step_scale"])
        assert abs(z["psnr"] - r["psnr"]) < 1e-9
        best = dict(z if z["bytes"] <= r["bytes"] else r)
        best["coder"] = "zstd" if z["bytes"] <= r["bytes"] else "range"
        best["encode_s"] = max(z["encode_s"], r["encode_s"])  # both were coded
        out.append(best)
    return out


def derive_auto(directory: Path) -> None:
    """Add the delta-auto codec files to an existing results directory."""
    for tag in ("", "sparse-", "biasonly-"):
        fz = directory / f"inrcodec-{tag}delta-zstd.json"
        fr = directory / f"inrcodec-{tag}delta-range.json"
        if fz.exists() and fr.exists():
            dz, dr = json.loads(fz.read_text()), json.loads(fr.read_text())
            doc = dict(dr, codec=f"inrcodec-{tag}delta-auto",
                       description=(PREFIX.get(tag.rstrip("-"), "") + DESCRIPTIONS["delta-auto"]),
                       rows=auto_rows(dz["rows"], dr["rows"]),
                       derived_by="python " + " ".join(shlex.quote(a) for a in sys.argv))
            harness.write_result(directory / f"{doc['codec']}.json", doc)
            print(f"{doc['codec']}: {len(doc['rows'])} rows")


def jpeg_rows(name, img, qualities):
    rows = []
    for q in qualities:
        t = time.perf_counter()
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q)
        enc = time.perf_counter() - t
        data = buf.getvalue()
        t = time.perf_counter()
        dec = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        rows.append(dict(image=name, level=q, quality=q, bytes=len(data),
                         bpp=8 * len(data) / img.shape[0] / img.shape[1], psnr=psnr(dec, img),
                         encode_s=enc, decode_s=time.perf_counter() - t, params=None))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="shared model (default: the shipped one)")
    ap.add_argument("--levels", default="15,11,7")
    ap.add_argument("--scales", default="2,1,0.5")
    ap.add_argument("--sparse-delta-model", default=None)
    ap.add_argument("--sd-levels", default="15,11,7")
    ap.add_argument("--bias-only-level", type=int, default=None)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--jpeg-qualities", default="1,3,5,8,12,20,30,50,75,90")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default=None, help="comma list: default,sparse,jpeg")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 1 image, 64x64 crop, level 15, scale 1, 3 steps, "
                         "JPEG at 2 qualities")
    ap.add_argument("--out", required=True, help="directory for the JSON files")
    ap.add_argument("--derive-auto", action="store_true",
                    help="only add delta-auto files derived from existing zstd and range ones")
    args = ap.parse_args(argv)
    if args.derive_auto:
        derive_auto(Path(args.out))
        return
    if args.quick:
        args.images, args.crop, args.levels, args.scales, args.steps = 1, 64, "15", "1", 3
        args.jpeg_qualities, args.sparse_delta_model = "10,75", None
    torch.set_num_threads(args.threads)
    only = set(args.only.split(",")) if args.only else {"default", "sparse", "jpeg"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        images = harness.dev_images(args.images, args.crop)
    except harness.BenchError as e:
        sys.exit(f"error: {e}")
    scales = [float(x) for x in args.scales.split(",")]
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    common = {"images": [n for n, _ in images], "crop": args.crop, "steps": args.steps,
              "lr": args.lr, "scales": scales, "machine": platform.processor() or platform.machine(),
              "threads": args.threads}
    jobs = []
    if "default" in only:
        jobs.append((inrcodec.load_model(args.model), [int(x) for x in args.levels.split(",")], ""))
    if "sparse" in only and args.sparse_delta_model:
        sd = inrcodec.load_model(args.sparse_delta_model)
        levels = [int(x) for x in args.sd_levels.split(",")]
        jobs.append((sd, levels, "sparse-"))
        if args.bias_only_level is not None:
            jobs.append((sd, [args.bias_only_level], "biasonly-"))
    results: dict[str, list] = {}
    models: dict[str, str] = {}
    for model, levels, tag in jobs:
        for name, img in images:
            for codec, rows in inr_rows(name, img, model, levels, scales, args.steps, args.lr,
                                        tag).items():
                results.setdefault(codec, []).extend(rows)
                models[codec] = model.hash
    if "jpeg" in only:
        q = [int(x) for x in args.jpeg_qualities.split(",")]
        results["jpeg"] = [r for name, img in images for r in jpeg_rows(name, img, q)]
    for tag in ("", "sparse-", "biasonly-"):
        if f"{tag}delta-zstd" in results and f"{tag}delta-range" in results:
            results[f"{tag}delta-auto"] = auto_rows(results[f"{tag}delta-zstd"],
                                                    results[f"{tag}delta-range"])
    for codec, rows in results.items():
        kind = codec.split("-", 1)[0]
        desc = (PREFIX[kind] + DESCRIPTIONS[codec.split("-", 1)[1]]) if kind in PREFIX \
            else DESCRIPTIONS[codec]
        name = codec if codec == "jpeg" else f"inrcodec-{codec}"
        sweep = ("quality",) if codec == "jpeg" else ("level", "step_scale")
        doc = harness.open_result(
            out / f"{name}.json", codec=name, label=name, description=desc,
            settings=dict(common, **({"model": models[codec]} if codec in models else {})),
            sweep=sweep, command=command, images=common["images"], force=True)
        doc.update(model=models.get(codec), rows=rows)
        harness.sync(doc)
        harness.write_result(out / f"{name}.json", doc)
        print(f"{name}: {len(rows)} rows -> {out / (name + '.json')}")


DESCRIPTIONS = {
    "fp16-zstd": "fp16 values + zstd (the baseline: format version 1's storage)",
    "delta-noqat": "ablation: integer deltas of the plain fit (no quantiser-aware steps), "
                   "the smaller coder",
    "delta-qat": "ablation: integer deltas, always 20% quantiser-aware steps, the smaller coder",
    "delta-zstd": "integer deltas (the encoder's fit), zstd",
    "delta-range": "integer deltas (the encoder's fit), adaptive range coder",
    "delta-auto": "integer deltas (the encoder's fit), the smaller of zstd and the range coder "
                  "(the encoder's default)",
    "jpeg": "JPEG (Pillow / libjpeg-turbo), 4:2:0",
}

PREFIX = {
    "sparse": "sparse-delta model (dense meta-learned base; the mask marks adapted weights): ",
    "biasonly": "bias-only level of the sparse-delta model (only biases adapt): ",
}

if __name__ == "__main__":
    main()
