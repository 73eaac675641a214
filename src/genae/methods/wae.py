"""Wasserstein autoencoder with a latent adversary (Tolstikhin et al., "Wasserstein Auto-Encoders",
ICLR 2018), with a WGAN-GP critic in latent space (as in MaskAAE's WAE baseline).

Players
    critic D (an MLP on codes): tells prior samples z ~ N(0, I) ("real") from codes E(x) ("fake").
    autoencoder (deterministic encoder E + decoder G).

Objective, per training step
    1. ``n_critic`` critic updates, each minimising
           E[D(E(x))] − E[D(z)] + gp_weight · E[(‖∇D(ẑ)‖ − 1)²],   ẑ between z and E(x);
       E(x) is detached (the encoder is a constant of the critic's game).
    2. One autoencoder update minimising
           Σ_pixels (G(E(x)) − x)²  +  λ · (−E[D(E(x))])       (batch means).

Deviations from the paper
    - The paper's WAE-GAN uses a Jensen-Shannon latent discriminator; we use a WGAN-GP critic.
    - All critic updates of a step reuse the step's batch (one encoder pass, detached for the
      critic, with fresh prior samples per critic update); the encoder does not change during the
      critic updates, so its codes are exact. The same pass feeds the autoencoder update.
    - Defaults follow the paper's MNIST setup: d_z = 8, λ = 1, adversary of 4×512 ReLU layers,
      Adam β1 = 0.5, lr 1e-3 (autoencoder) and 5e-4 (adversary).
    Images use ``input_range="unit"`` (sigmoid decoder); vector data ``"raw"`` (linear decoder).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Iterator, Literal

import torch

from ..nets import MLP, build_decoder, build_encoder
from ..objectives import wgan_generator_loss, wgan_gp_critic_loss
from ..optim import build_optimizer
from .base import Batch, DataInfo, Method, Update, check_config


@dataclass
class WAEGANConfig:
    net: Literal["mlp", "conv"] = "mlp"
    latent_dim: int = 8               # d_z
    hidden: int = 0                   # MLP units / conv base channels; 0 = 512 (mlp) or 64 (conv)
    lam: float = 1.0                  # λ (weight of the latent divergence)
    n_critic: int = 5                 # critic updates per autoencoder update
    gp_weight: float = 10.0           # gradient-penalty weight (Gulrajani et al.)
    critic_hidden: int = 512          # width of the critic's 4 hidden layers
    lr: float = 1e-3                  # α (autoencoder)
    critic_lr: float = 5e-4           # α (adversary)
    betas: tuple[float, float] = (0.5, 0.999)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"


class WAEGAN(Method):
    Config = WAEGANConfig
    capabilities = frozenset({"encode", "decode", "reconstruct", "sample"})

    def __init__(self, cfg: WAEGANConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.input_range = "raw" if len(info.shape) == 1 else "unit"
        _validate(cfg)
        width = cfg.hidden or None
        out_act = "sigmoid" if self.input_range == "unit" else None
        self.encoder = build_encoder(cfg.net, info.shape, cfg.latent_dim, width)
        self.decoder = build_decoder(cfg.net, cfg.latent_dim, info.shape, width, out_act=out_act)
        self.critic = MLP(cfg.latent_dim, 1, (cfg.critic_hidden,) * 4, act="relu")

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        return {
            "critic": build_optimizer(c.optimizer, self.critic.parameters(), c.critic_lr, c.betas),
            "autoencoder": build_optimizer(
                c.optimizer, chain(self.encoder.parameters(), self.decoder.parameters()), c.lr, c.betas),
        }

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        c, x = self.cfg, batch.x
        z_fake = self.encoder(x)  # E(x): detached for the critic, differentiable for step 2
        codes = z_fake.detach()
        for _ in range(c.n_critic):
            z_real = self.prior_noise(x.shape[0], c.latent_dim)
            loss, logs = wgan_gp_critic_loss(self.critic, z_real, codes, c.gp_weight)
            yield Update({"critic": loss}, {f"critic/{k}": v for k, v in logs.items()})

        recon = (self.decoder(z_fake) - x).pow(2).flatten(1).sum(1).mean()
        adv = wgan_generator_loss(self.critic(z_fake))
        loss = recon + c.lam * adv
        yield Update({"autoencoder": loss}, {"autoencoder/recon": recon.detach(),
                                             "autoencoder/adv": adv.detach(),
                                             "autoencoder/loss": loss.detach()})

    # --- inference API ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoded prior samples z ~ N(0, I) (unconditional: a ``y`` is refused)."""
        self.reject_y(y)
        return self.decoder(self.prior_noise(n, self.cfg.latent_dim, generator))


def _validate(cfg: WAEGANConfig) -> None:
    check_config(cfg, positive=("latent_dim", "n_critic", "critic_hidden", "lr", "critic_lr"),
                 nonnegative=("hidden", "lam", "gp_weight"))
