import torch

from inrcodec.codec.weights.config import FitConfig
from inrcodec.codec.weights.fit import fit
from inrcodec.codec.weights.tiles import tile_coords
from inrcodec.model.inr import INR, Arch, init_dense
from inrcodec.model.prune import is_nested, magnitude_prune, random_prune


def _pruned_net(arch, rounds=3, seed=0):
    dense = init_dense(arch, torch.Generator().manual_seed(seed))
    masks = [torch.ones(w.shape, dtype=torch.bool) for w, _ in dense]
    for _ in range(rounds):
        masks = magnitude_prune([w for w, _ in dense], masks, 0.2)
    return INR(arch, masks), dense


def test_batched_forward_equals_separate_forwards():
    for family in ("siren", "ffn"):
        arch = Arch(family=family, width=12, depth=3, ffn_features=8)
        net, dense = _pruned_net(arch)
        theta = net.flatten(dense) + 0.01 * torch.randn(5, net.n_params)
        coords = tile_coords(9)
        batched = net(theta, coords)
        for b in range(5):
            alone = net(theta[b:b + 1], coords)
            torch.testing.assert_close(batched[b:b + 1], alone, rtol=1e-5, atol=1e-6)


def test_flat_vector_matches_dense_masked_network():
    arch = Arch(width=10, depth=2)
    net, dense = _pruned_net(arch)
    theta = net.flatten(dense)
    coords = tile_coords(7)
    h = coords
    for k, ((w, b), m) in enumerate(zip(dense, net.masks)):
        h = h @ (w * m).t() + b
        if k < len(dense) - 1:
            h = torch.sin(arch.w0 * h)
    torch.testing.assert_close(net(theta.unsqueeze(0), coords)[0], h, rtol=1e-4, atol=1e-5)


def test_per_network_coordinates():
    arch = Arch(width=8, depth=2)
    net, dense = _pruned_net(arch, rounds=1)
    theta = net.flatten(dense).repeat(2, 1)
    c = torch.rand(2, 11, 2) * 2 - 1
    out = net(theta, c)
    torch.testing.assert_close(out[1], net(theta[:1], c[1])[0])


def test_pruned_entries_stay_exactly_zero_through_fitting():
    arch = Arch(width=16, depth=3)
    net, dense = _pruned_net(arch, rounds=4)
    coords = tile_coords(8)
    targets = torch.rand(3, 64, 3) * 2 - 1
    theta = fit(net, net.flatten(dense), coords, targets, torch.ones(3, 64),
                FitConfig(steps=5, lr=1e-2))
    for b in range(3):
        for (w, _), m in zip(net.dense(theta[b]), net.masks):
            assert torch.all(w[~m] == 0)
            assert torch.count_nonzero(w[m]) > 0


def test_fit_lowers_loss_and_chunking_is_exact():
    arch = Arch(width=16, depth=3)
    net, dense = _pruned_net(arch, rounds=1)
    coords = tile_coords(8)
    targets = torch.rand(6, 64, 3) * 2 - 1
    w = torch.ones(6, 64)
    w[2, 40:] = 0  # a partial edge tile
    theta0 = net.flatten(dense)
    losses = []
    a = fit(net, theta0, coords, targets, w, FitConfig(steps=20, lr=1e-3),
            progress=lambda d, t, l: losses.append(l))
    assert losses[-1] < losses[0]
    b = fit(net, theta0, coords, targets, w,
            FitConfig(steps=20, lr=1e-3, max_batch_pixels=128, chunk_pixels=64))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_padding_pixels_do_not_affect_fit():
    arch = Arch(width=8, depth=2)
    net, dense = _pruned_net(arch, rounds=1)
    coords = tile_coords(6)
    t1 = torch.rand(1, 36, 3)
    t2 = t1.clone()
    t2[0, 30:] = 5.0  # garbage in padding
    w = torch.ones(1, 36)
    w[0, 30:] = 0
    cfg = FitConfig(steps=5, lr=1e-3)
    th = net.flatten(dense)
    torch.testing.assert_close(fit(net, th, coords, t1, w, cfg), fit(net, th, coords, t2, w, cfg))


def test_magnitude_prune_global_threshold_and_biases_untouched():
    arch = Arch(width=20, depth=3)
    dense = init_dense(arch, torch.Generator().manual_seed(3))
    weights = [w for w, _ in dense]
    masks = [torch.ones(w.shape, dtype=torch.bool) for w in weights]
    new = magnitude_prune(weights, masks, 0.2)
    n_all = sum(m.numel() for m in masks)
    n_kept = sum(int(m.sum()) for m in new)
    assert n_all - n_kept == round(0.2 * n_all)
    kept = torch.cat([w[m].abs() for w, m in zip(weights, new)])
    dropped = torch.cat([w[~m].abs() for w, m in zip(weights, new)])
    assert dropped.max() <= kept.min()  # one threshold over all layers
    assert is_nested(new, masks)
    net = INR(arch, new)
    assert net.n_params == n_kept + arch.n_biases()  # all biases survive
    again = magnitude_prune(weights, new, 0.2)
    assert is_nested(again, new) and not is_nested(new, again)


def test_random_prune_rate_and_nesting():
    arch = Arch(width=20, depth=3)
    masks = [torch.ones(s, dtype=torch.bool) for s in arch.layer_shapes()]
    g = torch.Generator().manual_seed(0)
    new = random_prune(masks, 0.2, g)
    n_all = arch.n_weights()
    assert n_all - sum(int(m.sum()) for m in new) == round(0.2 * n_all)
    assert is_nested(new, masks)
