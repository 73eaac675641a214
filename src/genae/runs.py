"""Run directories, atomic checkpoints and ``load_run``.

Layout of a run directory::

    RUN/config.yaml                 resolved config (method, model, train, data) + data info
    RUN/checkpoints/step-00001000/  model.safetensors (weights) + trainer.pt (optimizer, schedule,
                                    RNG, data position, AMP scaler, step) + config.yaml
    RUN/checkpoints/latest          name of the newest complete checkpoint directory
    RUN/metrics.jsonl               one JSON object per log interval
    RUN/tb/                         TensorBoard events
    RUN/samples/                    samples_<step>.png, recon_<step>.png
    RUN/loss_curves.png, eval.json, report.html

A checkpoint is written into a temporary directory, every file fsync'ed, then renamed into place;
only then is ``latest`` replaced (write + fsync + rename), so a run killed at any instant leaves the
previous checkpoint complete and pointed to. (The design names ``checkpoints/model.safetensors``;
one directory per step is what makes the pair of files atomic together.)
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from .config import RunConfig
from .errors import GenaeError
from .methods import METHODS, DataInfo, Method

CONFIG = "config.yaml"
CKPT_DIR = "checkpoints"
LATEST = "latest"


def read_metrics(path: str | Path) -> list[dict]:
    """Rows of a ``metrics.jsonl`` file (a truncated last line, from a killed run, is ignored)."""
    rows = []
    path = Path(path)
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def new_run_dir(cfg: RunConfig) -> Path:
    """``cfg.train.out_dir`` or ``runs/<method>-<data>-<YYYYmmdd-HHMMSS>``; refuses to reuse a run."""
    if cfg.train.out_dir:
        path = Path(cfg.train.out_dir)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        data = cfg.data.name.replace("folder:", "folder-").replace("/", "_")
        path = Path("runs") / f"{cfg.method}-{data}-{stamp}"
    if (path / CONFIG).exists():
        raise GenaeError(f"{path} already holds a run; continue it with `genae resume {path}` "
                         "or choose another --out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_config(run_dir: Path, cfg: RunConfig, info: DataInfo) -> None:
    atomic_write(Path(run_dir) / CONFIG, _config_text(cfg, info).encode())


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's resolved config as a dict with keys method, model, train, data, data_info."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise GenaeError(f"{run_dir} is not a genae run: {path} is missing")
    return yaml.safe_load(path.read_text())


def run_config(run_dir: str | Path) -> tuple[RunConfig, DataInfo]:
    d = read_config(run_dir)
    info = DataInfo.from_dict(d.pop("data_info"))
    return RunConfig.from_dict(d), info


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
def checkpoint_name(step: int) -> str:
    """The directory name of ``step``'s checkpoint: ``step-00001000``."""
    return f"step-{step:08d}"


def checkpoint_step(ckpt: Path) -> int:
    """The training step of a checkpoint directory (the inverse of ``checkpoint_name``)."""
    return int(Path(ckpt).name.split("-")[1])


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory, or None if the run has none yet."""
    pointer = Path(run_dir) / CKPT_DIR / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    return path if (path / "model.safetensors").is_file() and (path / "trainer.pt").is_file() else None


def write_checkpoint(run_dir: Path, step: int, method: Method, trainer_state: dict[str, Any],
                     cfg: RunConfig, keep: int) -> Path:
    """Atomically write weights + trainer state + config for ``step``; keep the newest ``keep``."""
    root = Path(run_dir) / CKPT_DIR
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(step)
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = {k: v.detach().to("cpu").clone().contiguous() for k, v in method.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"),
              metadata={"method": cfg.method, "step": str(step), "config": json.dumps(cfg.to_dict())})
    buf = io.BytesIO()
    torch.save(trainer_state, buf)
    _write_synced(tmp / "trainer.pt", buf.getvalue())
    _write_synced(tmp / CONFIG, _config_text(cfg, method.info).encode())
    _fsync_file(tmp / "model.safetensors")
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    atomic_write(root / LATEST, name.encode())
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint(ckpt: Path, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """(model state_dict on ``device``, trainer state) of a checkpoint directory."""
    weights = load_file(str(ckpt / "model.safetensors"), device=str(device))
    state = torch.load(ckpt / "trainer.pt", map_location="cpu", weights_only=False)
    return weights, state


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", step: int | None = None) -> Method:
    """The trained method of a run (latest checkpoint, or ``step``), in eval mode on ``device``."""
    cfg, info = run_config(run_dir)
    if step is None:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise GenaeError(f"{run_dir} has no complete checkpoint yet")
    else:
        ckpt = Path(run_dir) / CKPT_DIR / checkpoint_name(step)
        if not (ckpt / "model.safetensors").is_file():
            have = sorted(p.name for p in (Path(run_dir) / CKPT_DIR).glob("step-*"))
            raise GenaeError(f"{run_dir} has no checkpoint at step {step}; it has: {', '.join(have) or 'none'}")
    method = build_method(cfg, info).to(device)
    weights, _ = read_checkpoint(ckpt, device)
    method.load_state_dict(weights)
    method.eval()
    return method


def build_method(cfg: RunConfig, info: DataInfo) -> Method:
    return METHODS[cfg.method].build(cfg.model, info)


# --------------------------------------------------------------------------------------------
# Durable file writes
# --------------------------------------------------------------------------------------------
def _config_text(cfg: RunConfig, info: DataInfo) -> str:
    return yaml.safe_dump({**cfg.to_dict(), "data_info": info.to_dict()}, sort_keys=False)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync_file(path)
    except OSError:  # some filesystems refuse fsync on directories; the rename is still atomic
        pass


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    _write_synced(tmp, data)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
