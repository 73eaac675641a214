"""Where a run's numbers and pictures go besides ``metrics.jsonl``: TensorBoard, MLflow, Weights &
Biases, and Python callbacks.

Every sink receives the same events from the trainer (and ``genae eval``):

- ``config(cfg_dict)`` once when a run starts (not again on resume);
- ``scalars(step, {name: value})`` at each log interval (losses ``<player>/<term>``, ``lr/<player>``,
  ``steps_per_s``);
- ``images(step, {"samples"|"reconstructions": (H, W, 3) uint8})`` at each sample interval;
- ``checkpoint(step, path)`` after each checkpoint;
- ``eval(step, {metric: value})`` when ``genae eval`` scores a checkpoint (``eval/<metric>``);
- ``close()`` at the end (also on errors).

TensorBoard (``train.tensorboard``, default on) writes under ``RUN/tb``: scalars, the sample and
reconstruction grids as images, the resolved config as text and as hparams, eval metrics.
``train.loggers`` adds ``"mlflow"`` (a local file store in ``RUN/mlruns``; no server) and/or
``"wandb"`` (offline mode, files in ``RUN/wandb``; ``wandb sync`` uploads them later): optional
dependencies, ``pip install 'genae[loggers]'``. Each keeps its run id in ``RUN/loggers.json`` so
a resumed run and later evals continue the same MLflow/W&B run. Callbacks: any callables given to
``genae.train(..., callbacks=[fn])`` are called as ``fn(event, step, payload)`` for the events
above.
"""
from __future__ import annotations

import json
import os
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .config import LOGGERS, check_loggers, flatten_config  # the choices and their check are config's
from .errors import RunFileError
from .fileio import atomic_write, make_dirs

__all__ = ["LOGGERS", "CallbackSink", "MLflowSink", "Sink", "TensorBoardSink", "WandbSink", "check_loggers",
           "log_eval", "open_sinks"]

IDS = "loggers.json"


class Sink:
    """A destination for a run's events; every method is a no-op unless overridden."""

    def config(self, cfg: dict[str, Any]) -> None: ...

    def scalars(self, step: int, values: dict[str, float]) -> None: ...

    def images(self, step: int, images: dict[str, np.ndarray]) -> None: ...

    def checkpoint(self, step: int, path: Path) -> None: ...

    def eval(self, step: int, values: dict[str, float]) -> None: ...

    def close(self) -> None: ...


def _flat(cfg: dict[str, Any]) -> dict[str, Any]:
    """``flatten_config`` with every value a scalar (lists, mappings, None as strings), as
    hparams/params/W&B config want."""
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in flatten_config(cfg).items()}


def _ids(run_dir: Path) -> dict[str, str]:
    """The logger run ids of ``RUN/loggers.json`` (``schema.LOGGER_IDS``); none when the file is
    missing, damaged or of the wrong types (the logger then starts a new run of its own)."""
    from .schema import LOGGER_IDS, read_json

    try:
        return read_json(run_dir / IDS, LOGGER_IDS)
    except (OSError, RunFileError):
        return {}


def _save_id(run_dir: Path, name: str, run_id: str) -> None:
    ids = _ids(run_dir)
    if ids.get(name) != run_id:
        atomic_write(run_dir / IDS, json.dumps({**ids, name: run_id}, indent=2).encode(), root=run_dir)


class TensorBoardSink(Sink):
    """``RUN/tb``: scalars, images (HWC), config as text and hparams, eval metrics."""

    def __init__(self, run_dir: Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        # a real folder of the run (a link there is refused): TensorBoard writes where it is told
        self.writer = SummaryWriter(str(make_dirs(run_dir, Path(run_dir) / "tb")), purge_step=purge_step)

    def config(self, cfg):
        import yaml
        from torch.utils.tensorboard.summary import hparams

        self.writer.add_text("config", "```\n" + yaml.safe_dump(cfg, sort_keys=False) + "```", 0)
        # hparams into this run's own event file (SummaryWriter.add_hparams would open a sub-run)
        for summary in hparams(_flat(cfg), {}):
            self.writer.file_writer.add_summary(summary)

    def scalars(self, step, values):
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)

    def images(self, step, images):
        for name, array in images.items():
            self.writer.add_image(name, array, step, dataformats="HWC")

    def eval(self, step, values):
        for k, v in values.items():
            self.writer.add_scalar(f"eval/{k}", v, step)

    def close(self):
        self.writer.close()


class MLflowSink(Sink):
    """An MLflow run in the local file store ``RUN/mlruns`` (experiment "genae")."""

    def __init__(self, run_dir: Path, run_name: str):
        # MLflow 3 keeps the file store (the no-server, no-database option) behind this opt-in
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        import mlflow

        self.mlflow, self.run_dir = mlflow, Path(run_dir)
        store = make_dirs(self.run_dir, self.run_dir / "mlruns")  # a real folder of the run, not a link
        self.client = mlflow.tracking.MlflowClient(tracking_uri=store.resolve().as_uri())
        run_id = _ids(self.run_dir).get("mlflow")
        if run_id is None:
            exp = self.client.get_experiment_by_name("genae")
            exp_id = exp.experiment_id if exp else self.client.create_experiment("genae")
            run_id = self.client.create_run(exp_id, run_name=run_name).info.run_id
            _save_id(self.run_dir, "mlflow", run_id)
        self.run_id = run_id

    def config(self, cfg):
        from mlflow.entities import Param

        params = [Param(k, str(v)[:500]) for k, v in _flat(cfg).items()]
        for i in range(0, len(params), 100):  # the store's batch limit
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def _metrics(self, step, values):
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()]
        for i in range(0, len(metrics), 500):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 500])

    def scalars(self, step, values):
        self._metrics(step, values)

    def eval(self, step, values):
        self._metrics(step, {f"eval/{k}": v for k, v in values.items()})

    def images(self, step, images):
        for name, array in images.items():
            self.client.log_image(self.run_id, array, artifact_file=f"{name}/step_{step:08d}.png")

    def close(self):
        pass  # the file store needs no closing; the run stays open for resumes and evals


class WandbSink(Sink):
    """A Weights & Biases run in offline mode under ``RUN/wandb`` (``wandb sync`` uploads it)."""

    def __init__(self, run_dir: Path, run_name: str, cfg: dict[str, Any]):
        import wandb

        self.wandb, self.run_dir = wandb, Path(run_dir)
        run_id = _ids(self.run_dir).get("wandb") or uuid.uuid4().hex[:8]  # W&B run ids: [a-z0-9]
        _save_id(self.run_dir, "wandb", run_id)
        make_dirs(self.run_dir, self.run_dir / "wandb")  # a real folder of the run, not a link
        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(project="genae", name=run_name, id=run_id, resume="allow", mode="offline",
                              dir=str(self.run_dir), config=_flat(cfg), reinit=True)

    def scalars(self, step, values):
        self.run.log(dict(values), step=step)

    def eval(self, step, values):
        self.run.log({f"eval/{k}": v for k, v in values.items()}, step=step)

    def images(self, step, images):
        self.run.log({name: self.wandb.Image(array) for name, array in images.items()}, step=step)

    def close(self):
        self.run.finish()


class CallbackSink(Sink):
    """Calls each ``fn(event, step, payload)``; a failing callback warns instead of stopping the run."""

    def __init__(self, callbacks: Iterable[Callable[[str, int, Any], None]]):
        self.callbacks = list(callbacks)

    def _call(self, event, step, payload):
        for fn in self.callbacks:
            try:
                fn(event, step, payload)
            except Exception as e:  # noqa: BLE001 - a user's hook must not lose the run
                warnings.warn(f"callback {getattr(fn, '__name__', fn)!r} failed on {event}: {e!r}")

    def config(self, cfg):
        self._call("config", 0, cfg)

    def scalars(self, step, values):
        self._call("log", step, values)

    def images(self, step, images):
        self._call("images", step, images)

    def checkpoint(self, step, path):
        self._call("checkpoint", step, path)

    def eval(self, step, values):
        self._call("eval", step, values)

    def close(self):
        self._call("end", -1, None)


def open_sinks(run_dir: Path, cfg, start: int = 0, callbacks: Iterable[Callable] = ()) -> list[Sink]:
    """The sinks ``cfg.train`` asks for (TensorBoard, MLflow, W&B) plus the callbacks."""
    t = cfg.train
    name = Path(run_dir).name
    sinks: list[Sink] = []
    if t.tensorboard:
        try:
            sinks.append(TensorBoardSink(run_dir, purge_step=start or None))
        except ImportError:
            warnings.warn("tensorboard is not installed; skipping TensorBoard events")
    check_loggers(t.loggers)
    if "mlflow" in t.loggers:
        sinks.append(MLflowSink(run_dir, name))
    if "wandb" in t.loggers:
        sinks.append(WandbSink(run_dir, name, cfg.to_dict()))
    if callbacks:
        sinks.append(CallbackSink(callbacks))
    return sinks


def log_eval(run_dir: Path, cfg, step: int, results: dict[str, dict[str, Any]]) -> None:
    """Send the headline value of each evaluated metric to the run's loggers as ``eval/<metric>``."""
    values = {k: float(r["value"]) for k, r in results.items()
              if isinstance(r, dict) and isinstance(r.get("value"), (int, float)) and not isinstance(r.get("value"), bool)}
    if not values:
        return
    sinks = open_sinks(Path(run_dir), cfg)
    try:
        for s in sinks:
            s.eval(step, values)
    finally:
        for s in sinks:
            s.close()
