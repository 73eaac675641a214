"""Domain-classifier test accuracy, and the time of FID (domain backbone) for 10,000 images.

For a dataset: train (or load from the cache) the domain classifier and print its test accuracy;
compute and cache the real-data statistics of the test split; then time ``genae.metrics.evaluate``
of ``fid`` with 10,000 "generated" 28×28 images against the cached statistics, from a fresh
``EvalContext`` (as ``genae eval`` starts). Two generators bracket the scale: the training images
themselves (FID near 0) and uniform noise (large FID).

    python benchmarks/fid_timing.py mnist --data-dir ../shared/datasets/mnist-10k
    python benchmarks/fid_timing.py fashion-mnist
"""
from __future__ import annotations

import argparse
import time

import torch

from genae.data import DataConfig, load_dataset
from genae.methods.base import DataInfo, Method
from genae.metrics import EvalContext, evaluate


class Replay(Method):
    """A stand-in generator: returns stored images in order, or uniform noise."""

    input_range = "unit"

    def __init__(self, x: torch.Tensor, noise: bool = False):
        super().__init__(None, DataInfo(tuple(x.shape[1:])))
        self.x, self.noise, self.i = x, noise, 0
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device

    def sample(self, n, y=None, generator=None):
        if self.noise:
            return torch.rand(n, *self.x.shape[1:], generator=generator)
        out = self.x[self.i:self.i + n].float() / 255
        self.i += n
        return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dataset", choices=["mnist", "fashion-mnist"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--n", type=int, default=10000)
    args = p.parse_args()
    cfg = DataConfig(args.dataset, root=args.data_dir)
    ctx = EvalContext(cfg, n_samples=args.n)
    t = time.perf_counter()
    net = ctx.classifier()
    print(f"domain classifier {args.dataset}: test accuracy {net.meta['test_accuracy']:.4f} "
          f"(trained in {net.meta['train_seconds']} s; this call {time.perf_counter() - t:.1f} s) "
          f"{net.meta['path']}", flush=True)
    t = time.perf_counter()
    ctx.real_features()
    print(f"real statistics of {len(ctx.dataset('test').x)} test images: {time.perf_counter() - t:.1f} s "
          "(then cached on disk)")
    train = load_dataset(cfg, "train")
    for label, gen in (("training images", Replay(train.x[:args.n])),
                       ("uniform noise", Replay(train.x, noise=True))):
        fresh = EvalContext(cfg, n_samples=args.n)  # real statistics now come from the disk cache
        t = time.perf_counter()
        r = evaluate(gen, fresh, ["fid"])["fid"]
        print(f"FID[{label}] = {r['value']:.3f} with n_fake={r['n_fake']}, n_real={r['n_real']}, "
              f"backbone={r['backbone']}: {time.perf_counter() - t:.2f} s", flush=True)


if __name__ == "__main__":
    main()
