"""Quotient manifold modeling's regularisers ("Deep Quotient Manifold Modeling").

For a multi-bias layer y = Ux + a^(i) (U ``(out, in)``, A biases a^(i) ``(out,)``), the bias's
*tangential component* is Uᵀa^(i) ``(in,)``: its coordinates along the directions the layer's
input can move in. Generators that differ only in components normal to U's range are translates of
one manifold (the paper's quotient); the bias-aligning regulariser pulls the A tangential
components together:

    R_BA = Σ_l log tr Cov_i(U_lᵀ a_l^(i))                                    (QMM §4)

``bias_alignment`` is one layer's term; a method sums it over its multi-bias layers. Covariance
normalisation: 1/A, i.e. the covariance of Uᵀa^(i) with i uniform over the A generators (as
generators are drawn in training); tr Cov = (1/A) Σ_i ‖Uᵀa^(i) − mean_j Uᵀa^(j)‖². The gradient
reaches both U and the biases (the paper's R_BA is a function of both and names no stop-gradient).
Because of the log, the term is invariant to the biases' common shift (the covariance is) and
changes by 2·log s when U or all biases are scaled by s.

``tangential_offset`` is eq. 3's penalty on a new manifold's biases: log ‖Uᵀa − Uᵀā‖².
``em_responsibilities`` is the E-step of Q-β-VAE (appendix C).
"""
from __future__ import annotations

import torch

__all__ = ["bias_alignment", "em_responsibilities", "tangential_offset"]


def bias_alignment(weight: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
    """log tr Cov_i(Uᵀa^(i)) of one multi-bias layer, a scalar.

    weight: ``(out, in)`` U; biases: ``(A, out)``, A ≥ 2. Normalisation 1/A (see the module
    docstring); differentiable in both arguments.
    """
    if biases.dim() != 2 or biases.shape[0] < 2:
        raise ValueError(f"bias_alignment needs biases (A, out) with A >= 2, got {tuple(biases.shape)}")
    t = biases @ weight                                   # (A, in): Uᵀa^(i) as rows
    spread = (t - t.mean(0, keepdim=True)).pow(2).sum(1).mean()
    return spread.log()


def tangential_offset(weight: torch.Tensor, bias: torch.Tensor, reference: torch.Tensor,
                      eps: float = 1e-12) -> torch.Tensor:
    """log(‖Uᵀ(a − ā)‖² + eps) per example ``(B,)`` (QMM eq. 3's penalty on derived biases).

    weight: ``(out, in)``; bias: ``(B, out)`` the biases being estimated; reference: ``(out,)`` ā.
    ``eps`` keeps the log finite where the tangential components coincide exactly.
    """
    d = (bias - reference) @ weight
    return (d.pow(2).sum(1) + eps).log()


def em_responsibilities(log_lik: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Q-β-VAE's E- and M-step terms (QMM appendix C) from the per-decoder log-likelihoods.

    log_lik: ``(B, A)`` log p_i(x_b | z_b) under each of the A decoders. Returns
    ``(responsibilities, nll)``: γ ``(B, A)`` = p_i(x|z) / Σ_j p_j(x|z) (the posterior over
    decoders under a uniform prior; detached: held fixed in the M-step), and the M-step's
    reconstruction term −Σ_i γ_i log p_i(x|z) ``(B,)`` (differentiable through ``log_lik`` only).
    """
    gamma = log_lik.detach().softmax(dim=1)
    return gamma, -(gamma * log_lik).sum(1)
