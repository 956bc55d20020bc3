"""The Python decoder's side of the comparison: a file's latents (as the grids' int32
bytes, hashed like tools/decode-server.mjs does) and pixels, or the error it raises.
Uses inrcodec's own functions only (no copy of its logic)."""
from __future__ import annotations

import hashlib

import numpy as np

import inrcodec
from inrcodec.codec import bitstream
from inrcodec.codec.latent import arm
from inrcodec.codec.latent.codec import model_for
from inrcodec.codec.latent.format import arch_of
from inrcodec.codec.latent.layout import grid_shapes

LATENT_VERSIONS = (3, 4, 6, 7)


def latents(data: bytes) -> list[np.ndarray]:
    """The decoded latent grids of a latent-mode file (as inrcodec's decoder gets them)."""
    h = bitstream.verify(data)
    if h.shared:
        m = model_for(h, MODELS.get(h.model_hash.hex()))
        a = m.arch
        own = bitstream.section(data, h, "arm")
        params = arm.ArmParams.from_bytes(own) if own else arm.ArmParams(*m.arm)
    else:
        a = arch_of(h)
        params = arm.ArmParams.from_bytes(bitstream.section(data, h, "arm"))
    return arm.decode_section(bitstream.section(data, h, "latents"),
                              grid_shapes(h.height, h.width, a.levels), params, h.binned)


def latents_sha256(grids) -> str:
    d = hashlib.sha256()
    for g in grids:
        d.update(np.ascontiguousarray(g, dtype="<i4").tobytes())
    return d.hexdigest()


def decode(data: bytes, size=None) -> dict:
    """{'ok': True, 'latents_sha256', 'pixels' (uint8 array)} or {'ok': False, 'error'}."""
    try:
        pixels = inrcodec.decode_array(data, size, model=_model(data))
        grids = latents(data)
    except inrcodec.errors.InrcodecError as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, "latents_sha256": latents_sha256(grids), "pixels": pixels,
            "grids": grids}


def _model(data: bytes):
    """The test vectors' models are not shipped: hand the decoder the one a file names."""
    if len(data) >= 38 and data[:4] == b"INRC":
        return MODELS.get(data[6:38].hex())
    return None


def _load_models() -> dict:
    from pathlib import Path
    from inrcodec.codec.latent.model import load_latent_model
    root = Path(__file__).resolve().parents[2]
    out = {}
    for p in (root / "bitstream_spec" / "vectors").glob("tiny-latent*.safetensors"):
        m = load_latent_model(p)
        out[m.hash] = m
    return out


MODELS = _load_models()
