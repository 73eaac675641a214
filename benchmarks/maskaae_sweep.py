"""MaskAAE vs its fixed-mask baseline over the code dimension m on ``synthetic`` data.

Runs one ``genae sweep`` (``genae.sweep``) per method variant, in ``--out``/<variant>/: a point per
code dimension m (``model.latent_dim``, with its ``--set-m`` overrides) × the training seeds — every
run sees the same synthetic data, the config's ``data.seed``. The sweep trains the runs as parallel
jobs within the machine's thread budget (``--jobs``, ``--threads``), evaluates ``fid`` (raw vectors
against the test split), ``active-dims`` (m_A) and ``nac`` on each, and records them in its
manifest; this script turns the manifests into:

    results.json / results.csv   one row per run (and the commands' settings)
    results.md                   per-run table and mean ± std over seeds per (method, m)
    fid_vs_m.png                 FID vs m for both methods; m_A vs m (lines m_A = m and m_A = n)

The baseline (``--baseline maskaae-fixed``, the default) is ``maskaae`` with
``model.learn_mask=false``: μ ≡ 1, the same networks, optimizers and update schedule, so the
comparison isolates the mask (the reference code's ``mask_on=0``, the paper's WAE-GAN).
``--set-m M:KEY=VALUE`` overrides one code dimension's runs only (a λ3 clock or a length that
grows with m, as the reference rule's does). ``--baseline wae-gan`` uses the library's ``wae-gan``
with the widths and optimizer matched where its config allows (its MLP depth is fixed at 2 and its
schedule is critic×n then one joint autoencoder update: not an isolating comparison).

Rerunning the same command continues an interrupted sweep: finished runs are kept, interrupted
ones resumed from their checkpoint (a sweep of another grid in the same ``--out`` is refused:
choose another ``--out``); ``--finished-only`` trains nothing and writes the table and figure of
the finished runs of the grid (a grid where not every method ran at every m).

    python benchmarks/maskaae_sweep.py --quick                        # a few minutes on a CPU
    python benchmarks/maskaae_sweep.py --config configs/maskaae_synthetic_cpu.yaml \\
        --n 8 --ms 2,4,6,8,10,12,16,24,32 --seeds 0,1,2 --out runs/maskaae-sweep-n8
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import time
from pathlib import Path

from genae.errors import GenaeError
from genae.runs import load_run, read_config
from genae.viz.plots import seed_dots
from genae.methods.maskaae import reference_lam3_every
from genae.sweep import SweepSpec, load_sweep_file, override_text, read_manifest, run_sweep

QUICK = dict(n=4, ms="2,4,8,12", seeds="0", steps=400, n_samples=2000,
             set=["model.hidden=64", "model.depth=2", "model.critic_hidden=64", "model.n_critic=2",
                  "model.init_max=2.0", "model.mask_lr=0.01", "model.lam3_every=40", "data.n=5000",
                  "data.dim=32"])
METRIC_NAMES = ["fid", "active-dims", "nac"]
# what the wae-gan baseline's config can match of the maskaae overrides
WAE_GAN_KEYS = ("model.hidden", "model.critic_hidden", "model.n_critic")


def variant_spec(args, variant: str, ms: list[int], seeds: list[int]) -> SweepSpec:
    """The sweep of one variant: a list point per m (``model.latent_dim`` and that m's ``--set-m``
    overrides) × ``seeds``, evaluated with ``METRIC_NAMES``."""
    sets = [f"data.latent_dim={args.n}", "train.tensorboard=false", f"train.device={args.device}"]
    if args.steps:
        sets.append(f"train.steps={args.steps}")
    per_m = {m: args.set_m.get(m, []) for m in ms}
    if variant == "wae-gan":  # match what its config can match
        def keep(item):
            return item.split("=")[0] in WAE_GAN_KEYS or item.startswith(("data.", "train."))
        method, sets = "wae-gan", sets + [s for s in args.set if keep(s)] + ["model.optimizer=rmsprop"]
        per_m = {m: [s for s in items if keep(s)] for m, items in per_m.items()}
    else:
        base = load_sweep_file(args.config)
        if base.get("method", "maskaae") != "maskaae":
            raise SystemExit(f"--config {args.config} is a {base['method']} config, not maskaae")
        method = "maskaae"
        sets = base["sets"] + sets + list(args.set) + [f"model.learn_mask={override_text(variant == 'maskaae')}"]
    points = [{"model.latent_dim": str(m), **dict(item.split("=", 1) for item in per_m[m])} for m in ms]
    return SweepSpec(method, sets=sets, points=points, seeds=seeds, metrics=METRIC_NAMES,
                     n_samples=args.n_samples, jobs=args.jobs, threads=args.threads, config=args.config)


def sweep_rows(sweep: Path, variant: str, ms: list[int], seeds: list[int]) -> list[dict]:
    """One row per finished point of ``sweep`` whose m and seed are in the grid asked (none when
    the sweep does not exist); failed points are named on stdout."""
    if not (sweep / "manifest.json").is_file():
        return []
    rows = []
    for p in read_manifest(sweep)["points"]:
        overrides = dict(o.split("=", 1) for o in p["overrides"])
        m = int(overrides["model.latent_dim"])
        if m not in ms or p["seed"] not in seeds:
            continue
        if p["status"] != "done":
            print(f"{variant} m={m} seed={p['seed']}: {p['status']} ({p['message']})")
            continue
        run = sweep / p["run"]
        cfg, ev = read_config(run), p["eval"]
        model = load_run(run)
        rows.append({
            "method": variant, "m": m, "seed": p["seed"], "n": cfg["data"]["latent_dim"], "steps": cfg["train"]["steps"],
            # the clock λ3 ran on (the reference rule's where lam3_every = 0); none without a mask
            "lam3_every": (cfg["model"]["lam3_every"] or reference_lam3_every(m)) if variant == "maskaae" else None,
            "set_m": [o for o in p["overrides"] if not o.startswith("model.latent_dim=")],
            "fid": ev["fid"].get("value", math.nan),
            "m_active": ev["active-dims"].get("value", m),
            "nac": ev["nac"].get("value", math.nan),
            "active": ev["active-dims"].get("active"),
            "mu": [round(v, 4) for v in model.mask().tolist()] if hasattr(model, "mask") else None,
            "train_s": p["train_s"], "eval_s": p["eval_s"], "n_fake": ev["fid"].get("n_fake"), "run": str(run)})
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["m"]), []).append(r)
    out = []
    for (method, m), rs in sorted(groups.items()):
        def finite(key):
            return [r[key] for r in rs if r[key] is not None and math.isfinite(r[key])]

        def ms(key):
            v = finite(key)
            return (statistics.fmean(v) if v else math.nan, statistics.stdev(v) if len(v) > 1 else 0.0)
        fids = finite("fid")
        out.append({"method": method, "m": m, "seeds": len(rs), "fid": ms("fid"), "m_active": ms("m_active"),
                    "nac": ms("nac"), "fid_seeds": fids,
                    # one collapsed seed dominates a mean of three; the median is the curve's shape
                    "fid_median": statistics.median(fids) if fids else math.nan})
    return out


def write_outputs(rows: list[dict], args, out: Path) -> None:
    (out / "results.json").write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=1, default=str))
    keys = ["method", "m", "seed", "n", "steps", "lam3_every", "fid", "m_active", "nac", "train_s", "eval_s", "run"]
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    summary = summarise(rows)
    steps = sorted({r["steps"] for r in rows})
    lines = [f"# MaskAAE sweep: synthetic n = {args.n}, steps = {', '.join(map(str, steps)) or '?'}, "
             f"FID on raw vectors (n_fake = {args.n_samples}, test split)", "",
             "| method | m | seeds | FID | FID median | m_A | NAC |", "|---|---|---|---|---|---|---|"]
    for s in summary:
        f = lambda p, d=3: f"{p[0]:.{d}f} ± {p[1]:.{d}f}" if math.isfinite(p[0]) else "—"  # noqa: E731
        med = f"{s['fid_median']:.3f}" if math.isfinite(s["fid_median"]) else "—"
        lines.append(f"| {s['method']} | {s['m']} | {s['seeds']} | {f(s['fid'])} | {med} | {f(s['m_active'], 1)} | "
                     f"{f(s['nac'])} |")
    lines += ["", "| method | m | seed | steps | λ3 every | FID | m_A | NAC | μ | train s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mu = " ".join(f"{v:.2f}" for v in r["mu"]) if r.get("mu") else ""
        lines.append(f"| {r['method']} | {r['m']} | {r['seed']} | {r['steps']} | {r.get('lam3_every') or '—'} | "
                     f"{r['fid']:.3f} | {r['m_active']} | {r['nac']:.3f} | {mu} | {r['train_s']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot(summary, args.n, out / "fid_vs_m.png")


def plot(summary: list[dict], n: int, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, method in enumerate(sorted({s["method"] for s in summary})):
        ss = [s for s in summary if s["method"] == method]
        ms = [s["m"] for s in ss]
        # FID: the median over seeds as the line, every seed as a dot, log scale (FIDs span decades
        # and a collapsed seed would swamp a mean ± std bar)
        seed_dots(a1, [(s["m"], v) for s in ss for v in s["fid_seeds"] if v > 0], method, color=f"C{i}",
                  center="median")
        a2.errorbar(ms, [s["m_active"][0] for s in ss], yerr=[s["m_active"][1] for s in ss], marker="o",
                    capsize=3, label=method)
    a1.axvline(n, color="gray", ls=":", lw=1)
    if any(v > 0 for s in summary for v in s["fid_seeds"]):
        a1.set_yscale("log")
    a1.set(xlabel="code dimension m", ylabel="FID (raw vectors; dots: seeds)", title=f"FID vs m (true n = {n})")
    a1.legend()
    top = max([s["m"] for s in summary] or [n])
    a2.plot([0, top], [0, top], color="gray", lw=0.8, ls="--", label="m_A = m")
    a2.axhline(n, color="C3", lw=0.8, ls=":", label=f"m_A = n = {n}")
    a2.set(xlabel="code dimension m", ylabel="active dims m_A", title="m_A vs m")
    a2.legend(fontsize=8)
    for a in (a1, a2):
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_set_m(items: list[str], ms: list[int]) -> dict[int, list[str]]:
    """``["32:model.lam3_every=2000", ...]`` -> ``{32: ["model.lam3_every=2000"], ...}``."""
    per_m: dict[int, list[str]] = {}
    for item in items:
        head, sep, override = item.partition(":")
        if not sep or "=" not in override or not head.strip().isdigit():
            raise SystemExit(f"--set-m {item!r}: expected M:KEY=VALUE, e.g. 32:model.lam3_every=2000")
        if int(head) not in ms:
            raise SystemExit(f"--set-m {item!r}: m = {head} is not in --ms {','.join(map(str, ms))}")
        per_m.setdefault(int(head), []).append(override.strip())
    return per_m


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny nets, n=4, m in 2,4,8,12, 400 steps, one seed")
    p.add_argument("--config", default="configs/maskaae_synthetic_cpu.yaml", help="base config of the maskaae runs")
    p.add_argument("--n", type=int, default=8, help="true latent dimension (data.latent_dim)")
    p.add_argument("--ms", default="2,4,6,8,10,12,16,24,32", help="code dimensions m")
    p.add_argument("--seeds", default="0,1,2",
                   help="training seeds (train.seed); the data stay the config's data.seed (0 unless set)")
    p.add_argument("--methods", default="maskaae,baseline", help="maskaae and/or baseline")
    p.add_argument("--baseline", default="maskaae-fixed", choices=["maskaae-fixed", "wae-gan"])
    p.add_argument("--steps", type=int, default=0, help="train.steps (0 = the config's)")
    p.add_argument("--n-samples", type=int, default=10000, help="generated vectors for FID")
    p.add_argument("--set", action="append", default=[], help="extra overrides of the maskaae runs")
    p.add_argument("--set-m", action="append", default=[], metavar="M:KEY=VALUE",
                   help="an override for the runs at code dimension M only, e.g. 32:model.lam3_every=2000 "
                        "(a λ3 clock or a length per m); repeatable, after --set")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=None, help="runs at once (default: what fits the cores)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads per run (default: the cores shared among the jobs)")
    p.add_argument("--out", default="runs/maskaae-sweep")
    p.add_argument("--finished-only", action="store_true",
                   help="train nothing: tabulate and plot the runs of the grid that have finished")
    args = p.parse_args()
    if args.quick:  # the quick settings fill in what the command line left at its default
        for key in ("n", "ms", "seeds", "steps", "n_samples"):
            if getattr(args, key) == p.get_default(key):
                setattr(args, key, QUICK[key])
        args.set = QUICK["set"] + args.set
        args.out = args.out if args.out != "runs/maskaae-sweep" else "runs/maskaae-sweep-quick"
    ms, seeds = [int(m) for m in args.ms.split(",")], [int(s) for s in args.seeds.split(",")]
    args.set_m = parse_set_m(args.set_m, ms)
    out = Path(args.out)
    variants = [args.baseline if v == "baseline" else v for v in args.methods.split(",")]
    t0 = time.perf_counter()
    rows: list[dict] = []
    for variant in variants:  # one sweep each: a later --methods adds a sweep, it never changes one
        if not args.finished_only:
            try:
                run_sweep(variant_spec(args, variant, ms, seeds), out / variant)
            except GenaeError as e:
                raise SystemExit(f"{variant}: {e}") from None
        rows += sweep_rows(out / variant, variant, ms, seeds)
        rows.sort(key=lambda r: (seeds.index(r["seed"]), ms.index(r["m"]), variants.index(r["method"])))
        if rows:
            write_outputs(rows, args, out)
    for row in rows:
        print(f"{row['method']:14s} m={row['m']:3d} seed={row['seed']} fid={row['fid']:.3f} m_A={row['m_active']} "
              f"nac={row['nac']:.3f} train {row['train_s']} s")
    print(f"done in {time.perf_counter() - t0:.0f} s: {out}/results.md, {out}/fid_vs_m.png")

if __name__ == "__main__":
    main()
