import numpy as np
import pytest

from inrcodec.model.inr import Arch
from inrcodec.model.shared_model import scratch_model


@pytest.fixture(scope="session")
def tiny_model():
    """A small untrained shared model: fast enough for every test."""
    return scratch_model(Arch(width=16, depth=3, w0=30.0), tile=16, n_levels=4, seed=1)


@pytest.fixture(scope="session")
def tiny_model_path(tiny_model, tmp_path_factory):
    p = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    tiny_model.save(p)
    return p


@pytest.fixture
def rgb_image():
    """A smooth synthetic 40x28 RGB image (not a multiple of the tile size)."""
    y, x = np.mgrid[0:28, 0:40].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(x / 6.0)
    g = 0.5 + 0.5 * np.cos(y / 5.0)
    b = (x + y) / (x + y).max()
    return np.clip(np.round(np.stack([r, g, b], -1) * 255), 0, 255).astype(np.uint8)
