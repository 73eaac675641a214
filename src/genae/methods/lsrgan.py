"""LSR-GAN, the latent space renderer ("Imagining the Latent Space of a Variational Auto-Encoder";
notes in docs/methods.md): a VAE is trained, its encoder frozen, and a GAN generator initialised from the VAE's decoder is fine-tuned so that what it
draws for z is what the encoder maps back to z.

Two stages (``Method.stages``; the trainer enters each at its boundary, also on resume):

1. ``vae`` (``vae_steps`` steps; player "vae" = encoder + decoder): the VAE with the Gaussian
   likelihood whose one shared variance is set to its maximum-likelihood value, i.e. the batch's
   (N/2)·(log MSE + 1 + log 2π) over its N scalars (paper appendix A; the reference code calls it
   "BCE"), plus β·KL(q(z|x) ‖ N(0, I)) summed over the batch and the latent dimensions; both sums
   are divided by the batch size B, so that β weighs the two as the paper does.
2. ``gan`` (the rest of ``train.steps``; players "discriminator" and "generator"; encoder and decoder
   frozen, in eval mode with their BatchNorm statistics fixed): on entering it the generator is
   initialised with the decoder's weights (once: a resume inside stage 2 keeps the fine-tuned
   generator; the decoder itself stays in the checkpoint as the VAE's renderer). Per step, z ~ N(0, I):
       discriminator: −E[log D(x)] − E[log(1 − D(G(z)))]          (patch logits, all averaged)
       generator:     −E[log D(G(z))] + λ·E_z[−log q(z | G(z))]     (non-saturating; the latent term
                      through the frozen encoder, ``objectives.lsr_latent_nll``)
   ``latent_reduction``: "mean" (default: the authors' code, which averages −log q over the latent
   dimensions) or "sum" (eq. 4 read literally: the log-density of the diagonal Gaussian, summed
   over them). λ under "mean" weighs what λ / latent_dim weighs under "sum".

   Why "mean" is the default (a deliberate reading, docs/results.md "Every method's defaults"): the
   paper states λ = 1 (Figs. 8–9, Table 2's middle column) but not the reduction; its figures come
   from the authors' code, where λ = 1 multiplies the average. Read as a sum, λ = 1 with Table 3's
   networks on MNIST collapses every sample to one image within 500 GAN steps (the discriminator's
   loss < 0.002, FID 437.9), while the average trains the renderer from the same VAE.

Defaults: Adam lr 2e-4, β = (0.5, 0.999) for every player, batch 32 (the recipe's ``train``
default), latent 128, β = 1, λ = 1, stage 1 for 5,000 of the default 10,000 steps (so that the
defaults run both stages; the paper's CIFAR-10 recipe gives stage 1 one sixth of the steps:
configs/lsr-gan_cifar10.yaml). Networks: ``net="resnet"`` is Table 3 (``nets.lsr``: ResNet
encoder and decoder for 28×28 or 32×32 images and the 3 × 2 × 2 patch discriminator); "conv" is
genae's DCGAN encoder/decoder with the patch discriminator, "mlp" the MLP family with an MLP
discriminator (vector data). Images use ``input_range="tanh"`` (tanh decoder).

Deliberate differences from the paper (its text and appendix D): the reduction of the latent term
(above); Adam's β2 = 0.999 and batch 32 (the paper gives lr and β1 only; both are the reference
code's); the stage lengths (the paper trains by epochs on CIFAR-10; configs/lsr-gan_cifar10.yaml
has the reference code's 100 + 500 epochs); on 28×28 data the networks pad to Table 3's 32×32
(``nets.lsr``).

Inference: ``renderer`` chooses what decodes a code: "lsr" (the generator; the default once stage 2
has started) or "vae" (the stage-1 decoder). ``encode`` gives μ(x); ``genae.imagine.imagine(method, x, draws)``
renders ``draws`` samples of q(z|x) per input (the paper's imaginations, Figs. 1–3). With ``vae_steps = 0``
the recipe starts at stage 2: initialise the encoder and decoder from a VAE run of the same networks
with ``train.init_from=RUN:encoder,decoder``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Literal

import torch

from ..errors import ConfigError
from ..nets import build_decoder, build_discriminator, build_encoder, build_preset
from ..objectives import (gaussian_kl, gaussian_nll_optimal_variance, js_discriminator_loss,
                          lsr_latent_nll, ns_generator_loss, reparameterize)
from ..optim import build_optimizer
from .base import Batch, Contract, DataInfo, Grid, Method, Posterior, Stage, Update, check_config
from .imagination import imagination_rows


@dataclass
class LSRGANConfig:
    net: Literal["resnet", "conv", "mlp"] = "resnet"
    latent_dim: int = 128
    hidden: int = 0                   # conv base channels / MLP units (net conv or mlp); 0 = family default
    depth: int = 2                    # hidden layers of the MLP networks
    d_base: int = 32                  # channels of the patch discriminator's first convolution (reference code)
    beta: float = 1.0                 # β of stage 1's KL term
    lam: float = 1.0                  # λ of the latent term in stage 2
    latent_reduction: Literal["sum", "mean"] = "mean"  # −log q(z|G(z)) over latent dims: reference code / eq. 4 summed
    vae_steps: int = 5000             # length of stage 1 (half the default train.steps, so both stages run);
                                      # 0 = start at stage 2 (train.init_from a VAE run)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"


class LSRGAN(Method):
    Config = LSRGANConfig
    capabilities = frozenset({"encode", "decode", "reconstruct", "sample", "posterior", "posterior_sample",
                              "figures"})
    renderers = ("vae", "lsr")        # render_with picks one (metrics NAME@RENDERER, --renderer)

    @classmethod
    def contract(cls, cfg, info: DataInfo) -> Contract:
        return super().contract(cfg, info).figures_for_images(info)   # its figures are image grids

    def __init__(self, cfg: LSRGANConfig, info: DataInfo):
        super().__init__(cfg, info)
        check_config(cfg, positive=("latent_dim", "depth", "d_base", "lr"),
                     nonnegative=("hidden", "beta", "lam", "vae_steps"))
        image = len(info.shape) == 3
        self.input_range = "tanh" if image else "raw"
        if not image:
            if cfg.net != "mlp":
                raise ConfigError(f"model.net={cfg.net!r} needs images; use model.net=mlp for vector data")
        if cfg.net == "resnet":
            try:
                self.encoder = build_preset("lsr-table3", "encoder", info.shape, 2 * cfg.latent_dim)
                self.decoder = build_preset("lsr-table3", "decoder", info.shape, cfg.latent_dim)
                self.generator = build_preset("lsr-table3", "generator", info.shape, cfg.latent_dim)
            except ValueError as e:
                raise ConfigError(f"model.net=resnet: {e}; use model.net=conv or resize with data.image_size=32") from None
        else:
            width, out_act = cfg.hidden or None, ("tanh" if image else None)
            self.encoder = build_encoder(cfg.net, info.shape, 2 * cfg.latent_dim, width, cfg.depth)
            self.decoder = build_decoder(cfg.net, cfg.latent_dim, info.shape, width, out_act, cfg.depth)
            self.generator = build_decoder(cfg.net, cfg.latent_dim, info.shape, width, out_act, cfg.depth)
        if cfg.net == "mlp":
            self.discriminator = build_discriminator("mlp", info.shape, cfg.hidden or None, cfg.depth)
        else:
            try:
                self.discriminator = build_preset("lsr-table3", "patch-discriminator", info.shape, width=cfg.d_base)
            except ValueError as e:
                raise ConfigError(f"model.net={cfg.net}: {e}") from None
        # 1 once the generator has been initialised from the decoder (stage 2 entered); saved with
        # the weights, so a resume inside stage 2 does not copy the decoder again
        self.register_buffer("generator_ready", torch.zeros((), dtype=torch.uint8))

    # --- the recipe ---------------------------------------------------------------------------
    def stages(self) -> tuple[Stage, ...]:
        gan = Stage("gan", ("generator", "discriminator"), None, frozen=("encoder", "decoder"))
        return ((Stage("vae", ("vae",), self.cfg.vae_steps), gan) if self.cfg.vae_steps else (gan,))

    def enter_stage(self, stage: Stage | None) -> None:
        super().enter_stage(stage)
        if stage is not None and stage.name == "gan" and not int(self.generator_ready):
            with torch.no_grad():
                self.generator.load_state_dict(self.decoder.state_dict())
                self.generator_ready.fill_(1)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        vae = [*self.encoder.parameters(), *self.decoder.parameters()]
        return {"vae": build_optimizer(c.optimizer, vae, c.lr, c.betas),
                "generator": build_optimizer(c.optimizer, self.generator.parameters(), c.lr, c.betas),
                "discriminator": build_optimizer(c.optimizer, self.discriminator.parameters(), c.lr, c.betas)}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        if self.stage == "gan":
            yield from self._gan_step(batch.x)
        else:                      # stage 1 (also a bare call outside the trainer)
            yield from self._vae_step(batch.x)

    def _vae_step(self, x: torch.Tensor) -> Iterator[Update]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        out = self.decoder(reparameterize(mu, logvar))
        # both terms per example: the batch's (N/2)(log MSE + 1 + log 2π) divided by B, and the KL
        # summed over the latent dimensions, averaged over the batch (the paper's sums, scaled by 1/B)
        recon = gaussian_nll_optimal_variance(out, x)
        kl = gaussian_kl(mu, logvar).mean()
        loss = recon + self.cfg.beta * kl
        yield Update({"vae": loss}, {"vae/recon": recon.detach(), "vae/kl": kl.detach(), "vae/loss": loss.detach(),
                                     "vae/mse": (out - x).pow(2).mean().detach()})

    def _gan_step(self, x: torch.Tensor) -> Iterator[Update]:
        c = self.cfg
        z = self.prior_noise(x.shape[0], c.latent_dim)
        fake = self.generator(z)
        d_loss = js_discriminator_loss(self.discriminator(x), self.discriminator(fake.detach()))
        yield Update({"discriminator": d_loss}, {"discriminator/loss": d_loss.detach()})

        adv = ns_generator_loss(self.discriminator(fake))
        mu, logvar = self.encoder(fake).chunk(2, dim=1)        # the frozen encoder: gradient reaches G only
        latent = lsr_latent_nll(z, mu, logvar, c.latent_reduction).mean()
        loss = adv + c.lam * latent
        yield Update({"generator": loss}, {"generator/adv": adv.detach(), "generator/latent_nll": latent.detach(),
                                           "generator/loss": loss.detach()})

    # --- inference API ------------------------------------------------------------------------
    def render(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent)`` -> images by the chosen ``renderer`` (see the module docstring)."""
        which = self.renderer
        if which == "auto":
            which = "lsr" if int(self.generator_ready) else "vae"
        if which not in self.renderers:
            raise ValueError(f"renderer must be 'auto', 'lsr' or 'vae', got {self.renderer!r}")
        return (self.generator if which == "lsr" else self.decoder)(z)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """μ(x), ``(B, latent_dim)``."""
        return self.encoder(x)[:, : self.cfg.latent_dim]

    def posterior(self, x: torch.Tensor) -> Posterior:
        return Posterior.gaussian(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.render(z)

    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Renderings of z ~ N(0, I) (prior-seeded images); unconditional."""
        self.reject_y(y)
        return self.render(self.prior_noise(n, self.cfg.latent_dim, generator))

    def figures(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
        """Imaginations (the paper's Figs. 1–3; ``genae.imagine``): per input (a row), the input,
        the VAE decoder's reconstruction of μ(x), then 6 renderings of z ~ q(z|x)."""
        return {"imaginations (per row: input, VAE reconstruction, 6 renderings of z ~ q(z|x))":
                Grid(imagination_rows(self, x[:8], 6), nrow=8)}
