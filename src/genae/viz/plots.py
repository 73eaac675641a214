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
    fig, axes = plt.subplots(1, len(players), figsize=(4.5 * len(players), 3.4), squeeze=False)
    for ax, player in zip(axes[0], players):
        for term, (xs, ys) in sorted(series.get(player, {}).items()):
            ax.plot(xs, ys, label=term, lw=1.2)
        ax.set_title(player)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if 0 < len(series.get(player, {})) <= 12:  # beyond that a legend hides the curves
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
