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


def save_png(array: np.ndarray, path: str | Path, root: str | Path | None = None) -> Path:
    """Write an ``(H, W, 3)`` or ``(H, W)`` uint8 array as PNG, atomically, parent directories
    created; with ``root`` (a run directory) only inside it, never through a link
    (``genae.fileio.atomic_write``)."""
    import io

    from PIL import Image

    from ..fileio import atomic_write

    path = Path(path)
    if root is None:
        path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    atomic_write(path, buf.getvalue(), root=root)
    return path


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """``make_grid`` then ``save_png``."""
    return save_png(make_grid(images, nrow), path)


#: The largest image ``load_image`` decodes (32 megapixels: a photo, not a decompression bomb).
MAX_IMAGE_PIXELS = 1 << 25


def load_image(path: str | Path, shape: tuple[int, ...]) -> torch.Tensor:
    """An image file (anything Pillow reads: PNG, JPEG, ...) as ``(1, C, H, W)`` floats in [0, 1]
    for data of ``shape`` ``(C, H, W)``: converted to grey (C = 1) or RGB (C = 3) and resized to
    H×W (bilinear) when its size differs. Raises ``ValueError`` naming the file if it cannot be
    read, or when it has more than ``MAX_IMAGE_PIXELS`` pixels (checked from its header, before
    anything is decoded: a 20000×20000 image would take gigabytes)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    if c not in (1, 3):
        raise ValueError(f"load_image: data with {c} channels; only grey (1) or RGB (3) images are read")
    try:
        with warnings.catch_warnings():  # Pillow's own bomb warning: our limit below is lower
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:
        raise ValueError(f"{path}: an image of more than {Image.MAX_IMAGE_PIXELS:,} pixels; give one of at "
                         f"most {MAX_IMAGE_PIXELS:,} pixels (it is resized to {w}×{h} anyway)") from None
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None
    try:
        with im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{path}: a {im.width}×{im.height} image is too large; give one of at most "
                                 f"{MAX_IMAGE_PIXELS:,} pixels (it is resized to {w}×{h} anyway)")
            im = im.convert("L" if c == 1 else "RGB")
            if im.size != (w, h):
                im = im.resize((w, h), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None
    x = torch.from_numpy(arr)
    return (x[None] if c == 1 else x.permute(2, 0, 1))[None].contiguous()
