"""Variational autoencoder (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014), and
β-VAE (Higgins et al., ICLR 2017) as the same class with ``beta = 4`` (registry entry "beta-vae").

Players
    vae (encoder q(z|x) = N(mu(x), diag σ²(x)) + decoder p(x|z)): one update per step.

Objective (minimised, per example, averaged over the batch)
    −log p(x|z) + β·KL(q(z|x) ‖ N(0, I)), z = mu + σ·ε (one reparameterised sample).
    ``likelihood`` chooses p(x|z):
      "bernoulli"        decoder logits, cross-entropy summed over pixels (the paper's MNIST model);
      "gaussian"         mean = sigmoid(decoder output), fixed std ``sigma``, constant included;
      "gaussian-optimal" one variance shared by the whole batch at its ML value:
                         (N/2)·log(MSE) + const over the batch, divided by B (LSR-GAN stage 1).

Notes / deviations
    Images use ``input_range="unit"`` ([0, 1]); ``decode`` returns sigmoid(logits), i.e. the
    Bernoulli / Gaussian mean. Vector data use ``input_range="raw"``, a linear decoder mean and a
    Gaussian likelihood. The paper trains with Adagrad; we default to Adam (lr 1e-3), the usual
    modern setting (and pythae's), with the optimizer as a config field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import torch

from ..errors import ConfigError
from ..nets import build_decoder, build_encoder
from ..objectives import gaussian_kl, reconstruction_nll, reparameterize
from ..optim import build_optimizer
from .base import Batch, DataInfo, Method, Posterior, Update, check_config


@dataclass
class VAEConfig:
    net: Literal["mlp", "conv"] = "mlp"
    latent_dim: int = 16              # J (dimension of z)
    hidden: int = 0                   # MLP units / conv base channels; 0 = 512 (mlp) or 64 (conv)
    depth: int = 2                    # hidden layers of each MLP (pythae's default VAE has 1)
    likelihood: Literal["bernoulli", "gaussian", "gaussian-optimal"] = "bernoulli"  # p_θ(x|z)
    sigma: float = 1.0                # σ of the fixed-variance Gaussian likelihood
    beta: float = 1.0                 # β (weight of the KL term; 4 for β-VAE)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"


class VAE(Method):
    Config = VAEConfig
    capabilities = frozenset({"encode", "decode", "reconstruct", "sample", "posterior", "posterior_sample"})

    def __init__(self, cfg: VAEConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.input_range = "raw" if len(info.shape) == 1 else "unit"
        _validate(cfg, self.input_range)
        width = cfg.hidden or None
        self.encoder = build_encoder(cfg.net, info.shape, 2 * cfg.latent_dim, width, cfg.depth)  # -> (mu, logvar)
        self.decoder = build_decoder(cfg.net, cfg.latent_dim, info.shape, width, None, cfg.depth)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": build_optimizer(self.cfg.optimizer, self.parameters(), self.cfg.lr, self.cfg.betas)}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        x = batch.x
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        out = self.decoder(reparameterize(mu, logvar))
        if self.cfg.likelihood != "bernoulli":
            out = self._mean(out)
        recon = reconstruction_nll(self.cfg.likelihood, out, x, self.cfg.sigma).mean()
        kl = gaussian_kl(mu, logvar).mean()
        loss = recon + self.cfg.beta * kl
        yield Update({"vae": loss},
                     {"vae/recon": recon.detach(), "vae/kl": kl.detach(), "vae/loss": loss.detach()})

    # --- inference API ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean mu(x), ``(B, latent_dim)``."""
        return self.encoder(x)[:, : self.cfg.latent_dim]

    def posterior(self, x: torch.Tensor) -> Posterior:
        """Gaussian q(z|x): mean and logvar, each ``(B, latent_dim)``."""
        return Posterior.gaussian(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of p(x|z), ``(B, *shape)`` in ``input_range``."""
        return self._mean(self.decoder(z))

    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means at z ~ N(0, I) (unconditional: a ``y`` is refused)."""
        self.reject_y(y)
        return self.decode(self.prior_noise(n, self.cfg.latent_dim, generator))

    # --- helpers ------------------------------------------------------------------------------
    def _mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.input_range == "unit" else out


def _validate(cfg: VAEConfig, input_range: str) -> None:
    check_config(cfg, positive=("latent_dim", "depth", "sigma", "lr"), nonnegative=("hidden", "beta"))
    if cfg.likelihood == "bernoulli" and input_range == "raw":
        raise ConfigError("model.likelihood: 'bernoulli' needs images in [0, 1]; "
                          "use 'gaussian' or 'gaussian-optimal' for vector data")
