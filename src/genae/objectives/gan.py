"""Adversarial objectives: Wasserstein (WGAN-GP) and Jensen-Shannon (standard GAN) terms.

Reduction convention: every term is a **scalar mean over the batch**. Critic / discriminator
outputs ``d_*`` and ``logits_*`` may be ``(B,)`` or ``(B, 1)`` (or any shape; all entries average).
Each function returns the quantity its player **minimises**.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["gradient_penalty", "js_discriminator_loss", "ns_generator_loss",
           "wgan_critic_loss", "wgan_generator_loss"]


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): E[(‖∇_x̂ D(x̂)‖₂ − 1)²] at random interpolates.

    real, fake: ``(B, ...)`` of the same shape; both are detached, so the penalty is a function of
    the critic's parameters only. x̂ = α·real + (1 − α)·fake with α ~ U[0, 1] per example (global
    RNG). The gradient is taken with ``create_graph=True`` so the penalty can be back-propagated.
    Returns a scalar (mean over the batch).
    """
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = torch.lerp(fake.detach(), real.detach(), alpha).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    return (norm - 1.0).pow(2).mean()


def wgan_critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """E[D(fake)] − E[D(real)]: the negated Wasserstein-1 estimate the critic minimises."""
    return d_fake.mean() - d_real.mean()


def wgan_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """−E[D(fake)]: the generator (or encoder) moves its samples towards high critic values."""
    return -d_fake.mean()


def js_discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, real labelled 1 and fake 0: −E[log D(real)] − E[log(1 − D(fake))].

    (Sum of the two batch means; ``softplus(−l) = −log sigmoid(l)``.)
    """
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def ns_generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss −E[log D(fake)] (Goodfellow et al. 2014)."""
    return F.softplus(-logits_fake).mean()
