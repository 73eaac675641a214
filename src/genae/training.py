"""Training runs: the entry points ``train`` and ``resume`` and what a run writes while it trains.

``train(cfg)`` makes a new run directory and trains; ``resume(run_dir)`` continues one from its
newest complete checkpoint exactly as if it had never stopped (weights, optimizer and schedule
state, RNG states and data position are restored by :class:`genae.trainer.TrainingState`). Around
the core's steps (:func:`genae.trainer.run_step`): logging (progress bar, ``metrics.jsonl``,
TensorBoard / MLflow / W&B sinks), sample and reconstruction grids, the prior fit of methods that
declare ``fit_prior``, and atomic checkpoints (periodic, at the end, on SIGINT/SIGTERM). Under
``torchrun`` ranks agree on signals and rank 0 alone writes the run directory.
"""
from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch

from . import collectives, distributed, fileio, loggers, precision, runs
from .config import RunConfig, check_against_data
from .data import load_dataset, to_range
from .distributed import resolve_device
from .errors import DatasetNotFound, GenaeError, Interrupted, NonFiniteLoss
from .methods import Method, Unsupported, Update
from .trainer import StagePlan, TrainingState, DeferredCheck, flush_denormal_inside, player_params, run_step
from .viz.grids import make_grid, save_png
from .viz.plots import loss_curves, save_figure


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------
def train(cfg: RunConfig, networks: dict[str, torch.nn.Module] | None = None, callbacks: Sequence = ()) -> Path:
    """Train a new run described by ``cfg``; returns the run directory. ``networks``: sub-network
    name -> your own ``nn.Module`` in place of the built one (shapes checked; recorded in
    ``train.networks`` so loading the run asks for the same modules)."""
    if networks:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, networks=tuple(sorted(networks))))
    ctx = distributed.current()
    torch.manual_seed(cfg.train.seed)
    device = distributed.device_for(resolve_device(cfg.train.device))
    cfg, notes = _resolve_amp(cfg, device, ctx)
    data = load_dataset(cfg.data, "train")
    check_against_data(cfg, data.info)
    method = runs.build_method(cfg, data.info, networks)  # validates model.* before any file is written
    if cfg.train.init_from:
        names = runs.init_from(method, cfg.train.init_from)
        if ctx is None or ctx.main:
            print(f"initialised {', '.join(names)} from {cfg.train.init_from}", file=sys.stderr)
    StagePlan(method, list(method.optimizers()), cfg.train.steps)  # the stages fit train.steps
    method = method.to(device)
    test = _load_test(cfg)
    started: list[bool] = []  # filled once set-up is done: from then on the run directory stays
    with contextlib.ExitStack() as held:
        def prepare() -> str:  # rank 0 only under DDP: the others learn the directory (or the error)
            run_dir, lock, created = runs.new_run_dir(cfg)
            held.callback(lock.release)

            def discard(exc_type, *_) -> None:  # runs before the lock's release (pushed after it)
                if exc_type is not None and not started:  # set-up failed: the retry must find --out free
                    runs.discard_new_run(run_dir, created)

            held.push(discard)
            runs.write_config(run_dir, cfg, data.info)
            runs.write_data_record(run_dir, {"train": data, "test": test})
            return str(run_dir)

        run_dir = Path(distributed.main_then_share(ctx, prepare))
        return _fit(run_dir, cfg, method, data, test, device, resume=None, callbacks=callbacks,
                    on_start=lambda: started.append(True), notes=notes)


def _resolve_amp(cfg: RunConfig, device: torch.device,
                 ctx: distributed.Context | None) -> tuple[RunConfig, dict[str, str]]:
    """``train.amp=auto`` -> the measured choice (``precision.resolve_amp``; rank 0 decides for
    every rank), printed; the config written with the run holds the choice, so a resume keeps it.
    Returns the config and the note for run.json."""
    if cfg.train.amp != "auto":
        return cfg, {}
    if cfg.train.threads:  # measure on the threads the run will use
        torch.set_num_threads(cfg.train.threads)
    amp, why = distributed.main_then_share(ctx, lambda: "\t".join(precision.resolve_amp(device))).split("\t", 1)
    if ctx is None or ctx.main:
        print(f"train.amp=auto -> {amp}: {why}", file=sys.stderr)
    return (dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, amp=amp)),
            {"amp_auto": f"{amp}: {why}"})


def resume(run_dir: str | Path, steps: int | None = None, overrides: Sequence[str] = (),
           networks: dict[str, torch.nn.Module] | None = None, callbacks: Sequence = ()) -> Path:
    """Continue a run from its newest complete checkpoint exactly as if it had never stopped.

    The checkpoint's config is the truth. ``steps`` (a new total) and ``overrides``
    (``ns.key=value``) may change only ``runs.RESUMABLE_KEYS`` (intervals, logging, steps, device,
    learning rates); the same keys may have been edited by hand in ``RUN/config.yaml``. Any other
    difference is refused, naming the keys, before anything is written. Holds the run's lock
    throughout; removes what an interrupted writer left; never restarts from step 0 while any
    checkpoint exists.
    """
    run_dir = Path(run_dir)
    ctx = distributed.current()
    main = ctx is None or ctx.main
    runs.read_config(run_dir)  # a clear error if RUN is not a run, before any lock file is made
    with contextlib.ExitStack() as held:
        def prepare() -> str:  # rank 0 only under DDP (the lock, clean-up and the config checks)
            held.enter_context(runs.RunLock(run_dir))
            # a link where the run appends or adds files would carry those writes (and checkpoint
            # pruning) outside the run: refuse it now, before any work, rather than midway
            fileio.refuse_links(run_dir, runs.IN_PLACE)
            for leftover in runs.clean_leftovers(run_dir):
                print(f"removed {leftover}, left by an interrupted writer", file=sys.stderr)
            ckpt = runs.latest_checkpoint(run_dir)
            if ckpt is None and runs.checkpoint_dirs(run_dir):
                raise GenaeError(f"{run_dir} has checkpoints but none is complete{runs.damaged_summary(run_dir)}; "
                                 "nothing was changed (restarting from step 0 would overwrite them)")
            cfg, _, changed = runs.resume_config(run_dir, ckpt, steps, overrides)
            for key, (old, new) in changed.items():
                print(f"resume: {key}: {old!r} -> {new!r}", file=sys.stderr)
            if cfg.train.lr_schedule != "constant" and "train.steps" in changed:
                print(f"warning: train.lr_schedule={cfg.train.lr_schedule} is laid out over train.steps; "
                      "changing the total changes the learning rate from this step on", file=sys.stderr)
            return "" if ckpt is None else str(ckpt)

        shared = distributed.main_then_share(ctx, prepare)
        ckpt = Path(shared) if shared else None
        cfg, info, changed = runs.resume_config(run_dir, ckpt, steps, overrides)
        device = distributed.device_for(resolve_device(cfg.train.device))
        # a run's config holds the dtype train() chose; only a hand-written "auto" in a run that
        # never reached a checkpoint is still to resolve
        cfg, notes = _resolve_amp(cfg, device, ctx)
        data = load_dataset(cfg.data, "train")
        test = _load_test(cfg)
        torch.manual_seed(cfg.train.seed)  # the same init as train(): matters if no checkpoint exists yet
        method = runs.build_method(cfg, info, networks).to(device)
        if ckpt is not None:  # read (and type-checked) before anything is written
            weights, state = runs.read_checkpoint(ckpt, device)
            runs.load_weights(method, weights, ckpt)

        def record() -> str:
            if (run_dir / runs.DATA_RECORD).is_file():
                runs.check_data_record(run_dir, {"train": data, "test": test})
            else:  # a run from before data records: record what it continues on
                runs.write_data_record(run_dir, {"train": data, "test": test})
            if changed or notes:  # notes: "auto" resolved, written as the choice
                runs.write_config(run_dir, cfg, info)
            return ""

        distributed.main_then_share(ctx, record)
        if ckpt is None:
            return _fit(run_dir, cfg, method, data, test, device, resume=None, callbacks=callbacks, notes=notes)
        if state["step"] >= cfg.train.steps and main:
            print(f"{run_dir} is already at step {state['step']} of train.steps={cfg.train.steps}; "
                  f"extend it with `genae resume {run_dir} --steps N`", file=sys.stderr)
        return _fit(run_dir, cfg, method, data, test, device, resume=state, callbacks=callbacks)


def _load_test(cfg: RunConfig):
    """The test split (for the fixed reconstruction batch and the data record), or None with a
    notice when the data has none where it was asked to be."""
    try:
        return load_dataset(cfg.data, "test")
    except DatasetNotFound as e:
        print(f"warning: no test split, so no reconstruction grids: {str(e).splitlines()[0]}",
              file=sys.stderr)
        return None


def _fit(run_dir: Path, cfg: RunConfig, method: Method, data, test, device: torch.device,
         resume: dict[str, Any] | None, callbacks: Sequence = (), on_start=lambda: None,
         notes: dict[str, str] | None = None) -> Path:
    """Set up the training state and sinks, call ``on_start()`` (set-up succeeded), train.
    ``notes``: extra fields for run.json (the ``train.amp=auto`` choice)."""
    t = cfg.train
    if t.threads:  # several runs sharing few cores are much faster without OpenMP oversubscription
        torch.set_num_threads(t.threads)
    t0 = time.perf_counter()
    ctx = distributed.current()
    main = ctx is None or ctx.main
    if ctx is not None and ctx.world > 1 and t.sync_bn:
        collectives.convert_batchnorm(method)  # same parameters and buffers: optimizers, checkpoints unchanged
    layout, why = precision.resolve_channels_last(t.channels_last, t.amp, method)
    if why:  # "auto" decided: said once, kept in run.json; the config keeps "auto" (a pure function
        t = dataclasses.replace(t, channels_last=layout)  # of the method and the recorded dtype)
        notes = {**(notes or {}), "channels_last_auto": f"{layout}: {why}"}
        if layout and main:
            print(f"train.channels_last=auto -> true: {why}", file=sys.stderr)
    if t.channels_last:  # before the optimizers exist, so their state takes the same layout
        method.to(memory_format=torch.channels_last)
    state = TrainingState(method, data, t, device, (ctx.rank, ctx.world) if ctx is not None else (0, 1))
    amp = (torch.autocast(device.type, dtype=torch.bfloat16 if t.amp == "bf16" else torch.float16)
           if t.amp != "none" else contextlib.nullcontext())
    fixed = _fixed_batch(test, method, device)  # before restoring RNG: loading must not shift it
    if resume is not None:
        state.load_state_dict(resume)
    if t.compile:
        for module in method.children():
            module.compile()
    method.train()
    log = _Logger(run_dir, t, start=state.step,
                  sinks=loggers.open_sinks(run_dir, cfg, start=state.step, callbacks=callbacks) if main else [],
                  ctx=ctx)
    if resume is None:
        for sink in log.sinks:
            sink.config(cfg.to_dict())
    deferred = DeferredCheck(ctx) if t.nan_check == "interval" else None
    stage, params = None, None
    on_start()

    # Subnormal floats (|x| < 1.2e-38) take a slow microcode path on x86: a decoder's logits for
    # always-black border pixels drive sigmoid's gradients there, and Adam's first moments of
    # rarely-active inputs decay through it (0.9^n). An fp32 VAE fell from 186 to 138 steps/s
    # within 2,500 steps of a plain loop without this (docs/results.md, issue 38). Flushing them to
    # zero changes no value above float32's normal range; the process's setting is restored after.
    with _StopSignals() as stop, warnings.catch_warnings(), \
            flush_denormal_inside(t.flush_denormal and device.type == "cpu"):
        # A schedule advances once per step of its stages, also when that step skipped its player's
        # update (a warm-up, a non-finite skip): PyTorch's first-step order warning does not apply.
        warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before", UserWarning)
        try:
            while state.step < t.steps:
                if state.plan.at(state.step) is not stage:  # a stage boundary, the start or a resume
                    stage = state.plan.at(state.step)
                    method.enter_stage(stage if state.plan.staged else None)
                    params = player_params(state.optimizers)  # frozen parameters leave their player
                run_step(method, state, stage, params, amp, deferred, t.on_nonfinite, log, ctx)
                _interval_work(run_dir, cfg, method, state, data, fixed, log, deferred, stop, ctx)
        except NonFiniteLoss as e:
            e.checkpoint = runs.find_checkpoint(run_dir)[0]
            raise
        finally:
            log.close()
            with contextlib.suppress(OSError):  # a full disk must not hide the error that stopped the run
                if main:
                    runs.write_run_info(run_dir, cfg, method, state.optimizers, device, state.step,
                                        time.perf_counter() - t0, notes)
    if main:
        save_figure(loss_curves(runs.read_metrics(run_dir / runs.METRICS)), run_dir / "loss_curves.png",
                    root=run_dir)
    distributed.barrier(ctx)  # every rank returns once rank 0 has written the whole run
    return run_dir


def _interval_work(run_dir: Path, cfg: RunConfig, method: Method, state: TrainingState, data, fixed,
                   log, deferred, stop, ctx: distributed.Context | None = None) -> None:
    """After a step: the deferred finiteness check, the log line, the prior fit, the sample and
    reconstruction grids and the checkpoint, each at its interval (and all at the last step or on
    SIGINT/SIGTERM). Under DDP the ranks first agree on whether a signal arrived (on any rank),
    every rank fits the prior on the same data, and rank 0 alone writes images and checkpoints."""
    t, step = cfg.train, state.step
    last = step == t.steps
    requested = stop.requested
    if ctx is not None and ctx.world > 1:
        requested = distributed.agree_signal(ctx, requested)
    main = ctx is None or ctx.main
    if deferred and (step % t.log_every == 0 or step % t.ckpt_every == 0 or last or requested):
        deferred.raise_if_bad()
    if step % t.log_every == 0 or last:
        log.flush(step, {k: o.param_groups[0]["lr"] for k, o in state.optimizers.items()})
    images, ckpt = step % t.sample_every == 0 or last, step % t.ckpt_every == 0 or last
    if images or ckpt or requested:
        with collectives.local_only():
            _fit_prior(method, data, t)
    if images and main:
        with collectives.local_only():
            log.images(step, _write_images(run_dir, method, fixed, step, t))
    if (ckpt or requested) and main:
        log.checkpoint(step, runs.write_checkpoint(run_dir, step, method, state.state_dict(), cfg, t.keep_ckpts))
    if requested and not last:
        raise Interrupted(f"stopped by {requested} at step {step}; checkpoint written; "
                          f"continue with `genae resume {run_dir}`")


def _fixed_batch(test, method: Method, device: torch.device) -> torch.Tensor | None:
    """The first test images, reconstructed at every sample interval (same images every time)."""
    if test is None or test.kind != "image" or len(test) == 0:
        return None
    return to_range(test.x[:32].to(device), method.input_range)


@contextlib.contextmanager
def _inference(method: Method):
    """Eval mode, no autograd, and the global RNG forked: side work never changes training."""
    was_training = method.training
    method.eval()
    devices = [method.device] if method.device.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            yield
    finally:
        method.train(was_training)


def _fit_prior(method: Method, data, t) -> None:
    """Give ``Method.fit_prior`` the first ``train.prior_examples`` training examples (methods
    that declare ``fit_prior``)."""
    if not method.supports("fit_prior"):
        return
    x = to_range(data.x[: t.prior_examples].to(method.device), method.input_range)
    y = data.y[: t.prior_examples].to(method.device) if data.y is not None else None
    with _inference(method):
        method.fit_prior(x, y)


def _write_images(run_dir: Path, method: Method, fixed: torch.Tensor | None, step: int, t) -> dict:
    """Sample and reconstruction grids, written as PNGs and returned as ``{name: (H, W, 3) uint8}``
    for the loggers. RNG is forked so that writing images never changes training."""
    grids: dict = {}
    if method.info.kind != "image":
        return grids
    with _inference(method):
        gen = torch.Generator(device=method.device).manual_seed(t.seed + 12345)
        n, y, nrow = t.n_samples, None, None
        if method.sample_y == "class" and method.needs_labels and method.info.num_classes:  # row per class
            nrow = max(1, t.n_samples // method.info.num_classes)
            y = torch.arange(method.info.num_classes, device=method.device).repeat_interleave(nrow)
            n = len(y)
        if method.supports("sample"):
            with contextlib.suppress(Unsupported):  # e.g. CTRL before its prior has seen a class
                grids["samples"] = make_grid(method.to_unit(method.sample(n, y=y, generator=gen)), nrow=nrow)
                save_png(grids["samples"], run_dir / "samples" / f"samples_{step:08d}.png", root=run_dir)
        if fixed is not None and method.supports("reconstruct"):
            recon = method.reconstruct(fixed)
            pairs = torch.stack([method.to_unit(fixed), method.to_unit(recon)], 1).flatten(0, 1)
            grids["reconstructions"] = make_grid(pairs, nrow=16)
            save_png(grids["reconstructions"], run_dir / "samples" / f"recon_{step:08d}.png", root=run_dir)
    return grids


class _Logger:
    """Accumulates logged terms as device tensors; syncs with the host only at log intervals."""

    def __init__(self, run_dir: Path, t, start: int, sinks: list, ctx: distributed.Context | None = None):
        self.main = ctx is None or ctx.main  # under DDP rank 0 writes; every rank joins the mean
        self.world, self.ctx = (ctx.world if ctx is not None else 1), ctx
        self.run_dir = run_dir
        self.sinks = sinks
        if self.main:
            runs.trim_metrics(run_dir, start)  # a resumed run logs again what came after its checkpoint
        self.acc: dict[str, list[torch.Tensor]] = {}
        self.t0, self.step0 = time.perf_counter(), start
        self.bar = None
        if t.progress and self.main:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=t.steps, initial=start, unit="step", dynamic_ncols=True)
        self.last, self.tlast = start, self.t0

    def add(self, update: Update) -> None:
        for k, v in update.logs.items():
            self.acc.setdefault(k, []).append(v.detach().float().reshape(()) if torch.is_tensor(v)
                                              else torch.tensor(float(v)))

    def flush(self, step: int, lrs: dict[str, float]) -> None:
        keys = list(self.acc)
        means = [torch.stack([x.to("cpu") for x in self.acc[k]]).mean() for k in keys]
        if self.world > 1 and keys:  # the logged value of a term is its mean over ranks
            means = list(distributed.mean_over_ranks(torch.stack(means), self.ctx).unbind())
        means = [m.item() for m in means]
        self.acc = {}
        if not self.main:
            return
        now = time.perf_counter()
        row = {"step": step, "time": round(now - self.t0, 3),
               "steps_per_s": round((step - self.last) / max(now - self.tlast, 1e-9), 3),
               **{f"lr/{k}": v for k, v in lrs.items()}, **dict(zip(keys, means))}
        self.tlast, self.last = now, step
        runs.append_metrics(self.run_dir, row)
        for sink in self.sinks:
            sink.scalars(step, {k: v for k, v in row.items() if k != "step"})
        if self.bar is not None:  # the latest losses beside rate and ETA; one redraw per interval
            shown = {k: f"{v:.4g}" for k, v in zip(keys, means) if k.endswith("/loss")}
            self.bar.set_postfix(shown or {k: f"{v:.4g}" for k, v in list(zip(keys, means))[:4]},
                                 refresh=False)
            self.bar.update(step - self.bar.n)
        self.acc = {}

    def warn(self, msg: str) -> None:
        if not self.main:
            return
        (self.bar.write if self.bar is not None else print)(msg)

    def images(self, step: int, images: dict) -> None:
        for sink in self.sinks:
            sink.images(step, images)

    def checkpoint(self, step: int, path: Path) -> None:
        for sink in self.sinks:
            sink.checkpoint(step, path)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        for sink in self.sinks:
            sink.close()


class _StopSignals:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step (checkpoint, then exit)."""

    def __init__(self):
        self.requested: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._old = {}
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


