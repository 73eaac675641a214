"""Output heads shared by the families: the L2 normalisation that puts features on the unit sphere.

Plain ``nn.Module``s and builder wrappers with no knowledge of any method.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["L2Normalize", "on_sphere"]

# A role builder: (shape, dim, width) -> nn.Module (see genae.nets for what each role's arguments mean)
Builder = Callable[[tuple[int, ...], int, int], nn.Module]


class L2Normalize(nn.Module):
    """Rows onto the unit sphere: ``x / ||x||₂`` along ``dim``."""

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=self.dim)


def on_sphere(build: Builder) -> Builder:
    """The builder of ``nn.Sequential(build(...), L2Normalize())``: an encoder whose rows lie on S^{d-1}.

    The wrapped network is child ``0`` (state-dict keys ``0.*``), the normalisation child ``1``.
    """
    def build_on_sphere(shape: tuple[int, ...], dim: int, width: int) -> nn.Module:
        return nn.Sequential(build(shape, dim, width), L2Normalize())
    return build_on_sphere
