"""Figure helpers the methods' ``figures()`` use for the run report (no pyplot state: each
returns a ``matplotlib.figure.Figure``, which the report renders to PNG)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["heatmaps", "signed_heatmap", "threshold_bars"]


def heatmaps(panels: Sequence[tuple[np.ndarray, str]], boundaries: Sequence[int] = (),
             vmin: float = 0.0, vmax: float = 1.0, cmap: str = "viridis") -> Figure:
    """Side-by-side ``(N, N)`` heatmaps with one shared colour bar; ``boundaries``: indices after
    which a thin white line marks a block (e.g. where the class changes in a sorted batch)."""
    fig = Figure(figsize=(5.5 * len(panels), 5))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    im = None
    for ax, (mat, title) in zip(axes, panels):
        im = ax.imshow(np.asarray(mat), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([])
        for b in boundaries:
            ax.axhline(b + 0.5, color="w", lw=0.4), ax.axvline(b + 0.5, color="w", lw=0.4)
    fig.colorbar(im, ax=list(axes), shrink=0.8)
    return fig


def signed_heatmap(mat: np.ndarray, title: str, xlabel: str = "k", ylabel: str = "k") -> Figure:
    """One heatmap of a signed matrix (a covariance), colour scale symmetric about 0."""
    mat = np.asarray(mat)
    fig = Figure(figsize=(4.6, 3.8))
    ax = fig.subplots()
    v = max(float(np.abs(mat).max()) if mat.size else 0.0, 1e-12)
    im = ax.imshow(mat, cmap="RdBu_r", vmin=-v, vmax=v)
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def threshold_bars(values: np.ndarray, threshold: float, title: str, xlabel: str = "k",
                   ylim: tuple[float, float] = (0, 1)) -> Figure:
    """A bar per entry, coloured by whether it reaches ``threshold`` (drawn dashed)."""
    values = np.asarray(values)
    fig = Figure(figsize=(5.0, 3.0))
    ax = fig.subplots()
    ax.bar(range(len(values)), values, color=["C0" if v >= threshold else "C7" for v in values])
    ax.axhline(threshold, color="C3", lw=1, ls="--")
    ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return fig
