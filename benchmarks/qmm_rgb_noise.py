"""QMM Fig. 5: noise-added RGB-MNIST test digits (``data.rect_noise=K`` rectangles) as PNG files, the
inputs of ``genae manifold RUN --image FILE``, which derives a new manifold for each (eq. 3).

    python benchmarks/qmm_rgb_noise.py OUTDIR [--count 3] [--rects 3]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from genae.data import DataConfig, load_dataset
from genae.viz.grids import save_png


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--rects", type=int, default=3)
    a = p.parse_args()
    ds = load_dataset(DataConfig("rgb-mnist", rect_noise=a.rects), "test")
    Path(a.out).mkdir(parents=True, exist_ok=True)
    for i in range(a.count):
        path = save_png(ds.x[i].permute(1, 2, 0).numpy(), Path(a.out) / f"noisy_{i}_label{int(ds.y[i])}.png")
        print(path)


if __name__ == "__main__":
    main()
