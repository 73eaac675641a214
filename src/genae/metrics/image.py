"""Image-space metrics and transforms: sharpness (variance of the Laplacian), and the smooth
affine transforms (shear for slant, horizontal scaling for width) used by the QMM score.

Images are ``(N, C, H, W)`` (or ``(N, H, W)``) with pixel values in [0, 1].
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["luminance", "sharpness_per_image", "sharpness", "sharpness_sp_per_image", "SHARPNESS_SP_NOTE",
           "affine_transform", "shear", "hscale"]

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


SHARPNESS_SP_EPS = 1.0 / 255.0
SHARPNESS_SP_NOTE = ("San Pedro & Siersdorfer (2009, §3.1.2): mean over pixels of |Laplacian| / (local mean "
                     "luminance + 1/255); HSL lightness (max+min)/2 in [0,1]; 3x3 Laplacian and 3x3 local mean, "
                     "'valid' borders; mean over images")


def sharpness_sp_per_image(images: Any) -> np.ndarray:
    """Luminance-normalised sharpness of San Pedro & Siersdorfer (2009, §3.1.2), the measure
    LSR-GAN reports, per image ``(N,)`` float64 (higher = sharper).

    Their Sh = Σ_{x,y} L(x, y) / μ_xy, with L the Laplacian ∂²I/∂x² + ∂²I/∂y² of the luminance I
    (the L of HSL) and μ_xy the average luminance around (x, y). Our reading, stated with every
    number: I = HSL lightness (max + min)/2 of pixels in [0, 1] (a grey image is its own I);
    L = the 3×3 kernel [[0,1,0],[1,−4,1],[0,1,0]]; μ_xy = the mean of the same 3×3 window; both
    with 'valid' borders; |L| rather than L (the signed sum of a Laplacian telescopes to border
    terms); ε = 1/255 added to μ_xy (one grey level: black backgrounds give 0/ε = 0, not 0/0); the
    mean over pixels instead of the sum, so images of different sizes compare. The plain variance
    of the Laplacian stays ``sharpness_per_image``.
    """
    x = torch.as_tensor(images).detach().to("cpu", torch.float64)
    if x.ndim == 4 and x.shape[1] == 3:
        y = 0.5 * (x.max(dim=1).values + x.min(dim=1).values)
    else:
        y = luminance(x)
    y = y[:, None]
    lap = F.conv2d(y, torch.tensor(LAPLACIAN, dtype=torch.float64).view(1, 1, 3, 3))
    mean = F.avg_pool2d(y, 3, stride=1)
    return (lap.abs() / (mean + SHARPNESS_SP_EPS)).flatten(1).mean(1).numpy()


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
