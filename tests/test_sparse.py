"""The compact (sparsity-aware) path computes the masked dense network's outputs and gradients."""
import numpy as np
import pytest
import torch

from inrcodec.codec.weights.config import FitConfig
from inrcodec.codec.weights.fit import fit
from inrcodec.codec.weights.tiles import tile_coords
from inrcodec.model import accel
from inrcodec.model.inr import INR, Arch, init_dense
from inrcodec.model.prune import magnitude_prune
from inrcodec.model.shared_model import load_model
from inrcodec.model.sparse import CPU_THRESHOLD, compute_path, plan_for
from inrcodec.training.config import MetaConfig
from inrcodec.training.meta import maml_loss


def _net(arch, rounds, seed=0, random_masks=None):
    dense = init_dense(arch, torch.Generator().manual_seed(seed))
    if random_masks is not None:
        g = torch.Generator().manual_seed(seed + 7)
        masks = [torch.rand(w.shape, generator=g) < random_masks for w, _ in dense]
    else:
        masks = [torch.ones(w.shape, dtype=torch.bool) for w, _ in dense]
        for _ in range(rounds):
            masks = magnitude_prune([w for w, _ in dense], masks, 0.2)
    net = INR(arch, masks)
    return net, net.flatten(dense)


def _outputs_and_grads(net, theta, coords, path, second_order=False):
    t = theta.clone().requires_grad_(True)
    tgt = torch.linspace(-1, 1, coords.shape[-2] * 3).reshape(1, -1, 3).expand(t.shape[0], -1, -1)
    with compute_path(path):
        out = net(t, coords)
        if second_order:
            loss = maml_loss(net, t[0], coords, tgt[:2], MetaConfig(inner_steps=2))
        else:
            loss = (out - tgt).square().sum()
    (g,) = torch.autograd.grad(loss, t)
    return out.detach(), g


CASES = [
    # (arch, magnitude rounds, random density or None); widths after compaction and
    # constant units in the comments
    (Arch(width=32, depth=3, w0=30.0), 10, None),   # [2, 18, 9, 6, 3], 2 constants
    (Arch(width=24, depth=4, w0=30.0), 0, 0.15),    # [1, 3, 10, 15, 9, 3], 36 constants
    (Arch(width=16, depth=2, w0=30.0), 3, None),    # mild: nothing removed
    (Arch(family="ffn", width=20, depth=3, ffn_features=8), 0, 0.1),  # 6 constants
    (Arch(width=24, depth=4, w0=30.0), 0, 0.06),    # no unit depends on the pixel
]


@pytest.mark.parametrize("arch,rounds,rand", CASES)
def test_compact_equals_masked_dense_outputs_and_gradients(arch, rounds, rand):
    net, theta0 = _net(arch, rounds, random_masks=rand)
    theta = theta0 + 0.05 * torch.randn(4, net.n_params, generator=torch.Generator().manual_seed(1))
    coords = tile_coords(9)
    for c in (coords, torch.rand(4, 30, 2) * 2.2 - 1.1):  # shared and per-network coordinates
        out_d, g_d = _outputs_and_grads(net, theta, c, "dense")
        out_c, g_c = _outputs_and_grads(net, theta, c, "compact")
        torch.testing.assert_close(out_c, out_d, rtol=1e-5, atol=1e-5)
        scale = g_d.abs().max()
        torch.testing.assert_close(g_c / scale, g_d / scale, rtol=0, atol=1e-5)
        # what the dense network cannot move, the compact one does not either
        assert torch.all(g_c[g_d == 0] == 0)
        assert torch.all(g_d[g_c == 0].abs() <= 1e-6 * scale)


def test_compact_structure_removes_units_and_folds_constants():
    net, _ = _net(Arch(width=24, depth=4, w0=30.0), 0, random_masks=0.15)
    plan = net.compact_plan()
    assert plan.n_constants > 0  # units with no pixel-dependent input, folded into biases
    assert plan.widths[1:-1] != [24] * 4
    assert plan.cost_ratio() < 1.0
    full, _ = _net(Arch(width=16, depth=2), 0)
    assert full.compact_plan().cost_ratio() == 1.0 and full.compact_plan().n_constants == 0


def test_second_order_maml_gradient_is_the_same():
    net, theta0 = _net(Arch(width=24, depth=4, w0=30.0), 0, random_masks=0.15)
    theta = theta0.unsqueeze(0)
    _, g_d = _outputs_and_grads(net, theta, tile_coords(6), "dense", second_order=True)
    _, g_c = _outputs_and_grads(net, theta, tile_coords(6), "compact", second_order=True)
    scale = g_d.abs().max()
    torch.testing.assert_close(g_c / scale, g_d / scale, rtol=0, atol=1e-5)


def test_fit_through_either_path_ends_at_the_same_weights():
    net, theta0 = _net(Arch(width=32, depth=3, w0=30.0), 10)
    coords = tile_coords(8)
    tgt = torch.rand(3, 64, 3, generator=torch.Generator().manual_seed(2)) * 2 - 1
    w = torch.ones(3, 64)
    cfg = FitConfig(steps=10, lr=1e-3)
    with compute_path("dense"):
        a = fit(net, theta0, coords, tgt, w, cfg)
    with compute_path("compact"):
        b = fit(net, theta0, coords, tgt, w, cfg)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for th in (a, b):  # pruned weights stay exactly zero on the compact path too
        for (wt, _), m in zip(net.dense(th[0]), net.masks):
            assert torch.all(wt[~m] == 0)


def test_auto_choice_follows_the_cost_estimate_and_device():
    sparse_net, _ = _net(Arch(width=32, depth=3, w0=30.0), 10)
    dense_net, _ = _net(Arch(width=24, depth=3, w0=30.0), 0)
    assert sparse_net.compact_plan().cost_ratio() < CPU_THRESHOLD
    assert plan_for(sparse_net, "cpu") is not None
    assert plan_for(dense_net, "cpu") is None
    assert plan_for(sparse_net, "meta") is None  # unmeasured devices keep the dense path
    with compute_path("dense"):
        assert plan_for(sparse_net, "cpu") is None
    with compute_path("compact"):
        assert plan_for(dense_net, "cpu") is not None
    with pytest.raises(ValueError):
        with compute_path("fast"):
            pass


def test_bf16_autocast_fit_runs_and_stays_close():
    net, theta0 = _net(Arch(width=16, depth=2, w0=10.0), 2)
    coords = tile_coords(8)
    tgt = torch.rand(2, 64, 3, generator=torch.Generator().manual_seed(3)) * 2 - 1
    w = torch.ones(2, 64)
    cfg = FitConfig(steps=5, lr=1e-3)
    ref = fit(net, theta0, coords, tgt, w, cfg)
    with accel.options(amp="bf16"):
        low = fit(net, theta0, coords, tgt, w, cfg)
    assert low.dtype == torch.float32 and torch.isfinite(low).all()
    assert not torch.equal(low, ref)  # it did run in bf16
    assert float((low - ref).abs().max()) < 0.05
    with pytest.raises(ValueError):
        with accel.options(amp="fp8"):
            pass


def test_default_model_levels_pick_the_path_the_rule_says():
    m = load_model()
    ratios = [m.net(k).compact_plan().cost_ratio() for k in range(len(m.levels))]
    assert ratios[0] == 1.0 and plan_for(m.net(0), "cpu") is None
    assert np.all(np.diff(ratios) <= 1e-9)  # nested masks: never more work when sparser
    assert plan_for(m.net(m.default_level), "cpu") is not None


@pytest.mark.slow
def test_compiled_fit_matches_eager():
    """torch.compile (accel.options(compile=True)) changes the speed, not the result;
    two batch sizes (a batch's last pass) both run."""
    net, theta0 = _net(Arch(width=32, depth=3, w0=30.0), 10)
    coords = tile_coords(8)
    tgt = torch.rand(5, 64, 3, generator=torch.Generator().manual_seed(4)) * 2 - 1
    w = torch.ones(5, 64)
    cfg = FitConfig(steps=4, lr=1e-3, chunk_pixels=3 * 64)  # passes of 3 tiles, then 2
    eager = fit(net, theta0, coords, tgt, w, cfg)
    with accel.options(compile=True):
        compiled = fit(net, theta0, coords, tgt, w, cfg)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
