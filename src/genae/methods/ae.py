"""Deterministic autoencoder: the reconstruction-only baseline.

Players
    autoencoder (encoder E + decoder G): minimises the reconstruction error of G(E(x)).

Objective
    ``likelihood="mse"``: squared error Σ_pixels (G(E(x)) − x)², averaged over the batch.
    ``likelihood="bernoulli"``: binary cross-entropy of the decoder logits, summed over pixels,
    averaged over the batch (images in [0, 1] only).

Notes
    Images use ``input_range="unit"``: the decoder emits logits and ``decode`` applies a sigmoid.
    Vector data use ``input_range="raw"`` with a linear decoder output.
    An autoencoder has no prior over codes, so ``sample`` raises ``Unsupported``.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Iterator, Literal

import torch

from ..errors import ConfigError
from ..nets import build_decoder, build_encoder
from ..objectives import bernoulli_nll
from ..optim import build_optimizer
from .base import Batch, DataInfo, Method, Unsupported, Update, check_config

@dataclass
class AEConfig:
    net: Literal["mlp", "conv"] = "mlp"
    latent_dim: int = 16              # d_z
    hidden: int = 0                   # MLP units / conv base channels; 0 = 512 (mlp) or 64 (conv)
    likelihood: Literal["mse", "bernoulli"] = "mse"  # squared error | cross-entropy
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"


class AE(Method):
    Config = AEConfig
    capabilities = frozenset({"encode", "decode", "reconstruct"})

    def __init__(self, cfg: AEConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.input_range = "raw" if len(info.shape) == 1 else "unit"
        _validate(cfg, self.input_range)
        width = cfg.hidden or None
        self.encoder = build_encoder(cfg.net, info.shape, cfg.latent_dim, width)
        self.decoder = build_decoder(cfg.net, cfg.latent_dim, info.shape, width, out_act=None)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = chain(self.encoder.parameters(), self.decoder.parameters())
        return {"autoencoder": build_optimizer(self.cfg.optimizer, params, self.cfg.lr, self.cfg.betas)}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        x = batch.x
        out = self.decoder(self.encoder(x))
        if self.cfg.likelihood == "bernoulli":
            loss = bernoulli_nll(out, x).mean()
        else:
            loss = (self._mean(out) - x).pow(2).flatten(1).sum(1).mean()
        yield Update({"autoencoder": loss}, {"autoencoder/recon": loss.detach()})

    # --- inference API ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._mean(self.decoder(z))

    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        raise Unsupported("an autoencoder has no prior over its codes to sample from; "
                          "use a vae, wae-gan or aae")

    # --- helpers ------------------------------------------------------------------------------
    def _mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.input_range == "unit" else out


def _validate(cfg: AEConfig, input_range: str) -> None:
    check_config(cfg, positive=("latent_dim", "lr"), nonnegative=("hidden",))
    if cfg.likelihood == "bernoulli" and input_range == "raw":
        raise ConfigError("model.likelihood: 'bernoulli' needs images in [0, 1]; use 'mse' for vector data")
