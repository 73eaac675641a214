"""``torch.compile`` (the CPU inductor) against eager, per network, in fp32 and bf16 (issue 38).

Each case of ``benchmarks/bf16_cpu.py`` is built twice, eager and with ``Module.compile()`` on every
network of the method (what ``train.compile=true`` does), and the same timed update loop is run
after 3 warm-up steps (which include the compilation, reported beside the rate), the four
variants alternating ``--repeats`` times (median).

    OMP_NUM_THREADS=1 python benchmarks/compile_cpu.py vae-mlp --steps 100
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bf16_cpu  # noqa: E402  (the cases and the timed loop)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=list(bf16_cpu.CASES))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    eager_build = bf16_cpu.build

    def compiled_build(*a, **k):
        method, opts, batch = eager_build(*a, **k)
        for module in method.children():
            module.compile()
        return method, opts, batch

    runs, warm = {}, {}
    try:
        for variant in ("fp32", "bf16"):
            for compiled in (False, True):
                bf16_cpu.build = compiled_build if compiled else eager_build
                key = f"{variant} {'compiled' if compiled else 'eager'}"
                t0 = time.perf_counter()
                runs[key] = bf16_cpu.stepper(args.case, variant, warmup=3)
                warm[key] = time.perf_counter() - t0
    finally:
        bf16_cpu.build = eager_build
    rates = {k: [] for k in runs}
    for _ in range(args.repeats):  # alternate, so a change of machine load hits every variant
        for key, run in runs.items():
            t0 = time.perf_counter()
            run(args.steps)
            rates[key].append(args.steps / (time.perf_counter() - t0))
    for key, r in rates.items():
        print(f"{args.case} {key}: {statistics.median(r):.2f} steps/s (median of {args.repeats}; "
              f"warm-up with compilation {warm[key]:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
