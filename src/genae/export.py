"""Exported models: one checkpoint of a run as a self-contained folder that others load in one line.

    genae export RUN --out DIR [--step N]        # or genae.export.export_model(RUN, DIR)
    method = genae.load_run(DIR)                 # eval mode, as from the run directory
    genae sample DIR --out s.png | genae eval DIR --metrics recon-mse | genae report DIR

Layout (pythae's and the Hugging Face Hub's: weights, config, model card)::

    DIR/model.safetensors   the method's weights: every module parameter and buffer (a fitted prior
                            included), byte for byte the checkpoint's; no optimiser, RNG or trainer state
    DIR/config.yaml         the resolved config (method, model, train, data) and data info that rebuild
                            the method; the run's logging sinks, out_dir and init_from are cleared
                            (they described where the run wrote, not the model)
    DIR/genae_model.json    format and version, method, step, size and SHA-256 of model.safetensors,
                            versions, where and how long it was trained (what makes DIR an export)
    DIR/README.md           the model card, with YAML front matter (library_name: genae, tags,
                            datasets, metrics)
    DIR/samples.png         a grid of samples (a method that samples images)
    DIR/data.json           where each training split came from and the SHA-256 of its files (as the run's)
    DIR/eval.json           the run's metrics of the exported step, with their protocol (when evaluated)
    DIR/ex-post-gmm-*.safetensors   ex-post priors fitted on these weights (``genae.ex_post``), if any

The folder is written beside ``DIR`` under a temporary name and renamed into place when complete:
an export that fails (or is interrupted) leaves no ``DIR``. Reading it runs no code: weights are
safetensors, the rest JSON/YAML parsed with bounded size and checked against a schema, and the
weights' SHA-256 is checked against ``genae_model.json`` before they are loaded (a damaged or
replaced file is refused, naming it). The files may be links (a Hugging Face cache snapshot links
each file to its blob): the digest is what makes them trustworthy.

The layout is the Hub's upload layout: with ``huggingface_hub`` installed,
``huggingface_hub.upload_folder(repo_id=..., folder_path=DIR)`` pushes it as a model repository
and the card's front matter tags it (genae does not depend on ``huggingface_hub``). A run trained
with networks from Python (``genae.train(networks=...)``) needs those modules to be exported and
loaded, as ``genae.load_run`` does: ``export_model(RUN, DIR, networks=...)``,
``genae.load_run(DIR, networks=...)``.

Inference commands take ``DIR`` as they take a run (``genae sample``, ``imagine``, ``manifold``;
``genae eval DIR`` writes ``DIR/eval.json``, ``genae report DIR`` ``DIR/report.html``; ``--prior
gmm`` stores its mixture in ``DIR``). An exported model has no training state: ``genae resume DIR``
is refused (``runs.RunLock``), and so is anything else that would write a run's training files into it. The reading side
(``is_exported``, ``open_exported``, ``require_exported``, ``read_export_info``) lives in
``genae.runs``, whose ``load_run``/``open_checkpoint``/``require_checkpoint`` take either kind of
folder; this module writes the folder.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load as load_tensors

from . import schema
from .errors import GenaeError, RunFileError
from .fileio import fsync_dir, write_synced
from .runs import (CONFIG, EXPORT_FORMAT as FORMAT, EXPORT_FORMAT_VERSION as FORMAT_VERSION,
                   EXPORT_INFO as MODEL_INFO, MODEL_FILE as WEIGHTS, NO_TRAINING_STATE, _with_legacy_defaults,
                   build_method, checkpoint_name, checkpoint_step, is_exported, load_weights, open_exported,
                   read_config, read_config_file, read_eval_record, read_export_info, read_run_info,
                   require_checkpoint, require_exported, resolved_config)

__all__ = ["MODEL_INFO", "FORMAT_VERSION", "NO_TRAINING_STATE", "export_model", "is_exported", "model_card",
           "open_exported", "read_export_info", "require_exported"]

CARD = "README.md"
SAMPLES = "samples.png"
SAMPLE_SEED = 0  # samples.png: the grid `genae sample DIR --n N --seed 0` draws again


# --------------------------------------------------------------------------------------------
# Writing one
# --------------------------------------------------------------------------------------------
def export_model(run: str | os.PathLike, out: str | os.PathLike, step: int | None = None,
                 networks: dict[str, torch.nn.Module] | None = None, log=None) -> Path:
    """Write checkpoint ``step`` (default: the newest complete one) of ``run`` as the exported model
    folder ``out`` (layout in the module docstring) and return ``out``.

    Everything is read and checked first (the run, its checkpoint, that the weights build the
    method), so a missing run, step or network is an error that writes nothing. ``out`` must not
    exist, or be an empty folder. The folder is assembled as ``.<name>.tmp-<pid>-<hex>`` beside
    ``out``, every file fsync'ed, and renamed to ``out``; on any failure the temporary folder is
    removed. ``networks``: the modules of a run trained with networks from Python.
    ``log``: called with progress lines (default: none).
    """
    run, out = Path(run), Path(out)
    if is_exported(run):
        raise GenaeError(f"{run} is already an exported model; copy the folder to share it again")
    if not run.is_dir():
        raise GenaeError(f"{run} does not exist or is not a folder: give a run directory (genae train --out)")
    read_config(run)  # a clear error if RUN is not a run
    _check_out(out)
    ckpt = require_checkpoint(run, step)
    step = checkpoint_step(ckpt)
    # the checkpoint's own config, with the values older runs were trained under (runs.LEGACY_DEFAULTS)
    cfg_path = ckpt / CONFIG if (ckpt / CONFIG).is_file() else run / CONFIG
    raw = _with_legacy_defaults(read_config_file(cfg_path))
    cfg, data_info = resolved_config(raw, cfg_path)
    # the weights are read once: the bytes checked, loaded and written are the same bytes
    weight_bytes = (ckpt / WEIGHTS).read_bytes()
    digest = hashlib.sha256(weight_bytes).hexdigest()
    listed = _manifest_digest(ckpt)
    if listed is not None and listed != digest:
        raise GenaeError(f"{ckpt / WEIGHTS} changed since its checkpoint was verified (SHA-256 differs from "
                         "its manifest); nothing was exported")
    try:
        weights = load_tensors(weight_bytes)
    except Exception as e:
        raise GenaeError(f"{ckpt / WEIGHTS} is damaged or unreadable ({e})") from None
    method = build_method(cfg, data_info, networks)
    load_weights(method, weights, ckpt)  # strict: exactly the method's parameters and buffers
    method.eval().requires_grad_(False)

    train = dataclasses.replace(cfg.train, out_dir=None, init_from=None, tensorboard=False, loggers=())
    cfg_out = dataclasses.replace(cfg, train=train)
    config_text = yaml.safe_dump({**cfg_out.to_dict(), "data_info": data_info.to_dict()}, sort_keys=False)
    run_info = read_run_info(run)
    data_record = _read_data_record(run)
    evaluation = _eval_of_step(run, step, cfg)
    samples = _samples_png(method, cfg)
    from . import __version__

    model_info = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "method": cfg.method, "step": step,
        "config": CONFIG, "weights": {"file": WEIGHTS, "size": len(weight_bytes), "sha256": digest},
        "networks_from_python": list(cfg.train.networks),
        "data": cfg.data.name, "data_info": data_info.to_dict(),
        "parameters": sum(p.numel() for p in method.parameters()),
        "exported": {"genae": __version__, "torch": torch.__version__, "from_run": run.name,
                     "checkpoint": ckpt.name, "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")},
        "trained": {k: run_info[k] for k in ("genae", "torch", "python", "git_commit", "device", "wall_seconds")
                    if k in run_info},
    }
    files: dict[str, bytes] = {WEIGHTS: weight_bytes, CONFIG: config_text.encode()}
    if data_record is not None:
        files["data.json"] = json.dumps(data_record, indent=2).encode()
    if evaluation is not None:
        files["eval.json"] = json.dumps(evaluation, indent=2).encode()
    if samples is not None:
        files[SAMPLES] = samples[0]
    for prior in sorted(ckpt.glob("ex-post-*.safetensors")):  # fitted on these very bytes (their digest)
        if prior.is_file() and not prior.is_symlink():
            files[prior.name] = prior.read_bytes()
    caps = [c for c in ("encode", "decode", "reconstruct", "sample") if method.supports(c)]
    files[CARD] = model_card(cfg, data_info, model_info, run_info, data_record, evaluation, caps,
                             samples[1] if samples is not None else None, out.name).encode()
    files[MODEL_INFO] = json.dumps(model_info, indent=2).encode()  # last: it marks the folder complete
    _write_folder(out, files)
    if log:
        log(f"exported {cfg.method} at step {step} ({len(weight_bytes) / 1e6:.2f} MB of weights) to {out}")
    return out


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise GenaeError(f"--out {out} exists and is not a folder; choose a new folder")
    if out.is_dir() and any(out.iterdir()):
        what = "an exported model" if is_exported(out) else "a non-empty folder"
        raise GenaeError(f"--out {out} is {what}; nothing was touched: choose a new folder (or remove it first)")
    if not out.parent.is_dir():
        raise GenaeError(f"--out {out}: the folder {out.parent} does not exist")


def _manifest_digest(ckpt: Path) -> str | None:
    path = ckpt / "manifest.json"
    if not path.is_file():
        return None  # a checkpoint from before manifests
    return schema.read_json(path, schema.CHECKPOINT_MANIFEST)["files"].get(WEIGHTS, {}).get("sha256")


def _write_folder(out: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a temporary folder beside ``out``, fsync'ed, then rename it to ``out``
    (an empty folder there is replaced); on any failure, or an interrupt, nothing is left."""
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()
        for name, data in files.items():
            write_synced(tmp / name, data)
        fsync_dir(tmp)
        try:
            os.rename(tmp, out)  # onto a missing name, or an empty folder (POSIX)
        except OSError as e:
            raise GenaeError(f"could not move the exported model into {out} ({e.strerror or e}); "
                             "nothing was written") from None
        fsync_dir(out.parent)
    except BaseException as e:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        if isinstance(e, OSError):
            raise GenaeError(f"could not write the exported model {out} ({e.strerror or e}"
                             f"{f': {e.filename}' if e.filename else ''}); nothing was left behind") from None
        raise


def _read_data_record(run: Path) -> dict | None:
    path = run / "data.json"
    if not path.is_file():
        return None
    try:
        return schema.read_json(path, schema.DATA_RECORD)
    except (RunFileError, OSError) as e:
        print(f"warning: {e}; the exported model has no data record", file=sys.stderr)
        return None


def _eval_of_step(run: Path, step: int, cfg) -> dict | None:
    """The run's metrics computed on ``step``'s weights (from eval.json and eval-step-N.json), as
    an eval.json record of that step; None when none was."""
    metrics: dict[str, Any] = {}
    for name in (f"eval-{checkpoint_name(step)}.json", "eval.json"):
        path = run / name
        if not path.is_file():
            continue
        try:
            record = read_eval_record(path)
        except (RunFileError, OSError) as e:
            print(f"warning: {e}; its metrics are left out of the export", file=sys.stderr)
            continue
        file_step = record.get("step")
        for k, v in record["metrics"].items():
            entry = v if isinstance(v, dict) else {"value": v}
            if entry.get("step", file_step) == step:  # never numbers of other weights
                metrics[k] = {**entry, "step": step}
    if not metrics:
        return None
    return {"run": run.name, "method": cfg.method, "data": cfg.data.name, "step": step, "metrics": metrics}


def _samples_png(method, cfg) -> tuple[bytes, str] | None:
    """(PNG bytes of a sample grid as training draws it, one row per class for a class-conditional
    sampler, seed ``SAMPLE_SEED``; the ``genae sample`` arguments that draw it again, or "" when
    it has class rows); None for a method that does not sample images."""
    import io

    from PIL import Image

    from .methods import Unsupported
    from .viz.grids import make_grid

    if method.info.kind != "image" or not method.supports("sample"):
        return None
    n, y, nrow = min(cfg.train.n_samples, 64), None, None
    if method.sample_y == "class" and method.needs_labels and method.info.num_classes:
        nrow = max(1, n // method.info.num_classes)
        y = torch.arange(method.info.num_classes).repeat_interleave(nrow)
        n = len(y)
    try:
        with torch.no_grad():
            x = method.sample(n, y=y, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    except Unsupported:  # e.g. CTRL whose prior saw no example of some class
        return None
    buf = io.BytesIO()
    Image.fromarray(make_grid(method.to_unit(x), nrow=nrow)).save(buf, format="PNG")
    return buf.getvalue(), ("" if y is not None else f"--n {n} --seed {SAMPLE_SEED}")


# --------------------------------------------------------------------------------------------
# The model card
# --------------------------------------------------------------------------------------------
#: fields of a metric's result that say how it was measured (shown beside the value)
PROTOCOL = ("backbone", "backbone_name", "backbone_weights", "backbone_test_acc", "n", "n_real", "n_fake",
            "split", "scale")


def _paper(method_name: str) -> str:
    """The first paragraph of the method's module docstring: its name and paper (genae's methods
    cite their paper there)."""
    from .methods import METHODS

    doc = sys.modules[METHODS[method_name].cls.__module__].__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split()).replace("``", "`")


def _front_matter(cfg, evaluation: dict | None) -> str:
    from .data import DATASETS

    meta: dict[str, Any] = {"library_name": "genae",
                            "tags": ["genae", "pytorch", "generative-autoencoder", cfg.method]}
    if cfg.data.name in DATASETS:  # a registered dataset; a folder or arrays of the user's are no Hub id
        meta["datasets"] = [cfg.data.name]
    if evaluation:
        meta["metrics"] = sorted(evaluation["metrics"])
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def model_card(cfg, data_info, model_info: dict, run_info: dict, data_record: dict | None,
               evaluation: dict | None, caps: list[str], samples: str | None, folder_name: str) -> str:
    """``README.md`` of an exported model: front matter for the Hub, the method and its paper, the
    data and its provenance, training, the metrics with their protocol, how to load it, versions.
    ``samples``: None without samples.png, else the ``genae sample`` arguments that redraw it ("")."""
    from .methods import METHODS

    step, name = model_info["step"], cfg.method
    lines = [_front_matter(cfg, evaluation), f"# {name} on {cfg.data.name} (genae, step {step})", "",
             f"**Method** `{name}`: {METHODS[name].description}.", "", f"**Paper**: {_paper(name)}", ""]
    lines += ["## Load it", "", "```python", "import genae, torch",
              f"method = genae.load_run({folder_name!r}"
              + (", networks={" + ", ".join(f"{n!r}: ..." for n in cfg.train.networks) + "})"
                 if cfg.train.networks else ")")
              + "   # eval mode; model.safetensors' SHA-256 is checked"]
    if "sample" in caps:
        lines.append("x = method.sample(16, generator=torch.Generator().manual_seed(0))")
    evaluated = ",".join(sorted(evaluation["metrics"])) if evaluation else "recon-mse"
    lines += ["```", "", "```bash"]
    if "sample" in caps:
        lines.append(f"genae sample {folder_name} --n 64 --out samples.png")
    lines += [f"genae eval {folder_name} --metrics {evaluated}", "```", ""]
    if cfg.train.networks:
        lines += [f"Its {', '.join(cfg.train.networks)} came from Python (`genae.train(networks=...)`): "
                  "pass the same modules to load it.", ""]
    lines += [f"Inference calls: {', '.join(caps) or 'see `genae methods`'}. Nothing in this folder runs "
              "code when read: weights in safetensors, the rest JSON/YAML.", ""]
    # training
    t = cfg.train
    lines += ["## Training", "",
              "| | |", "|---|---|",
              f"| steps | {step} of train.steps={t.steps} |",
              f"| batch size | {t.batch_size} |",
              f"| seed | {t.seed} |"]
    if "device" in run_info:
        lines.append(f"| device | {run_info['device']} |")
    if "wall_seconds" in run_info:
        lines.append(f"| wall time (whole run) | {run_info['wall_seconds']} s |")
    lines.append(f"| parameters | {model_info['parameters']:,} |")
    for key in ("genae", "torch", "python", "git_commit"):
        if key in run_info:
            lines.append(f"| trained with {key} | {_fmt(run_info[key])} |")
    exp = model_info["exported"]
    lines += [f"| exported with | genae {exp['genae']}, torch {exp['torch']} |", "",
              "The model's config (`model.*`) and everything else it was trained with are in `config.yaml`.", ""]
    # data
    di = data_info
    lines += ["## Data", "", f"`{cfg.data.name}`: {di.kind}s of shape {tuple(di.shape)}"
              + (f", {di.num_classes} classes" if di.num_classes else ", unlabelled")
              + (f", {di.size:,} training examples" if di.size else "") + "."]
    if data_record:
        lines += ["", "| split | source | file | SHA-256 |", "|---|---|---|---|"]
        for split, rec in data_record.items():
            if rec is None:
                lines.append(f"| {split} | (absent) | | |")
                continue
            files = rec.get("files") or {}
            if not files:
                lines.append(f"| {split} | {_fmt(rec.get('source', '?'))} | | |")
            for fname, sha in files.items():
                lines.append(f"| {split} | {_fmt(rec.get('source', '?'))} | {_fmt(fname)} | `{_fmt(sha)}` |")
        lines += ["", "(`data.json`; `genae eval` warns when the data it reads differs.)"]
    lines.append("")
    # metrics
    lines += [f"## Evaluation (step {step})", ""]
    if evaluation:
        lines += ["| metric | value | protocol |", "|---|---|---|"]
        for metric, r in sorted(evaluation["metrics"].items()):
            if "skipped" in r:
                lines.append(f"| {metric} | skipped | {_fmt(r['skipped'])} |")
                continue
            proto = ", ".join(f"{k}={_fmt(r[k])}" for k in PROTOCOL if k in r)
            lines.append(f"| {metric} | {_fmt(r.get('value'))} | {proto} |")
        lines += ["", "(`eval.json`; fid/kid/... from `--backbone domain` are comparable only between runs "
                  "whose backbone_weights agree.)"]
    else:
        lines.append("Not evaluated at this step; `genae eval` on this folder writes `eval.json` here.")
    lines.append("")
    if samples is not None:
        lines += ["## Samples", "", f"![samples of {name}]({SAMPLES})", ""]
        if samples:
            lines += [f"(`genae sample {folder_name} {samples} --out samples.png` draws them again.)", ""]
        else:
            lines += [f"(one row per class, seed {SAMPLE_SEED}; `genae sample {folder_name} --class K` "
                      "draws class K.)", ""]
    lines += ["## Files", "", "| file | what |", "|---|---|",
              f"| `{WEIGHTS}` | weights (parameters and buffers), SHA-256 `{model_info['weights']['sha256']}` |",
              f"| `{CONFIG}` | the resolved config that rebuilds the method |",
              f"| `{MODEL_INFO}` | format {FORMAT} v{FORMAT_VERSION}, method, step, the weights' digest |", ""]
    return "\n".join(lines)
