"""Make the test vectors: python bitstream_spec/make_vectors.py

Run it together with a format version bump (see README.md, "Version policy"), after adding
the new version's cases under new names. A vector, once made, is kept as it was: the
encoder's fit may change between releases (other bytes, same format), the decoder's
reading of a made file may not (tests/test_vectors.py pins it). So the script makes only
the vectors that do not exist yet and keeps every other entry of expected.json.
"""
import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

import inrcodec
from inrcodec.codec.latent.config import LatentArch
from inrcodec.codec.latent.model import scratch_latent_model
from inrcodec.model.inr import Arch
from inrcodec.model.shared_model import scratch_model, sparse_delta_from

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
    umodel = scratch_latent_model(LatentArch(levels=5, hidden=12, layers=2, act="sine", w0=5.0,
                                             arm_hidden=8, coords=True, upsample="learned"),
                                  n_levels=2, seed=3)
    umodel_path = HERE / "tiny-latent-learned-model.safetensors"
    umodel.save(umodel_path)
    rmodel = scratch_latent_model(LatentArch(levels=5, hidden=12, layers=2, act="sine", w0=5.0,
                                             arm_hidden=8, coords=True), n_levels=2, seed=3,
                                  arm_params=_residual_arm(8, seed=5))
    rmodel_path = HERE / "tiny-latent-residual-model.safetensors"  # shared model version 4
    rmodel.save(rmodel_path)
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
        # version 7: the latent mode with its upsampling in the header; a learned one (its
        # taps in the synthesis section), and bilinear
        "v7-rgb-latent-learned": ("v1-rgb", rgb, 0, umodel_path, {"mode": "latent",
                                                                   "steps": 60, "quality": 50}),
        "v7-rgba-latent": ("v1-rgba", rgba, 1, lmodel_path, {"mode": "latent", "steps": 30,
                                                            "quality": 30}),
        # version 7 with a shared model (version 4) whose ARM has a residual layer
        "v7-rgb-latent-residual": ("v1-rgb", rgb, 0, rmodel_path, {"mode": "latent",
                                                                   "steps": 60, "quality": 50}),
        # version 6 (made by 0.7 to 0.11; the encoder now writes version 7)
        "v6-rgb-latent": ("v1-rgb", rgb, 0, lmodel_path, {"mode": "latent", "steps": 60,
                                                          "quality": 50}),
        "v6-rgba-latent": ("v1-rgba", rgba, 1, lmodel_path, {"mode": "latent", "steps": 30,
                                                            "quality": 30}),
        # version 5, the weight mode's rate-distortion fit with a level per tile: three
        # options (two levels, and biases only), and one level through encode_report
        "v5-rgb-levels": ("v1-rgb", rgb, None, model_path,
                          {"candidates": [[3, 0], [0, 0], [3, 1]], "lam": 0.03, "steps": 40}),
        "v5-rgba": ("v1-rgba", rgba, 2, model_path, {"format_version": 5, "quality": 50,
                                                     "steps": 30}),
    }
    old = json.loads((HERE / "expected.json").read_text())["vectors"]
    expected = {"model": model_path.name, "model_sha256": model.hash,
                "models": {model_path.name: model.hash, sd_path.name: sd.hash,
                           lmodel_path.name: lmodel.hash, umodel_path.name: umodel.hash,
                           rmodel_path.name: rmodel.hash},
                "settings": SETTINGS, "vectors": dict(old)}
    for name, (source, pixels, level, mpath, options) in cases.items():
        if name in old and (HERE / f"{name}.inr").exists():
            continue
        spath = HERE / f"{source}-source.png"
        if source == name:
            Image.fromarray(pixels).save(spath)
        if "candidates" in options:
            rep = _rd_levels(spath, mpath, options)
        else:
            kw = dict(options, seed=0) if options.get("mode") == "latent" \
                or options.get("format_version") == 5 else dict(SETTINGS, **options)
            kw.setdefault("mode", "weights")
            rep = inrcodec.encode_report(spath, model=mpath, level=level, **kw)
        out = HERE / f"{name}.inr"
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
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


def _residual_arm(hidden, seed):
    """A fixed-point ARM with a residual layer, random but of a trained model's sizes: its
    predictions depend on both layers."""
    rng = np.random.default_rng(seed)
    r = lambda lo, shape: rng.integers(-lo, lo + 1, shape)  # noqa: E731
    return (r(200, (hidden, 12)), r(100, hidden), r(100, (2, hidden)), np.array([0, 300]),
            r(100, (hidden, hidden)), r(100, hidden))


def _rd_levels(src, model_path, options):
    """A format-5 file whose tiles choose among given candidates (rdencode directly)."""
    from types import SimpleNamespace

    from inrcodec.codec.weights import rdencode, rdfit
    from inrcodec.io import load_image
    from inrcodec.model.shared_model import load_model
    m = load_model(model_path)
    img = load_image(src)
    r = rdencode.encode(img, m, [rdencode.Candidate(lv, bool(k)) for lv, k in
                                 options["candidates"]],
                        rdfit.RDFitConfig(steps=options["steps"], lam=options["lam"]),
                        dense_share=1.0)
    dec = inrcodec.decode_array(r.data, model=m)
    return SimpleNamespace(data=r.data, psnr=inrcodec.metrics.psnr(dec, img.pixels[:, :, :3]))


if __name__ == "__main__":
    main()
