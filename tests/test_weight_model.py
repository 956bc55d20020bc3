"""The weight mode's shipped shared model (inrcodec/models/weights.safetensors): present,
loadable, a real ladder, the weight mode's default."""
import numpy as np

import inrcodec
from inrcodec.model.prune import is_nested
from inrcodec.model.shared_model import SharedModel, load_model, weights_model_path


def test_shipped_model_ladder():
    m = load_model()
    assert m.hash == SharedModel.load(weights_model_path()).hash
    ladder = m.ladder()
    assert len(ladder) >= 10
    assert ladder[0]["density"] == 1.0
    for k in range(1, len(ladder)):
        assert abs(ladder[k]["density"] - 0.8 ** k) < 1e-3
        assert is_nested(m.levels[k].masks, m.levels[k - 1].masks)
    assert m.info["kind"] == "meta-sparse-inr" and m.info["command"].startswith("inrcodec train")


def test_encode_decode_with_default_model(rgb_image):
    # no model given: the shipped one
    r = inrcodec.encode_report(rgb_image, steps=2, mode="weights", format_version=2)
    img = inrcodec.decode(r.data)
    assert np.asarray(img).shape == rgb_image.shape
    assert r.model_hash == load_model().hash
