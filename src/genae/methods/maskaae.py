"""MaskAAE (Mondal, Pal Chowdhury, Jayendran, Singla, Asnani, Prathosh, "MaskAAE: Latent space
optimization for Adversarial Auto-Encoders", UAI 2020; arXiv:1912.04564; reference code
github.com/arnabkmondal/MaskAAE, ``MaskAAE_MNIST.py``).

Claim: generation is best when the code dimension m equals the data's true latent dimension n;
a learned mask μ ∈ [0, 1]^m switches spurious code dimensions off, so any m ≥ n finds n.

Mask
    μ = 1 − exp(−θ), θ ≥ 0, θ_k ~ U[0, a] at initialisation (a = 5 in the reference code).
    Dimension k is *active* when μ_k ≥ 0.1. μ multiplies the encoder output *and* the prior
    sample before the decoder G and the latent critic H: codes μ⊙E(x), prior μ⊙z, z ~ N(0, I_m).
    θ ≥ 0 is kept by a **projection** (``θ.clamp_(min=0)``) right after each mask step, as the
    reference code's Keras ``NonNeg`` constraint does; a parameterisation (θ = softplus(φ))
    would rescale the gradient dμ/dθ = exp(−θ) and could never reach μ = 0 exactly.

Players (one RMSprop optimizer each; E belongs to two players, in different updates)
    autoencoder  E + G         critic  H (4 hidden ReLU layers)
    encoder      E alone, as the generator of the latent WGAN      mask  θ

Objective, one training step, in this order (the paper's four updates; Sec. 4 of the paper)
    1. autoencoder: ℓ(G(μ⊙E(x)), x) + β · (1/m) Σ_k exp(−γ μ_k²) · Var_batch(E(x)_k)
       (reconstruction + the variance penalty that makes E constant on masked dimensions, in the
       reference code's form; ``var_penalty="paper"``: β · Σ_k exp(−γ μ_k) · Var_batch(E(x)_k);
       β = 100, γ = 10; μ is a constant here).
    2. critic, ``n_critic`` times (5 in the reference code), WGAN-GP with the masked prior as
       real and the masked codes as fake:
       E[H(μ⊙E(x))] − E[H(μ⊙z)] + 10 · E[(‖∇H(ĥ)‖ − 1)²]       (E(x) detached).
    3. encoder as generator: −E[H(μ⊙E(x))].
    4. mask: λ1 · ℓ(G(μ⊙E(x)), x) + λ2 · (1 + ω)² + λ3 · Σ_k |μ_k(μ_k − 1)|, with
       ω = E[H(μ⊙z)] − E[H(μ⊙E(x))], the critic's Wasserstein-1 estimate between the masked
       prior and the masked codes (the critic's game value). The paper text was not available
       offline; this ω is the reference code's ``tf.square(1 − (mean H(codes) − mean H(prior)))``,
       which is (1 + ω)² in the form of ``docs/methods.md``. λ1 = 1000, λ2 = 1, λ3 = 2/m at the
       start, doubled every ``lam3_every`` steps (counted from the first mask update) and capped
       at 2048 (reference: every 4·75 = 300 steps for m ≤ 20, else every 4·min(10000, ⌊112.5·m⌋)
       steps; ``lam3_every = 0`` uses that rule). λ3 is a pure function of the step, so resume
       is exact.
       Gradients reach θ only (E(x) is computed without a graph; G and H are constants).
    Then θ ← max(θ, 0).

Learning rates (reference code): RMSprop, 5·10⁻⁴ for autoencoder and mask, 10⁻⁴ for critic
and encoder; batch 64. The reference code's "lr decay" divides the autoencoder and mask *losses*
by 5 at step 5·interval; RMSprop divides by the root-mean-square gradient, so scaling a loss
leaves the step unchanged (up to ε and a short transient of its moving average): it is not a
decay. Learning-rate decay here acts on the optimizers (``train.lr_schedule``), never on losses.

Choices and deviations
    - ℓ (reconstruction) is the **per-element mean** squared error (``recon="mse"``; synthetic
      vectors, the paper's ‖x − x̂‖²) or binary cross-entropy (``"bce"``; the reference code's
      MNIST loss, decoder outputs logits), averaged over the batch: λ1 = 1000 and β = 100 were
      tuned for that scale, so this method departs from the library's sum-over-dimensions rule.
    - The variance penalty is the reference code's (1/m) Σ_k exp(−γ μ_k²)·Var_k by default;
      ``var_penalty="paper"`` takes the weight of docs/methods.md, exp(−γ μ_k), summed over k
      (genae's default until 2026-12-04). The reduction over k is not stated by the paper text we
      have; the sum makes the penalty m× stronger. Measured on synthetic n = 16, m = 32 over seven
      training seeds (docs/results.md): the reference form gives FID 0.31–0.90 against 2.59–8.48
      and m_A in [n, n + 1] on 5 of 7 seeds against 4 of 7 (6 of 8, seed 7 held out, with λ3
      doubling every 1000 steps); on n = 8, m = 16 both give m_A 8, 9, 8, FID 0.29–0.52 against
      0.63–5.00.
    - Networks: the reference MNIST MLPs, 4 hidden layers of 1024 ReLU units for E, G and H
      (``net="mlp"``, ``depth=4``, ``hidden=0`` → 1024); the synthetic-data widths of the paper's
      supplement were not available, so synthetic configs use the same MLP family (see
      configs/maskaae_synthetic*.yaml). Images with ``net="conv"`` use genae's DCGAN encoder/
      decoder (the supplement's conv nets were not available either); H is always the MLP.
      PyTorch's default initialisation (the reference uses Glorot-normal).
    - All updates of a step use the step's batch (the reference draws a fresh batch for every
      update, with replacement); prior samples are fresh for every update. Step 2 and 3 share
      one encoder pass (E does not change during critic updates).
    - The reference script scores FID at every saved checkpoint (every 5000 steps) and reports
      the **minimum** over them, a selection on the evaluation metric itself; genae's ``eval.json``
      is the final checkpoint's, and ``genae eval RUN --step S`` scores a kept earlier one, so a
      best-of-checkpoints figure can be computed but is never the default.
    - RMSprop smoothing α = 0.9 (TensorFlow's default decay, as in the reference), ε = 1e-8.
    - ``learn_mask=False`` fixes μ = 1 and drops the variance penalty and the mask update: the
      reference code's ``mask_on=0`` baseline (the paper's WAE-GAN with identical networks and
      schedule), so a comparison isolates the mask.
    - ``init_min`` (genae's, not the paper's; default 0) raises θ's lower bound at initialisation,
      θ ~ U[init_min, a]: at CPU scale the dimensions that stay active are almost exactly the ones
      that started with the largest θ (docs/results.md), so U[0, a] makes m_A follow the draw.
      configs/maskaae_synthetic_n16_cpu.yaml uses θ ~ U[2.5, 3] with λ3 doubling every 3000
      steps: m_A = 16 on each of four training seeds (with U[0, 5]: 14–18).
    - ``mask_warmup`` (genae's, not the paper's; default 0) skips the mask update for the first
      steps and starts λ3's doubling clock with the first mask update, so the mask game after the
      warm-up is the paper's schedule shifted in time (docs/results.md, n = 16).
Images use ``input_range="unit"``; vectors ``"raw"`` (linear decoder).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import global_mean, global_var
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
