"""``genae demo``: what genae is for, in a few minutes on two CPU cores (2 min 32 s from a fresh
clone on a 2-core Xeon, set-up included: docs/results.md).

Four methods — the VAE, WAE-GAN, MaskAAE and the AAE — are trained on MNIST (Fashion-MNIST when
MNIST cannot be had) under one protocol, two at a time with one thread each, then every run
is evaluated with the same metrics, backbone and sample counts, and ``genae compare`` writes the
comparison page ``DEMO/compare/compare.html``: the table (FID, reconstruction MSE, k-NN accuracy of
the codes, cluster accuracy, active dimensions) and each method's samples and reconstructions side
by side. Each run is an ordinary run directory under ``DEMO/runs/<method>`` (report, resume, eval).

The recipes are CPU-sized versions of each method's defaults (smaller networks, fewer steps), set
so that every method's samples are recognisable digits within the budget (timings and the table
in docs/results.md). CTRL is not among them: its transcriptions need the paper's batch of 2048
and ~600 iterations of its DCGAN pair, about ten minutes on one CPU thread by itself (the
``genae train ctrl-multi`` configs in ``configs/`` run it). The FID backbone is genae's domain classifier with ``genae eval``'s default recipe,
trained once and cached; its numbers compare the methods with each other (and with other genae
runs scored the same way), not with the Inception FIDs of papers.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Sequence

from .errors import DatasetNotFound, GenaeError

#: (method, --set overrides). One protocol: same data, batch-independent evaluation, same seed.
DEMO_RUNS: list[tuple[str, list[str]]] = [
    ("vae", ["model.hidden=256", "train.steps=6000", "train.batch_size=64"]),
    ("wae-gan", ["model.hidden=256", "model.critic_hidden=128", "model.n_critic=2", "train.steps=3000",
                 "train.batch_size=64"]),
    ("maskaae", ["model.hidden=256", "model.depth=2", "model.critic_hidden=128", "train.steps=2400",
                 "train.batch_size=64"]),
    ("aae", ["model.hidden=256", "model.disc_hidden=256", "train.steps=6000", "train.batch_size=64"]),
]
DEMO_METRICS = ["fid", "recon-mse", "knn-acc", "cluster-acc", "active-dims"]
DEMO_SAMPLES = 5000


def demo_recipe():
    """The domain-classifier recipe of the demo's FID: genae eval's default (trained once, about a
    minute on two cores, and cached), so the demo's FIDs compare with any later ``genae eval``'s."""
    from .metrics.domain import DomainRecipe

    return DomainRecipe()


def run_demo(out: str | Path, data_dir: str | None = None, overrides: Sequence[str] = (),
             jobs: int = 2, runs: Sequence[tuple[str, list[str]]] | None = None,
             metrics: Sequence[str] = DEMO_METRICS, n_samples: int = DEMO_SAMPLES,
             recipe=None, data: str | None = None) -> Path:
    """Train ``runs`` (default ``DEMO_RUNS``) ``jobs`` at a time, evaluate each, write the
    comparison into ``out/compare``; returns the page's path. ``overrides`` apply to every run;
    ``data`` names the dataset (default MNIST, else Fashion-MNIST)."""
    out = Path(out)
    data = data or _demo_data(data_dir)
    runs = list(runs if runs is not None else DEMO_RUNS)
    t0 = time.perf_counter()
    common = ["train.progress=False", "train.tensorboard=False", "train.threads=1",
              "train.log_every=100", "train.ckpt_every=1000000", "train.seed=0", *overrides]
    commands = []
    for method, sets in runs:
        run_dir = out / "runs" / method
        if (run_dir / "config.yaml").exists():
            cmd = ["resume", str(run_dir)]  # a demo interrupted earlier continues where it was
        else:
            cmd = ["train", method, "--data", data, "--out", str(run_dir)]
            if data_dir:
                cmd += ["--data-dir", data_dir]
            for item in [*sets, *common]:
                cmd += ["--set", item]
        commands.append((method, cmd))
    _run_parallel(commands, jobs, out / "logs")
    print(f"[demo] trained {len(runs)} methods in {time.perf_counter() - t0:.0f} s", flush=True)
    _evaluate(out, [m for m, _ in runs], metrics, n_samples, recipe or demo_recipe())
    from .compare import compare, format_table
    from .viz.compare_page import write_outputs

    # each method runs its own number of steps (what fits the budget): a recipe detail, not a sweep
    cmp = compare([out / "runs" / m for m, _ in runs], metrics=list(metrics), ignore=["train.steps"])
    written = write_outputs(cmp, out / "compare")
    print(format_table(cmp))
    print(f"[demo] done in {time.perf_counter() - t0:.0f} s", flush=True)
    return next(p for p in written if p.suffix == ".html")


def _demo_data(data_dir: str | None) -> str:
    """"mnist" when its files can be had (fetching them if needed), else "fashion-mnist"."""
    from .data import DataConfig, fetch

    for name in ("mnist", "fashion-mnist"):
        try:
            fetch(DataConfig(name, root=data_dir))
            return name
        except (DatasetNotFound, GenaeError) as e:
            print(f"[demo] {name}: {str(e).splitlines()[0]}", file=sys.stderr)
    raise DatasetNotFound("the demo needs MNIST or Fashion-MNIST: `genae data fetch mnist` where there "
                          "is internet access, or --data-dir DIR")


def _run_parallel(commands: list[tuple[str, list[str]]], jobs: int, logs: Path) -> None:
    """Run ``genae`` commands ``jobs`` at a time (one compute thread each: 2 × 1 on two cores);
    each one's output goes to ``logs/<name>.log``; a failure is a ``GenaeError`` naming its log."""
    from .sweep import spawn_genae

    logs.mkdir(parents=True, exist_ok=True)
    pending, running = list(commands), []
    while pending or running:
        while pending and len(running) < jobs:
            name, cmd = pending.pop(0)
            log = open(logs / f"{name}.log", "w")
            print(f"[demo] {name}: started", flush=True)
            running.append((name, spawn_genae(cmd, 1, log), log, time.perf_counter()))
        time.sleep(0.2)
        for item in list(running):
            name, proc, log, t = item
            if proc.poll() is None:
                continue
            running.remove(item)
            log.close()
            if proc.returncode != 0:
                for _, other, other_log, _ in running:
                    other.terminate()
                    other.wait()
                    other_log.close()
                tail = (logs / f"{name}.log").read_text().strip().splitlines()[-1:] or ["?"]
                raise GenaeError(f"demo: {name} failed ({tail[0]}); full log: {logs / (name + '.log')}")
            print(f"[demo] {name}: trained in {time.perf_counter() - t:.0f} s", flush=True)


def _evaluate(out: Path, methods: list[str], metrics: Sequence[str], n_samples: int, recipe) -> None:
    """Every run under one protocol: same metrics, backbone (the demo recipe), sample counts, seed."""
    import torch

    from .metrics import EvalContext, evaluate
    from .runs import checkpoint_step, open_checkpoint, write_eval

    for method in methods:
        t = time.perf_counter()
        model, cfg, ckpt = open_checkpoint(out / "runs" / method)
        ctx = EvalContext(cfg.data, n_samples=n_samples, domain_recipe=recipe, progress=True)
        with torch.no_grad():
            results = evaluate(model, ctx, list(metrics))
        write_eval(out / "runs" / method, cfg, results, checkpoint_step(ckpt))
        print(f"[demo] {method}: evaluated in {time.perf_counter() - t:.0f} s", flush=True)
