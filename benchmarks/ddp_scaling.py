"""Data-parallel training (issue 31): the 2-process CPU equivalence table, the DDP overhead at world
size 1, and a scaling model for 8 GPUs per node and 4 nodes.

    PYTHONPATH=src python benchmarks/ddp_scaling.py equivalence [--methods vae,wae-gan,...] [--steps 4]
    PYTHONPATH=src python benchmarks/ddp_scaling.py overhead [--steps 60]
    PYTHONPATH=src python benchmarks/ddp_scaling.py scaling [--cpu-batch 16]

equivalence: for each method (tiny configs of tests/conftest.py, fake data, global batch 20), N
steps in one process vs 2 gloo processes on the CPU; the max |weight difference| over every
tensor of the final checkpoint, next to how far one step moves the weights (the scale the
difference must be small against), and whether the weights are bit-identical.

overhead: steps/s of the plain trainer vs the same run inside a world-size-1 process group (what
``torchrun --nproc-per-node 1`` gives), interleaved repeats, median.

scaling: per method, the bytes all-reduced per training step (every player's gradients after
each of its updates, plus CTRL's Gram matrices and counts, forward and backward) from parameter
counts, the FLOPs of one step (torch's FlopCounterMode at a small per-device batch, scaled
linearly) and the CPU step time measured here, and a ring/hierarchical all-reduce model on stated
bandwidths (no GPU was available: GPU compute time is FLOPs / an assumed achieved throughput).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from conftest import TINY, fast_train_overrides, tiny_overrides  # noqa: E402
from genae import runs  # noqa: E402
from genae.config import build_config  # noqa: E402
from genae.training import train  # noqa: E402

BATCH = 20


def _cfg(root, name, method, steps, **extra):
    base = dict(batch_size=BATCH, threads=1, sample_every=10**6)
    base.update(extra)
    return build_config(method, "fake", overrides=tiny_overrides(method) + fast_train_overrides(steps, **base),
                        out=str(Path(root) / name))


def _weights(run):
    from safetensors.torch import load_file
    return load_file(str(runs.latest_checkpoint(run) / "model.safetensors"))


def _diff(a, b):
    """Max |a - b| over the float tensors; integer buffers (BatchNorm's step counters) must be equal."""
    assert all(torch.equal(a[k], b[k]) for k in a if not a[k].is_floating_point() and a[k].shape == b[k].shape)
    return max((float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0)
               for k in a if a[k].is_floating_point())


# --------------------------------------------------------------------------------------------
def _equiv_worker(rank, world, root, methods, steps):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/rendezvous", rank=rank, world_size=world)
    try:
        for m in methods:
            try:
                train(_cfg(root, f"ddp-{m}", m, steps))
            except Exception as e:  # a method that cannot run this way is reported, not fatal
                if rank == 0:
                    (Path(root) / f"ddp-{m}.error").write_text(f"{type(e).__name__}: {e}")
    finally:
        dist.destroy_process_group()


def equivalence(methods, steps):
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        mp.spawn(_equiv_worker, args=(2, root, methods, steps), nprocs=2, join=True)
        rows = []
        for m in methods:
            err = Path(root) / f"ddp-{m}.error"
            if err.exists():
                rows.append((m, None, None, err.read_text()))
                continue
            single = _weights(train(_cfg(root, f"one-{m}", m, steps)))
            before = _weights(train(_cfg(root, f"step-{m}", m, steps - 1)))
            moved = max(float((single[k].double() - before[k].double()).abs().max())  # the last step
                        for k in single if single[k].is_floating_point() and single[k].numel())
            d = _diff(single, _weights(Path(root) / f"ddp-{m}"))
            rows.append((m, d, moved, ""))
    print(f"| method | max abs weight diff (W=2 vs W=1, {steps} steps) | the last step moves weights by | bit-identical |")
    print("|---|---|---|---|")
    for m, d, moved, err in rows:
        if d is None:
            print(f"| {m} | failed: {err} | | |")
        else:
            print(f"| {m} | {d:.2e} | {moved:.2e} | {'yes' if d == 0 else 'no'} |")
    return rows


# --------------------------------------------------------------------------------------------
def _timed(cfg):
    t0 = time.perf_counter()
    train(cfg)
    return time.perf_counter() - t0


def _timing_worker(rank, world, root, method, steps, tag):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/rdv-{tag}", rank=rank, world_size=world)
    try:
        kw = dict(ckpt_every=10**6, log_every=10**6, batch_size=64)
        _timed(_cfg(root, f"w2-warm-{tag}", method, 2, **kw))  # first-call costs of a fresh process
        t = _timed(_cfg(root, f"w2-{tag}", method, steps, **kw))
        if rank == 0:
            (Path(root) / f"w2-{tag}.time").write_text(str(t))
    finally:
        dist.destroy_process_group()


def overhead(steps, repeats, methods):
    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory() as root:
        for m in methods:
            plain, ddp, two = [], [], []
            _timed(_cfg(root, f"warm-{m}", m, 2, ckpt_every=10**6, log_every=10**6, batch_size=64))
            for i in range(repeats):  # interleaved: machine load drifts between repeats
                kw = dict(ckpt_every=10**6, log_every=10**6, batch_size=64)
                plain.append(_timed(_cfg(root, f"p{i}-{m}", m, steps, **kw)))
                dist.init_process_group("gloo", init_method=f"file://{root}/rdv{i}-{m}", rank=0, world_size=1)
                try:
                    ddp.append(_timed(_cfg(root, f"d{i}-{m}", m, steps, **kw)))
                finally:
                    dist.destroy_process_group()
                mp.spawn(_timing_worker, args=(2, root, m, steps, f"{i}-{m}"), nprocs=2, join=True)
                two.append(float((Path(root) / f"w2-{i}-{m}.time").read_text()))
            out[m] = (statistics.median(plain), statistics.median(ddp), statistics.median(two))
    print(f"| method | plain trainer s ({steps} steps, batch 64) | world size 1 process group s | ratio | "
          "world size 2 (2 processes, 1 core each) s | speed-up |")
    print("|---|---|---|---|---|---|")
    for m, (p, d, t2) in out.items():
        print(f"| {m} | {p:.3f} | {d:.3f} | {d / p:.3f} | {t2:.3f} | {p / t2:.2f} |")
    return out


# --------------------------------------------------------------------------------------------
# Interconnect assumptions (stated, not measured: no GPU or network here)
NVLINK_GBS = 450.0      # NVLink 4 on H100 SXM: ~450 GB/s per direction per GPU
IB_GBS = 400 / 8        # 400 Gb/s InfiniBand per node = 50 GB/s per direction per node
LAT_INTRA = 15e-6       # per all-reduce inside a node (NCCL small-message latency)
LAT_INTER = 40e-6       # per all-reduce across nodes
GPU_TFLOPS = 250.0      # assumed achieved bf16 throughput of one H100 on these small conv nets (~25 % of peak)


def allreduce_time(nbytes, gpus_per_node, nodes):
    """Seconds for one all-reduce of ``nbytes``: ring over NVLink inside a node, then (several
    nodes) the node's share over InfiniBand, hierarchical (each node moves 2(N-1)/N of the buffer)."""
    t = 0.0
    if gpus_per_node > 1:
        t += 2 * (gpus_per_node - 1) / gpus_per_node * nbytes / (NVLINK_GBS * 1e9) + LAT_INTRA
    if nodes > 1:
        t += 2 * (nodes - 1) / nodes * nbytes / (IB_GBS * 1e9) + LAT_INTER
    return t


SCALING = {  # method -> (config overrides, data, global batch); the papers' recipes at full scale
    "ctrl-multi": (["model.arch='resnet32'", "model.n_enc_steps=2", "model.delta_r_pre_step=True"], "cifar10", 2048),
    "vae": ([], "mnist", 2048),
    "wae-gan": ([], "mnist", 2048),
    "maskaae": ([], "mnist", 2048),
    "dcgan": ([], "cifar10", 2048),
}


def _method_and_batch(name, overrides, data, per_device):
    from genae.data.core import Batch, DataInfo

    cfg = build_config(name, "fake", overrides=overrides + ["train.device='cpu'"])
    shape = (3, 32, 32) if data == "cifar10" else (1, 28, 28)
    info = DataInfo(shape=shape, num_classes=10, kind="image", size=50000)
    method = runs.build_method(cfg, info)
    g = torch.Generator().manual_seed(0)
    x = torch.rand((per_device, *shape), generator=g) * (2 if method.input_range == "tanh" else 1) \
        - (1 if method.input_range == "tanh" else 0)
    y = torch.arange(per_device) % 10
    return method, Batch(x, y)


def _step(method, batch):
    """One training step: every update's backward (no optimizer: its cost is tiny and local).
    Returns the list of (players, their parameter count) per update."""
    opts = method.optimizers()
    params = {k: [p for grp in o.param_groups for p in grp["params"]] for k, o in opts.items()}
    updates = []
    for up in method.train_step(batch, 0):
        for i, (name, loss) in enumerate(up.losses.items()):
            loss.backward(inputs=params[name], retain_graph=i < len(up.losses) - 1)
        updates.append({name: sum(p.numel() for p in params[name]) for name in up.losses})
    return updates


class _Flops:
    """FLOPs of the aten ops run inside (torch's flop formulas; FlopCounterMode's module tracker
    cannot follow ``autograd.grad``, which the gradient penalties use)."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import flop_registry

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                f = flop_registry.get(func._overloadpacket)
                if f is not None:
                    counter.total += f(*args, **kwargs, out_val=out)
                return out

        self.total, self.mode = 0, Mode()

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)


def scaling(cpu_batch):
    torch.set_num_threads(1)
    print("Assumptions: NVLink 4 450 GB/s per direction per GPU (H100 SXM), 400 Gb/s InfiniBand per node, "
          f"all-reduce latency {LAT_INTRA * 1e6:.0f} µs in a node / {LAT_INTER * 1e6:.0f} µs across nodes, "
          f"{GPU_TFLOPS:.0f} TFLOP/s achieved per GPU (assumed; no GPU here), no overlap of "
          "communication with compute (genae all-reduces after each backward).\n")
    print("| method | global batch | params (per update, summed) | grad bytes/step | Gram bytes/step | "
          "CPU step s (batch %d, measured) | GFLOP/step per GPU (8 GPUs) | eff. 8 GPUs | eff. 4×8 GPUs |" % cpu_batch)
    print("|---|---|---|---|---|---|---|---|---|")
    rows = {}
    for name, (over, data, gbatch) in SCALING.items():
        method, batch = _method_and_batch(name, over, data, cpu_batch)
        _step(method, batch)  # warm-up
        t0 = time.perf_counter()
        updates = _step(method, batch)
        cpu_s = time.perf_counter() - t0
        with _Flops() as fc:
            _step(method, batch)
        flops_small = fc.total
        grad_bytes = 4 * sum(sum(u.values()) for u in updates)
        gram_bytes = 0
        if name.startswith("ctrl"):
            c = method.cfg
            d, k = c.feature_dim, method.num_classes
            per_call_j = (2 * k * d * d + 2 * k) * 4 * 2      # z and ẑ class Grams + counts, fwd + bwd
            per_call_pre = (k * d * d + k) * 4 * 2            # ΔR(Z) pre-step: z only
            n_j = c.n_enc_steps - (1 if c.delta_r_pre_step else 0) + 1
            gram_bytes = n_j * per_call_j + (per_call_pre if c.delta_r_pre_step else 0)
        n_coll = sum(1 for _ in updates) + (2 * (len(updates)) if name.startswith("ctrl") else 0)
        effs = []
        for gpn, nodes in ((8, 1), (8, 4)):
            per_dev = gbatch // (gpn * nodes)
            compute = flops_small * per_dev / cpu_batch / (GPU_TFLOPS * 1e12)
            comm = sum(allreduce_time(4 * sum(u.values()), gpn, nodes) for u in updates)
            if gram_bytes:
                n_calls = len(updates)
                comm += 2 * n_calls * allreduce_time(gram_bytes / (2 * n_calls), gpn, nodes)
            effs.append(compute / (compute + comm))
        gflop = flops_small * (gbatch // 8) / cpu_batch / 1e9
        nparams = sum(sum(u.values()) for u in updates)
        rows[name] = dict(batch=gbatch, params=nparams, grad_bytes=grad_bytes, gram_bytes=gram_bytes,
                          cpu_s=cpu_s, gflop=gflop, eff8=effs[0], eff32=effs[1], collectives=n_coll)
        print(f"| {name} | {gbatch} | {nparams / 1e6:.2f} M | {grad_bytes / 1e6:.1f} MB | {gram_bytes / 1e6:.2f} MB | "
              f"{cpu_s:.3f} | {gflop:.0f} | {effs[0] * 100:.1f} % | {effs[1] * 100:.1f} % |")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["equivalence", "overhead", "scaling"])
    ap.add_argument("--methods", default=None, help="comma-separated (default: every method of TINY)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu-batch", type=int, default=16)
    ap.add_argument("--json", default=None, help="also write the numbers here")
    a = ap.parse_args()
    if a.what == "equivalence":
        methods = a.methods.split(",") if a.methods else sorted(TINY)
        res = equivalence(methods, a.steps)
    elif a.what == "overhead":
        res = overhead(a.steps, a.repeats, (a.methods or "vae,ctrl-multi").split(","))
    else:
        res = scaling(a.cpu_batch)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
