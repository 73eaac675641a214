"""What subnormal floats cost fp32 training on the CPU (issue 38): the plain VAE loop of
``benchmarks/throughput_vs_pythae.py`` (pythae's default VAE, batch 64, MNIST-10k) for 500 and then
2,500 steps, with ``torch.set_flush_denormal`` off and on, alternately ``--repeats`` times. The loop
slows as training drives values below float32's normal range; flushed, it keeps its rate.

    OMP_NUM_THREADS=1 python benchmarks/subnormals.py --repeats 2
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput_vs_pythae as tvp  # noqa: E402  (the plain loop and its VAE)

from genae.data import DataConfig, load_dataset  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ds = load_dataset(DataConfig("mnist", root=str(tvp.MNIST_10K)), "train")
    x = ds.x.float() / 255
    shape = SimpleNamespace(batch_size=64, latent=16, hidden=512, depth=1, steps=2500)
    with tempfile.TemporaryDirectory() as tmp:  # build_config wants a run path; nothing is written
        template = tvp.initial_vae(tvp.genae_config(shape, Path(tmp) / "unused", seed=0), ds.info)
    print("| flush subnormals | 500 steps | 2,500 steps |\n|---|---|---|")
    for _ in range(args.repeats):
        for flush in (False, True):
            short = tvp.run_plain(template, x, 500, 64, 0, flush)
            long = tvp.run_plain(template, x, 2500, 64, 0, flush)
            print(f"| {'on' if flush else 'off'} | {short:.1f} steps/s | {long:.1f} steps/s |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
