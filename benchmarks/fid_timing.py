"""Domain-classifier accuracy and FID timing (domain backbone, 10,000 generated 28x28 images).

usage: PYTHONPATH=src python bench_fid.py mnist|fashion-mnist
"""
import sys, time
import torch
torch.set_num_threads(1)
from genae.data import DataConfig, load_dataset
from genae.methods.base import Method
from genae.metrics import EvalContext, evaluate

name = sys.argv[1]
cfg = DataConfig(name, root="/work/shared/datasets/mnist-10k") if name == "mnist" else DataConfig(name)
ctx = EvalContext(cfg, n_samples=10000)
t = time.perf_counter()
net = ctx.classifier()
print(f"domain classifier {name}: test acc {net.meta['test_accuracy']:.4f} "
      f"(train {net.meta['train_seconds']} s this time or when cached; load/train {time.perf_counter() - t:.1f} s) "
      f"{net.meta['path']}", flush=True)
t = time.perf_counter(); ctx.real_features()
print(f"real statistics ({len(ctx.dataset('test').x)} test images): {time.perf_counter() - t:.1f} s (cached on disk)")


class Replay(Method):
    """'Generates' stored images: train images (FID ~ 0 sanity check) or uniform noise."""
    input_range = "unit"
    def __init__(self, x, noise=False):
        super().__init__(None, None); self.x, self.noise, self.i = x, noise, 0
        self.p = torch.nn.Parameter(torch.zeros(1))
    def sample(self, n, y=None, generator=None):
        if self.noise:
            return torch.rand(n, *self.x.shape[1:], generator=generator)
        out = self.x[self.i:self.i + n].float() / 255; self.i += n; return out

train = load_dataset(cfg, "train")
for label, m in (("train images", Replay(train.x[:10000])), ("uniform noise", Replay(train.x, noise=True))):
    fresh = EvalContext(cfg, n_samples=10000)      # real stats come from the disk cache
    t = time.perf_counter()
    r = evaluate(m, fresh, ["fid"])["fid"]
    print(f"FID[{label}] = {r['value']:.3f}  wall {time.perf_counter() - t:.2f} s  {r}", flush=True)
