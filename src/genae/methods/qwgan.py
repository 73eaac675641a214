"""Q-WGAN: quotient manifold modeling with a Wasserstein GAN ("Deep Quotient Manifold Modeling").

A generators that share every weight and differ only in the biases of their fully connected
layers (``nets.multibias``): generator i is G(z; {a_l^(i)}). Sharing U_l makes the A manifolds
translates of one another; the bias-aligning regulariser R_BA = Σ_l log tr Cov_i(U_lᵀ a_l^(i))
(``objectives.bias_alignment``) pulls the biases' tangential components together, so the manifolds
differ only along directions normal to them: one shared "quotient" manifold of smooth variation
(style, slant, width) and A discrete offsets (digit identity).

Players
    critic D: the ``wgan-sn`` baseline's critic (every convolution and linear layer spectrally
        normalised, no BatchNorm): (B, *shape) -> (B, 1).
    generator G: the multi-bias generator (``QMMGenerator`` for images, ``MultiBiasMLP`` for vectors).

One training step (QMM §4 and §6)
    1. ``n_critic`` critic updates minimising E[D(G(z, i))] − E[D(x)]     (G's output detached)
    2. one generator update minimising −E[D(G(z, i))] + λ·R_BA
    with z ~ N(0, I) and i ~ Uniform{1..A} per example, fresh for every update.

Defaults: A = 10 (MNIST; 20 for 3D-Chair, 4 for UT-Zap50k), λ = 0.05, Adam lr 2e-4; the betas and
n_critic follow the ``wgan-sn`` baseline (SNGAN's setting with lr 2e-4: β = (0.5, 0.999),
n_critic = 1) so that Q-WGAN and its baseline differ only in the generator and R_BA; z of 8
dimensions (Table B.1). ``reg_schedule`` raises λ at given generator steps (UT-Zap50k: 5e-6, then
5e-4 after 300 epochs). Registry: ``q-wgan`` and its ablation ``q-wgan-noreg`` (λ = 0).

Choices where the paper is silent (see ``nets.multibias`` for the generator's layer list): the
covariance in R_BA is normalised by A and its gradient reaches U and the biases; every example of
a batch draws its own i (BatchNorm then normalises across generators, and never cancels a bias,
which a batch of one generator in training mode would).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import torch

from ..nets import DEFAULT_WIDTH, build_discriminator
from ..nets.multibias import build_multibias_generator
from ..objectives import wgan_critic_loss, wgan_generator_loss
from ..optim import build_optimizer
from .base import Batch, Contract, DataInfo, Manifolds, Method, Update, check_config
from .qmm_shared import check_multibias, multibias_figures, reg_weight_at, sum_alignment


@dataclass
class QWGANConfig:
    num_biases: int = 10              # A: generators (bias sets)
    net: Literal["mlp", "conv"] = "conv"
    latent_dim: int = 8               # dim z (Table B.1, MNIST)
    hidden: int = 0                   # conv base channels / MLP units; 0 = 64 (conv) or 512 (mlp)
    fc_hidden: int = 1024             # units of the conv generator's first (multi-bias) FC layer
    depth: int = 2                    # hidden layers of the MLP networks
    reg_weight: float = 0.05          # λ of R_BA
    reg_schedule: tuple[tuple[int, float], ...] = ()  # ((step, λ), ...): λ from that generator step on
    n_critic: int = 1
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"


class QWGAN(Method):
    Config = QWGANConfig
    capabilities = frozenset({"sample", "figures", "manifolds"})
    sample_y = "manifold"

    @classmethod
    def contract(cls, cfg, info: DataInfo) -> Contract:
        offer = super().contract(cfg, info).figures_for_images(info)   # its figures are image grids
        # one manifold: nothing for y to choose
        return dataclasses.replace(offer, sample_y=None) if cfg.num_biases == 1 else offer

    def __init__(self, cfg: QWGANConfig, info: DataInfo):
        super().__init__(cfg, info)
        check_config(cfg, positive=("latent_dim", "depth", "n_critic", "fc_hidden", "lr"),
                     nonnegative=("hidden", "reg_weight"))
        check_multibias(cfg.num_biases, cfg.reg_weight, cfg.reg_schedule)
        self.input_range = "raw" if len(info.shape) == 1 else "tanh"
        self.critic = build_discriminator(cfg.net, info.shape, cfg.hidden or None, cfg.depth, batchnorm=False,
                                          spectral_norm=True)
        width = cfg.hidden or DEFAULT_WIDTH[cfg.net]
        self.generator = build_multibias_generator(
            cfg.net, cfg.latent_dim, info.shape, cfg.num_biases, width, cfg.fc_hidden, cfg.depth,
            batchnorm=True, out_act="tanh" if self.input_range == "tanh" else None)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        return {"critic": build_optimizer(c.optimizer, self.critic.parameters(), c.lr, c.betas),
                "generator": build_optimizer(c.optimizer, self.generator.parameters(), c.lr, c.betas)}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        c, x = self.cfg, batch.x
        n = x.shape[0]
        for _ in range(c.n_critic):
            with torch.no_grad():
                fake = self.generator(self.prior_noise(n, c.latent_dim), self._draw_index(n))
            loss = wgan_critic_loss(self.critic(x), self.critic(fake))
            yield Update({"critic": loss}, {"critic/wasserstein": -loss.detach(), "critic/loss": loss.detach()})

        adv = wgan_generator_loss(self.critic(self.generator(self.prior_noise(n, c.latent_dim), self._draw_index(n))))
        reg = self.regulariser()
        lam = reg_weight_at(c.reg_weight, c.reg_schedule, step)
        yield Update({"generator": adv + lam * reg},
                     {"generator/adv": adv.detach(), "generator/r_ba": reg.detach(), "generator/lambda": lam})

    def regulariser(self) -> torch.Tensor:
        """R_BA = Σ_l log tr Cov_i(U_lᵀ a_l^(i)) over the generator's multi-bias layers (a scalar)."""
        return sum_alignment(self.generator.multibias)

    # --- inference API ------------------------------------------------------------------------
    def sample(self, n: int, y: int | torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples G(z, i), z ~ N(0, I), i uniform; ``y`` (an int or ``(n,)``) fixes the
        manifold i."""
        index = self.check_y(y, n)
        z = self.prior_noise(n, self.cfg.latent_dim, generator)
        return self.generator(z, self._draw_index(n, generator) if index is None else index)

    def sample_y_count(self) -> int:
        return self.cfg.num_biases  # A (1: one manifold, sample_y None)

    def manifolds(self) -> Manifolds:
        """The A bias sets as manifolds of z ~ N(0, I); new ones can be derived (QMM eq. 3)."""
        return Manifolds(self.cfg.latent_dim, self.cfg.num_biases,
                         lambda z, index=None, biases=None: self.generator(z, index, biases),
                         layers=list(self.generator.multibias))

    def figures(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
        """The manifold grid (Fig. 3: rows = bias index, columns = the same z) and each multi-bias
        layer's biases and tangential components (Fig. H.4)."""
        return multibias_figures(self, self.manifolds())

    def _draw_index(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        dev = generator.device if generator is not None else self.device
        return torch.randint(self.cfg.num_biases, (n,), generator=generator, device=dev).to(self.device)
