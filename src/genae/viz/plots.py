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


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
