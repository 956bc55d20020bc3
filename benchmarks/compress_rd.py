"""Rate-distortion of inrcodec's storage modes (issue 5) and JPEG on development photos.

    python benchmarks/compress_rd.py --images 4 --crop 256 --levels 15,11,7 \
        --scales 2,1,0.5 --sparse-delta-model inrcodec/models/sparse-delta.safetensors \
        --sd-levels 15,11,7 --bias-only-level 16 --out benchmarks/results/compress-rd

Per image and level, one plain fit of --steps Adam steps at --lr gives the fp16 + zstd
baseline (format version 1's way of storing values, here in a version-2 file), and its
snapshot at 80% of the steps is the start of the quantiser-aware last 20% for every
--scales value, exactly as the encoder runs them; each such fit is then stored with zstd
and with the range coder. The same fit quantised without the quantiser-aware steps is
kept as an ablation ("delta-noqat"). Sparse-delta and bias-only levels of a sparse-delta
model run the same way. JPEG: Pillow (libjpeg) at --jpeg-qualities, 4:2:0.

Writes one JSON per codec into --out (the schema of benchmarks/ladder.py: codec,
description, settings, command, model, rows[image, level, bytes, bpp, psnr, encode_s,
decode_s, params, ...]) and prints a summary; benchmarks/bd_rate.py reads the directory.
Images: 256x256 (--crop) centre crops of --images development photos, spread over the
three sources as in ladder.py.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inrcodec  # noqa: E402
from inrcodec.compress import DeltaQuantiser, QuantConfig, fp16_payload  # noqa: E402
from inrcodec.encoder import Session, Settings  # noqa: E402
from inrcodec.fit import fit  # noqa: E402
from inrcodec.imageio import as_loaded  # noqa: E402
from inrcodec.metrics import psnr  # noqa: E402
from ladder import dev_images  # noqa: E402


def _decode_time(data, model) -> float:
    t = time.perf_counter()
    inrcodec.decode_array(data, model=model)
    return time.perf_counter() - t


def inr_rows(name, img, model, levels, scales, steps, lr, tag, qat_fraction=0.2):
    """Rows for every storage mode of one model on one image."""
    sess = Session(as_loaded(img), model, torch.device("cpu"))
    out = {}
    n_qat = int(round(steps * qat_fraction))
    for level in levels:
        net, theta0 = model.net(level), model.levels[level].theta0
        snap, t_snap = {}, {}
        t0 = time.perf_counter()

        def grab(_chunk, step, theta):
            if step == steps - n_qat:
                snap["theta"] = theta.detach().cpu().clone()
                t_snap["t"] = time.perf_counter() - t0
        full = fit(net, theta0, sess.coords, sess.targets, sess.weights,
                   sess._cfg(steps, lr), on_step=grab)
        t_full = time.perf_counter() - t0
        base = dict(image=name, level=level, params=net.n_params * sess.targets.shape[0],
                    lr=lr, steps=steps)

        def add(codec, result_data, enc_s, **extra):
            out.setdefault(codec, []).append(dict(
                base, bytes=len(result_data), bpp=8 * len(result_data) / img.shape[0] / img.shape[1],
                psnr=sess.measure(result_data), encode_s=enc_s,
                decode_s=_decode_time(result_data, model), **extra))
            r = out[codec][-1]
            print(json.dumps({"codec": codec, **{k: (round(v, 4) if isinstance(v, float) else v)
                                                 for k, v in r.items()}}), flush=True)

        s16 = Settings(level=level, steps=steps, lr=lr, quant=QuantConfig(quantizer="fp16"))
        t = time.perf_counter()
        data = sess.pack(s16, fp16_payload(full))
        add(f"{tag}fp16-zstd", data, t_full + time.perf_counter() - t)
        for scale in scales:
            # ablation: the plain fit quantised as it is
            t = time.perf_counter()
            dq = DeltaQuantiser.from_fit(net, theta0, full, scale)
            s = Settings(level=level, steps=steps, lr=lr, quant=QuantConfig(step_scale=scale))
            data = sess.pack(s, dq.payload(full, "auto"))
            add(f"{tag}delta-noqat", data, t_full + time.perf_counter() - t, step_scale=scale)
            # the encoder's way: quantiser-aware last steps from the snapshot
            t = time.perf_counter()
            dq = DeltaQuantiser.from_fit(net, theta0, snap["theta"], scale)
            qcfg = QuantConfig(step_scale=scale)
            theta = fit(net, theta0, sess.coords, sess.targets, sess.weights,
                        sess._cfg(n_qat, lr * qcfg.qat_lr_factor), start=snap["theta"],
                        transform=dq.straight_through("cpu"))
            t_qat = t_snap["t"] + time.perf_counter() - t
            for coder in ("zstd", "range"):
                t = time.perf_counter()
                data = sess.pack(s, dq.payload(theta, coder))
                add(f"{tag}delta-{coder}", data, t_qat + time.perf_counter() - t,
                    step_scale=scale)
    return out


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
    ap.add_argument("--out", required=True, help="directory for the JSON files")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    only = set(args.only.split(",")) if args.only else {"default", "sparse", "jpeg"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = dev_images(args.images, args.crop)
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
    for codec, rows in results.items():
        kind = codec.split("-", 1)[0]
        desc = (PREFIX[kind] + DESCRIPTIONS[codec.split("-", 1)[1]]) if kind in PREFIX \
            else DESCRIPTIONS[codec]
        doc = {"codec": codec if codec == "jpeg" else f"inrcodec-{codec}",
               "description": desc,
               "settings": dict(common, **({"model": models[codec]} if codec in models else {})),
               "model": models.get(codec), "command": command, "rows": rows}
        (out / f"{doc['codec']}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"{doc['codec']}: {len(rows)} rows -> {out / (doc['codec'] + '.json')}")


DESCRIPTIONS = {
    "fp16-zstd": "fp16 values + zstd (the baseline: format version 1's storage)",
    "delta-noqat": "integer deltas of a plain fit (no quantiser-aware steps), smaller coder",
    "delta-zstd": "integer deltas, quantiser-aware last 20% of steps, zstd",
    "delta-range": "integer deltas, quantiser-aware last 20% of steps, adaptive range coder",
    "jpeg": "JPEG (Pillow / libjpeg-turbo), 4:2:0",
}

PREFIX = {
    "sparse": "sparse-delta model (dense meta-learned base; the mask marks adapted weights): ",
    "biasonly": "bias-only level of the sparse-delta model (only biases adapt): ",
}

if __name__ == "__main__":
    main()
