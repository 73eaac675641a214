"""``report.html`` of a run: one self-contained page (images embedded as base64 PNG, no external
files or scripts), viewable offline.

Sections, each present only when its source exists: the latest sample grid and reconstructions
(``samples/samples_<step>.png``, ``samples/recon_<step>.png``), ``loss_curves.png``, the
``eval.json`` table, the figures the method registers (``method.figures(x, y)``: name -> matplotlib
Figure or ``H×W×C`` uint8 array), the last logged losses and the resolved config.

Only the run's own files are read into the page: a file that is a symbolic link, or lies in a
folder of the run that is one, is left out as if absent (``genae.fileio.read_own``), so a link
planted in a run never copies an outside file into a report that is meant to be shared.
"""
from __future__ import annotations

import base64
import html
import io
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import load_dataset, to_range
from ..errors import GenaeError, RunFileError
from ..schema import EVAL_RECORD, check, parse_json, parse_yaml
from ..fileio import atomic_write, is_own, read_own
from ..runs import load_run, read_metrics, read_run_info, run_config
from .figures import draw

__all__ = ["write_report", "render_report"]

_STEP = re.compile(r"^(samples|recon)_(\d+)\.png$")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
.sub{color:#666;margin-top:0} figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figcaption{font-size:.85em;color:#555;text-align:center;max-width:520px;margin:auto}
img{max-width:100%;max-height:80vh;image-rendering:pixelated}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left;vertical-align:top} th{background:#f5f5f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
.skip{color:#999} pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em}
"""


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure_png(obj: Any) -> bytes:
    """A matplotlib Figure or an ``H×W``/``H×W×C`` uint8 (or [0, 1] float) array -> PNG bytes."""
    if hasattr(obj, "savefig"):
        import matplotlib.pyplot as plt
        buf = io.BytesIO()
        obj.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(obj)
        return buf.getvalue()
    from PIL import Image
    a = np.asarray(obj.detach().cpu().numpy() if hasattr(obj, "detach") else obj)
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _latest(samples_dir: Path, kind: str) -> tuple[Path, int] | None:
    """The newest ``<kind>_<step>.png`` of ``samples_dir`` and its step; links are never candidates
    (nor is a ``samples_dir`` that is one)."""
    best = None
    if samples_dir.is_dir() and not samples_dir.is_symlink():
        for p in samples_dir.iterdir():
            m = _STEP.match(p.name)
            if m and m.group(1) == kind and not p.is_symlink() and (best is None or int(m.group(2)) > best[1]):
                best = (p, int(m.group(2)))
    return best


def _own_text(run: Path, name: str) -> str:
    """``run/name`` as text when it is the run's own regular file (``read_own``), else ``""``."""
    data = read_own(run, run / name)
    return data.decode("utf-8", errors="replace") if data is not None else ""


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        s = ", ".join(_fmt(x) for x in v[:12])
        return f"[{s}{', …' if len(v) > 12 else ''}]"
    return str(v)


_PROTOCOL = ("step", "backbone", "backbone_test_acc", "backbone_weights", "n_real", "n_fake", "split", "n",
             "n_train", "n_test", "seconds")


def _eval_table(results: dict[str, Any]) -> str:
    rows = ["<table><tr><th>metric</th><th>value(s)</th><th>protocol</th></tr>"]
    for name, r in results.items():
        if not isinstance(r, dict):
            r = {"value": r}
        if "skipped" in r:
            rows.append(f"<tr><td>{html.escape(name)}</td><td class='skip' colspan='2'>skipped: "
                        f"{html.escape(str(r['skipped']))}</td></tr>")
            continue
        vals = [(k, v) for k, v in r.items() if k not in _PROTOCOL]
        vals.sort(key=lambda kv: kv[0] != "value")
        prot = [(k, r[k]) for k in _PROTOCOL if k in r]
        vtxt = "<br>".join(f"<b>{html.escape(_fmt(v))}</b>" if k == "value" else
                           f"{html.escape(k)}: {html.escape(_fmt(v))}" for k, v in vals)
        ptxt = ", ".join(f"{html.escape(k)}={html.escape(_fmt(v))}" for k, v in prot)
        rows.append(f"<tr><td>{html.escape(name)}</td><td class='num'>{vtxt}</td><td>{ptxt}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def render_report(run_dir: str | os.PathLike, figures: dict[str, Any] | None = None) -> str:
    """The report's HTML text for ``run_dir`` (plus ``figures``: name -> Figure or image array,
    or a method's ``Grid``/``Plot``, drawn here)."""
    run = Path(run_dir)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>genae report — "
             f"{html.escape(run.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(run.name)}</h1>"]
    cfg_text = _own_text(run, "config.yaml")
    if cfg_text:
        try:
            cfg = parse_yaml(cfg_text, run / "config.yaml") or {}  # bounded: an alias bomb is refused
            data = cfg.get("data", {}) or {}
            parts.append(f"<p class='sub'>method <b>{html.escape(str(cfg.get('method', '?')))}</b> "
                         f"on <b>{html.escape(str(data.get('name', '?')))}</b></p>")
        except (GenaeError, AttributeError):  # a malformed config (or not a mapping) still gets a report
            pass

    info = read_run_info(run) if is_own(run, run / "run.json") else {}
    if info:
        params = ", ".join(f"{html.escape(k)} {v:,}" for k, v in info.get("parameters", {}).items())
        meta = [("genae", info.get("genae")), ("torch", info.get("torch")), ("python", info.get("python")),
                ("git commit", (info.get("git_commit") or "—")[:12]), ("device", info.get("device")),
                ("steps", info.get("step")), ("wall time", f"{info.get('wall_seconds', 0):.1f} s"),
                ("parameters per player", params or "—"),
                ("parameters in all", f"{info.get('total_parameters', 0):,}")]
        cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{v if k == 'parameters per player' else html.escape(str(v))}"
                        f"</td></tr>" for k, v in meta)
        parts += ["<h2>Run</h2>", f"<table>{cells}</table>"]
    imgs = []
    captions = {"samples": "samples from the model: each cell one draw; a row per class where the method "
                           "samples by class",
                "recon": "reconstructions: columns alternate input | reconstruction, 8 pairs a row "
                         "(the first test images, the same at every step)"}
    for kind, title in (("samples", "samples"), ("recon", "reconstructions")):
        found = _latest(run / "samples", kind)
        png = read_own(run, found[0]) if found else None
        if png is not None:
            imgs.append(f"<figure><img src='{_png_data_uri(png)}' alt='{title}'>"
                        f"<figcaption>{title} at step {found[1]} — {captions[kind]}</figcaption></figure>")
    if imgs:
        parts += ["<h2>Samples and reconstructions</h2>", *imgs]
    curves = read_own(run, run / "loss_curves.png")
    if curves is not None:
        parts += ["<h2>Loss curves</h2>", f"<figure><img src='{_png_data_uri(curves)}' "
                  "alt='loss curves'><figcaption>one panel per player: each logged term (mean over the log "
                  "interval) against the training step</figcaption></figure>"]
    eval_text = _own_text(run, "eval.json")
    if eval_text:
        try:
            results = parse_json(eval_text, None, run / "eval.json")
            if isinstance(results, dict) and "metrics" not in results:  # written before eval.json had a header
                results = {"metrics": results}
            check(results, EVAL_RECORD, run / "eval.json")
            # every number with the checkpoint step it was computed on (files written before
            # entries carried their own step give the file's)
            metrics = {k: ({"step": results.get("step"), **v} if isinstance(v, dict) else v)
                       for k, v in results["metrics"].items()}
            parts += ["<h2>Evaluation (eval.json)</h2>", "<p class='sub'>each number with the checkpoint step it "
                      "was computed on and its protocol (backbone, sample counts, reference split)</p>",
                      _eval_table(metrics)]
        except RunFileError as e:
            parts += ["<h2>Evaluation</h2>", f"<p class='skip'>eval.json unreadable: {html.escape(str(e))}</p>"]
    if figures:
        parts.append("<h2>Method figures</h2>")
        for name, fig in figures.items():
            try:
                uri = _png_data_uri(_figure_png(draw(fig)))
                parts.append(f"<figure><img src='{uri}' alt='{html.escape(name)}'>"
                             f"<figcaption>{html.escape(name)}</figcaption></figure>")
            except Exception as e:  # one bad figure must not lose the report
                parts.append(f"<p class='skip'>{html.escape(name)}: could not render ({html.escape(str(e))})</p>")
    rows = read_metrics(run / "metrics.jsonl") if is_own(run, run / "metrics.jsonl") else []
    if rows and rows[-1]:
        last = rows[-1]
        cells = "".join(f"<tr><td>{html.escape(k)}</td><td class='num'>{html.escape(_fmt(v))}</td></tr>"
                        for k, v in last.items())
        parts += ["<h2>Last logged values</h2>", f"<table>{cells}</table>"]
    if cfg_text:
        parts += ["<h2>Config</h2>", f"<pre>{html.escape(cfg_text)}</pre>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure_batch(run: Path, method: Any, n: int = 500):
    """The first ``n`` test examples of the run's dataset in the method's input range, sorted by
    label (so class blocks line up in heatmaps); ``(x, y)`` with ``y`` None when unlabelled."""
    cfg, _ = run_config(run)
    test = load_dataset(cfg.data, "test")
    x, y = test.x[:n], test.y[:n] if test.y is not None else None
    if y is not None:
        order = torch.argsort(y, stable=True)
        x, y = x[order], y[order].to(method.device)
    return to_range(x.to(method.device), method.input_range), y


def write_report(run_dir: str | os.PathLike, method: Any = None, figures: dict[str, Any] | None = None) -> Path:
    """Write ``run_dir/report.html`` and return its path.

    Figures come from ``figures`` if given, else from ``method.figures(x, y)`` on the first 500 test
    examples sorted by label (``method`` loaded with
    ``genae.runs.load_run`` when None and the run has a checkpoint; a run without one still gets
    a report, without method figures).
    """
    run = Path(run_dir)
    if figures is None:
        if method is None:
            try:
                method = load_run(run)
            except Exception:
                method = None
        figures = {}
        if method is not None and method.supports("figures"):
            try:
                with torch.no_grad():
                    figures = dict(method.figures(*_figure_batch(run, method)))
            except Exception as e:
                figures = {}
                print(f"[genae report] method figures skipped: {e}", file=sys.stderr)
    text = render_report(run, figures)
    out = run / "report.html"
    # mode 0o666 less the umask, as any new file (a report is meant to be shared); a link at its
    # name is replaced, never written through
    atomic_write(out, text.encode("utf-8"), root=run)
    return out
