"""DMWGAN (Khayatkhoei, Singh, Elgammal, "Disconnected Manifold Learning for Generative Adversarial
Networks", NeurIPS 2018): a WGAN with A generators, a learned prior over them, and an encoder that
tells which generator made an example, so that each generator can model one connected piece of a
data distribution supported on a disconnected manifold. The QMM paper's strongest baseline.

Players
    critic D: (B, *shape) -> (B, 1), no BatchNorm, kept 1-Lipschitz by the one-sided gradient penalty.
    encoder Q(i|x): an MLP head on D's last hidden features -> (B, A) logits over the generators
        (FC ``encoder_hidden``-BN-LeakyReLU-FC, as the reference code's ``build_encoder``). It is a
        player of its own: its loss never reaches D's trunk (the reference optimises only ``e_net``).
    generators G_1..G_A: each the base generator with its width divided by ``width_divisor`` (the
        QMM paper divides channels/features by 4 to match the parameter count of one generator).
    prior ζ: logits of r(i) = softmax(ζ)_i, the probability of drawing generator i.

A sample: i ~ r, z ~ U[−1, 1]^latent_dim (the reference code's z), x = G_i(z).

One training step (the reference code's ``train_dmgan``: 5 critic updates per generator update)
    1. ``n_critic`` critic updates, each minimising (fresh i and z, G's output detached)
           E[D(G_i(z))] − E[D(x)] + λ·E[max(0, ‖∇_x̂ D(x̂)‖₂ − 1)²],  x̂ = εx + (1 − ε)G_i(z)
       (the WGAN loss with the one-sided penalty, λ = 10).
    2. one simultaneous update of three players on one draw of (i, z) (the reference runs
       ``g_opt``, ``e_opt`` and ``pg_opt`` in one session call):
           generators: −E[D(G_i(z))] + λ_Q·CE(Q(·|G_i(z)), i)   (the InfoGAN-style bound on
                       I(i; G_i(z)), weight λ_Q = 1)
           encoder:    CE(Q(·|G_i(z)), i)
           prior:      (1/A)·E_x[−Σ_i Q(i|x) log r_i] − w_t·H(r) on the real batch
                       (``objectives.learned_prior_loss``), w_t = 1000·0.999^(t+1) at generator
                       update t (the reference's ``rl_counter``, decayed before it is read).
       The prior's cross-entropy pulls r toward the encoder's average posterior on real data, so
       generators that explain real data gain mass and the rest fade (the paper's way to infer how
       many generators the data needs); the annealed entropy bonus holds r near uniform early on.

Defaults from the reference code where the paper is silent: Adam lr 2e-4 with β = (0.5, 0.5) for the
critic and the generators, lr 2e-4 with β = (0.9, 0.999) for the encoder, lr 1e-3 with β = (0.5,
0.5) for the prior; A = 10 (the QMM paper's MNIST setting; 20 for 3D-Chair), latent 100.

Networks and deviations
    - ``net="conv"``: genae's DCGAN family (critic without BatchNorm, generators with BatchNorm and a
      tanh output), ``net="mlp"``: the MLP family. The reference code is toy-data only (2-D MLPs).
    - All A generators run on every z and each example keeps its own generator's output (the
      reference's one-hot selection): every generator's BatchNorm sees the whole batch, and
      ``sample(n, y=i)`` matches training. With widths divided by 4 this costs about A/16 of one
      full-width convolutional generator.
    - All critic updates of a step reuse the step's real batch (the reference draws a fresh batch
      per critic update); i, z and ε are fresh every update.
    - The generator index i for the critic's fakes is drawn from the current r as well.
    Images use ``input_range="tanh"``; vector data ``"raw"`` (linear output).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..nets import DEFAULT_WIDTH, MLP, build_decoder, build_discriminator, resolve_net
from ..objectives import learned_prior_loss, wgan_generator_loss, wgan_gp_critic_loss
from ..optim import build_optimizer
from .base import Batch, Contract, DataInfo, Grid, Manifolds, Method, Plot, Update, check_config


@dataclass
class DMWGANConfig:
    n_generators: int = 10            # A
    net: Literal["auto", "mlp", "conv"] = "auto"  # auto: DCGAN conv networks on 28/32/64 images, MLPs otherwise
    latent_dim: int = 100             # dim z, z ~ U[−1, 1]
    hidden: int = 0                   # critic width and the base generator width; 0 = 512 (mlp) or 64 (conv)
    width_divisor: int = 4            # each generator's width = base width // width_divisor
    depth: int = 2                    # hidden layers of the MLP networks
    gp_weight: float = 10.0           # λ of the one-sided gradient penalty
    n_critic: int = 5
    encoder_weight: float = 1.0       # λ_Q of the generator-index cross-entropy in G's loss
    encoder_hidden: int = 128
    learn_prior: bool = True          # False: r stays uniform (a plain multi-generator WGAN)
    entropy_weight: float = 1000.0    # w_0 of the prior's entropy bonus
    entropy_decay: float = 0.999      # w_t = w_0 · decay^(t+1), t = generator updates so far
    lr: float = 2e-4                  # critic and generators
    betas: tuple[float, float] = (0.5, 0.5)
    encoder_lr: float = 2e-4
    encoder_betas: tuple[float, float] = (0.9, 0.999)
    prior_lr: float = 1e-3
    prior_betas: tuple[float, float] = (0.5, 0.5)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"


class DMWGAN(Method):
    Config = DMWGANConfig
    capabilities = frozenset({"sample", "cluster", "figures", "manifolds"})
    sample_y = "generator"

    @classmethod
    def contract(cls, cfg, info: DataInfo) -> Contract:
        return super().contract(cfg, info).figures_for_images(info)   # its figures are image grids

    def __init__(self, cfg: DMWGANConfig, info: DataInfo):
        super().__init__(cfg, info)
        check_config(cfg, positive=("latent_dim", "depth", "n_critic", "width_divisor", "encoder_hidden",
                                    "lr", "encoder_lr", "prior_lr"),
                     nonnegative=("hidden", "gp_weight", "encoder_weight", "entropy_weight", "entropy_decay"))
        if cfg.n_generators < 1:
            raise ConfigError(f"model.n_generators must be at least 1, got {cfg.n_generators}")
        self.input_range = "raw" if len(info.shape) == 1 else "tanh"
        self.critic = build_discriminator(cfg.net, info.shape, cfg.hidden or None, cfg.depth, batchnorm=False)
        base = cfg.hidden or DEFAULT_WIDTH[resolve_net(cfg.net, info.shape)]  # family checked by the critic's builder
        g_width = base // cfg.width_divisor
        if g_width < 1:
            raise ConfigError(f"model.width_divisor={cfg.width_divisor} leaves the generators no width "
                              f"(base width {base})")
        out_act = "tanh" if self.input_range == "tanh" else None
        self.generators = nn.ModuleList(build_decoder(cfg.net, cfg.latent_dim, info.shape, g_width, out_act, cfg.depth)
                                        for _ in range(cfg.n_generators))
        self.encoder = MLP(self.critic.n_features, cfg.n_generators, (cfg.encoder_hidden,), act="lrelu",
                           batchnorm=True)
        self.prior_logits = nn.Parameter(torch.zeros(cfg.n_generators))  # ζ: r starts uniform

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        opts = {"critic": build_optimizer(c.optimizer, self.critic.parameters(), c.lr, c.betas),
                "generator": build_optimizer(c.optimizer, self.generators.parameters(), c.lr, c.betas),
                "encoder": build_optimizer(c.optimizer, self.encoder.parameters(), c.encoder_lr, c.encoder_betas)}
        if c.learn_prior:
            opts["prior"] = build_optimizer(c.optimizer, [self.prior_logits], c.prior_lr, c.prior_betas)
        return opts

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        c, x = self.cfg, batch.x
        n = x.shape[0]
        # 1. the critic: n_critic WGAN updates with the one-sided penalty
        for _ in range(c.n_critic):
            with torch.no_grad():
                fake = self._generate(self._noise(n), self._draw_index(n))
            loss, logs = wgan_gp_critic_loss(self.critic, x, fake, c.gp_weight, one_sided=True)
            yield Update({"critic": loss}, {f"critic/{k}": v for k, v in logs.items()})

        # 2. generators, encoder and prior together, on one draw of (i, z)
        index = self._draw_index(n)
        score, feat = self.critic(self._generate(self._noise(n), index), return_features=True)
        adv = wgan_generator_loss(score)
        logits = self.encoder(feat)
        ce = F.cross_entropy(logits, index)     # −(lower bound on I(i; G_i(z))) + H(r), batch mean
        losses = {"generator": adv + c.encoder_weight * ce, "encoder": ce}
        logs = {"generator/adv": adv.detach(), "generator/index_ce": ce.detach(),
                "encoder/accuracy": (logits.argmax(1) == index).float().mean().detach()}
        if c.learn_prior:
            with torch.no_grad():              # Q(i|x) on real data is a constant for ζ
                posterior = self.encoder(self.critic(x, return_features=True)[1]).softmax(1)
            w = c.entropy_weight * c.entropy_decay ** (step + 1)
            prior_loss, entropy = learned_prior_loss(posterior, self.prior_logits, w)
            losses["prior"] = prior_loss
            logs.update({"prior/loss": prior_loss.detach(), "prior/entropy": entropy.detach(),
                         "prior/entropy_weight": w, "prior/max": self.prior().max().detach()})
        yield Update(losses, logs)

    # --- inference API ------------------------------------------------------------------------
    def prior(self) -> torch.Tensor:
        """``(A,)`` r = softmax(ζ), the probability of each generator."""
        return self.prior_logits.softmax(0)

    def sample(self, n: int, y: int | torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples G_i(z), i ~ r; ``y`` (an int or ``(n,)``) generator indices in [0, A)
        fixes i (``sample_y = "generator"``)."""
        index = self.check_y(y, n)
        index = self._draw_index(n, generator) if index is None else index
        return self._generate(self._noise(n, generator), index)

    def sample_y_count(self) -> int:
        return self.cfg.n_generators  # A

    def cluster(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, A)`` Q(i|x): the encoder's probability that generator i made ``x``."""
        return self.encoder(self.critic(x, return_features=True)[1]).softmax(1)

    def manifolds(self) -> Manifolds:
        """The A generators, z ~ U[−1, 1] (``genae.inversion.invert_multi`` picks the best one)."""
        return Manifolds(self.cfg.latent_dim, self.cfg.n_generators, lambda z, index=None, biases=None:
                         self._generate(z, index), prior="uniform")

    def figures(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
        """One row per generator (10 columns, the same z down each column), rows in order of
        index, and the learned prior r as bars."""
        a, cols = self.cfg.n_generators, 10
        z = self._noise(cols, torch.Generator().manual_seed(0)).repeat(a, 1)
        index = torch.arange(a, device=self.device).repeat_interleave(cols)
        r = self.prior().detach().cpu().numpy()
        return {"samples (rows: generator; columns: shared z)":
                Grid(self.to_unit(self._generate(z, index)), nrow=cols),
                "learned prior over generators": Plot("threshold_bars", (
                    r, 1.0 / a, f"prior r (dashed: uniform 1/{a})"), dict(xlabel="generator",
                    ylim=(0, max(1.0 / a, float(r.max())) * 1.1)))}

    # --- helpers ------------------------------------------------------------------------------
    def _noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, latent_dim)`` z ~ U[−1, 1] on the method's device."""
        dev = generator.device if generator is not None else self.device
        return (torch.rand(n, self.cfg.latent_dim, generator=generator, device=dev) * 2 - 1).to(self.device)

    def _draw_index(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n,)`` int64 generator indices i ~ r (the current prior, no gradient)."""
        dev = generator.device if generator is not None else self.device
        probs = self.prior().detach().to(dev)
        return torch.multinomial(probs, n, replacement=True, generator=generator).to(self.device)

    def _generate(self, z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``(B, *shape)``: row b is G_{index[b]}(z[b]); every generator runs on all of ``z``."""
        out = torch.stack([g(z) for g in self.generators], dim=1)        # (B, A, *shape)
        return out[torch.arange(len(z), device=z.device), index]
