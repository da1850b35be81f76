"""Gal et al.'s Bayesian CNN in PyTorch on the CPU (2 threads): training and inference images/s
(the comparison for tools/trainer-bench; see README.md there)."""
import torch, time, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(2)
class Cnn(nn.Module):
    def __init__(s):
        super().__init__()
        s.c1=nn.Conv2d(1,32,4); s.c2=nn.Conv2d(32,32,4); s.f1=nn.Linear(3872,128); s.f2=nn.Linear(128,10)
    def forward(s,x):
        x=F.relu(s.c1(x)); x=F.relu(s.c2(x)); x=F.max_pool2d(x,2); x=F.dropout(x,0.25,s.training)
        x=x.flatten(1); x=F.relu(s.f1(x)); x=F.dropout(x,0.5,s.training); return s.f2(x)
for batch in [64,128]:
    m=Cnn(); opt=torch.optim.Adam(m.parameters(),1e-3)
    x=torch.rand(batch,1,28,28); y=torch.arange(batch)%10
    def step():
        opt.zero_grad(); l=F.cross_entropy(m(x),y); l.backward(); opt.step()
    for _ in range(3): step()
    t=time.perf_counter(); n=20
    for _ in range(n): step()
    s=time.perf_counter()-t
    print(f"torch batch {batch}: {batch*n/s:.0f} images/s train")
    m.eval()
    with torch.no_grad():
        t=time.perf_counter()
        for _ in range(n): m(x)
        print(f"torch batch {batch}: {batch*n/(time.perf_counter()-t):.0f} images/s inference")
