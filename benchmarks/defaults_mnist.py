"""Every registered method with its defaults on MNIST-10k: FID and a sample grid per method.

    python benchmarks/defaults_mnist.py --out runs/defaults                 # all, 2 jobs × 1 thread
    python benchmarks/defaults_mnist.py --out runs/defaults --only dcgan,vae
    python benchmarks/defaults_mnist.py --out runs/defaults --probe 20      # seconds per step only
    python benchmarks/defaults_mnist.py --out runs/defaults --minutes 25    # at most 25 min of training each

What a new user gets from ``genae train METHOD --data mnist`` without a config: nothing is set but
the data, one compute thread, and quiet logging. Each run is trained at its default length
(``train.steps``), evaluated with ``genae eval --metrics fid`` (the shipped MNIST-10k backbone,
5,000 samples against the 2,000 test digits) and sampled with ``genae sample`` (64 samples; for
methods that cannot sample, ``genae eval`` reports recon-mse and the grid is left out). Finished
runs are kept: rerun to continue. Writes ``OUT/defaults.md`` (the table docs/results.md quotes) and
``OUT/grids/METHOD.png``.

``--minutes M`` (with the rates of an earlier ``--probe`` run, ``OUT-probe/seconds.json``): a method
whose default length would take longer than M minutes on one thread trains for the steps that fit
(``train.steps`` and, for lsr-gan, its stage 1 ``model.vae_steps`` scaled alike); the table shows
those steps beside the default and the time the default length would take.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from genae.methods import METHODS, method_capabilities

MNIST_10K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist-10k"
QUIET = ["train.threads=1", "train.progress=False", "train.tensorboard=False", "train.log_every=500"]


def genae(args: list[str], log: Path, threads: int = 1) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-m", "genae", *args], stdout=open(log, "a"),
                            stderr=subprocess.STDOUT, env=env)


def steps_of(run: Path) -> int:
    info = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    return int(info.get("step", 0))


PROBE_STEPS, STARTUP_S = 20, 3.0   # the probe's length, and what start-up adds to its time


def default_steps(method: str) -> tuple[int, int | None]:
    """(train.steps, model.vae_steps or None) of ``method``'s defaults."""
    from genae.config import RunConfig

    cfg = RunConfig.from_dict({"method": method})
    return cfg.train.steps, getattr(cfg.model, "vae_steps", None)


def budget_steps(method: str, rates: dict[str, float], minutes: float | None) -> list[str]:
    """The ``--set`` items that cut ``method`` to ``minutes`` of training (none if it fits)."""
    if minutes is None or method not in rates:
        return []
    steps, vae_steps = default_steps(method)
    per_step = max(rates[method] - STARTUP_S, 0.1) / PROBE_STEPS
    fit = int(minutes * 60 / per_step) // 100 * 100
    if fit >= steps:
        return []
    fit = max(fit, 100)
    sets = [f"train.steps={fit}", f"train.sample_every={fit}", f"train.ckpt_every={fit}"]
    if vae_steps:
        sets.append(f"model.vae_steps={vae_steps * fit // steps}")
    return sets


def job(method: str, out: Path, data_dir: str, probe: int | None, cut: list[str] = (),
        device: str = "cpu") -> list[list[str]]:
    """The commands of one method, in order (those already done are left out)."""
    run = out / "runs" / method
    length = [f"train.steps={probe}", f"train.sample_every={probe}", f"train.ckpt_every={probe}"] if probe else list(cut)
    if probe and default_steps(method)[1]:
        # a two-stage method (lsr-gan) spends half the probe in each stage: its stage 2 is the slow one
        length.append(f"model.vae_steps={probe // 2}")
    sets = [x for s in QUIET + length + [f"train.device={device}"] for x in ("--set", s)]
    cmds = []
    if not (run / "config.yaml").is_file():
        cmds.append(["train", method, "--data", "mnist", "--data-dir", data_dir, "--out", str(run), *sets])
    elif not (run / "DONE").is_file():
        cmds.append(["resume", str(run)])
    if probe:
        return cmds
    caps, _ = method_capabilities(method)
    metric = "fid" if "sample" in caps else ("recon-mse" if "reconstruct" in caps else "cluster-acc")
    if not (run / "eval.json").is_file():
        cmds.append(["eval", str(run), "--metrics", metric, "--n-samples", "5000", "--json", "--device", device])
    grid = out / "grids" / f"{method}.png"
    if "sample" in caps and not grid.is_file():
        cmds.append(["sample", str(run), "--n", "64", "--out", str(grid), "--device", device])
    return cmds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/defaults")
    ap.add_argument("--only", default="", help="comma-separated methods (default: every registered one)")
    ap.add_argument("--jobs", type=int, default=2, help="methods at once, one thread each")
    ap.add_argument("--data-dir", default=str(MNIST_10K))
    ap.add_argument("--probe", type=int, default=None, metavar="STEPS",
                    help="train STEPS steps only and report seconds per step (no eval)")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine (benchmarks/defaults_gpu.sh)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="train each method at most this long on one thread (needs OUT-probe/seconds.json)")
    ap.add_argument("--table", action="store_true",
                    help="train nothing: write OUT/defaults.md and OUT/grids.png from the runs there")
    args = ap.parse_args(argv)
    out = Path(args.out if not args.probe else f"{args.out}-probe")
    rates_file = Path(f"{args.out}-probe") / "seconds.json"
    rates = json.loads(rates_file.read_text()) if args.minutes and rates_file.is_file() else {}
    if args.minutes and not rates:
        ap.error(f"--minutes needs the rates of a probe run: {rates_file} (run with --probe {PROBE_STEPS} first)")
    (out / "grids").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    methods = [m for m in (args.only.split(",") if args.only else METHODS) if m]
    if args.table:
        write_table(out, methods, {}, None, rates)
        write_montage(out, methods)
        return 0
    pending = {m: job(m, out, args.data_dir, args.probe, budget_steps(m, rates, args.minutes), args.device)
               for m in methods}
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    seconds: dict[str, float] = json.loads((out / "seconds.json").read_text()) if (out / "seconds.json").is_file() else {}
    failed = []
    while pending or running:
        for m in [m for m in pending if m not in running]:
            if not pending[m]:
                del pending[m]
                continue
            if len(running) >= args.jobs:
                break
            cmd = pending[m].pop(0)
            running[m] = (genae(cmd, out / "logs" / f"{m}.log"), time.perf_counter())
            print(f"[defaults] {m}: {' '.join(cmd[:2])}", flush=True)
        time.sleep(0.5)
        for m, (proc, t0) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[m]
            if proc.args[3] in ("train", "resume"):
                seconds[m] = seconds.get(m, 0.0) + time.perf_counter() - t0
                (out / "seconds.json").write_text(json.dumps(seconds, indent=1))
                if proc.returncode == 0:
                    (out / "runs" / m / "DONE").write_text("")
            if proc.returncode != 0:
                failed.append(m)
                pending.pop(m, None)
                print(f"[defaults] {m}: FAILED (see {out / 'logs' / (m + '.log')})", flush=True)
    write_table(out, methods, seconds, args.probe, rates)
    return 1 if failed else 0


def train_seconds(run: Path) -> float | None:
    """Training time of a finished run from its logged rates: the sum over log intervals of
    steps / steps-per-second, each interval capped at 3× the median one, so that a pause of the
    machine (SIGSTOP while another measurement ran) does not count, while stages of different
    cost (lsr-gan) still do."""
    import statistics

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()] \
        if (run / "metrics.jsonl").is_file() else []
    spans, last = [], 0
    for r in rows:
        if r.get("steps_per_s"):
            spans.append((r["step"] - last) / r["steps_per_s"])
            last = r["step"]
    if not spans:
        return None
    cap = 3 * statistics.median(spans)
    return sum(min(t, cap) for t in spans)


def write_table(out: Path, methods: list[str], seconds: dict[str, float], probe: int | None,
                rates: dict[str, float]) -> None:
    rows = ["| method | network (default) | steps (default) | train time (1 thread) | FID ↓ (5,000 samples) | grid |",
            "|---|---|---|---|---|---|"]
    for m in methods:
        run = out / "runs" / m
        if not (run / "config.yaml").is_file():
            continue
        import yaml
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        net = cfg["model"].get("net", cfg["model"].get("arch", "?"))
        if net == "auto":  # what it builds on 28×28 digits
            from genae.nets import resolve_net
            net = f"auto → {resolve_net('auto', (1, 28, 28))}"
        steps, default = cfg["train"]["steps"], default_steps(m)[0]
        if steps != default and m in rates:  # cut to the budget: say what the default length would take
            whole = (rates[m] - STARTUP_S) / PROBE_STEPS * default / 3600
            steps = f"{steps} ({default}: ≈ {whole:.1f} h)"
        elif not probe:
            steps = f"{steps} ({default})"
        ev = json.loads((run / "eval.json").read_text()) if (run / "eval.json").is_file() else {}
        res = ev.get("metrics", ev)
        fid = res.get("fid", {}).get("value")
        mse = res.get("recon-mse", {}).get("value")
        acc = res.get("cluster-acc", {}).get("value")
        score = (f"{fid:.2f}" if fid is not None else f"recon-mse {mse:.4f}" if mse is not None
                 else f"cluster-acc {acc:.3f}" if acc is not None else "—")
        t = train_seconds(run) if not probe else seconds.get(m)
        per = f"{t / steps:.3f} s/step" if probe and t else (f"{t / 60:.1f} min" if t else "—")
        grid = f"![{m}](grids/{m}.png)" if (out / "grids" / f"{m}.png").is_file() else "—"
        rows.append(f"| {m} | {net} | {steps} | {per} | {score} | {grid} |")
    (out / "defaults.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


def write_montage(out: Path, methods: list[str], cols: int = 6) -> None:
    """OUT/grids.png: every method's 8×8 grid under its name, ``cols`` to a row (one
    figure for docs/results.md instead of a file per method)."""
    from PIL import Image, ImageDraw

    tiles = [(m, Image.open(out / "grids" / f"{m}.png").convert("L")) for m in methods
             if (out / "grids" / f"{m}.png").is_file()]
    if not tiles:
        return
    w, h = max(im.width for _, im in tiles), max(im.height for _, im in tiles)
    label, pad = 14, 6
    rows = -(-len(tiles) // cols)
    sheet = Image.new("L", (cols * (w + pad) + pad, rows * (h + label + pad) + pad), 255)
    draw = ImageDraw.Draw(sheet)
    for i, (m, im) in enumerate(tiles):
        x, y = pad + (i % cols) * (w + pad), pad + (i // cols) * (h + label + pad)
        draw.text((x, y), m, fill=0)
        sheet.paste(im, (x, y + label))
    sheet.save(out / "grids.png", optimize=True)


if __name__ == "__main__":
    sys.exit(main())
