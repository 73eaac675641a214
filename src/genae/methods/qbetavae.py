"""Q-β-VAE: quotient manifold modeling with a multi-decoder β-VAE ("Deep Quotient Manifold
Modeling", §4 and appendix C).

One encoder q(z|x) = N(μ(x), diag σ²(x)) and A decoders that share every weight and differ only in
the biases of their fully connected layers (``nets.multibias``, without BatchNorm), decoder i
giving p_i(x|z) = Bernoulli(sigmoid(G(z; {a_l^(i)}))). An image is explained by the decoder that
fits it best, softly: trained by EM (appendix C), with the bias-aligning regulariser
R_BA = Σ_l log tr Cov_i(U_lᵀ a_l^(i)) (``objectives.bias_alignment``).

One player ("vae": encoder and decoder). Per minibatch, ``em_repeats`` (10) times:
    z ~ q(z|x) (reparameterised, fresh each repeat), log p_i(x|z) for every decoder i;
    E-step: γ_i = p_i(x|z) / Σ_j p_j(x|z)   (a uniform prior over decoders; held fixed)
    M-step: one Adam step on   E_x[−Σ_i γ_i log p_i(x|z) + β·KL(q(z|x) ‖ N(0, I))] + λ·R_BA
(``objectives.em_responsibilities``). Our reading of "repeating E and M ten times, we finish the
gradient step for a single mini-batch": ten alternations per minibatch, each E-step on the current
parameters and each M-step one optimiser step, so a minibatch costs ten updates (``train.steps``
counts minibatches).

Defaults: A = 10 (MNIST), β = 4, λ = 0.05, Adam lr 2e-4 (the paper's; default betas), latent 8.
Networks (the paper's Table B.1 layer lists are not in our notes): the encoder is genae's DCGAN
encoder without BatchNorm ("no BN"), the decoder the Table B.1-pattern multi-bias generator of
``nets.multibias`` without BatchNorm and with a linear (logit) output. Registry: ``q-beta-vae``,
the ablation ``q-beta-vae-noreg`` (λ = 0), and ``beta-vae-qmm``: the same networks with one bias set
(A = 1: a plain β-VAE, the paper's β-VAE baseline "without multi-bias layers").
Vector data: a Gaussian likelihood with σ = 1 (``likelihood="gaussian"``) instead of Bernoulli.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import torch

from ..errors import ConfigError
from ..nets import DEFAULT_WIDTH, DCGANEncoder, build_encoder
from ..nets.multibias import build_multibias_generator
from ..objectives import em_responsibilities, gaussian_kl, reconstruction_nll, reparameterize
from ..optim import build_optimizer
from .base import Batch, Contract, DataInfo, Manifolds, Method, Posterior, Update, check_config
from .qmm_shared import check_multibias, multibias_figures, reg_weight_at, sum_alignment


@dataclass
class QBetaVAEConfig:
    num_biases: int = 10              # A: decoders (bias sets)
    net: Literal["mlp", "conv"] = "conv"
    latent_dim: int = 8
    hidden: int = 0                   # conv base channels / MLP units; 0 = 64 (conv) or 512 (mlp)
    fc_hidden: int = 1024             # units of the conv decoder's first (multi-bias) FC layer
    depth: int = 2                    # hidden layers of the MLP networks
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    beta: float = 4.0                 # β
    reg_weight: float = 0.05          # λ of R_BA
    reg_schedule: tuple[tuple[int, float], ...] = ()  # ((step, λ), ...): λ from that step on
    em_repeats: int = 10              # E/M alternations (optimiser steps) per minibatch
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"


class QBetaVAE(Method):
    Config = QBetaVAEConfig
    capabilities = frozenset({"encode", "reconstruct", "sample", "posterior", "posterior_sample", "cluster",
                              "figures", "manifolds"})
    sample_y = "manifold"

    @classmethod
    def contract(cls, cfg, info: DataInfo) -> Contract:
        offer = super().contract(cfg, info).figures_for_images(info)   # its figures are image grids
        # one decoder: nothing for y to choose
        return dataclasses.replace(offer, sample_y=None) if cfg.num_biases == 1 else offer

    def __init__(self, cfg: QBetaVAEConfig, info: DataInfo):
        super().__init__(cfg, info)
        check_config(cfg, positive=("latent_dim", "depth", "fc_hidden", "em_repeats", "lr"),
                     nonnegative=("hidden", "beta", "reg_weight"))
        check_multibias(cfg.num_biases, cfg.reg_weight, cfg.reg_schedule)
        self.input_range = "raw" if len(info.shape) == 1 else "unit"
        if self.input_range == "raw":
            if cfg.likelihood == "bernoulli":
                raise ConfigError("model.likelihood: 'bernoulli' needs images in [0, 1]; use 'gaussian' for vector data")
        width = cfg.hidden or DEFAULT_WIDTH.get(cfg.net, 0)
        if cfg.net == "conv":
            build_encoder("conv", info.shape, 1, width)        # checks the image size with a clear error
            self.encoder = DCGANEncoder(info.shape, 2 * cfg.latent_dim, base=width, batchnorm=False)
        else:
            self.encoder = build_encoder(cfg.net, info.shape, 2 * cfg.latent_dim, width, cfg.depth)
        self.decoder = build_multibias_generator(cfg.net, cfg.latent_dim, info.shape, cfg.num_biases, width,
                                                 cfg.fc_hidden, cfg.depth, batchnorm=False, out_act=None)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": build_optimizer(self.cfg.optimizer, self.parameters(), self.cfg.lr, self.cfg.betas)}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        c, x = self.cfg, batch.x
        lam = reg_weight_at(c.reg_weight, c.reg_schedule, step)
        for _ in range(c.em_repeats):
            mu, logvar = self.encoder(x).chunk(2, dim=1)
            z = reparameterize(mu, logvar)
            gamma, nll = em_responsibilities(self._log_lik(z, x))     # E-step; M-step's recon term
            recon, kl = nll.mean(), gaussian_kl(mu, logvar).mean()
            reg = sum_alignment(self.decoder.multibias)
            loss = recon + c.beta * kl + lam * reg
            yield Update({"vae": loss}, {"vae/recon": recon.detach(), "vae/kl": kl.detach(), "vae/r_ba": reg.detach(),
                                         "vae/gamma_max": gamma.max(1).values.mean(), "vae/loss": loss.detach()})

    # --- inference API ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean μ(x), ``(B, latent_dim)``."""
        return self.encoder(x)[:, : self.cfg.latent_dim]

    def posterior(self, x: torch.Tensor) -> Posterior:
        return Posterior.gaussian(self.encoder(x))

    def cluster(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, A)`` responsibilities γ_i of the decoders at z = μ(x)."""
        return self._log_lik(self.encode(x), x).softmax(1)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the most responsible decoder at z = μ(x)."""
        z = self.encode(x)
        index = self._log_lik(z, x).argmax(1)
        return self._mean(self.decoder(z, index))

    def sample(self, n: int, y: int | torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means at z ~ N(0, I), decoder i uniform; ``y`` (an int or ``(n,)``) fixes i."""
        a = self.cfg.num_biases
        index = self.check_y(y, n)
        z = self.prior_noise(n, self.cfg.latent_dim, generator)
        if index is None:
            dev = generator.device if generator is not None else self.device
            index = torch.randint(a, (n,), generator=generator, device=dev).to(self.device)
        return self._mean(self.decoder(z, index))

    def sample_y_count(self) -> int:
        return self.cfg.num_biases  # A (1: one decoder, sample_y None)

    def manifolds(self) -> Manifolds:
        """The A decoders' means as manifolds of z ~ N(0, I); new ones can be derived (eq. 3)."""
        return Manifolds(self.cfg.latent_dim, self.cfg.num_biases,
                         lambda z, index=None, biases=None: self._mean(self.decoder(z, index, biases)),
                         layers=list(self.decoder.multibias))

    def figures(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
        """The manifold grid (rows: decoder; columns: the same z) and the biases per layer."""
        return multibias_figures(self, self.manifolds())

    # --- helpers ------------------------------------------------------------------------------
    def _log_lik(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(B, A)`` log p_i(x|z) for every decoder i (one batched pass over the A bias sets)."""
        b, a = z.shape[0], self.cfg.num_biases
        index = torch.arange(a, device=z.device).repeat_interleave(b)           # decoder-major
        out = self.decoder(z.repeat(a, 1), index)
        nll = reconstruction_nll(self.cfg.likelihood, out, x.repeat(a, *([1] * (x.dim() - 1))))
        return -nll.view(a, b).T

    def _mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.cfg.likelihood == "bernoulli" else out
