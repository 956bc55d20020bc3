import time, torch, torch.nn.functional as F
from common import *
torch.set_num_threads(1)
H,W=512,768
c=Codec(7,32,analysis=False,arm_hidden=8,n_lam=1)
ys=[torch.zeros(1,1,h,w,requires_grad=True) for h,w in grid_shapes(H,W,7)]
x=torch.rand(1,3,H,W)
idx=torch.randint(0,H*W,(H*W//4,)); xf=x.flatten(2)[0].t()
f=lambda: (F.mse_loss(c.decode_px(ys,0,H,W,idx),xf[idx])+1e-3*c.rate_bits(ys)/(H*W)).backward()
f()
from torch.profiler import profile
with profile() as p:
    f(); f()
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
