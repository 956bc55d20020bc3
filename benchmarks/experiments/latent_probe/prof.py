import time, torch, torch.nn.functional as F
from common import *
torch.set_num_threads(1)
H,W=512,768
c=Codec(7,32,analysis=False,arm_hidden=8,n_lam=1)
ys=[torch.zeros(1,1,h,w,requires_grad=True) for h,w in grid_shapes(H,W,7)]
x=torch.rand(1,3,H,W)
def T(name,fn,n=3):
    fn(); t=time.time()
    for _ in range(n): fn()
    print(name, (time.time()-t)/n, flush=True)
T("upsample fwd", lambda: upsample_all(ys,H,W))
z=upsample_all([y.detach() for y in ys],H,W)
#, lambda: c.synth(z))
#, lambda: c.synth(z.requires_grad_()).sum().backward())
T("arm fwd", lambda: c.rate_bits(ys))
T("arm fwd+bwd", lambda: c.rate_bits(ys).backward())
T("full step", lambda: (F.mse_loss(c.decode(ys,0,H,W),x)+1e-3*c.rate_bits(ys)/(H*W)).backward())
idx=torch.randint(0,H*W,(H*W//4,)); xf=x.flatten(2)[0].t()
T("px step", lambda: (F.mse_loss(c.decode_px(ys,0,H,W,idx),xf[idx])+1e-3*c.rate_bits(ys)/(H*W)).backward())
c16=Codec(7,16,analysis=False,arm_hidden=8,n_lam=1)
T("px step h16", lambda: (F.mse_loss(c16.decode_px(ys,0,H,W,idx),xf[idx])+1e-3*c16.rate_bits(ys)/(H*W)).backward())
