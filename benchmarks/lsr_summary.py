"""Summarise benchmarks/lsr_figures.sh (issue 29): VAE against LSR-GAN for both renderers of the same
runs (mean ± std over seeds, with the issue's targets), the paper's Table 2 (λ study, with the rank
correlation of each trend with λ) and Table 1 (β study), as Markdown tables and one figure.

    python benchmarks/lsr_summary.py OUT [--png docs/lsr_lambda_beta_cpu.png]

OUT is the directory benchmarks/lsr_figures.sh wrote: OUT/{mnist,fashion,lam,beta}/runs/<point>/
eval.json, whose metrics are keyed NAME@vae (the stage-1 VAE decoder) and NAME@lsr (the generator).
"""
from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

RENDERERS = ("vae", "lsr")
#: (metric, field, row label) of the comparison table
ROWS = (("fid", "value", "FID prior-seeded"),
        ("fid-seeded", "value", "FID test-seeded (z ~ q(z\\|x_test))"),
        ("sharpness-sp", "value", "sharpness-sp of imaginations"),
        ("sharpness-sp", "reconstructions", "sharpness-sp of renderings of μ(x)"),
        ("imagine-mse", "value", "MSE input vs imagination (per pixel, [0, 1])"),
        ("imagine-mse", "sse_per_example", "the same, squared error per image"),
        ("decode-variance", "value", "variance among renderings of one q(z\\|x)"),
        ("imagine-class-acc", "absolute", "classifier accuracy of imaginations"),
        ("imagine-class-acc", "relative", "agreement with the classifier on the input"))
_SEED = re.compile(r"(?:^|,)seed=(\d+)$")


def collect(sweep: Path) -> dict[str, list[dict]]:
    """point (its run name without the seed; "" for a seeds-only sweep) -> [metrics per seed]."""
    out: dict[str, list[dict]] = defaultdict(list)
    for ev in sorted(sweep.glob("runs/*/eval.json")):
        point = _SEED.sub("", ev.parent.name)
        out[point].append(json.loads(ev.read_text())["metrics"])
    return out


def values(runs: list[dict], metric: str, field: str = "value") -> np.ndarray:
    return np.asarray([r[metric][field] for r in runs if field in r.get(metric, {})], dtype=float)


def _cell(v: np.ndarray, digits: int = 4) -> str:
    if v.size == 0:
        return "—"
    if v.size == 1:
        return f"{v[0]:.{digits}g}"
    return f"{v.mean():.{digits}g} ± {v.std(ddof=1):.{digits - 1}g}"


def comparison_table(runs: list[dict]) -> str:
    rows = [f"| metric (n = {len(runs)} seeds, mean ± std) | VAE decoder | LSR generator | LSR / VAE |",
            "|---|---|---|---|"]
    for metric, field, label in ROWS:
        v, g = (values(runs, f"{metric}@{r}", field) for r in RENDERERS)
        ratio = _cell(g / v, 3) if v.size == g.size and v.size else "—"
        rows.append(f"| {label} | {_cell(v)} | {_cell(g)} | {ratio} |")
    return "\n".join(rows)


def targets(runs: list[dict]) -> str:
    """The issue's targets, per seed: sharpness ratio ≥ 1.3, both FIDs of LSR below the VAE's."""
    sharp = values(runs, "sharpness-sp@lsr") / values(runs, "sharpness-sp@vae")
    fid = [(values(runs, f"{m}@lsr") < values(runs, f"{m}@vae")) for m in ("fid", "fid-seeded")]
    return (f"sharpness LSR/VAE ≥ 1.3 in {int((sharp >= 1.3).sum())}/{sharp.size} seeds; "
            f"FID prior-seeded lower in {int(fid[0].sum())}/{fid[0].size}, test-seeded lower in "
            f"{int(fid[1].sum())}/{fid[1].size}")


def rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    a = np.asarray(a, dtype=float)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(a.size)
    ranks[order] = np.arange(1, a.size + 1)
    for v in np.unique(a):
        tie = a == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(x, y) -> float:
    """Spearman's rank correlation (Pearson's on the ranks)."""
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def _swept(data: dict[str, list[dict]], key: str) -> list[tuple[float, list[dict]]]:
    pat = re.compile(rf"(?:^|,){re.escape(key)}=([0-9.eE+-]+)(?:,|$)")
    return sorted((float(m.group(1)), runs) for p, runs in data.items() if (m := pat.search(p)))


LAMBDA_COLS = (("imagine-mse", "value", "MSE / pixel"), ("imagine-mse", "sse_per_example", "SSE / image"),
               ("decode-variance", "value", "variance"), ("imagine-class-acc", "absolute", "accuracy"),
               ("imagine-class-acc", "relative", "relative acc."), ("fid-seeded", "value", "FID test-seeded"),
               ("fid", "value", "FID prior"), ("sharpness-sp", "value", "sharpness-sp"))


def lambda_table(points: list[tuple[float, list[dict]]]) -> str:
    rows = ["| λ | " + " | ".join(c[2] for c in LAMBDA_COLS) + " |", "|---|" + "---|" * len(LAMBDA_COLS)]
    for lam, runs in points:
        rows.append(f"| {lam:g} | " + " | ".join(_cell(values(runs, f"{m}@lsr", f)) for m, f, _ in LAMBDA_COLS) + " |")
    lams = [lam for lam, _ in points]
    corr = []
    for (m, f, label), want in zip(LAMBDA_COLS, ("falls", "falls", "falls", "rises", "rises")):
        ys = [values(runs, f"{m}@lsr", f).mean() for _, runs in points]
        corr.append(f"{label} ρ = {spearman(lams, ys):+.2f} (paper: {want})")
    return "\n".join(rows) + "\n\nSpearman rank correlation with λ: " + "; ".join(corr)


BETA_COLS = (("imagine-mse", "value", "MSE / pixel"), ("decode-variance", "value", "variance"),
             ("imagine-class-acc", "absolute", "accuracy"), ("imagine-class-acc", "relative", "relative acc."),
             ("fid-seeded", "value", "FID test-seeded"))


def beta_table(points: list[tuple[float, list[dict]]]) -> str:
    rows = ["| β | renderer | " + " | ".join(c[2] for c in BETA_COLS) + " |", "|---|---|" + "---|" * len(BETA_COLS)]
    for beta, runs in points:
        for r in RENDERERS:
            rows.append(f"| {beta:g} | {r.upper()} | "
                        + " | ".join(_cell(values(runs, f"{m}@{r}", f)) for m, f, _ in BETA_COLS) + " |")
    return "\n".join(rows)


def latent_dim(sweep: Path) -> int:
    """``model.latent_dim`` of the sweep's first run (its config.yaml)."""
    import yaml

    cfg = sorted(sweep.glob("runs/*/config.yaml"))[0]
    return int(yaml.safe_load(cfg.read_text())["model"]["latent_dim"])


def plot(lam: list, beta: list, path: Path, lam_mean: list = (), dim: int = 1) -> None:
    """λ panels on the summed convention's axis: a λ on the mean weighs λ / dim on the sum."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, 4)
    panels = (("imagine-mse", "value", "MSE input vs imagination"), ("decode-variance", "value", "variance of q(z|x) renderings"),
              ("imagine-class-acc", "absolute", "classifier accuracy of imaginations"))
    for ax, (m, f, title) in zip(axes, panels):
        ax.semilogx([p[0] for p in lam], [values(r, f"{m}@lsr", f).mean() for _, r in lam], "-o", label="LSR, λ on the sum")
        if lam_mean:
            ax.semilogx([p[0] / dim for p in lam_mean], [values(r, f"{m}@lsr", f).mean() for _, r in lam_mean], "-s",
                        label=f"LSR, λ on the mean (at λ/{dim})")
        ax.axhline(np.mean([values(r, f"{m}@vae", f).mean() for _, r in lam]), color="k", ls=":", label="VAE decoder")
        ax.set_xlabel("λ, summed convention")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[3]
    for i, r in enumerate(RENDERERS):
        ax.semilogx([p[0] for p in beta], [values(runs, f"fid-seeded@{r}").mean() for _, runs in beta], "-o",
                    color=f"C{i}", label=r.upper())
    ax.set_xlabel("β of the stage-1 VAE")
    ax.set_title("FID test-seeded against β", fontsize=9)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--png", default=None, help="write the λ / β figure here")
    a = p.parse_args()
    root = Path(a.out)
    main_runs = {name: collect(root / name).get("", []) for name in ("mnist", "fashion", "fashion-lam0.01")}
    for name, runs in main_runs.items():
        if runs:
            print(f"\n### {name}: VAE decoder against LSR generator, the same runs\n\n{comparison_table(runs)}\n\n"
                  f"Targets: {targets(runs)}")
    lam = _swept(collect(root / "lam"), "model.lam")
    if lam:
        print(f"\n### Table 2 (λ study; the LSR generator; VAE β = 1)\n\n{lambda_table(lam)}")
    lam_mean = _swept(collect(root / "lam-mean"), "model.lam")
    if lam_mean:
        print(f"\n### Table 2 with the reference code's convention (log q averaged over the latent)\n\n"
              f"{lambda_table(lam_mean)}")
    beta = _swept(collect(root / "beta"), "model.beta")
    if main_runs["mnist"]:                           # β = 1 is the main sweep's seed-0 run
        beta = sorted(beta + [(1.0, main_runs["mnist"][:1])])
    if beta:
        print(f"\n### Table 1 (β study; λ = 1)\n\n{beta_table(beta)}")
    if a.png and lam and beta:
        plot(lam, beta, Path(a.png), lam_mean, latent_dim(root / "lam-mean") if lam_mean else 1)


if __name__ == "__main__":
    main()
