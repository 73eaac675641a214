"""``genae sweep``: one method over a grid or a list of ``--set`` overrides × seeds.

    genae sweep METHOD [--data NAME] [--data-dir DIR] [--config FILE] [--set NS.KEY=V ...]
                [--grid NS.KEY=V1,V2,... ...] [--point 'NS.KEY=V;NS.KEY=V' ...] [--seeds 0,1,2]
                [--metrics a,b] [--n-samples N] [--split test] [--backbone domain]
                [--jobs N] [--threads T] [--out SWEEP]
    genae sweep --resume SWEEP [--jobs N] [--threads T] [--metrics a,b] ...

The design is the method, the overrides shared by every point (``set``: a ``--config`` file's
sections, ``--data``/``--data-dir``, then ``--set``), a ``grid`` (key -> values, every
combination), a ``list`` of points (key -> value each; with a grid, each list point is combined
with every grid point) and the seeds (``train.seed``). Points are ordered seed-major, so an
interrupted sweep has whole curves of its first seeds.

A sweep file (``--config``) is a training config (``method``, ``model``, ``train``, ``data``: the
base of every point, as ``genae train --config`` reads it) with the sweep's own keys beside it:
``set`` (list of ``NS.KEY=V`` or a mapping), ``grid`` (mapping key -> list), ``list`` (list of
mappings), ``seeds``, ``metrics``, ``n_samples``, ``split``, ``backbone``, ``eval_device``,
``jobs``, ``threads``. Command-line options add to it (``--set``, ``--grid``, ``--point``) or
replace it (the rest).

Layout of a sweep directory::

    SWEEP/manifest.json     the design, the evaluation asked, and every point's state
    SWEEP/runs/<name>/      one genae run per point, e.g. ``model.latent_dim=8,seed=1``
    SWEEP/logs/<name>.log   the output of the point's train/resume/eval commands
    SWEEP/.lock             held by the one ``genae sweep`` working on SWEEP

Each point runs as child processes, ``genae train`` (or ``genae resume``) then ``genae eval
--json``, so jobs share no interpreter, a killed job leaves a run that resumes, and a failed one
(bad config, non-finite loss, missing data) is recorded with its message while the others go on.
Several jobs run at once within a thread budget (``thread_budget``): never more compute threads
than cores, because on a small machine a third thread on two cores stalls all of them.

Rerunning the same command (without ``--out`` the directory is named after a hash of the design)
or ``genae sweep --resume SWEEP`` skips finished points, resumes runs that stopped with a
checkpoint, restarts those without one, and evaluates runs whose evaluation is missing or was made
under other settings. A different design against an existing manifest is refused, naming the
difference.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, NamedTuple

from . import fileio
from .errors import ConfigError, GenaeError, Interrupted, RunFileError, short_repr
from .fileio import atomic_write

MANIFEST = "manifest.json"
FORMAT = 1
#: Manifest keys that define the sweep (-> SweepSpec fields): a change is refused on resume.
DESIGN = {"method": "method", "set": "sets", "grid": "grid", "list": "points", "seeds": "seeds"}
#: Evaluation settings: a run evaluated under other ones is evaluated again.
EVAL_SETTINGS = ("n_samples", "split", "backbone")
#: Overrides the sweep adds to every run: a progress bar is noise in a log file.
RUN_EXTRAS = ("train.progress=false",)
#: After SIGINT, how long the jobs (which got it too, from the terminal) have to checkpoint
#: before they are sent SIGTERM (a sweep stopped with ``kill -INT PID`` alone).
STOP_GRACE_S = 30.0
_NAME_OK = re.compile(r"[^A-Za-z0-9._=,+-]")


@dataclass
class SweepSpec:
    """What to run (the design: method, sets, grid, points, seeds), how to evaluate it and the
    thread budget asked (``None``: what fits)."""

    method: str
    sets: list[str] = field(default_factory=list)           # NS.KEY=V for every point
    grid: dict[str, list[str]] = field(default_factory=dict)  # NS.KEY -> values (override text)
    points: list[dict[str, str]] = field(default_factory=list)  # list mode: NS.KEY -> value each
    seeds: list[int] | None = None                          # None: the base config's train.seed
    metrics: list[str] = field(default_factory=list)        # none: the runs are not evaluated
    n_samples: int = 10000
    split: str = "test"
    backbone: str = "domain"
    eval_device: str = "cpu"
    jobs: int | None = None
    threads: int | None = None
    nproc: int = 1                                          # processes per point's training (torchrun)
    config: str | None = None                               # the file the base came from (a note)

    def design(self) -> dict[str, Any]:
        """The manifest's design keys (``DESIGN``), JSON-normalised."""
        return json.loads(json.dumps({k: getattr(self, f) for k, f in DESIGN.items()}))

    def eval_settings(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in EVAL_SETTINGS}


class Budget(NamedTuple):
    jobs: int
    threads: int
    cores: int
    note: str | None


# --------------------------------------------------------------------------------------------
# The design: parsing and expansion (pure)
# --------------------------------------------------------------------------------------------
def split_top(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside brackets and quotes, each part stripped:
    ``"(0.5,0.9),(0.0,0.9)"`` -> ``["(0.5,0.9)", "(0.0,0.9)"]``."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["model.latent_dim=4,8", ...]`` -> ``{"model.latent_dim": ["4", "8"], ...}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = _check_key(key.strip(), f"--grid {item!r}")
        vals = split_top(values)
        if not sep or not all(vals):
            raise ConfigError(f"--grid {item!r}: expected NS.KEY=V1,V2,..., e.g. model.latent_dim=4,8,16")
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; list all its values in one --grid")
        grid[key] = vals
    return grid


def parse_point(text: str) -> dict[str, str]:
    """``"model.latent_dim=4;model.lam3_every=7"`` -> ``{"model.latent_dim": "4", ...}``."""
    point = {}
    for item in split_top(text, ";"):
        key, sep, value = item.partition("=")
        key = _check_key(key.strip(), f"--point {text!r}")
        if not sep or not value.strip():
            raise ConfigError(f"--point {text!r}: expected NS.KEY=V;NS.KEY=V")
        point[key] = value.strip()
    return point


def override_text(value: Any) -> str:
    """The text after ``NS.KEY=`` that ``genae.config.parse_override`` reads back as ``value``
    (a YAML value: ``True`` -> ``true``, ``"gaussian"`` -> ``gaussian``, ``"1"`` -> ``'1'``)."""
    from .config import parse_override

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value and value == value.strip() and \
            parse_override(f"model.x={value}")[2] == value:
        return value
    return repr(value)


def load_sweep_file(path: str | Path) -> dict[str, Any]:
    """A sweep file (or a plain training config) -> ``SweepSpec`` keyword arguments; its
    ``model``/``train``/``data`` sections become the first of ``sets``."""
    from .config import NAMESPACES, load_yaml
    from .schema import SWEEP_FILE, check

    d = load_yaml(path)
    known = {"method", *NAMESPACES, "set", "grid", "list", "seeds", "metrics", "n_samples", "split",
             "backbone", "eval_device", "jobs", "threads", "nproc"}
    unknown = sorted(map(str, set(d) - known))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {short_repr(unknown)}; a sweep file has {', '.join(sorted(known))}")
    check(d, SWEEP_FILE, path, error=ConfigError)
    out: dict[str, Any] = {"config": str(path), "sets": []}
    if isinstance(d.get("data"), str):  # `data: synthetic` names the dataset
        d["data"] = {"name": d["data"]}
    for ns in NAMESPACES:
        section = d.get(ns) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: `{ns}` must be a mapping of keys to values")
        out["sets"] += [f"{ns}.{k}={override_text(v)}" for k, v in section.items()]
    sets = d.get("set") or []
    out["sets"] += ([f"{k}={override_text(v)}" for k, v in sets.items()] if isinstance(sets, dict)
                    else [str(s) for s in sets])
    grid = d.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{path}: `grid` must map NS.KEY to a non-empty list of values")
    out["grid"] = {_check_key(str(k), f"{path}: grid"): [override_text(v) for v in vs] for k, vs in grid.items()}
    points = d.get("list") or []
    if not isinstance(points, list) or not all(isinstance(p, dict) and p for p in points):
        raise ConfigError(f"{path}: `list` must be a list of mappings NS.KEY: value")
    out["points"] = [{_check_key(str(k), f"{path}: list"): override_text(v) for k, v in p.items()} for p in points]
    if "method" in d:
        out["method"] = d["method"]
    if "seeds" in d:
        out["seeds"] = parse_seeds(d["seeds"])
    if "metrics" in d:
        out["metrics"] = parse_metrics(d["metrics"])
    for key in ("n_samples", "split", "backbone", "eval_device", "jobs", "threads", "nproc"):
        if key in d:
            out[key] = d[key]
    return out


def parse_seeds(value: Any) -> list[int]:
    """``"0,1,2"``, ``[0, 1, 2]`` or ``3`` -> a list of distinct integer seeds."""
    items = split_top(value) if isinstance(value, str) else value if isinstance(value, list) else [value]
    try:
        seeds = [int(s) for s in items]
    except (TypeError, ValueError):
        raise ConfigError(f"seeds {value!r}: expected integers, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {value!r}: give one or more distinct integers")
    return seeds


def parse_metrics(value: Any) -> list[str]:
    """``"fid,nac"`` or ``["fid", "nac"]`` -> ``["fid", "nac"]``."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(m).strip() for m in items if str(m).strip()]


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """The sweep's points, seed-major: ``[{"name", "overrides": [NS.KEY=V, ...], "seed"}]``, each
    list point combined with each grid point (either may be absent). Raises ``ConfigError`` for a
    key in both, ``train.seed`` swept (use the seeds) or a point given twice."""
    if spec.seeds is None:
        raise ConfigError("the sweep's seeds are not resolved")
    clash = sorted({k for p in spec.points for k in p} & set(spec.grid))
    if clash:
        raise ConfigError(f"{', '.join(clash)} in both the grid and the list of points; give it in one")
    if "train.seed" in spec.grid or any("train.seed" in p for p in spec.points):
        raise ConfigError("train.seed is swept by the seeds (--seeds), not by the grid or list")
    keys = list(spec.grid)
    grid = [dict(zip(keys, vals)) for vals in itertools.product(*(spec.grid[k] for k in keys))]
    design = [{**p, **g} for p in (spec.points or [{}]) for g in grid]
    seen = set()
    for d in design:
        key = tuple(sorted(d.items()))
        if key in seen:
            raise ConfigError(f"the point {_join(d)} is given twice")
        seen.add(key)
    points = [{"overrides": [f"{k}={v}" for k, v in d.items()], "seed": seed}
              for seed in spec.seeds for d in design]
    names = [point_name(p["overrides"], p["seed"]) for p in points]
    for p, name in zip(points, names):
        # two points that differ only in characters a file name cannot hold: tell them apart
        p["name"] = name if names.count(name) == 1 else f"{name}-{_digest(p['overrides'], p['seed'])}"
    return points


def point_name(overrides: list[str], seed: int) -> str:
    """A point's run directory name: ``model.latent_dim=8,seed=1`` (spaces dropped, characters
    other than letters, digits and ``._=,+-`` made ``_``; long names cut and given a digest)."""
    name = _NAME_OK.sub("_", ",".join([*overrides, f"seed={seed}"]).replace(" ", ""))
    return name if len(name) <= 120 else f"{name[:110]}-{_digest(overrides, seed)}"


def _digest(overrides: list[str], seed: int) -> str:
    return hashlib.sha256(json.dumps([overrides, seed]).encode()).hexdigest()[:8]


def _join(d: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in d.items()) or "(the base config)"


def _check_key(key: str, where: str) -> str:
    from .config import parse_override

    try:
        parse_override(f"{key}=0")
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return key


# --------------------------------------------------------------------------------------------
# The thread budget (pure)
# --------------------------------------------------------------------------------------------
def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def thread_budget(cores: int, pending: int, jobs: int | None = None, threads: int | None = None) -> Budget:
    """How many jobs to run at once and with how many threads each, so that jobs × threads never
    exceeds ``cores``: by default one thread per job and as many jobs as cores (at most one per
    ``pending`` point; a lone job gets every core). A request that does not fit is cut down and
    ``note`` says so. Returns ``Budget(jobs, threads, cores, note)``."""
    for name, v in (("--jobs", jobs), ("--threads", threads)):
        if v is not None and v <= 0:
            raise ConfigError(f"{name} must be positive, got {v}")
    cores, pending = max(1, cores), max(1, pending)
    note = None
    if threads is not None and threads > cores:
        note = f"--threads {threads} is more than the {cores} cores; using {cores}"
        threads = cores
    limit = cores // (threads or 1)
    if jobs is not None and jobs > limit:
        note = (f"--jobs {jobs} × {threads or 1} thread(s) is more than the {cores} cores (more compute "
                f"threads than cores stall each other); running {limit} at once")
        jobs = limit
    jobs = min(jobs or limit, pending)
    return Budget(jobs, threads or max(1, cores // jobs), cores, note)


# --------------------------------------------------------------------------------------------
# Running a sweep
# --------------------------------------------------------------------------------------------
def resolve(spec: SweepSpec) -> tuple[SweepSpec, Any]:
    """Check the design before anything is written (base config, keys, metric names, seeds) ->
    (the spec with its seeds filled in, the base ``RunConfig``). Raises ``ConfigError``."""
    from .config import build_config
    from .metrics import check_names

    base = build_config(spec.method, overrides=spec.sets)
    check_names(spec.metrics)
    if spec.split not in ("test", "train"):
        raise ConfigError(f"--split {spec.split!r}: choose test or train")
    if spec.n_samples <= 0:
        raise ConfigError("--n-samples must be positive")
    if spec.nproc < 1:
        raise ConfigError(f"--nproc-per-node must be at least 1, got {spec.nproc}")
    spec = replace(spec, method=base.method, seeds=spec.seeds or [base.train.seed])
    expand(spec)
    return spec, base


def default_out(spec: SweepSpec, base) -> Path:
    """``runs/sweep-<method>-<data>-<hash of the design>``: the same command finds its sweep again."""
    digest = hashlib.sha256(json.dumps(spec.design(), sort_keys=True).encode()).hexdigest()[:8]
    return Path("runs") / _NAME_OK.sub("_", f"sweep-{spec.method}-{base.data.name}-{digest}")


def read_manifest(sweep: str | Path) -> dict[str, Any]:
    """The manifest of sweep directory ``sweep`` (a ``GenaeError`` if it is not a sweep; a
    ``RunFileError`` naming the field when it is damaged or of the wrong types,
    ``schema.SWEEP_MANIFEST``)."""
    from .schema import SWEEP_MANIFEST, read_json

    path = Path(sweep) / MANIFEST
    if not path.is_file():
        raise GenaeError(f"{sweep} is not a sweep: {path} is missing")
    return read_json(path, SWEEP_MANIFEST)


def spec_from_manifest(manifest: dict[str, Any]) -> SweepSpec:
    """The ``SweepSpec`` a manifest was written for (design, evaluation and budget asked)."""
    ev = manifest.get("eval") or {}
    return SweepSpec(**{f: manifest[k] for k, f in DESIGN.items()}, metrics=list(manifest.get("metrics", [])),
                     **{k: ev[k] for k in (*EVAL_SETTINGS, "eval_device") if k in ev},
                     jobs=(manifest.get("asked") or {}).get("jobs"),
                     threads=(manifest.get("asked") or {}).get("threads"),
                     nproc=(manifest.get("asked") or {}).get("nproc", 1), config=manifest.get("config"))


def run_sweep(spec: SweepSpec, out: str | Path | None = None,
              log: Callable[[str], None] = lambda s: print(s, flush=True)) -> Path:
    """Run (or continue) the sweep ``spec`` in ``out`` (default ``default_out``); returns the sweep
    directory. Prints one line per job start and end and, at the end, a table of the points.
    Raises ``Interrupted`` after SIGINT/SIGTERM once the jobs have checkpointed."""
    from .runs import LockHeld, RunLock

    spec, base = resolve(spec)
    out = Path(out) if out is not None else default_out(spec, base)
    if out.exists() and not out.is_dir():
        raise GenaeError(f"--out {out} is a file, not a sweep directory")
    if out.is_dir() and not (out / MANIFEST).is_file() and any(p.name != ".lock" for p in out.iterdir()):
        raise GenaeError(f"--out {out} is a non-empty folder that is not a sweep (no {MANIFEST}); nothing "
                         "in it was touched: choose an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    for folder in ("runs", "logs"):  # real folders of the sweep: a link there is refused
        fileio.make_dirs(out, out / folder)
    try:
        lock = RunLock(out).acquire()
    except LockHeld as e:
        raise GenaeError(f"{out} is being run by another genae sweep (PID {e.holder}); wait for it or "
                         "stop it, then rerun") from None
    try:
        old = _check_design(out, spec)
        return _Sweep(out, spec, base.data.name, old, log).run()
    finally:
        lock.release()


def _check_design(out: Path, spec: SweepSpec) -> dict[str, Any] | None:
    """The existing manifest of ``out`` (None for a new sweep); ``ConfigError`` naming every
    design key that differs from ``spec``'s."""
    if not (out / MANIFEST).is_file():
        return None
    old = read_manifest(out)
    new = spec.design()
    diff = [f"{k}: {old.get(k)!r} in the manifest, {new[k]!r} now" for k in DESIGN if old.get(k) != new[k]]
    if diff:
        raise ConfigError(f"{out} is a sweep of another design ({'; '.join(diff)}); its runs would be mixed "
                          f"with this one's: continue it as it was (`genae sweep --resume {out}`) or "
                          "choose another --out")
    return old


def spawn_genae(args: list[str], threads: int, log, nproc: int = 1) -> subprocess.Popen:
    """``python -m genae ARGS`` as a child limited to ``threads`` compute threads (OpenMP/MKL) per
    process, importing this very genae (wherever it was imported from), output into the open file
    ``log``. ``nproc`` > 1: ``torchrun --standalone --nproc-per-node nproc -m genae ARGS`` (one
    data-parallel job of nproc ranks on this node, a free rendezvous port of its own)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                      os.environ.get("PYTHONPATH")]))}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
                if nproc > 1 else [sys.executable])
    return subprocess.Popen([*launcher, "-m", "genae", *args], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env)


@dataclass
class _Job:
    point: dict[str, Any]
    index: int
    phases: list[str]                # "train" | "resume" | "eval", run in this order
    proc: subprocess.Popen | None = None
    phase: str = ""
    started: float = 0.0
    log_offset: int = 0
    forwarded: bool = False          # SIGTERM already sent on stopping


class _Sweep:
    """One invocation over a locked sweep directory: decide each point's work, run the jobs
    within the budget, keep the manifest current."""

    def __init__(self, out: Path, spec: SweepSpec, data: str, old: dict | None, log: Callable[[str], None]):
        self.out, self.spec, self.log = out, spec, log
        now = _dt.datetime.now().isoformat(timespec="seconds")
        old_points = {p.get("name"): p for p in (old or {}).get("points", []) if isinstance(p, dict)}
        self.points = []
        for p in expand(spec):
            record = {"name": p["name"], "run": f"runs/{p['name']}", "log": f"logs/{p['name']}.log",
                      "overrides": p["overrides"], "seed": p["seed"], "status": "queued", "message": None,
                      "step": None, "steps": None, "train_s": 0.0, "eval_s": 0.0, "eval": None,
                      "eval_with": None}
            prev = old_points.get(p["name"], {})
            record.update({k: prev[k] for k in ("status", "message", "step", "steps", "train_s", "eval_s",
                                                "eval", "eval_with") if k in prev})
            self.points.append(record)
        self.manifest = {"format": FORMAT, **spec.design(), "data": data, "config": spec.config,
                         "metrics": spec.metrics, "eval": {**spec.eval_settings(), "eval_device": spec.eval_device},
                         "asked": {"jobs": spec.jobs, "threads": spec.threads, "nproc": spec.nproc},
                         "budget": None,
                         "created": (old or {}).get("created", now), "updated": now, "points": self.points}
        self.stop: str | None = None
        self.stop_at = 0.0
        self.planning = False

    # ---- the main loop -----------------------------------------------------------------------
    def run(self) -> Path:
        from .training import _StopSignals

        queue = []
        self.planning = True  # one manifest write for the whole plan, not one per point
        for i, point in enumerate(self.points):
            phases = self._plan(point)
            if phases:
                queue.append(_Job(point, i, phases))
            elif point["status"] == "failed":
                self.log(f"failed [{i + 1}/{len(self.points)}] {point['name']}: {point['message']}")
        self.planning = False
        # each job's training runs nproc processes: the thread budget counts them all
        nproc = self.spec.nproc
        cores = available_cores()
        budget = thread_budget(max(1, cores // nproc), len(queue), self.spec.jobs, self.spec.threads)
        self.threads = budget.threads
        self.manifest["budget"] = budget._asdict()
        self._save()
        counts = _counts(self.points, queue)
        ranks = f" × {nproc} processes (torchrun)" if nproc > 1 else ""
        self.log(f"sweep {self.out}: {len(self.points)} points ({counts}); "
                 f"{budget.jobs} job(s){ranks} × {budget.threads} thread(s) on {cores} cores")
        if budget.note:
            self.log(f"note: {budget.note}")
        running: list[_Job] = []
        # the trainer's handler: a flag on the first SIGINT/SIGTERM, KeyboardInterrupt on the second
        with _StopSignals() as signals:
            try:
                while queue or running:
                    self._note_stop(signals.requested)
                    while queue and len(running) < budget.jobs and not self.stop:
                        job = queue.pop(0)
                        self._start(job, job.phases.pop(0))
                        running.append(job)
                    time.sleep(0.05)
                    for job in list(running):
                        self._forward_stop(job)
                        rc = job.proc.poll()
                        if rc is not None and not self._finished_phase(job, rc):
                            running.remove(job)
                    if self.stop:
                        queue = []
            except KeyboardInterrupt:  # a second signal: stop the jobs now instead of waiting for them
                self.stop = self.stop or "SIGINT"
                for job in running:
                    if job.proc.poll() is None:
                        job.proc.send_signal(signal.SIGTERM)
                for job in running:
                    self._finished_phase(job, job.proc.wait())  # starts nothing: self.stop is set
        self.log(format_table(self.manifest))
        if self.stop:
            raise Interrupted(f"sweep stopped by {self.stop}; continue it with `genae sweep --resume {self.out}` "
                              "(stopped runs resume from their last checkpoint)")
        failed = [p for p in self.points if p["status"] == "failed"]
        if failed:
            self.log(f"{len(failed)} of {len(self.points)} points failed (messages above and in "
                     f"{self.out / MANIFEST}; logs in {self.out / 'logs'}); rerun to retry them")
        return self.out

    def _plan(self, point: dict) -> list[str]:
        """The phases ``point`` still needs ([] when done); sets its status, step and steps."""
        from .config import build_config
        from .runs import CONFIG, RunLock, checkpoint_name, checkpoint_step, find_checkpoint, read_config

        run = self.out / point["run"]
        # a point's run is a real folder of the sweep, its log a real file: a job never trains,
        # resumes, deletes or appends through a link (refused here, before any job starts)
        try:
            fileio.make_dirs(self.out, run, create=False)
            fileio.refuse_links(self.out, [point["log"]])
        except GenaeError as e:
            self._set(point, "failed", str(e))
            return []
        if not (run / CONFIG).is_file():
            try:
                cfg = build_config(self.spec.method, overrides=self._overrides(point), out=str(run))
                if run.is_dir():  # a train killed before it wrote its config: nothing to keep
                    with RunLock(run):
                        for p in run.iterdir():
                            if p.name != ".lock":
                                fileio.remove(run, p)
            except GenaeError as e:
                self._set(point, "failed", str(e))
                return []
            point.update(step=0, steps=cfg.train.steps, train_s=0.0, eval=None, eval_with=None)
            return self._queued(point, ["train"], "to train")
        try:
            steps = int(read_config(run)["train"]["steps"])
        except (GenaeError, KeyError, TypeError, ValueError) as e:
            self._set(point, "failed", f"{run}: {e}")
            return []
        if point["status"] == "done" and point["step"] == steps and \
                (run / "checkpoints" / checkpoint_name(steps) / "manifest.json").is_file():
            step = steps  # finished before: trust the manifest rather than hash every checkpoint again
        else:
            ckpt = find_checkpoint(run)[0]
            step = checkpoint_step(ckpt) if ckpt is not None else 0
        point.update(step=step, steps=steps)
        if step < steps:
            return self._queued(point, ["resume"], f"to resume from step {step}" if step else "to restart")
        if not self.spec.metrics or self._evaluated(point):
            self._set(point, "done", None)
            return []
        return self._queued(point, ["eval"], "to evaluate")

    def _queued(self, point: dict, phases: list[str], why: str) -> list[str]:
        if phases[-1] != "eval" and self.spec.metrics:
            phases.append("eval")
        self._set(point, "queued", why)
        return phases

    def _evaluated(self, point: dict) -> bool:
        return not self._to_evaluate(point)

    def _to_evaluate(self, point: dict) -> list[str]:
        """The metrics asked that ``point`` lacks on its last step: all of them when it was evaluated
        under other settings (``EVAL_SETTINGS``), else the missing ones (``genae eval`` keeps the
        others of the same step in ``eval.json``)."""
        if point.get("eval_with") != self.spec.eval_settings():
            return list(self.spec.metrics)
        ev = point.get("eval") or {}
        return [m for m in self.spec.metrics if not (isinstance(ev.get(m), dict) and ev[m].get("step") == point["step"])]

    def _overrides(self, point: dict) -> list[str]:
        return [*self.spec.sets, *point["overrides"], f"train.seed={point['seed']}", *RUN_EXTRAS]

    def _command(self, point: dict, phase: str) -> list[str]:
        run = str(self.out / point["run"])
        threads = f"train.threads={self.threads}"
        if phase == "train":
            sets = [*self._overrides(point), threads]
            return ["train", self.spec.method, "--out", run, *[a for s in sets for a in ("--set", s)]]
        if phase == "resume":
            return ["resume", run, "--set", threads]
        s = self.spec
        # a metric that does not apply to a point is recorded as skipped, as the table shows it
        return ["eval", run, "--metrics", ",".join(self._to_evaluate(point)), "--allow-skipped", "--json",
                "--n-samples", str(s.n_samples), "--split", s.split, "--backbone", s.backbone,
                "--device", s.eval_device, "--seed", str(point["seed"])]

    def _start(self, job: _Job, phase: str) -> None:
        point = job.point
        args = self._command(point, phase)
        log_path = self.out / point["log"]
        with fileio.open_append(log_path, root=self.out) as f:  # never through a link
            f.write(f"\n[{_dt.datetime.now():%Y-%m-%d %H:%M:%S}] $ genae {shlex.join(args)}\n".encode())
            job.log_offset = f.tell()
            # training under torchrun when nproc > 1; evaluation in one process (its numbers are
            # the same either way, and one process needs no rendezvous)
            job.proc = spawn_genae(args, self.threads, f, self.spec.nproc if phase != "eval" else 1)
        job.phase, job.started = phase, time.monotonic()
        what = {"train": "train", "resume": f"resume from step {point['step']}" if point["step"] else "restart",
                "eval": f"eval {','.join(self._to_evaluate(point))}"}[phase]
        self._set(point, "running", what)
        self.log(f"start  {self._label(job)}: {what} ({self.threads} thread{'s' * (self.threads > 1)})")

    def _finished_phase(self, job: _Job, rc: int) -> bool:
        """Record the end of ``job``'s phase; start its next one. Returns whether the job goes on."""
        from .runs import checkpoint_step, find_checkpoint

        point, seconds = job.point, time.monotonic() - job.started
        key = "eval_s" if job.phase == "eval" else "train_s"
        point[key] = round((point.get(key) or 0.0) + seconds, 1)
        if job.phase != "eval":  # also after a stop or a failure: where a resume will start
            ckpt = find_checkpoint(self.out / point["run"])[0]
            point["step"] = checkpoint_step(ckpt) if ckpt is not None else 0
        if rc != 0:
            if self.stop:
                self._set(point, "queued", f"{job.phase} stopped by {self.stop}; continues on rerun")
                self.log(f"stop   {self._label(job)}: {job.phase} stopped after {seconds:.1f} s")
            else:
                why = f"{job.phase} failed: {_error_line(self.out / point['log'], job.log_offset, rc)}"
                self._set(point, "failed", why)
                self.log(f"failed {self._label(job)}: {why} (log: {self.out / point['log']})")
            return False
        if job.phase == "eval":
            point["eval"] = self._read_eval(point)
            point["eval_with"] = self.spec.eval_settings()
        if job.phases and not self.stop:
            self._start(job, job.phases.pop(0))
            return True
        if job.phases:
            self._set(point, "queued", f"{job.phases[0]} not started: stopped by {self.stop}")
            return False
        self._set(point, "done", None)
        times = f"train {point['train_s']} s" + (f", eval {point['eval_s']} s" if self.spec.metrics else "")
        shown = "; ".join(f"{m} {headline(m, (point['eval'] or {}).get(m))}" for m in self.spec.metrics)
        self.log(f"done   {self._label(job)}: step {point['step']}, {times}" + (f"; {shown}" if shown else ""))
        return False

    def _read_eval(self, point: dict) -> dict[str, Any]:
        from .runs import read_eval_record

        try:
            results = read_eval_record(self.out / point["run"] / "eval.json")["metrics"]
        except (OSError, RunFileError):  # the table shows it as not evaluated
            results = {}
        return {m: results[m] for m in self.spec.metrics if m in results}

    def _note_stop(self, requested: str | None) -> None:
        if requested and not self.stop:
            self.stop, self.stop_at = requested, time.monotonic()
            self.log(f"{requested}: starting nothing more; waiting for the running jobs to checkpoint "
                     "(again to stop them now)")

    def _forward_stop(self, job: _Job) -> None:
        """Pass a stop on to a job that cannot have had it: at once for SIGTERM (sent to this
        process alone), after ``STOP_GRACE_S`` for SIGINT (a terminal sends it to every job)."""
        if not self.stop or job.forwarded or job.proc.poll() is not None:
            return
        if self.stop == "SIGTERM" or time.monotonic() - self.stop_at > STOP_GRACE_S:
            job.proc.send_signal(signal.SIGTERM)
            job.forwarded = True

    def _label(self, job: _Job) -> str:
        return f"[{job.index + 1}/{len(self.points)}] {job.point['name']}"

    def _set(self, point: dict, status: str, message: str | None) -> None:
        point["status"], point["message"] = status, message
        if not self.planning:
            self._save()

    def _save(self) -> None:
        self.manifest["updated"] = _dt.datetime.now().isoformat(timespec="seconds")
        atomic_write(self.out / MANIFEST, (json.dumps(self.manifest, indent=1, default=str) + "\n").encode(),
                     root=self.out)


def _counts(points: list[dict], queue: list[_Job]) -> str:
    """``"3 done, 2 to train, 1 to resume"``: what this invocation found and has to do."""
    todo: dict[str, int] = {}
    for job in queue:
        kind = {"train": "to train", "resume": "to resume", "eval": "to evaluate"}[job.phases[0]]
        todo[kind] = todo.get(kind, 0) + 1
    done = sum(p["status"] == "done" for p in points)
    failed = sum(p["status"] == "failed" for p in points)
    parts = [f"{done} done"] + [f"{n} {k}" for k, n in todo.items()] + ([f"{failed} failed"] if failed else [])
    return ", ".join(parts)


def _error_line(log: Path, offset: int, rc: int) -> str:
    """What a failed child said: its last ``error:`` line, else its last line, else how it ended."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    errors = [ln for ln in lines if ln.startswith("error:")]
    if errors:
        return errors[-1][len("error:"):].strip()
    how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit code {rc}"
    return f"{lines[-1]} ({how})" if lines else how


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------
def headline(name: str, entry: dict | None) -> str:
    """A metric's number(s) for a table cell: its ``value``, else its other numbers (not the
    protocol), ``skipped``, or ``—`` when it was not evaluated."""
    if not isinstance(entry, dict):
        return "—"
    if "skipped" in entry:
        return "skipped"
    if isinstance(entry.get("value"), (int, float)):
        return _short(entry["value"])
    from .metrics import METRICS

    protocol = set(METRICS[name].protocol if name in METRICS else ()) | {"step", "seconds"}
    nums = [f"{k}={_short(v)}" for k, v in entry.items()
            if k not in protocol and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return " ".join(nums) or "—"


def format_table(manifest: dict[str, Any]) -> str:
    """The points of a manifest as a text table: point, seed, status, step, one column per metric."""
    metrics = manifest.get("metrics", [])
    head = ["point", "seed", "status", "step", *metrics]
    rows = []
    for p in manifest.get("points", []):
        step = f"{p.get('step')}/{p.get('steps')}" if p.get("steps") else "—"
        rows.append([",".join(p["overrides"]) or "(base)", str(p["seed"]), p["status"], step,
                     *[headline(m, (p.get("eval") or {}).get(m)) for m in metrics]])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    failed = [f"  {p['name']}: {p['message']}" for p in manifest.get("points", []) if p["status"] == "failed"]
    return "\n".join(lines + (["failed:", *failed] if failed else []))


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------
def add_arguments(p) -> None:
    """The ``genae sweep`` options on argparse parser ``p``."""
    p.add_argument("method", nargs="?", help="a name from `genae methods` (or `method:` in --config)")
    p.add_argument("--data", help="dataset name (`genae data list`) or folder:PATH")
    p.add_argument("--data-dir", help="directory holding the dataset files (data.root)")
    p.add_argument("--config", help="sweep file: a training config (method/model/train/data) plus set, "
                                    "grid, list, seeds, metrics, n_samples, split, backbone, jobs, threads")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NS.KEY=VALUE",
                   help="an override of every point, e.g. --set data.latent_dim=8")
    p.add_argument("--grid", action="append", default=[], metavar="NS.KEY=V1,V2,...",
                   help="a swept key and its values; several --grid give every combination")
    p.add_argument("--point", action="append", default=[], metavar="'NS.KEY=V;NS.KEY=V'",
                   help="one point of a list (instead of, or combined with, the grid); repeatable")
    p.add_argument("--seeds", help="training seeds (train.seed), e.g. 0,1,2 (default: the config's)")
    p.add_argument("--metrics", help="evaluate each run with these (comma-separated; default: none; "
                   "lsr-gan: NAME@vae / NAME@lsr per renderer)")
    p.add_argument("--n-samples", type=int, help="generated samples for fid/kid/... (default 10000)")
    p.add_argument("--split", choices=["test", "train"], help="reference split (default test)")
    p.add_argument("--backbone", choices=["domain", "inception"], help="fid/kid/is features (default domain)")
    p.add_argument("--eval-device", help="device of the evaluations (default cpu)")
    p.add_argument("--jobs", type=int, help="jobs at once (default: what fits the cores, one thread each)")
    p.add_argument("--threads", type=int, help="CPU threads per job (jobs × threads never exceeds the cores)")
    p.add_argument("--nproc-per-node", dest="nproc", type=int,
                   help="train each point data-parallel with torchrun on this many processes (GPUs); "
                        "evaluation stays one process")
    p.add_argument("--out", help="sweep directory (default runs/sweep-<method>-<data>-<hash of the design>)")
    p.add_argument("--resume", metavar="SWEEP", help="continue SWEEP as its manifest describes it")


def spec_from_args(args) -> tuple[SweepSpec, str | None]:
    """The ``SweepSpec`` and sweep directory of a ``genae sweep`` command line."""
    given = {k: v for k, v in (("n_samples", args.n_samples), ("split", args.split), ("backbone", args.backbone),
                               ("eval_device", args.eval_device), ("jobs", args.jobs), ("threads", args.threads),
                               ("nproc", args.nproc))
             if v is not None}
    if args.metrics is not None:
        given["metrics"] = parse_metrics(args.metrics)
    if args.resume:
        flags = {"method": "METHOD", "data": "--data", "data_dir": "--data-dir", "config": "--config",
                 "sets": "--set", "grid": "--grid", "point": "--point", "seeds": "--seeds", "out": "--out"}
        design = [flag for k, flag in flags.items() if getattr(args, k)]
        if design:
            raise ConfigError(f"--resume takes the design from {Path(args.resume) / MANIFEST}; drop "
                              f"{', '.join(design)} (only --jobs, --threads, --nproc-per-node and the evaluation "
                              f"options may change)")
        return replace(spec_from_manifest(read_manifest(args.resume)), **given), args.resume
    kw: dict[str, Any] = load_sweep_file(args.config) if args.config else {"sets": []}
    if args.method and kw.get("method") and args.method != kw["method"]:
        raise ConfigError(f"method {args.method!r} on the command line but {kw['method']!r} in {args.config}")
    kw["method"] = args.method or kw.get("method")
    if not kw["method"]:
        raise ConfigError("no method given: genae sweep METHOD ... (or `method:` in --config)")
    kw["sets"] = kw["sets"] + [f"data.{k}={override_text(v)}" for k, v in (("name", args.data),
                                                                           ("root", args.data_dir)) if v] + args.sets
    grid = parse_grid(args.grid)
    twice = sorted(set(grid) & set(kw.get("grid", {})))
    if twice:
        raise ConfigError(f"--grid {', '.join(twice)} is also in the grid of {args.config}")
    kw["grid"] = {**kw.get("grid", {}), **grid}
    kw["points"] = kw.get("points", []) + [parse_point(p) for p in args.point]
    if args.seeds is not None:
        kw["seeds"] = parse_seeds(args.seeds)
    return SweepSpec(**{**kw, **given}), args.out


def sweep_command(args) -> int:
    """``genae sweep``: 0 when every point is done, 1 when some failed (each with its message)."""
    spec, out = spec_from_args(args)
    out = run_sweep(spec, out)
    return 1 if any(p["status"] != "done" for p in read_manifest(out)["points"]) else 0


__all__ = ["SweepSpec", "Budget", "expand", "point_name", "thread_budget", "available_cores", "run_sweep",
           "read_manifest", "load_sweep_file", "spec_from_manifest", "format_table", "headline",
           "parse_grid", "parse_point", "parse_seeds", "override_text"]
