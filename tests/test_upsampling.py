"""The learned upsampling (format 7): the cascade's kernels against the formula of the spec
written out in torch, its gradients, the fit's lattice phases against the full render, the
render at other sizes, and a learned model through the codec (its taps move, are sent,
and decode; a version-6 file cannot name such a model)."""
import dataclasses

import numpy as np
import pytest
import torch

import inrcodec
from inrcodec.codec import bitstream
from inrcodec.codec.latent import format as lformat
from inrcodec.codec.latent import upsampling
from inrcodec.codec.latent.config import LatentArch
from inrcodec.codec.latent.grids import features, features_lattice
from inrcodec.codec.latent.model import LatentModel, scratch_latent_model
from inrcodec.codec.latent.layout import grid_shapes, synthesis_tensors, weight_tensors
from inrcodec.errors import FormatError
from inrcodec.metrics import psnr


def _axis(x, e, dim, n_out, phase=None):
    """The spec's x2 step along one axis, in plain torch: index-clamped taps, cropped."""
    n = x.shape[dim]
    i = torch.arange(n)

    def tap(off):
        return x.index_select(dim, (i + off).clamp(0, n - 1))
    even = e[0] * tap(-2) + e[1] * tap(-1) + e[2] * tap(0) + e[3] * tap(1)
    odd = e[3] * tap(-1) + e[2] * tap(0) + e[1] * tap(1) + e[0] * tap(2)
    if phase is not None:
        return (odd if phase else even).narrow(dim, 0, (n_out - phase + 1) // 2)
    return torch.stack([even, odd], dim + 1).flatten(dim, dim + 1).narrow(dim, 0, n_out)


def _reference(q, taps, phase=None):
    e = taps.view(-1, 4)
    x = q[-1][None]
    for k in range(len(q) - 2, -1, -1):
        h, w = q[k].shape
        ph = phase if k == 0 else None
        y = _axis(_axis(x, e[k], 1, h, ph and ph[0]), e[k], 2, w, ph and ph[1])
        top = q[k] if ph is None else q[k][ph[0]::2, ph[1]::2]
        x = torch.cat([top[None], y])
    return x


@pytest.mark.parametrize("size", [(13, 7), (16, 24), (9, 1), (1, 5), (2, 2)])
def test_cascade_is_the_spec_formula_forward_and_backward(size):
    gen = torch.Generator().manual_seed(sum(size))
    q = [torch.randn(s, generator=gen, requires_grad=True) for s in grid_shapes(*size, 4)]
    taps = (upsampling.init(4) + 0.1 * torch.randn(12, generator=gen)).requires_grad_(True)
    for phase in [None, (0, 0), (1, 0), (0, 1), (1, 1)]:
        if phase is not None and (phase[0] >= size[0] or phase[1] >= size[1]):
            continue
        want = _reference(q, taps, phase)
        got = upsampling.cascade(taps, q, phase)
        assert got.shape == want.shape
        assert torch.equal(got, want.detach())  # same float32 operations in the same order
        w = torch.randn(want.shape, generator=gen)
        g_want = torch.autograd.grad((want * w).sum(), [taps] + q)
        g_got = torch.autograd.grad((got * w).sum(), [taps] + q)
        for a, b in zip(g_got, g_want):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("phase", [None, (0, 1), (1, 0)])
def test_the_parallel_step_is_the_serial_step(phase):
    """The fit's step runs its channels on numba's threads: the same samples, bit for bit,
    as the decoder's serial step."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5, 23, 31)).astype(np.float32)
    e = np.array([0.05, 0.2, 0.7, -0.02], np.float32)
    a, ra = upsampling.step(x, e, (45, 61), phase)
    b, rb = upsampling.step(x, e, (45, 61), phase, parallel=True)
    assert a.tobytes() == b.tobytes() and ra.tobytes() == rb.tobytes()


def test_bilinear_taps_are_bilinear_for_one_step():
    """At BILINEAR a x2 step is torch's bilinear upsampling (half-pixel centres)."""
    g = torch.randn(6, 9)
    up = upsampling.cascade(upsampling.init(2), [torch.zeros(12, 18), g])[1]
    want = torch.nn.functional.interpolate(g[None, None], size=(12, 18), mode="bilinear",
                                           align_corners=False)[0, 0]
    assert torch.allclose(up, want, atol=1e-6)


@pytest.mark.parametrize("size", [(20, 30), (21, 17)])
def test_lattice_phases_are_the_full_features(size):
    arch = LatentArch(levels=4, hidden=8, layers=1, coords=True, upsample="learned")
    h, w = size
    q = [torch.randn(s) for s in grid_shapes(h, w, 4)]
    taps = upsampling.init(4) + 0.05 * torch.randn(12)
    full = features(arch, q, h, w, taps).reshape(arch.inputs, h, w)
    for stride in (1, 2, 3):
        for p in [(0, 0), (1, 0), (stride - 1, stride - 1)]:
            got = features_lattice(arch, q, h, w, stride, p, taps)
            want = full[:, p[0]::stride, p[1]::stride].reshape(arch.inputs, -1)
            assert torch.equal(got, want)
    other = features(arch, q, 2 * h, w + 3, taps)  # another size: bilinear from h x w
    want = torch.nn.functional.interpolate(full[None, :4], size=(2 * h, w + 3),
                                           mode="bilinear", align_corners=False)[0]
    assert torch.equal(other.reshape(arch.inputs, 2 * h, w + 3)[:4], want)


def test_the_taps_are_synthesis_tensors_never_pruned():
    arch = LatentArch(levels=5, hidden=12, layers=2, act="sine", w0=5.0, arm_hidden=8,
                      coords=True, upsample="learned")
    m = scratch_latent_model(arch, n_levels=3, seed=1)
    taps = synthesis_tensors(arch)[-1]
    assert taps.stop == arch.n_params() and taps.stop - taps.start == arch.up_params == 16
    assert all(bool(mk[taps].all()) for mk in m.masks)
    assert np.array_equal(m.thetas[2][taps], upsampling.init(5).numpy())
    assert taps not in weight_tensors(arch)
    dense = sum(o * i for o, i in arch.shapes())
    assert m.ladder()[0]["macs_per_pixel"] == arch.macs_per_pixel() > dense
    assert LatentModel.from_bytes(m.to_bytes()).arch.upsample == "learned"


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """0.11's model given a learned upsampling, as the shipped default was made."""
    from inrcodec.codec.latent.model import default_latent_model_path, load_latent_model
    from inrcodec.training.derive import with_learned_upsampling
    m = load_latent_model(default_latent_model_path().with_name("latent-0.11.safetensors"))
    lm = with_learned_upsampling(m)
    assert np.array_equal(lm.thetas[1], load_latent_model().thetas[1])  # the shipped default's
    path = tmp_path_factory.mktemp("m") / "learned.safetensors"
    lm.save(path)
    return lm, str(path)


def _image(h=40, w=56):
    y, x = np.mgrid[0:h, 0:w] / 7.0
    base = np.stack([np.sin(x), np.cos(y * 1.3), np.sin(x * y / 5)], -1)
    return np.clip((0.4 * base + 0.5) * 255, 0, 255).astype(np.uint8)


def test_a_learned_model_encodes_its_taps_and_decodes(learned):
    lm, path = learned
    img = _image()
    r = inrcodec.encode_report(img, mode="latent", steps=60, quality=70, model=path)
    h = bitstream.verify(r.data)
    assert (h.version, h.upsample) == (7, 2) and h.synth_len > 0
    theta = lformat.unpack_synthesis(bitstream.section(r.data, h, "synthesis"), lm.arch,
                                     lm.thetas[0], lm.masks[0])
    assert not np.array_equal(theta[-lm.arch.up_params:], upsampling.init(7).numpy())
    out = inrcodec.decode_array(r.data, model=path)
    assert r.psnr == pytest.approx(psnr(out, img)) and r.psnr > 25
    big = inrcodec.decode_array(r.data, scale=2, model=path)
    assert big.shape == (80, 112, 3)
    assert np.abs(big.reshape(40, 2, 56, 2, 3).mean((1, 3)) - out).mean() < 3


def _with_header(data: bytes, **fields) -> bytes:
    """`data` with header fields changed and the sections kept (a fresh CRC)."""
    h = bitstream.verify(data)
    new = dataclasses.replace(h, **fields)
    return bitstream.pack_sections(new, {n: bitstream.section(data, h, n)
                                         for n, _ in h.sections()})


def test_versions_and_models_must_agree_on_the_upsampling(learned, encoded_default):
    lm, path = learned
    h = bitstream.verify(encoded_default)
    assert (h.version, h.upsample) == (7, 2)  # the shipped default's upsampling is learned
    with pytest.raises(FormatError, match="architecture differs"):
        inrcodec.decode_array(_with_header(encoded_default, upsample=0))
    with pytest.raises(FormatError, match="upsample field 3"):
        inrcodec.decode_array(_with_header(encoded_default, upsample=3))
    r = inrcodec.encode(_image(), mode="latent", steps=5, model=path)
    with pytest.raises(FormatError, match="version-6 file cannot use"):
        inrcodec.decode_array(_with_header(r, version=6), model=path)
    with pytest.raises(ValueError, match="version 7"):
        lformat.write(model_hash=bytes(32), width=4, height=4, image_mode="RGB", levels=1,
                      hidden=1, layers=1, act="relu", w0=0, synthesis=b"", arm=b"",
                      latents=b"", upsample="learned", version=6)


@pytest.fixture(scope="module")
def encoded_default():
    return inrcodec.encode(_image(), mode="latent", steps=20, quality=40)
