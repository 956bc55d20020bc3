"""Regenerate the test vectors: python bitstream_spec/make_vectors.py

Only run this together with a format version bump (see README.md, "Version policy"):
the vectors pin the exact bytes of every version. Vectors of older versions are re-made by
the same deterministic encoder and must come out byte-identical (tests/test_vectors.py
checks it); the script refuses to change an existing vector file.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

import inrcodec
from inrcodec import Arch, scratch_model
from inrcodec.config import LatentArch
from inrcodec.model.latent_model import scratch_latent_model
from inrcodec.model.shared_model import sparse_delta_from

HERE = Path(__file__).parent / "vectors"
SETTINGS = {"steps": 20, "lr": 1e-2, "seed": 0}
V1 = {"quantizer": "fp16", "format_version": 1}


def main():
    HERE.mkdir(exist_ok=True)
    model = scratch_model(Arch(width=16, depth=3, w0=30.0), tile=16, n_levels=4, seed=7)
    model_path = HERE / "tiny-model.safetensors"
    model.save(model_path)
    sd = sparse_delta_from(model)
    sd_path = HERE / "tiny-sparse-delta.safetensors"
    sd.save(sd_path)
    lmodel = scratch_latent_model(LatentArch(levels=5, hidden=12, layers=2, act="sine", w0=5.0,
                                             arm_hidden=8, coords=True), n_levels=2, seed=3)
    lmodel_path = HERE / "tiny-latent-model.safetensors"
    lmodel.save(lmodel_path)
    src = data.astronaut()[180:208, 200:240]  # 40x28, not a multiple of the tile
    alpha = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (28, 1))
    rgb, grey, rgba = src, src[:, :, 1], np.dstack([src, alpha])
    # name: (source name, pixels, level, model, encoder options)
    cases = {
        "v1-rgb": ("v1-rgb", rgb, 1, model_path, V1),
        "v1-l": ("v1-l", grey, 2, model_path, V1),
        "v1-rgba": ("v1-rgba", rgba, 0, model_path, V1),
        "v2-rgb-range": ("v1-rgb", rgb, 1, model_path, {"coder": "range"}),
        "v2-rgb-zstd": ("v1-rgb", rgb, 1, model_path, {"coder": "zstd"}),
        "v2-l-range16": ("v1-l", grey, 2, model_path, {"coder": "range", "step_scale": 0.003}),
        "v2-rgba-range": ("v1-rgba", rgba, 0, model_path, {"coder": "range"}),
        "v2-rgb-fp16": ("v1-rgb", rgb, 1, model_path, {"quantizer": "fp16"}),
        "v2-rgb-sparse-delta": ("v1-rgb", rgb, 2, sd_path, {"coder": "range"}),
        "v2-rgb-bias-only": ("v1-rgb", rgb, 4, sd_path, {"coder": "range"}),
        # version 4, the latent mode with a shared latent model
        "v4-rgb-latent": ("v1-rgb", rgb, 0, lmodel_path, {"mode": "latent", "steps": 60,
                                                          "quality": 50}),
        "v4-rgba-latent": ("v1-rgba", rgba, 1, lmodel_path, {"mode": "latent", "steps": 30,
                                                            "quality": 30}),
    }
    # Vectors of versions this encoder no longer writes (3: the self-contained latent mode
    # of inrcodec 0.2) stay as they were made; the decoder must still read them.
    old = json.loads((HERE / "expected.json").read_text())["vectors"]
    frozen = {k: v for k, v in old.items() if v["header"]["version"] == "3"}
    expected = {"model": model_path.name, "model_sha256": model.hash,
                "models": {model_path.name: model.hash, sd_path.name: sd.hash,
                           lmodel_path.name: lmodel.hash},
                "settings": SETTINGS, "vectors": dict(frozen)}
    changed = []
    for name, (source, pixels, level, mpath, options) in cases.items():
        spath = HERE / f"{source}-source.png"
        if source == name:
            Image.fromarray(pixels).save(spath)
        kw = dict(SETTINGS, **options) if options.get("mode") != "latent" \
            else dict(options, seed=0)
        rep = inrcodec.encode_report(spath, model=mpath, level=level, **kw)
        out = HERE / f"{name}.inr"
        if out.exists() and out.read_bytes() != rep.data:
            changed.append(name)
            continue
        out.write_bytes(rep.data)
        dec = inrcodec.decode_array(rep.data, model=mpath)
        expected["vectors"][name] = {
            "source": spath.name, "level": level, "model": mpath.name if mpath else None,
            "options": options,
            "bytes": len(rep.data),
            "inr_sha256": hashlib.sha256(rep.data).hexdigest(),
            "decoded_shape": list(dec.shape),
            "decoded_sha256": hashlib.sha256(dec.tobytes()).hexdigest(),
            "psnr": round(rep.psnr, 4),
            "header": {k: v for k, v, _ in inrcodec.info(rep.data)["fields"]},
        }
    if changed:
        sys.exit(f"refusing to change existing vectors {changed}: a format change needs a "
                 "version bump and new vector names")
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main()
