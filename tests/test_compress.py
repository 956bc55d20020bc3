"""Issue 5: delta quantiser, quantiser-aware steps, entropy coders, format version 2,
sparse-delta networks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import inrcodec
from inrcodec.codec import bitstream, entropy
from inrcodec.codec.weights import format as wformat
from inrcodec.codec.weights import quantiser as quant
from inrcodec.codec.weights.quantiser import DeltaQuantiser
from inrcodec.codec.weights.tiles import tile_coords
from inrcodec.errors import FormatError, InrcodecError
from inrcodec.model.inr import INR, Arch
from inrcodec.model.shared_model import SharedModel, load_model, scratch_model, sparse_delta_from


# -- the delta quantiser -------------------------------------------------------------------
@pytest.mark.parametrize("scale", [0.05, 0.5, 2.0])
def test_quantise_dequantise_error_within_half_a_step(tiny_model, scale):
    net, theta0 = tiny_model.net(1), tiny_model.levels[1].theta0
    g = torch.Generator().manual_seed(0)
    theta = theta0 + 0.01 * torch.randn(6, net.n_params, generator=g)
    dq = DeltaQuantiser.from_fit(net, theta0, theta, scale)
    back = dq.dequantize(dq.quantize(theta))
    err = (back - theta).abs().numpy()
    live = dq.live
    assert (err[:, live] <= dq.step[live] / 2 * (1 + 1e-5) + 1e-7).all()
    # parameters that cannot reach the output keep the shared initial value
    np.testing.assert_array_equal(back.numpy()[:, ~live], np.broadcast_to(
        theta0.numpy()[~live], back[:, ~live].shape))
    # the documented rule: each tensor's step is scale x the RMS of its live deltas
    d = (theta - theta0).numpy()
    for k, s in enumerate(quant.groups(net)):
        vals = d[:, s][:, live[s]]
        if vals.size:
            assert dq.step_sizes[k] == pytest.approx(scale * np.sqrt(np.mean(vals ** 2)), rel=1e-5)


def test_quantised_values_are_integers_on_the_grid(tiny_model):
    net, theta0 = tiny_model.net(0), tiny_model.levels[0].theta0
    theta = theta0 + 0.02 * torch.randn(3, net.n_params, generator=torch.Generator().manual_seed(1))
    dq = DeltaQuantiser.from_fit(net, theta0, theta, 0.5)
    q = dq.quantize(theta)
    assert q.dtype == np.int32 and q.shape == (3, int(dq.live.sum()))
    back = dq.dequantize(q).numpy()
    k = (back[:, dq.live] - theta0.numpy()[dq.live]) / dq.step[dq.live]
    np.testing.assert_allclose(k, np.rint(k), atol=1e-3)


def test_dead_parameters_get_no_gradient():
    """live_mask marks exactly what can matter: a unit that feeds nothing is dead."""
    arch = Arch(width=6, depth=2, w0=30.0)
    masks = [torch.ones(s, dtype=torch.bool) for s in arch.layer_shapes()]
    masks[2][:, 3] = False  # hidden unit 3 of layer 1 feeds no output
    masks[1][:, 1] = False  # layer-0 unit 1 feeds nothing in layer 1
    net = INR(arch, masks)
    live = quant.live_mask(net)
    theta = net.flatten([(torch.randn(o, i), torch.randn(o)) for o, i in arch.layer_shapes()])
    theta = theta.reshape(1, -1).requires_grad_(True)
    loss = net(theta, tile_coords(4)).square().sum()
    (g,) = torch.autograd.grad(loss, theta)
    assert (g[0, ~torch.from_numpy(live)] == 0).all()
    assert (g[0, torch.from_numpy(live)] != 0).float().mean() > 0.9
    # layer-1 unit 3: 5 kept incoming weights + bias; layer-0 unit 1: 2 weights + bias
    assert (~live).sum() == 6 + 3


def test_live_mask_counts():
    arch = Arch(width=6, depth=2, w0=30.0)
    masks = [torch.ones(s, dtype=torch.bool) for s in arch.layer_shapes()]
    net = INR(arch, masks)
    assert quant.live_mask(net).all()
    masks[2][:, 3] = False  # layer-1 unit 3 reaches no output
    live = quant.live_mask(INR(arch, masks))
    # its 6 incoming weights and its bias are dead; nothing else
    assert (~live).sum() == 7
    # with a shared dense fill (sparse-delta), every unit reaches the output again
    fill = [torch.full(s, 0.1) for s in arch.layer_shapes()]
    assert quant.live_mask(INR(arch, masks, fill=fill)).all()


# -- entropy coders --------------------------------------------------------------------------
def _streams():
    rng = np.random.default_rng(0)
    lap = np.clip(np.round(rng.laplace(0, 3, (7, 50))), -127, 127).astype(np.int32)
    yield "all-zero", np.zeros((5, 40), np.int32), 8
    yield "all-equal", np.full((6, 30), -3, np.int32), 8
    yield "all-distinct", np.arange(-600, 600, dtype=np.int32).reshape(4, 300), 16
    yield "extremes-8", np.where(rng.random((5, 33)) < 0.5, -127, 127).astype(np.int32), 8
    yield "extremes-16", np.where(rng.random((3, 21)) < 0.5, -32767, 32767).astype(np.int32), 16
    yield "alternating", np.tile(np.array([0, 32767, -32767, 1, -1], np.int32), (4, 9)), 16
    yield "laplace", lap, 8
    yield "one-value", np.array([[5]], np.int32), 8
    yield "no-tiles", np.zeros((0, 12), np.int32), 8
    yield "no-values", np.zeros((3, 0), np.int32), 8
    yield "long-zero-run", np.zeros((1, 200000), np.int32), 8


@pytest.mark.parametrize("name, q, bits", list(_streams()), ids=[s[0] for s in _streams()])
@pytest.mark.parametrize("coder", [entropy.ZSTD, entropy.RANGE])
def test_entropy_coder_round_trip(name, q, bits, coder):
    gid = (np.arange(q.shape[1]) * 3 // max(1, q.shape[1])).astype(np.int64)
    data = entropy.encode(q, gid, coder, bits)
    back = entropy.decode(data, q.shape[0], gid, coder, bits)
    np.testing.assert_array_equal(back, q)
    assert back.shape == q.shape


def test_range_coder_adapts():
    """Skewed statistics cost far less than their raw width, and context helps."""
    rng = np.random.default_rng(1)
    scale = rng.choice([0.01, 4.0], size=400)  # per-parameter activity, as in real deltas
    q = np.round(rng.laplace(0, 1, (40, 400)) * scale).astype(np.int32)
    gid = np.zeros(400, np.int64)
    r = entropy.encode(q, gid, entropy.RANGE, 8)
    z = entropy.encode(q, gid, entropy.ZSTD, 8)
    assert len(r) < 0.5 * q.size  # well under 4 bits a value
    assert len(r) < len(z)


def test_range_decoder_refuses_values_beyond_qbits():
    q = np.array([[200, -3, 0]], np.int32)
    data = entropy.encode(q, np.zeros(3, np.int64), entropy.RANGE, 16)
    with pytest.raises(FormatError, match="beyond"):
        entropy.decode(data, 1, np.zeros(3, np.int64), entropy.RANGE, 8)


def test_range_decoder_garbage_is_a_format_error():
    rng = np.random.default_rng(2)
    gid = np.zeros(50, np.int64)
    for _ in range(50):
        blob = rng.integers(0, 256, 4 * int(rng.integers(0, 20)), dtype=np.uint8).tobytes()
        with pytest.raises(FormatError):
            entropy.decode(blob, 3, gid, entropy.RANGE, 8)


# -- format version 2 through the codec ----------------------------------------------------------
@pytest.mark.parametrize("coder", ["zstd", "range"])
def test_v2_round_trip_and_report(tiny_model, rgb_image, coder):
    r = inrcodec.encode_report(rgb_image, model=tiny_model, level=1, steps=40, lr=3e-3,
                               coder=coder, step_scale=0.2, mode="weights", format_version=2)
    h = bitstream.unpack_header(r.data)
    assert (h.version, h.quantizer, h.coder) == (2, quant.DELTA, entropy.CODERS_BY_NAME[coder])
    assert len(r.data) == h.size + h.qparams_len + h.payload_len + 4
    assert h.qparams_len == 4 * len(quant.groups(tiny_model.net(1)))
    dec = inrcodec.decode_array(r.data, model=tiny_model)
    from inrcodec.metrics import psnr
    assert r.psnr == pytest.approx(psnr(dec, rgb_image))
    assert r.psnr > 20
    assert (r.quantizer, r.coder, r.format_version) == ("delta", coder, 2)


def test_delta_is_smaller_than_fp16(tiny_model, rgb_image):
    kw = dict(model=tiny_model, level=0, steps=40, lr=3e-3)
    fp16 = inrcodec.encode_report(rgb_image, quantizer="fp16", **kw, mode="weights", format_version=2)
    delta = inrcodec.encode_report(rgb_image, step_scale=0.25, **kw, mode="weights", format_version=2)
    assert delta.bytes < fp16.bytes / 3
    assert delta.psnr > fp16.psnr - 4


def test_coarser_steps_give_smaller_files(tiny_model, rgb_image):
    sizes = [inrcodec.encode_report(rgb_image, model=tiny_model, steps=10, lr=1e-2,
                                    step_scale=s, mode="weights", format_version=2).bytes for s in (0.1, 0.5, 2.0)]
    assert sizes[0] > sizes[1] > sizes[2]


def test_auto_coder_keeps_the_smaller(tiny_model, rgb_image):
    kw = dict(model=tiny_model, steps=10, lr=1e-2, step_scale=0.7)
    sizes = {c: inrcodec.encode_report(rgb_image, coder=c, **kw, mode="weights", format_version=2).bytes for c in ("zstd", "range")}
    auto = inrcodec.encode_report(rgb_image, coder="auto", **kw, mode="weights", format_version=2)
    assert auto.bytes == min(sizes.values())


def test_quantiser_aware_steps_help(tiny_model, rgb_image):
    """The last steps see the quantised network: the decoded PSNR is higher than quantising
    a plain fit of the same length, at a similar size."""
    kw = dict(model=tiny_model, level=0, steps=40, lr=3e-3, step_scale=1.5)
    plain = inrcodec.encode_report(rgb_image, qat_fraction=0.0, **kw, mode="weights", format_version=2)
    aware = inrcodec.encode_report(rgb_image, qat_fraction=0.25, **kw, mode="weights", format_version=2)
    assert aware.psnr > plain.psnr + 1
    assert aware.bytes < 1.1 * plain.bytes


def test_v1_and_v2_files_both_decode(tiny_model, rgb_image):
    v1 = inrcodec.encode(rgb_image, model=tiny_model, steps=5, quantizer="fp16",
                         format_version=1, mode="weights")
    v2 = inrcodec.encode(rgb_image, model=tiny_model, steps=5, quantizer="fp16", mode="weights", format_version=2)
    assert v1[4] == 1 and v2[4] == 2
    # fp16 values are the same bytes in both versions: the pixels agree exactly
    np.testing.assert_array_equal(inrcodec.decode_array(v1, model=tiny_model),
                                  inrcodec.decode_array(v2, model=tiny_model))
    assert len(v2) - len(v1) == bitstream.header_size(2) - bitstream.header_size(1)


def test_version_1_cannot_hold_deltas(tiny_model, rgb_image):
    with pytest.raises(InrcodecError, match="version 1"):
        inrcodec.encode(rgb_image, model=tiny_model, steps=1, format_version=1, mode="weights")


def test_bad_quantiser_options(tiny_model, rgb_image):
    for kw, msg in ((dict(quantizer="int4"), "unknown quantiser"),
                    (dict(coder="lzma"), "unknown coder"),
                    (dict(quantizer="fp16", coder="range"), "delta integers only"),
                    (dict(step_scale=0), "positive"),
                    (dict(step_scale=float("nan")), "positive"),
                    (dict(format_version=7), "cannot be written")):
        with pytest.raises(InrcodecError, match=msg):
            inrcodec.encode(rgb_image, model=tiny_model, steps=1, mode="weights",
                            **{"format_version": 2, **kw})


# -- sparse-delta networks and models -----------------------------------------------------------
def _sparse_delta_model(seed=3):
    """A scratch ladder turned sparse-delta: pruned weights keep the dense base values."""
    return sparse_delta_from(scratch_model(Arch(width=16, depth=3, w0=30.0), tile=16,
                                           n_levels=4, seed=seed))


def test_sparse_delta_network_keeps_base_values():
    m = _sparse_delta_model()
    net = m.net(2)
    theta = m.levels[2].theta0 + 0.1
    for (w, _), mask, base in zip(net.dense(theta), m.levels[2].masks,
                                  m.levels[2].fill(m.arch.layer_shapes())):
        assert torch.equal(w[~mask], base[~mask])  # pruned: shared dense value
        assert torch.allclose(w[mask], base[mask] + 0.1)  # adapted
    # at theta0 the level's network is the dense base network
    coords = tile_coords(16)
    out = net(m.levels[2].theta0.reshape(1, -1), coords)
    ref = m.net(0)(m.levels[0].theta0.reshape(1, -1), coords)
    torch.testing.assert_close(out, ref)


def test_sparse_delta_model_file_round_trip(tmp_path, rgb_image):
    m = _sparse_delta_model()
    p = tmp_path / "sd.safetensors"
    m.save(p)
    m2 = SharedModel.load(p)
    assert m2.hash == m.hash and m2.sparse_delta
    assert all(torch.equal(a.base, b.base) for a, b in zip(m.levels, m2.levels))
    assert m2.net(4).n_params == m.arch.n_biases()  # the bias-only level
    for level in (1, 4):
        r = inrcodec.encode_report(rgb_image, model=p, level=level, steps=10, lr=1e-2, mode="weights", format_version=2)
        assert r.psnr == pytest.approx(
            inrcodec.metrics.psnr(inrcodec.decode_array(r.data, model=p), rgb_image))
        assert r.params == m.net(level).n_params


def test_plain_models_keep_version_1_bytes(tiny_model):
    """Models without a base are still written as shared-model version 1 (same hash)."""
    import json
    import struct
    data = tiny_model.to_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(json.loads(data[8:8 + n])["__metadata__"]["inrcodec"])
    assert meta["format_version"] == "1"


def test_meta_training_sparse_delta_learns_the_dense_base(tmp_path):
    from inrcodec.training.config import MetaConfig
    from inrcodec.training.meta import train_meta_sparse
    arch = Arch(width=8, depth=2, w0=30.0)
    rng = np.random.default_rng(0)
    tr = rng.integers(0, 255, (12, 8, 8, 3), dtype=np.uint8)
    cfg = MetaConfig(first_order=True, pretrain_steps=2, retrain_steps=2, rounds=2,
                     sparse_delta=True, bias_only_steps=2, outer_lr=1e-3)
    m = train_meta_sparse(arch, 8, tr, tr[:0], cfg, tmp_path / "m.safetensors")
    assert m.sparse_delta and len(m.levels) == 4
    assert [lv.n_weights for lv in m.levels][-1] == 0  # bias-only
    # the outer loop moved base weights that no image adapts at level 2
    pruned = torch.cat([~x.reshape(-1) for x in m.levels[2].masks])
    assert (m.levels[2].base - m.levels[1].base)[pruned].abs().max() > 0
    # and each level's theta0 is its base at the adapted positions
    net = m.net(2)
    for (w, _), base in zip(net.dense(m.levels[2].theta0), m.levels[2].fill(arch.layer_shapes())):
        assert torch.equal(w, base)


# -- rate control ---------------------------------------------------------------------------------
def test_quality_maps_to_settings(tiny_model):
    from inrcodec.codec.weights import ratecontrol as rate
    lo, hi = rate.quality_settings(tiny_model, 1), rate.quality_settings(tiny_model, 100)
    assert lo.quant.step_scale > hi.quant.step_scale
    assert tiny_model.ladder()[lo.level]["density"] <= tiny_model.ladder()[hi.level]["density"]
    assert lo.lr == hi.lr == rate.QUALITY_LR
    m = load_model()  # the shipped model: low quality is its sparsest level
    assert rate.quality_settings(m, 1).level == len(m.levels) - 1
    assert rate.quality_settings(m, 100).level < rate.quality_settings(m, 50).level
    for bad in (0, 101, 2.5):
        with pytest.raises(InrcodecError, match="quality"):
            rate.quality_settings(m, bad)


def test_quality_trades_size_for_psnr(tiny_model, rgb_image):
    a = inrcodec.encode_report(rgb_image, model=tiny_model, quality=5, steps=25, mode="weights", format_version=2)
    b = inrcodec.encode_report(rgb_image, model=tiny_model, quality=95, steps=25, mode="weights", format_version=2)
    assert a.bytes < b.bytes and a.psnr < b.psnr
    assert (a.quality, b.quality) == (5, 95)


@pytest.mark.parametrize("target", [3.0, 6.0])
def test_bpp_target_lands_at_or_under(tiny_model, rgb_image, target):
    r = inrcodec.encode_report(rgb_image, model=tiny_model, bpp=target, steps=40, mode="weights", format_version=2)
    assert r.bpp <= target
    assert r.search["target"] == "bpp" and r.search["probes"]
    assert inrcodec.decode_array(r.data, model=tiny_model).shape == rgb_image.shape
    # and it is not needlessly small: the next quality up (if any) was over the target
    if r.quality < 100 and not r.search["coarsened"]:
        up = inrcodec.encode_report(rgb_image, model=tiny_model, quality=r.quality + 1,
                                    steps=40, mode="weights", format_version=2)
        assert up.bpp > target * 0.9


def test_psnr_target_is_met_or_refused(tiny_model, rgb_image):
    r = inrcodec.encode_report(rgb_image, model=tiny_model, psnr=12.0, steps=40, mode="weights", format_version=2)
    assert r.psnr >= 12.0 and r.search["target"] == "psnr"
    with pytest.raises(InrcodecError, match="out of reach"):
        inrcodec.encode_report(rgb_image, model=tiny_model, psnr=60.0, steps=5, mode="weights", format_version=2)


def test_rate_control_refuses_fixed_choices(tiny_model, rgb_image):
    for kw in (dict(quality=50, level=1), dict(bpp=1.0, lr=1e-3), dict(psnr=20, step_scale=1),
               dict(quality=50, bpp=1.0), dict(bpp=1.0, quantizer="fp16")):
        with pytest.raises(InrcodecError):
            inrcodec.encode(rgb_image, model=tiny_model, steps=1, mode="weights",
                            **{"format_version": 2, **kw})


# -- the command line ---------------------------------------------------------------------------
def _cli(*args):
    from click.testing import CliRunner

    from inrcodec.cli import main
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_rate_control_and_quantiser_flags(tmp_path, rgb_image, tiny_model_path):
    import json

    from PIL import Image
    src = tmp_path / "in.png"
    Image.fromarray(rgb_image).save(src)
    r = _cli("encode", src, tmp_path / "a.inr", "--mode", "weights", "--model", tiny_model_path, "--steps", 20,
             "--bpp", 4, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["bpp"] <= 4 and s["quality"] is not None and s["search"]["target"] == "bpp"
    assert (tmp_path / "a.inr").stat().st_size == s["bytes"]
    r = _cli("encode", src, tmp_path / "b.inr", "--mode", "weights", "--model", tiny_model_path, "--steps", 3,
             "--quantizer", "fp16", "--format-version", "1")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "b.inr").read_bytes()[4] == 1
    r = _cli("encode", src, tmp_path / "c.inr", "--mode", "weights", "--model", tiny_model_path, "--steps", 3,
             "--coder", "range", "--step-scale", "0.25")
    assert r.exit_code == 0 and "delta x0.25, range" in r.output
    r = _cli("info", tmp_path / "c.inr")
    assert r.exit_code == 0 and "1 (range)" in r.output and "qparams_len" in r.output
    for bad, msg in ((("--quality", 50, "--level", 1, "--preset", "paper"), "cannot be combined"),
                     (("--bpp", 1, "--psnr", 20), "not bpp and psnr"),
                     (("--format-version", 1), "version 1 stores fp16"),
                     (("--quality", 0), "0 is not in the range")):
        r = _cli("encode", src, tmp_path / "d.inr", "--mode", "weights", "--model", tiny_model_path, "--steps", 1,
                 *bad)
        assert r.exit_code != 0 and msg in r.output, (bad, r.output)
        assert "Traceback" not in r.output and not (tmp_path / "d.inr").exists()


def test_fit_continues_exactly(tiny_model, rgb_image):
    """A fit resumed with its Adam states equals an unbroken one: the quantiser-aware steps
    can continue the plain steps' optimiser."""
    import copy

    from inrcodec.codec.weights.config import FitConfig
    from inrcodec.codec.weights.fit import fit
    from inrcodec.codec.weights.tiles import image_to_tiles
    net, theta0 = tiny_model.net(1), tiny_model.levels[1].theta0
    tg, w = image_to_tiles(rgb_image.astype(np.float32) / 127.5 - 1, 16)
    c = tile_coords(16)
    whole = fit(net, theta0, c, tg, w, FitConfig(steps=12, lr=1e-2, max_batch_pixels=512))
    states: list = []
    half = fit(net, theta0, c, tg, w, FitConfig(steps=7, lr=1e-2, max_batch_pixels=512),
               adam_out=states)
    assert states[0].step == 7 and states[0].exp_avg.shape == half.shape  # two tiles a chunk
    rest = fit(net, theta0, c, tg, w, FitConfig(steps=5, lr=1e-2, max_batch_pixels=512),
               start=half, adam=copy.deepcopy(states[0]))
    torch.testing.assert_close(rest, whole, rtol=0, atol=0)
    # an image's rows of a batch's state continue exactly as the whole batch does
    part = fit(net, theta0, c, tg[2:], w[2:], FitConfig(steps=5, lr=1e-2, max_batch_pixels=512),
               start=half[2:], adam=states[0].rows(2, half.shape[0]))
    torch.testing.assert_close(part, whole[2:], rtol=0, atol=0)


def test_sparse_delta_base_carries_over_between_phases(tmp_path):
    """Each retraining phase starts from the base the previous phase ended with."""
    from inrcodec.training.config import MetaConfig
    from inrcodec.training.meta import train_meta_sparse
    arch = Arch(width=8, depth=2, w0=30.0)
    tr = np.random.default_rng(1).integers(0, 255, (12, 8, 8, 3), dtype=np.uint8)
    cfg = MetaConfig(first_order=True, pretrain_steps=3, retrain_steps=0, rounds=2,
                     sparse_delta=True, outer_lr=1e-3)
    m = train_meta_sparse(arch, 8, tr, tr[:0], cfg, tmp_path / "m.safetensors")
    assert torch.equal(m.levels[1].base, m.levels[0].base)
    assert torch.equal(m.levels[2].base, m.levels[0].base)


def test_quantiser_aware_steps_are_chosen_when_they_pay(tiny_model, rgb_image):
    kw = dict(model=tiny_model, level=0, steps=40, lr=3e-3)
    coarse = inrcodec.encode_report(rgb_image, step_scale=3.0, **kw, mode="weights", format_version=2)
    assert coarse.qat_steps == 8  # rounding this coarsely costs more than 8 steps gain
    fine = inrcodec.encode_report(rgb_image, step_scale=0.3, **kw, mode="weights", format_version=2)
    assert fine.qat_steps == 0  # below step scale 0.4: all steps plain
    forced = inrcodec.encode_report(rgb_image, step_scale=0.3, qat_fraction=0.25, **kw, mode="weights", format_version=2)
    assert forced.qat_steps == 10
    fp16 = inrcodec.encode_report(rgb_image, quantizer="fp16", **kw, mode="weights", format_version=2)
    assert fp16.qat_steps == 0
    # a plain encode is the plain 40-step fit, quantised: the same as fp16's fit
    from inrcodec.codec.weights.codec import read
    _, _, t16 = read(fp16.data, tiny_model)
    _, _, tq = read(fine.data, tiny_model)
    step = float(np.frombuffer(wformat.qparams_section(
        fine.data, bitstream.unpack_header(fine.data)), "<f4").max())
    assert float((t16 - tq).abs().max()) <= step / 2 + 1e-3
