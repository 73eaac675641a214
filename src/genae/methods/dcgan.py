"""DCGAN (Radford, Metz, Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016): the standard GAN game (Goodfellow et al. 2014) with
the non-saturating generator loss, on convolutional networks with BatchNorm.

Players
    discriminator D: (B, *shape) -> (B, 1) logits of "real" (BatchNorm after all but the first layer).
    generator G: z ~ U[−1, 1]^latent (the paper's uniform noise, 100 dimensions) -> (B, *shape).

The game, one training step (Goodfellow et al. 2014, Algorithm 1, with k = 1):
    1. discriminator: −E[log D(x)] − E[log(1 − D(G(z)))]   (the negated value V(D, G), eq. 1;
       G(z) detached)
    2. generator: −E[log D(G(z))]    (the non-saturating loss of Goodfellow et al. Sec. 3; fresh z)

Recipe (the paper's Sec. 4): Adam lr 2e-4, β = (0.5, 0.999); every convolution, transposed
convolution and linear weight initialised N(0, 0.02), BatchNorm scales N(1, 0.02) (``dcgan_init``);
LeakyReLU(0.2) in D, ReLU in G, tanh output.

Networks and deviations
    - ``net="conv"``: genae's DCGAN family (28, 32 or 64 pixels, any channel count), whose generator
      starts with a linear layer to the smallest map (the paper's "project and reshape");
      ``net="mlp"``: the MLP family (BatchNorm in D's hidden layers, none in G's).
    - The paper trains with mini-batch SGD through Adam on batches of 128; the batch size is
      ``train.batch_size``.
    Images use ``input_range="tanh"`` ([-1, 1], tanh generator); vector data ``"raw"`` (linear output).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import torch

from ..nets import build_decoder, build_discriminator, dcgan_init
from ..objectives import js_discriminator_loss, ns_generator_loss
from ..optim import build_optimizer
from .base import Batch, DataInfo, Manifolds, Method, Update, check_config


@dataclass
class DCGANConfig:
    net: Literal["auto", "mlp", "conv"] = "auto"  # auto: DCGAN conv networks on 28/32/64 images, MLPs otherwise
    latent_dim: int = 100             # dim z
    hidden: int = 0                   # MLP units / conv base channels; 0 = 512 (mlp) or 64 (conv)
    depth: int = 2                    # hidden layers of the MLP networks
    lr: float = 2e-4                  # Adam learning rate (both players)
    betas: tuple[float, float] = (0.5, 0.999)  # (β1, β2)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"


class DCGAN(Method):
    Config = DCGANConfig
    capabilities = frozenset({"sample", "manifolds"})

    def __init__(self, cfg: DCGANConfig, info: DataInfo):
        super().__init__(cfg, info)
        check_config(cfg, positive=("latent_dim", "depth", "lr"), nonnegative=("hidden",))
        self.input_range = "raw" if len(info.shape) == 1 else "tanh"
        width = cfg.hidden or None
        out_act = "tanh" if self.input_range == "tanh" else None
        self.generator = dcgan_init(build_decoder(cfg.net, cfg.latent_dim, info.shape, width, out_act, cfg.depth))
        self.discriminator = dcgan_init(build_discriminator(cfg.net, info.shape, width, cfg.depth))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        return {"discriminator": build_optimizer(c.optimizer, self.discriminator.parameters(), c.lr, c.betas),
                "generator": build_optimizer(c.optimizer, self.generator.parameters(), c.lr, c.betas)}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        x = batch.x
        # 1. the discriminator: binary cross-entropy, real -> 1, fake -> 0 (−V(D, G), eq. 1)
        with torch.no_grad():
            fake = self.generator(self._noise(x.shape[0]))
        loss = js_discriminator_loss(self.discriminator(x), self.discriminator(fake))
        yield Update({"discriminator": loss}, {"discriminator/loss": loss.detach()})

        # 2. the generator: non-saturating −E[log D(G(z))]
        loss = ns_generator_loss(self.discriminator(self.generator(self._noise(x.shape[0]))))
        yield Update({"generator": loss}, {"generator/loss": loss.detach()})

    # --- inference API ------------------------------------------------------------------------
    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """G(z), z ~ U[−1, 1]^latent (unconditional: a ``y`` is refused)."""
        self.reject_y(y)
        return self.generator(self._noise(n, generator))

    def manifolds(self) -> Manifolds:
        """G as the one manifold, z ~ U[−1, 1]^latent."""
        return Manifolds.single(self.generator, self.cfg.latent_dim, "uniform")

    # --- private helpers ----------------------------------------------------------------------
    def _noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, latent)`` uniform noise on [−1, 1] (from ``generator`` if given)."""
        if generator is None:
            return torch.rand(n, self.cfg.latent_dim, device=self.device) * 2 - 1
        u = torch.rand(n, self.cfg.latent_dim, generator=generator, device=generator.device)
        return u.to(self.device) * 2 - 1
