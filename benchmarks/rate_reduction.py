"""Forward + backward time of ``ctrl_multi_objective`` against naive implementations.

Setting of the issue: n = 2048 samples, d = 128, k = 10 balanced classes, random unit-norm z and ẑ,
float32 on the CPU. Two naive baselines, both written here from the public LDR/CTRL code's recipe
(per-class boolean masks, ``torch.logdet`` of each d×d matrix I + d/(n ε²) ZᵀZ, a Python loop over
classes):

* ``public``: structured as the public code is: ΔR(z) and ΔR(ẑ) by a loop over classes, then for
  each class a 2-group ΔR of the union (so R(z_j) and R(ẑ_j) are computed again): 5k + 2 logdets.
* ``loop``: the same recipe without the recomputation (3k + 2 logdets), a stronger baseline.

The implementations run alternately in one process, ``--repeats`` rounds after a warm-up; medians
are reported with the speed-ups and the maximum relative differences of the values and gradients
(w.r.t. z and ẑ, relative to the largest gradient entry).

    python benchmarks/rate_reduction.py                 # torch's default thread count
    python benchmarks/rate_reduction.py --threads 1 --repeats 40

Where the time goes (1 thread, this 2-core AVX-512 CPU, ≈10 ms in all): forward ≈5 ms (class Gram
bmm's 1.5 ms, the batched Cholesky of 32 matrices 128×128 1.8 ms), backward ≈5 ms
(``cholesky_inverse`` 2–3 ms, bmm's 1.5 ms). The Gram work is 4·n·d² multiply-adds against ≈18·n·d²
in the naive code; what remains is LAPACK's potrf/potri on small matrices (≈10–20 GFLOP/s here
against ≈90 GFLOP/s for the bmm's), which every exact method pays for its 3k + 2 log-determinants.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from genae.objectives.rate_reduction import ctrl_multi_objective


def naive_rate(z: torch.Tensor, eps2: float) -> torch.Tensor:
    """½ logdet(I + d/(n ε²) ZᵀZ) with the d×d matrix and ``torch.logdet`` (public-code style)."""
    n, d = z.shape
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    return 0.5 * torch.logdet(eye + (d / (n * eps2)) * z.T @ z)


def naive_delta_r(z: torch.Tensor, y: torch.Tensor, k: int, eps2: float) -> torch.Tensor:
    rc = 0.0
    for j in range(k):
        zj = z[y == j]
        rc = rc + zj.shape[0] / z.shape[0] * naive_rate(zj, eps2)
    return naive_rate(z, eps2) - rc


def naive_public(z, z_hat, y, k, eps2=0.5):
    """J as the public code builds it: pair terms as 2-group ΔR of each class's union."""
    j = naive_delta_r(z, y, k, eps2) + naive_delta_r(z_hat, y, k, eps2)
    for c in range(k):
        zc, hc = z[y == c], z_hat[y == c]
        union = torch.cat([zc, hc])
        group = torch.cat([torch.zeros(len(zc), dtype=torch.long),
                           torch.ones(len(hc), dtype=torch.long)])
        j = j + naive_delta_r(union, group, 2, eps2)  # R(u) − ½R(z_c) − ½R(ẑ_c) for equal sizes
    return j


def naive_loop(z, z_hat, y, k, eps2=0.5):
    """J with each distinct rate computed once (3k + 2 logdets), still one class at a time."""
    n = z.shape[0]
    j = naive_rate(z, eps2) + naive_rate(z_hat, eps2)
    for c in range(k):
        m = y == c
        zc, hc = z[m], z_hat[m]
        rz, rh = naive_rate(zc, eps2), naive_rate(hc, eps2)
        j = j - zc.shape[0] / n * (rz + rh) + naive_rate(torch.cat([zc, hc]), eps2) - 0.5 * (rz + rh)
    return j


def fast(z, z_hat, y, k, eps2=0.5):
    return ctrl_multi_objective(z, z_hat, y, k, eps2)[0]


def run_once(fn, z0, h0, y, k):
    """One forward + backward: (wall s, process CPU s, value, grad z, grad ẑ)."""
    z, h = z0.clone().requires_grad_(True), h0.clone().requires_grad_(True)
    t, c = time.perf_counter(), time.process_time()
    value = fn(z, h, y, k)
    value.backward()
    return time.perf_counter() - t, time.process_time() - c, value.detach(), z.grad, h.grad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    z = torch.nn.functional.normalize(torch.randn(args.n, args.d, generator=g), dim=1)
    h = torch.nn.functional.normalize(torch.randn(args.n, args.d, generator=g), dim=1)
    y = torch.arange(args.n) % args.k  # balanced labels
    y = y[torch.randperm(args.n, generator=g)]

    impls = {"fast": fast, "public": naive_public, "loop": naive_loop}
    wall = {name: [] for name in impls}
    cpu = {name: [] for name in impls}
    results = {}
    for name, fn in impls.items():  # warm-up (allocator, MKL, autograd caches)
        for _ in range(3):
            results[name] = run_once(fn, z, h, y, args.k)
    for _ in range(args.repeats):
        for name, fn in impls.items():  # alternate, so load changes hit all of them alike
            w, c, *_ = run_once(fn, z, h, y, args.k)
            wall[name].append(w * 1e3)
            cpu[name].append(c * 1e3)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, n={args.n} d={args.d} "
          f"k={args.k}, float32, forward+backward of ctrl_multi_objective, {args.repeats} "
          f"alternating repeats; load average {os.getloadavg()[0]:.2f} at the end")
    med = {name: statistics.median(ts) for name, ts in wall.items()}
    med_cpu = {name: statistics.median(ts) for name, ts in cpu.items()}
    print("  impl     wall median (min-max) ms      process CPU median ms")
    for name in impls:
        print(f"  {name:7s} {med[name]:8.2f} ({min(wall[name]):.2f}-{max(wall[name]):.2f})"
              f"{med_cpu[name]:18.2f}")
    _, _, v_f, gz_f, gh_f = results["fast"]
    for name in ("public", "loop"):
        _, _, v, gz, gh = results[name]
        dv = abs(v_f - v).item() / abs(v).item()
        dg = max(((gz_f - gz).abs().max() / gz.abs().max()).item(),
                 ((gh_f - gh).abs().max() / gh.abs().max()).item())
        print(f"  vs {name:6s}: speed-up {med[name] / med['fast']:5.2f}x wall, "
              f"{med_cpu[name] / med_cpu['fast']:5.2f}x CPU; value {v.item():.6f} vs {v_f.item():.6f}"
              f" (max rel diff {dv:.1e}); gradients max rel diff {dg:.1e}")
    ref = ctrl_multi_objective(z.double(), h.double(), y, args.k, precision="float64")[0].item()
    print(f"  float64 reference value {ref:.9f}; float32 rel errors: "
          + ", ".join(f"{name} {abs(results[name][2].item() - ref) / abs(ref):.1e}" for name in impls))

if __name__ == "__main__":
    main()
