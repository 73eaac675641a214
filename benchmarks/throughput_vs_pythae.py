"""Training throughput of the same VAE in pythae, in genae and in the shortest plain-PyTorch loop,
side by side in one process (genae's and pythae's steps/s are also given as a share of the plain
loop's: what each library's machinery costs).

Identical networks (by default pythae's own default VAE for MNIST: 784-512-(2×latent) encoder,
latent-512-784 decoder, ReLU; ``--depth 2`` gives genae's default two hidden layers), with the *same
initial weights* in both libraries (pythae gets copies of the modules genae builds from the seed), identical batch size, optimizer (Adam, lr 1e-3,
betas (0.9, 0.999)), likelihood (Bernoulli, summed over pixels, KL summed, mean over the batch) and
data (MNIST-10k training images in [0, 1]). Each library trains for the same number of steps through
its own public training entry point (pythae ``BaseTrainer.train``; genae ``genae.train``), so the
time includes what a user pays: data loading, logging, and the final model save. The two are run
alternately ``--repeats`` times and the median steps/s of each is reported with the ratio.
genae flushes subnormal floats to zero while training (``train.flush_denormal``, its default), and
the plain loop does the same; pythae does not, and on x86 subnormals slow this VAE by ~1.3× after a
few hundred steps. ``--no-flush`` runs the plain loop and genae without it, the numerics of pythae.

    python benchmarks/throughput_vs_pythae.py [--steps 2000] [--batch-size 64] [--repeats 3] [--bf16] [--skip-pythae]

pythae is an optional benchmark dependency: ``pip install -e '.[bench]'``.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import os
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from genae.config import build_config
from genae.data import DataConfig, load_dataset
from genae.methods import METHODS
from genae.training import train

MNIST_10K = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-10k"


def genae_config(args, out: Path, seed: int, amp: str = "none"):
    """genae's run of the same VAE (``--no-flush``: with ``train.flush_denormal=False``)."""
    overrides = [f"model.latent_dim={args.latent}", f"model.hidden={args.hidden}", f"model.depth={args.depth}",
                 "model.lr=1e-3",
                 f"train.steps={args.steps}", f"train.batch_size={args.batch_size}", "train.device='cpu'",
                 f"train.log_every={min(100, args.steps)}", f"train.sample_every={args.steps}",
                 f"train.ckpt_every={args.steps}", "train.progress=False", f"train.seed={seed}",
                 f"train.amp='{amp}'", f"train.flush_denormal={not getattr(args, 'no_flush', False)}"]
    return build_config("vae", "mnist", str(MNIST_10K), overrides=overrides, out=str(out))


def initial_vae(cfg, info):
    """The VAE exactly as ``genae.train(cfg)`` initialises it (same seed, same construction)."""
    torch.manual_seed(cfg.train.seed)
    return METHODS["vae"].build(cfg.model, info)


def run_pythae(template, x: torch.Tensor, steps: int, batch: int, out: Path) -> float:
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    for name in list(logging.root.manager.loggerDict):  # pythae's module loggers print at INFO
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)
    latent = template.cfg.latent_dim

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = copy.deepcopy(template.encoder)

        def forward(self, x):
            h = self.net(x)
            return ModelOutput(embedding=h[:, :latent], log_covariance=h[:, latent:])

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = copy.deepcopy(template.decoder)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    model = VAE(VAEConfig(input_dim=tuple(x.shape[1:]), latent_dim=latent, reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())
    n = steps * batch  # one epoch of exactly `steps` batches, cycling through the data
    data = x[torch.arange(n) % len(x)]
    cfg = BaseTrainerConfig(output_dir=str(out), per_device_train_batch_size=batch, num_epochs=1,
                            learning_rate=1e-3, optimizer_cls="Adam",
                            optimizer_params={"betas": (0.9, 0.999)}, no_cuda=True, seed=0)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        # pythae's per-batch progress bar would flood the output; it is still drawn (and paid for)
        t0 = time.perf_counter()  # from trainer construction, as genae's time includes its set-up
        trainer = BaseTrainer(model=model, train_dataset=BaseDataset(data, torch.zeros(n)),
                              training_config=cfg)
        trainer.train()
        return steps / (time.perf_counter() - t0)


def run_plain(template, x: torch.Tensor, steps: int, batch: int, seed: int, flush: bool = True) -> float:
    """The shortest plain-PyTorch loop with the same networks, initial weights and numerics: data
    pre-loaded as float [0, 1], a seeded permutation per epoch and an index gather per batch,
    fused Adam (lr 1e-3), Bernoulli NLL on logits summed over pixels + KL summed, mean over the
    batch; no logging, no checkpoint. The reference genae's overhead is measured against.
    ``flush``: subnormal floats flushed to zero while it runs, as genae's ``train.flush_denormal``
    (its default) does, so both compute the same numbers at the same speed."""
    import torch.nn.functional as F

    enc, dec = copy.deepcopy(template.encoder), copy.deepcopy(template.decoder)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3, betas=(0.9, 0.999), fused=True)
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    torch.set_flush_denormal(flush)
    t0 = time.perf_counter()
    perm, pos = torch.randperm(n, generator=g), 0
    for _ in range(steps):
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=g), 0
        xb = x[perm[pos:pos + batch]]
        pos += batch
        mu, logvar = enc(xb).chunk(2, dim=1)
        z = torch.addcmul(mu, (0.5 * logvar).exp(), torch.randn_like(mu))
        recon = F.binary_cross_entropy_with_logits(dec(z), xb, reduction="none").flatten(1).sum(1).mean()
        kl = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        (recon + kl).backward()
        opt.step()
    rate = steps / (time.perf_counter() - t0)
    torch.set_flush_denormal(False)
    return rate


def run_genae(cfg) -> float:
    t0 = time.perf_counter()
    train(cfg)
    return cfg.train.steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--depth", type=int, default=1, help="hidden layers per MLP (pythae's default VAE: 1)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bf16", action="store_true", help="also time genae with bf16 autocast")
    p.add_argument("--skip-pythae", action="store_true", help="only the plain loop and genae (no pythae installed)")
    p.add_argument("--no-flush", action="store_true", help="keep subnormal floats in the plain loop and genae "
                   "(train.flush_denormal=False; pythae never flushes them)")
    args = p.parse_args()

    ds = load_dataset(DataConfig("mnist", root=str(MNIST_10K)), "train")
    x = ds.x.float() / 255
    mid = f"-{args.hidden}" * args.depth
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; VAE 784{mid}-{2 * args.latent} / "
          f"{args.latent}{mid}-784, batch {args.batch_size}, "
          f"{args.steps} steps, Adam 1e-3, MNIST-10k train ({len(x)} images)")
    speeds: dict[str, list[float]] = {"plain": [], "pythae": [], "genae": [], "genae-bf16": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            cfg = genae_config(args, Path(tmp) / f"g{r}", seed=r)
            template = initial_vae(cfg, ds.info)
            torch.manual_seed(r)
            speeds["plain"].append(run_plain(template, x, args.steps, args.batch_size, r, not args.no_flush))
            if not args.skip_pythae:
                torch.manual_seed(r)
                speeds["pythae"].append(run_pythae(template, x, args.steps, args.batch_size, Path(tmp) / f"p{r}"))
            speeds["genae"].append(run_genae(cfg))
            if args.bf16:
                speeds["genae-bf16"].append(run_genae(genae_config(args, Path(tmp) / f"b{r}", r, "bf16")))
            print(f"  repeat {r}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in speeds.items() if v) + " steps/s")
    med = {k: statistics.median(v) for k, v in speeds.items() if v}
    if not args.skip_pythae:
        print(f"pythae {med['pythae']:.1f} steps/s | genae (fp32, same numerics) {med['genae']:.1f} steps/s | "
              f"ratio genae/pythae = {med['genae'] / med['pythae']:.2f}x")
    # shares are paired per repeat (each library against the plain loop run right beside it), so
    # a slow spell of the machine (CPU steal on shared cores) cancels out; median over repeats
    share = {k: statistics.median(a / b for a, b in zip(speeds[k], speeds["plain"]))
             for k in ("genae", "pythae") if speeds[k]}
    print(f"plain PyTorch loop {med['plain']:.1f} steps/s | share of it (median of per-repeat ratios): "
          + ", ".join(f"{k} {v:.2f}" for k, v in share.items()))
    if args.bf16:
        print(f"genae with train.amp=bf16 {med['genae-bf16']:.1f} steps/s" + ("" if args.skip_pythae else
              f" | ratio genae-bf16/pythae = {med['genae-bf16'] / med['pythae']:.2f}x "
              "(pythae's trainer disables autocast for the BCE loss)"))


if __name__ == "__main__":
    main()
