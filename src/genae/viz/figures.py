"""The drawings of the methods' report figures (no pyplot state: each returns a
``matplotlib.figure.Figure``, which the report renders to PNG), and ``draw``, which turns what a
method's ``figures()`` returns (``methods.base.Grid`` / ``Plot``: data) into a picture."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..methods.base import Grid, Plot
from .grids import make_grid

__all__ = ["PLOTS", "bias_scatter", "draw", "heatmaps", "informativeness_bars", "signed_heatmap", "threshold_bars"]


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


def bias_scatter(panels: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> Figure:
    """Per multi-bias layer (one row each), two scatter plots of its A biases in their own 2-D PCA
    coordinates: the biases a^(i) ``(A, out)`` and their tangential components Uᵀa^(i) ``(A, in)``
    (QMM Fig. H.4), each point numbered by its index i; titles give tr Cov (1/A) of each set."""
    fig = Figure(figsize=(8.0, 3.6 * len(panels)))
    axes = fig.subplots(len(panels), 2, squeeze=False)
    for row, (title, biases, tangential) in zip(axes, panels):
        for ax, (what, pts) in zip(row, (("biases a", biases), ("tangential Uᵀa", tangential))):
            pts = np.asarray(pts, dtype=np.float64)
            centred = pts - pts.mean(0, keepdims=True)
            trace = float((centred ** 2).sum(1).mean())
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            xy = centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred @ vt[:1].T, np.zeros(len(pts))]
            ax.scatter(xy[:, 0], xy[:, 1], s=18)
            for i, (u, v) in enumerate(xy):
                ax.annotate(str(i), (u, v), fontsize=7)
            ax.set_title(f"{title}: {what} (tr Cov {trace:.3g})", fontsize=9)
            ax.set_xlabel("PC 1")
            ax.set_ylabel("PC 2")
    fig.tight_layout()
    return fig


def informativeness_bars(info: dict[str, np.ndarray]) -> Figure:
    """IMAE Fig. 2a: per continuous dimension k, the bar ½·log(1 + Var[μ_k]/E[σ_k²]) (left axis, nats)
    and its parts E[σ_k²] and Var[μ_k] as markers (right axis). info: ``gaussian_informativeness``'s dict."""
    k = np.arange(len(info["informativeness"]))
    fig = Figure(figsize=(6.0, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.bar(k, info["informativeness"], color="C0", label="I(x; z_k) (Prop. 1)")
    ax.set_xlabel("continuous dimension k")
    ax.set_ylabel("nats")
    right = ax.twinx()
    right.plot(k, info["mean_var"], "o", color="C3", label="E[σ_k²]")
    right.plot(k, info["var_mean"], "s", color="C2", label="Var[μ_k]")
    right.set_yscale("log")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper right")
    return fig


#: ``Plot.kind`` -> its drawing
PLOTS = {f.__name__: f for f in (bias_scatter, heatmaps, informativeness_bars, signed_heatmap, threshold_bars)}


def draw(value: Any) -> Any:
    """A ``Grid`` -> its ``(H, W, 3)`` uint8 image; a ``Plot`` -> its drawing's Figure; anything
    else (a Figure or an image a method drew itself) as it is."""
    if isinstance(value, Grid):
        return make_grid(value.images, nrow=value.nrow)
    if isinstance(value, Plot):
        if value.kind not in PLOTS:
            raise ValueError(f"unknown plot kind {value.kind!r}; choose one of {', '.join(PLOTS)}")
        return PLOTS[value.kind](*value.args, **value.kwargs)
    return value
