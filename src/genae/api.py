"""genae from Python: train any registered method on your own data and networks, load, evaluate.

    import genae
    run = genae.train("vae", data=x, labels=y, test=x_test, test_labels=y_test, steps=2000,
                      model={"latent_dim": 8}, networks={"encoder": MyEncoder()})
    method = genae.load_run(run, networks={"encoder": MyEncoder()})
    scores = genae.evaluate(run, ["recon-mse", "fid"], networks={"encoder": MyEncoder()})

``data`` is a tensor, a NumPy array or a ``torch.utils.data.Dataset`` (``genae.data.arrays`` says
which shapes and dtypes), or a registered dataset name such as ``"mnist"``. Arrays are stored once
as safetensors in genae's cache, so the run is a normal run directory: ``genae resume``, ``sample``,
``eval`` and ``report`` work on it from the command line (a run with networks from Python needs
those modules, so it is loaded from Python). ``genae export RUN --out DIR`` (``genae.export``) writes
one checkpoint as a shareable model folder; ``load_run``, ``evaluate``, ``genae sample`` and
``genae eval`` take that folder wherever they take a run.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from .config import RunConfig, validate
from .errors import ConfigError, short_repr

__all__ = ["evaluate", "load_run", "resume", "train"]


def train(method: str | RunConfig, data: Any = None, *, labels: Any = None, test: Any = None,
          test_labels: Any = None, steps: int | None = None, model: Mapping[str, Any] | None = None,
          train: Mapping[str, Any] | None = None, data_options: Mapping[str, Any] | None = None,
          out: str | Path | None = None, networks: Mapping[str, torch.nn.Module] | None = None,
          init_from: str | None = None, callbacks: Iterable = ()) -> Path:
    """Train ``method`` (a name from ``genae.METHODS``, or a resolved ``RunConfig``) and return
    the run directory.

    data / labels, test / test_labels: your arrays (see the module docstring) or a dataset name;
    steps: ``train.steps``; model / train / data_options: ``model.*`` / ``train.*`` / ``data.*``
    keys; out: the run directory; networks: sub-network name -> ``nn.Module`` in place of the
    built one (shapes checked against what the method feeds it); init_from: ``train.init_from``;
    callbacks: ``fn(event, step, payload)`` called on "config", "log", "images", "checkpoint",
    "end" (``genae.loggers``).
    """
    from .training import train as _train

    if isinstance(method, RunConfig):
        if data is not None or model or train or steps is not None:
            raise ConfigError("genae.train(RunConfig): the config already says everything; pass only networks")
        return _train(method, networks=dict(networks) if networks else None, callbacks=tuple(callbacks))
    tree_train = dict(train or {})
    if steps is not None:
        tree_train["steps"] = steps
    if out is not None:
        tree_train["out_dir"] = str(out)
    if init_from is not None:
        tree_train["init_from"] = init_from
    tree_data = {"name": _dataset_name(data, labels, test, test_labels), **dict(data_options or {})}
    cfg = RunConfig.from_dict({"method": method, "model": dict(model or {}), "train": tree_train,
                               "data": tree_data})
    validate(cfg)
    return _train(cfg, networks=dict(networks) if networks else None, callbacks=tuple(callbacks))


def _dataset_name(data: Any, labels: Any, test: Any, test_labels: Any) -> str:
    """A registered name as given, or ``tensors:DIR`` after storing arrays (``genae.data.arrays``)."""
    from .data.arrays import PREFIX, as_split, store_arrays

    if data is None:
        raise ConfigError("genae.train: give data= (a tensor, an array, a Dataset or a dataset name)")
    if isinstance(data, str):
        if labels is not None or test is not None:
            raise ConfigError(f"data={short_repr(data)} names a dataset, which brings its own labels and test split")
        return data
    train_split = as_split(data, labels, "data")
    test_split = as_split(test, test_labels, "test") if test is not None else None
    return PREFIX + str(store_arrays(train_split, test_split))


def _reference_name(method, data: Any, labels: Any, resized: bool = False) -> str:
    """The dataset name of ``data`` for evaluating ``method``: a name as given, or arrays stored as
    both splits, after checking that they are the kind and shape of data the method was built for
    (a network fed other sizes fails deep inside with a shape error, or scores nonsense);
    ``resized``: the run's ``data.image_size`` resizes images at load, so only channels count."""
    from .data.arrays import PREFIX, as_split, store_arrays

    if isinstance(data, str):
        return _dataset_name(data, labels, None, None)
    split = as_split(data, labels, "data")
    x, _, kind = split
    info = method.info
    want, have = tuple(info.shape), tuple(x.shape[1:])
    if resized:  # data.image_size resizes the images at load: only the channels must agree
        want, have = want[:1], have[:1]
    if kind != info.kind or have != want:
        raise ConfigError(f"data: {kind}s of shape {tuple(x.shape[1:])}, but the method was built for "
                          f"{info.kind}s of shape {tuple(info.shape)}; give data of that shape (resize "
                          f"images, e.g. torch.nn.functional.interpolate)")
    return PREFIX + str(store_arrays(split, split))


def resume(run: str | Path, steps: int | None = None, *, set: Iterable[str] = (),  # noqa: A002
           networks: Mapping[str, torch.nn.Module] | None = None) -> Path:
    """``genae resume RUN [--steps N] [--set k=v]`` from Python (with the run's own networks)."""
    from .training import resume as _resume

    return _resume(run, steps=steps, overrides=tuple(set), networks=dict(networks) if networks else None)


def load_run(run: str | Path, device: str = "cpu", step: int | None = None,
             networks: Mapping[str, torch.nn.Module] | None = None):
    """The trained method (eval mode, gradients off) of a run directory, or of a model folder
    written by ``genae export`` (its weights' SHA-256 checked first): see ``genae.runs.load_run``
    and ``genae.export``."""
    from .runs import load_run as _load_run

    return _load_run(run, device=device, step=step, networks=dict(networks) if networks else None)


def evaluate(run_or_method: Any, metrics: Iterable[str], *, data: Any = None, labels: Any = None,
             split: str = "test", n_samples: int = 10000, backbone: str = "domain", device: str = "cpu",
             seed: int = 0, step: int | None = None, networks: Mapping[str, torch.nn.Module] | None = None,
             progress: bool = False) -> dict[str, dict[str, Any]]:
    """Metrics (names from ``genae.METRICS``) of a run directory's checkpoint, or of a ``Method``
    object against ``data`` (a dataset name, a ``DataConfig``, or arrays with ``labels`` used as
    the reference split) -> ``{metric: result}``, the same records ``genae eval`` writes."""
    from .data import DataConfig
    from .methods.base import Method
    from .metrics import EvalContext, evaluate as _evaluate
    from .runs import open_checkpoint
    from .distributed import resolve_device

    # the arguments first, before a run is loaded or data stored
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples <= 0:
        raise ConfigError(f"genae.evaluate: n_samples={short_repr(n_samples)}; give a positive number of "
                          "generated samples")
    if split not in ("test", "train"):
        raise ConfigError(f"genae.evaluate: split={short_repr(split)}; choose test or train")
    if backbone not in ("domain", "inception"):
        raise ConfigError(f"genae.evaluate: backbone={short_repr(backbone)}; choose domain or inception")
    device = str(resolve_device(device, "device") if not isinstance(device, torch.device) else device)
    if isinstance(run_or_method, Method):
        method = run_or_method
        if data is None:
            raise ConfigError("genae.evaluate(method, ...): give data= (what to compare against)")
        data_cfg = data if isinstance(data, DataConfig) else DataConfig(_reference_name(method, data, labels))
    else:
        method, cfg, _ = open_checkpoint(run_or_method, device=device, step=step,
                                         networks=dict(networks) if networks else None)
        data_cfg = cfg.data if data is None else (data if isinstance(data, DataConfig) else
                                                  dataclasses.replace(cfg.data, name=_reference_name(
                                                      method, data, labels, cfg.data.image_size is not None)))
    ctx = EvalContext(data_cfg, split=split, n_samples=n_samples, backbone=backbone, device=device,
                      seed=seed, progress=progress)
    return _evaluate(method, ctx, list(metrics))
