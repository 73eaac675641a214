"""Image-space metrics and transforms: sharpness (variance of the Laplacian), and the smooth
affine transforms (shear for slant, horizontal scaling for width) used by the QMM score.

Images are ``(N, C, H, W)`` (or ``(N, H, W)``) with pixel values in [0, 1].
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["luminance", "sharpness_per_image", "sharpness", "affine_transform", "shear", "hscale"]

# ITU-R BT.601 luma weights (R, G, B).
BT601 = (0.299, 0.587, 0.114)
LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def luminance(images: Any) -> torch.Tensor:
    """``(N, C, H, W)`` or ``(N, H, W)`` in [0, 1] -> ``(N, H, W)`` float64 luminance in [0, 1].

    One channel: the channel itself. Three channels: Y = 0.299 R + 0.587 G + 0.114 B (BT.601).
    """
    x = torch.as_tensor(images).detach().to("cpu", torch.float64)
    if x.ndim == 3:
        return x
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, H, W), (N, 1, H, W) or (N, 3, H, W); got {tuple(x.shape)}")
    if x.shape[1] == 1:
        return x[:, 0]
    w = torch.tensor(BT601, dtype=torch.float64).view(1, 3, 1, 1)
    return (x * w).sum(dim=1)


def sharpness_per_image(images: Any) -> np.ndarray:
    """Variance of the Laplacian of each image's luminance -> ``(N,)`` float64.

    Normalisation (state it with every number): pixel values in [0, 1]; luminance by BT.601 for
    RGB; Laplacian kernel [[0,1,0],[1,−4,1],[0,1,0]] with 'valid' borders (no padding), so an
    H×W image gives (H−2)×(W−2) responses; population variance (ddof=0) over those responses.
    This is the blur measure used by LSR-GAN (higher = sharper); on 0–255 pixels values are
    255² times larger.
    """
    y = luminance(images)[:, None]
    k = torch.tensor(LAPLACIAN, dtype=torch.float64).view(1, 1, 3, 3)
    lap = F.conv2d(y, k)  # cross-correlation; the kernel is symmetric so it is the convolution
    return lap.flatten(1).var(dim=1, unbiased=False).numpy()


def sharpness(images: Any) -> float:
    """Mean over images of ``sharpness_per_image`` (see there for the normalisation)."""
    return float(sharpness_per_image(images).mean())


def affine_transform(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Apply per-image 2×3 affine maps ``theta (N, 2, 3)`` (output -> input coordinates, in the
    normalised [-1, 1] frame of ``F.affine_grid``) with bilinear sampling; outside = 0 (black
    background, as for MNIST-like data)."""
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shear(images: torch.Tensor, s: float) -> torch.Tensor:
    """Horizontal shear about the image centre, x' = x + s·y (changes the slant of a digit)."""
    theta = torch.tensor([[1.0, -s, 0.0], [0.0, 1.0, 0.0]]).expand(images.shape[0], 2, 3)
    return affine_transform(images, theta)


def hscale(images: torch.Tensor, a: float) -> torch.Tensor:
    """Horizontal scaling about the centre by factor ``a`` (> 1 widens; changes the width)."""
    theta = torch.tensor([[1.0 / a, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(images.shape[0], 2, 3)
    return affine_transform(images, theta)
