"""Kill a training run with SIGKILL mid-training, resume it, and compare with an uninterrupted run.

Both runs use the same config; the interrupted one is killed (``kill -9``: no handler runs, no
checkpoint is written at the kill) once its checkpoint at ``--kill-after`` steps exists, then
continued with ``genae resume``. Prints whether every weight tensor of the two final checkpoints is
bit-identical, and the largest absolute difference otherwise.

    python benchmarks/resume_check.py --data mnist --data-dir ../shared/datasets/mnist-10k \\
        --steps 3000 --ckpt-every 500 --kill-after 1500
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file


def genae_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "genae", *args]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", default="vae")
    p.add_argument("--data", default="mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--ckpt-every", type=int, default=500)
    p.add_argument("--kill-after", type=int, default=1500, help="kill once this checkpoint exists")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", default=None, help="keep the two runs here (default: a temp dir)")
    args = p.parse_args()

    root = Path(args.out or tempfile.mkdtemp(prefix="genae-resume-"))
    common = ["--data", args.data, *(["--data-dir", args.data_dir] if args.data_dir else []),
              "--set", f"train.steps={args.steps}", "--set", f"train.ckpt_every={args.ckpt_every}",
              "--set", "train.progress=False", *[a for o in args.overrides for a in ("--set", o)]]
    t0 = time.perf_counter()
    subprocess.run(genae_cmd("train", args.method, *common, "--out", str(root / "full")), check=True)
    t_full = time.perf_counter() - t0

    proc = subprocess.Popen(genae_cmd("train", args.method, *common, "--out", str(root / "cut")))
    latest = root / "cut" / "checkpoints" / "latest"
    want = f"step-{args.kill_after:08d}"
    while proc.poll() is None and not (latest.exists() and latest.read_text() >= want):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = latest.read_text()
    metrics = (root / "cut" / "metrics.jsonl").read_text().splitlines()
    print(f"killed with SIGKILL; latest complete checkpoint {killed_at}; "
          f"{len(metrics)} log rows written before the kill")
    subprocess.run(genae_cmd("resume", str(root / "cut")), check=True)

    final = f"step-{args.steps:08d}"
    a = load_file(str(root / "full" / "checkpoints" / final / "model.safetensors"))
    b = load_file(str(root / "cut" / "checkpoints" / final / "model.safetensors"))
    same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    worst = max((a[k] - b[k]).abs().max().item() for k in a) if a.keys() == b.keys() else float("nan")
    print(f"uninterrupted run: {t_full:.1f} s; runs in {root}")
    print(f"final weights identical: {same} ({len(a)} tensors, max |difference| = {worst:g})")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
