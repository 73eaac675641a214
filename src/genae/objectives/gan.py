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
           "wgan_critic_loss", "wgan_generator_loss", "wgan_gp_critic_loss"]

Critic = Callable[[torch.Tensor], torch.Tensor]


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None, one_sided: bool = False) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): E[(‖∇_x̂ D(x̂)‖₂ − 1)²] at random interpolates;
    ``one_sided``: E[max(0, ‖∇_x̂ D(x̂)‖₂ − 1)²], penalising only gradients steeper than 1 (the
    variant of Gulrajani et al.'s appendix that DMWGAN's reference code trains with).

    real, fake: ``(B, ...)`` of the same shape; both are detached, so the penalty is a function of
    the critic's parameters only. x̂ = α·real + (1 − α)·fake with α ~ U[0, 1] per example, drawn
    from ``generator`` (None: the global RNG). The gradient is taken with ``create_graph=True`` so
    the penalty can be back-propagated. Returns a scalar (mean over the batch).
    """
    # under autocast the generator's output is bf16/fp16 beside fp32 data: interpolate in the wider
    # dtype (the critic's layers cast their input as autocast decides)
    dtype = torch.promote_types(real.dtype, fake.dtype)
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=dtype,
                       generator=generator)
    x_hat = torch.lerp(fake.detach().to(dtype), real.detach().to(dtype), alpha).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    excess = (norm - 1.0).clamp_min(0.0) if one_sided else norm - 1.0
    return excess.pow(2).mean()


def wgan_critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """E[D(fake)] − E[D(real)]: the negated Wasserstein-1 estimate the critic minimises."""
    return d_fake.mean() - d_real.mean()


def wgan_gp_critic_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor, gp_weight: float = 10.0,
                        generator: torch.Generator | None = None, one_sided: bool = False
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one WGAN-GP critic update (Gulrajani et al. 2017, Algorithm 1, lines
    4–8; line 9, the critic's Adam step, is the trainer's):

        L = E[D(fake)] − E[D(real)] + λ · E[(‖∇_x̂ D(x̂)‖₂ − 1)²],   x̂ = α·real + (1 − α)·fake,

    λ = ``gp_weight`` (10 in the paper), α ~ U[0, 1] per example from ``generator`` (None: the
    global RNG); ``one_sided`` penalises only ‖∇‖ > 1 (``gradient_penalty``). ``critic`` maps
    ``(B, ...)`` to ``(B,)`` or ``(B, 1)``; ``real`` and ``fake`` are ``(B, ...)`` of one shape
    and are detached, so ``L`` reaches the critic's parameters only.
    Order of work (and of RNG draws): D(real), D(fake), then α and the penalty. Every term is a
    batch mean; the returned ``L`` is a scalar. The caller repeats this ``n_critic`` times, with a
    critic step (and fresh ``real``/``fake`` samples as its game has it) between.

    Returns ``(L, logs)``, logs (detached scalars): ``"wasserstein"`` E[D(real)] − E[D(fake)] (the
    critic's Wasserstein-1 estimate), ``"gp"`` the penalty without λ, ``"loss"`` L.
    """
    real, fake = real.detach(), fake.detach()
    w = wgan_critic_loss(critic(real), critic(fake))
    gp = gradient_penalty(critic, real, fake, generator, one_sided)
    loss = w + gp_weight * gp
    return loss, {"wasserstein": -w.detach(), "gp": gp.detach(), "loss": loss.detach()}


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
