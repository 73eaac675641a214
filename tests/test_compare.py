"""`genae compare`: grouping, mean ± std over seeds and protocol marks against hand-computed values,
on run directories written by hand (config.yaml + eval.json, no training), and once end to end."""
from __future__ import annotations

import csv
import html
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from genae.compare import compare, csv_text, format_mean_std, format_table, runs_csv_text
from genae.errors import GenaeError
from genae.viz.compare_page import plot_figures, render_page, write_outputs
from genae.viz.grids import save_png

INFO = {"shape": [1, 28, 28], "num_classes": 10, "kind": "image"}
DOMAIN = {"backbone": "domain", "backbone_weights": "ab" * 32, "backbone_test_acc": 0.98,
          "n_real": 10000, "n_fake": 10000, "split": "test"}
RECON = {"n": 10000, "split": "test", "scale": "[0,1] pixels"}


def make_run(path: Path, method: str = "vae", seed: int = 0, model: dict | None = None,
             train: dict | None = None, data: dict | None = None, metrics: dict | None = None,
             step: int = 400) -> Path:
    """A run directory as `genae train` + `genae eval` leave it (only what compare reads);
    ``metrics``: name -> entry (a number is short for {"value": number}); None: no eval.json."""
    path.mkdir(parents=True)
    cfg = {"method": method, "model": {"latent_dim": 4, "hidden": 32, **(model or {})},
           "train": {"steps": step, "seed": seed, "device": "cpu", "out_dir": str(path), **(train or {})},
           "data": {"name": "fake", "seed": 0, **(data or {})}, "data_info": INFO}
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if metrics is not None:
        entries = {k: ({"value": v} if isinstance(v, (int, float)) else dict(v)) for k, v in metrics.items()}
        entries = {k: {**v, "step": v.get("step", step)} for k, v in entries.items()}
        (path / "eval.json").write_text(json.dumps({"run": str(path), "method": method, "data": "fake",
                                                    "step": step, "metrics": entries}))
    return path


def fid(v, **proto):
    return {"value": v, **DOMAIN, **proto}


def recon(v, **proto):
    return {"value": v, "sse_per_example": 100 * v, **RECON, **proto}


# hand-picked numbers: (method, latent_dim) -> per seed 0, 1, 2
FIDS = {("vae", 4): [10.0, 12.0, 14.0], ("vae", 8): [20.0, 21.0, 25.0],
        ("ae", 4): [30.0, 33.0, 39.0], ("ae", 8): [5.5, 6.5, 7.0]}
MSES = {("vae", 4): [0.1, 0.2, 0.4], ("vae", 8): [0.05, 0.05, 0.08],
        ("ae", 4): [0.01, 0.02, 0.03], ("ae", 8): [0.3, 0.3, 0.3]}


@pytest.fixture
def grid(tmp_path):
    """2 methods × latent_dim 4, 8 × seeds 0, 1, 2; the methods' fixed hidden widths differ (a
    recipe, not a sweep) and one run trained on another device (never a sweep)."""
    runs = []
    for (method, m), fids in FIDS.items():
        for seed, (f, e) in enumerate(zip(fids, MSES[(method, m)])):
            runs.append(make_run(tmp_path / f"{method}-m{m}-s{seed}", method, seed,
                                 model={"latent_dim": m, "hidden": 32 if method == "vae" else 64},
                                 train={"device": "cuda" if seed == 2 else "cpu"},
                                 metrics={"fid": fid(f), "recon-mse": recon(e)}))
    return runs


def test_mean_std_and_grouping_against_hand_computed_values(grid):
    cmp = compare(grid)
    assert cmp.swept == ["model.latent_dim"]            # not hidden (per method), seed, device, out_dir
    assert cmp.columns == ["fid", "recon-mse"]
    assert [(g.method, g.values) for g in cmp.groups] == [
        ("ae", {"model.latent_dim": 4}), ("ae", {"model.latent_dim": 8}),
        ("vae", {"model.latent_dim": 4}), ("vae", {"model.latent_dim": 8})]
    assert all(g.seeds == [0, 1, 2] for g in cmp.groups)
    # means and sample standard deviations (ddof = 1), by hand
    expected = {("vae", 4): (12.0, 2.0, 0.7 / 3, math.sqrt(((0.1 - 0.7 / 3) ** 2 + (0.2 - 0.7 / 3) ** 2
                                                             + (0.4 - 0.7 / 3) ** 2) / 2)),
                ("vae", 8): (22.0, math.sqrt((4 + 1 + 9) / 2), 0.06, math.sqrt((1e-4 + 1e-4 + 4e-4) / 2)),
                ("ae", 4): (34.0, math.sqrt((16 + 1 + 25) / 2), 0.02, 0.01),
                ("ae", 8): (19 / 3, math.sqrt(((5.5 - 19 / 3) ** 2 + (6.5 - 19 / 3) ** 2 + (7 - 19 / 3) ** 2) / 2),
                            0.3, 0.0)}
    for g in cmp.groups:
        fm, fs, em, es = expected[(g.method, g.values["model.latent_dim"])]
        assert g.cells["fid"].mean == pytest.approx(fm) and g.cells["fid"].std == pytest.approx(fs)
        assert g.cells["recon-mse"].mean == pytest.approx(em)
        assert g.cells["recon-mse"].std == pytest.approx(es, abs=1e-15)
        assert g.cells["fid"].n == 3
    # one protocol per column: marked once, in the header (after the direction); cells carry mean ± std only
    table = format_table(cmp)
    assert "fid ↓ [1]" in table and "recon-mse ↓ [2]" in table
    assert "12.0 ± 2.0" in table and "34.0 ± 4.6" in table and "0.3000 ± 0" in table and "0.23 ± 0.15" in table
    # the step evaluated is in the rows' steps column, so the marks leave it out
    assert "[1] backbone=domain, backbone_weights=abababababab, backbone_test_acc=0.98, n_real=10000, " \
           "n_fake=10000, split=test\n" in table and "step=" not in table
    assert [cmp.row_cells(g)[-1] for g in cmp.groups] == ["400"] * len(cmp.groups)


def test_format_mean_std():
    assert format_mean_std(12.3141, 0.5234) == "12.31 ± 0.52"
    assert format_mean_std(379.27, 12.0) == "379 ± 12"
    assert format_mean_std(0.04123, 0.00101) == "0.0412 ± 0.0010"
    assert format_mean_std(0.1669607, None) == "0.1670"          # one seed: the value alone
    assert format_mean_std(5.0, None) == "5"


def test_single_seed_shows_the_value_and_n_1(tmp_path):
    a = make_run(tmp_path / "a", metrics={"fid": fid(17.25)})
    b = make_run(tmp_path / "b", model={"latent_dim": 8}, metrics={"fid": fid(9.5)})
    cmp = compare([a, b])
    cell = cmp.groups[0].cells["fid"]
    assert (cell.mean, cell.std, cell.n) == (17.25, None, 1)
    lines = format_table(cmp).splitlines()
    # method, latent_dim, seeds (a count), steps, fid
    assert lines[2].split() == ["vae", "4", "1", "400", "17.25"] and lines[3].split()[-1] == "9.500"


def test_different_protocols_are_never_averaged_nor_share_a_column_unmarked(tmp_path):
    runs = [
        # one group whose seeds disagree on n_fake: refused
        make_run(tmp_path / "mix0", seed=0, metrics={"fid": fid(10.0)}),
        make_run(tmp_path / "mix1", seed=1, metrics={"fid": fid(30.0, n_fake=2000)}),
        # a consistent group with fewer reference images: its own mark (another backbone would be
        # another column: test_backbone_digests_never_share_a_column)
        *[make_run(tmp_path / f"inc{s}", seed=s, model={"latent_dim": 8}, metrics={"fid": fid(v, n_real=5000)})
          for s, v in ((0, 40.0), (1, 44.0))],
        # the same backbone as mix0, evaluated at another checkpoint step
        make_run(tmp_path / "late", model={"latent_dim": 16}, step=800, metrics={"fid": fid(8.0)}),
    ]
    cmp = compare(runs)
    mixed, inception, late = cmp.groups
    assert mixed.cells["fid"].mixed and mixed.cells["fid"].mean is None and mixed.cells["fid"].std is None
    assert inception.cells["fid"].mean == pytest.approx(42.0)
    assert inception.cells["fid"].std == pytest.approx(math.sqrt(8))
    assert cmp.header("fid") == "fid ↓"                           # several protocols: no header mark
    assert len(cmp.protocols) == 4
    tags = {p: cmp.tag(p) for p in cmp.protocols}
    assert cmp.cell_text(mixed, "fid") == f"mixed [{tags[mixed.cells['fid'].protocols[0]]},"\
                                          f"{tags[mixed.cells['fid'].protocols[1]]}]"
    assert cmp.cell_text(inception, "fid") == f"42.0 ± 2.8 [{tags[inception.cells['fid'].protocol]}]"
    assert cmp.cell_text(late, "fid") == f"8 [{tags[late.cells['fid'].protocol]}]"
    assert "step=800" in cmp.footnotes()[tags[late.cells["fid"].protocol] - 1]
    table = format_table(cmp)
    assert "20.0" not in table and "20 " not in table             # (10 + 30) / 2 is never shown
    assert any("fid not averaged" in n and "mix0 (seed 0)" in n and "mix1 (seed 1)" in n for n in cmp.notes)
    rows = list(csv.DictReader(io.StringIO(csv_text(cmp))))
    assert rows[0]["fid"] == "" and rows[0]["fid protocol"].startswith("mixed: ")
    assert "n_fake=2000" in rows[0]["fid protocol"] and float(rows[1]["fid"]) == pytest.approx(42.0)
    # the plots split series by protocol too: the mixed group's seeds are two series
    fig = plot_figures(cmp)["model.latent_dim"]
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert len(labels) == 4 and all("[" in lab for lab in labels)


def test_missing_metrics_show_a_dash_never_zero(tmp_path):
    a0 = make_run(tmp_path / "a0", seed=0, metrics={"fid": fid(10.0), "recon-mse": recon(0.2),
                                                    "mig": {"skipped": "needs ground-truth factors"}})
    a1 = make_run(tmp_path / "a1", seed=1, metrics={"fid": fid(14.0)})          # no recon-mse
    b = make_run(tmp_path / "b", model={"latent_dim": 8}, metrics=None)          # never evaluated
    cmp = compare([a0, a1, b])
    assert cmp.columns == ["fid", "recon-mse", "mig"]
    a, bg = cmp.groups
    assert cmp.cell_text(a, "recon-mse") == "0.2000 (n=1)"
    assert cmp.cell_text(a, "mig") == "—" and cmp.cell_text(bg, "fid") == "—"
    assert bg.cells["fid"].mean is None
    assert any("no eval.json" in n for n in cmp.notes) and any(n.startswith("mig:") for n in cmp.notes)
    row = format_table(cmp).splitlines()[3].split()
    assert row[:4] == ["vae", "8", "1", "400"] and row[4:] == ["—", "—", "—"]
    rows = list(csv.DictReader(io.StringIO(csv_text(cmp))))
    assert rows[1]["fid"] == "" and rows[1]["fid n"] == "0"
    page = render_page(cmp, pngs={})
    assert "title='seed 0: skipped: needs ground-truth factors; seed 1: not evaluated'>—<" in page


def test_fields_ignore_and_errors(tmp_path):
    pr = {"precision": 0.75, "recall": 0.5, "k": 3, **DOMAIN}
    a = make_run(tmp_path / "a", metrics={"precision-recall": pr, "ns-acc": {"value": 0.9, "uncentered": 0.8}})
    b = make_run(tmp_path / "b", seed=1, data={"seed": 1}, metrics={"precision-recall": pr})
    cmp = compare([a, b])
    assert cmp.columns == ["precision-recall.precision", "precision-recall.recall", "ns-acc"]
    assert cmp.swept == ["data.seed"] and len(cmp.groups) == 2
    cmp = compare([a, b], metrics=["ns-acc.uncentered", "precision-recall.recall"], ignore=["data.seed"])
    assert cmp.swept == [] and len(cmp.groups) == 1
    assert cmp.groups[0].cells["ns-acc.uncentered"].values == [0.8]
    assert cmp.groups[0].cells["precision-recall.recall"].mean == 0.5
    with pytest.raises(GenaeError, match="unknown metric fidd"):
        compare([a], metrics=["fidd"])
    with pytest.raises(GenaeError, match="no run has such a config key"):
        compare([a], ignore=["model.nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenaeError, match="neither a run"):
        compare([tmp_path / "empty"])
    with pytest.raises(GenaeError, match="does not exist"):
        compare([tmp_path / "nowhere"])


def test_sweep_directory_with_manifest(tmp_path):
    sweep = tmp_path / "sweep"
    points = []
    for m in (4, 8):
        for s in (0, 1):
            name = f"m{m}-s{s}"
            make_run(sweep / "runs" / name, seed=s, model={"latent_dim": m}, metrics={"fid": fid(m + s)})
            points.append({"name": name, "run": f"runs/{name}", "overrides": [f"model.latent_dim={m}"],
                           "seed": s, "status": "done", "message": None})
    # as genae sweep writes it: a point not started yet, and one that failed before its run existed
    points += [{"name": "m16-s0", "run": "runs/m16-s0", "overrides": ["model.latent_dim=16"], "seed": 0,
                "status": "queued", "message": None},
               {"name": "m32-s0", "run": "runs/m32-s0", "overrides": ["model.latent_dim=32"], "seed": 0,
                "status": "failed", "message": "non-finite loss at step 3"}]
    (sweep / "manifest.json").write_text(json.dumps({"format": 1, "method": "vae", "points": points}))
    lone = make_run(tmp_path / "lone", method="ae", metrics={"fid": fid(3.0)})
    cmp = compare([sweep, lone, sweep / "runs" / "m4-s0"])          # each run counted once
    assert len(cmp.runs) == 5
    assert [(g.method, g.values.get("model.latent_dim"), g.cells["fid"].mean) for g in cmp.groups] == \
        [("ae", 4, 3.0), ("vae", 4, 4.5), ("vae", 8, 8.5)]
    assert any("2 point(s) of the manifest have no run yet" in n for n in cmp.notes)
    assert any("m32-s0 failed: non-finite loss at step 3" in n for n in cmp.notes)


def test_outputs_parse_and_the_page_escapes_names(tmp_path, grid):
    evil = make_run(tmp_path / "<b onmouseover=alert(1)>&run", method="vae", seed=0,
                    model={"latent_dim": 16}, metrics={"fid": fid(50.0)})
    (evil / "samples").mkdir()
    save_png(np.zeros((8, 8, 3), np.uint8), evil / "samples" / "samples_00000400.png")
    cmp = compare(grid + [evil])
    out = tmp_path / "out"
    written = write_outputs(cmp, out)
    assert {p.name for p in written} == {"compare.md", "compare.csv", "compare_runs.csv", "compare.html",
                                         "vs_model.latent_dim.png"}
    rows = list(csv.DictReader((out / "compare.csv").open()))
    by = {(r["method"], r["model.latent_dim"]): r for r in rows}
    assert float(by[("vae", "4")]["fid"]) == pytest.approx(12.0)
    assert float(by[("vae", "4")]["fid std"]) == pytest.approx(2.0) and by[("vae", "4")]["fid n"] == "3"
    assert by[("vae", "16")]["fid std"] == "" and by[("vae", "4")]["seed values"] == "0 1 2"
    assert by[("vae", "4")]["seeds"] == "3" and by[("vae", "4")]["steps"] == "400"
    assert by[("vae", "4")]["fid better"] == "lower" and by[("vae", "4")]["data"] == "fake"
    per_run = list(csv.DictReader(io.StringIO(runs_csv_text(cmp))))
    assert len(per_run) == 12 * 2 + 1 and {r["metric"] for r in per_run} == {"fid", "recon-mse"}
    md = (out / "compare.md").read_text().splitlines()
    assert md[0] == "| method | model.latent_dim | seeds | steps | fid ↓ [1] | recon-mse ↓ [2] |"
    assert md[1] == "|---|---|---|---|---|---|" and len(md[2].split("|")) == 8
    assert "| vae | 4 | 3 | 400 | 12.0 ± 2.0 |" in md[4]
    page = (out / "compare.html").read_text()
    assert "12.0 ± 2.0" in page and "34.0 ± 4.6" in page
    assert "<b onmouseover" not in page and "&lt;b onmouseover=alert(1)&gt;&amp;run" in page
    assert page.count("data:image/png;base64,") == 2                  # the plot and one sample grid
    assert render_page(cmp, pngs={}).count("data:image/png;base64,") == 1
    # the plot: one dot per seed, the line through the means
    fig = plot_figures(cmp)["model.latent_dim"]
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert list(lines["vae (mean)"].get_xdata()) == [4, 8, 16]
    assert list(lines["vae (mean)"].get_ydata()) == pytest.approx([12.0, 22.0, 50.0])
    assert sum(len(c.get_offsets()) for c in ax.collections) == 13


# --------------------------------------------------------------------------------------------
# What a reader needs to read the table right: directions, seeds and steps, one quantity per
# column, one dataset per table, plots whose labels can be read
# --------------------------------------------------------------------------------------------
KNN = {"k": 5, "n_train": 1000, "n_test": 100, "split": "test"}


def active(v, how):
    return {"value": v, "dim": 16, "method": how, "split": "test"}


def test_every_metric_says_which_way_is_better():
    """The direction is data beside each metric's description, checked against what each one
    measures; spreads, counts and reference values carry none."""
    from genae.metrics import METRICS

    for name, spec in METRICS.items():
        directions = spec.better.values() if isinstance(spec.better, dict) else [spec.better]
        assert set(directions) <= {"higher", "lower", None}, name
        assert set(spec.measure) <= set(spec.protocol), name  # a measure is part of the protocol
    expected = {("fid", "value"): "lower", ("kid", "value"): "lower", ("kid", "std"): None,
                ("is", "value"): "higher", ("precision-recall", "precision"): "higher",
                ("precision-recall", "recall"): "higher", ("recon-mse", "value"): "lower",
                ("sharpness", "value"): "higher", ("sharpness", "real"): None, ("knn-acc", "value"): "higher",
                ("cluster-acc", "value"): "higher", ("mig", "value"): "higher", ("tc", "value"): "lower",
                ("active-dims", "value"): None, ("feature-rank", "value"): None,
                ("recon-class-acc", "absolute"): "higher", ("recon-class-acc", "classifier_on_originals"): None}
    assert {k: METRICS[k[0]].direction(k[1]) for k in expected} == expected


def test_headers_and_legend_give_each_columns_direction_and_meaning(tmp_path):
    pr = {"precision": 0.75, "recall": 0.5, "k": 3, **DOMAIN}
    kid = {"value": 0.01, "std": 0.002, **DOMAIN}
    run = make_run(tmp_path / "a", metrics={"fid": fid(10.0), "kid": kid, "precision-recall": pr,
                                            "knn-acc": {"value": 0.9, **KNN}, "active-dims": active(5, "mask")})
    cmp = compare([run], metrics=["fid", "kid", "kid.std", "precision-recall", "knn-acc", "active-dims"])
    titles = {"fid": "fid ↓", "kid": "kid ↓", "kid.std": "kid.std", "precision-recall.precision":
              "precision-recall.precision ↑", "precision-recall.recall": "precision-recall.recall ↑",
              "knn-acc": "knn-acc ↑", "active-dims": "active-dims"}
    assert {c: cmp.title(c) for c in cmp.columns} == titles
    table, md = format_table(cmp), format_table(cmp, markdown=True)
    page = render_page(cmp, pngs={})
    for col, title in titles.items():
        assert f"{title} [" in table.splitlines()[0] and f"{title} [" in md.splitlines()[0]
        # the legend under the table: direction and meaning, for every column shown
        better = {"↓": "lower is better", "↑": "higher is better"}.get(title[-1], "no better direction")
        legend = [ln for ln in table.splitlines() if ln.startswith(f"{title}: ")]
        assert len(legend) == 1 and better in legend[0], col
        assert f"- {legend[0]}" in md and f"<li>{html.escape(legend[0])}</li>" in page
    assert "Fréchet distance" in table and "k-NN (k=5) accuracy" in table
    assert any(ln.startswith("seeds: ") for ln in table.splitlines())
    row = next(csv.DictReader(io.StringIO(csv_text(cmp))))
    assert (row["fid better"], row["knn-acc better"], row["kid.std better"]) == ("lower", "higher", "")
    per_run = {r["metric"]: r["better"] for r in csv.DictReader(io.StringIO(runs_csv_text(cmp)))}
    assert per_run["precision-recall.recall"] == "higher" and per_run["active-dims"] == ""


def test_rows_count_seeds_and_name_their_training_length(tmp_path):
    """The demo's case: each method trains its own number of steps (``--ignore train.steps``)."""
    runs = [make_run(tmp_path / f"vae{s}", "vae", s, step=6000, metrics={"fid": fid(10.0 + s)}) for s in range(3)]
    runs.append(make_run(tmp_path / "maskaae", "maskaae", 0, step=2400, metrics={"fid": fid(9.0)}))
    # a group whose runs stopped at different steps (train.steps 3000 each; one evaluated at 2000)
    runs += [make_run(tmp_path / f"aae{s}", "aae", s, train={"steps": 3000}, step=st, metrics={"recon-mse": recon(0.1)})
             for s, st in ((0, 2000), (1, 3000))]
    cmp = compare(runs, ignore=["train.steps"])
    lines = format_table(cmp).splitlines()
    assert lines[0].split()[:3] == ["method", "seeds", "steps"]
    assert [ln.split()[:3] for ln in lines[2:5]] == [["aae", "2", "2000–3000"], ["maskaae", "1", "2400"],
                                                     ["vae", "3", "6000"]]
    page = render_page(cmp, pngs={})
    assert "<td title='seeds 0, 1, 2'>3</td><td>6000</td>" in page     # the count, its seeds on hover
    # a swept train.steps is a row label already: no second column for it
    swept = compare(runs[:4])
    assert "train.steps" in swept.swept and "steps" not in format_table(swept).splitlines()[0].split()


def test_active_dims_measured_differently_are_separate_columns(tmp_path):
    """mask, KL > 0.01 nats and feature rank are three quantities: never one column."""
    runs = [make_run(tmp_path / "vae", "vae", metrics={"active-dims": active(10, "KL > 0.01 nats")}),
            make_run(tmp_path / "aae", "aae", metrics={"active-dims": active(8, "feature rank")}),
            make_run(tmp_path / "aae1", "aae", seed=1, metrics={"active-dims": active(6, "feature rank")}),
            make_run(tmp_path / "maskaae", "maskaae", metrics={"active-dims": active(9, "mask")})]
    cmp = compare(runs)
    assert cmp.columns == ["active-dims (KL > 0.01 nats)", "active-dims (feature rank)", "active-dims (mask)"]
    aae, maskaae, vae = cmp.groups
    assert [g.cells["active-dims (feature rank)"].values for g in (aae, maskaae, vae)] == [[8.0, 6.0], [], []]
    assert vae.cells["active-dims (KL > 0.01 nats)"].mean == 10 and maskaae.cells["active-dims (mask)"].mean == 9
    assert cmp.cell_text(vae, "active-dims (mask)") == "—"
    table = format_table(cmp)
    assert "measured as KL > 0.01 nats" in table and "active-dims [" not in table   # no merged column
    page = render_page(cmp, pngs={})
    assert "title='seed 0: measured as KL &gt; 0.01 nats'>—<" in page  # why vae has no mask count
    per_run = list(csv.DictReader(io.StringIO(runs_csv_text(cmp))))
    assert {(r["run"], r["metric"]) for r in per_run} == {
        ("vae", "active-dims (KL > 0.01 nats)"), ("aae", "active-dims (feature rank)"),
        ("aae1", "active-dims (feature rank)"), ("maskaae", "active-dims (mask)")}
    # one measurement: one column, the measurement in its footnote
    one = compare(runs[1:3])
    assert one.columns == ["active-dims"] and "method=feature rank" in one.footnotes()[0]


def test_backbone_digests_never_share_a_column(tmp_path):
    """FIDs under two feature networks (weights digests) are two quantities, even in one group."""
    runs = [make_run(tmp_path / "s0", seed=0, metrics={"fid": fid(10.0)}),
            make_run(tmp_path / "s1", seed=1, metrics={"fid": fid(30.0, backbone_weights="cd" * 32)}),
            make_run(tmp_path / "s2", seed=2, metrics={"fid": fid(12.0)})]
    cmp = compare(runs)
    assert cmp.columns == ["fid (domain abababababab)", "fid (domain cdcdcdcdcdcd)"]
    (g,) = cmp.groups
    assert g.cells["fid (domain abababababab)"].values == [10.0, 12.0]
    assert g.cells["fid (domain cdcdcdcdcdcd)"].values == [30.0]
    table = format_table(cmp)
    assert "11.0 ± 1.4 (n=2)" in table and "30 (n=1)" in table
    assert "17.33" not in table and "mixed" not in table               # (10 + 30 + 12) / 3 is never shown
    assert "fid (domain abababababab) ↓ [1]" in table


def write_data_record(run: Path, digests: dict[str, str], root: str = "/data") -> None:
    """RUN/data.json as the trainer writes it: per split, its source and its files' SHA-256."""
    record = {split: {"source": root, "files": {f"{root}/{split}-images.idx": sha}} for split, sha in digests.items()}
    (run / "data.json").write_text(json.dumps(record))


def test_runs_on_different_data_are_separate_tables(tmp_path):
    mnist = [make_run(tmp_path / f"m{s}", seed=s, data={"name": "mnist"}, metrics={"recon-mse": recon(0.01 * (s + 1))})
             for s in range(2)]
    fashion = make_run(tmp_path / "f0", data={"name": "fashion-mnist"}, metrics={"recon-mse": recon(0.5)})
    for r in mnist:  # the same files, found at another path: the same data
        write_data_record(r, {"train": "a" * 64, "test": "b" * 64}, root=f"/data/{r.name}")
    # mnist again, but other files (a changed download): never averaged with the first two
    changed = make_run(tmp_path / "m9", seed=9, data={"name": "mnist"}, metrics={"recon-mse": recon(0.9)})
    write_data_record(changed, {"train": "c" * 64, "test": "b" * 64})
    cmp = compare([*mnist, fashion, changed])
    assert [s.title for s in cmp.sections][0] == "fashion-mnist"
    titles = {s.title: [[r.name for r in g.runs] for g in s.groups] for s in cmp.sections}
    assert sorted(titles.values()) == [[["f0"]], [["m0", "m1"]], [["m9"]]] and len(cmp.groups) == 3
    assert "data.name" not in cmp.swept
    assert all(t.startswith("mnist (files ") for t in list(titles)[1:])
    (pair,) = [g for g in cmp.groups if len(g.runs) == 2]
    assert pair.cells["recon-mse"].mean == pytest.approx(0.015)
    table = format_table(cmp)
    assert "data: fashion-mnist" in table and table.count("data: mnist (files ") == 2
    assert any("2 different sets of files" in n for n in cmp.notes)
    page = render_page(cmp, pngs={})
    assert page.count("<h3>data: ") == 3 and "one table per dataset" in page
    assert {r["data"] for r in csv.DictReader(io.StringIO(csv_text(cmp)))} == set(titles)
    with pytest.raises(GenaeError, match="never averaged together"):
        compare([*mnist, fashion], ignore=["data.name"])


def test_tick_labels_never_overlap():
    """Many long labels: upright, then thinned until no two tick labels' boxes intersect."""
    from matplotlib.figure import Figure

    from genae.viz.plots import separate_tick_labels

    def boxes(ax):
        return [t.get_window_extent() for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]

    def overlapping(ax):
        bs = boxes(ax)
        return any(a.overlaps(b) for i, a in enumerate(bs) for b in bs[i + 1:])

    fig = Figure(figsize=(4.4, 3), layout="constrained")
    wide, crowded = fig.subplots(1, 2)
    xs = list(range(40))
    wide.plot(xs, xs)
    wide.set_xticks(xs, [f"a long categorical value {i}" for i in xs])
    crowded.plot(range(1, 13), range(12))
    crowded.set_xscale("log")                                           # 9, 10, 11, 12 crowd at the right
    crowded.set_xticks(range(1, 13), [f"{x:.6f}" for x in range(1, 13)])
    fig.draw_without_rendering()
    assert overlapping(wide) and overlapping(crowded)                   # what the fix is for
    separate_tick_labels(fig)
    fig.draw_without_rendering()
    assert not overlapping(wide) and not overlapping(crowded)
    assert len(boxes(wide)) > 1 and boxes(crowded)                      # thinned, not emptied


def test_compare_plot_tick_labels_do_not_overlap(tmp_path):
    """Twelve swept values with long labels on a log axis, as plot_figures draws them."""
    lrs = [1.23456e-5 * 1.9 ** i for i in range(12)]
    runs = [make_run(tmp_path / f"lr{i}", model={"lr": lr}, metrics={"fid": fid(10.0 + i)}) for i, lr in enumerate(lrs)]
    fig = plot_figures(compare(runs))["model.lr"]
    fig.draw_without_rendering()
    ax = fig.axes[0]
    shown = [t.get_window_extent() for minor in (False, True) for t in ax.get_xticklabels(minor=minor)
             if t.get_visible() and t.get_text()]
    assert shown and not any(a.overlaps(b) for i, a in enumerate(shown) for b in shown[i + 1:])
    assert ax.get_xticklabels()[0].get_rotation() == 90               # they did collide, flat


def test_cli_end_to_end_on_two_tiny_runs(tmp_path):
    from conftest import fast_train_overrides, tiny_overrides
    from test_cli import _sets, genae

    runs = []
    for m in (2, 4):
        run = tmp_path / f"vae-m{m}"
        genae("train", "vae", "--data", "fake", "--out", run,
              *_sets(tiny_overrides("vae") + fast_train_overrides(4) + [f"model.latent_dim={m}"]))
        genae("eval", run, "--metrics", "recon-mse", "--n-samples", 32)
        runs.append(run)
    out = tmp_path / "cmp"
    proc = genae("compare", *runs, "--out", out)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["method", "model.latent_dim", "seeds", "steps", "recon-mse", "↓", "[1]"]
    assert [ln.split()[:4] for ln in lines[2:4]] == [["vae", "2", "1", "4"], ["vae", "4", "1", "4"]]
    values = [json.loads((r / "eval.json").read_text())["metrics"]["recon-mse"]["value"] for r in runs]
    got = [float(r["recon-mse"]) for r in csv.DictReader((out / "compare.csv").open())]
    assert got == values
    assert "step=" not in proc.stdout and "compare.html" in proc.stderr   # the steps column says it
    page = (out / "compare.html").read_text()
    assert page.count("data:image/png;base64,") == 1 + 2 * 2          # plot + samples/recon per group
    assert (out / "vs_model.latent_dim.png").stat().st_size > 0
    md = genae("compare", runs[0], "--markdown").stdout
    assert md.startswith("| method | seeds | steps | recon-mse ↓ [1] |")
    bad = genae("compare", tmp_path / "nowhere", check=False)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
