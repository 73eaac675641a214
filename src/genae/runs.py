"""Run directories: layout, verified checkpoints, one writer per run, ``load_run``.

Layout of a run directory::

    RUN/config.yaml                 resolved config (method, model, train, data) + data info
    RUN/data.json                   where each data split came from and the SHA-256 of its files
    RUN/.lock                       flock'ed by the one train/resume process writing the run
    RUN/checkpoints/step-00001000/  model.safetensors (weights), trainer.json + trainer.safetensors
                                    (optimizer, schedule, RNG, data position, AMP scaler, step),
                                    config.yaml, and manifest.json (sizes and SHA-256 of the others)
    RUN/checkpoints/latest          the newest checkpoint's name: a note for people and scripts only
    RUN/metrics.jsonl               one JSON object per log interval
    RUN/tb/                         TensorBoard events
    RUN/samples/                    samples_<step>.png, recon_<step>.png
    RUN/loss_curves.png, eval.json, report.html

A model folder written by ``genae export`` (``genae.export``: weights, config, model card,
``genae_model.json`` with the weights' SHA-256) is read wherever a run is read for inference
(``load_run``, ``open_checkpoint``, ``require_checkpoint``, section "Exported models" below); it
has no training state, so ``RunLock`` refuses it.

A checkpoint is written into a temporary directory, every file fsync'ed, the manifest last, then
renamed into place, so a run killed at any instant leaves the previous checkpoint complete. A
checkpoint is *complete* when its manifest checks; every reader (resume, eval, sample, report)
takes the newest complete one and names each damaged newer one it skips. Nothing read from a run
can execute code: weights and trainer tensors are safetensors, the rest JSON/YAML (``state_io``),
parsed with bounded size and checked against a schema per file before use (``genae.schema``).
Checkpoints written before manifests (a pickled ``trainer.pt``) are read as they are, with the
restricted weights-only unpickler; resuming such a run writes new checkpoints in the new format.
(The design names ``checkpoints/model.safetensors``; one directory per step is what makes the
files of a checkpoint atomic together.)
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load as load_tensors, save as save_tensors

from . import fileio, schema, state_io
from .fileio import atomic_write, fsync_dir, sha256_file, write_synced
from .config import RunConfig, flatten_config, load_yaml
from .errors import ConfigError, GenaeError, RunFileError
from .methods import METHODS, DataInfo, Method

CONFIG = "config.yaml"
CKPT_DIR = "checkpoints"
LATEST = "latest"


def read_metrics(path: str | Path) -> list[dict]:
    """Rows of a ``metrics.jsonl`` file: its JSON objects (a truncated last line, from a killed
    run, and any line that is not an object are ignored)."""
    rows = []
    path = Path(path)
    if not path.exists():
        return rows
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def new_run_dir(cfg: RunConfig) -> tuple[Path, "RunLock", list[Path]]:
    """Create and lock ``cfg.train.out_dir`` (default ``runs/<method>-<data>-<YYYYmmdd-HHMMSS>``).

    Refuses, touching nothing, a path that is a file, a run (continue it with ``genae resume``)
    and a non-empty folder that is not a run (its files are not ours to mix checkpoints into).
    Returns the directory, its ``RunLock``, held (the caller releases it when done), and the
    folders this call created, innermost first (none when the directory existed, empty): what
    ``discard_new_run`` removes when the run's set-up fails.
    """
    if cfg.train.out_dir:
        path = Path(cfg.train.out_dir)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        data = cfg.data.name.replace("folder:", "folder-").replace("/", "_")
        path = Path("runs") / f"{cfg.method}-{data}-{stamp}"
    _check_new_run_dir(path, ignore=(LOCK,))
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenaeError(f"cannot create the run directory {path}: {_os_reason(e)}") from None
    lock = RunLock(path).acquire()
    try:
        _check_new_run_dir(path, ignore=(LOCK,))  # another writer may have started between the two
    except GenaeError:
        lock.release()
        raise
    return path, lock, missing


def discard_new_run(path: Path, created: list[Path]) -> None:
    """Undo ``new_run_dir`` after a set-up that failed before the first training step, so that
    the retry finds the directory free: everything written into ``path`` (empty, but for a lock
    file, when the run began), then the folders of ``created`` that are still empty (``path``
    itself, and parents such as ``runs/`` unless another run has appeared in them meanwhile).
    A folder that existed before stays. Call while holding the run's lock."""
    for entry in Path(path).iterdir():
        fileio.remove(path, entry, ignore_errors=True)
    for folder in created:  # innermost first; rmdir leaves a folder that is not empty
        with contextlib.suppress(OSError):
            folder.rmdir()


def _check_new_run_dir(path: Path, ignore: tuple[str, ...]) -> None:
    if path.exists() and not path.is_dir():
        raise GenaeError(f"--out {path} is a file, not a directory; choose another --out")
    if (path / CONFIG).exists():
        raise GenaeError(f"{path} already holds a run; continue it with `genae resume {path}` "
                         "or choose another --out")
    if path.is_dir():
        entries = sorted(p.name for p in path.iterdir() if p.name not in ignore)
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise GenaeError(f"--out {path} is a non-empty folder that is not a genae run ({shown}); "
                             "nothing in it was touched: choose an empty or new folder")


def write_config(run_dir: Path, cfg: RunConfig, info: DataInfo) -> None:
    atomic_write(Path(run_dir) / CONFIG, _config_text(cfg, info).encode(), root=run_dir)


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's resolved config as a dict with keys method, model, train, data, data_info
    (checked against ``schema.RUN_CONFIG``; the namespaces are typed by ``RunConfig.from_dict``)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise GenaeError(f"{run_dir} is not a genae run: {path} is missing")
    return read_config_file(path)


def read_config_file(path: Path) -> dict[str, Any]:
    """A run's or a checkpoint's ``config.yaml``: bounded YAML, checked against ``schema.RUN_CONFIG``."""
    return schema.check(load_yaml(path), schema.RUN_CONFIG, path)


def resolved_config(d: dict[str, Any], path: Path) -> tuple[RunConfig, DataInfo]:
    """(config, data info) of a dict from ``read_config_file``; a ``ConfigError`` naming ``path``."""
    d = dict(d)
    info = DataInfo.from_dict(d.pop("data_info"))
    try:
        return RunConfig.from_dict(d), info
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def run_config(run_dir: str | Path) -> tuple[RunConfig, DataInfo]:
    return resolved_config(read_config(run_dir), Path(run_dir) / CONFIG)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
MANIFEST = "manifest.json"
MODEL_FILE = "model.safetensors"
STATE_JSON, STATE_TENSORS = "trainer.json", "trainer.safetensors"
LEGACY_STATE = "trainer.pt"  # pickled trainer state of checkpoints written before the manifest
_STEP_DIR = re.compile(r"^step-(\d{8,})$")


def checkpoint_name(step: int) -> str:
    """The directory name of ``step``'s checkpoint: ``step-00001000``."""
    return f"step-{step:08d}"


def checkpoint_step(ckpt: Path) -> int:
    """The training step of a checkpoint directory (the inverse of ``checkpoint_name``)."""
    m = _STEP_DIR.match(Path(ckpt).name)
    if m is None and is_exported(ckpt):  # an exported model stands for its one checkpoint (genae.export)
        return read_export_info(ckpt)["step"]
    if m is None:
        raise GenaeError(f"{ckpt} is not a checkpoint directory (expected step-NNNNNNNN)")
    return int(m.group(1))


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """Every ``checkpoints/step-*`` directory of the run, oldest first (complete or not)."""
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and p.is_dir() and not p.is_symlink()]
    return sorted(found, key=checkpoint_step)


def verify_checkpoint(ckpt: Path) -> str | None:
    """None when ``ckpt`` is complete, else why not (one line).

    Complete means: ``manifest.json`` (written last) parses and every file it lists has exactly its
    size and SHA-256. A checkpoint written before manifests existed (``trainer.pt``) is complete
    when its weights file has a readable safetensors header and its trainer state is present.
    """
    ckpt = Path(ckpt)
    manifest = ckpt / MANIFEST
    if not manifest.is_file():
        if (ckpt / LEGACY_STATE).is_file() and (ckpt / MODEL_FILE).is_file():
            try:
                with safe_open(str(ckpt / MODEL_FILE), framework="pt") as f:
                    f.keys()
            except Exception as e:  # safetensors raises its own error types for a bad header
                return f"{MODEL_FILE} is unreadable ({e})"
            return None
        return f"no {MANIFEST} (the write did not finish)"
    try:
        files = schema.read_json(manifest, schema.CHECKPOINT_MANIFEST)["files"]
    except RunFileError as e:
        return f"{MANIFEST} is damaged ({str(e).split(': ', 1)[-1]})"
    except OSError as e:
        return f"{MANIFEST} is unreadable ({e.strerror or e})"
    listed = {name: (v["size"], v["sha256"]) for name, v in files.items()}
    for required in (MODEL_FILE, STATE_JSON, STATE_TENSORS, CONFIG):
        if required not in listed:
            return f"{MANIFEST} does not list {required}"
    for name, (size, digest) in listed.items():
        path = ckpt / name
        if "/" in name or name.startswith(".") or not path.is_file() or path.is_symlink():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {size}"
        if sha256_file(path) != digest:
            return f"{name} does not match its SHA-256 in the manifest"
    return None


def find_checkpoint(run_dir: str | Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """(newest complete checkpoint or None, [(damaged newer checkpoint, why), ...] newest first).

    ``checkpoints/latest`` is only a note for people and scripts: readers never follow it, so a
    pointer edited to name another run's checkpoint (``../../other/...``) changes nothing.
    """
    skipped = []
    for ckpt in reversed(checkpoint_dirs(run_dir)):
        why = verify_checkpoint(ckpt)
        if why is None:
            return ckpt, skipped
        skipped.append((ckpt, why))
    return None, skipped


def latest_checkpoint(run_dir: str | Path, quiet: bool = False) -> Path | None:
    """The newest complete checkpoint directory, or None if the run has none.

    Each newer checkpoint that is skipped because it is damaged is named on stderr (unless
    ``quiet``); it is never deleted.
    """
    ckpt, skipped = find_checkpoint(run_dir)
    if not quiet:
        for bad, why in skipped:
            print(f"warning: skipping damaged checkpoint {bad}: {why}", file=sys.stderr)
        if skipped and ckpt is not None:
            print(f"warning: using {ckpt.name}, the newest complete checkpoint", file=sys.stderr)
    return ckpt


def require_checkpoint(run_dir: str | Path, step: int | None = None) -> Path:
    """``step``'s checkpoint, or the newest complete one; a ``GenaeError`` naming what exists if
    there is none (or the one asked for is damaged). An exported model (``genae.export``) is its
    own one checkpoint: the folder itself, once its weights' SHA-256 checks."""
    if is_exported(run_dir):
        return require_exported(run_dir, step)
    if step is None:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise GenaeError(f"{run_dir} has no complete checkpoint{damaged_summary(run_dir)}")
        return ckpt
    ckpt = Path(run_dir) / CKPT_DIR / checkpoint_name(step)
    if not ckpt.is_dir():
        have = [p.name for p in checkpoint_dirs(run_dir)]
        raise GenaeError(f"{run_dir} has no checkpoint at step {step}; it has: {', '.join(have) or 'none'}")
    why = verify_checkpoint(ckpt)
    if why is not None:
        raise GenaeError(f"{ckpt} is damaged: {why}")
    return ckpt


def damaged_summary(run_dir: str | Path) -> str:
    """A message tail: ``; damaged: step-N (why), ...`` naming every checkpoint directory, or
    `` yet`` when the run has none."""
    bad = [f"{p.name} ({verify_checkpoint(p)})" for p in checkpoint_dirs(run_dir)]
    return f"; damaged: {', '.join(bad)}" if bad else " yet"


def write_checkpoint(run_dir: Path, step: int, method: Method, trainer_state: dict[str, Any],
                     cfg: RunConfig, keep: int) -> Path:
    """Write weights + trainer state + config + manifest for ``step``, atomically; prune old ones.

    Every file goes into ``checkpoints/.tmp-step-N-<pid>``, is fsync'ed, and the manifest (sizes
    and SHA-256 of the others) is written last; the directory is then renamed into place. On any
    failure (a full disk, a read-only folder) the temporary directory is removed and a
    ``GenaeError`` names the checkpoint that is still intact. Pruning keeps the newest ``keep``
    checkpoints and only ever deletes ones *older* than the one just written, so the checkpoint a
    run resumed from, and anything newer, survive until a newer one is complete. Everything is
    written and deleted inside ``RUN/checkpoints`` only: a link there (to another run's
    checkpoints) is refused before anything is written or pruned (``genae.fileio``).
    """
    root = Path(run_dir) / CKPT_DIR
    name = checkpoint_name(step)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    try:
        fileio.make_dirs(run_dir, root)
        fileio.remove(run_dir, tmp, ignore_errors=True)
        tmp.mkdir()
        weights = {k: v.detach().to("cpu").contiguous().clone() for k, v in method.state_dict().items()}
        state_json, state_tensors = state_io.dumps(trainer_state)
        files = {
            MODEL_FILE: save_tensors(weights, metadata={"method": cfg.method, "step": str(step),
                                                        "config": json.dumps(cfg.to_dict())}),
            STATE_JSON: state_json,
            STATE_TENSORS: state_tensors,
            CONFIG: _config_text(cfg, method.info).encode(),
        }
        for fname, data in files.items():
            write_synced(tmp / fname, data)
        manifest = {"format": 1, "step": step, "method": cfg.method,
                    "files": {k: {"size": len(v), "sha256": hashlib.sha256(v).hexdigest()}
                              for k, v in files.items()}}
        write_synced(tmp / MANIFEST, json.dumps(manifest, indent=2).encode())
        final = root / name
        # a damaged or superseded checkpoint of the same step (a rewound run); a link there is
        # removed itself, never followed
        fileio.remove(run_dir, final)
        os.replace(tmp, final)
        fsync_dir(root)
        atomic_write(root / LATEST, name.encode(), root=run_dir)
    except OSError as e:
        fileio.remove(run_dir, tmp, ignore_errors=True)
        previous = find_checkpoint(run_dir)[0]
        intact = f"the last complete checkpoint {previous.name} is intact" if previous else \
            "there is no earlier complete checkpoint"
        raise GenaeError(f"could not write checkpoint {name} in {root}: {_os_reason(e)}; {intact}") from None
    older = [p for p in checkpoint_dirs(run_dir) if checkpoint_step(p) < step]
    for old in older[:max(len(older) - (keep - 1), 0)]:
        fileio.remove(run_dir, old, ignore_errors=True)
    return final


def read_checkpoint(ckpt: Path, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """(model state_dict on ``device``, trainer state) of a checkpoint directory.

    Nothing is unpickled: weights are safetensors, the trainer state safetensors + JSON
    (``genae.state_io``); a checkpoint from before that format has its ``trainer.pt`` read by the
    restricted weights-only unpickler. A damaged or crafted file, or a state of the wrong types
    (``schema.TRAINER_STATE``), raises ``GenaeError`` naming it.
    """
    ckpt = Path(ckpt)
    weights = {k: v.to(device) for k, v in read_weights(ckpt).items()}
    if (ckpt / STATE_JSON).is_file():
        source = ckpt / STATE_JSON
        text = schema.read_text(source, schema.MAX_JSON_BYTES).encode()
        state = state_io.loads(text, (ckpt / STATE_TENSORS).read_bytes(), str(source))
    else:
        source = ckpt / LEGACY_STATE
        state = state_io.load_legacy(source)
    return weights, schema.check(state, schema.TRAINER_STATE, source)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", step: int | None = None,
             networks: dict[str, torch.nn.Module] | None = None) -> Method:
    """The trained method of a run (newest complete checkpoint, or ``step``), in eval mode on
    ``device``, its parameters not requiring gradients (inference builds no autograd graph; call
    ``method.requires_grad_(True)`` to fine-tune). ``networks``: the modules a run trained with
    networks from Python needs (``genae.train(networks=...)``). ``run_dir`` may also be a folder
    written by ``genae export`` (``genae.export``): its weights' SHA-256 is checked first."""
    return open_checkpoint(run_dir, device, step, networks)[0]


def open_checkpoint(run_dir: str | Path, device: str | torch.device = "cpu", step: int | None = None,
                    networks: dict[str, torch.nn.Module] | None = None) -> tuple[Method, RunConfig, Path]:
    """(method in eval mode on ``device`` with gradients off, the config it was trained with,
    checkpoint directory).

    The network is built from the *checkpoint's* ``config.yaml``, so a hand-edited
    ``RUN/config.yaml`` cannot make the weights not fit (checkpoints from before it was stored
    there fall back to the run's). ``device``: a device, or its name (``auto`` included; one that
    does not exist here is a ``GenaeError``).
    """
    if not isinstance(device, torch.device):
        from .distributed import resolve_device

        device = resolve_device(device, "device")
    if is_exported(run_dir):  # a folder of genae export: weights + config, checked by their digest
        return open_exported(run_dir, device, step, networks)
    read_config(run_dir)  # a clear error if RUN is not a run
    ckpt = require_checkpoint(run_dir, step)
    cfg, info = checkpoint_config(run_dir, ckpt)
    method = build_method(cfg, info, networks).to(device)
    weights, _ = read_checkpoint(ckpt, device)
    load_weights(method, weights, ckpt)
    method.eval().requires_grad_(False)
    return method, cfg, ckpt


def checkpoint_config(run_dir: str | Path, ckpt: Path) -> tuple[RunConfig, DataInfo]:
    """The config a checkpoint was written with (the run's, for a checkpoint that has none)."""
    if not (Path(ckpt) / CONFIG).is_file():
        return run_config(run_dir)
    path = Path(ckpt) / CONFIG
    return resolved_config(read_config_file(path), path)


def load_weights(method: Method, weights: dict[str, torch.Tensor], ckpt: Path) -> None:
    """``method.load_state_dict(weights)`` with a one-line error when the shapes do not fit: the
    run's config was edited after the checkpoint was written, or genae's networks changed since
    the commit that trained the run (named when run.json records another one)."""
    try:
        method.load_state_dict(weights)
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        then, now = read_run_info(Path(ckpt).parent.parent).get("git_commit"), _git_commit()
        why = "was it edited?"
        if then and then != now:
            why = (f"was it edited, or did genae's networks change since the commit that trained it? "
                   f"run.json: {then[:10]}, this genae: {now[:10] if now else 'not a git checkout'}")
        raise GenaeError(f"the weights in {ckpt} do not fit the network built from the run's "
                         f"config.yaml ({why}): {'; '.join(lines[1:4]) or lines[0]}") from None


def init_from(method: Method, spec: str) -> list[str]:
    """Initialise sub-networks of ``method`` from another run's checkpoint; returns their names.

    ``spec`` is ``RUN[@STEP][:name1,name2]``: the run directory, optionally a checkpoint step
    (default the newest complete one) and the sub-networks (attribute names, e.g. ``encoder``;
    default every sub-network that both methods have). Weights are copied, never the optimizer
    state. A missing sub-network or a shape mismatch is a ``GenaeError`` naming the key and both
    shapes; nothing is changed then.
    """
    m = re.fullmatch(r"(?P<run>.+?)(?:@(?P<step>\d+))?(?::(?P<names>[\w.,]+))?", spec.strip())
    if m is None:
        raise ConfigError(f"train.init_from={spec!r}: expected RUN[@STEP][:net1,net2]")
    run, step = m["run"], int(m["step"]) if m["step"] else None
    read_config(run)  # a clear error if RUN is not a run
    ckpt = require_checkpoint(run, step)
    weights = read_weights(ckpt)
    own = dict(method.named_children())
    theirs = {k.split(".", 1)[0] for k in weights}
    names = m["names"].split(",") if m["names"] else sorted(set(own) & theirs)
    if not names:
        raise GenaeError(f"{ckpt} shares no sub-network with {type(method).__name__} "
                         f"(it has {', '.join(sorted(theirs))}; this method has {', '.join(own)})")
    plans = {}
    for name in names:
        if name not in own:
            raise GenaeError(f"train.init_from: {type(method).__name__} has no sub-network {name!r}; "
                             f"it has: {', '.join(own)}")
        src = {k[len(name) + 1:]: v for k, v in weights.items() if k.startswith(name + ".")}
        if not src:
            raise GenaeError(f"train.init_from: {ckpt} has no sub-network {name!r}; it has: "
                             f"{', '.join(sorted(theirs))}")
        dst = own[name].state_dict()
        missing, extra = sorted(set(dst) - set(src)), sorted(set(src) - set(dst))
        if missing or extra:
            raise GenaeError(f"train.init_from: {name} differs between the runs: missing "
                             f"{missing[:3]}, unexpected {extra[:3]}")
        for k, v in src.items():
            if tuple(v.shape) != tuple(dst[k].shape):
                raise GenaeError(f"train.init_from: {name}.{k} has shape {tuple(v.shape)} in {ckpt} but "
                                 f"{tuple(dst[k].shape)} here; the networks must match")
        plans[name] = src
    for name, src in plans.items():  # only once every check passed: all or nothing
        own[name].load_state_dict(src)
    return names


def read_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    """The model weights of a checkpoint directory (CPU tensors, safetensors)."""
    try:
        return load_tensors((Path(ckpt) / MODEL_FILE).read_bytes())
    except Exception as e:  # SafetensorError, OSError, ...
        raise GenaeError(f"{Path(ckpt) / MODEL_FILE} is damaged or unreadable ({e})") from None


# --------------------------------------------------------------------------------------------
# Exported models (genae export; the writer and the layout are in genae.export)
# --------------------------------------------------------------------------------------------
EXPORT_INFO = "genae_model.json"
EXPORT_FORMAT, EXPORT_FORMAT_VERSION = "genae-model", 1
#: DIR/genae_model.json (a newer genae may add fields; a newer format_version is refused)
EXPORT_INFO_SPEC = schema.Record(
    {"format": schema.Str((EXPORT_FORMAT,)), "format_version": schema.Int(1), "method": schema.Str(),
     "step": schema.Int(0), "config": schema.Str((CONFIG,)),
     "weights": schema.Record({"file": schema.Str((MODEL_FILE,)), "size": schema.Int(0), "sha256": schema.Str()}),
     "networks_from_python": schema.Seq(schema.Str())},
    optional=("config", "networks_from_python"))
NO_TRAINING_STATE = ("an exported model has no training state (no optimisers, RNG or data position, one "
                     "checkpoint's weights only), so it cannot be resumed or trained on in place; resume the "
                     "run it was exported from")


def is_exported(path: str | Path) -> bool:
    """Whether ``path`` is a model folder written by ``genae export`` (it holds ``genae_model.json``)."""
    return (Path(path) / EXPORT_INFO).is_file()


def read_export_info(folder: str | Path) -> dict[str, Any]:
    """``DIR/genae_model.json`` checked against ``EXPORT_INFO_SPEC``; a ``GenaeError`` naming it when
    it is damaged, or of a format version newer than this genae reads."""
    path = Path(folder) / EXPORT_INFO
    try:
        info = schema.read_json(path, EXPORT_INFO_SPEC, limit=1 << 20)
    except RunFileError as e:
        raise GenaeError(f"{e}; it is not an exported genae model this version can read") from None
    except OSError as e:
        raise GenaeError(f"{path} is unreadable ({e.strerror or e})") from None
    if info["format_version"] > EXPORT_FORMAT_VERSION:
        raise GenaeError(f"{path}: format_version {info['format_version']} was written by a newer genae "
                         f"(this one reads {EXPORT_FORMAT_VERSION}); upgrade genae to load it")
    return info


def _exported_weights(folder: Path, info: dict[str, Any], step: int | None) -> bytes:
    """The bytes of ``DIR/model.safetensors`` once ``step`` (None or the exported one) and the
    file's size and SHA-256 agree with ``genae_model.json``. Read through a link too (a Hugging
    Face cache snapshot links each file to its blob): the digest is what makes the bytes trusted."""
    if step is not None and step != info["step"]:
        raise GenaeError(f"{folder} is an exported model of step {info['step']} only; it has no "
                         f"checkpoint at step {step}")
    path = folder / MODEL_FILE
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GenaeError(f"{path} is missing or unreadable ({e.strerror or e}); the exported model is "
                         "incomplete: copy or download it again") from None
    want = info["weights"]
    if len(data) != want["size"] or hashlib.sha256(data).hexdigest() != want["sha256"]:
        what = "size" if len(data) != want["size"] else "SHA-256"
        raise GenaeError(f"{path} is damaged: its {what} does not match {folder / EXPORT_INFO} ({len(data)} "
                         f"bytes, {want['size']} expected); it is not loaded: copy or download the model "
                         "again, or export it again from its run")
    return data


def require_exported(folder: str | Path, step: int | None = None) -> Path:
    """``folder`` itself in the role of its one checkpoint, once ``step`` and the weights' digest
    check (``require_checkpoint`` on an exported model)."""
    folder = Path(folder)
    _exported_weights(folder, read_export_info(folder), step)
    return folder


def open_exported(folder: str | Path, device: torch.device, step: int | None = None,
                  networks: dict[str, torch.nn.Module] | None = None) -> tuple[Method, RunConfig, Path]:
    """``open_checkpoint`` of an exported model: (method in eval mode on ``device``, gradients off,
    its config, ``folder``). Checked before use: ``genae_model.json``'s format, ``step``, the
    weights' size and SHA-256, the config's schema and method, and that the weights fit the
    network exactly (a strict load)."""
    folder = Path(folder)
    info = read_export_info(folder)
    data = _exported_weights(folder, info, step)
    path = folder / CONFIG
    if not path.is_file():
        raise GenaeError(f"{path} is missing; the exported model is incomplete")
    cfg, data_info = resolved_config(read_config_file(path), path)
    if cfg.method != info["method"]:
        raise GenaeError(f"{path} builds {cfg.method!r} but {folder / EXPORT_INFO} says {info['method']!r}; "
                         "the folder mixes two models")
    try:
        weights = load_tensors(data)
    except Exception as e:  # SafetensorError: bytes of the recorded digest that are no safetensors
        raise GenaeError(f"{folder / MODEL_FILE} is not a safetensors file ({e})") from None
    method = build_method(cfg, data_info, networks).to(device)
    load_weights(method, {k: v.to(device) for k, v in weights.items()}, folder)
    method.eval().requires_grad_(False)
    return method, cfg, folder


# --------------------------------------------------------------------------------------------
# One writer per run
# --------------------------------------------------------------------------------------------
LOCK = ".lock"


class LockHeld(GenaeError):
    """Another process holds the lock; ``holder`` is its PID as the lock file says (or "unknown")."""

    def __init__(self, message: str, holder: str):
        super().__init__(message)
        self.holder = holder


class RunLock:
    """An exclusive ``flock`` on ``RUN/.lock`` for the life of a ``train``/``resume`` process.

    The OS releases it when the process dies (even by SIGKILL), so a stale lock never blocks a
    resume. A second writer gets a ``LockHeld`` naming the holder's PID. The lock file is opened
    without following a link and must be a regular file of one name (``fileio.open_own``): the
    PID written into it never lands in a file outside the run. Readers (eval, sample, report) do
    not lock: every file they read is replaced atomically.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        if is_exported(self.path.parent):  # resume, train --out: no lock file, nothing written into it
            raise GenaeError(f"{self.path.parent} is an exported model (genae export), not a run: "
                             f"{NO_TRAINING_STATE}")
        fd = fileio.open_own(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):  # e.g. a file system without locks
                raise OSError(e.errno, e.strerror, str(self.path)) from None
            raise LockHeld(f"{self.path.parent} is in use by another genae process (PID {holder}); "
                           "wait for it to finish or stop it, then `genae resume`", holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def clean_leftovers(run_dir: str | Path) -> list[Path]:
    """Remove what an interrupted writer left (``checkpoints/.tmp-step-*``, ``*.tmp-*`` files);
    call only while holding the run's lock. Returns what was removed. Only the run's own files
    go: a ``checkpoints`` link is refused (``GenaeError``) and nothing is deleted through it."""
    run_dir = Path(run_dir)
    fileio.refuse_links(run_dir, [CKPT_DIR])
    removed = []
    for pattern in (f"{CKPT_DIR}/.tmp-step-*", f"{CKPT_DIR}/*.tmp-*", "*.tmp-*", "*.tmp"):
        for p in run_dir.glob(pattern):
            fileio.remove(run_dir, p, ignore_errors=True)
            removed.append(p)
    return removed


#: What a writer changes in place in a run (appends to, adds files into, prunes): a link at one
#: of these names would carry those writes (or deletions) outside the run, so ``resume`` refuses
#: to start on one (``fileio.refuse_links``). Files replaced whole (config.yaml, eval.json,
#: loss_curves.png, report.html, ...) need no such check: ``atomic_write`` replaces a link there
#: and leaves its target alone.
IN_PLACE = (LOCK, CKPT_DIR, "metrics.jsonl", "samples", "tb", "mlruns", "wandb")


def build_method(cfg: RunConfig, info: DataInfo, networks: dict[str, torch.nn.Module] | None = None) -> Method:
    """The method's networks from its config, with ``networks`` (sub-network name -> module) in
    place of the built ones; sizes no machine can allocate are a ``ConfigError``."""
    given, recorded = sorted(networks or {}), sorted(cfg.train.networks)
    if given != recorded:
        if recorded and not given:
            raise GenaeError(f"this run's {', '.join(recorded)} came from Python; load it there with "
                             f"genae.load_run(RUN, networks={{{', '.join(repr(n) + ': ...' for n in recorded)}}}) "
                             f"(or genae.resume(RUN, networks=...))")
        raise GenaeError(f"networks given for {given or 'nothing'}, but the run was trained with "
                         f"{recorded or 'only its built networks'}")
    try:
        method = METHODS[cfg.method].build(cfg.model, info)
        if networks:
            method.replace_networks(networks)
        return method
    except GenaeError:
        raise
    except (OverflowError, MemoryError, RuntimeError, TypeError) as e:
        if isinstance(e, TypeError) and "Overflow" not in str(e):
            raise  # a bug, not a size: keep the traceback
        sizes = {k: v for k, v in flatten_config({"model": cfg.to_dict()["model"]}).items()
                 if isinstance(v, int) and not isinstance(v, bool)}
        big = max(sizes, key=sizes.get) if sizes else "model.*"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ConfigError(f"cannot build {cfg.method} with this config ({type(e).__name__}: {first}); "
                          f"the largest size given is {big}={sizes.get(big)}") from None


# --------------------------------------------------------------------------------------------
# The config on resume
# --------------------------------------------------------------------------------------------
#: Keys that may change when a run is resumed: how long, how often it logs/samples/checkpoints,
#: where it runs, and learning rates (model keys named ``lr`` or ``*_lr``, applied to the
#: restored optimizers). Everything else defines the run and is fixed by its checkpoint.
RESUMABLE_KEYS = tuple(f"train.{k}" for k in ("steps", "log_every", "sample_every", "ckpt_every",
                                              "keep_ckpts", "n_samples", "progress", "tensorboard",
                                              "loggers", "threads", "device", "sync_bn",
                                              "channels_last", "compile"))


def resumable(key: str) -> bool:
    """Whether ``key`` (``ns.name``) may differ from the checkpoint's config on resume."""
    ns, _, name = key.partition(".")
    return key in RESUMABLE_KEYS or (ns == "model" and (name == "lr" or name.endswith("_lr")))


#: Keys added after runs existed whose new default would change how those runs train: a run whose
#: config lacks one resumes with the value it was trained under, so its resume stays exact.
#: (namespace, key) -> (the old behaviour's value, the methods that have the key; None = every one).
_IMAE_FAMILY = ("imae", "jointvae", "beta-vae-hybrid", "infovae", "beta-tcvae")
LEGACY_DEFAULTS: dict[tuple[str, str], tuple[Any, tuple[str, ...] | None]] = {
    ("train", "flush_denormal"): (False, None),
    ("model", "vat_scale"): ("fixed", _IMAE_FAMILY),              # issue 39: VAT × β (eq. 11) since 2026-12-08
    ("model", "fresh_codes"): (False, ("infogan", "infogan-qmm")),  # issue 39: new codes for G's step
}


def _with_legacy_defaults(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    for (ns, key), (value, methods) in LEGACY_DEFAULTS.items():
        section = d.get(ns)
        if isinstance(section, dict) and key not in section and (methods is None or d.get("method") in methods):
            d[ns] = {**section, key: value}
    return d


def resume_config(run_dir: str | Path, ckpt: Path | None, steps: int | None = None,
                  overrides: Sequence[str] = ()) -> tuple[RunConfig, DataInfo, dict[str, tuple]]:
    """The config to resume with: the checkpoint's, with the resumable changes made by hand in
    ``RUN/config.yaml``, by ``--set`` and by ``--steps``. Returns (config, data info,
    ``{key: (checkpoint's value, new value)}``). Any other difference is a ``ConfigError`` naming
    every such key."""
    from .config import parse_override, validate

    run_dir = Path(run_dir)
    edited = _with_legacy_defaults(read_config(run_dir))
    truth = _with_legacy_defaults(read_config_file(ckpt / CONFIG)) if ckpt is not None else edited
    tree = {k: dict(v) if isinstance(v, dict) else v for k, v in edited.items()}
    for item in overrides:
        ns, key, value = parse_override(item)
        tree[ns] = {**(tree.get(ns) or {}), key: value}  # a section may be null in the file
    if steps is not None:
        tree["train"] = {**(tree.get("train") or {}), "steps": steps}
    try:
        old_cfg = RunConfig.from_dict({k: v for k, v in truth.items() if k != "data_info"})
        new_cfg = RunConfig.from_dict({k: v for k, v in tree.items() if k != "data_info"})
    except ConfigError as e:
        raise ConfigError(f"{run_dir / CONFIG}: {e}") from None
    validate(new_cfg)
    old = flatten_config({**old_cfg.to_dict(), "data_info": truth.get("data_info")})
    new = flatten_config({**new_cfg.to_dict(), "data_info": tree.get("data_info")})
    changed = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
    fixed = [k for k in changed if not resumable(k)]
    if fixed:
        shown = ", ".join(f"{k} ({changed[k][0]!r} in the checkpoint, {changed[k][1]!r} now)" for k in fixed)
        where = "the checkpoint" if ckpt is not None else "the run"
        raise ConfigError(f"{run_dir}: {shown} differ from {where}'s config and cannot change mid-run; "
                          f"only {', '.join(RESUMABLE_KEYS)} and learning rates (model.*lr) can. "
                          f"Undo the edit in {run_dir / CONFIG}, or start a new run with --out")
    return new_cfg, DataInfo.from_dict(truth["data_info"]), changed


# --------------------------------------------------------------------------------------------
# Evaluation records
# --------------------------------------------------------------------------------------------
def write_eval(run, cfg: RunConfig, results: dict, step: int, latest: bool = True) -> Path:
    """Merge ``results`` (computed on checkpoint ``step``) into ``RUN/eval.json`` (when ``step`` is
    the newest checkpoint) or ``RUN/eval-step-SSSSSSSS.json`` (an earlier one), atomically.

    Every entry carries the step it was computed on, and an entry of another step is dropped
    rather than kept beside the new ones: a file never mixes numbers of different weights.
    """
    path = Path(run) / ("eval.json" if latest else f"eval-{checkpoint_name(step)}.json")
    kept = {}
    own = fileio.read_own(run, path)  # a link there is replaced, and what it points to never read
    if own is not None:
        try:
            previous = schema.parse_json(own.decode("utf-8"), schema.EVAL_RECORD, path)
            file_step = previous.get("step")
            kept = {k: v for k, v in previous["metrics"].items()
                    if isinstance(v, dict) and v.get("step", file_step) == step}
        except (RunFileError, UnicodeDecodeError) as e:
            print(f"warning: {e if isinstance(e, RunFileError) else f'{path} is not UTF-8'}; it is replaced",
                  file=sys.stderr)
    record = {"run": str(run), "method": cfg.method, "data": cfg.data.name, "step": step,
              "metrics": {**kept, **{k: {**v, "step": step} for k, v in results.items()}}}
    atomic_write(path, json.dumps(record, indent=2, default=jsonable).encode(), root=run)
    return path


def read_eval_record(path: str | Path) -> dict[str, Any]:
    """An ``eval.json`` (or ``eval-step-*.json``) checked against ``schema.EVAL_RECORD``;
    ``RunFileError`` naming the file and field when it is damaged or of the wrong types."""
    return schema.read_json(path, schema.EVAL_RECORD)


def jsonable(v):
    """``json.dumps``'s ``default``: NumPy scalars and arrays as numbers and lists, else ``str``."""
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


# --------------------------------------------------------------------------------------------
# What ran: versions, commit, device, wall time, parameters
# --------------------------------------------------------------------------------------------
RUN_INFO = "run.json"


#: run.json fields set once, when the run is created, and kept by every later write (resume)
RUN_NOTES = ("amp_auto", "channels_last_auto")


def write_run_info(run_dir: Path, cfg: RunConfig, method: Method, optimizers: dict, device, step: int,
                   seconds: float, notes: dict[str, str] | None = None) -> dict[str, Any]:
    """``RUN/run.json``: genae/torch/Python versions, the git commit of genae's source (when it is a
    checkout), device, total wall time over every train/resume of the run, and parameter counts
    per player; the report and the end-of-train summary read it. ``notes`` (``RUN_NOTES``, e.g.
    what ``train.amp=auto`` measured and chose) are written with the run's first record and kept."""
    import platform

    from . import __version__

    previous = read_run_info(run_dir)
    info = {"method": cfg.method, "data": cfg.data.name, "step": step, "genae": __version__,
            "torch": torch.__version__, "python": platform.python_version(), "git_commit": _git_commit(),
            "device": str(device), "wall_seconds": round(previous.get("wall_seconds", 0.0) + seconds, 1),
            "parameters": {k: sum(p.numel() for g in o.param_groups for p in g["params"])
                           for k, o in optimizers.items()},
            "total_parameters": sum(p.numel() for p in method.parameters())}
    info.update({k: str(previous[k]) for k in RUN_NOTES if k in previous})
    info.update({k: v for k, v in (notes or {}).items() if k in RUN_NOTES})
    atomic_write(Path(run_dir) / RUN_INFO, json.dumps(info, indent=2).encode(), root=run_dir)
    return info


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """``RUN/run.json`` as a dict (``schema.RUN_INFO``); empty for a run from before it existed,
    and for a damaged file or one of the wrong types, which is named on stderr (the file only
    informs: the report and summaries go on without it)."""
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        return {}
    try:
        return schema.read_json(path, schema.RUN_INFO)
    except (RunFileError, OSError) as e:
        print(f"warning: {e}; its information is left out", file=sys.stderr)
        return {}


def _git_commit() -> str | None:
    """HEAD of the git checkout genae's source lives in, or None (an installed wheel, no git)."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------------------------
# The data a run was trained on
# --------------------------------------------------------------------------------------------
DATA_RECORD = "data.json"


def write_data_record(run_dir: Path, splits: dict[str, Any]) -> None:
    """``RUN/data.json``: for each split (None when absent), where it came from and the SHA-256 of
    every file read (``genae.data.provenance``)."""
    from .data import provenance

    record = {split: provenance(ds) if ds is not None else None for split, ds in splits.items()}
    atomic_write(Path(run_dir) / DATA_RECORD, json.dumps(record, indent=2).encode(), root=run_dir)


def check_data_record(run_dir: Path, splits: dict[str, Any]) -> list[str]:
    """Warn (stderr), naming each file, when data now differs from ``RUN/data.json``; returns the
    lines. A run without a record (written before records existed) has nothing to compare."""
    from .data import compare_provenance, provenance

    path = Path(run_dir) / DATA_RECORD
    if not path.is_file():  # a run from before records: nothing to compare with
        return []
    try:
        recorded = schema.read_json(path, schema.DATA_RECORD)
    except (RunFileError, OSError) as e:
        print(f"warning: {e}; the data cannot be compared with the run's", file=sys.stderr)
        return []
    lines = []
    for split, ds in splits.items():
        if ds is None or not isinstance(recorded.get(split), dict):
            continue
        lines += [f"{split} split: {d}" for d in compare_provenance(recorded[split], provenance(ds))]
    for line in lines:
        print(f"warning: the data differs from the run's ({path}): {line}", file=sys.stderr)
    return lines


# --------------------------------------------------------------------------------------------
# The metric history: appended, never rewritten in place
# --------------------------------------------------------------------------------------------
METRICS = "metrics.jsonl"


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    """Append ``row`` as one line of ``RUN/metrics.jsonl``: whole or not at all, fsync'ed, never
    through a link (``fileio.append``); an error names the file."""
    fileio.append(Path(run_dir) / METRICS, (json.dumps(row) + "\n").encode(), root=run_dir)


def trim_metrics(run_dir: Path, step: int) -> None:
    """Make ``RUN/metrics.jsonl`` end at ``step``, where a run (re)starts logging: the rows of later
    steps (logged after the checkpoint a resume starts from; it logs them again) go, every other
    line stays byte for byte.

    The file is replaced atomically, and only when something must change (rows to drop, a last
    line without its newline, which the next append would be glued to); otherwise it is left
    alone and the run appends, so a kill, a full disk or a file-size limit at any moment leaves
    every row that was there. A line that is not a row (not JSON, not an object with an integer
    ``step``) is kept where it is and named on stderr with its line number. A link, or a file of
    several names, at ``metrics.jsonl`` is refused (``GenaeError``) before anything is written.
    """
    path = Path(run_dir) / METRICS
    try:
        fd = fileio.open_own(path, os.O_RDONLY, root=run_dir)
    except FileNotFoundError:
        return
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    lines = data.splitlines(keepends=True)
    kept, bad = [], []
    for number, line in enumerate(lines, 1):
        row = _metrics_row(line)
        if isinstance(row, dict) and row["step"] > step:
            continue
        if isinstance(row, str) and line.strip():  # blank lines are kept silently
            bad.append((number, row))
        kept.append(line if line.endswith(b"\n") else line + b"\n")
    if bad:
        shown = ", ".join(str(n) for n, _ in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        many = len(bad) > 1
        print(f"warning: {path}: line{'s' * many} {shown} {'are not metrics rows' if many else 'is not a metrics row'} "
              f"(line {bad[0][0]}: {bad[0][1]}); kept as {'they are' if many else 'it is'}", file=sys.stderr)
    if len(kept) < len(lines) or not data.endswith(b"\n") and data:
        atomic_write(path, b"".join(kept), root=run_dir)


def _metrics_row(line: bytes) -> dict[str, Any] | str:
    """``line`` as a metrics row (a JSON object with an integer ``step``), else why it is not one."""
    try:
        row = json.loads(line)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return "not JSON"
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    if not isinstance(row.get("step"), int) or isinstance(row.get("step"), bool):
        return "no integer step"
    return row


# --------------------------------------------------------------------------------------------
# Durable file writes
# --------------------------------------------------------------------------------------------
def _config_text(cfg: RunConfig, info: DataInfo) -> str:
    return yaml.safe_dump({**cfg.to_dict(), "data_info": info.to_dict()}, sort_keys=False)


def _os_reason(e: OSError) -> str:
    """``[Errno 28] No space left on device: 'x'`` -> ``No space left on device (x)``."""
    return f"{e.strerror or e}" + (f" ({e.filename})" if e.filename else "")
