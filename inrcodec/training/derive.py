"""A latent shared model given a learned upsampling without training: every level's vector
gains the upsampling's taps at bilinear (upsampling.BILINEAR), which its masks keep; the
synthesis, the ladder and the ARM are the model's. Each file then fits its own taps from
bilinear (0.12.0's default model; `inrcodec train --upsample learned` trains them instead).

    python -m inrcodec.training.derive IN.safetensors OUT.safetensors
"""
from __future__ import annotations

import dataclasses
import shlex
import sys

import torch

from ..codec.latent import upsampling
from ..codec.latent.model import LatentModel, load_latent_model


def with_learned_upsampling(model: LatentModel, command: str = "") -> LatentModel:
    if model.arch.upsample != "bilinear":
        raise ValueError(f"the model's upsampling is {model.arch.upsample}, not bilinear")
    arch = dataclasses.replace(model.arch, upsample="learned")
    taps = upsampling.init(arch.levels)
    keep = torch.ones(len(taps), dtype=torch.bool)
    info = {"derived_from": model.hash, "derivation": "learned upsampling at bilinear taps",
            "command": command, "source_info": model.info}
    return LatentModel(arch=arch, thetas=[torch.cat([torch.from_numpy(t), taps])
                                          for t in model.thetas],
                       masks=[torch.cat([torch.from_numpy(m), keep]) for m in model.masks],
                       arm=model.arm,
                       default_level=model.default_level, info=info)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit("usage: python -m inrcodec.training.derive IN.safetensors OUT.safetensors")
    src, out = argv
    command = "python -m inrcodec.training.derive " + " ".join(shlex.quote(a) for a in argv)
    m = with_learned_upsampling(load_latent_model(src), command)
    m.save(out)
    print(f"{out}: model {m.hash}")


if __name__ == "__main__":
    main()
