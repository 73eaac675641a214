"""MaskAAE (Mondal et al., "MaskAAE: Latent space optimization for Adversarial Auto-Encoders",
UAI 2020; arXiv:1912.04564; reference code github.com/arnabkmondal/MaskAAE, ``MaskAAE_MNIST.py``).

Claim: generation is best when the code dimension m equals the data's true latent dimension n; a
learned mask μ = 1 − exp(−θ) ∈ [0, 1]^m (θ ≥ 0 by projection after each mask step, θ ~ U[init_min,
a] at start) switches spurious dimensions off (active: μ_k ≥ 0.1). μ multiplies the codes E(x)
and the prior z ~ N(0, I_m) before the decoder G and the latent critic H.

One step, four updates in the paper's order (RMSprop each; α = 0.9):
    1. autoencoder E+G: ℓ(G(μ⊙E(x)), x) + β·(1/m) Σ_k exp(−γ μ_k²)·Var_batch(E(x)_k)
       (β = 100, γ = 10; ``var_penalty="paper"``: Σ_k exp(−γ μ_k)·Var_k);
    2. critic H, ``n_critic`` times: WGAN-GP, masked prior real, masked codes fake;
    3. encoder as generator: −E[H(μ⊙E(x))];
    4. mask θ: λ1·ℓ + λ2·(1 + ω)² + λ3·Σ_k |μ_k(μ_k − 1)|, ω the critic's Wasserstein estimate,
       λ3 = 2/m doubled every ``lam3_every`` steps (capped at 2048; a pure function of the step).
Learning rates 5e-4 (autoencoder, mask) and 1e-4 (critic, encoder); batch 64.

Deliberate choices (each with its evidence in docs/methods/maskaae.md and docs/results.md):
ℓ is the per-element mean (MSE for vectors, BCE on logits for images), the scale λ1 and β were
tuned for; the reference code's variance-penalty form by default; the reference MNIST MLPs
(4 × 1024 ReLU) for E, G and H, genae's DCGAN encoder/decoder with ``net="conv"``; one batch per
step for all updates; ``learn_mask=False`` is the reference's fixed-mask WAE-GAN baseline;
``init_min`` and ``mask_warmup`` are genae's (default 0, the paper's schedule). eval scores the
final checkpoint, never a best-of-checkpoints. Images use ``input_range="unit"``; vectors "raw".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..collectives import global_mean, global_var
from ..errors import ConfigError
from ..nets import MLP, build_decoder, build_encoder
from ..objectives import wgan_generator_loss, wgan_gp_critic_loss
from ..optim import build_optimizer
from .base import Batch, DataInfo, Method, Plot, Update, check_config

ACTIVE = 0.1          # μ_k ≥ ACTIVE: dimension k is active
LAM3_MAX = 2048.0     # cap of the polarising weight λ3 (reference code)
RMS_ALPHA = 0.9       # RMSprop smoothing (TensorFlow's RMSPropOptimizer decay)


@dataclass
class MaskAAEConfig:
    net: Literal["mlp", "conv"] = "mlp"
    latent_dim: int = 16              # m
    hidden: int = 0                   # MLP units / conv base channels; 0 = 1024 (mlp) or 64 (conv)
    depth: int = 4                    # hidden layers of the MLP encoder and decoder
    critic_hidden: int = 1024         # width of the critic's 4 hidden layers
    recon: Literal["mse", "bce"] = "mse"  # ℓ, per-element mean
    n_critic: int = 5                 # critic updates per step
    gp_weight: float = 10.0           # gradient-penalty weight
    var_weight: float = 100.0         # β, weight of the variance penalty
    gamma: float = 10.0               # γ in the weight exp(−γ μ_k²) (or exp(−γ μ_k))
    var_penalty: Literal["reference", "paper"] = "reference"  # mean_k exp(−γμ_k²)·Var_k | Σ_k exp(−γμ_k)·Var_k
    lam1: float = 1000.0              # λ1 (reconstruction in the mask loss)
    lam2: float = 1.0                 # λ2 ((1 + ω)² in the mask loss)
    lam3_every: int = 0               # λ3 = 2/m doubles every this many steps; 0 = reference rule
    init_max: float = 5.0             # a: θ ~ U[init_min, a]
    init_min: float = 0.0             # θ's lower bound at initialisation (genae; 0 = paper)
    lr: float = 1e-4                  # critic and encoder-as-generator (RMSprop)
    ae_lr: float = 5e-4               # autoencoder
    mask_lr: float = 5e-4             # mask θ
    learn_mask: bool = True           # False: μ ≡ 1, no variance penalty, no mask update (baseline)
    mask_warmup: int = 0              # steps before the mask update and λ3's clock (genae; 0 = paper)


class MaskAAE(Method):
    Config = MaskAAEConfig
    capabilities = frozenset({"encode", "decode", "reconstruct", "sample", "active_dims", "figures"})

    def __init__(self, cfg: MaskAAEConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.input_range = "raw" if len(info.shape) == 1 else "unit"
        _validate(cfg, self.input_range)
        width = cfg.hidden or (1024 if cfg.net == "mlp" else None)
        out_act = "sigmoid" if self.input_range == "unit" and cfg.recon == "mse" else None  # bce: logits
        self.encoder = build_encoder(cfg.net, info.shape, cfg.latent_dim, width, cfg.depth)
        self.decoder = build_decoder(cfg.net, cfg.latent_dim, info.shape, width, out_act, cfg.depth)
        self.critic = MLP(cfg.latent_dim, 1, (cfg.critic_hidden,) * 4, act="relu")
        span = cfg.init_max - cfg.init_min
        self.theta = nn.Parameter(cfg.init_min + torch.rand(cfg.latent_dim) * span,
                                  requires_grad=cfg.learn_mask)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg

        def rms(params, lr):
            return build_optimizer("rmsprop", params, lr, alpha=RMS_ALPHA)
        opts = {
            "autoencoder": rms(chain(self.encoder.parameters(), self.decoder.parameters()), c.ae_lr),
            "critic": rms(self.critic.parameters(), c.lr),
            "encoder": rms(self.encoder.parameters(), c.lr),
        }
        if c.learn_mask:
            opts["mask"] = rms([self.theta], c.mask_lr)
        return opts

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        c, x, m = self.cfg, batch.x, self.cfg.latent_dim
        n = x.shape[0]
        mu = self.mask().detach()  # a constant for players 1-3

        # 1. autoencoder: reconstruction + variance penalty on (partly) masked dimensions
        z = self.encoder(x)
        recon = self._recon(self.decoder(mu * z), x)
        logs = {"autoencoder/recon": recon.detach()}
        loss = recon
        if c.learn_mask:
            var_pen = variance_penalty(z, mu, c.gamma, c.var_penalty)
            loss = recon + c.var_weight * var_pen
            logs["autoencoder/var_penalty"] = var_pen.detach()
        yield Update({"autoencoder": loss}, {**logs, "autoencoder/loss": loss.detach()})

        # 2. latent critic: masked prior = real, masked codes = fake (codes of the updated E)
        fake = mu * self.encoder(x)      # graph kept for step 3: E does not change in step 2
        codes = fake.detach()
        for _ in range(c.n_critic):
            real = mu * self.prior_noise(n, m)
            loss, logs = wgan_gp_critic_loss(self.critic, real, codes, c.gp_weight)
            yield Update({"critic": loss}, {f"critic/{k}": v for k, v in logs.items()})

        # 3. encoder as generator, against the updated critic
        adv = wgan_generator_loss(self.critic(fake))
        yield Update({"encoder": adv}, {"encoder/adv": adv.detach()})
        if not c.learn_mask or step < c.mask_warmup:
            return  # genae option, not the paper: let the autoencoder learn before the mask moves

        # 4. mask: gradients reach θ only (codes of the updated E, without a graph)
        mu = self.mask()
        with torch.no_grad():
            z = self.encoder(x)
        recon_m = self._recon(self.decoder(mu * z), x)
        # Ω and the code variance are statistics of the (global, under DDP) batch: the loss is
        # not a mean over examples, so a data-parallel run must see the whole batch's values
        omega = global_mean(self.critic(mu * self.prior_noise(n, m)).flatten()) - \
            global_mean(self.critic(mu * z).flatten())
        poly = (mu * (mu - 1)).abs().sum()
        lam3 = self.lam3(step)
        loss = c.lam1 * recon_m + c.lam2 * (1 + omega).pow(2) + lam3 * poly
        mu_d = mu.detach()
        yield Update({"mask": loss}, {
            "mask/recon": recon_m.detach(), "mask/omega": omega.detach(), "mask/poly": poly.detach(),
            "mask/lam3": lam3, "mask/loss": loss.detach(), "mask/m_active": (mu_d >= ACTIVE).sum(),
            "mask/mu_min": mu_d.min(), "mask/mu_max": mu_d.max(),
            # one curve per dimension in its own panel of loss_curves.png: μ over training
            **{f"mu/{k:02d}": mu_d[k] for k in range(m)}})
        with torch.no_grad():  # projection onto θ ≥ 0, after the trainer stepped the mask
            self.theta.clamp_(min=0)

    # --- inference API ------------------------------------------------------------------------
    def mask(self) -> torch.Tensor:
        """μ = 1 − exp(−θ), ``(m,)``; ones when ``learn_mask`` is False."""
        if not self.cfg.learn_mask:
            return torch.ones_like(self.theta)
        return -torch.expm1(-self.theta)

    def active_dims(self) -> torch.Tensor:
        """Boolean ``(m,)``: μ_k ≥ 0.1 (used by the ``active-dims`` and ``nac`` metrics)."""
        return self.mask().detach() >= ACTIVE

    def lam3(self, step: int) -> float:
        """λ3 at ``step``: 2/m doubled every ``lam3_every`` steps (reference rule if 0), ≤ 2048."""
        m, every = self.cfg.latent_dim, self.cfg.lam3_every or reference_lam3_every(self.cfg.latent_dim)
        t = max(0, step - self.cfg.mask_warmup)  # the mask game starts after the warm-up
        return min(LAM3_MAX, 2.0 / m * 2.0 ** min(t // every, 64))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Masked codes μ⊙E(x)."""
        return self.mask() * self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) for (already masked) codes ``z``."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.cfg.recon == "bce" else out

    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """G(μ⊙z), z ~ N(0, I_m) (unconditional: a ``y`` is refused)."""
        self.reject_y(y)
        return self.decode(self.mask() * self.prior_noise(n, self.cfg.latent_dim, generator))

    def figures(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
        """The covariance matrix of the masked codes of ``x`` and the current mask μ."""
        z = self.encode(x).detach().double().cpu()
        cov = torch.cov(z.T).numpy() if len(z) > 1 else torch.zeros(z.shape[1], z.shape[1]).numpy()
        mu = self.mask().detach().cpu().numpy()
        fig_cov = Plot("signed_heatmap", (cov, f"covariance of μ⊙E(x) (n={len(z)})"))
        fig_mu = Plot("threshold_bars", (mu, ACTIVE, f"mask μ: {int((mu >= ACTIVE).sum())} of {len(mu)} active (μ ≥ {ACTIVE})"))
        return {"latent covariance": fig_cov, "mask": fig_mu}

    # --- helpers ------------------------------------------------------------------------------
    def _recon(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-element mean reconstruction loss (see the module docstring)."""
        if self.cfg.recon == "bce":
            return F.binary_cross_entropy_with_logits(out, x)
        return (out - x).pow(2).mean()


def variance_penalty(z: torch.Tensor, mu: torch.Tensor, gamma: float,
                     form: Literal["reference", "paper"] = "reference") -> torch.Tensor:
    """The autoencoder's penalty on the code variance of (partly) masked dimensions, a scalar.

    ``z`` ``(B, m)`` unmasked codes E(x), ``mu`` ``(m,)`` the mask (a constant); Var_k is the
    biased batch variance of ``z[:, k]``.
        "paper":     Σ_k exp(−γ μ_k) · Var_k        (docs/methods.md's weight, summed over k)
        "reference": (1/m) Σ_k exp(−γ μ_k²) · Var_k (``MaskAAE_MNIST.py``: mean over batch and k)
    With m = 32 and μ_k = 0.3 the reference weight is ≈ 4× smaller, so partly open dimensions
    keep more code variance (docs/results.md, n = 16: a weaker penalty stops the mask higher).
    """
    var = global_var(z)  # z.var(0, unbiased=False) of the global batch under DDP
    if form == "reference":
        return (torch.exp(-gamma * mu.pow(2)) * var).mean()
    return (torch.exp(-gamma * mu) * var).sum()


def reference_lam3_every(m: int) -> int:
    """The reference code's doubling interval of λ3: 4 · (75 if m ≤ 20 else min(10000, ⌊112.5·m⌋))."""
    return 4 * (75 if m <= 20 else min(10000, math.floor(1125 * m / 10)))


def _validate(cfg: MaskAAEConfig, input_range: str) -> None:
    check_config(cfg, positive=("latent_dim", "depth", "critic_hidden", "n_critic", "lr", "ae_lr",
                                "mask_lr", "init_max"),
                 nonnegative=("hidden", "gp_weight", "var_weight", "gamma", "lam1", "lam2",
                              "lam3_every", "mask_warmup", "init_min"))
    if cfg.init_min >= cfg.init_max:
        raise ConfigError(f"model.init_min={cfg.init_min} must be below model.init_max={cfg.init_max} "
                          "(θ ~ U[init_min, init_max])")
    if cfg.recon == "bce" and input_range != "unit":
        raise ConfigError("model.recon=bce needs images in [0, 1]; vector data uses model.recon=mse")
