"""Information-theoretic terms: lower bounds on the mutual information of a generated code (InfoGAN,
DMWGAN), and the minibatch estimators of IMAE and its baselines (mutual information of a
categorical code, total correlation, aggregate-posterior KL, VAT, MMD).

InfoGAN (Chen et al. 2016, eq. 4): for codes c ~ p(c) and x = G(z, c),

    I(c; G(z, c)) ≥ L_I = E_{c, x}[log Q(c | x)] + H(c),

tight when Q(c|x) is the true posterior. Each function returns L_I's estimate **per example**,
shape ``(B,)`` (summed over code dimensions, like every likelihood term in the library); the caller
averages over the batch and *maximises* it (minimises ``−L_I``).

The minibatch estimators below couple the whole batch (an aggregate over examples is estimated from
the batch itself), so they are returned as **scalars** already averaged over the batch, or per
example where the docstring says so. All quantities are in nats.
"""
from __future__ import annotations

import math

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .elbo import categorical_kl_uniform, gaussian_nll

__all__ = ["categorical_mi_bound", "gaussian_informativeness", "learned_prior_loss", "uniform_gaussian_mi_bound",
           "empirical_mutual_information", "aggregate_log_densities", "total_correlation",
           "dimension_kl_surrogate", "frozen_batchnorm_stats", "vat_loss", "mmd",
           "imae_terms", "jointvae_terms", "infovae_terms", "beta_tcvae_terms",
           "TC_ESTIMATORS", "MMD_KERNELS"]

TC_ESTIMATORS = ("mws", "mss")
MMD_KERNELS = ("imq", "gaussian")
_LOG_2PI = math.log(2 * math.pi)


def categorical_mi_bound(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """L_I of a uniform K-way categorical code: H(c) − cross-entropy = log K + log Q(c|x).

    logits: ``(B, K)`` Q's unnormalised log-probabilities; codes: ``(B,)`` int64, the c each x was
    generated from. Returns ``(B,)``; at most log K (Q certain and right), 0 when Q is uniform.
    """
    k = logits.shape[1]
    return math.log(k) - F.cross_entropy(logits, codes, reduction="none")


def uniform_gaussian_mi_bound(mean: torch.Tensor, codes: torch.Tensor, sigma: float | torch.Tensor = 1.0,
                              low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    """L_I of continuous codes c ~ U[low, high]^d with a factored Gaussian Q(c|x) = N(mean, σ²):
    H(c) + log Q(c|x) = d·log(high − low) − Gaussian NLL.

    mean, codes: ``(B, d)``; sigma: fixed float or a ``(B, d)`` tensor (a learned std). Returns ``(B,)``.
    """
    d = codes.shape[1]
    return d * math.log(high - low) - gaussian_nll(mean, codes, sigma)


def learned_prior_loss(posterior: torch.Tensor, prior_logits: torch.Tensor, entropy_weight: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """DMWGAN's loss of a learned prior r = softmax(ζ) over A generators (Khayatkhoei et al. 2018,
    section 4; reference code ``tf_dmgan.py``): the cross-entropy from the encoder's posterior on
    real data to r, minus an entropy bonus that keeps r near uniform early in training,

        L(ζ) = (1/A)·E_x[−Σ_i Q(i|x)·log r_i] − w·H(r),

    posterior: ``(B, A)`` Q(i|x) on real examples (a constant for ζ: pass it detached);
    prior_logits: ``(A,)`` ζ; entropy_weight: w (the caller anneals it). The 1/A is the reference
    code's mean over both the batch and the A entries (it scales the cross-entropy against w).
    Minimising the first term alone moves r to the average posterior E_x[Q(·|x)], so generators
    the encoder assigns real data to gain prior mass. Returns ``(L, H(r))``, both scalars.
    """
    log_r = F.log_softmax(prior_logits, dim=0)
    entropy = -(log_r.exp() * log_r).sum()
    cross = -(posterior * log_r).sum(1).mean() / prior_logits.shape[0]
    return cross - entropy_weight * entropy, entropy


# --- IMAE / IMSAT: mutual information of a categorical code over a minibatch ------------------------

def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy −Σ p log p over the last dimension; 0·log 0 = 0 with a finite gradient."""
    return -(p * p.clamp_min(torch.finfo(p.dtype).tiny).log()).sum(-1)


def empirical_mutual_information(p_y_given_x: torch.Tensor, marginal_weight: float = 1.0,
                                 marginal: torch.Tensor | None = None) -> torch.Tensor:
    """Minibatch mutual information of a categorical code (IMAE eq. 7; IMSAT, Hu et al. 2017, eq. 7):

        I(x; y) ≈ μ · H(mean_b p(y|x_b)) − mean_b H(p(y|x_b)),

    where the marginal p(y) is estimated by the batch mean of the posteriors. p_y_given_x: ``(B, K)``
    probabilities (rows sum to 1). marginal_weight: μ, 1 for the mutual information itself (IMAE);
    IMSAT up-weights the marginal entropy with μ = 4. Returns a **scalar** (nats), to be maximised:
    log K for confident, balanced assignments, 0 when every row is the same. marginal: ``(K,)`` the
    batch marginal when it is computed elsewhere (the global batch's under DDP); default the mean of
    ``p_y_given_x``.
    """
    if marginal is None:
        marginal = p_y_given_x.mean(0)
    return marginal_weight * _entropy(marginal) - _entropy(p_y_given_x).mean()


# --- β-TCVAE: aggregate posterior densities and total correlation ----------------------------------

def _pairwise_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``(B, B, d)``: entry [i, j, k] = log N(z_ik | mu_jk, exp(logvar_jk)) — sample i under the
    posterior of example j, per dimension."""
    zi, muj, lvj = z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0)
    return -0.5 * ((zi - muj).pow(2) * torch.exp(-lvj) + lvj + _LOG_2PI)


def _mss_log_weights(batch: int, dataset_size: int, dtype: torch.dtype, device) -> torch.Tensor:
    """``(B, B)`` log importance weights of minibatch-stratified sampling (Chen et al. 2018, App. C.2).

    With M = B − 1 and row i the sample z_i ~ q(z|x_i): w_ii = 1/N (the example z_i came from),
    w_i,(i+1 mod B) = (N − M)/(N·M) (the stratum's last member), every other w_ij = 1/M; each row
    sums to 1. (The reference code ``rtqichen/beta-tcvae`` strides the flattened matrix by B instead
    of B + 1, which puts the 1/N weight in column 0 instead of on the diagonal; this is the
    paper's matrix.)
    """
    n, m = float(dataset_size), batch - 1
    w = torch.full((batch, batch), 1.0 / m, dtype=torch.float64)
    idx = torch.arange(batch)
    w[idx, idx] = 1.0 / n
    w[idx, (idx + 1) % batch] = (n - m) / (n * m)
    return w.log().to(device=device, dtype=dtype)


def aggregate_log_densities(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                            estimator: str = "mws", rows: torch.Tensor | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Minibatch estimates of the aggregate posterior q(z) = (1/N) Σ_n q(z|x_n) of a diagonal
    Gaussian encoder at the batch's own samples (Chen et al. 2018, "Isolating sources of
    disentanglement", section 4.1 and appendix C).

    z, mu, logvar: ``(B, d)``, z_i ~ N(mu_i, diag exp(logvar_i)); dataset_size: N. rows: ``(n,)``
    the batch positions at which to evaluate (the rows one DDP rank owns; None = all B), always
    against all B posteriors. Returns ``(log_qz, log_qz_k)``: ``(n,)`` log q̂(z_i) and ``(n, d)``
    log q̂_k(z_ik), the marginal of each dimension (so Σ_k log q̂_k is log Π_k q(z_k)).

    - ``"mws"`` (minibatch-weighted sampling, eq. S5 and the reference code):
      log q̂(z_i) = logsumexp_j log q(z_i|x_j) − log(B·N). This is the published estimator,
      constant included: it puts mass 1/N on the batch rather than 1, so where the posteriors of
      the batch overlap it is ≈ log q(z_i) − log N (and each marginal likewise), so its TC is
      ≈ the true TC + (d − 1)·log N. The constant carries no gradient; compare MWS values only with
      MWS values at the same N.
    - ``"mss"`` (minibatch-stratified sampling): q̂(z_i) = Σ_j w_ij q(z_i|x_j) with the weights of
      ``_mss_log_weights``. q̂ is unbiased for q(z_i) when the other B − 1 batch members are uniform
      draws from the rest of the data; needs B ≥ 2.
    """
    if estimator not in TC_ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(TC_ESTIMATORS)}, got {estimator!r}")
    batch = z.shape[0]
    mat = _pairwise_log_density(z if rows is None else z[rows], mu, logvar)   # (n, B, d)
    if estimator == "mws":
        const = math.log(batch * dataset_size)
        return torch.logsumexp(mat.sum(2), 1) - const, torch.logsumexp(mat, 1) - const
    if batch < 2:
        raise ValueError("the 'mss' estimator needs a batch of at least 2")
    logw = _mss_log_weights(batch, dataset_size, z.dtype, z.device)
    if rows is not None:
        logw = logw[rows]
    return torch.logsumexp(logw + mat.sum(2), 1), torch.logsumexp(logw.unsqueeze(2) + mat, 1)


def total_correlation(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                      estimator: str = "mws", rows: torch.Tensor | None = None) -> torch.Tensor:
    """Total correlation of the aggregate posterior, TC(z) = KL(q(z) ‖ Π_k q(z_k))
    (Chen et al. 2018, eq. 2; the TC term of IMAE eq. 10), estimated on the batch:

        TC ≈ mean_i [ log q̂(z_i) − Σ_k log q̂_k(z_ik) ]

    with q̂ from :func:`aggregate_log_densities` (``"mws"`` or ``"mss"``; see there for the MWS
    constant). z, mu, logvar: ``(B, d)``; rows: the positions averaged over (None = all; see
    :func:`aggregate_log_densities`). Returns a **scalar** (nats). A minibatch estimate can be
    negative; larger batches reduce its bias.
    """
    log_qz, log_qz_k = aggregate_log_densities(z, mu, logvar, dataset_size, estimator, rows)
    return (log_qz - log_qz_k.sum(1)).mean()


def dimension_kl_surrogate(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                           estimator: str = "mss", rows: torch.Tensor | None = None) -> torch.Tensor:
    """IMAE eq. 6: L(z) = −Σ_k KL(p(z_k) ‖ r(z_k)) with r = N(0, 1), where p(z_k) is the aggregate
    posterior of latent dimension k.

    Each KL is estimated on the batch as mean_i [log q̂_k(z_ik) − log N(z_ik; 0, 1)], with q̂_k the
    per-dimension aggregate density of :func:`aggregate_log_densities`. The paper does not say
    how it estimates p(z_k); the default here is minibatch-stratified sampling (``"mss"``), whose
    value is calibrated (≈ the true KL for large batches); ``"mws"`` gives the same gradients up
    to the self-term weighting, but each KL comes out lowered by log N (its constant), so L is
    raised by d·log N.
    z, mu, logvar: ``(B, d)``; rows: the positions averaged over (None = all). Returns a **scalar**
    (nats, ≤ 0 up to estimation error), to be maximised.
    """
    _, log_qz_k = aggregate_log_densities(z, mu, logvar, dataset_size, estimator, rows)
    log_r = -0.5 * ((z if rows is None else z[rows]).pow(2) + _LOG_2PI)
    return -(log_qz_k - log_r).mean(0).sum()


# --- VAT (Miyato et al. 2018), as used by IMSAT and IMAE --------------------------------------------

@contextmanager
def frozen_batchnorm_stats(module: nn.Module | None) -> Iterator[None]:
    """Within the block, BatchNorm layers of ``module`` that are in training mode still normalise
    with the statistics of the current batch, but their buffers (running_mean, running_var,
    num_batches_tracked) are not updated — VAT's ``update_batch_stats=False`` (Miyato et al.'s and
    IMSAT's reference code). Implemented by clearing ``track_running_stats`` for the block, which
    makes ``_BatchNorm.forward`` use batch statistics and skip every buffer update; layers in eval
    mode keep using their running statistics. (Switching to eval mode instead would normalise with
    the running statistics, a different function from the one being trained; setting momentum to 0
    would still advance num_batches_tracked.)
    """
    layers = [m for m in (module.modules() if module is not None else ())
              if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True


def _unit(d: torch.Tensor) -> torch.Tensor:
    """Each example of ``d`` (``(B, ...)``) scaled to unit L2 norm over its non-batch dims."""
    norm = d.flatten(1).norm(dim=1).clamp_min(1e-12)
    return d / norm.view(-1, *([1] * (d.dim() - 1)))


def _kl_categorical(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) of ``(B, K)`` log-probabilities, batch mean (scalar)."""
    return (log_p.exp() * (log_p - log_q)).sum(1).mean()


def vat_loss(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float | torch.Tensor = 1.0,
             xi: float = 10.0, n_power: int = 1, logits: torch.Tensor | None = None,
             module: nn.Module | None = None) -> torch.Tensor:
    """Virtual adversarial loss (Miyato et al. 2018, eq. 4 and the power iteration of eqs. 6-8):

        KL(p(y|x) ‖ p(y|x + r_adv)),  r_adv = ε · d / ‖d‖,

    with d from ``n_power`` power iterations: d ← ∇_r KL(p(y|x) ‖ p(y|x + r)) at r = ξ·d/‖d‖,
    starting from a Gaussian d (global RNG). p(y|x) is a constant (detached); the returned loss
    back-propagates only through p(y|x + r_adv), and the power iterations use ``autograd.grad``
    with respect to d alone, so no parameter ``.grad`` is touched before the caller's backward.

    forward: maps x ``(B, ...)`` to logits ``(B, K)``. x: the clean inputs. eps: ε, a float or a
    ``(B,)`` tensor (IMSAT's per-example ε); ξ: the power-iteration step (10 in IMSAT's code; the
    VAT paper uses 1e-6). logits: forward(x) if the caller has it (detached here), else computed.
    module: the network whose BatchNorm layers ``forward`` runs (defaults to ``forward`` when it
    is an ``nn.Module``): every pass made here uses train-mode batch statistics without updating
    the running buffers (``frozen_batchnorm_stats``). Norms are L2 over all non-batch dims.
    Returns a **scalar**: the KL averaged over the batch.
    """
    if module is None and isinstance(forward, nn.Module):
        module = forward
    view = (-1, *([1] * (x.dim() - 1)))
    eps = eps.view(view) if isinstance(eps, torch.Tensor) else eps
    x = x.detach()
    with frozen_batchnorm_stats(module):
        if logits is None:
            with torch.no_grad():
                logits = forward(x)
        log_p = F.log_softmax(logits.detach().float(), dim=1)
        d = torch.randn_like(x)
        for _ in range(n_power):
            d = (xi * _unit(d)).requires_grad_(True)
            dist = _kl_categorical(log_p, F.log_softmax(forward(x + d).float(), dim=1))
            d = torch.autograd.grad(dist, d)[0].detach()
        r_adv = eps * _unit(d)
        return _kl_categorical(log_p, F.log_softmax(forward(x + r_adv).float(), dim=1))


# --- MMD (InfoVAE, WAE) --------------------------------------------------------------------------

def _kernel(a: torch.Tensor, b: torch.Tensor, kernel: str, scales: Sequence[float]) -> torch.Tensor:
    """``(n, m)`` kernel matrix summed over ``scales``; s = ‖a‖² + ‖b‖² − 2a·b, clamped at 0 (a
    matmul, no (n, m, d) intermediate; cdist would have an undefined gradient at s = 0)."""
    sq = (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2.0 * a @ b.T).clamp_min(0.0)
    out = 0.0
    for c in scales:
        out = out + (c / (c + sq) if kernel == "imq" else torch.exp(-sq / c))
    return out


def mmd(x: torch.Tensor, y: torch.Tensor, kernel: str = "imq",
        scale: float | Iterable[float] | None = None) -> torch.Tensor:
    """Unbiased estimate of MMD²(P, Q) from samples x ~ P ``(n, d)`` and y ~ Q ``(m, d)``
    (Gretton et al. 2012, eq. 3; the divergence of InfoVAE, Zhao et al. 2017, and WAE-MMD):

        mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 · mean_{i,j} k(x_i, y_j).

    Kernels of the squared distance s = ‖a − b‖² with scale C:
    ``"imq"`` k = C / (C + s) (WAE's inverse multiquadratic); ``"gaussian"`` k = exp(−s / C), i.e.
    a Gaussian with 2σ² = C. Default C = 2d, the mean ‖a − b‖² of two N(0, I_d) draws (WAE's
    C = 2·d·σ_z² with σ_z = 1). (InfoVAE's widely copied kernel exp(−mean_k (a_k − b_k)² / d)
    is exp(−s / d²): it divides by d twice. ``scale=d`` gives the intended exp(−s / d).) A sequence
    of scales sums the kernels (WAE sums IMQ over several C). n, m ≥ 2. Returns a **scalar**;
    its expectation is 0 when P = Q (it can be slightly negative), > 0 otherwise.
    """
    if kernel not in MMD_KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(MMD_KERNELS)}, got {kernel!r}")
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples from each side, got {n} and {m}")
    scales = [2.0 * x.shape[1]] if scale is None else ([float(scale)] if isinstance(scale, (int, float))
                                                        else [float(c) for c in scale])
    kxx, kyy, kxy = _kernel(x, x, kernel, scales), _kernel(y, y, kernel, scales), _kernel(x, y, kernel, scales)
    # Off-diagonal means (the i = j terms are what makes the plain V-statistic biased).
    return ((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
            + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) - 2.0 * kxy.mean())


def gaussian_informativeness(mu, logvar) -> dict:
    """Per-dimension informativeness of a Gaussian encoder (IMAE, Proposition 1):

        I_k = ½ · log(1 + Var_x[μ_k(x)] / E_x[σ_k²(x)]),

    the mutual information between x and z_k when the aggregate of dimension k is treated as a
    Gaussian with the same variance (the law of total variance). mu, logvar: ``(N, D)`` tensors
    or arrays, computed in float64 on the host (Var with 1/N). Returns ``{"informativeness",
    "var_mean" (Var_x[μ_k]), "mean_var" (E_x[σ_k²])}``, each a ``(D,)`` NumPy array, nats.
    """
    mu = torch.as_tensor(mu).detach().to("cpu", torch.float64)
    lv = torch.as_tensor(logvar).detach().to("cpu", torch.float64)
    var_mean, mean_var = mu.var(dim=0, unbiased=False), lv.exp().mean(dim=0)
    return {"informativeness": (0.5 * torch.log1p(var_mean / mean_var)).numpy(),
            "var_mean": var_mean.numpy(), "mean_var": mean_var.numpy()}


# --- The regularisers of IMAE and its hybrid-latent baselines --------------------------------------
# Each returns {term name: weighted scalar}, the terms its objective adds to the reconstruction
# −log q(x|y, z) (summed over the data dimensions, averaged over the batch) to be *minimised*.
# Batch-level estimates take the batch they estimate from as given: under DDP the method passes the
# global batch (``collectives.global_rows`` / ``global_mean``), in one process its own.

def imae_terms(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, p_y: torch.Tensor | None,
               p_y_marginal: torch.Tensor | None, beta: float, gamma: float, dataset_size: int,
               estimator: str = "mws", rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """IMAE eq. 10 negated, less the reconstruction: −β·L(z) + γ·TC(z) − β·I(x; y).

    z, mu, logvar: ``(B, K1)`` (the batch the aggregate estimates use; ``rows``: the positions the
    per-example means run over, see :func:`aggregate_log_densities`); L(z) =
    :func:`dimension_kl_surrogate` (eq. 6), TC(z) = :func:`total_correlation`, both with
    ``estimator``; p_y: ``(B, K2)`` p(y|x) or None (no categorical code), p_y_marginal: its batch
    mean ``(K2,)`` (eq. 7's marginal). Returns ``{"neg_dim_kl", "tc"[, "neg_mi"]}``, scalars (nats).
    """
    out = {"neg_dim_kl": -beta * dimension_kl_surrogate(z, mu, logvar, dataset_size, estimator, rows),
           "tc": gamma * total_correlation(z, mu, logvar, dataset_size, estimator, rows)}
    if p_y is not None:
        out["neg_mi"] = -beta * empirical_mutual_information(p_y, marginal=p_y_marginal)
    return out


def jointvae_terms(kl_z: torch.Tensor, kl_y: torch.Tensor | None, beta: float, capacity_z: float,
                   capacity_y: float) -> dict[str, torch.Tensor]:
    """JointVAE (Dupont 2018, eq. 7): β·|KL_z − C_z| + β·|KL_y − C_y|.

    kl_z: the batch mean of KL(q(z|x) ‖ N(0, I)), a scalar; kl_y: the batch mean of KL(q(y|x) ‖
    U(K2)), or None; capacity_*: C at this step (nats). With both capacities 0 it is the β-VAE on
    hybrid latents. Returns ``{"kl_z"[, "kl_y"]}``.
    """
    out = {"kl_z": beta * (kl_z - capacity_z).abs()}
    if kl_y is not None:
        out["kl_y"] = beta * (kl_y - capacity_y).abs()
    return out


def infovae_terms(z: torch.Tensor, prior_draws: torch.Tensor, q_y: torch.Tensor | None, beta: float,
                  mmd_weight: float, kernel: str = "gaussian", scale: float | None = None
                  ) -> dict[str, torch.Tensor]:
    """InfoVAE for hybrid latents as the IMAE paper states it: β·[λ·MMD²(q(z), N(0, I)) + KL(q(y) ‖ U(K2))].

    z: ``(B, K1)`` codes z ~ q(z|x) of the batch; prior_draws: ``(B, K1)`` draws of N(0, I); q_y:
    ``(K2,)`` the batch's aggregate q(y) (the mean of p(y|x); exact for a categorical) or None;
    λ = ``mmd_weight``; :func:`mmd` with ``kernel`` and ``scale``. Returns ``{"mmd_z"[, "kl_qy"]}``.
    """
    out = {"mmd_z": beta * mmd_weight * mmd(z, prior_draws, kernel, scale)}
    if q_y is not None:
        out["kl_qy"] = beta * categorical_kl_uniform(q_y.unsqueeze(0).clamp_min(1e-30).log())[0]
    return out


def beta_tcvae_terms(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, batch: tuple[torch.Tensor, ...],
                     logits: torch.Tensor | None, beta: float, dataset_size: int, estimator: str = "mss",
                     rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """β-TCVAE (Chen et al. 2018, eq. 4, α = γ = 1): I(x; z) + β·TC(z) + Σ_k KL(q(z_k) ‖ p(z_k)).

    z, mu, logvar: ``(B, K1)``, this process's examples (z ~ q(z|x)); batch: (z, mu, logvar) of the
    batch the aggregate q(z) is estimated from, ``rows`` this process's positions in it
    (:func:`aggregate_log_densities`). Every term from log q(z_i|x_i), log q̂(z_i), log q̂_k(z_ik)
    and log N(z_i; 0, I), averaged over the examples: the three sum exactly to the sampled
    KL(q(z|x) ‖ p(z)). logits: ``(B, K2)`` of a categorical code, whose KL to U(K2) is added with
    weight 1, or None. Returns ``{"mi", "tc", "dim_kl"[, "kl_y"]}``.
    """
    log_qz_x = (-0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI)).sum(1)
    log_pz = (-0.5 * (z.pow(2) + _LOG_2PI)).sum(1)
    log_qz, log_qz_k = aggregate_log_densities(*batch, dataset_size, estimator, rows)
    out = {"mi": (log_qz_x - log_qz).mean(), "tc": beta * (log_qz - log_qz_k.sum(1)).mean(),
           "dim_kl": (log_qz_k.sum(1) - log_pz).mean()}
    if logits is not None:
        out["kl_y"] = categorical_kl_uniform(logits).mean()
    return out
