"""Imagining images from q(z|x) (LSR-GAN, Figs. 1–3) as a picture: ``imagination_grid`` draws
``genae.methods.imagination``'s rows (which it re-exports with ``imagine``)."""
from __future__ import annotations

import numpy as np
import torch

from .methods.base import Method
from .methods.imagination import imagination_rows, imagine
from .viz.grids import make_grid

__all__ = ["imagination_grid", "imagination_rows", "imagine"]


def imagination_grid(method: Method, x: torch.Tensor, draws: int = 6, seed: int = 0) -> np.ndarray:
    """One row per input: the input, its reconstruction from μ(x) (the VAE decoder for lsr-gan),
    then ``draws`` imaginations; an ``(H, W, 3)`` uint8 grid."""
    return make_grid(imagination_rows(method, x, draws, seed), nrow=draws + 2)
