import json

import numpy as np
import torch
from synthetic import sine_signals

from inrcodec.codec.weights.tiles import tile_coords
from inrcodec.model.inr import INR, Arch, init_dense
from inrcodec.model.prune import is_nested
from inrcodec.model.shared_model import SharedModel
from inrcodec.training.config import MetaConfig
from inrcodec.training.meta import load_checkpoint, maml_loss, train_meta_sparse

ARCH = Arch(width=12, depth=2, w0=30.0)
T = 8


def _signals(n, seed, size=T):
    return sine_signals(n, seed, size)


def test_one_maml_step_lowers_post_adaptation_loss():
    for first_order in (False, True):
        cfg = MetaConfig(first_order=first_order, inner_lr=1e-2)
        net = INR(ARCH)
        theta = net.flatten(init_dense(ARCH, torch.Generator().manual_seed(0))).requires_grad_(True)
        coords = tile_coords(T)
        tgt = torch.from_numpy(_signals(3, 0).astype(np.float32) / 127.5 - 1).reshape(3, -1, 3)
        before = maml_loss(net, theta, coords, tgt, cfg)
        before.backward()
        with torch.no_grad():
            stepped = theta - 1e-3 * theta.grad  # one plain outer step on the same tasks
        after = maml_loss(net, stepped, coords, tgt, cfg)
        assert float(after.detach()) < float(before.detach())


def test_second_order_gradient_differs_from_first_order():
    net = INR(ARCH)
    th = net.flatten(init_dense(ARCH, torch.Generator().manual_seed(0)))
    coords = tile_coords(T)
    tgt = torch.from_numpy(_signals(3, 1).astype(np.float32) / 127.5 - 1).reshape(3, -1, 3)
    grads = []
    for fo in (False, True):
        t = th.clone().requires_grad_(True)
        maml_loss(net, t, coords, tgt, MetaConfig(first_order=fo)).backward()
        grads.append(t.grad)
    assert not torch.allclose(grads[0], grads[1])


def _train(tmp_path, name, cfg, **kw):
    out = tmp_path / f"{name}.safetensors"
    logs = []
    m = train_meta_sparse(ARCH, T, _signals(40, 2), _signals(4, 3), cfg, out, log=logs.append,
                          **kw)
    return m, out, logs


def test_algorithm1_ladder(tmp_path):
    cfg = MetaConfig(pretrain_steps=6, retrain_steps=3, rounds=3, first_order=True, outer_lr=1e-3)
    m, out, logs = _train(tmp_path, "a", cfg)
    assert len(m.levels) == 4 and [e["phase"] for e in logs] == [0, 1, 2, 3]
    n = [lv.n_weights for lv in m.levels]
    total = ARCH.n_weights()
    assert n[0] == total
    for k in range(1, 4):
        assert n[k] == n[k - 1] - round(0.2 * n[k - 1])
        assert is_nested(m.levels[k].masks, m.levels[k - 1].masks)
        assert m.levels[k].n_params == n[k] + ARCH.n_biases()
    assert all(np.isfinite(e["val_psnr"]) for e in logs)
    assert SharedModel.load(out).hash == m.hash
    assert json.loads(m.info["meta_config"])["rounds"] == 3


def test_resume_continues_where_checkpoint_left_off(tmp_path):
    cfg = MetaConfig(pretrain_steps=8, retrain_steps=6, rounds=2, first_order=True, outer_lr=1e-3)
    full, _, _ = _train(tmp_path, "full", cfg)

    class Stop(Exception):
        pass

    def stop_mid_round(done, total, loss):
        if done == 8 + 6 + 5:  # inside the second retraining phase, one step past a checkpoint
            raise Stop

    out = tmp_path / "part.safetensors"
    try:
        train_meta_sparse(ARCH, T, _signals(40, 2), _signals(4, 3), cfg, out,
                          progress=stop_mid_round, checkpoint_every=2)
    except Stop:
        pass
    st = load_checkpoint(out.with_suffix(".ckpt.safetensors"), ARCH)
    assert (st.phase, st.step, len(st.levels)) == (2, 4, 2)
    steps_seen = []
    resumed = train_meta_sparse(ARCH, T, _signals(40, 2), _signals(4, 3), cfg, out, resume=True,
                                progress=lambda d, t, l: steps_seen.append(d))
    assert steps_seen[0] == 8 + 6 + 5  # resumes right after the checkpointed step 4
    assert len(resumed.levels) == 3
    for a, b in zip(resumed.levels, full.levels):
        assert all(torch.equal(x, y) for x, y in zip(a.masks, b.masks))
        torch.testing.assert_close(a.theta0, b.theta0)


def test_random_pruning_schedule(tmp_path):
    cfg = MetaConfig(pretrain_steps=2, retrain_steps=1, rounds=2, first_order=True,
                     pruning="random")
    m, _, _ = _train(tmp_path, "r", cfg)
    assert is_nested(m.levels[2].masks, m.levels[1].masks)


def test_early_stopping_keeps_the_best_validated_weights(tmp_path):
    # A large outer lr makes validation PSNR move a lot between checks.
    cfg = MetaConfig(pretrain_steps=8, retrain_steps=4, rounds=1, first_order=True,
                     outer_lr=3e-2, val_every=2)
    m, _, logs = _train(tmp_path, "es", cfg)
    for phase, n in ((0, 8), (1, 4)):
        checks = [e for e in logs if e.get("event") == "val" and e["phase"] == phase]
        assert [e["step"] for e in checks] == list(range(2, n + 1, 2))
        level = next(e for e in logs if "event" not in e and e["phase"] == phase)
        best = max(checks, key=lambda e: e["val_psnr"])
        assert level["kept_step"] == best["step"] and level["val_psnr"] == best["val_psnr"]


def test_resume_with_early_stopping_matches_an_unbroken_run(tmp_path):
    cfg = MetaConfig(pretrain_steps=8, retrain_steps=6, rounds=1, first_order=True,
                     outer_lr=3e-2, val_every=3)
    full, _, _ = _train(tmp_path, "full", cfg)

    class Stop(Exception):
        pass

    def stop(done, total, loss):
        if done == 7:  # after the step-6 checkpoint, with a best kept from steps 3 and 6
            raise Stop
    out = tmp_path / "part.safetensors"
    try:
        train_meta_sparse(ARCH, T, _signals(40, 2), _signals(4, 3), cfg, out, progress=stop,
                          checkpoint_every=2)
    except Stop:
        pass
    assert load_checkpoint(out.with_suffix(".ckpt.safetensors"), ARCH).best_theta is not None
    resumed = train_meta_sparse(ARCH, T, _signals(40, 2), _signals(4, 3), cfg, out, resume=True)
    for a, b in zip(resumed.levels, full.levels):
        torch.testing.assert_close(a.theta0, b.theta0)
    assert resumed.info["val_psnr"] == full.info["val_psnr"]
