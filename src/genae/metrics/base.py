"""What the metric groups share: ``Skip``, ``MetricSpec``, the applicability checks and the
pixel conversions of evaluation.

Conventions: images are compared in [0, 1] (``method.to_unit``; real uint8 / 255); vectors raw.
A metric that does not apply raises ``Skip`` (or the method's ``Unsupported``); ``evaluate`` turns
either into ``{"skipped": "<reason>"}``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from ..data.transforms import convert_range

__all__ = ["MetricSpec", "Skip", "log", "need_images", "need_labels", "quantize", "to_unit"]


class Skip(Exception):
    """Raised inside a metric (or a backbone) that does not apply; ``evaluate`` turns it into
    ``{"skipped": ...}``."""


@dataclass(frozen=True)
class MetricSpec:
    """A registry entry: ``fn(method, ctx) -> dict``, a one-line description, what it needs (method
    capabilities such as ``sample``/``encode``, and data: ``labels``, ``images``, ``factors``; "a|b"
    = either) and the protocol fields every result of it carries (``genae metrics`` lists them).

    ``better``: which way is better, "higher" or "lower": a string for the headline ``value``, or a
    mapping result field -> direction (``"value"`` included); a field it does not name (a count, a
    spread such as ``std``, a reference value) has none. ``measure``: the protocol fields that name
    *what* was measured (the feature backbone's weights, the active-dims criterion): numbers that
    differ in them are different quantities, which ``genae compare`` never puts in one column."""

    fn: Callable[[Any, Any], dict[str, Any]]
    description: str
    needs: tuple[str, ...] = ()
    protocol: tuple[str, ...] = ("split",)
    better: str | Mapping[str, str] | None = field(default=None, hash=False)
    measure: tuple[str, ...] = ()

    def direction(self, fld: str = "value") -> str | None:
        """"higher", "lower" or None: which way result field ``fld`` is better."""
        if isinstance(self.better, Mapping):
            return self.better.get(fld)
        return self.better if fld == "value" else None


def need_labels(ctx, what: str):
    """(train labels, reference-split labels) as NumPy arrays, or ``Skip`` naming ``what``."""
    tr, ref = ctx.dataset("train"), ctx.dataset(ctx.split)
    if tr.y is None or ref.y is None:
        raise Skip(f"{what} needs class labels; {tr.name} is unlabelled")
    return tr.y.numpy(), ref.y.numpy()


def need_images(ctx, what: str) -> None:
    if ctx.kind != "image":
        raise Skip(f"{what} applies to images; {ctx.dataset('train').name} is vector data")


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1]; floats pass through as float32."""
    return convert_range(x, None, "unit")


def quantize(x_unit: torch.Tensor) -> torch.Tensor:
    """float images in [0, 1] -> uint8 (round to nearest)."""
    return convert_range(x_unit, "unit", "uint8")


def log(msg: str) -> None:
    print(f"[genae eval] {msg}", file=sys.stderr, flush=True)
