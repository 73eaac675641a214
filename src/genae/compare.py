"""``genae compare``: one table of evaluated metrics over many runs, grouped by method and swept
values, mean ± std over seeds, every number with the protocol it was computed under.

Inputs are run directories (``config.yaml`` + ``eval.json``) and folders of runs: a sweep
(``SWEEP/manifest.json`` listing its points' run directories, and/or ``SWEEP/runs/*/``) or any
folder whose sub-folders are runs (``runs/``).

Grouping
    A run's config is flattened to ``ns.key`` entries (``model.latent_dim``, ``train.steps``...).
    A key is *swept* when it takes two or more values among the runs of one method, or, for the
    shared ``train.*``/``data.*`` namespaces, among any runs. Keys that never change what is
    learned (``IGNORED_KEYS``: the seed, paths, devices, logging and progress settings) and the
    ``--ignore`` keys are never swept. Runs with the same method and the same values of every swept
    key form one group (a row); ``train.seed`` is what varies inside a group. ``model.*`` keys that
    differ only between methods are part of each method's recipe, not a sweep. Each row says how
    many seeds it holds and, unless ``train.steps`` is swept, how long its runs trained (``steps``:
    the step of the checkpoint evaluated, ``a–b`` where its runs differ), since methods compared
    at their own budgets (``--ignore train.steps``, as ``genae demo`` does) differ in it.

Datasets
    Runs on different data are never in one table: there is one table (section) per ``data.name``,
    and, where runs of one name were trained on different files (the SHA-256s that
    ``RUN/data.json`` records; paths do not count), one per set of files, titled with a digest of
    them. A run without that record joins the only set its name has, with a note; where there are
    several it gets a table of its own. Generated data (``fake``, ``synthetic``) has no files:
    its ``data.*`` keys are swept keys like any other, and ``data.name`` never is one (it cannot
    be ``--ignore``d either).

Cells
    A column is one number of one metric: ``fid`` (the entry's ``value``), or ``metric.field`` for
    metrics without a headline value (``precision-recall.recall``) or when asked for by name. A
    cell is the mean ± sample standard deviation (ddof = 1) over the group's runs that evaluated
    the metric; a single run shows its value (n = 1, no ±); ``(n=k)`` is appended when fewer runs
    than the group's have the number. A metric a run never evaluated (or that was skipped as not
    applicable) is "—", never 0. Non-finite values are left out of the mean and counted.
    A header carries the metric's direction (``fid ↓``: lower is better, ``knn-acc ↑``: higher;
    none for counts such as ``active-dims`` and spreads such as ``kid.std``: ``METRICS[name].better``)
    and a legend under the table says what each column measures.

Measures
    Some protocol fields name *what* a number measures rather than how precisely
    (``METRICS[name].measure``): the feature backbone and its weights' digest for FID, KID, IS and
    precision/recall (features of another network are another quantity), the criterion of
    ``active-dims`` (``method``: mask, KL > 0.01 nats, feature rank), the codes of ``mig`` and
    ``qmm-score``, the cluster assignments of ``cluster-acc``/``nmi``... A column whose runs differ
    in them is split into one column per value, ``active-dims (mask)``, ``active-dims (feature
    rank)``, ``fid (domain 1a2b3c4d5e6f)``, so that two measurements never read as one quantity.

Protocols
    A cell's protocol is the values its ``eval.json`` entry holds of the metric's protocol
    fields (``METRICS[name].protocol``, as ``genae metrics`` lists them: backbone and its weights,
    n_real/n_fake or n, split...) and of ``step``, the checkpoint evaluated. Within one column
    (measure), protocols differ in sample counts, split or step. Protocols are
    numbered [1], [2]... in footnotes; while the rows show their training steps in a column of
    their own, the marks leave the step out (the column says it). Numbers of different protocols
    are never averaged and never share a column unmarked:

    - a column whose cells all share one protocol carries its mark in the header (``fid [1]``);
    - otherwise every cell carries its own mark (``12.3 ± 0.4 [2]``);
    - a group whose runs disagree on the protocol of a metric is refused for that cell: it shows
      ``mixed [1,2]`` and no number, with a note saying which seeds used which protocol.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import GenaeError, RunFileError
from .config import flatten_config
from .runs import CONFIG, DATA_RECORD, read_config, read_eval_record

__all__ = ["Comparison", "Group", "Cell", "RunRecord", "Section", "compare", "collect_runs", "format_table",
           "csv_text", "runs_csv_text", "format_value", "IGNORED_KEYS",
           "protocol_fields", "measure_fields"]

SEED_KEY = "train.seed"
STEPS_KEY = "train.steps"
DATA_KEY = "data.name"
ARROWS = {"higher": "↑", "lower": "↓"}
# Config keys that never change what a run learns or how it is measured; they differ between runs
# of one experiment (paths, devices, logging) and must not split groups.
IGNORED_KEYS = frozenset({
    SEED_KEY, "train.out_dir", "train.device", "train.threads", "train.log_every", "train.sample_every",
    "train.ckpt_every", "train.keep_ckpts", "train.n_samples", "train.progress", "train.tensorboard",
    "train.nan_check", "train.init_from", "train.networks", "train.loggers", "data.root", "data.download",
})
MISSING = "—"


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
@dataclass
class RunRecord:
    """One run directory as read: ``config`` is the flat config (``ns.key`` -> value, without
    ``method`` and ``data_info``); ``metrics`` the ``eval.json`` entries, each with its ``step``;
    ``data_digest``: a digest of the data files it was trained on (None: none recorded)."""

    path: Path
    name: str
    method: str
    seed: Any
    config: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    eval_step: int | None = None
    data_digest: str | None = None

    @property
    def data(self) -> str:
        return str(self.config.get(DATA_KEY, "?"))

    @property
    def steps(self) -> int | None:
        """The step of the checkpoint evaluated; ``train.steps`` for a run not evaluated."""
        return self.eval_step if self.eval_step is not None else self.config.get(STEPS_KEY)

    def number(self, column: str) -> tuple[float | None, tuple | None]:
        """``(value, protocol)`` of ``column`` (``metric`` or ``metric.field``); ``(None, None)``
        when the run has no such number (not evaluated, skipped, or not a number)."""
        metric, _, fld = column.partition(".")
        entry = self.metrics.get(metric)
        if not isinstance(entry, dict) or "skipped" in entry:
            return None, None
        v = entry.get(fld or "value")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None, None
        return float(v), protocol_of(entry, metric)

    def measure(self, column: str) -> tuple:
        """What ``column``'s number measures: ``((field, value), ...)`` of its metric's
        ``measure_fields`` that the entry holds."""
        metric = column.partition(".")[0]
        entry = self.metrics.get(metric)
        return tuple((k, _canon(entry[k])) for k in measure_fields(metric) if k in entry) \
            if isinstance(entry, dict) else ()


@dataclass
class Cell:
    """One metric of one group. ``values``/``seeds``/``names``/``run_protocols``: per run that has
    the number, in the group's run order; ``protocols``: their distinct protocols (more than one:
    refused)."""

    values: list[float] = field(default_factory=list)
    seeds: list[Any] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    protocols: list[tuple] = field(default_factory=list)
    run_protocols: list[tuple] = field(default_factory=list)

    @property
    def mixed(self) -> bool:
        return len(self.protocols) > 1

    @property
    def finite(self) -> list[float]:
        return [v for v in self.values if math.isfinite(v)]

    @property
    def n(self) -> int:
        return len(self.finite)

    @property
    def mean(self) -> float | None:
        """Mean of the finite values; None when refused (mixed protocols) or empty."""
        return statistics.fmean(self.finite) if self.finite and not self.mixed else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (ddof = 1); None with fewer than two finite values."""
        return statistics.stdev(self.finite) if self.n > 1 and not self.mixed else None

    @property
    def protocol(self) -> tuple | None:
        return self.protocols[0] if len(self.protocols) == 1 else None


@dataclass
class Group:
    """A row: one method and one value of every swept key (``values``: key -> value, absent keys
    missing), over its runs (one per seed); ``data``: its table's dataset where the comparison
    holds several (else empty)."""

    method: str
    values: dict[str, Any]
    runs: list[RunRecord]
    cells: dict[str, Cell] = field(default_factory=dict)
    data: str = ""

    @property
    def seeds(self) -> list[Any]:
        return [r.seed for r in self.runs]

    @property
    def steps_text(self) -> str:
        """How long the group's runs trained: one step, ``a–b`` where they differ, ``—`` unknown."""
        steps = [s for s in (r.steps for r in self.runs) if isinstance(s, (int, float))]
        if not steps:
            return MISSING
        lo, hi = min(steps), max(steps)
        return format_value(lo) if lo == hi else f"{format_value(lo)}–{format_value(hi)}"

    def value_text(self, key: str) -> str:
        """The group's value of swept ``key`` as shown (``—`` where its method has no such key)."""
        return format_value(self.values[key]) if key in self.values else MISSING

    def label(self, keys: Sequence[str] | None = None) -> str:
        keys = list(self.values) if keys is None else keys
        parts = [f"{k}={format_value(self.values[k])}" for k in keys if k in self.values]
        return self.method + (" " + " ".join(parts) if parts else "") + (f" on {self.data}" if self.data else "")


@dataclass
class Section:
    """One table: the groups of one dataset (``title``: its name, with a digest of its files where
    runs of one name were trained on different files) and the columns shown there (those with a
    number in it, and those with a number nowhere)."""

    title: str
    groups: list[Group]
    columns: list[str]


@dataclass
class Comparison:
    """Everything the table, CSV, plots and page are drawn from.

    ``swept``: the swept keys (row labels after the method); ``columns``: ``metric`` or
    ``metric.field``, or such a name with the measure it holds (``active-dims (mask)``: then
    ``measures`` maps it to ``(metric or metric.field, measure)``); ``protocols``: every distinct
    protocol, index i is footnote [i+1]; ``sections``: one table per dataset; ``notes``: refusals
    and warnings to print under the table."""

    runs: list[RunRecord]
    swept: list[str]
    columns: list[str]
    groups: list[Group]
    protocols: list[tuple] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    measures: dict[str, tuple[str, tuple]] = field(default_factory=dict)

    @property
    def show_steps(self) -> bool:
        """Whether rows name their training length: unless ``train.steps`` is a swept key already."""
        return STEPS_KEY not in self.swept

    def number(self, run: RunRecord, column: str) -> tuple[float | None, tuple | None]:
        """``RunRecord.number`` of ``column``, ``(None, None)`` where the run measured another
        quantity than the column holds."""
        base, measure = self.measures.get(column, (column, None))
        if measure is not None and run.measure(base) != measure:
            return None, None
        return run.number(base)

    def absence(self, run: RunRecord, column: str) -> str:
        """Why ``run`` has no number in ``column``."""
        base, measure = self.measures.get(column, (column, None))
        entry = run.metrics.get(base.partition(".")[0])
        if not isinstance(entry, dict):
            return "not evaluated"
        if "skipped" in entry:
            return f"skipped: {entry['skipped']}"
        if measure is not None and run.measure(base) != measure:
            return f"measured as {measure_text(run.measure(base))}"
        return "no such number"

    def direction(self, column: str) -> str | None:
        """"higher", "lower" or None: which way ``column`` is better (``METRICS[metric].better``)."""
        metric, _, fld = self.measures.get(column, (column, None))[0].partition(".")
        spec = _spec(metric)
        return spec.direction(fld or "value") if spec else None

    def title(self, column: str) -> str:
        """The column's name with its direction: ``fid ↓``, ``knn-acc ↑``, ``active-dims``."""
        arrow = ARROWS.get(self.direction(column))
        return f"{column} {arrow}" if arrow else column

    def meaning(self, column: str) -> str:
        """One legend line: the column, which way is better, what it measures."""
        base, measure = self.measures.get(column, (column, None))
        metric, _, fld = base.partition(".")
        renderer = metric.partition("@")[2]
        spec = _spec(metric)
        what = spec.description if spec else "not a registered metric"
        what += f"; field {fld}" if fld else ""
        what += f"; rendered by {renderer}" if renderer else ""
        what += f"; measured as {measure_text(measure)}" if measure is not None else ""
        better = self.direction(column)
        return f"{self.title(column)}: " + (f"{better} is better" if better else "no better direction") \
            + f" — {what}"

    def legend(self, columns: Sequence[str]) -> list[str]:
        """What the row columns and each of ``columns`` mean."""
        lines = ["seeds: the runs a row averages, one per seed (cells: mean ± sample std, ddof 1)"]
        if self.show_steps:
            lines.append("steps: training steps of the checkpoint evaluated (a–b: the row's runs differ)")
        return lines + [self.meaning(c) for c in columns]

    def row_head(self) -> list[str]:
        """The headers of what names a row: method, swept keys, seeds and (unless swept) steps."""
        return ["method", *self.swept, "seeds", *(["steps"] if self.show_steps else [])]

    def row_cells(self, group: Group) -> list[str]:
        return [group.method, *map(group.value_text, self.swept), str(len(group.runs)),
                *([group.steps_text] if self.show_steps else [])]

    def shown(self, protocol: tuple) -> tuple:
        """``protocol`` as the marks show it: without ``step`` while the rows show their steps in a
        column of their own (a mark per training length would only repeat that column)."""
        return tuple((k, v) for k, v in protocol if not (k == "step" and self.show_steps))

    def tag(self, protocol: tuple) -> int:
        """The footnote number of ``protocol`` (1-based; ``shown``)."""
        return self.protocols.index(self.shown(protocol)) + 1

    def column_protocols(self, column: str) -> list[tuple]:
        """The distinct protocols of a column's numbers as marked (``shown``), in table order."""
        seen: list[tuple] = []
        for g in self.groups:
            for p in map(self.shown, g.cells[column].protocols):
                if p not in seen:
                    seen.append(p)
        return seen

    def header(self, column: str) -> str:
        """The column title with its direction, and the protocol mark when the whole column shares
        one (``fid ↓ [1]``)."""
        ps = self.column_protocols(column)
        return f"{self.title(column)} [{self.tag(ps[0])}]" if len(ps) == 1 else self.title(column)

    def cell_text(self, group: Group, column: str) -> str:
        """``mean ± std`` (n ≥ 2), the value (n = 1), ``—`` (no number) or ``mixed [i,j]``, with
        the cell's protocol mark when its column holds several protocols."""
        c = group.cells[column]
        if c.mixed:
            return "mixed [" + ",".join(str(self.tag(p)) for p in c.protocols) + "]"
        if not c.values:
            return MISSING
        text = format_mean_std(c.mean, c.std) if c.n else "nan"
        extra = []
        if c.n != len(group.runs):
            extra.append(f"n={c.n}")
        if len(c.values) > c.n:
            extra.append(f"{len(c.values) - c.n} non-finite")
        if extra:
            text += f" ({', '.join(extra)})"
        if len(self.column_protocols(column)) > 1:
            text += f" [{self.tag(c.protocol)}]"
        return text

    def footnotes(self) -> list[str]:
        return [f"[{i + 1}] {protocol_text(p)}" for i, p in enumerate(self.protocols)]


# --------------------------------------------------------------------------------------------
# Reading runs
# --------------------------------------------------------------------------------------------
def collect_runs(paths: Iterable[str | Path], notes: list[str] | None = None) -> list[RunRecord]:
    """The runs named by ``paths`` (run directories, sweeps, folders of runs), each once.

    A sweep's ``manifest.json`` (``genae sweep``) lists its points' run directories
    (``points[*].run``, relative to the sweep); its ``runs/*/`` are read too, so a sweep still
    running is compared as far as it has got (points without a run, and failed ones, are noted).
    Raises ``GenaeError`` for a path that is none of these."""
    notes = notes if notes is not None else []
    dirs: list[Path] = []
    for p in map(Path, paths):
        if (p / CONFIG).is_file():
            dirs.append(p)
            continue
        if not p.is_dir():
            raise GenaeError(f"{p} does not exist" if not p.exists() else f"{p} is a file, not a run "
                             "or sweep directory")
        found = _manifest_runs(p, notes) + sorted(q.parent for q in (p / "runs").glob(f"*/{CONFIG}"))
        found += sorted(q.parent for q in p.glob(f"*/{CONFIG}"))
        if not found:
            raise GenaeError(f"{p} is neither a run ({CONFIG} missing) nor a sweep or folder of runs "
                             f"(no {p}/runs/*/{CONFIG} or {p}/*/{CONFIG})")
        dirs += found
    unique: dict[Path, Path] = {}
    for d in dirs:
        unique.setdefault(d.resolve(), d)
    runs = [_read_run(d, notes) for d in unique.values()]
    names = [r.path.name for r in runs]
    for r in runs:  # two sweeps' runs may share a point name: then say which sweep
        if names.count(r.path.name) > 1:
            holder = r.path.parent.parent if r.path.parent.name == "runs" else r.path.parent
            r.name = f"{holder.name}/{r.path.name}"
    return runs


def _manifest_runs(sweep: Path, notes: list[str]) -> list[Path]:
    from .schema import ANY, Record, Seq, Str, read_json

    # only what compare reads of each point: its run folder, and its name, status and message
    # for the notes (a manifest of an older genae, or one written by hand, carries no more;
    # ``genae sweep`` checks the whole file, ``schema.SWEEP_MANIFEST``)
    spec = Record({"points": Seq(Record({"run": Str(), "name": Str(), "status": Str(), "message": ANY},
                                        optional=("name", "status", "message")))})
    path = sweep / "manifest.json"
    if not path.is_file():
        return []
    try:
        manifest = read_json(path, spec)
    except (OSError, RunFileError) as e:
        notes.append(f"{e}; its runs/ folder was read instead")
        return []
    out, pending = [], 0
    for point in manifest["points"]:
        d = sweep / point["run"]  # relative to the sweep (an absolute path stays as it is)
        if (d / CONFIG).is_file():
            out.append(d)
        else:
            pending += 1
        if point.get("status") == "failed":
            notes.append(f"{sweep}: point {point.get('name', point['run'])} failed: {point.get('message')}")
    if pending:
        notes.append(f"{sweep}: {pending} point(s) of the manifest have no run yet")
    return out


def _read_run(path: Path, notes: list[str]) -> RunRecord:
    cfg = read_config(path)
    cfg.pop("data_info", None)
    method = str(cfg.pop("method", "?"))
    flat = flatten_config(cfg)
    metrics: dict[str, dict] = {}
    step = None
    ev = path / "eval.json"
    if ev.is_file():
        try:
            record = read_eval_record(ev)
            step = record.get("step")
            # entries written before each carried its own step take the file's
            metrics = {k: {"step": step, **v} if isinstance(v, dict) else {"value": v, "step": step}
                       for k, v in record["metrics"].items()}
        except (OSError, RunFileError) as e:
            notes.append(f"{e}: its metrics show as {MISSING}")
    else:
        notes.append(f"{path} has no eval.json (run `genae eval {path}`): its metrics show as {MISSING}")
    return RunRecord(path=path, name=path.name, method=method, seed=flat.get(SEED_KEY), config=flat,
                     metrics=metrics, eval_step=step, data_digest=_data_digest(path, notes))


def _data_digest(path: Path, notes: list[str]) -> str | None:
    """SHA-256 over the SHA-256s of the data files the run recorded (``RUN/data.json``), per split;
    paths are left out, since the same bytes elsewhere are the same data. None where no file is
    recorded (generated data, or a run from before records)."""
    from .schema import DATA_RECORD as SCHEMA, read_json

    record_path = path / DATA_RECORD
    if not record_path.is_file():
        return None
    try:
        record = read_json(record_path, SCHEMA)
    except (OSError, RunFileError) as e:
        notes.append(f"{e}: the data files of {path.name} are unknown")
        return None
    lines = sorted(f"{split}\t{digest}" for split, rec in record.items() if rec is not None
                   for digest in (rec.get("files") or {}).values())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest() if lines else None


def _dataset_titles(runs: Sequence[RunRecord], notes: list[str]) -> list[str]:
    """Per run, the title of its table (see Datasets in the module docstring)."""
    by_name: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_name.setdefault(r.data, []).append(r)
    titles: dict[int, str] = {}
    for name, rs in by_name.items():
        digests = list(dict.fromkeys(r.data_digest for r in rs if r.data_digest))
        unrecorded = [r.name for r in rs if not r.data_digest]
        if len(digests) > 1:
            notes.append(f"runs on {name} were trained on {len(digests)} different sets of files (their "
                         f"{DATA_RECORD}): one table per set, never averaged together")
        elif digests and unrecorded:
            notes.append(f"{', '.join(unrecorded)}: no record of the {name} files trained on ({DATA_RECORD}); "
                         f"taken to be those of the other {name} runs")
        for r in rs:
            titles[id(r)] = (name if len(digests) < 2 else f"{name} (files {r.data_digest[:12]})"
                             if r.data_digest else f"{name} (files not recorded)")
    return [titles[id(r)] for r in runs]


# --------------------------------------------------------------------------------------------
# Grouping and aggregation
# --------------------------------------------------------------------------------------------
def swept_keys(runs: Sequence[RunRecord], ignore: Iterable[str] = ()) -> list[str]:
    """The config keys that define the rows (see the module docstring), in config order."""
    skip = IGNORED_KEYS | {DATA_KEY} | set(ignore)  # data.name: a table of its own, not a key
    keys: list[str] = []
    for r in runs:
        keys += [k for k in r.config if k not in keys and k not in skip]

    by_method: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_method.setdefault(r.method, []).append(r)

    def differ(k, rs):
        return len({_canon(r.config[k]) for r in rs if k in r.config}) > 1

    return [k for k in keys if (k.startswith(("train.", "data.")) and differ(k, runs))
            or any(differ(k, rs) for rs in by_method.values())]


def compare(paths: Iterable[str | Path], metrics: Sequence[str] | None = None,
            ignore: Iterable[str] = ()) -> Comparison:
    """Read ``paths`` and build the comparison of ``metrics`` (names or ``metric.field``; default:
    every metric any run evaluated, each with its headline number(s)). ``ignore``: config keys
    to aggregate over like the seed."""
    notes: list[str] = []
    runs = collect_runs(paths, notes)
    ignore = list(ignore)
    if DATA_KEY in ignore:
        raise GenaeError(f"--ignore {DATA_KEY}: runs on different datasets are never averaged together; "
                         "each dataset is a table of its own")
    unknown = [k for k in ignore if not any(k in r.config for r in runs)]
    if unknown:
        raise GenaeError(f"--ignore {', '.join(unknown)}: no run has such a config key "
                         "(keys look like model.beta, train.steps, data.seed)")
    keys = swept_keys(runs, ignore)
    columns, measures = _split_measures(runs, _columns(runs, metrics, notes))
    titles = _dataset_titles(runs, notes)
    several = len(set(titles)) > 1

    groups: dict[tuple, Group] = {}
    for r, title in zip(runs, titles):
        values = {k: r.config[k] for k in keys if k in r.config}
        gid = (title, r.method, tuple((k, _canon(v)) for k, v in values.items()))
        groups.setdefault(gid, Group(r.method, values, [], data=title if several else "")).runs.append(r)
    keyed = sorted(groups.items(), key=lambda item: (item[0][0], item[1].method,
                                                     [_sort_key(item[1].values.get(k, None)) for k in keys]))
    ordered = [g for _, g in keyed]
    cmp = Comparison(runs=runs, swept=keys, columns=columns, groups=ordered, notes=notes, measures=measures)
    for g in ordered:
        g.runs.sort(key=lambda r: _sort_key(r.seed))
        seeds = [_canon(s) for s in g.seeds]
        if len(set(seeds)) < len(seeds):
            notes.append(f"{g.label()}: several runs share a seed ({', '.join(r.name for r in g.runs)}); "
                         "each counts as one sample")
        for col in columns:
            cell = Cell()
            for r in g.runs:
                v, p = cmp.number(r, col)
                if v is None:
                    continue
                cell.values.append(v)
                cell.seeds.append(r.seed)
                cell.names.append(r.name)
                cell.run_protocols.append(p)
                if p not in cell.protocols:
                    cell.protocols.append(p)
            g.cells[col] = cell
    # footnote numbers in reading order: column by column, top to bottom
    for col in columns:
        cmp.protocols += [p for p in cmp.column_protocols(col) if p not in cmp.protocols]
        for g in ordered:
            cell = g.cells[col]
            if cell.mixed:
                by = "; ".join(f"[{cmp.tag(p)}] " + ", ".join(f"{n} (seed {s})" for n, s, q in
                                                            zip(cell.names, cell.seeds, cell.run_protocols) if q == p)
                               for p in cell.protocols)
                notes.append(f"{g.label()}: {col} not averaged, its runs were evaluated under different "
                             f"protocols: {by}; re-evaluate them alike")
    for title, items in itertools.groupby(keyed, key=lambda item: item[0][0]):
        rows = [g for _, g in items]
        shown = [c for c in columns if any(g.cells[c].values for g in rows)
                 or not any(g.cells[c].values for g in ordered)]
        cmp.sections.append(Section(title, rows, shown))
    return cmp


def _split_measures(runs: Sequence[RunRecord], columns: list[str]) -> tuple[list[str], dict[str, tuple]]:
    """``columns`` with each one whose runs measured different quantities (``RunRecord.measure``)
    split into one column per measure, named ``column (measure)``; and those names ->
    ``(column, measure)``."""
    out: list[str] = []
    measures: dict[str, tuple[str, tuple]] = {}
    for col in columns:
        found = list(dict.fromkeys(r.measure(col) for r in runs if r.number(col)[0] is not None))
        if len(found) < 2:
            out.append(col)
            continue
        for m in found:
            name = f"{col} ({measure_text(m)})"
            out.append(name)
            measures[name] = (col, m)
    return out, measures


def _columns(runs: Sequence[RunRecord], metrics: Sequence[str] | None, notes: list[str]) -> list[str]:
    """``metric`` for entries with a ``value``, else one ``metric.field`` per numeric result field."""
    from .metrics import METRICS

    present: list[str] = []
    for r in runs:
        present += [m for m in r.metrics if m not in present]
    if metrics is None:
        order = {name: i for i, name in enumerate(METRICS)}
        names = sorted(present, key=lambda m: (order.get(m, len(order)), m))
    else:
        names = list(metrics)
        unknown = [n for n in names if n.partition(".")[0] not in METRICS and n.partition(".")[0] not in present]
        if unknown:
            raise GenaeError(f"unknown metric {', '.join(unknown)}; valid: {', '.join(METRICS)} "
                             "(or metric.field, e.g. precision-recall.recall)")
        for name in names:
            _check_field(runs, name)
    cols: list[str] = []
    for name in names:
        if "." in name:
            cols.append(name)
            continue
        entries = [r.metrics[name] for r in runs
                   if isinstance(r.metrics.get(name), dict) and "skipped" not in r.metrics[name]]
        if not entries or any("value" in e for e in entries):
            cols.append(name)
            if not entries:
                notes.append(f"{name}: no run has a number for it (not evaluated, or skipped as not "
                             "applicable)")
            continue
        fields: list[str] = []
        for e in entries:
            fields += [k for k, v in e.items() if k not in protocol_fields(name) and k not in fields
                       and k != "seconds" and isinstance(v, float)]
        cols += [f"{name}.{f}" for f in fields] or [name]
    return cols


def _check_field(runs: Sequence[RunRecord], name: str) -> None:
    """A ``metric.field`` column asked for must name a number the runs' results of ``metric``
    hold (else it would be a column of "—" that looks like a metric nobody evaluated)."""
    from .errors import did_you_mean

    metric, _, fld = name.partition(".")
    if not fld:
        return
    entries = [r.metrics[metric] for r in runs
               if isinstance(r.metrics.get(metric), dict) and "skipped" not in r.metrics[metric]]
    fields = list(dict.fromkeys(k for e in entries for k, v in e.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool)))
    if entries and fld not in fields:
        raise GenaeError(f"--metrics {name}: the {metric} results have no number {fld!r}"
                         f"{did_you_mean(fld, fields)}; their fields: {', '.join(fields) or 'none'}")


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------
def protocol_fields(metric: str) -> tuple[str, ...]:
    """The fields of a ``metric`` entry that say how its number was computed: the registry's
    (``METRICS[metric].protocol``, ``fid@vae``'s that of ``fid``; for a name not registered,
    every registered metric's), then ``step``."""
    from .metrics import METRICS

    spec = _spec(metric)
    fields = spec.protocol if spec else tuple(dict.fromkeys(f for s in METRICS.values() for f in s.protocol))
    return (*fields, "step")


def measure_fields(metric: str) -> tuple[str, ...]:
    """The fields of a ``metric`` entry that say what its number measures
    (``METRICS[metric].measure``; none for a name not registered)."""
    spec = _spec(metric)
    return spec.measure if spec else ()


def _spec(metric: str):
    """The registry entry of ``metric`` (``fid@vae``: of ``fid``), or None."""
    from .metrics import METRICS

    return METRICS.get(metric.partition("@")[0])


def protocol_of(entry: dict[str, Any], metric: str) -> tuple:
    """The protocol of one ``eval.json`` entry of ``metric``: ``((field, value), ...)`` in
    ``protocol_fields`` order, values made hashable."""
    return tuple((k, _canon(entry[k])) for k in protocol_fields(metric) if k in entry)


def protocol_text(p: tuple) -> str:
    """``backbone=domain, n_fake=10000, ...``; a weights hash shortened to 12 hex digits."""
    return ", ".join(f"{k}={_show(k, v)}" for k, v in p) or "(no protocol fields)"


def measure_text(m: tuple) -> str:
    """The values of a measure, ``mask`` or ``domain 1a2b3c4d5e6f``."""
    return " ".join(_show(k, v) for k, v in m) or "not recorded"


def _show(k: str, v: str) -> str:
    """A protocol value (as ``_canon`` holds it) as shown; a weights hash as 12 hex digits."""
    v = json.loads(v)
    return v[:12] if k == "backbone_weights" and isinstance(v, str) else format_value(v)


def format_number(v: float) -> str:
    """4 significant digits, trailing zeros kept (``0.1670``, ``379.3``); integers as such
    (``5``); scientific notation for very small or large magnitudes."""
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
        return f"{v:.3e}"
    return str(int(v)) if v == int(v) else f"{v:#.4g}"


def format_mean_std(mean: float, std: float | None) -> str:
    """``mean ± std`` with std to 2 significant digits and the mean to the same decimal place
    (``12.31 ± 0.52``); the mean alone when ``std`` is None (one seed)."""
    if std is None or not math.isfinite(std):
        return format_number(mean)
    if std == 0:
        return f"{format_number(mean)} ± 0"
    decimals = max(0, 1 - math.floor(math.log10(std)))
    if decimals > 6 or abs(mean) >= 1e6:
        return f"{format_number(mean)} ± {std:.2g}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def format_table(cmp: Comparison, markdown: bool = False) -> str:
    """The tables (aligned text, or Markdown pipe tables), one per dataset under its title where
    there are several, then the legend, protocol footnotes and notes."""
    lines: list[str] = []
    for section in cmp.sections:
        if len(cmp.sections) > 1:
            lines += [f"{'## ' if markdown else ''}data: {section.title}", ""]
        head = [*cmp.row_head(), *map(cmp.header, section.columns)]
        rows = [[*cmp.row_cells(g), *[cmp.cell_text(g, c) for c in section.columns]] for g in section.groups]
        if markdown:
            esc = lambda s: s.replace("|", "\\|")  # noqa: E731
            lines += ["| " + " | ".join(map(esc, head)) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
        else:
            widths = [max(len(x) for x in col) for col in zip(head, *rows)]
            numeric = [i >= len(head) - len(section.columns) for i in range(len(head))]
            fmt = lambda r: "  ".join(x.rjust(w) if num else x.ljust(w)  # noqa: E731
                                      for x, w, num in zip(r, widths, numeric)).rstrip()
            lines += [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
        lines.append("")
    shown = list(dict.fromkeys(c for section in cmp.sections for c in section.columns))
    foot = cmp.legend(shown) + cmp.footnotes()
    if markdown:
        lines += [f"- {f}" for f in foot] + [f"- note: {n}" for n in cmp.notes]
    else:
        lines += foot + [f"note: {n}" for n in cmp.notes]
    return "\n".join(lines).rstrip("\n") + "\n"


def csv_text(cmp: Comparison) -> str:
    """The table as CSV: one row per group, with its dataset, seed count and values, and steps;
    per column its mean, std (empty for n < 2), n, protocol (footnote text; ``mixed: ...`` and an
    empty mean when refused) and which way is better."""
    buf = io.StringIO()
    w = csv.writer(buf)
    head = ["data", "method", *cmp.swept, "seeds", "seed values", "steps"]
    for c in cmp.columns:
        head += [c, f"{c} std", f"{c} n", f"{c} protocol", f"{c} better"]
    w.writerow(head)
    for section in cmp.sections:
        for g in section.groups:
            row = [section.title, g.method, *[_csv_value(g.values.get(k)) for k in cmp.swept], len(g.runs),
                   " ".join(map(str, g.seeds)), g.steps_text]
            for c in cmp.columns:
                cell = g.cells[c]
                proto = ("mixed: " + "; ".join(protocol_text(p) for p in cell.protocols) if cell.mixed
                         else protocol_text(cell.protocol) if cell.protocol else "")
                row += [_csv_value(cell.mean), _csv_value(cell.std), cell.n if cell.values else 0, proto,
                        cmp.direction(c) or ""]
            w.writerow(row)
    return buf.getvalue()


def runs_csv_text(cmp: Comparison) -> str:
    """Every number before aggregation: one row per (run, column) that has one."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["run", "path", "data", "method", *cmp.swept, "seed", "metric", "value", "better", "protocol"])
    for section in cmp.sections:
        for g in section.groups:
            for r in g.runs:
                for c in cmp.columns:
                    v, p = cmp.number(r, c)
                    if v is not None:
                        w.writerow([r.name, str(r.path), section.title, r.method,
                                    *[_csv_value(g.values.get(k)) for k in cmp.swept], r.seed, c, repr(v),
                                    cmp.direction(c) or "", protocol_text(p)])
    return buf.getvalue()


def _canon(v: Any) -> str:
    """A hashable, order-stable form of a config or protocol value."""
    return json.dumps(v, sort_keys=True, default=str)


def _sort_key(v: Any) -> tuple:
    if v is None:
        return (0, 0.0, "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (1, float(v), "")
    return (2, 0.0, _canon(v))


def format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(format_value, v))
    return "null" if v is None else str(v)


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    return repr(v) if isinstance(v, float) else format_value(v)

