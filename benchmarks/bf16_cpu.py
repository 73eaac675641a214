"""fp32 against bf16 autocast on the CPU, step by step, side by side in one process (issue 38).

For each representative step — the MLP VAE, the DCGAN pair, IMAE's Table 1 MLP with VAT, LSR-GAN's
Table 3 ResNets (both stages), CTRL's DCGAN pair (Tables 4-5) — the method is built from its defaults, and the same update loop the
trainer runs (``method.train_step`` under the autocast context, then ``trainer.backward_update`` and
``trainer.step_update``) is timed on a fixed random batch in fp32 and in bf16, each also with the
network and batch in channels-last (``VARIANTS``), alternately ``--repeats`` times (median steps/s,
and the ratios to fp32). ``--profile`` prints the top operators of each (torch.profiler, self CPU
time), which is where the time goes.

    python benchmarks/bf16_cpu.py                          # every case, 1 thread
    python benchmarks/bf16_cpu.py --only dcgan --profile   # one case, with the operator table
    python benchmarks/bf16_cpu.py --trainer --only lsr-gan,ctrl-dcgan --steps 60 --data-dir DIR

``--trainer`` times whole ``genae.train`` runs instead (MNIST from ``--data-dir``, each method's
defaults; ``train.amp=none`` against ``bf16``, ``train.channels_last=auto``, i.e. channels-last for
the convolutional ones in bf16): what a user's run gains, with the batch sampler, logging, the NaN
check, grids and the final checkpoint included. LSR-GAN's run covers both stages (half the steps each).
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import torch

from genae.config import RunConfig, build_config
from genae.data.core import Batch, DataInfo
from genae.methods import METHODS
from genae.trainer import backward_update, player_params, step_update

#: name -> (method, stage to enter or None, image side, batch or None for the recipe's); each
#: built from its defaults. CTRL's DCGAN pair (Tables 4-5, 32×32, full width) is timed on 256 of
#: its recipe's 2,048 images per step: the ratio is the network's, and 2,048 would make one fp32
#: step take seconds on one thread.
CASES = {
    "vae-mlp": ("vae", None, 28, None),
    "dcgan": ("dcgan", None, 28, None),
    "imae-vat": ("imae", None, 28, None),
    "lsr-vae": ("lsr-gan", "vae", 28, None),
    "lsr-gan": ("lsr-gan", "gan", 28, None),
    "ctrl-dcgan": ("ctrl-multi", None, 32, 256),
}

#: name -> (autocast dtype, channels-last)
VARIANTS = {"fp32": ("fp32", False), "bf16": ("bf16", False), "fp32-cl": ("fp32", True), "bf16-cl": ("bf16", True)}


def build(case: str, channels_last: bool = False, seed: int = 0):
    """``case``'s method (in its stage), its optimizers and a fixed random batch of its recipe's size."""
    name, stage, side, batch = CASES[case]
    cfg = RunConfig.from_dict({"method": name})
    info = DataInfo(shape=(1, side, side), num_classes=10, size=8000)
    torch.manual_seed(seed)
    method = METHODS[name].build(cfg.model, info)
    if channels_last:
        method.to(memory_format=torch.channels_last)
    opts = method.optimizers()        # before the stage freezes a player's networks, as the trainer
    if stage is not None:
        method.enter_stage(next(s for s in method.stages() if s.name == stage))
    method.train()
    bs = batch or cfg.train.batch_size
    x = torch.rand(bs, 1, side, side)
    if method.input_range == "tanh":
        x = 2 * x - 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return method, opts, Batch(x=x, y=torch.arange(bs) % 10)   # every class, as balanced batches


def stepper(case: str, variant: str, warmup: int):
    """A function ``run(n)`` that trains ``case`` in ``variant`` (a key of ``VARIANTS``) for n more
    steps, as the trainer updates (each update's forward under the autocast context, then
    ``backward_update`` and ``step_update``); ``warmup`` steps are run before it is returned."""
    dtype, channels_last = VARIANTS[variant]
    method, opts, batch = build(case, channels_last)
    params = player_params(opts)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bf16" else contextlib.nullcontext()
    done = 0

    def run(n: int) -> None:
        nonlocal done
        for i in range(done, done + n):
            updates = method.train_step(batch, i)
            while True:
                with amp:
                    update = next(updates, None)
                if update is None:
                    break
                backward_update(update, params)
                step_update(update, opts, params, {})
        done += n

    run(warmup)
    return run


def rate(case: str, variant: str, steps: int, warmup: int = 5) -> float:
    """Steps/s of ``case`` in ``variant`` over ``steps`` steps after ``warmup``."""
    run = stepper(case, variant, warmup)
    t0 = time.perf_counter()
    run(steps)
    return steps / (time.perf_counter() - t0)


def profile(case: str, variant: str, steps: int = 10, rows: int = 15) -> str:
    """The top ``rows`` operators by self CPU time over ``steps`` steps (after 3 of warm-up)."""
    run = stepper(case, variant, 3)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run(steps)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def trainer_rate(case: str, amp: str, steps: int, data_dir: str, out: Path) -> float:
    """Steps/s of a whole ``genae.train`` run of ``case``'s method (its defaults, ``case``'s batch)
    on MNIST in ``data_dir`` with ``train.amp=amp`` and ``train.channels_last=auto``."""
    from genae.training import train

    name, _, side, batch = CASES[case]
    overrides = [f"train.steps={steps}", f"train.amp='{amp}'", "train.progress=False", "train.tensorboard=False",
                 f"train.log_every={max(1, steps // 4)}", f"train.sample_every={steps}", f"train.ckpt_every={steps}",
                 "train.device='cpu'", f"data.image_size={side}"]
    if batch:
        overrides.append(f"train.batch_size={batch}")
    if name == "lsr-gan":
        overrides.append(f"model.vae_steps={steps // 2}")
    cfg = build_config(name, "mnist", data_dir, overrides=overrides, out=str(out))
    t0 = time.perf_counter()
    train(cfg)
    return steps / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help=f"comma-separated cases of {', '.join(CASES)}")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--trainer", action="store_true", help="time whole genae.train runs, fp32 against bf16")
    ap.add_argument("--data-dir", default=None, help="MNIST for --trainer")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = [c for c in (args.only.split(",") if args.only else CASES) if c]
    if args.trainer:
        print(f"torch {torch.__version__}, {args.threads} thread(s), genae.train of {args.steps} steps × {args.repeats}")
        print("| run | fp32 steps/s | bf16 steps/s | bf16 / fp32 |\n|---|---|---|---|")
        with tempfile.TemporaryDirectory() as tmp:
            for case in cases:
                got = {"none": [], "bf16": []}
                for r in range(args.repeats):
                    for amp in got:
                        got[amp].append(trainer_rate(case, amp, args.steps, args.data_dir, Path(tmp) / f"{case}-{amp}-{r}"))
                med = {k: statistics.median(v) for k, v in got.items()}
                print(f"| {case} | {med['none']:.2f} | {med['bf16']:.2f} | {med['bf16'] / med['none']:.2f}× |", flush=True)
        return 0
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps × {args.repeats}")
    variants = list(VARIANTS)
    print("| step | " + " | ".join(f"{v} steps/s" for v in variants) + " | " +
          " | ".join(f"{v} / fp32" for v in variants[1:]) + " |")
    print("|---" * (2 * len(variants)) + "|")
    for case in cases:
        got = {v: [] for v in variants}
        for _ in range(args.repeats):      # the variants alternate, so a change of machine load hits all
            for v in variants:
                got[v].append(rate(case, v, args.steps))
        med = {v: statistics.median(r) for v, r in got.items()}
        print(f"| {case} | " + " | ".join(f"{med[v]:.2f}" for v in variants) + " | " +
              " | ".join(f"{med[v] / med['fp32']:.2f}×" for v in variants[1:]) + " |", flush=True)
    if args.profile:
        for case in cases:
            for variant in VARIANTS:
                print(f"\n## {case} {variant}\n{profile(case, variant)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
