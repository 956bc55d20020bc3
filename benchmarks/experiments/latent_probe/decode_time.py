"""Decode-side compute for one 768x512 image, 1 thread: ARM evaluated in parallel on the
decoded integers (a lower bound: a real decoder needs the causal order, e.g. a wavefront of
h+2w steps per grid) + range decoding with constriction + upsampling + synthesis.
python decode_time.py ckpt_relu.pt"""
import sys, time, json
import numpy as np, torch, constriction
from common import Codec, dev_files, load, laplace_bits
torch.set_num_threads(1)
ck = torch.load(sys.argv[1]); c = Codec(**ck["cfg"]); c.load_state_dict(ck["state"])
a, x = load(dev_files()[16]); H, W = a.shape[:2]
with torch.no_grad():
    g = torch.exp(c.lg[1]); qs = [torch.round(y * g[k]) for k, y in enumerate(c.analysis(x))]
    t = time.time(); prm = c.arm(qs); t_arm = time.time() - t
    sym = np.concatenate([q.flatten().numpy().astype(np.int32) for q in qs])
    mu = np.concatenate([m.flatten().numpy().astype(np.float64) for m, _ in prm])
    b = np.concatenate([s.flatten().numpy().astype(np.float64) for _, s in prm])
    m = constriction.stream.model.QuantizedLaplace(int(sym.min()) - 1, int(sym.max()) + 1)
    e = constriction.stream.queue.RangeEncoder(); e.encode(sym, m, mu, b)
    d = constriction.stream.queue.RangeDecoder(e.get_compressed())
    t = time.time(); out = d.decode(m, mu, b); t_rc = time.time() - t
    assert (out == sym).all()
    t = time.time(); xh = c.decode(qs, 1, H, W); t_syn = time.time() - t
print(json.dumps(dict(arm_parallel_s=t_arm, range_decode_s=t_rc, synth_s=t_syn,
                      n_latents=int(sym.size), synth_macs_px=c.synth.macs_per_pixel())))
