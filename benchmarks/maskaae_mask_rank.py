"""Which code dimensions does a MaskAAE run keep? Compares the final mask with the first logged one.

For each run directory (``genae train`` output of ``maskaae``) reads ``metrics.jsonl`` — μ_k is
logged as ``mu/KK`` every ``train.log_every`` steps — and prints one table row: m, m_A (μ_k ≥ 0.1 at
the last logged step), how many dimensions started above 0.9, how many of the kept dimensions are
among the m_A largest at the first logged step (m_A of m_A: the mask game preserved the starting
ranking), the smallest starting μ among the kept and the largest among the closed. The first log is after ``log_every`` steps, not
at initialisation: with RMSprop each mask step moves θ by about ``mask_lr``, so after 100 steps
θ is within ≈ 0.05 of its draw.

    python benchmarks/maskaae_mask_rank.py runs/sweep/runs/maskaae-m*-s*
"""
from __future__ import annotations

import argparse
from pathlib import Path

from genae.methods.maskaae import ACTIVE
from genae.runs import read_metrics


def mask_rank(run_dir: Path) -> dict:
    """One row: m, m_A, the count started above 0.9, kept ∩ top-m_A by first μ, the margins."""
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "mu/00" in r]
    if not rows:
        raise SystemExit(f"{run_dir}: no mu/KK entries in metrics.jsonl (not a maskaae run with a learned mask?)")
    first, last = rows[0], rows[-1]
    keys = sorted(k for k in first if k.startswith("mu/"))
    mu0, mu1 = [first[k] for k in keys], [last[k] for k in keys]
    kept = [k for k, v in enumerate(mu1) if v >= ACTIVE]
    closed = [k for k in range(len(keys)) if k not in kept]
    by_start = sorted(range(len(keys)), key=lambda k: -mu0[k])
    return {"run": str(run_dir), "m": len(keys), "m_active": len(kept), "started_above_0.9": sum(v > 0.9 for v in mu0),
            "kept_in_top": len(set(kept) & set(by_start[:len(kept)])),
            "min_start_kept": min((mu0[k] for k in kept), default=float("nan")),
            "max_start_closed": max((mu0[k] for k in closed), default=float("nan")),
            "first_step": first.get("step"), "last_step": last.get("step")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="maskaae run directories")
    args = p.parse_args()
    print("| run | m | m_A | started > 0.9 | kept among the top m_A at start | min start μ kept | max start μ closed |")
    print("|---|---|---|---|---|---|---|")
    for run in args.runs:
        r = mask_rank(run)
        print(f"| {run} | {r['m']} | {r['m_active']} | {r['started_above_0.9']} | "
              f"{r['kept_in_top']} of {r['m_active']} | {r['min_start_kept']:.2f} | {r['max_start_closed']:.2f} |")


if __name__ == "__main__":
    main()
