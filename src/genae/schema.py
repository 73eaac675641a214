"""What genae reads back from disk is checked before anything uses it: bounded parsing and one
small schema per file.

Files read back from a run, a checkpoint or a sweep, and their schemas here::

    RUN/config.yaml, RUN/checkpoints/*/config.yaml   RUN_CONFIG (the namespaces are then typed by
                                                      the config dataclasses: genae.config)
    RUN/checkpoints/*/trainer.json (+ .safetensors)  TRAINER_STATE (the decoded trainer state)
    RUN/checkpoints/*/manifest.json                  CHECKPOINT_MANIFEST
    RUN/data.json                                    DATA_RECORD
    RUN/run.json                                     RUN_INFO
    RUN/eval.json, RUN/eval-step-*.json              EVAL_RECORD
    RUN/loggers.json                                 LOGGER_IDS
    SWEEP/manifest.json                              SWEEP_MANIFEST
    a sweep file (genae sweep --config)              SWEEP_FILE

A file that parses but holds the wrong types (edited by hand, written by another tool, crafted)
is refused with a ``RunFileError`` naming the file and the field, e.g. ``RUN/run.json: field
parameters.vae: expected an integer >= 0, got 'many'``, before any of it is used: no traceback,
nothing half applied. Readers of informational files (run.json, eval.json, data.json) warn and
go on without them, as they do for a file that does not parse; the others stop.

Parsing is bounded in time and memory whatever the bytes: a file larger than its limit is
refused before it is read whole, and YAML (``parse_yaml``) is composed into nodes first and
refused, before any Python object is built, when its aliases would expand to more than
``MAX_YAML_NODES`` nodes, when an alias refers to itself, or when it nests deeper than
``MAX_DEPTH`` (a 1 KB "billion laughs" file expands to 10⁹ nodes; refused in milliseconds).

The schema language is a handful of classes: ``Int``, ``Num``, ``Str``, ``Bool``, ``NULL``,
``ANY``, ``Opt``, ``OneOf``, ``Seq``, ``Tup``, ``MapOf``, ``Record``, ``Tensor``, ``Array``;
``check(value, spec, source)`` returns ``value`` unchanged or raises.
"""
from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from .errors import ConfigError, RunFileError, short_key, short_repr

__all__ = ["check", "parse_json", "parse_yaml", "read_json", "read_text", "MAX_YAML_BYTES", "MAX_JSON_BYTES",
           "MAX_YAML_NODES", "MAX_DEPTH", "RUN_CONFIG", "DATA_INFO", "TRAINER_STATE", "CHECKPOINT_MANIFEST",
           "DATA_RECORD", "RUN_INFO", "EVAL_RECORD", "LOGGER_IDS", "SWEEP_MANIFEST", "SWEEP_FILE"]

MAX_YAML_BYTES = 1 << 20    # configs are a few KB; a sweep file with a long grid a few dozen
MAX_JSON_BYTES = 64 << 20   # a sweep manifest of thousands of points, a trainer state of many tensors
MAX_YAML_NODES = 100_000    # nodes after alias expansion (a resolved config has about 100)
MAX_DEPTH = 64              # nesting of YAML collections (a config nests 3 deep)


# --------------------------------------------------------------------------------------------
# Bounded reading and parsing
# --------------------------------------------------------------------------------------------
def read_text(path: str | Path, limit: int, error: type[Exception] = RunFileError) -> str:
    """The UTF-8 text of ``path``, refusing a file over ``limit`` bytes without reading it whole."""
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{path} is larger than {limit:,} bytes: not a file genae wrote (refused unread)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path} is not a text file (not UTF-8)") from None


def read_json(path: str | Path, spec: "Spec | None" = None, limit: int = MAX_JSON_BYTES) -> Any:
    """``path`` parsed as JSON and checked against ``spec``; ``RunFileError`` naming the file for
    a file too large, not JSON, nested too deeply, or of the wrong types (``OSError`` passes)."""
    return parse_json(read_text(path, limit), spec, path)


def parse_json(text: str, spec: "Spec | None", source: str | Path) -> Any:
    """``text`` (already read, e.g. by ``fileio.read_own``) parsed as JSON and checked against
    ``spec``; ``RunFileError`` naming ``source`` as ``read_json``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise RunFileError(f"{source} is nested too deeply to be a file genae wrote") from None
    except ValueError as e:  # JSONDecodeError, and an integer of more than 4300 digits
        raise RunFileError(f"{source} is not valid JSON ({str(e)[:120]})") from None
    return value if spec is None else check(value, spec, source)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that measures the document's node graph after composing it and
    before constructing any Python object from it (``_check_expansion``)."""

    def compose_document(self):
        node = super().compose_document()
        _check_expansion(node)
        return node


class _TooBig(Exception):
    pass


def _check_expansion(root: yaml.Node) -> None:
    """Raise ``_TooBig`` when ``root`` expanded (every alias replaced by a copy of its anchor)
    would hold more than ``MAX_YAML_NODES`` nodes, refers to itself, or nests deeper than
    ``MAX_DEPTH``. Each distinct node is visited once (sizes are memoised), so a document that
    expands to 10⁹ nodes is measured in time proportional to its text."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _TooBig("an alias refers to the collection that holds it (a recursive document)")
        if depth > MAX_DEPTH:
            raise _TooBig(f"it nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        active.add(key)
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_YAML_NODES:
                raise _TooBig(f"its aliases expand to more than {MAX_YAML_NODES:,} nodes (an alias bomb?)")
        active.discard(key)
        sizes[key] = total
        return total

    if root is not None:
        size(root, 0)


def parse_yaml(text: str, source: str | Path, error: type[Exception] = ConfigError) -> Any:
    """``text`` parsed as YAML (the safe subset: plain data, no Python objects) with bounded time
    and memory: ``error`` naming ``source`` for a document over ``MAX_YAML_BYTES``, one whose
    aliases expand too far or that nests too deeply (see the module docstring), or invalid YAML."""
    if len(text) > MAX_YAML_BYTES:
        raise error(f"{source} is larger than {MAX_YAML_BYTES:,} bytes: too large for a config (refused unread)")
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters here already
        return loader.get_single_data()
    except _TooBig as e:
        raise error(f"{source} is refused: {e}") from None
    except RecursionError:
        raise error(f"{source} is refused: it nests too deeply") from None
    except yaml.YAMLError as e:
        raise error(f"{source} is not valid YAML: {_first_lines(e)}") from None
    except (ValueError, OverflowError) as e:  # e.g. an integer of more than 4300 digits
        raise error(f"{source} is not valid YAML: {str(e)[:120]}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _first_lines(e: Exception) -> str:
    """A YAML error in one line (PyYAML's spans several, with a caret under the place)."""
    return " ".join(line.strip() for line in str(e).splitlines() if line.strip() and "^" not in line)[:300]


# --------------------------------------------------------------------------------------------
# The schema language
# --------------------------------------------------------------------------------------------
class _Mismatch(Exception):
    def __init__(self, where: str, expected: str, got: Any):
        self.where, self.expected, self.got = where, expected, got


class Spec:
    """One expectation about a value; ``name`` says it in words for the message."""

    name = "a value"

    def check(self, v: Any, where: str) -> None:
        raise NotImplementedError

    def fail(self, v: Any, where: str, expected: str | None = None):
        raise _Mismatch(where, expected or self.name, v)


def _is_int(v: Any) -> bool:
    """An integer (NumPy's included: states hold them), not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, _np_bool()))


def _np_bool() -> type:
    import numpy as np

    return np.bool_


def _range_name(base: str, lo: Any, hi: Any) -> str:
    if lo is not None and hi is not None:
        return f"{base} in [{lo}, {hi}]"
    if lo is not None:
        return f"{base} >= {lo}"
    return f"{base} <= {hi}" if hi is not None else base


class Int(Spec):
    def __init__(self, lo: int | None = None, hi: int | None = None):
        self.lo, self.hi = lo, hi
        self.name = _range_name("an integer", lo, hi)

    def check(self, v, where):
        if not _is_int(v) or (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            self.fail(v, where)


class Num(Spec):
    """An int or a float (not a bool); ``finite``: no NaN or infinity."""

    def __init__(self, lo: float | None = None, hi: float | None = None, finite: bool = False):
        self.lo, self.hi, self.finite = lo, hi, finite
        self.name = _range_name("a finite number" if finite else "a number", lo, hi)

    def check(self, v, where):
        if not (_is_int(v) or (isinstance(v, numbers.Real) and not isinstance(v, (bool, _np_bool())))):
            self.fail(v, where)
        if not _is_int(v) and math.isnan(v):
            if self.finite or self.lo is not None or self.hi is not None:
                self.fail(v, where)
            return
        if (self.finite and not math.isfinite(v)) or (self.lo is not None and v < self.lo) \
                or (self.hi is not None and v > self.hi):
            self.fail(v, where)


class Str(Spec):
    def __init__(self, choices: Iterable[str] | None = None):
        self.choices = tuple(choices) if choices is not None else None
        self.name = f"one of {', '.join(self.choices)}" if self.choices else "a string"

    def check(self, v, where):
        if not isinstance(v, str) or (self.choices is not None and v not in self.choices):
            self.fail(v, where)


class _Bool(Spec):
    name = "true or false"

    def check(self, v, where):
        if not isinstance(v, bool):
            self.fail(v, where)


class _Null(Spec):
    name = "null"

    def check(self, v, where):
        if v is not None:
            self.fail(v, where)


class _Any(Spec):
    name = "anything"

    def check(self, v, where):
        pass


Bool, NULL, ANY = _Bool(), _Null(), _Any()


class OneOf(Spec):
    """The first option that fits; the message names them all."""

    def __init__(self, *options: Spec):
        self.options = options
        self.name = " or ".join(o.name for o in options)

    def check(self, v, where):
        for option in self.options:
            try:
                option.check(v, where)
                return
            except _Mismatch as e:
                if e.where != where:  # the right kind of value, wrong inside: say where
                    if _kind_fits(option, v):
                        raise
        self.fail(v, where)


def _kind_fits(option: Spec, v: Any) -> bool:
    """Whether ``v`` is the container ``option`` describes (so an error inside it is the one to
    report, rather than "expected A or B")."""
    return (isinstance(option, (Seq, Tup)) and isinstance(v, (list, tuple))) or \
        (isinstance(option, (MapOf, Record)) and isinstance(v, dict))


def Opt(spec: Spec) -> Spec:  # noqa: N802 (reads like the type it describes)
    """``spec`` or null."""
    return OneOf(spec, NULL)


class Seq(Spec):
    """A list (or tuple) of items of ``item``; ``length``: exactly so many, else at least
    ``min_len``."""

    def __init__(self, item: Spec = ANY, min_len: int = 0, length: int | None = None):
        self.item, self.min_len, self.length = item, min_len, length
        self.name = f"a list of {length}" if length is not None else "a non-empty list" if min_len else "a list"
        if item is not ANY:
            self.name += f" ({item.name})" if length is not None else f" of ({item.name})"

    def check(self, v, where):
        if not isinstance(v, (list, tuple)) or len(v) < self.min_len or \
                (self.length is not None and len(v) != self.length):
            self.fail(v, where)
        if self.item is not ANY:
            for i, x in enumerate(v):
                self.item.check(x, f"{where}[{i}]")


class Tup(Spec):
    """A list or tuple of exactly ``len(items)`` values, each of its own spec."""

    def __init__(self, *items: Spec):
        self.items = items
        self.name = f"a list of {len(items)} values"

    def check(self, v, where):
        if not isinstance(v, (list, tuple)) or len(v) != len(self.items):
            self.fail(v, where)
        for i, (x, spec) in enumerate(zip(v, self.items)):
            spec.check(x, f"{where}[{i}]")


class MapOf(Spec):
    """A mapping of keys of ``key`` to values of ``value``."""

    def __init__(self, key: Spec, value: Spec = ANY):
        self.key, self.value = key, value
        self.name = "a mapping" + ("" if value is ANY else f" to ({value.name})")

    def check(self, v, where):
        if not isinstance(v, dict):
            self.fail(v, where)
        for k, x in v.items():
            self.key.check(k, _key_of(where, k))
            self.value.check(x, _field(where, k))


class Record(Spec):
    """A mapping with named ``fields`` (all required but ``optional``) and other keys of
    ``extra`` (None: no other keys; the default ``ANY`` lets a newer genae add fields);
    ``rule(value)`` checks across fields, returning ``(field, expected)`` when it fails."""

    def __init__(self, fields: dict[str, Spec], optional: Iterable[str] = (), extra: Spec | None = ANY,
                 rule: Callable[[dict], tuple[str, str] | None] | None = None):
        self.fields, self.optional, self.extra, self.rule = fields, set(optional), extra, rule
        self.name = "a mapping with " + ", ".join(fields)

    def check(self, v, where):
        if not isinstance(v, dict):
            self.fail(v, where)
        for key, spec in self.fields.items():
            if key in v:
                spec.check(v[key], _field(where, key))
            elif key not in self.optional:
                raise _Mismatch(_field(where, key), f"{spec.name} (it is missing)", _MISSING)
        for key, x in v.items():
            if key in self.fields:
                continue
            if self.extra is None:
                raise _Mismatch(_field(where, key), f"no such field (known: {', '.join(self.fields)})", x)
            if not isinstance(key, str):
                raise _Mismatch(_key_of(where, key), "a string", key)
            self.extra.check(x, _field(where, key))
        if self.rule is not None:
            broken = self.rule(v)
            if broken is not None:
                raise _Mismatch(_field(where, broken[0]), broken[1], v.get(broken[0], _MISSING))


class Tensor(Spec):
    """A ``torch.Tensor`` of ``dtype`` (a torch dtype, or None: any) with ``ndim`` dimensions
    (None: any) and, when given, ``shape`` (a tuple, or a function giving it)."""

    def __init__(self, dtype: Any = None, ndim: int | None = None, shape: Any = None):
        self.dtype, self.ndim, self.shape = dtype, ndim, shape
        self.name = "a tensor" + (f" of {dtype}" if dtype is not None else "") + \
            (f" with {ndim} dimension(s)" if ndim is not None else "")

    def check(self, v, where):
        import torch

        shape = self.shape() if callable(self.shape) else self.shape
        if not isinstance(v, torch.Tensor) or (self.dtype is not None and v.dtype != self.dtype) or \
                (self.ndim is not None and v.dim() != self.ndim) or (shape is not None and tuple(v.shape) != shape):
            self.fail(v, where, self.name + (f" of shape {shape}" if shape is not None else ""))


class Array(Spec):
    """A NumPy array of ``dtype`` (a string) and ``shape`` (None: any)."""

    def __init__(self, dtype: str, shape: tuple[int, ...] | None = None):
        self.dtype, self.shape = dtype, shape
        self.name = f"a NumPy array of {dtype}" + (f" of shape {shape}" if shape else "")

    def check(self, v, where):
        import numpy as np

        if not isinstance(v, np.ndarray) or str(v.dtype) != self.dtype or \
                (self.shape is not None and v.shape != self.shape):
            self.fail(v, where)


_MISSING = type("_Missing", (), {"__repr__": lambda self: "nothing"})()


def _field(where: str, key: Any) -> str:
    return f"{where}.{short_key(key)}" if where else short_key(key)


def _key_of(where: str, key: Any) -> str:
    """Where a mapping's key (rather than its value) is wrong."""
    return f"{where + ' ' if where else ''}key {short_repr(key, 30)}"


def check(value: Any, spec: Spec, source: str | Path, error: type[Exception] = RunFileError) -> Any:
    """``value`` when it fits ``spec``; else ``error`` (default ``RunFileError``) naming
    ``source``, the field and what was expected, in one line."""
    try:
        spec.check(value, "")
    except _Mismatch as e:
        where = f"field {e.where}" if e.where else "the file"
        got = "" if e.got is _MISSING else f", got {short_repr(e.got)}"
        # a file genae wrote was damaged or edited; a file the user wrote (a sweep file) is theirs
        lead = f"{source} is damaged or was edited" if issubclass(error, RunFileError) else str(source)
        raise error(f"{lead}: {where}: expected {e.expected}{got}") from None
    return value


# --------------------------------------------------------------------------------------------
# The files
# --------------------------------------------------------------------------------------------
def _data_info_rule(d: dict) -> tuple[str, str] | None:
    dims = {"image": 3, "vector": 1}.get(d.get("kind", "image"))
    if dims is not None and len(d["shape"]) != dims:
        return "shape", f"{dims} sizes for {d.get('kind', 'image')} data"
    return None


#: What a method was built for (``genae.data.DataInfo``): the data section of a run's config.yaml.
DATA_INFO = Record({"shape": Seq(Int(1, 1 << 16), min_len=1), "num_classes": Opt(Int(1)),
                    "kind": Str(("image", "vector")), "size": Opt(Int(0))},
                   optional=("num_classes", "kind", "size"), rule=_data_info_rule)

_SECTION = Opt(MapOf(Str(), ANY))  # typed key by key by the config dataclasses (genae.config)
#: RUN/config.yaml and each checkpoint's config.yaml.
RUN_CONFIG = Record({"method": Str(), "model": _SECTION, "train": _SECTION, "data": _SECTION,
                     "data_info": DATA_INFO}, optional=("model", "train", "data"), extra=None)

#: RUN/checkpoints/step-*/manifest.json: the checkpoint is complete when every file it lists matches.
CHECKPOINT_MANIFEST = Record({"format": Int(1), "step": Int(0), "method": Str(),
                              "files": MapOf(Str(), Record({"size": Int(0), "sha256": Str()}))},
                             optional=("format", "step", "method"))


def _torch_rng_shape() -> tuple[int, ...]:
    import torch

    return tuple(torch.get_rng_state().shape)


def _sampler_rule(d: dict) -> tuple[str, str] | None:
    if d["balanced"]:
        if not isinstance(d["consumed"], (list, tuple)):
            return "consumed", "a list of counts per class (balanced sampler)"
        if "class_sizes" not in d or len(d["class_sizes"]) != len(d["consumed"]):
            return "class_sizes", "one size per class of consumed"
    elif not _is_int(d["consumed"]):
        return "consumed", "an integer (unbalanced sampler)"
    return None


def _trainer_state() -> Spec:
    import torch

    tensor = Tensor()
    number = OneOf(Num(), tensor)
    optimizer = Record({
        "state": MapOf(Int(0), MapOf(Str(), OneOf(tensor, Num(), Bool, NULL))),
        "param_groups": Seq(Record({"params": Seq(Int(0)), "lr": number},
                                   extra=OneOf(Num(), Bool, Str(), NULL, Seq(Num()), tensor)))})
    sampler = Record({"seed": Int(), "num_examples": Int(1), "balanced": Bool,
                      "consumed": OneOf(Int(0), Seq(Int(0))), "class_sizes": Seq(Int(0)),
                      "epoch": Int(0), "position": Int(0)},
                     optional=("class_sizes", "epoch", "position"), rule=_sampler_rule)
    byte_state = Tensor(torch.uint8, ndim=1)
    rng = Record({"torch": Tensor(torch.uint8, ndim=1, shape=_torch_rng_shape),
                  "numpy": Tup(Str(("MT19937",)), Array("uint32", (624,)), Int(0, 624), Int(0, 1), Num()),
                  "python": Tup(Int(), Seq(Int(0, (1 << 32) - 1), length=625), Opt(Num())),
                  "cuda": Opt(Seq(byte_state)), "cuda_rank": Opt(byte_state)},
                 optional=("cuda", "cuda_rank"))
    return Record({"step": Int(0), "optimizers": MapOf(Str(), optimizer),
                   "schedules": MapOf(Str(), Record({"last_epoch": Int()}, extra=ANY)),
                   "sampler": sampler, "scaler": Opt(MapOf(Str(), OneOf(Num(), Bool, tensor))), "rng": rng})


class _Lazy(Spec):
    """A spec built on first use (the trainer state's needs torch)."""

    def __init__(self, build: Callable[[], Spec], name: str):
        self.build, self.spec, self.name = build, None, name

    def check(self, v, where):
        if self.spec is None:
            self.spec = self.build()
        self.spec.check(v, where)


#: A checkpoint's trainer state (trainer.json + trainer.safetensors decoded by ``genae.state_io``,
#: or a legacy trainer.pt): what ``TrainingState.load_state_dict`` and the RNG restore consume.
TRAINER_STATE = _Lazy(_trainer_state, "a trainer state")

#: RUN/data.json: per split (null when absent) where it came from and the SHA-256 of each file.
DATA_RECORD = MapOf(Str(), Opt(Record({"source": Str(), "files": MapOf(Str(), Str())},
                                      optional=("source", "files"))))

#: RUN/run.json: versions, device, wall time and parameter counts (the report's Run table).
RUN_INFO = Record({"method": Str(), "data": Str(), "step": Int(0), "genae": Str(), "torch": Str(),
                   "python": Str(), "git_commit": Opt(Str()), "device": Str(), "wall_seconds": Num(0, finite=True),
                   "parameters": MapOf(Str(), Int(0)), "total_parameters": Int(0), "amp_auto": Str(),
                   "channels_last_auto": Str()},
                  optional=("method", "data", "step", "genae", "torch", "python", "git_commit", "device",
                            "wall_seconds", "parameters", "total_parameters", "amp_auto",
                            "channels_last_auto"))

#: One metric's result in eval.json (a bare number in files written before results had fields).
METRIC_ENTRY = OneOf(Record({"value": Opt(Num()), "step": Int(0), "skipped": Str()},
                            optional=("value", "step", "skipped")), Num())
#: RUN/eval.json and RUN/eval-step-*.json.
EVAL_RECORD = Record({"run": Str(), "method": Str(), "data": Str(), "step": Int(0),
                      "metrics": MapOf(Str(), METRIC_ENTRY)}, optional=("run", "method", "data", "step"))

#: RUN/loggers.json: the MLflow / W&B run ids a resumed run continues.
LOGGER_IDS = MapOf(Str(), Str())

_OVERRIDE = Str()
_POINT = Record({"name": Str(), "run": Str(), "log": Str(), "overrides": Seq(_OVERRIDE), "seed": Int(),
                 "status": Str(("queued", "running", "done", "failed")), "message": Opt(Str()),
                 "step": Opt(Int(0)), "steps": Opt(Int(0)), "train_s": Num(0, finite=True),
                 "eval_s": Num(0, finite=True), "eval": Opt(MapOf(Str(), METRIC_ENTRY)),
                 "eval_with": Opt(MapOf(Str(), ANY))},
                optional=("log", "message", "step", "steps", "train_s", "eval_s", "eval", "eval_with"))
#: SWEEP/manifest.json: the design (method, set, grid, list, seeds), the evaluation asked, the
#: thread budget and every point's state (``genae.sweep``).
SWEEP_MANIFEST = Record({
    "format": Int(1), "method": Str(), "set": Seq(_OVERRIDE), "grid": MapOf(Str(), Seq(Str(), min_len=1)),
    "list": Seq(MapOf(Str(), Str())), "seeds": Opt(Seq(Int(), min_len=1)), "data": Str(), "config": Opt(Str()),
    "metrics": Seq(Str()),
    "eval": Record({"n_samples": Int(1), "split": Str(("test", "train")), "backbone": Str(("domain", "inception")),
                    "eval_device": Str()}, optional=("n_samples", "split", "backbone", "eval_device")),
    "asked": Record({"jobs": Opt(Int(1)), "threads": Opt(Int(1)), "nproc": Int(1)},
                    optional=("jobs", "threads", "nproc")),
    "budget": ANY, "created": Str(), "updated": Str(), "points": Seq(_POINT)},
    optional=("format", "data", "config", "metrics", "eval", "asked", "budget", "created", "updated"))

#: A sweep file (``genae sweep --config``): a training config plus the sweep's own keys; the
#: namespaces are typed by ``genae.config`` as for ``genae train --config``.
SWEEP_FILE = Record({
    "method": Str(), "model": _SECTION, "train": _SECTION, "data": OneOf(Str(), _SECTION),
    "set": Opt(OneOf(Seq(Str()), MapOf(Str(), ANY))), "grid": Opt(MapOf(Str(), Seq(ANY, min_len=1))),
    "list": Opt(Seq(MapOf(Str(), ANY))), "seeds": OneOf(Int(), Str(), Seq(OneOf(Int(), Str()), min_len=1)),
    "metrics": OneOf(Str(), Seq(Str())), "n_samples": Int(1), "split": Str(("test", "train")),
    "backbone": Str(("domain", "inception")), "eval_device": Str(), "jobs": Opt(Int(1)),
    "threads": Opt(Int(1)), "nproc": Int(1)},
    optional=("method", "model", "train", "data", "set", "grid", "list", "seeds", "metrics", "n_samples",
              "split", "backbone", "eval_device", "jobs", "threads", "nproc"), extra=None)
