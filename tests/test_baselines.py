import dataclasses

import numpy as np
import pytest
import torch
from synthetic import sine_signals

from inrcodec.codec.weights.config import FitConfig
from inrcodec.codec.weights.tiles import tile_coords
from inrcodec.model.inr import INR, Arch, init_dense
from inrcodec.model.shared_model import scratch_model
from inrcodec.training.baselines import (evaluate, fit_with_pruning, imp_schedule, ladder_params,
                                         n_params, narrow_width, oneshot_schedule,
                                         train_dense_narrow, weight_positions, winning_ticket)
from inrcodec.training.config import MetaConfig
from inrcodec.training.meta import to_targets, train_meta_sparse

ARCH = Arch(width=12, depth=2, w0=30.0)
T = 8


def _signals(n, seed, size=T):
    return sine_signals(n, seed, size)


def test_ladder_params_match_algorithm1(tmp_path):
    cfg = MetaConfig(pretrain_steps=1, retrain_steps=1, rounds=4, first_order=True)
    m = train_meta_sparse(ARCH, T, _signals(6, 0), _signals(2, 1), cfg, tmp_path / "m.st")
    assert [lv.n_params for lv in m.levels] == ladder_params(ARCH, 4)


@pytest.mark.parametrize("target", [10, 200, 435, 436, 5000])
def test_narrow_width_is_the_smallest_with_enough_params(target):
    w = narrow_width(ARCH, target)
    assert n_params(dataclasses.replace(ARCH, width=w)) >= target
    if w > 1:
        assert n_params(dataclasses.replace(ARCH, width=w - 1)) < target


def test_dense_narrow_is_one_dense_level(tmp_path):
    cfg = MetaConfig(pretrain_steps=2, retrain_steps=1, rounds=5, first_order=True)
    m = train_dense_narrow(ARCH, 7, T, _signals(6, 0), _signals(2, 1), cfg, tmp_path / "n.st")
    assert len(m.levels) == 1 and m.arch.width == 7
    assert m.levels[0].n_params == n_params(dataclasses.replace(ARCH, width=7))


def test_pruning_during_the_fit_is_per_signal_global_magnitude_and_spares_biases():
    net = INR(ARCH)
    theta0 = net.flatten(init_dense(ARCH, torch.Generator().manual_seed(0)))
    sig = _signals(3, 4)
    tgt = to_targets(sig)
    is_w = weight_positions(net)
    assert int(is_w.sum()) == ARCH.n_weights() and int((~is_w).sum()) == ARCH.n_biases()
    cfg = FitConfig(steps=10, lr=1e-3)
    theta, alive = fit_with_pruning(net, theta0, tile_coords(T), tgt, torch.ones(tgt.shape[:2]),
                                    cfg, imp_schedule(10, 3))
    n = ARCH.n_weights()
    for _ in range(3):
        n -= round(0.2 * n)
    assert (alive & is_w).sum(1).tolist() == [n] * 3
    assert bool(alive[:, ~is_w].all())  # biases never pruned
    assert bool((theta[~alive] == 0).all())
    assert not torch.equal(alive[0], alive[1])  # each signal has its own mask
    # One-shot to the same density removes the same count in one go, at the middle step.
    assert oneshot_schedule(100, 0.8 ** 3) == {50: pytest.approx(1 - 0.512)}


def test_imp_schedule_spreads_prunings_inside_the_fit():
    assert imp_schedule(100, 3) == {25: 0.2, 50: 0.2, 75: 0.2}
    with pytest.raises(ValueError):
        imp_schedule(4, 10)


def test_evaluate_methods_report_matching_params():
    m = scratch_model(ARCH, T, n_levels=4)
    sig = _signals(4, 5)
    cfg = FitConfig(steps=5, lr=1e-3)
    sparse = evaluate("meta-sparse", sig, model=m, level=3, cfg=cfg)
    assert sparse.params == m.levels[3].n_params and len(sparse.psnr) == 4
    imp = evaluate("maml-imp", sig, model=m, cfg=cfg, imp_rounds=3)
    one = evaluate("maml-oneshot", sig, model=m, cfg=cfg, imp_rounds=3)
    assert imp.params == one.params == m.levels[3].n_params
    scratch = evaluate("scratch", sig, model=m, cfg=cfg, seed=3)
    assert scratch.params == m.levels[0].n_params
    assert all(np.isfinite(r.mean) for r in (sparse, imp, one, scratch))
    with pytest.raises(ValueError):
        evaluate("nope", sig, model=m)


def test_fitting_improves_over_the_start():
    m = scratch_model(ARCH, T, n_levels=1)
    sig = _signals(4, 6)
    before = evaluate("meta-sparse", sig, model=m, cfg=FitConfig(steps=0))
    after = evaluate("meta-sparse", sig, model=m, cfg=FitConfig(steps=30, lr=1e-3))
    assert after.mean > before.mean + 1


def test_winning_ticket_rewinds_and_prunes_20_percent_per_round():
    img = _signals(1, 7, size=16)[0]
    rows = winning_ticket(ARCH, img, steps=6, rounds=3, lr=1e-3, eval_every=2)
    n = ARCH.n_weights()
    for r, row in enumerate(rows):
        assert row["round"] == r and row["params"] == n + ARCH.n_biases()
        assert np.isfinite(row["peak_psnr"])
        n -= round(0.2 * n)
