"""Regenerate the test vectors: python bitstream_spec/make_vectors.py

Only run this together with a format version bump (see README.md, "Version policy"):
the vectors pin the exact bytes of the current version.
"""
import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

import inrcodec
from inrcodec import Arch, scratch_model

HERE = Path(__file__).parent / "vectors"
SETTINGS = {"steps": 20, "lr": 1e-2, "seed": 0}


def main():
    HERE.mkdir(exist_ok=True)
    model = scratch_model(Arch(width=16, depth=3, w0=30.0), tile=16, n_levels=4, seed=7)
    model_path = HERE / "tiny-model.safetensors"
    model.save(model_path)
    src = data.astronaut()[180:208, 200:240]  # 40x28, not a multiple of the tile
    alpha = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (28, 1))
    cases = {
        "v1-rgb": (src, 1),
        "v1-l": (src[:, :, 1], 2),
        "v1-rgba": (np.dstack([src, alpha]), 0),
    }
    expected = {"model": model_path.name, "model_sha256": model.hash, "settings": SETTINGS,
                "vectors": {}}
    for name, (pixels, level) in cases.items():
        Image.fromarray(pixels).save(HERE / f"{name}-source.png")
        rep = inrcodec.encode_report(HERE / f"{name}-source.png", model=model_path, level=level,
                                     **SETTINGS)
        (HERE / f"{name}.inr").write_bytes(rep.data)
        dec = inrcodec.decode_array(rep.data, model=model_path)
        expected["vectors"][name] = {
            "source": f"{name}-source.png", "level": level, "bytes": len(rep.data),
            "inr_sha256": hashlib.sha256(rep.data).hexdigest(),
            "decoded_shape": list(dec.shape),
            "decoded_sha256": hashlib.sha256(dec.tobytes()).hexdigest(),
            "psnr": round(rep.psnr, 4),
            "header": {k: v for k, v, _ in inrcodec.info(rep.data)["fields"]},
        }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main()
