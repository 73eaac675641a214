"""VAE-GAN (Larsen et al., "Autoencoding beyond pixels using a learned similarity metric", ICML 2016).

Players (three, disjoint, stepped together from one forward pass as the paper's Algorithm 1)
    encoder Enc: q(z|x) = N(mu(x), diag σ²(x)).
    decoder Dec (the GAN's generator): x̃ = Dec(z), z ~ q(z|x); x_p = Dec(z_p), z_p ~ N(0, I).
    discriminator Dis: logits, and Dis_l(x), its l-th (last hidden) layer's features.

Losses (section 2, eqs. 7–9 and Algorithm 1; library sign convention: each player *minimises*)
    L_prior = KL(q(z|x) ‖ N(0, I))                                                  (eq. 2 / 8)
    L_llike = −E_q[log N(Dis_l(x) | Dis_l(x̃), I)]  (Gaussian in Dis's feature space, eq. 8)
    L_GAN   = −[log Dis(x) + log(1 − Dis(x̃)) + log(1 − Dis(x_p))]   (eq. 9's value, written as the
              discriminator's binary cross-entropy: the sign under which Algorithm 1 descends it)
    encoder:       L_prior + L_llike           (Algorithm 1: θ_Enc ← −∇(L_prior + L_llike))
    decoder:       γ·L_llike − L_GAN's x̃ and x_p terms, i.e. γ·L_llike + log(1 − Dis(x̃)) +
                   log(1 − Dis(x_p)): the decoder wants Dis to call x̃ and x_p real
                   (θ_Dec ← −∇(γ L_llike − L_GAN); the real term does not depend on Dec)
    discriminator: L_GAN                       (θ_Dis ← −∇ L_GAN)
    Each loss back-propagates only into its own player's parameters (the trainer's
    ``backward(inputs=...)``): the discriminator never sees L_llike, and the decoder never receives
    the discriminator's gradient (a widely used library applies it to the decoder with the sign
    flipped: its decoder then helps the discriminator).

Choices where the paper is silent / deviations
    ``dec_gan="non-saturating"`` (default) replaces the decoder's log(1 − Dis(·)) terms by
    −log Dis(·) (Goodfellow et al.'s practical form, same fixed point, same
    sign: the decoder wants Dis to call x̃ and x_p real); ``"minimax"`` is eq. 9 literally. L_llike is
    summed over feature dimensions and averaged over the batch (the library's likelihood
    convention), so γ balances it against batch-mean GAN terms. The paper's γ is not stated; we
    default to 1e-2 (configurable). RMSprop lr 3e-4 as the paper. Images use ``input_range="tanh"``
    (tanh decoder); vector data "raw" (linear decoder).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import torch
import torch.nn.functional as F

from ..nets import build_decoder, build_discriminator, build_encoder
from ..objectives import gaussian_kl, gaussian_nll, js_discriminator_loss, ns_generator_loss, reparameterize
from ..optim import build_optimizer
from .base import Batch, DataInfo, Method, Posterior, Update, check_config


@dataclass
class VAEGANConfig:
    net: Literal["auto", "mlp", "conv"] = "auto"  # auto: DCGAN conv networks on 28/32/64 images, MLPs otherwise
    latent_dim: int = 128             # dimension of z (128 in the paper's CelebA model)
    hidden: int = 0                   # MLP units / conv base channels; 0 = 512 (mlp) or 64 (conv)
    depth: int = 2                    # hidden layers of the MLP networks
    gamma: float = 1e-2               # γ, the decoder's weight of L_llike against L_GAN
    dec_gan: Literal["non-saturating", "minimax"] = "non-saturating"  # the decoder's −L_GAN terms
    lr: float = 3e-4
    betas: tuple[float, float] = (0.5, 0.999)   # Adam/AdamW only
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "rmsprop"


class VAEGAN(Method):
    Config = VAEGANConfig
    capabilities = frozenset({"encode", "decode", "reconstruct", "sample", "posterior", "posterior_sample"})

    def __init__(self, cfg: VAEGANConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.input_range = "raw" if len(info.shape) == 1 else "tanh"
        check_config(cfg, positive=("latent_dim", "depth", "lr"), nonnegative=("hidden", "gamma"))
        width = cfg.hidden or None
        out_act = "tanh" if self.input_range == "tanh" else None
        self.encoder = build_encoder(cfg.net, info.shape, 2 * cfg.latent_dim, width, cfg.depth)  # -> (mu, logvar)
        self.decoder = build_decoder(cfg.net, cfg.latent_dim, info.shape, width, out_act, cfg.depth)
        self.discriminator = build_discriminator(cfg.net, info.shape, width, cfg.depth)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        return {name: build_optimizer(c.optimizer, getattr(self, name).parameters(), c.lr, c.betas)
                for name in ("encoder", "decoder", "discriminator")}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        x = batch.x
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        x_tilde = self.decoder(reparameterize(mu, logvar))
        x_p = self.decoder(self.prior_noise(x.shape[0], self.cfg.latent_dim))

        logit_real, feat_real = self.discriminator(x, return_features=True)
        logit_tilde, feat_tilde = self.discriminator(x_tilde, return_features=True)
        logit_p = self.discriminator(x_p)

        prior = gaussian_kl(mu, logvar).mean()                              # L_prior
        llike = gaussian_nll(feat_tilde, feat_real).mean()                  # L_llike (Dis_l features)
        # L_GAN, the discriminator's loss: real → 1, reconstructions and prior samples → 0
        d_loss = js_discriminator_loss(logit_real, logit_tilde) + F.softplus(logit_p).mean()
        fakes = torch.cat([logit_tilde, logit_p])
        if self.cfg.dec_gan == "minimax":   # −L_GAN's decoder terms: log(1 − Dis(·)) = −softplus(logit)
            dec_gan = -2 * F.softplus(fakes).mean()
        else:                               # non-saturating: −log Dis(·)
            dec_gan = 2 * ns_generator_loss(fakes)
        enc_loss = prior + llike
        dec_loss = self.cfg.gamma * llike + dec_gan
        yield Update({"encoder": enc_loss, "decoder": dec_loss, "discriminator": d_loss},
                     {"encoder/prior": prior.detach(), "encoder/llike": llike.detach(),
                      "decoder/gan": dec_gan.detach(), "decoder/d_logit": fakes.detach().mean(),
                      "discriminator/loss": d_loss.detach()})

    # --- inference API ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean mu(x), ``(B, latent_dim)``."""
        return self.encoder(x)[:, : self.cfg.latent_dim]

    def posterior(self, x: torch.Tensor) -> Posterior:
        """Gaussian q(z|x): mean and logvar, each ``(B, latent_dim)``."""
        return Posterior.gaussian(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Dec(z), ``(B, *shape)`` in ``input_range``."""
        return self.decoder(z)

    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Dec(z_p), z_p ~ N(0, I) (unconditional: a ``y`` is refused)."""
        self.reject_y(y)
        return self.decoder(self.prior_noise(n, self.cfg.latent_dim, generator))
