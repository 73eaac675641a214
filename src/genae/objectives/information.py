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

__all__ = ["categorical_mi_bound", "uniform_gaussian_mi_bound"]


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
