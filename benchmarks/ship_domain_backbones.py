"""Train the domain classifiers that ship with genae, once, and write them as package data.

    OMP_NUM_THREADS=1 python benchmarks/ship_domain_backbones.py                     # all three
    OMP_NUM_THREADS=1 python benchmarks/ship_domain_backbones.py --only mnist-10k

Each backbone is ``genae.metrics.domain.train_domain_classifier`` with the default recipe (the one
``genae eval`` uses), on one thread (the classifier is deterministic for a given thread count and
CPU), written by ``domain.ship_backbone`` to ``src/genae/metrics/backbones/domain-<name>.safetensors``
with its entry in ``manifest.json``: the file's SHA-256, the weights digest every FID reports, the
full SHA-256 of the training and test splits it was trained and measured on, its test accuracy,
the command and the machine. ``genae eval`` then uses it whenever a run's training split has
exactly those contents. Retraining gives new weights (and new FIDs): do it only with a new recipe,
and say so in docs/results.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from genae.data import DataConfig, load_dataset
from genae.metrics import domain

#: name -> (dataset, --data-dir or None for genae's usual places, what it is)
DATASETS = {
    "mnist": ("mnist", None, "MNIST, the official 60,000 training / 10,000 test digits"),
    "fashion-mnist": ("fashion-mnist", None, "Fashion-MNIST, the official 60,000 / 10,000 images"),
    "mnist-10k": ("mnist", str(Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist-10k"),
                  "MNIST-10k, this project's 8,000 / 2,000 subset of MNIST's training digits "
                  "(../shared/datasets/mnist-10k)"),
}


def machine() -> str:
    model = platform.processor() or "?"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}; torch {torch.__version__}; {torch.get_num_threads()} thread(s)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=list(DATASETS), help="ship these (default: all)")
    ap.add_argument("--out", default=str(domain.SHIPPED_DIR), help="package data folder")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for name in args.only or list(DATASETS):
        dataset, data_dir, what = DATASETS[name]
        cfg = DataConfig(dataset, root=data_dir)
        train, test = load_dataset(cfg, "train"), load_dataset(cfg, "test")
        t0 = time.perf_counter()
        net = domain.train_domain_classifier(train, test, domain.DomainRecipe(), "cpu", progress=True)
        entry = domain.ship_backbone(
            net, train, test, name, args.out, data=what, train_seconds=round(time.perf_counter() - t0, 1),
            machine=machine(), command=f"OMP_NUM_THREADS=1 python benchmarks/ship_domain_backbones.py --only {name}")
        print(json.dumps(entry, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
