"""Variational lower bounds on mutual information between a latent code and the data it generates.

InfoGAN (Chen et al. 2016, eq. 4): for codes c ~ p(c) and x = G(z, c),

    I(c; G(z, c)) ≥ L_I = E_{c, x}[log Q(c | x)] + H(c),

tight when Q(c|x) is the true posterior. Each function returns L_I's estimate **per example**,
shape ``(B,)`` (summed over code dimensions, like every likelihood term in the library); the caller
averages over the batch and *maximises* it (minimises ``−L_I``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .elbo import gaussian_nll

__all__ = ["categorical_mi_bound", "learned_prior_loss", "uniform_gaussian_mi_bound"]


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
