"""Diagnostic: the CTRL encoder trained on ΔR(Z) alone (MCR², no decoder game): an upper bound of
what the game's encoder can reach in ns-acc with this network and data. Usage: mcr_only.py OUT LR STEPS [WIDTH]"""
import sys
import torch
import genae
from genae.config import build_config
from genae.methods.ctrl import CTRL
from genae.methods.base import Update
from genae.objectives.rate_reduction import delta_r

out, lr, steps = sys.argv[1], sys.argv[2], sys.argv[3]
width = sys.argv[4] if len(sys.argv) > 4 else "32"

def train_step(self, batch, step):
    z = self.encoder(batch.x)
    dr = delta_r(z, batch.y, self.num_classes, self.cfg.eps2, self.cfg.precision)
    yield Update({"encoder": -dr}, {"encoder/delta_r": dr.detach()})

CTRL.train_step = train_step
cfg = build_config(config_file="configs/ctrl-multi_mnist_cpu.yaml", data_dir="../shared/datasets/mnist-10k",
                   overrides=[f"model.lr={lr}", f"train.steps={steps}", f"model.width={width}", "train.threads=1",
                              "train.progress=False", "train.ckpt_every=100", "train.keep_ckpts=20",
                              "train.sample_every=100000"], out=out)
genae.train(cfg)
