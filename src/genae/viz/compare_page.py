"""The figures and the self-contained HTML page of ``genae compare`` (images embedded as base64
PNG, no external files or scripts; every text from a run or config is HTML-escaped), and the
command's outputs (``write_outputs``, ``run_compare``): this module sits above ``genae.compare``,
which computes the comparison and its text and CSV forms and imports nothing back.

Sections: the tables, one per dataset (protocol marks, a legend of what each column measures and
which way is better, footnotes, notes; each cell's tooltip lists its per-seed values, the seeds
count's the seeds), one figure per numeric swept key (a panel per metric, a dot per seed and a line through
the means), the latest sample and reconstruction grids of one run per group side by side, and the
list of runs.
"""
from __future__ import annotations

import html
import math
import textwrap
from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure

from ..compare import Comparison, Section, compare, csv_text, format_table, format_value, protocol_text, runs_csv_text
from ..fileio import atomic_write, read_own
from .plots import seed_dots, separate_tick_labels
from .report import _CSS, _figure_png, _latest, _png_data_uri

__all__ = ["numeric_keys", "plot_figures", "plot_pngs", "render_page", "run_compare", "write_outputs"]

_EXTRA_CSS = """
.grids img{max-height:340px} td.mixed{color:#b00020;font-weight:600} .notes li{color:#7a4b00}
.proto{font-size:.85em;color:#444} caption{caption-side:bottom;text-align:left;font-size:.8em;color:#666}
.legend{font-size:.85em;color:#333}
"""


def numeric_keys(cmp: Comparison) -> list[str]:
    """Swept keys whose values are all numbers (not booleans), with at least two distinct values."""
    out = []
    for k in cmp.swept:
        vs = [g.values[k] for g in cmp.groups if k in g.values]
        if vs and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs) and len(set(vs)) > 1:
            out.append(k)
    return out


def plot_figures(cmp: Comparison) -> dict[str, Figure]:
    """Per numeric swept key: a figure with one panel per column that has numbers; in a panel,
    one series per method and value of the other swept keys (and per protocol where the column
    holds several: numbers of different protocols never share a line), a dot per run (seed) and
    a line through the per-value means."""
    figs = {}
    for key in numeric_keys(cmp):
        others = [k for k in cmp.swept if k != key]
        panels = []
        for col in cmp.columns:
            multi = len(cmp.column_protocols(col)) > 1
            series: dict[str, list[tuple[float, float]]] = {}
            for g in cmp.groups:
                if key not in g.values:
                    continue
                cell = g.cells[col]
                for v, p in zip(cell.values, cell.run_protocols):
                    label = g.label(others) + (f" [{cmp.tag(p)}]" if multi else "")
                    series.setdefault(label, []).append((g.values[key], v))
            if series:
                panels.append((col, multi, series))
        if not panels:
            continue
        ncols = min(3, len(panels))
        nrows = math.ceil(len(panels) / ncols)
        fig = Figure(figsize=(4.4 * ncols + 2.6, 3.4 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        colors, used = {}, []
        for ax, (col, multi, series) in zip(axes, panels):
            for label, pts in series.items():
                colors.setdefault(label, f"C{len(colors) % 10}")
                seed_dots(ax, pts, label, color=colors[label])
            xs = [x for pts in series.values() for x, _ in pts]
            ys = [y for pts in series.values() for _, y in pts if math.isfinite(y)]
            # metrics such as FID span decades between a good and a collapsed run
            if _log_scale(xs):
                ax.set_xscale("log")
            if _log_scale(ys):
                ax.set_yscale("log")
            if len(set(xs)) <= 12:  # ticks at the swept values only (no latent_dim = 4.5)
                ax.set_xticks(sorted(set(xs)), [format_value(x) for x in sorted(set(xs))])
                ax.minorticks_off()
            used += [p for p in cmp.column_protocols(col) if p not in used]
            ax.set_xlabel(key)
            ax.set_ylabel(cmp.header(col) if not multi else f"{col} (marks: protocols)")
            ax.set_title(f"{col} vs {key}", fontsize=10)
            ax.grid(alpha=0.3)
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        handles, labels = {}, []
        for ax in axes[:len(panels)]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        labels = list(handles)
        # the marks' meaning, so that the PNG stands on its own outside the page
        fig.supxlabel("\n".join(textwrap.shorten(f"[{cmp.tag(p)}] {protocol_text(p)}", 160) for p in used),
                      fontsize=7, x=0.01, ha="left")
        # outside the axes: a legend inside would cover the dots
        fig.legend([handles[lab] for lab in labels], labels, loc="outside right upper", fontsize=7,
                   title="line: mean over seeds\ndots: one per seed", title_fontsize=7)
        separate_tick_labels(fig)  # after the legend and labels: they shape the axes' width
        figs[key] = fig
    return figs


def plot_pngs(cmp: Comparison) -> dict[str, bytes]:
    """``plot_figures`` rendered to PNG bytes (key -> PNG)."""
    return {k: _figure_png(fig) for k, fig in plot_figures(cmp).items()}


def _log_scale(vs: list[float]) -> bool:
    return len(vs) > 1 and min(vs) > 0 and max(vs) / min(vs) >= 100


def render_page(cmp: Comparison, pngs: dict[str, bytes] | None = None) -> str:
    """The page's HTML; ``pngs``: key -> PNG of the figure against that key (default: drawn here)."""
    e = html.escape
    pngs = plot_pngs(cmp) if pngs is None else pngs
    several = len(cmp.sections) > 1
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>genae compare</title>"
             f"<style>{_CSS}{_EXTRA_CSS}</style></head><body>",
             "<h1>genae compare</h1>",
             f"<p class='sub'>{len(cmp.runs)} runs in {len(cmp.groups)} groups (method"
             f"{''.join(', ' + e(k) for k in cmp.swept)}) on {e(', '.join(s.title for s in cmp.sections))}"
             f"{': one table per dataset, never averaged together' if several else ''}; "
             "cells: mean ± sample std (ddof 1) over seeds</p>", "<h2>Metrics</h2>"]
    for section in cmp.sections:
        parts += [f"<h3>data: {e(section.title)}</h3>"] * several + [_table(cmp, section)]
    shown = list(dict.fromkeys(c for section in cmp.sections for c in section.columns))
    parts.append("<ul class='legend'>" + "".join(f"<li>{e(line)}</li>" for line in cmp.legend(shown)) + "</ul>")
    if cmp.protocols:
        parts.append("<p class='proto'>Protocols (the mark after a header or number):</p><ul class='proto'>"
                     + "".join(f"<li>{e(f)}</li>" for f in cmp.footnotes()) + "</ul>")
    if cmp.notes:
        parts.append("<h3>Notes</h3><ul class='notes'>" + "".join(f"<li>{e(n)}</li>" for n in cmp.notes) + "</ul>")
    if pngs:
        parts.append("<h2>Metrics against swept values</h2>")
        parts += [f"<figure><img src='{_png_data_uri(png)}' alt='metrics vs {e(k)}'><figcaption>each metric "
                  f"against {e(k)}: one dot per seed, the line through the means</figcaption></figure>"
                  for k, png in pngs.items()]
    grids = _grids(cmp)
    if grids:
        parts += ["<h2>Samples and reconstructions</h2>",
                  "<p class='sub'>the latest grids of the first seed of each group; reconstructions: "
                  "originals and their reconstructions in alternating columns</p>", grids]
    parts += ["<h2>Runs</h2>", _runs_table(cmp), "</body></html>"]
    return "\n".join(parts)


def _table(cmp: Comparison, section: Section) -> str:
    e = html.escape
    rows = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in cmp.row_head())
            + "".join(f"<th title='{e(cmp.meaning(c))}'>{e(cmp.header(c))}</th>" for c in section.columns) + "</tr>"]
    for g in section.groups:
        tips = {1 + len(cmp.swept): "seeds " + ", ".join(map(str, g.seeds))}  # the count's cell lists them
        tds = "".join(f"<td title='{e(tips[i])}'>{e(c)}</td>" if i in tips else f"<td>{e(c)}</td>"
                      for i, c in enumerate(cmp.row_cells(g)))
        for col in section.columns:
            cell = g.cells[col]
            tip = "; ".join(f"seed {s}: {v:.6g} [{cmp.tag(p)}]"
                            for s, v, p in zip(cell.seeds, cell.values, cell.run_protocols))
            if not cell.values:  # say why there is no number: skipped (with the reason), measured otherwise...
                tip = "; ".join(f"seed {r.seed}: {cmp.absence(r, col)}" for r in g.runs)
            klass = "num mixed" if cell.mixed else "num"
            tds += f"<td class='{klass}' title='{e(tip)}'>{e(cmp.cell_text(g, col))}</td>"
        rows.append(f"<tr>{tds}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _grids(cmp: Comparison) -> str:
    e = html.escape
    rows = []
    for g in cmp.groups:
        run = g.runs[0]
        figs = []
        for kind, title in (("samples", "samples"), ("recon", "reconstructions")):
            found = _latest(run.path / "samples", kind)
            png = read_own(run.path, found[0]) if found else None  # the run's own file, never a link's target
            if png is not None:
                figs.append(f"<figure><img src='{_png_data_uri(png)}' alt='{title}'>"
                            f"<figcaption>{title}, step {found[1]}</figcaption></figure>")
        if figs:
            rows.append(f"<tr><td><b>{e(g.label())}</b><br>run {e(run.name)}, seed {e(str(run.seed))}</td>"
                        f"<td>{''.join(figs)}</td></tr>")
    return f"<table class='grids'>{''.join(rows)}</table>" if rows else ""


def _runs_table(cmp: Comparison) -> str:
    e = html.escape
    head = ["run", "data", "method", *cmp.swept, "seed", "eval step", "path"]
    rows = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    for section in cmp.sections:
        for g in section.groups:
            for r in g.runs:
                cells = [r.name, section.title, r.method, *map(g.value_text, cmp.swept), str(r.seed),
                         "—" if r.eval_step is None else str(r.eval_step), str(r.path)]
                rows.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def write_outputs(cmp: Comparison, out: str | Path) -> list[Path]:
    """Write ``compare.md``, ``compare.csv``, ``compare_runs.csv``, one ``vs_<key>.png`` per
    numeric swept key and ``compare.html`` (which embeds those plots) into ``out``; returns the
    paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pngs = plot_pngs(cmp)
    files = {"compare.md": format_table(cmp, markdown=True).encode("utf-8"),
             "compare.csv": csv_text(cmp).encode("utf-8"),
             "compare_runs.csv": runs_csv_text(cmp).encode("utf-8"),
             **{f"vs_{key}.png": png for key, png in pngs.items()},
             "compare.html": render_page(cmp, pngs).encode("utf-8")}
    for name, data in files.items():
        atomic_write(out / name, data)
    return [out / name for name in files]


def run_compare(paths: Sequence[str], metrics: str | None = None, ignore: str = "", markdown: bool = False,
                csv_path: str | None = None, html_path: str | None = None, out: str | None = None) -> int:
    """``genae compare``: print the table (text or Markdown) on stdout, write the files asked for
    and name them on stderr (so ``--markdown > table.md`` stays a clean table)."""
    import sys

    split = lambda s: [x.strip() for x in (s or "").split(",") if x.strip()]  # noqa: E731
    cmp = compare(paths, metrics=split(metrics) or None, ignore=split(ignore))
    print(format_table(cmp, markdown=markdown), end="", flush=True)
    written = []
    if csv_path:
        atomic_write(Path(csv_path), csv_text(cmp).encode("utf-8"))
        written.append(csv_path)
    if html_path:
        atomic_write(Path(html_path), render_page(cmp).encode("utf-8"))
        written.append(html_path)
    if out:
        written += map(str, write_outputs(cmp, out))
    if written:
        print("written: " + ", ".join(map(str, written)), file=sys.stderr)
    return 0
