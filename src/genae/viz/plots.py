"""Matplotlib figures of a run (headless backend)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402


def loss_curves(rows: list[dict]):
    """One panel per player with a line per ``<player>/<term>`` against the step."""
    series: dict[str, dict[str, tuple[list, list]]] = defaultdict(dict)
    for row in rows:
        if not isinstance(row.get("step"), (int, float)):  # kept in metrics.jsonl (named on resume), not drawn
            continue
        for key, value in row.items():
            if "/" not in key or not isinstance(value, (int, float)):
                continue
            player, term = key.split("/", 1)
            xs, ys = series[player].setdefault(term, ([], []))
            xs.append(row["step"])
            ys.append(value)
    players = sorted(series) or ["(no losses logged)"]
    fig, axes = plt.subplots(1, len(players), figsize=(4.5 * len(players), 3.9), squeeze=False)
    for ax, player in zip(axes[0], players):
        for term, (xs, ys) in sorted(series.get(player, {}).items()):
            ax.plot(xs, ys, label=term, lw=1.2)
        ax.set_title(f"player: {player}")
        ax.set_xlabel("training step")
        ax.set_ylabel("value (mean over the log interval)")
        ax.grid(alpha=0.3)
        if 0 < len(series.get(player, {})) <= 12:  # beyond that a legend is unreadable
            # below the axes, so it never covers the curves
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def seed_dots(ax, points, label: str, color=None, center: str = "mean") -> None:
    """One series of a metric against a swept value on ``ax``: each ``(x, y)`` of ``points`` (one
    per seed) as a translucent dot, and a line with markers through the per-x ``center`` ("mean"
    or "median": a collapsed seed swamps a mean of three, not a median) of its dots. Non-finite
    ``y`` are left out."""
    import math
    import statistics

    by_x: dict[float, list[float]] = defaultdict(list)
    for x, y in points:
        if math.isfinite(y):
            by_x[x].append(y)
    if not by_x:
        return
    xs = sorted(by_x)
    mid = statistics.fmean if center == "mean" else statistics.median
    line = ax.plot(xs, [mid(by_x[x]) for x in xs], marker="o", ms=4, lw=1.4, color=color,
                   label=f"{label} ({center})")[0]
    dots = [(x, y) for x in xs for y in by_x[x]]
    ax.scatter(*zip(*dots), s=14, color=line.get_color(), alpha=0.45, linewidths=0)


def separate_tick_labels(fig) -> None:
    """Keep the x tick labels of each axes of ``fig`` from overlapping (long labels, or many, or
    crowded on a log axis). Where two collide: the ticks shown are fixed, minor-tick labels go and
    the labels turn upright (90°: each is then one line height wide); while they still collide,
    only every k-th keeps its label, k = 2, 3, ... Measures by laying the figure out (no
    rendering), once per round over all axes."""
    from matplotlib.ticker import NullFormatter

    state: dict = {}  # axes -> [tick locations, labels, k] from its first collision on
    pending = [ax for ax in fig.axes if ax.get_visible()]
    while pending:
        fig.draw_without_rendering()  # positions and label texts as they will be drawn
        still = []
        for ax in pending:
            if not _labels_collide(ax):
                continue
            if ax not in state:
                state[ax] = [*_shown_ticks(ax), 1]
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.tick_params(axis="x", which="both", labelrotation=90)
            else:  # 2, 3, 4, then doubling: a crowded log axis needs few rounds
                state[ax][2] = state[ax][2] + 1 if state[ax][2] < 4 else 2 * state[ax][2]
            locs, texts, k = state[ax]
            k = state[ax][2] = min(k, max(len(locs), 1))
            ax.set_xticks(locs, [t if i % k == 0 else "" for i, t in enumerate(texts)])
            if k < len(locs):  # else one label is left, which collides with none
                still.append(ax)
        pending = still


def _shown_ticks(ax) -> tuple[list[float], list[str]]:
    """The major ticks inside the view and their labels' texts (after a layout)."""
    lo, hi = sorted(ax.get_xlim())
    pairs = [(loc, t.get_text()) for loc, t in zip(ax.get_xticks(), ax.get_xticklabels()) if lo <= loc <= hi]
    return [loc for loc, _ in pairs], [t for _, t in pairs]


def _labels_collide(ax) -> bool:
    """Whether two non-empty x tick labels (major or minor) inside the view overlap."""
    lo, hi = sorted(ax.get_xlim())
    boxes = [t.get_window_extent() for minor in (False, True)
             for loc, t in zip(ax.get_xticks(minor=minor), ax.get_xticklabels(minor=minor))
             if lo <= loc <= hi and t.get_visible() and t.get_text()]
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def save_figure(fig, path: str | Path, root: str | Path | None = None) -> Path:
    """Write ``fig`` at ``path`` (100 dpi, in the format its suffix names) and close it; atomically,
    parent directories created; with ``root`` (a run directory) only inside it, never through a
    link (``genae.fileio.atomic_write``)."""
    import io

    from ..fileio import atomic_write

    path = Path(path)
    if root is None:
        path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=path.suffix.lstrip(".").lower() or "png", dpi=100)
    finally:
        plt.close(fig)
    atomic_write(path, buf.getvalue(), root=root)
    return path
