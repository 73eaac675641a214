"""Summarise benchmarks/imae_figures.sh: IMAE Fig. 3 (unsupervised accuracy of y vs β, per method:
median, mean ± std, min–max over seeds) and Fig. 5 (dSprites: MIG against reconstruction error, and
total correlation against MIG), as Markdown tables and two figures.

    python benchmarks/imae_summary.py OUT [--png-dir docs]

OUT is the directory benchmarks/imae_figures.sh wrote (OUT/{mnist,fashion,dsprites}/<method>/runs/
model.beta=B,seed=S/eval.json; dSprites' seed 2 ran later, as OUT/dsprites-s2/<method>, and
Fashion-MNIST's β = 3, 7 as OUT/fashion-b37/<method>).
"""
from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

METHODS = ("imae", "beta-vae-hybrid", "infovae", "jointvae")
_POINT = re.compile(r"model\.beta=([0-9.]+),seed=(\d+)")


def collect(*roots: Path) -> dict[str, dict[float, list[dict]]]:
    """method -> β -> [metrics of each seed's eval.json] over the sweeps under ``roots`` (a seed
    added later is a sweep of its own); runs without eval.json are skipped."""
    out: dict[str, dict[float, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for m in METHODS:
        for ev in sorted(e for root in roots for e in (root / m / "runs").glob("*/eval.json")):
            hit = _POINT.fullmatch(ev.parent.name)
            if hit:
                metrics = json.loads(ev.read_text())["metrics"]
                out[m][float(hit.group(1))].append({k: v for k, v in metrics.items() if "value" in v})
    return out


def _stats(vals: list[float]) -> str:
    a = np.asarray(vals, dtype=float)
    if a.size == 0:
        return "—"
    if a.size == 1:
        return f"{a[0]:.3f} (n=1)"
    return f"**{np.median(a):.3f}** ({a.mean():.3f} ± {a.std(ddof=1):.3f}; {a.min():.3f}–{a.max():.3f}; n={a.size})"


def accuracy_table(data) -> str:
    betas = sorted({b for m in data.values() for b in m})
    rows = ["| β | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for b in betas:
        cells = [_stats([r["cluster-acc"]["value"] for r in data.get(m, {}).get(b, []) if "cluster-acc" in r])
                 for m in METHODS]
        rows.append(f"| {b:g} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def dsprites_table(data) -> str:
    keys = (("mig", "value"), ("mig", "with_y"), ("mig-sampled", "value"), ("mig-sampled", "with_y"),
            ("recon-mse", "value"), ("tc", "value"), ("cluster-acc", "value"))
    head = ["MIG (hist.)", "MIG with y (hist.)", "MIG (β-TCVAE est.)", "MIG with y (β-TCVAE est.)",
            "recon MSE", "TC (nats)", "shape acc. of y"]
    rows = ["| method | β | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(head)]
    for m in METHODS:
        for b in sorted(data.get(m, {})):
            runs = data[m][b]
            cells = []
            for metric, key in keys:
                v = [r[metric][key] for r in runs if metric in r and key in r[metric]]
                cells.append(f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}" if len(v) > 1 else
                             (f"{v[0]:.4f}" if v else "—"))
            rows.append(f"| {m} | {b:g} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(acc: dict[str, dict], ds: dict | None, path: Path) -> None:
    from matplotlib.figure import Figure

    panels = [(name, d) for name, d in acc.items() if d]
    fig = Figure(figsize=(4.2 * (len(panels) + (2 if ds else 0)), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels) + (2 if ds else 0), squeeze=False)[0]
    for ax, (name, d) in zip(axes, panels):
        for i, m in enumerate(METHODS):
            if m not in d:
                continue
            betas = sorted(d[m])
            for b in betas:
                v = [r["cluster-acc"]["value"] for r in d[m][b]]
                ax.plot([b + 0.12 * (i - 1.5)] * len(v), v, ".", color=f"C{i}", alpha=0.5)
            ax.plot(betas, [np.median([r["cluster-acc"]["value"] for r in d[m][b]]) for b in betas], "-o",
                    color=f"C{i}", label=m)
        ax.set_title(f"{name}: accuracy of y (median, seeds as dots)")
        ax.set_xlabel("β")
        ax.set_ylabel("unsupervised accuracy")
        ax.legend(fontsize=7)
    if ds:
        ax1, ax2 = axes[-2], axes[-1]
        for i, m in enumerate(METHODS):
            pts = [(r["recon-mse"]["value"], r["mig-sampled"]["value"], r["tc"]["value"], b)
                   for b, runs in ds.get(m, {}).items() for r in runs
                   if "mig-sampled" in r and "recon-mse" in r and "tc" in r]
            if not pts:
                continue
            a = np.asarray(pts)
            ax1.scatter(a[:, 0], a[:, 1], color=f"C{i}", label=m, s=14)
            ax2.scatter(a[:, 1], a[:, 2], color=f"C{i}", label=m, s=14)
        ax1.set_xlabel("reconstruction MSE per pixel")
        ax1.set_ylabel("MIG (β-TCVAE estimator)")
        ax1.set_title("dSprites: MIG vs reconstruction")
        ax1.legend(fontsize=7)
        ax2.set_xlabel("MIG (β-TCVAE estimator)")
        ax2.set_ylabel("total correlation (nats)")
        ax2.set_title("dSprites: TC vs MIG")
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--png", default=None, help="write the figure here")
    a = p.parse_args()
    root = Path(a.out)
    # Fashion-MNIST's β = 3, 7 ran after its β = 1, 5, 9, as sweeps of their own
    acc = {"mnist": collect(root / "mnist"), "fashion": collect(root / "fashion", root / "fashion-b37")}
    ds = collect(root / "dsprites", root / "dsprites-s2")       # seed 2 ran as a sweep of its own
    for name, d in acc.items():
        if d:
            print(f"\n### {name}: unsupervised accuracy of y (median in bold)\n\n{accuracy_table(d)}")
    if ds:
        print(f"\n### dsprites (mean ± std over seeds)\n\n{dsprites_table(ds)}")
    if a.png:
        plot(acc, ds or None, Path(a.png))


if __name__ == "__main__":
    main()
