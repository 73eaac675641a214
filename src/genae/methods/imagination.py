"""Imagining images from q(z|x) (LSR-GAN, "Imagining the Latent Space of a Variational
Auto-Encoder", Figs. 1–3): for each input, a reconstruction and renderings of several samples
z ~ q(z|x). Tensors only; ``genae.imagine`` draws them as a grid.

Works for any method with ``posterior_sample`` and ``decode``. For ``lsr-gan`` the reconstruction is
the stage-1 VAE decoder's rendering of μ(x) and the imaginations use the method's current
``renderer`` (the LSR generator once stage 2 has started); for a plain VAE both come from its decoder.
"""
from __future__ import annotations

import torch

from .base import Method, Unsupported

__all__ = ["imagination_rows", "imagine"]


def imagine(method: Method, x: torch.Tensor, draws: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B, draws, *shape)`` in the method's input range: ``decode`` of ``draws`` samples
    z ~ q(z|x) per input ``x`` ``(B, *shape)``; samples from ``generator`` (None: global RNG)."""
    if not (method.supports("posterior_sample") and method.supports("decode")):
        raise Unsupported(f"{type(method).__name__} has no stochastic encoder q(z|x) and decoder to imagine with")
    z = torch.stack([method.posterior_sample(x, generator) for _ in range(draws)], dim=1)
    out = method.decode(z.flatten(0, 1))
    return out.view(x.shape[0], draws, *out.shape[1:])


def imagination_rows(method: Method, x: torch.Tensor, draws: int = 6, seed: int = 0) -> torch.Tensor:
    """``(B·(draws + 2), *shape)`` in [0, 1], one row of ``draws + 2`` images per input: the input,
    its reconstruction from μ(x) (the VAE decoder for lsr-gan), then ``draws`` imaginations."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    with torch.no_grad():
        # lsr-gan: reconstruct with the VAE decoder (a method with one decoder: with it)
        with method.render_with("vae" if "vae" in method.renderers else None):
            recon = method.decode(method.encode(x))
        imag = imagine(method, x, draws, g)
    return method.to_unit(torch.cat([x[:, None], recon[:, None], imag], dim=1).flatten(0, 1))
