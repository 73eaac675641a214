"""InfoGAN (Chen et al., "InfoGAN: Interpretable Representation Learning by Information Maximizing
Generative Adversarial Nets", NeurIPS 2016).

Latent input of the generator: noise z ~ U[−1, 1]^noise_dim (as the official code), one K-way
categorical code c_cat ~ Cat(1/K) as a one-hot vector, and continuous codes c_cont ~ U[−1, 1]^n_cont.

Players
    discriminator: D's trunk, D's real/fake output layer and the Q head on the trunk's features
        (Q(c|x): logits of c_cat; mean, and a fixed or learned std, of c_cont). Q shares D's trunk,
        so in the paper (and the official code, whose D variables include Q) the trunk and Q are one
        player.
    generator: G.

Objective (paper eq. 5: min_{G,Q} max_D V(D, G) − λ·L_I(G, Q)), one step
    L_I = λ_cat·[log K − CE(Q_cat(G(z, c)), c_cat)] + λ_cont·[n_cont·log 2 − NLL_Gauss(c_cont | Q_cont)]
          (eq. 4, the lower bound E[log Q(c|x)] + H(c); ``objectives.information``).
    1. discriminator minimises −E[log D(x)] − E[log(1 − D(G(z, c)))] − L_I    (G's samples detached)
    2. generator minimises −E[log D(G(z, c))] − L_I   (non-saturating, against the updated D and Q)
    Both G and Q minimise −L_I, as in eq. 5; the MI term reaches D's trunk only through the
    discriminator player's own loss.

Deviations / choices where the paper is silent
    λ_cat = 1 and λ_cont = 0.1 (section 7 asks for a smaller λ on continuous codes); the Q std of the
    continuous codes is fixed at 1 by default (the official code's ``fix_std``), ``q_std="learned"``
    learns it per code. The official MNIST launcher uses λ = 1 (``info_reg_coeff``) for the
    categorical and the continuous codes alike; ``configs/infogan_mnist_paper.yaml`` takes it.
    Networks: ``net="infogan-mnist"`` is Table 1 (the official code's "mnist" networks, its
    LeakyReLU slope 0.01, G's output tanh for genae's [−1, 1] images where the official code has
    a Bernoulli mean); the default "conv" is the library's DCGAN pair, Table 1 without the
    1024-unit fully connected layers. Q = FC 128-BN-LeakyReLU(0.2)-FC (Table 1's, slope 0.2 not
    0.01). Adam lr 2e-4 (D) and 1e-3 (G), β = (0.5, 0.999), the official MNIST settings (batch
    128, 50 epochs of 100 updates: 5,000 steps). Images use
    ``input_range="tanh"``; vector data "raw" (linear output). The two updates alternate (D, then G);
    G's step draws new noise and codes (``fresh_codes``), as the official trainer's two optimiser
    runs per iteration each sample the prior (genae reused D's codes before 2026-12-08; runs from
    then resume with ``fresh_codes=False``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..nets import MLP, build_decoder, build_discriminator, build_preset
from ..objectives import (categorical_mi_bound, js_discriminator_loss, ns_generator_loss,
                          uniform_gaussian_mi_bound)
from ..optim import build_optimizer
from .base import Batch, Contract, DataInfo, Grid, Manifolds, Method, Update, check_config


@dataclass
class InfoGANConfig:
    net: Literal["auto", "mlp", "conv", "infogan-mnist"] = "auto"  # auto: DCGAN conv on 28/32/64 images, else MLPs;
    #   infogan-mnist: the paper's Table 1 (nets.PRESETS), with its 1024-unit FC layers
    noise_dim: int = 62               # dim of z (62 in the paper's MNIST model; QMM's setting: 8)
    n_categories: int = 10            # K of the categorical code c_cat
    n_continuous: int = 2             # number of continuous codes c_cont ~ U[−1, 1]
    hidden: int = 0                   # MLP units / conv base channels; 0 = 512 (mlp) or 64 (conv)
    depth: int = 2                    # hidden layers of the MLP networks
    q_hidden: int = 128               # width of Q's hidden layer (Table 1: FC.128)
    lambda_cat: float = 1.0           # λ of the categorical code
    lambda_cont: float = 0.1          # λ of the continuous codes
    q_std: Literal["fixed", "learned"] = "fixed"  # std of Q(c_cont|x): 1, or learned per code
    d_lr: float = 2e-4
    g_lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    fresh_codes: bool = True          # G's step draws new z, c (the official trainer); False: D's codes


class InfoGAN(Method):
    Config = InfoGANConfig
    capabilities = frozenset({"sample", "cluster", "figures", "manifolds"})
    sample_y = "code"

    @classmethod
    def contract(cls, cfg, info: DataInfo) -> Contract:
        return super().contract(cfg, info).figures_for_images(info)   # its figures are image grids

    def __init__(self, cfg: InfoGANConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.input_range = "raw" if len(info.shape) == 1 else "tanh"
        _validate(cfg)
        width = cfg.hidden or None
        out_act = "tanh" if self.input_range == "tanh" else None
        self.code_dim = cfg.noise_dim + cfg.n_categories + cfg.n_continuous
        if cfg.net == "infogan-mnist":
            self.generator = build_preset(cfg.net, "generator", info.shape, self.code_dim, width)
            self.discriminator = build_preset(cfg.net, "discriminator", info.shape, 1, width)
        else:
            self.generator = build_decoder(cfg.net, self.code_dim, info.shape, width, out_act, cfg.depth)
            self.discriminator = build_discriminator(cfg.net, info.shape, width, cfg.depth)
        q_out = cfg.n_categories + cfg.n_continuous * (2 if cfg.q_std == "learned" else 1)
        self.q_head = MLP(self.discriminator.n_features, q_out, (cfg.q_hidden,), act="lrelu", batchnorm=True)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        d_params = [*self.discriminator.parameters(), *self.q_head.parameters()]
        return {"discriminator": build_optimizer(c.optimizer, d_params, c.d_lr, c.betas),
                "generator": build_optimizer(c.optimizer, self.generator.parameters(), c.g_lr, c.betas)}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        x = batch.x
        cat, cont, latent = self._codes(x.shape[0])
        fake = self.generator(latent)

        # 1. discriminator (+ Q): JS GAN loss on real and (detached) generated data, minus L_I
        logit_real = self.discriminator(x)
        logit_fake, feat_fake = self.discriminator(fake.detach(), return_features=True)
        gan = js_discriminator_loss(logit_real, logit_fake)
        mi, mi_logs = self._mi_bound(feat_fake, cat, cont)
        d_loss = gan - mi
        yield Update({"discriminator": d_loss},
                     {"discriminator/gan": gan.detach(), "discriminator/mi": mi.detach(),
                      **{f"discriminator/{k}": v for k, v in mi_logs.items()}})

        # 2. generator: non-saturating GAN loss against the updated D, minus L_I with the updated Q.
        # The official trainer runs D's and G's optimisers in two session runs per iteration, each
        # drawing the prior anew: G's step sees new codes and a new G(z, c)
        if self.cfg.fresh_codes:
            cat, cont, latent = self._codes(x.shape[0])
            fake = self.generator(latent)
        logit_fake, feat_fake = self.discriminator(fake, return_features=True)
        adv = ns_generator_loss(logit_fake)
        mi, _ = self._mi_bound(feat_fake, cat, cont)
        g_loss = adv - mi
        yield Update({"generator": g_loss}, {"generator/adv": adv.detach(), "generator/mi": mi.detach()})

    # --- inference API ------------------------------------------------------------------------
    def sample(self, n: int, y: int | torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples G(z, c); ``y`` (an int or ``(n,)``) in [0, K) fixes the categorical code
        (``sample_y = "code"``), the noise and continuous codes are drawn as in training."""
        _, _, latent = self._codes(n, self.check_y(y, n), generator)
        return self.generator(latent)

    def sample_y_count(self) -> int:
        return self.cfg.n_categories  # K

    def cluster(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` softmax of Q's categorical logits: p(c_cat | x)."""
        _, feat = self.discriminator(x, return_features=True)
        return self.q_head(feat)[:, : self.cfg.n_categories].softmax(1)

    def manifolds(self) -> Manifolds:
        """One manifold per value k of the categorical code, a function of w = [z, c_cont]
        (noise_dim + n_continuous dimensions, uniform on [−1, 1]): G([z, one-hot(k), c_cont])."""
        c = self.cfg

        def render(w: torch.Tensor, index: torch.Tensor | None = None, biases=None) -> torch.Tensor:
            index = torch.zeros(len(w), dtype=torch.long, device=w.device) if index is None else index
            onehot = F.one_hot(index, c.n_categories).to(w.dtype)
            return self.generator(torch.cat([w[:, :c.noise_dim], onehot, w[:, c.noise_dim:]], dim=1))

        return Manifolds(c.noise_dim + c.n_continuous, c.n_categories, render, prior="uniform")

    def figures(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
        """Grids in the style of the paper's Figure 2, one row per value of c_cat: (a) 10 columns,
        each with its own z and c_cont shared down the column; (b) per continuous code c_i, the
        columns sweep c_i over [−1, 1] with z fixed and the other continuous codes at 0."""
        c, cols = self.cfg, 10
        k, nz = c.n_categories, c.noise_dim
        cat = torch.arange(k).repeat_interleave(cols)
        _, _, latent = self._codes(k * cols, cat, torch.Generator().manual_seed(0))
        grid = latent.view(k, cols, -1)
        shared = torch.ones(grid.shape[-1], dtype=torch.bool)
        shared[nz: nz + k] = False                       # everything but the one-hot is shared per column
        grid[:, :, shared] = grid[:1, :, shared]
        out = {"samples (rows: categorical code; columns: shared noise and continuous codes)":
               Grid(self.to_unit(self.generator(grid.reshape(k * cols, -1))), nrow=cols)}
        for i in range(c.n_continuous):
            sweep = grid.clone()
            sweep[:, :, :nz] = grid[:1, :1, :nz]         # one z for the whole grid
            sweep[:, :, nz + k:] = 0.0
            sweep[:, :, nz + k + i] = torch.linspace(-1, 1, cols, device=grid.device)
            out[f"continuous code {i + 1} from −1 to 1 (rows: categorical code)"] = Grid(
                self.to_unit(self.generator(sweep.reshape(k * cols, -1))), nrow=cols)
        return out

    # --- helpers ------------------------------------------------------------------------------
    def _codes(self, n: int, cat: torch.Tensor | None = None, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c_cat ``(n,)``, c_cont ``(n, n_continuous)``, G's input ``(n, code_dim)`` = [z, one-hot, c_cont])."""
        c, dev = self.cfg, self.device
        gen_dev = generator.device if generator is not None else dev
        u = torch.rand(n, c.noise_dim + c.n_continuous, generator=generator, device=gen_dev).to(dev) * 2 - 1
        if cat is None:
            cat = torch.randint(c.n_categories, (n,), generator=generator, device=gen_dev).to(dev)
        cat = cat.to(dev)
        z, cont = u.split([c.noise_dim, c.n_continuous], dim=1)
        return cat, cont, torch.cat([z, F.one_hot(cat, c.n_categories).to(u.dtype), cont], dim=1)

    def _mi_bound(self, features: torch.Tensor, cat: torch.Tensor, cont: torch.Tensor
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """λ-weighted L_I (eq. 4) from Q on D's trunk features, batch mean; logs of both parts."""
        c = self.cfg
        out = self.q_head(features)
        logits, rest = out.split([c.n_categories, out.shape[1] - c.n_categories], dim=1)
        mi_cat = categorical_mi_bound(logits, cat).mean()
        mi_cont = torch.zeros((), device=out.device)
        if c.n_continuous:
            mean, log_std = (rest.chunk(2, dim=1) if c.q_std == "learned" else (rest, None))
            sigma = 1.0 if log_std is None else log_std.exp()
            mi_cont = uniform_gaussian_mi_bound(mean, cont, sigma).mean()
        mi = c.lambda_cat * mi_cat + c.lambda_cont * mi_cont
        return mi, {"mi_cat": mi_cat.detach(), "mi_cont": mi_cont.detach()}


def _validate(cfg: InfoGANConfig) -> None:
    check_config(cfg, positive=("noise_dim", "depth", "q_hidden", "d_lr", "g_lr"),
                 nonnegative=("hidden", "n_continuous", "lambda_cat", "lambda_cont"))
    if cfg.n_categories < 2:
        raise ConfigError(f"model.n_categories must be at least 2, got {cfg.n_categories}")
