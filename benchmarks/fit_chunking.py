"""Fit-step time vs pixels per forward/backward pass (gradient accumulation), width 64, 64 tiles of 64x64.

    python benchmarks/fit_chunking.py
Measured once on the 2-core CPU: 262144 px/pass 0.95 s/step; 32768 px/pass 0.42 s/step.
"""
import torch, time, inrcodec as ic
from inrcodec.fit import tile_losses
from inrcodec.tiling import tile_coords
m = ic.scratch_model(ic.Arch(width=64, depth=4, w0=30.0), tile=64, n_levels=11)
net = m.net(5)
B, T = 64, 64
coords = tile_coords(T); tgt = torch.rand(B, T*T, 3); w = torch.ones(B, T*T)
for cb in (64, 16, 8, 4, 2, 1):
    theta = m.levels[5].theta0.repeat(B, 1).requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=1e-4)
    for i in range(5):
        if i == 2: t = time.time()
        opt.zero_grad()
        for s in range(0, B, cb):
            l = tile_losses(net, theta[s:s+cb], coords, tgt[s:s+cb], w[s:s+cb]).sum(); l.backward()
        opt.step()
    print(cb, cb*T*T, (time.time()-t)/3)
