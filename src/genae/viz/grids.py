"""Image grids written as PNG files (Pillow only; no torchvision)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """``(N, C, H, W)`` floats in [0, 1] -> ``(rows·(H+pad)+pad, nrow·(W+pad)+pad, 3)`` uint8.

    Greyscale images are repeated over 3 channels; the padding is white-ish grey so dark digits
    on black backgrounds stay readable.
    """
    if images.dim() != 4:
        raise ValueError(f"make_grid needs (N, C, H, W) images, got shape {tuple(images.shape)}")
    x = images.detach().float().clamp(0, 1).cpu()
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] != 3:
        raise ValueError(f"make_grid needs 1 or 3 channels, got {x.shape[1]}")
    n, _, h, w = x.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    grid = torch.full((3, rows * (h + pad) + pad, nrow * (w + pad) + pad), 0.5)
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[:, top:top + h, left:left + w] = x[i]
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write an ``(H, W, 3)`` or ``(H, W)`` uint8 array as PNG (parent directories created)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """``make_grid`` then ``save_png``."""
    return save_png(make_grid(images, nrow), path)
