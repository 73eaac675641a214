"""Training throughput of genae's ``wgan-gp`` as a share of the shortest plain-PyTorch loop with
the same networks, initial weights and numerics, side by side in one process.

The plain loop: MNIST-10k pre-loaded in [-1, 1], a seeded permutation per epoch and an index
gather, fused Adam (lr 1e-4, β = (0, 0.9)) for critic and generator, n_critic = 5 critic steps with
the gradient penalty at random interpolates (λ = 10), then one generator step; no logging, no
checkpoint. genae runs ``genae.training.train`` end to end (set-up, logging, final checkpoint), so
its share includes what a user pays. Shares are paired per repeat and the median is reported.

The issue also asks for an independent GAN library beside it: vegans 0.4.0 and torchgan 0.1.0 both
import torchvision, which does not install with the CPU torch here (docs/results.md).

    python benchmarks/throughput_wgan_gp.py [--steps 200] [--repeats 3]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch

from genae.config import build_config
from genae.data import DataConfig, load_dataset
from genae.methods import METHODS
from genae.objectives.gan import wgan_gp_critic_loss
from genae.training import train

MNIST_10K = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-10k"


def config(steps: int, batch: int, out: Path, seed: int):
    sets = [f"train.steps={steps}", f"train.batch_size={batch}", "train.device='cpu'", "train.progress=False",
            f"train.log_every={min(100, steps)}", f"train.sample_every={steps}", f"train.ckpt_every={steps}",
            "train.tensorboard=False", f"train.seed={seed}", "model.hidden=256"]
    return build_config("wgan-gp", "mnist", str(MNIST_10K), overrides=sets, out=str(out))


def plain(template, x: torch.Tensor, steps: int, batch: int, seed: int) -> float:
    """Steps/s of the plain loop (see the module docstring)."""
    gen, critic = copy.deepcopy(template.generator), copy.deepcopy(template.critic)
    c = template.cfg
    opt_d = torch.optim.Adam(critic.parameters(), lr=c.lr, betas=c.betas, fused=True)
    opt_g = torch.optim.Adam(gen.parameters(), lr=c.lr, betas=c.betas, fused=True)
    g = torch.Generator().manual_seed(seed)
    n, pos = len(x), 0
    perm = torch.randperm(n, generator=g)
    t0 = time.perf_counter()
    for _ in range(steps):
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=g), 0
        xb = x[perm[pos:pos + batch]]
        pos += batch
        for _ in range(c.n_critic):
            with torch.no_grad():
                fake = gen(torch.randn(batch, c.latent_dim))
            loss, _ = wgan_gp_critic_loss(critic, xb, fake, c.gp_weight)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
        loss = -critic(gen(torch.randn(batch, c.latent_dim))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    ds = load_dataset(DataConfig("mnist", root=str(MNIST_10K)), "train")
    x = ds.x.float() / 127.5 - 1
    speeds: dict[str, list[float]] = {"plain": [], "genae": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            cfg = config(args.steps, args.batch_size, Path(tmp) / f"g{r}", r)
            torch.manual_seed(r)
            template = METHODS["wgan-gp"].build(cfg.model, ds.info)
            speeds["plain"].append(plain(template, x, args.steps, args.batch_size, r))
            t0 = time.perf_counter()
            train(cfg)
            speeds["genae"].append(args.steps / (time.perf_counter() - t0))
            print(f"  repeat {r}: plain {speeds['plain'][-1]:.2f}, genae {speeds['genae'][-1]:.2f} steps/s")
    share = statistics.median(a / b for a, b in zip(speeds["genae"], speeds["plain"]))
    print(f"wgan-gp (MLP 784-256-256 critic/generator, z 128, n_critic 5, batch {args.batch_size}): plain "
          f"{statistics.median(speeds['plain']):.2f} steps/s, genae {statistics.median(speeds['genae']):.2f} "
          f"steps/s; genae's share of the plain loop (median of per-repeat ratios) {share:.2f}")


if __name__ == "__main__":
    main()
