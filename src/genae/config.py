"""Configs: ``TrainConfig``, the resolved ``RunConfig``, YAML files, ``--set`` overrides, validation.

Keys live in three namespaces:

- ``model.*`` — the method's own ``<Name>Config`` dataclass (defined in its method file);
- ``train.*`` — :class:`TrainConfig` (steps, batch, schedule, intervals, AMP, seed, device, ...);
- ``data.*``  — :class:`genae.data.DataConfig` (dataset name and parameters).

A YAML file holds ``method:`` plus any of the three namespaces; ``--set a.b=value`` overrides a
single key, the value parsed as a Python literal (``--set model.betas=(0.5,0.999)``; a bare word is
a string). Validation is strict and happens before any work: an unknown key, a wrong type or an
impossible combination raises :class:`genae.errors.ConfigError` naming the key and the valid
choices. The resolved config is saved as ``config.yaml`` in the run and in every checkpoint.
"""
from __future__ import annotations

import ast
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

import yaml

from .data import DataConfig, check_data_config
from .errors import ConfigError, did_you_mean, short_key, short_repr
from .methods import METHODS
from .optim import SCHEDULES

NAMESPACES = ("model", "train", "data")


@dataclass
class TrainConfig:
    """The ``train.*`` namespace: everything about running the optimisation, nothing about the game."""

    steps: int = 10000                 # training iterations (one call of Method.train_step each)
    batch_size: int = 128
    seed: int = 0                      # seeds weights, noise and the batch order
    device: str = "auto"               # auto | cpu | cuda | cuda:N | mps
    threads: int = 0                   # CPU threads for torch ops (0 = torch's default, one per core)
    out_dir: str | None = None         # run directory; default runs/<method>-<data>-<time>
    lr_schedule: Literal["constant", "linear", "cosine", "step"] = "constant"  # per step, all players
    lr_step_size: int = 1000           # "step" schedule: decay every this many steps
    lr_gamma: float = 0.5              # "step" schedule: multiply by this
    grad_clip: float | dict[str, float] | None = None  # max grad norm, for every player or {player: norm}
    amp: Literal["none", "auto", "bf16", "fp16"] = "none"  # autocast dtype; auto: bf16 where measured
                                       # faster here (CPU bf16 matrix units, bf16 GPUs), else none
    compile: bool = False              # torch.compile each network of the method
    channels_last: bool | Literal["auto"] = "auto"  # channels-last memory format for 4-D weights and
                                       # image batches; auto: for convolutional nets under bf16/fp16 autocast
    sync_bn: bool = True               # under torchrun with several ranks: BatchNorm statistics of the
                                       # global batch (exact); False: of each rank's shard (cheaper)
    balanced_batches: bool = False     # every batch holds every class equally (forced by methods that need it)
    log_every: int = 100               # metrics.jsonl / TensorBoard / progress bar interval
    sample_every: int = 1000           # sample and reconstruction grids
    ckpt_every: int = 1000             # atomic checkpoint interval (also at the end and on SIGINT/SIGTERM)
    keep_ckpts: int = 2                # how many checkpoints to keep
    n_samples: int = 64                # images per sample grid
    prior_examples: int = 10000        # training examples given to Method.fit_prior
    on_nonfinite: Literal["stop", "skip"] = "stop"  # stop the run, or skip that update and go on
    flush_denormal: bool = True        # CPU: flush subnormal floats to zero while training (FTZ/DAZ);
                                       # subnormals slowed an fp32 VAE 1.3x (docs/results.md, issue 38)
    nan_check: Literal["update", "interval"] = "update"  # check every update (one host sync each) or,
                                       # without syncs, at log/checkpoint intervals (GPU throughput)
    progress: bool = True              # show a progress bar
    tensorboard: bool = True           # write TensorBoard events under RUN/tb (scalars, images, config)
    loggers: tuple[str, ...] = ()      # also log to "mlflow" (RUN/mlruns) and/or "wandb" (offline, RUN/wandb)
    init_from: str | None = None       # "RUN[@STEP][:net1,net2]": start these sub-networks (default:
                                       # every one both share) from another run's checkpoint
    networks: tuple[str, ...] = ()     # sub-networks given from Python (genae.train(networks=...)),
                                       # recorded so loading the run asks for the same modules


@dataclass
class RunConfig:
    """A fully resolved config: which method, and its three namespaces."""

    method: str
    model: Any
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "model": _plain(self.model), "train": _plain(self.train),
                "data": _plain(self.data)}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """Strictly rebuild a resolved config (e.g. a run's ``config.yaml``)."""
        unknown = set(d) - {"method", *NAMESPACES}
        if unknown:
            raise ConfigError(f"unknown top-level key(s) {short_repr(sorted(map(str, unknown)))}; valid: "
                              f"method, {', '.join(NAMESPACES)}")
        spec = _method_spec(d.get("method"))
        for ns in NAMESPACES:
            if not isinstance(d.get(ns) or {}, dict):
                raise ConfigError(f"`{ns}` must be a mapping of keys to values, got {short_repr(d[ns])}")
        return cls(method=d["method"],
                   model=from_mapping(spec.cls.Config, {**spec.defaults, **(d.get("model") or {})}, "model"),
                   train=from_mapping(TrainConfig, {**spec.train_defaults, **(d.get("train") or {})}, "train"),
                   data=from_mapping(DataConfig, {**spec.data_defaults, **(d.get("data") or {})}, "data"))


# --------------------------------------------------------------------------------------------
# Building a config from the command line
# --------------------------------------------------------------------------------------------
def build_config(method: str | None = None, data: str | None = None, data_dir: str | None = None,
                 config_file: str | Path | None = None, overrides: typing.Sequence[str] = (),
                 out: str | None = None) -> RunConfig:
    """Resolve defaults <- YAML file <- ``--data/--data-dir/--out`` <- ``--set`` overrides, then validate.

    ``method`` may come from the YAML file's ``method:`` key; a conflicting value is an error.
    """
    tree: dict[str, dict[str, Any]] = {ns: {} for ns in NAMESPACES}
    file_method = None
    if config_file is not None:
        loaded = load_yaml(config_file)
        unknown = set(loaded) - {"method", *NAMESPACES}
        if unknown:
            raise ConfigError(f"{config_file}: unknown top-level key(s) {short_repr(sorted(map(str, unknown)))}; "
                              f"valid: method, {', '.join(NAMESPACES)}")
        file_method = loaded.get("method")
        for ns in NAMESPACES:
            section = loaded.get(ns) or {}
            if not isinstance(section, dict):
                raise ConfigError(f"{config_file}: `{ns}` must be a mapping of keys to values")
            tree[ns].update(section)
    if method and file_method and method != file_method:
        raise ConfigError(f"method {short_repr(method)} on the command line but {short_repr(file_method)} in {config_file}")
    method = method or file_method
    if method is None:
        raise ConfigError("no method given; choose one of: " + ", ".join(METHODS))
    if data is not None:
        tree["data"]["name"] = data
    if data_dir is not None:
        tree["data"]["root"] = str(data_dir)
    if out is not None:
        tree["train"]["out_dir"] = str(out)
    for item in overrides:
        ns, key, value = parse_override(item)
        tree[ns][key] = value
    cfg = RunConfig.from_dict({"method": method, **tree})
    validate(cfg)
    return cfg


class _NoneWord:
    """The bare word ``none`` of ``--set key=none``: the choice "none" for a field that has it
    (``train.amp``), else null like ``null`` (``coerce`` decides, knowing the field's type)."""

    def __repr__(self) -> str:
        return "none"


NONE_WORD = _NoneWord()


def parse_override(item: str) -> tuple[str, str, Any]:
    """``"model.beta=4"`` -> ("model", "beta", 4). Values are Python literals, else plain strings;
    ``true``/``false``/``null`` as in YAML, and ``none`` is ``NONE_WORD`` (see there)."""
    if "=" not in item:
        raise ConfigError(f"override {short_repr(item)} is not of the form namespace.key=value")
    path, raw = item.split("=", 1)
    parts = path.strip().split(".")
    if len(parts) != 2 or parts[0] not in NAMESPACES or not parts[1]:
        raise ConfigError(f"override key {short_repr(path)} must be <namespace>.<key> with namespace one of "
                          f"{', '.join(NAMESPACES)}")
    raw = raw.strip()
    words = {"true": True, "false": False, "null": None, "none": NONE_WORD}  # YAML spellings too
    if raw.lower() in words:
        return parts[0], parts[1], words[raw.lower()]
    try:
        value = ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        # not a literal (a bare word such as `bernoulli`, a path), or one Python refuses to build:
        # an unhashable set or key (TypeError), too deep (RecursionError), a null byte (ValueError)
        value = raw
    return parts[0], parts[1], value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file (``--config``, a sweep file, a run's ``config.yaml``) as a mapping,
    parsed with bounded size, alias expansion and depth (``genae.schema.parse_yaml``)."""
    from .schema import MAX_YAML_BYTES, parse_yaml, read_text

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = read_text(path, MAX_YAML_BYTES, error=ConfigError)
    loaded = parse_yaml(text, path) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping (method:, model:, train:, data:)")
    return loaded


def default_config_yaml(method: str, comments: bool = True) -> str:
    """The defaults of ``method`` in all three namespaces, as YAML (``genae config METHOD``), each
    key followed by the comment its dataclass field carries in the source (meaning, the paper's
    symbol, units): one place documents a key, and the printed YAML still loads as a config."""
    cfg = RunConfig.from_dict({"method": method})
    if not comments:
        return cfg.to_yaml()
    lines = [f"method: {method}"]
    for ns, obj in (("model", cfg.model), ("train", cfg.train), ("data", cfg.data)):
        notes = field_comments(type(obj))
        lines.append(f"{ns}:")
        for f in dataclasses.fields(obj):
            value = yaml.safe_dump(_plain(obj)[f.name], default_flow_style=True, width=1000)
            value = value.split("\n...")[0].strip()
            note = notes.get(f.name)
            lines.append(f"  {f.name}: {value}" + (f"  # {note}" if note else ""))
    return "\n".join(lines) + "\n"


def field_comments(cls: type) -> dict[str, str]:
    """``{field: note}`` for a config dataclass: the ``# ...`` after the field in the source (joined
    with comment-only lines that continue it), else the field's ``name: text`` entry in the class
    docstring (first sentence); empty where neither exists."""
    import inspect
    import re

    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, str] = {}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = ""
    last = None
    for line in source.splitlines():
        stripped = line.strip()
        m = re.match(r"\s+(\w+)\s*:", line)
        if m and m.group(1) in names and not stripped.startswith("#"):
            last = m.group(1)
            if "#" in line:
                out[last] = line.split("#", 1)[1].strip()
        elif stripped.startswith("#") and last in out:
            out[last] += " " + stripped.lstrip("#").strip()
        elif stripped:
            last = None
    entries: dict[str, str] = {}
    key = None
    for line in (inspect.getdoc(cls) or "").splitlines():
        m = re.match(r"(\w+): (.*)", line)
        if m and m.group(1) in names:
            key = m.group(1)
            entries[key] = m.group(2)
        elif key and line.startswith(" ") and line.strip():
            entries[key] += " " + line.strip()
        else:
            key = None
    for name, text in entries.items():
        out.setdefault(name, re.split(r"(?<=[a-z)])\. (?=[A-Z])", text, maxsplit=1)[0].rstrip("."))
    return out


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
def validate(cfg: RunConfig) -> None:
    """Cross-field checks that need no data: impossible combinations, bad ranges."""
    t = cfg.train
    for key in ("steps", "batch_size", "log_every", "sample_every", "ckpt_every", "keep_ckpts",
                "n_samples", "lr_step_size", "prior_examples"):
        if getattr(t, key) <= 0:
            raise ConfigError(f"train.{key} must be positive, got {getattr(t, key)}")
    if t.threads < 0:
        raise ConfigError(f"train.threads must be 0 (torch's default) or positive, got {t.threads}")
    if t.lr_schedule not in SCHEDULES:  # also guarded by Literal, kept for YAML edited by hand
        raise ConfigError(f"train.lr_schedule={short_repr(t.lr_schedule)}; valid: {', '.join(SCHEDULES)}")
    if isinstance(t.grad_clip, (int, float)) and t.grad_clip <= 0:
        raise ConfigError("train.grad_clip must be positive (or null to disable)")
    if t.device != "auto" and not (t.device in ("cpu", "cuda", "mps") or t.device.startswith("cuda:")):
        raise ConfigError(f"train.device={short_repr(t.device)}; valid: auto, cpu, cuda, cuda:N, mps")
    if t.nan_check == "interval" and t.on_nonfinite == "skip":
        raise ConfigError("train.on_nonfinite=skip needs train.nan_check=update: an update can only be "
                          "skipped if it is checked before it is applied")
    if t.amp == "fp16" and t.device == "cpu":
        raise ConfigError("train.amp=fp16 needs a GPU; on the CPU use train.amp=bf16 or none")
    check_loggers(t.loggers)
    check_optimizer_fields(cfg.model)
    check_data_config(cfg.data)


#: ``train.loggers`` choices -> the package each needs (the sinks themselves: ``genae.loggers``).
LOGGERS = {"mlflow": "mlflow", "wandb": "wandb"}


def check_loggers(names: Iterable[str]) -> None:
    """A ``ConfigError`` for an unknown ``train.loggers`` name or a logger whose package is absent."""
    import importlib.util

    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"train.loggers: unknown logger {short_repr(name)}; choose from {', '.join(LOGGERS)} "
                              "(TensorBoard is train.tensorboard)")
        if importlib.util.find_spec(LOGGERS[name]) is None:
            raise ConfigError(f"train.loggers: {name} needs the {LOGGERS[name]!r} package: "
                              f"pip install 'genae[loggers]'")


def check_optimizer_fields(model: Any) -> None:
    """The ranges PyTorch's optimizers accept, checked with the config (before a run directory
    or any data exists) for the fields every method names alike: learning rates (``lr``,
    ``*_lr``) finite and positive, Adam's ``betas``/``*_betas`` each in [0, 1), ``momentum``
    finite and >= 0. Otherwise ``--set model.betas=(0.5,2.0)`` passes the type check and fails
    with a traceback where the optimizer is built."""
    import math

    for f in dataclasses.fields(model):
        name, value = f.name, getattr(model, f.name)
        if (name == "lr" or name.endswith("_lr")) and isinstance(value, float) \
                and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"model.{name}={value}: a learning rate must be a finite number > 0")
        if (name == "betas" or name.endswith("_betas")) and isinstance(value, tuple) \
                and not all(isinstance(b, float) and 0.0 <= b < 1.0 for b in value):
            raise ConfigError(f"model.{name}={short_repr(value)}: Adam's betas (β1, β2) must each lie in "
                              f"[0, 1), e.g. (0.5, 0.999)")
        if name == "momentum" and isinstance(value, float) and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"model.{name}={value}: momentum must be a finite number >= 0")


def check_against_data(cfg: RunConfig, info) -> None:
    """Method/dataset combinations, checked once the dataset (its ``DataInfo``) is known: what the
    method's ``contract`` for this config needs of the labels."""
    offer = METHODS[cfg.method].cls.contract(cfg.model, info)
    num_classes = info.num_classes
    balanced = cfg.train.balanced_batches or offer.needs_balanced_batches
    if (offer.needs_labels or balanced) and not num_classes:
        why = "needs labels" if offer.needs_labels else "uses class-balanced batches (train.balanced_batches)"
        raise ConfigError(f"{cfg.method} {why}, but dataset {cfg.data.name!r} is unlabelled")
    if balanced and cfg.train.batch_size < num_classes:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} cannot hold every one of the "
                          f"{num_classes} classes of {cfg.data.name!r} in each batch")


# --------------------------------------------------------------------------------------------
# Strict typed dataclass construction
# --------------------------------------------------------------------------------------------
def from_mapping(cls: type, mapping: dict[str, Any], prefix: str) -> Any:
    """Build dataclass ``cls`` from ``mapping``, rejecting unknown keys and wrong types."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"`{prefix}` must be a mapping, got {type(mapping).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in mapping.items():
        if key not in hints or key not in names:
            raise ConfigError(f"unknown key {prefix}.{short_key(key)}; valid keys: {', '.join(names)}")
        kwargs[key] = coerce(value, hints[key], f"{prefix}.{key}")
    return cls(**kwargs)


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a config annotation and convert lists to tuples, ints to floats.

    Supported annotations: bool, int, float, str, None, Literal[...], tuple[T, ...] / tuple[T1, T2],
    dict[str, T], and unions of these (``X | None``).
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if value is NONE_WORD:  # `--set key=none`: the choice the help names where there is one, else null
        value = "none" if "none" in _literal_choices(annotation) else None
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return coerce(value, option, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}={short_repr(value)} has the wrong type; expected {_type_name(annotation)}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {short_repr(value)}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}={short_repr(value)} is not valid; choose one of: {', '.join(map(str, args))}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}={short_repr(value)}: expected true/false")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}={short_repr(value)}: expected an integer")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}={short_repr(value)}: expected a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}={short_repr(value)}: expected a string")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={short_repr(value)}: expected a sequence {_type_name(annotation)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}={short_repr(value)}: expected {len(args)} values")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={short_repr(value)}: expected a mapping {_type_name(annotation)}")
        return {coerce(k, args[0], key): coerce(v, args[1], f"{key}.{short_key(k)}") for k, v in value.items()}
    if annotation is Any:
        return value
    raise ConfigError(f"{key}: unsupported config annotation {annotation!r}")


def _literal_choices(annotation: Any) -> tuple:
    """The choices of a ``Literal[...]`` annotation, or of the ``Literal``s in a union."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(c for option in typing.get_args(annotation) for c in _literal_choices(option))
    return ()


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def flatten_config(tree: dict[str, Any]) -> dict[str, Any]:
    """A config dict's namespaces flattened: ``{"model": {"lr": 1}, "method": "vae"}`` ->
    ``{"model.lr": 1, "method": "vae"}``. One level only: a key's own mapping value (e.g.
    ``train.grad_clip`` per player) stays whole, so every ``ns.key`` is a key ``--set`` accepts."""
    out: dict[str, Any] = {}
    for ns, v in tree.items():
        if isinstance(v, dict):
            out.update({f"{ns}.{k}": x for k, x in v.items()})
        else:
            out[ns] = v
    return out


def _plain(obj: Any) -> dict[str, Any]:
    """Dataclass -> dict of YAML-friendly values (tuples become lists)."""
    def conv(v: Any) -> Any:
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    return {f.name: conv(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _method_spec(name: Any):
    if not isinstance(name, str) or name not in METHODS:  # `method: [vae, ae]` is no name either
        hint = did_you_mean(name, METHODS) if isinstance(name, str) else ""
        raise ConfigError(f"unknown method {short_repr(name)}{hint}; choose one of: {', '.join(METHODS)}")
    return METHODS[name]
