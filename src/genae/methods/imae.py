"""IMAE (Gao et al., "Information Maximization Auto-Encoding", 2019) and the hybrid-latent baselines
the paper compares it with — β-VAE, InfoVAE, JointVAE — plus β-TCVAE (Chen et al. 2018). One game
(one player, one update per step) whose objective is ``model.objective``, as ``ctrl.py`` picks its
objective: the variants change the loss only, not the players or the schedule.

Latents (section 3): a categorical y with K2 = ``n_categories`` values and a factorial Gaussian z
with K1 = ``latent_dim`` dimensions. The encoder gives the logits of p(y|x) and the mean and
log-variance of p(z|x); training decodes [y, z] with y a Gumbel-softmax draw (Jang et al. 2017) at
temperature τ(t) and z reparameterised; in eval mode y is the argmax one-hot and z the mean.

Player
    vae (encoder + decoder), one update per step, minimising (per-example terms averaged over the
    batch; R = −log q(x|y, z), Bernoulli, summed over pixels):

    "imae"        eq. 10 negated: R − β·I(x; y) − β·L(z) + γ·TC(z), γ = ``tc_weight`` (None: 2β).
                  I: ``empirical_mutual_information`` (eq. 7, batch marginal); L(z) = −Σ_k KL(p(z_k)‖N(0,1))
                  (eq. 6) and TC(z) from the aggregate posterior's minibatch estimate (``estimator``:
                  "mws", the paper's minibatch-weighted sampling, or "mss").
    "jointvae"    Dupont 2018: R + β·|KL_z − C_z(t)| + β·|KL_y − C_y(t)|, KL_y to the uniform
                  categorical, C(t) growing linearly from 0 to ``capacity_*`` over ``capacity_steps``
                  (C_y capped at log K2, as the reference code). β here is the paper's γ. With both
                  capacities 0 it is the β-VAE on hybrid latents: R + β·(KL_z + KL_y) (``beta-vae-hybrid``).
    "infovae"     the IMAE paper's statement of InfoVAE for hybrid latents (its Fig. 1 / section 2):
                  the mutual-information terms dropped, the aggregate divergences weighted by β:
                  R + β·[λ·MMD²(q(z), N(0, I)) + KL(q(y) ‖ U(K2))], q(y) = the batch mean of p(y|x)
                  (exact for a categorical), MMD² unbiased with ``mmd_kernel`` (Gaussian
                  exp(−‖a−b‖²/K1) by default: InfoVAE's kernel without its double division by the
                  dimension; see ``objectives.mmd``) against as many N(0, I) draws as the batch.
                  λ = ``mmd_weight`` (1000, Zhao et al.'s divergence weight on MNIST): the IMAE
                  paper writes the divergence of q(z) as a KL in nats, beside R (~100 nats); MMD² is
                  at most 2 and unitless, so with λ = 1 it carries no weight (MNIST-10k defaults,
                  10,000 steps: MMD² stayed 0.19, prior samples grey, FID 350).
    "beta-tcvae"  Chen et al. 2018, eq. 4 with α = γ = 1: R + I(x; z) + β·TC(z) + Σ_k KL(q(z_k)‖p(z_k)),
                  every term from log q(z_i|x_i), the aggregate estimate and log p(z_i); the three
                  sum exactly to the sampled KL(q(z|x)‖p(z)). A categorical code (K2 > 0) adds its
                  KL to the uniform prior with weight 1.

    Every objective may add w·VAT(p(y|x)) (Miyato et al. 2018; ε = ``vat_eps``, one power
    iteration with ξ = ``vat_xi``, BatchNorm buffers frozen in its passes); the paper adds it to all
    four compared methods, so it is on by default whenever there is a categorical code. The weight
    w (``vat_scale``): "beta" (the default) = ``vat_weight``·β, eq. 11 read with eq. 10: VAT is a
    term of L(y), which eq. 10 multiplies by β, so IMAE at β = 5 weighs VAT by 5. For the baselines
    the paper says only that it "augments all four methods with VAT"; the reading here gives VAT
    the weight of each objective's own regulariser of y: β for JointVAE / β-VAE (β·KL_y) and InfoVAE
    (β·KL(q(y)‖U)), 1 for β-TCVAE (its KL_y has weight 1). "fixed" = ``vat_weight`` alone, whatever
    β (genae's behaviour before; the CPU-scale Fig. 3 and Fig. 5 tables of docs/results.md up to
    2026-12-07 used it; at β = 1 both are the same).

Choices where the paper is silent (see also ``objectives.information``)
    - The aggregate p(z_k) of L(z) uses the same minibatch estimator as TC (MWS by default). MWS's
      constant (it divides by B·N) lowers each KL by log N; it carries no gradient.
    - N, the dataset size of the estimators, is the training split's size (``DataInfo.size``),
      or ``dataset_size`` when set.
    - τ = max(``temperature_min``, ``temperature``·exp(−``anneal_rate``·t)), with t rounded down to a
      multiple of ``anneal_every`` (Jang et al.'s schedule); by default fixed at 0.67 (JointVAE's).
    - Networks: ``imae-table1`` (MNIST / Fashion-MNIST) and ``imae-table2`` (dSprites), see
      presets of ``nets.PRESETS``; "mlp" / "conv" are the library's generic families.
    - Optimiser: appendix G's momentum SGD (lr 1e-3, momentum 0.9; the ×0.98 per-epoch decay is the
      trainer's ``train.lr_schedule=step`` with ``lr_step_size`` = one epoch) for MNIST; the dSprites
      configs use Adam 1e-3. The registry's ``jointvae`` keeps Dupont's Adam 5e-4.
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F

from ..collectives import global_mean, global_rows
from ..errors import ConfigError
from ..nets import IMAE_PRESETS, build_decoder, build_encoder, build_preset
from ..objectives import (categorical_kl_uniform, gaussian_kl, gumbel_softmax, reconstruction_nll,
                          reparameterize, vat_loss)
from ..objectives.information import (MMD_KERNELS, TC_ESTIMATORS, beta_tcvae_terms, gaussian_informativeness,
                                      imae_terms, infovae_terms, jointvae_terms)
from ..optim import OPTIMIZERS, build_optimizer
from .base import Batch, Contract, DataInfo, Grid, Method, Plot, Posterior, Update, check_config

OBJECTIVES = ("imae", "jointvae", "infovae", "beta-tcvae")


@dataclass
class IMAEConfig:
    objective: Literal["imae", "jointvae", "infovae", "beta-tcvae"] = "imae"
    net: Literal["imae-table1", "imae-table2", "mlp", "conv"] = "imae-table1"
    latent_dim: int = 10              # K1: dimensions of the Gaussian z
    n_categories: int = 10            # K2: values of the categorical y (0: no categorical code)
    hidden: int = 0                   # width of the "mlp" / "conv" families (0: their default)
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"   # q(x|y, z); vectors: gaussian
    beta: float = 1.0                 # β (the weight each objective's docstring names)
    tc_weight: float | None = None    # IMAE's γ on TC(z); None = 2β
    estimator: Literal["mws", "mss"] = "mws"   # aggregate-posterior estimator (TC, L(z), β-TCVAE)
    dataset_size: int = 0             # N of the estimators; 0 = the training split's size
    capacity_z: float = 5.0           # JointVAE: final C_z (nats)
    capacity_y: float = 5.0           # JointVAE: final C_y (capped at log K2)
    capacity_steps: int = 25000       # JointVAE: steps over which C grows linearly from 0
    temperature: float = 0.67         # Gumbel-softmax τ at step 0
    temperature_min: float = 0.67     # floor of the annealed τ
    anneal_rate: float = 0.0          # τ(t) = max(τ_min, τ0·exp(−rate·t)); 0 = fixed τ
    anneal_every: int = 1000          # t is rounded down to a multiple of this
    mmd_kernel: Literal["gaussian", "imq"] = "gaussian"   # InfoVAE's divergence of q(z)
    mmd_weight: float = 1000.0        # InfoVAE: λ on MMD² (Zhao et al.'s MNIST value), inside β
    vat_weight: float = 1.0           # weight of VAT on p(y|x) (0: off); needs a categorical code
    vat_scale: Literal["beta", "fixed"] = "beta"   # "beta": × the weight of the y regulariser (eq. 11 in eq. 10)
    vat_eps: float = 1.0              # ε: norm of the adversarial perturbation (input units)
    vat_xi: float = 10.0              # ξ of the power iteration (IMSAT's code)
    vat_power: int = 1                # power iterations
    lr: float = 1e-3
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "sgd"
    momentum: float = 0.9             # SGD / RMSprop momentum
    betas: tuple[float, float] = (0.9, 0.999)


class IMAE(Method):
    Config = IMAEConfig
    capabilities = frozenset({"encode", "decode", "reconstruct", "sample", "posterior", "posterior_sample",
                              "cluster", "figures"})
    sample_y = "code"

    @classmethod
    def contract(cls, cfg, info: DataInfo) -> Contract:
        offer = super().contract(cfg, info).figures_for_images(info)   # its figures are image grids
        if cfg.n_categories == 0:  # no categorical code: nothing to cluster by, nothing for y to fix
            offer = dataclasses.replace(offer.without("cluster"), sample_y=None)
        return offer

    def __init__(self, cfg: IMAEConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.input_range = "raw" if len(info.shape) == 1 else "unit"
        self.dataset_size = _validate(cfg, info, self.input_range)
        k1, k2 = cfg.latent_dim, cfg.n_categories
        head, code = 2 * k1 + k2, k1 + k2
        if cfg.net in IMAE_PRESETS:
            self.encoder = build_preset(cfg.net, "encoder", info.shape, head)
            self.decoder = build_preset(cfg.net, "decoder", info.shape, code)
        else:
            width = cfg.hidden or None
            self.encoder = build_encoder(cfg.net, info.shape, head, width)
            self.decoder = build_decoder(cfg.net, code, info.shape, width)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        return {"vae": build_optimizer(c.optimizer, self.parameters(), c.lr, c.betas, momentum=c.momentum)}

    # --- the game -------------------------------------------------------------------------------
    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        c, x = self.cfg, batch.x
        mu, logvar, logits = self._heads(self.encoder(x))
        z = reparameterize(mu, logvar)
        tau = self.temperature(step)
        y = gumbel_softmax(logits, tau) if logits is not None else None
        recon = reconstruction_nll(c.likelihood, self._out(self.decoder(self._code(y, z))), x).mean()
        terms = _OBJECTIVES[c.objective](self, z, mu, logvar, logits, step)
        loss = recon + sum(terms.values())
        logs = {"vae/recon": recon.detach(), "vae/tau": tau}
        if c.vat_weight > 0:
            vat = vat_loss(lambda v: self._heads(self.encoder(v))[2], x, c.vat_eps, c.vat_xi, c.vat_power,
                           logits=logits, module=self.encoder)
            loss = loss + self.vat_weight() * vat
            logs["vae/vat"] = vat.detach()
        logs.update({f"vae/{k}": v.detach() for k, v in terms.items()})
        logs["vae/loss"] = loss.detach()
        yield Update({"vae": loss}, logs)

    def vat_weight(self) -> float:
        """The weight of VAT in the loss (``vat_scale``, see the module docstring): ``vat_weight``
        times β (IMAE eq. 11 inside eq. 10's β·L(y); the baselines' β on their y regulariser), 1 for
        β-TCVAE, or ``vat_weight`` alone with ``vat_scale="fixed"``."""
        c = self.cfg
        if c.vat_scale == "fixed" or c.objective == "beta-tcvae":
            return c.vat_weight
        return c.vat_weight * c.beta

    def temperature(self, step: int) -> float:
        """τ at training step ``step`` (the module docstring's schedule)."""
        c = self.cfg
        t = (step // c.anneal_every) * c.anneal_every
        return max(c.temperature_min, c.temperature * math.exp(-c.anneal_rate * t))

    def capacities(self, step: int) -> tuple[float, float]:
        """JointVAE's (C_z, C_y) at ``step``: linear from 0, C_y capped at log K2."""
        c = self.cfg
        frac = min(1.0, step / c.capacity_steps) if c.capacity_steps > 0 else 1.0
        cap_y = min(c.capacity_y * frac, math.log(c.n_categories)) if c.n_categories > 1 else 0.0
        return c.capacity_z * frac, cap_y

    # --- objectives: {term name: weighted scalar added to the loss}, objectives.information ----------
    # The batch-level estimates see the global batch under DDP (one process: z, mu, logvar as they
    # are); per-example terms are averaged over this rank's ``rows``.
    def _imae(self, z, mu, logvar, logits, step) -> dict[str, torch.Tensor]:
        c = self.cfg
        (z, mu, logvar), rows = global_rows(z, mu, logvar)
        p = logits.softmax(1) if logits is not None else None
        return imae_terms(z, mu, logvar, p, global_mean(p) if p is not None else None, c.beta,
                          2 * c.beta if c.tc_weight is None else c.tc_weight, self.dataset_size, c.estimator, rows)

    def _jointvae(self, z, mu, logvar, logits, step) -> dict[str, torch.Tensor]:
        kl_y = global_mean(categorical_kl_uniform(logits)) if logits is not None else None
        return jointvae_terms(global_mean(gaussian_kl(mu, logvar)), kl_y, self.cfg.beta, *self.capacities(step))

    def _infovae(self, z, mu, logvar, logits, step) -> dict[str, torch.Tensor]:
        c = self.cfg
        (z_all, prior), _ = global_rows(z, torch.randn_like(z))
        q_y = global_mean(logits.softmax(1)) if logits is not None else None
        return infovae_terms(z_all, prior, q_y, c.beta, c.mmd_weight, c.mmd_kernel,
                             c.latent_dim if c.mmd_kernel == "gaussian" else None)

    def _beta_tcvae(self, z, mu, logvar, logits, step) -> dict[str, torch.Tensor]:
        batch, rows = global_rows(z, mu, logvar)
        return beta_tcvae_terms(z, mu, logvar, batch, logits, self.cfg.beta, self.dataset_size, self.cfg.estimator, rows)

    # --- inference API ------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> Posterior:
        """Hybrid q(y, z|x): mean and logvar ``(B, K1)``, logits ``(B, K2)`` (None when K2 = 0)."""
        mu, logvar, logits = self._heads(self.encoder(x))
        return Posterior(mean=mu, logvar=logvar, logits=logits)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, K2 + K1)`` codes [one-hot argmax y, mean of z] — the decoder's input layout."""
        mu, _, logits = self._heads(self.encoder(x))
        return self._code(self._onehot(logits.argmax(1)) if logits is not None else None, mu)

    def posterior_sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(B, K2 + K1)``: [one-hot y ~ p(y|x), z ~ p(z|x)], draws from ``generator``."""
        mu, logvar, logits = self._heads(self.encoder(x))
        dev = generator.device if generator is not None else mu.device
        eps = torch.randn(mu.shape, generator=generator, device=dev).to(mu.device)
        z = mu + (0.5 * logvar).exp() * eps
        if logits is None:
            return z
        y = torch.multinomial(logits.softmax(1).to(dev), 1, generator=generator).squeeze(1).to(mu.device)
        return self._code(self._onehot(y), z)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """``(B, K2 + K1)`` codes -> the mean of q(x|y, z), ``(B, *shape)`` in ``input_range``."""
        return self._out(self.decoder(code))

    def cluster(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, K2)`` p(y|x)."""
        if not self.cfg.n_categories:
            raise self._unsupported("cluster")
        return self._heads(self.encoder(x))[2].softmax(1)

    def sample(self, n: int, y: int | torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoded means at z ~ N(0, I) and y ~ U(K2), or the categories ``y`` (an int or
        ``(n,)``) given."""
        k, y = self.cfg.n_categories, self.check_y(y, n)
        z = self.prior_noise(n, self.cfg.latent_dim, generator)
        if k == 0:
            return self.decode(z)
        if y is None:
            dev = generator.device if generator is not None else self.device
            y = torch.randint(0, k, (n,), generator=generator, device=dev)
        return self.decode(self._code(self._onehot(y.to(self.device)), z))

    def sample_y_count(self) -> int:
        return self.cfg.n_categories  # K2 (0: no categorical code, sample_y None)

    def figures(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
        """Fig. 2a: per dimension, ½·log(1 + Var[μ_k]/E[σ_k²]) with its two parts; Figs. 2 and 4:
        traversals of each continuous dimension (rows) over [−2, 2] (columns), one grid per category
        (at most 10); the decoded mean of each category (z = 0)."""
        c, cols = self.cfg, 9
        q = self.posterior(x)
        info = gaussian_informativeness(q.mean, q.logvar)  # float64 on the host
        out: dict[str, Any] = {"informativeness per dimension (Fig. 2a)": Plot("informativeness_bars", (info,))}
        steps = torch.linspace(-2, 2, cols, device=self.device)
        z = torch.zeros(c.latent_dim * cols, c.latent_dim, device=self.device)
        z[torch.arange(len(z)), torch.arange(c.latent_dim, device=self.device).repeat_interleave(cols)] = \
            steps.repeat(c.latent_dim)
        for k in range(min(c.n_categories, 10)) if c.n_categories else [None]:
            code = z if k is None else self._code(self._onehot(torch.full((len(z),), k, device=self.device)), z)
            name = "traversals" if k is None else f"traversals, category {k}"
            out[f"{name} (rows: z_k over [−2, 2])"] = Grid(self.to_unit(self.decode(code)), nrow=cols)
        if c.n_categories:
            ks = torch.arange(c.n_categories, device=self.device)
            zero = torch.zeros(c.n_categories, c.latent_dim, device=self.device)
            out["decoded mean of each category (z = 0)"] = Grid(
                self.to_unit(self.decode(self._code(self._onehot(ks), zero))), nrow=c.n_categories)
        return out

    # --- helpers ------------------------------------------------------------------------------
    def _heads(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Encoder output ``(B, 2·K1 + K2)`` laid out [mean, logvar, logits] -> the three parts."""
        k1 = self.cfg.latent_dim
        logits = out[:, 2 * k1:] if self.cfg.n_categories else None
        return out[:, :k1], out[:, k1:2 * k1], logits

    def _code(self, y: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        return z if y is None else torch.cat([y, z], dim=1)

    def _onehot(self, index: torch.Tensor) -> torch.Tensor:
        return F.one_hot(index.long(), self.cfg.n_categories).float()

    def _out(self, out: torch.Tensor) -> torch.Tensor:
        """Bernoulli: keep the logits for the loss (``decode`` applies the sigmoid); Gaussian: the
        mean (sigmoid for images, linear for vectors)."""
        return out if self.cfg.likelihood == "bernoulli" else self._mean(out)

    def _mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.input_range == "unit" else out


_OBJECTIVES = {"imae": IMAE._imae, "jointvae": IMAE._jointvae, "infovae": IMAE._infovae,
               "beta-tcvae": IMAE._beta_tcvae}


def _validate(cfg: IMAEConfig, info: DataInfo, input_range: str) -> int:
    """Checks the config; returns N for the aggregate-posterior estimators."""
    check_config(cfg, positive=("latent_dim", "lr", "temperature", "temperature_min", "anneal_every", "vat_xi"),
                 nonnegative=("n_categories", "hidden", "beta", "capacity_z", "capacity_y", "capacity_steps",
                              "anneal_rate", "vat_weight", "vat_eps", "vat_power", "dataset_size", "momentum", "mmd_weight"))
    if cfg.objective not in OBJECTIVES:
        raise ConfigError(f"model.objective={cfg.objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if cfg.estimator not in TC_ESTIMATORS:
        raise ConfigError(f"model.estimator={cfg.estimator!r}; choose one of {', '.join(TC_ESTIMATORS)}")
    if cfg.mmd_kernel not in MMD_KERNELS:
        raise ConfigError(f"model.mmd_kernel={cfg.mmd_kernel!r}; choose one of {', '.join(MMD_KERNELS)}")
    if cfg.optimizer not in OPTIMIZERS:
        raise ConfigError(f"model.optimizer={cfg.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if cfg.tc_weight is not None and cfg.tc_weight < 0:
        raise ConfigError(f"model.tc_weight must be ≥ 0 or null (2β), got {cfg.tc_weight}")
    if cfg.n_categories == 1:
        raise ConfigError("model.n_categories=1 is a constant code; use 0 (no categorical code) or ≥ 2")
    if cfg.vat_weight > 0 and cfg.n_categories == 0:
        raise ConfigError("model.vat_weight > 0 needs a categorical code (VAT acts on p(y|x)); "
                          "set model.vat_weight=0 or model.n_categories ≥ 2")
    if cfg.net in IMAE_PRESETS and len(info.shape) == 1:
        raise ConfigError(f"model.net={cfg.net!r} is the paper's image MLP; use net=mlp for vector data")
    if cfg.likelihood == "bernoulli" and input_range == "raw":
        raise ConfigError("model.likelihood: 'bernoulli' needs images in [0, 1]; use 'gaussian' for vector data")
    n = cfg.dataset_size or info.size
    if cfg.objective in ("imae", "beta-tcvae") and not n:
        raise ConfigError("model.dataset_size: the aggregate-posterior estimators need the dataset size N, "
                          "and this data does not say it; set model.dataset_size")
    return int(n or 0)
