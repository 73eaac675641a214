"""Per-step cost of each piece genae's trainer adds to the plain VAE loop of
benchmarks/throughput_vs_pythae.py (1 thread, subnormals flushed, 800 steps, median of 3 alternating
repeats): genae's batch sampler, the method's own ``train_step``, ``backward(inputs=...)`` (gradient
isolation), the finiteness check, the LR schedule, the log accumulation, and all together.

    OMP_NUM_THREADS=1 python benchmarks/vae_step_overheads.py
"""
import sys, time, copy, statistics
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import torch, torch.nn.functional as F
torch.set_num_threads(1); torch.set_flush_denormal(True)
import throughput_vs_pythae as B
from genae.data import DataConfig, load_dataset, BatchSampler
from genae.trainer import first_nonfinite
from genae.optim import build_schedule
from genae.data.core import Batch
class A: batch_size=64; latent=16; hidden=512; depth=1; steps=1000
ds = load_dataset(DataConfig("mnist", root=str(B.MNIST_10K)), "train")
x = ds.x.float() / 255
cfg = B.genae_config(A(), Path("unused-run-dir"), seed=0)  # nothing is written
tmpl = B.initial_vae(cfg, ds.info)
STEPS = 800

def loop(sampler=False, method_step=False, inputs=False, check=False, sched=False, logs=False):
    m = copy.deepcopy(tmpl)
    enc, dec = m.encoder, m.decoder
    params = [*enc.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    sch = build_schedule(opt, "constant", STEPS) if sched else None
    g = torch.Generator().manual_seed(0); n = len(x)
    smp = BatchSampler(ds, 64, 0, "cpu", "unit") if sampler else None
    acc = {}
    perm, pos = torch.randperm(n, generator=g), 0
    t0 = time.perf_counter()
    for i in range(STEPS):
        if smp is not None:
            xb = smp.next().x
        else:
            if pos + 64 > n:
                perm, pos = torch.randperm(n, generator=g), 0
            xb = x[perm[pos:pos + 64]]; pos += 64
        if method_step:
            upd = next(m.train_step(Batch(xb, None), i))
            loss = upd.losses["vae"]
        else:
            mu, logvar = enc(xb).chunk(2, dim=1)
            z = torch.addcmul(mu, (0.5 * logvar).exp(), torch.randn_like(mu))
            recon = F.binary_cross_entropy_with_logits(dec(z), xb, reduction="none").flatten(1).sum(1).mean()
            kl = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(1).mean()
            loss = recon + kl
            upd = None
        if check and upd is not None:
            first_nonfinite(upd)
        elif check:
            bool(torch.isfinite(torch.stack([loss.detach()])).all())
        if logs and upd is not None:
            for k, v in upd.logs.items():
                acc.setdefault(k, []).append(v.detach().float().reshape(()))
        if inputs:
            for p in params: p.grad = None
            loss.backward(inputs=params)
        else:
            opt.zero_grad(set_to_none=True); loss.backward()
        opt.step()
        if sch is not None: sch.step()
    return (time.perf_counter() - t0) / STEPS * 1e3

V = {"plain": {}, "+sampler": dict(sampler=True), "+method.train_step": dict(method_step=True),
     "+backward(inputs)": dict(inputs=True), "+nan check": dict(method_step=True, check=True),
     "+schedule": dict(sched=True), "+logs": dict(method_step=True, logs=True),
     "all": dict(sampler=True, method_step=True, inputs=True, check=True, sched=True, logs=True)}
res = {k: [] for k in V}
for r in range(3):
    for k, kw in V.items():
        res[k].append(loop(**kw))
for k, v in res.items():
    print(f"{k:22s} {statistics.median(v):.3f} ms/step", flush=True)
