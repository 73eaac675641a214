"""Terms of the evidence lower bound: KL to the standard normal prior and reconstruction likelihoods.

Reduction convention (library-wide): every term is **summed over data / latent dimensions** and
returned **per example**, shape ``(B,)``; the caller averages over the batch with ``.mean()``.
The one exception is :func:`gaussian_nll_optimal_variance`, which couples the whole batch through a
shared variance and is returned as a scalar already divided by ``B`` (the per-example share).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["LIKELIHOODS", "bernoulli_nll", "categorical_kl_uniform", "gaussian_kl", "gumbel_softmax", "gaussian_nll", "lsr_latent_nll",
           "gaussian_nll_optimal_variance", "reconstruction_nll", "reparameterize"]

LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-optimal")
_LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) ‖ N(0, I)) per example.

    mu, logvar: ``(B, d)`` (or ``(B, ...)``, flattened). Returns ``(B,)``:
    ½ Σ_k (mu_k² + σ_k² − 1 − log σ_k²).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log Bernoulli(x | sigmoid(logits)) per example, summed over dimensions.

    logits, x: ``(B, ...)``, x in [0, 1] (continuous targets give the usual cross-entropy).
    Returns ``(B,)``.
    """
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_nll(mean: torch.Tensor, x: torch.Tensor, sigma: float | torch.Tensor = 1.0) -> torch.Tensor:
    """−log N(x | mean, σ² I) per example, summed over dimensions, including the constant.

    mean, x: ``(B, ...)``; sigma: fixed standard deviation (float or a tensor broadcastable to x).
    Returns ``(B,)``: Σ_i [ (x_i − mean_i)² / (2σ²) + log σ + ½ log 2π ].
    """
    if isinstance(sigma, (int, float)):  # fast path: one fused reduction plus a constant
        d = x[0].numel()
        sq = (x - mean).pow(2).flatten(1).sum(1)
        return sq * (0.5 / sigma ** 2) + d * (math.log(sigma) + 0.5 * _LOG_2PI)
    sigma = sigma.to(dtype=x.dtype)
    per = 0.5 * ((x - mean) / sigma).pow(2) + sigma.log() + 0.5 * _LOG_2PI
    return per.expand_as(x).flatten(1).sum(1)


def gaussian_nll_optimal_variance(mean: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Gaussian NLL of the batch with one shared variance set to its maximum-likelihood value.

    With σ² = MSE (the batch mean squared error over all N = x.numel() scalars), the NLL of the
    whole batch is ``(N/2)·(log MSE + 1 + log 2π)`` — the minimum over σ of :func:`gaussian_nll`
    summed over the batch. (LSR-GAN's reference code calls this term "BCE"; it is not.)

    mean, x: ``(B, ...)``. Returns a **scalar**: that batch total divided by B, so that it adds to
    per-example means such as ``gaussian_kl(...).mean()``. Diverges (−∞) at a perfect fit.
    """
    n = x.numel()
    mse = (x - mean).pow(2).mean()
    return (0.5 * n / x.shape[0]) * (mse.log() + 1.0 + _LOG_2PI)


def reconstruction_nll(kind: str, out: torch.Tensor, x: torch.Tensor,
                       sigma: float = 1.0) -> torch.Tensor:
    """−log p(x | decoder output) per example, ``(B,)``, for the likelihood ``kind``.

    "bernoulli": ``out`` are logits. "gaussian": ``out`` is the mean, fixed std ``sigma``.
    "gaussian-optimal": ``out`` is the mean, shared ML variance; the batch term is divided evenly
    over the B examples (so ``.mean()`` gives :func:`gaussian_nll_optimal_variance`).
    """
    if kind == "bernoulli":
        return bernoulli_nll(out, x)
    if kind == "gaussian":
        return gaussian_nll(out, x, sigma)
    if kind == "gaussian-optimal":
        return gaussian_nll_optimal_variance(out, x).expand(x.shape[0])
    raise ValueError(f"unknown likelihood {kind!r}; choose one of {', '.join(LIKELIHOODS)}")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + exp(½ logvar) · ε, ε ~ N(0, I) from the global RNG; same shape as ``mu``."""
    return torch.addcmul(mu, (0.5 * logvar).exp(), torch.randn_like(mu))


def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A relaxed one-hot draw from Cat(softmax(logits)) (Jang et al. 2017, eq. 1; Maddison et al.
    2017's Concrete): softmax((logits + g) / τ), g_k = −log(−log u_k), u ~ U(0, 1) i.i.d.

    logits: ``(B, K)``; tau: temperature τ > 0 (→ 0: one-hot; → ∞: uniform). Differentiable in
    ``logits`` (the reparameterisation). argmax of the draw is distributed exactly as
    Cat(softmax(logits)) at every τ. Returns ``(B, K)``, rows summing to 1.
    """
    if generator is None:
        u = torch.rand_like(logits)
    else:
        u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=generator.device).to(logits.device)
    tiny = torch.finfo(logits.dtype).tiny
    g = -(-(u.clamp_min(tiny)).log()).clamp_min(tiny).log()
    return ((logits + g) / tau).softmax(-1)


def categorical_kl_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(Cat(softmax(logits)) ‖ U(K)) = log K − H(softmax(logits)) per example, ``(B,)`` from
    ``(B, K)`` logits (JointVAE's discrete KL; in [0, log K])."""
    log_p = logits.log_softmax(-1)
    return math.log(logits.shape[-1]) + (log_p.exp() * log_p).sum(-1)


def lsr_latent_nll(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                   reduction: str = "sum") -> torch.Tensor:
    """LSR-GAN's latent term −log q(z|x) of a diagonal Gaussian q = N(mu, diag exp(logvar)), per
    example ``(B,)``: ½ [(z − mu)² e^(−logvar) + logvar + log 2π] summed over the latent dimensions
    (``reduction="sum"``, the paper's −log q) or averaged over them (``"mean"``, the reference
    code's: a weight λ on the mean equals λ / d on the sum). z, mu, logvar: ``(B, d)``.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"lsr_latent_nll: reduction must be 'sum' or 'mean', got {reduction!r}")
    per_dim = 0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi))
    return per_dim.sum(1) if reduction == "sum" else per_dim.mean(1)
