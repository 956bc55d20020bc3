import time, torch, torch.nn.functional as F
torch.set_num_threads(1)
H,W=512,768; N=H*W
def T(name,fn,n=3):
    fn(); t=time.time()
    for _ in range(n): fn()
    print(name, (time.time()-t)/n, flush=True)
z=torch.randn(7,N,requires_grad=True)
w1=torch.randn(32,7,requires_grad=True); b1=torch.zeros(32,1,requires_grad=True)
w2=torch.randn(32,32,requires_grad=True); b2=torch.zeros(32,1,requires_grad=True)
w3=torch.randn(3,32,requires_grad=True)
def f():
    h=torch.relu(torch.addmm(b1,w1,z)); h=torch.relu(torch.addmm(b2,w2,h)); return w3@h
T("CxN fwd", f)
T("CxN fwd+bwd", lambda: f().sum().backward())
zt=torch.randn(N,7,requires_grad=True)
l1=torch.nn.Linear(7,32); l2=torch.nn.Linear(32,32); l3=torch.nn.Linear(32,3)
g=lambda: l3(torch.relu(l2(torch.relu(l1(zt)))))
T("NxC fwd", g); T("NxC fwd+bwd", lambda: g().sum().backward())
z4=torch.randn(1,7,H,W,requires_grad=True)
c1=torch.nn.Conv2d(7,32,1); c2=torch.nn.Conv2d(32,32,1); c3=torch.nn.Conv2d(32,3,1)
h=lambda: c3(torch.relu(c2(torch.relu(c1(z4)))))
T("conv1x1 fwd", h); T("conv1x1 fwd+bwd", lambda: h().sum().backward())
y=torch.randn(1,3,H,W,requires_grad=True); cv=torch.nn.Conv2d(3,3,3,padding=1,padding_mode='replicate')
T("conv3 fwd+bwd", lambda: cv(y).sum().backward())
cv0=torch.nn.Conv2d(3,3,3,padding=1)
T("conv3 zero-pad fwd+bwd", lambda: cv0(y).sum().backward())
