"""Tensor transforms on whole datasets (at load time) and on batches (on the device).

Datasets are kept ``uint8`` so that a whole split fits on the device; the float conversion to a
method's input range happens per batch in ``to_range``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .core import derive_seed

__all__ = ["INPUT_RANGES", "convert_range", "to_range", "resize_images", "affine_images", "scale_theta",
           "rotation_theta", "add_rectangles", "rectangle_ranges"]

INPUT_RANGES = ("unit", "tanh", "raw")

# Images are processed in chunks so a float copy of a 60000-image set never exists at once.
_CHUNK = 4096


def to_range(x: torch.Tensor, input_range: str) -> torch.Tensor:
    """Convert a batch to what a method consumes.

    ``uint8`` images -> float32 in ``"unit"`` [0, 1] (x / 255) or ``"tanh"`` [-1, 1]
    (x / 127.5 - 1). Float data (vectors) has no canonical range and is returned as float32
    unchanged whatever ``input_range`` (methods on vector data use ``"raw"``). Runs on x's device.
    """
    if input_range not in INPUT_RANGES:
        raise ValueError(f"unknown input_range {input_range!r}; choose one of {', '.join(INPUT_RANGES)}")
    if x.dtype != torch.uint8:
        return x if x.dtype == torch.float32 else x.float()
    if input_range == "unit":
        return x.float().mul_(1.0 / 255.0)
    if input_range == "tanh":
        return x.float().mul_(2.0 / 255.0).sub_(1.0)
    raise ValueError("input_range 'raw' is for vector data; uint8 images need 'unit' or 'tanh'")


def convert_range(x: torch.Tensor, src: str | None, dst: str) -> torch.Tensor:
    """The one conversion between pixel ranges outside the training input path.

    src: "uint8" (0..255), "unit" ([0, 1]), "tanh" ([-1, 1]), "raw" (vectors: no range) or None
    (infer: a ``uint8`` tensor is "uint8", anything else "raw"). dst: "unit", "uint8" or "raw".
    uint8 -> unit is ``x / 255`` (exactly rounded: metrics and the domain classifier use it);
    unit/tanh -> unit clamps first; -> uint8 rounds to nearest after clamping to [0, 1]; raw data
    passes through as float32. Shapes are unchanged. (``to_range``, the trainer's per-batch input
    conversion, multiplies by the reciprocal in place for speed; every trained run depends on its
    exact rounding, so it stays separate.)
    """
    if src is None:
        src = "uint8" if x.dtype == torch.uint8 else "raw"
    if src == "raw" or dst == "raw":
        return x if x.dtype == torch.float32 else x.float()
    if dst == "uint8":
        return x if src == "uint8" else (convert_range(x, src, "unit") * 255.0).round().to(torch.uint8)
    if dst != "unit":
        raise ValueError(f"convert_range: unknown target range {dst!r}; choose unit, uint8 or raw")
    if src == "uint8":
        return x.float() / 255.0
    if src == "unit":
        return x.clamp(0, 1)
    if src == "tanh":
        return (x.clamp(-1, 1) + 1) / 2
    raise ValueError(f"convert_range: unknown source range {src!r}; choose uint8, unit, tanh or raw")


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round_().clamp_(0, 255).to(torch.uint8)


def is_padding_sized(src: int, dst: int) -> bool:
    """A growth of at most a quarter of the side is done with a zero border (28 -> 32 as in CTRL)
    rather than a resize, so digit strokes keep their exact pixel values."""
    return 0 <= dst - src <= src // 4


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """``uint8 (N, C, H, W)`` -> ``uint8 (N, C, size, size)``.

    Zero-pads symmetrically (any odd pixel goes bottom/right) when both sides grow by a
    padding-sized amount (``is_padding_sized``), otherwise resizes bilinearly (antialiased when
    shrinking) and rounds back to uint8.
    """
    h, w = x.shape[-2:]
    if h == size and w == size:
        return x
    if is_padding_sized(h, size) and is_padding_sized(w, size):
        dh, dw = size - h, size - w
        return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
    out = torch.empty(x.shape[0], x.shape[1], size, size, dtype=torch.uint8)
    antialias = size < h or size < w
    for i in range(0, x.shape[0], _CHUNK):
        xf = x[i:i + _CHUNK].float()
        out[i:i + _CHUNK] = _to_uint8(F.interpolate(xf, size=(size, size), mode="bilinear",
                                                    align_corners=False, antialias=antialias))
    return out


def scale_theta(s: float) -> torch.Tensor:
    """``(2, 3)`` affine_grid matrix that magnifies the content by ``s`` about the centre."""
    return torch.tensor([[1.0 / s, 0.0, 0.0], [0.0, 1.0 / s, 0.0]])


def rotation_theta(degrees: float) -> torch.Tensor:
    """``(2, 3)`` affine_grid matrix that rotates the content counter-clockwise as displayed.

    affine_grid maps output coordinates to input coordinates with y pointing down, so the matrix is
    the inverse of the displayed rotation: [[cos, -sin], [sin, cos]].
    """
    a = math.radians(degrees)
    return torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])


def affine_images(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Apply one ``(2, 3)`` affine_grid matrix to every image of ``uint8 (N, C, H, W)``.

    Bilinear sampling on float, zeros outside the image, ``align_corners=False``; back to uint8.
    """
    out = torch.empty_like(x)
    for i in range(0, x.shape[0], _CHUNK):
        xf = x[i:i + _CHUNK].float()
        grid = F.affine_grid(theta.expand(xf.shape[0], 2, 3), list(xf.shape), align_corners=False)
        out[i:i + _CHUNK] = _to_uint8(F.grid_sample(xf, grid, mode="bilinear", padding_mode="zeros",
                                                    align_corners=False))
    return out


# Rectangles are drawn for fixed-size blocks of examples, each block from its own generator, so the
# rectangles of example i depend on (seed, k, i, image size) only, never on how many images there
# are (a ``data.limit`` or a filter does not move them).
_RECT_BLOCK = 1024


def rectangle_ranges(h: int, w: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Inclusive ``(min, max)`` rectangle height and width for ``h × w`` images: from a 14th to a
    quarter of the side, at least 1 pixel (2..7 on 28×28, 4..14 across 56)."""
    def side(n: int) -> tuple[int, int]:
        lo = max(1, n // 14)
        return lo, max(lo, n // 4)
    return side(h), side(w)


def add_rectangles(images: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """``k`` random filled rectangles on each image: ``uint8 (N, C, H, W)`` -> a new ``uint8
    (N, C, H, W)`` (the input is not modified; ``k = 0`` returns an unchanged copy).

    The "noise-added" images of Deep Quotient Manifold Modeling (Fig. 5, App. G.3). Each
    rectangle is drawn at full intensity (255) in every channel, so it is white and occludes
    whatever is under it; rectangles may overlap each other. Per rectangle, independently:
    height and width uniform integers in ``rectangle_ranges(H, W)`` (a 14th to a quarter of the
    side: 2..7 pixels on 28×28), top-left corner uniform over the positions where the whole
    rectangle fits inside the image. Deterministic: the rectangles of example i are a function of
    ``(seed, k, i, H, W)`` alone (one generator per block of 1024 examples, seeded with
    ``derive_seed(seed, "rectangles", block)``).
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"add_rectangles needs uint8 (N, C, H, W) images, got {images.dtype} "
                         f"{tuple(images.shape)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"add_rectangles: k must be a non-negative integer, got {k!r}")
    out = images.clone()
    n, _, h, w = images.shape
    if k == 0 or n == 0:
        return out
    (h_lo, h_hi), (w_lo, w_hi) = rectangle_ranges(h, w)
    rows, cols = torch.arange(h), torch.arange(w)
    for b, start in enumerate(range(0, n, _RECT_BLOCK)):
        g = torch.Generator().manual_seed(derive_seed(seed, "rectangles", b))
        u = torch.rand(_RECT_BLOCK, k, 4, generator=g, dtype=torch.float64)  # always a full block
        m = min(_RECT_BLOCK, n - start)
        u = u[:m]
        rh = h_lo + (u[..., 0] * (h_hi - h_lo + 1)).long()                  # (m, k) heights
        rw = w_lo + (u[..., 1] * (w_hi - w_lo + 1)).long()
        y0 = (u[..., 2] * (h - rh + 1)).long()                                # top-left, fits inside
        x0 = (u[..., 3] * (w - rw + 1)).long()
        in_y = (rows >= y0[..., None]) & (rows < (y0 + rh)[..., None])        # (m, k, H)
        in_x = (cols >= x0[..., None]) & (cols < (x0 + rw)[..., None])        # (m, k, W)
        mask = (in_y[..., :, None] & in_x[..., None, :]).any(1)               # (m, H, W)
        out[start:start + m].masked_fill_(mask[:, None], 255)
    return out
