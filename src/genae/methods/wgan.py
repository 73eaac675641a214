"""Wasserstein GANs with a Lipschitz critic: the gradient penalty (``wgan-gp``; Gulrajani, Ahmed,
Arjovsky, Dumoulin, Courville, "Improved Training of Wasserstein GANs", NeurIPS 2017) or spectral
normalisation (``wgan-sn``; Miyato, Kataoka, Koyama, Yoshida, "Spectral Normalization for Generative
Adversarial Networks", ICLR 2018, as the WGAN baseline of the QMM paper, "Deep Quotient Manifold
Modeling").

Players
    critic D: (B, *shape) -> (B, 1), no BatchNorm; 1-Lipschitz by the penalty (``lipschitz="gp"``)
        or by spectral normalisation of every convolution and linear layer (``lipschitz="sn"``).
    generator G: z ~ N(0, I_latent) -> (B, *shape).

The game (the Kantorovich-Rubinstein dual, WGAN-GP eq. 2; Algorithm 1), one training step:
    1. ``n_critic`` critic updates, each minimising (z fresh per update, G(z) detached)
           gp: E[D(G(z))] − E[D(x)] + λ · E[(‖∇_x̂ D(x̂)‖₂ − 1)²],  x̂ = εx + (1 − ε)G(z), ε ~ U[0, 1]
               (eq. 3; Algorithm 1, lines 3–9)
           sn: E[D(G(z))] − E[D(x)]       (D's weights W / σ(W): SNGAN eq. 8, Lipschitz by construction)
    2. one generator update minimising −E[D(G(z))]     (Algorithm 1, lines 11–12; fresh z).

Defaults
    wgan-gp: λ = 10, n_critic = 5, Adam lr 1e-4, β = (0, 0.9) (Algorithm 1's defaults), z of 128
        dimensions (the paper's DCGAN-style networks).
    wgan-sn: Adam lr 2e-4 (QMM); the QMM text we have gives neither the betas nor n_critic, so both
        follow SNGAN's setting C, the one with lr 2e-4: β = (0.5, 0.999), n_critic = 1 (SNGAN
        Table 1); z of 8 dimensions (QMM's MNIST, Table B.1).

Networks and deviations
    - ``net="conv"``: genae's DCGAN family (28, 32 or 64 pixels, any channel count; critic without
      BatchNorm, generator with BatchNorm and a tanh output); ``net="mlp"``: the MLP family
      (LeakyReLU(0.2) critic, ReLU generator). QMM's Tables B.1–B.3 layer lists are not available
      (docs/methods.md names them only): those presets are pending, and wgan-sn uses the DCGAN /
      MLP families meanwhile. PyTorch's default initialisation.
    - All critic updates of a step reuse the step's real batch (Algorithm 1 draws a fresh real
      batch per critic update); the noise z and the interpolation weights ε are fresh every update.
    - Spectral normalisation does one power iteration per critic forward in training mode
      (``torch.nn.utils.parametrizations.spectral_norm``), in the generator's update too.
    Images use ``input_range="tanh"`` ([-1, 1], tanh generator); vector data ``"raw"`` (linear output).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import torch

from ..nets import build_decoder, build_discriminator
from ..objectives import wgan_critic_loss, wgan_generator_loss, wgan_gp_critic_loss
from ..optim import build_optimizer
from .base import Batch, DataInfo, Manifolds, Method, Update, check_config


@dataclass
class WGANConfig:
    lipschitz: Literal["gp", "sn"] = "gp"  # how D is kept 1-Lipschitz: gradient penalty or spectral norm
    net: Literal["auto", "mlp", "conv"] = "auto"  # auto: DCGAN conv networks on 28/32/64 images, MLPs otherwise
    latent_dim: int = 128             # dim z
    hidden: int = 0                   # MLP units / conv base channels; 0 = 512 (mlp) or 64 (conv)
    depth: int = 2                    # hidden layers of the MLP networks
    gp_weight: float = 10.0           # λ (gp only)
    n_critic: int = 5                 # n_critic
    lr: float = 1e-4                  # α (both players)
    betas: tuple[float, float] = (0.0, 0.9)  # (β1, β2)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"


class WGAN(Method):
    Config = WGANConfig
    capabilities = frozenset({"sample", "manifolds"})

    def __init__(self, cfg: WGANConfig, info: DataInfo):
        super().__init__(cfg, info)
        check_config(cfg, positive=("latent_dim", "depth", "n_critic", "lr"), nonnegative=("hidden", "gp_weight"))
        self.input_range = "raw" if len(info.shape) == 1 else "tanh"
        width = cfg.hidden or None
        out_act = "tanh" if self.input_range == "tanh" else None
        self.generator = build_decoder(cfg.net, cfg.latent_dim, info.shape, width, out_act, cfg.depth)
        self.critic = build_discriminator(cfg.net, info.shape, width, cfg.depth, batchnorm=False,
                                          spectral_norm=cfg.lipschitz == "sn")

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        return {"critic": build_optimizer(c.optimizer, self.critic.parameters(), c.lr, c.betas),
                "generator": build_optimizer(c.optimizer, self.generator.parameters(), c.lr, c.betas)}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        c, x = self.cfg, batch.x
        # 1. the critic: n_critic steps towards the Wasserstein-1 estimate E[D(x)] − E[D(G(z))]
        for _ in range(c.n_critic):
            with torch.no_grad():
                fake = self.generator(self.prior_noise(x.shape[0], c.latent_dim))
            if c.lipschitz == "gp":
                loss, logs = wgan_gp_critic_loss(self.critic, x, fake, c.gp_weight)  # eq. 3
            else:
                loss = wgan_critic_loss(self.critic(x), self.critic(fake))   # SN: no penalty term
                logs = {"wasserstein": -loss.detach(), "loss": loss.detach()}
            yield Update({"critic": loss}, {f"critic/{k}": v for k, v in logs.items()})

        # 2. the generator: −E[D(G(z))]
        loss = wgan_generator_loss(self.critic(self.generator(self.prior_noise(x.shape[0], c.latent_dim))))
        yield Update({"generator": loss}, {"generator/loss": loss.detach()})

    # --- inference API ------------------------------------------------------------------------
    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """G(z), z ~ N(0, I) (unconditional: a ``y`` is refused)."""
        self.reject_y(y)
        return self.generator(self.prior_noise(n, self.cfg.latent_dim, generator))

    def manifolds(self) -> Manifolds:
        """G as the one manifold, z ~ N(0, I)."""
        return Manifolds.single(self.generator, self.cfg.latent_dim)
