"""CTRL's encoder trained on ΔR(Z) alone (MCR², no decoder, no game): the ns-acc this network reaches
on its own, to tell whether the closed-loop game or the encoder limits LDR-Multi's ns-acc.

    python benchmarks/ctrl_mcr_only.py runs/mcr-only --lr 3e-4 --steps 600 --eval-steps 200,600

Trains ``configs/ctrl-multi_mnist_cpu.yaml`` (``--set`` adds overrides) with every iteration replaced
by the ΔR(Z) update of ``model.delta_r_pre_step``, then prints the nearest-subspace accuracy (centred,
10 components; the ``ns-acc`` metric) of the checkpoints at ``--eval-steps`` on the test and train split.
"""
from __future__ import annotations

import argparse
import math

import genae
from genae.config import build_config
from genae.methods.ctrl import CTRL
from genae.metrics import EvalContext, nearest_subspace_accuracy
from genae.runs import load_run


def delta_r_only_step(self: CTRL, batch, step: int):
    """The pre-step's update (ΔR(Z) of the real batch, encoder only) as the whole iteration."""
    yield self.delta_r_update(batch.x, self._check_labels(batch))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--config", default="configs/ctrl-multi_mnist_cpu.yaml")
    p.add_argument("--data-dir", default="../shared/datasets/mnist-10k")
    p.add_argument("--lr", default="3e-4")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--eval-steps", default="200,600")
    p.add_argument("--set", action="append", default=[], help="extra config override KEY=VALUE")
    a = p.parse_args()
    evals = [int(s) for s in a.eval_steps.split(",")]
    every = math.gcd(*evals)  # a checkpoint at every requested step, none dropped
    # Patched on the class, not registered as a method: this process only, and the decoder, the
    # prior fit and checkpointing stay exactly CTRL's, so load_run reads the run back unchanged.
    CTRL.train_step = delta_r_only_step
    cfg = build_config(config_file=a.config, data_dir=a.data_dir, out=a.out, overrides=[
        f"model.lr={a.lr}", f"train.steps={a.steps}", "train.progress=False", "train.sample_every=100000",
        f"train.ckpt_every={every}", f"train.keep_ckpts={a.steps // every + 1}", *a.set])
    run = genae.train(cfg)
    ctx = EvalContext(cfg.data, split="test", backbone="domain")
    ytr, yte = ctx.dataset("train").y.numpy(), ctx.dataset("test").y.numpy()
    for s in evals:
        m = load_run(run, step=s)
        ztr, zte = ctx.encodings(m, "train"), ctx.encodings(m, "test")
        print(f"step {s}: ns-acc test {nearest_subspace_accuracy(ztr, ytr, zte, yte):.4f} "
              f"train {nearest_subspace_accuracy(ztr, ytr, ztr, ytr):.4f}")


if __name__ == "__main__":
    main()
