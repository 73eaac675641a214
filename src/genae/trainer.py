"""The training loop's core: plain PyTorch, knows nothing about any particular method.

A method yields :class:`~genae.methods.base.Update` objects from ``train_step``; for each one
``run_update`` back-propagates every player's loss into that player's parameters only
(``loss.backward(inputs=params)``), clips per player, then steps all players of the update. Around
that, here: the stages of a staged recipe (``StagePlan``), the resumable state (``TrainingState``:
optimizers, schedules, RNG states, the data position), one training step under autocast with the
non-finite policy (``run_step``). What touches a run directory (the entry points ``train`` and
``resume``, logging, images, checkpoints at intervals and on signals) is :mod:`genae.training`.

Under ``torchrun`` the same step runs on every rank with the hooks of :mod:`genae.distributed`:
each rank trains on its shard of the global batch, every player's gradients are averaged after
each ``Update``, noise is that of the global batch, and ranks agree on non-finite losses.
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
from typing import Any, Sequence

import numpy as np
import torch

from . import distributed
from .data import BatchSampler
from .errors import ConfigError, GenaeError, NonFiniteLoss
from .methods import Method, Update
from .methods.base import Stage
from .optim import build_schedule


# --------------------------------------------------------------------------------------------
# The update: gradient isolation by construction
# --------------------------------------------------------------------------------------------
def player_params(optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, list[torch.nn.Parameter]]:
    """player -> the trainable parameters its optimizer steps."""
    return {name: [p for g in opt.param_groups for p in g["params"] if p.requires_grad]
            for name, opt in optimizers.items()}


def backward_update(update: Update, params: dict[str, list[torch.nn.Parameter]],
                    scaler: torch.amp.GradScaler | None = None) -> None:
    """Set each player's ``.grad`` to the gradient of *its own* loss w.r.t. *its own* parameters.

    ``backward(inputs=...)`` accumulates only into the listed tensors, so a player's loss never
    leaves gradients on another player's weights, whatever the graph connects.
    """
    players = list(update.losses)
    for i, name in enumerate(players):
        if name not in params:
            raise GenaeError(f"update names player {name!r}, which has no optimizer; players: {sorted(params)}")
        for p in params[name]:
            p.grad = None
        loss = update.losses[name]
        if scaler is not None:
            loss = scaler.scale(loss)
        loss.backward(inputs=params[name], retain_graph=i < len(players) - 1)


def step_update(update: Update, optimizers: dict[str, torch.optim.Optimizer],
                params: dict[str, list[torch.nn.Parameter]], clip: dict[str, float],
                scaler: torch.amp.GradScaler | None = None) -> None:
    """Clip (per player) and step every player of ``update``; all gradients exist already."""
    for name in update.losses:
        opt = optimizers[name]
        if scaler is not None:
            scaler.unscale_(opt)
        if clip.get(name):
            torch.nn.utils.clip_grad_norm_(params[name], clip[name], foreach=True)
        if scaler is not None:
            scaler.step(opt)
        else:
            opt.step()


def run_update(optimizers: dict[str, torch.optim.Optimizer], update: Update,
               params: dict[str, list[torch.nn.Parameter]] | None = None,
               clip: dict[str, float] | None = None, scaler: torch.amp.GradScaler | None = None) -> None:
    """Back-propagate each loss into its player's parameters only, then step those players."""
    params = params if params is not None else player_params(optimizers)
    backward_update(update, params, scaler)
    step_update(update, optimizers, params, clip or {}, scaler)


class DeferredCheck:
    """``train.nan_check=interval``: finiteness tracked on the device, read only at intervals.

    Per update it records, without a host sync, the first step at which each player's loss was
    non-finite; ``raise_if_bad`` (called before every log flush and checkpoint, so no checkpoint
    ever holds weights updated from a non-finite loss) syncs once and raises ``NonFiniteLoss``
    naming that step and player (the term is not tracked in this mode).
    """

    def __init__(self, ctx: distributed.Context | None = None):
        self.first: dict[str, torch.Tensor] = {}
        self.ctx = ctx  # under DDP the first bad step is the earliest over ranks

    def record(self, update: Update, step: int) -> None:
        for name, loss in update.losses.items():
            seen = self.first.get(name)
            if seen is None:
                seen = self.first[name] = torch.full((), -1, dtype=torch.long, device=loss.device)
            bad = ~torch.isfinite(loss.detach()).all()
            seen.copy_(torch.where(bad & (seen < 0), torch.full_like(seen, step), seen))

    def raise_if_bad(self) -> None:
        names = list(self.first)
        if self.ctx is not None and self.ctx.world > 1 and names:
            agreed = distributed.first_over_ranks(torch.stack([self.first[n] for n in names]))
            for n, v in zip(names, agreed):
                self.first[n].copy_(v)
        firsts = {name: int(v) for name, v in self.first.items()}
        bad = {name: s for name, s in firsts.items() if s >= 0}
        if bad:
            name = min(bad, key=bad.get)
            raise NonFiniteLoss(bad[name], name, f"{name}/loss (nan_check=interval)", float("nan"))


def first_nonfinite(update: Update) -> tuple[str, str, float] | None:
    """(player, term, value) of the first non-finite loss in ``update``, else None (one host sync)."""
    losses = torch.stack([l.detach().float().reshape(()) for l in update.losses.values()])
    if bool(torch.isfinite(losses).all()):
        return None
    for name, loss in update.losses.items():
        if not torch.isfinite(loss.detach()).all():
            terms = [(k, v) for k, v in update.logs.items() if k.startswith(name + "/")
                     and torch.is_tensor(v) and not torch.isfinite(v).all()]
            term, value = terms[0] if terms else (f"{name}/loss", loss)
            return name, term, float(value.detach().float().reshape(-1)[0])
    return None


# --------------------------------------------------------------------------------------------
# Stages, the resumable training state, the step
# --------------------------------------------------------------------------------------------
class StagePlan:
    """A method's stages laid out over ``total`` steps: ``(stage, first step, end step)`` each.

    A method without stages gets one implicit stage that trains every player for all steps.
    Each player's schedule length is the number of steps of the stages that train it.
    """

    def __init__(self, method: Method, players: Sequence[str], total: int):
        declared = tuple(method.stages())
        self.staged = bool(declared)
        stages = declared or (Stage("train", tuple(players)),)
        for i, st in enumerate(stages):
            unknown = set(st.players) - set(players)
            if unknown:
                raise GenaeError(f"stage {st.name!r} of {type(method).__name__} trains {sorted(unknown)}, "
                                 f"which have no optimizer; players: {sorted(players)}")
            if st.steps is None and i != len(stages) - 1:
                raise GenaeError(f"stage {st.name!r}: only the last stage may run 'until train.steps'")
            if st.steps is not None and st.steps <= 0:
                raise GenaeError(f"stage {st.name!r} has {st.steps} steps; it must have at least one")
        fixed = sum(st.steps for st in stages if st.steps is not None)
        open_end = stages[-1].steps is None
        if (fixed >= total) if open_end else (fixed != total):
            detail = ", ".join(f"{st.name}: {st.steps if st.steps is not None else 'the rest'}" for st in stages)
            raise GenaeError(f"the stages of {type(method).__name__} last {fixed} steps"
                             f"{' before the open last one' if open_end else ''} ({detail}) but "
                             f"train.steps={total}; change train.steps or the stage lengths")
        self.spans: list[tuple[Stage, int, int]] = []
        start = 0
        for st in stages:
            end = total if st.steps is None else start + st.steps
            self.spans.append((st, start, end))
            start = end
        self.player_steps = {p: sum(e - b for st, b, e in self.spans if p in st.players) for p in players}

    def at(self, step: int) -> Stage:
        """The stage that runs training step ``step`` (0-based)."""
        for st, begin, end in self.spans:
            if begin <= step < end:
                return st
        return self.spans[-1][0]


class TrainingState:
    """Everything training changes besides the method's weights: the optimizers, one learning-rate
    schedule per player, the batch sampler, the AMP scaler and the step; with the global RNG
    states, ``state_dict()`` is exactly a checkpoint's trainer state.
    """

    def __init__(self, method: Method, data, t, device: torch.device, shard: tuple[int, int] = (0, 1)):
        balanced = t.balanced_batches or method.needs_balanced_batches
        if method.needs_balanced_batches and shard[1] > 1 and data.num_classes \
                and t.batch_size // data.num_classes < shard[1]:
            # strided shards of a class-ordered batch: a class with fewer rows than ranks misses a rank
            raise ConfigError(f"{type(method).__name__} needs every class in every batch, and under DDP in "
                              f"every rank's shard: train.batch_size={t.batch_size} over {shard[1]} ranks "
                              f"and {data.num_classes} classes leaves some ranks without some classes; use "
                              f"train.batch_size >= {data.num_classes * shard[1]}")
        self.sampler = BatchSampler(data, t.batch_size, t.seed, device, method.input_range, balanced, shard)
        self.optimizers = method.optimizers()
        self.plan = StagePlan(method, list(self.optimizers), t.steps)
        self.schedules = {k: build_schedule(o, t.lr_schedule, self.plan.player_steps[k], t.lr_step_size,
                                            t.lr_gamma) for k, o in self.optimizers.items()}
        self.clip = t.grad_clip if isinstance(t.grad_clip, dict) else {k: t.grad_clip for k in self.optimizers}
        self.scaler = torch.amp.GradScaler(device.type) if t.amp == "fp16" else None
        self.channels_last = t.channels_last
        self.step = 0

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedules": {k: s.state_dict() for k, s in self.schedules.items()},
                "sampler": self.sampler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None, "rng": _get_rng()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint's trainer state. Learning rates of the *current* config win over
        the restored ones (``_apply_base_lrs``); everything else continues exactly. ``state`` has
        the types of ``schema.TRAINER_STATE`` (``runs.read_checkpoint`` checks them); one that
        does not fit this run (other players, parameter groups, RNG sizes) is a ``StateFileError``."""
        from .state_io import StateFileError

        for part in ("optimizers", "schedules"):
            if set(state[part]) != set(self.optimizers):
                raise StateFileError(f"the checkpoint's trainer state (trainer.json) has {part} of "
                                     f"{sorted(state[part])[:8]}, but this run's players are {sorted(self.optimizers)}")
        base_lrs = {k: list(s.base_lrs) for k, s in self.schedules.items()}  # from the (resumed) config
        try:
            for k, o in self.optimizers.items():
                o.load_state_dict(state["optimizers"][k])
                _state_like_params(o)
            for k, s in self.schedules.items():
                s.load_state_dict(state["schedules"][k])
                _apply_base_lrs(s, base_lrs[k])
            self.sampler.load_state_dict(state["sampler"])
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            _set_rng(state["rng"])
        except GenaeError:
            raise
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:  # torch's and random's checks
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise StateFileError(f"the checkpoint's trainer state (trainer.json) does not fit this run "
                                 f"({type(e).__name__}: {first})") from None
        self.step = state["step"]


def _state_like_params(optimizer: torch.optim.Optimizer) -> None:
    """Give each restored per-parameter state tensor (Adam's moments) its parameter's memory layout.

    Checkpoints store tensors contiguous (NCHW), and ``Optimizer.load_state_dict`` keeps that layout.
    An uninterrupted run's moments were created by ``zeros_like(param)``, channels-last beside a
    channels-last parameter (``train.channels_last``); with NCHW moments instead, the resumed updates
    were not those of the uninterrupted run (measured: a tiny channels-last DCGAN, fp32 or bf16,
    resumed after 2 of 4 steps, differed by 6e-4 in its weights). Values are unchanged here; only
    the strides follow the parameter's, and then the resume is exact
    (tests/test_precision.py)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, v in optimizer.state.get(p, {}).items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    optimizer.state[p][key] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def run_step(method: Method, state: TrainingState, stage: Stage, params, amp, deferred,
             on_nonfinite: str, log, ctx: distributed.Context | None = None) -> None:
    """One training step: every ``Update`` the method yields for the next batch goes through
    ``run_update`` (each player's loss into its own parameters), then the schedules of the
    stage's players advance and ``state.step`` is incremented. Under DDP (``ctx`` with world > 1)
    the batch is this rank's shard, noise is drawn for the global batch, the ranks agree on
    non-finite losses, and each update's gradients are averaged over ranks before the step."""
    step = state.step
    batch = state.sampler.next()
    if state.channels_last and batch.x.dim() == 4:  # the layout cuDNN's bf16 convolutions prefer
        batch = dataclasses.replace(batch, x=batch.x.contiguous(memory_format=torch.channels_last))
    ddp = ctx is not None and ctx.world > 1
    noise = distributed.GlobalNoise(len(batch.x), ctx.world, ctx.rank) if ddp else contextlib.nullcontext()
    updates = method.train_step(batch, step)
    while True:
        with amp, noise:
            update = next(updates, None)
        if update is None:
            break
        idle = set(update.losses) - set(stage.players)
        if idle:
            raise GenaeError(f"step {step}: {type(method).__name__} updates {sorted(idle)} during stage "
                             f"{stage.name!r}, which trains only {list(stage.players)}")
        bad = None if deferred else first_nonfinite(update)
        if ddp and not deferred:  # every rank stops (or skips) at the same update
            bad = distributed.agree_nonfinite(ctx, list(update.losses), bad)
        if deferred:
            deferred.record(update, step)
        elif bad is not None:
            if on_nonfinite == "stop":
                raise NonFiniteLoss(step, *bad)
            log.warn(f"step {step}: skipped update of {sorted(update.losses)}: {bad[1]} = {bad[2]}")
            continue
        backward_update(update, params, state.scaler)
        if ddp:
            distributed.average_gradients([p for name in update.losses for p in params[name]], ctx.world)
        step_update(update, state.optimizers, params, state.clip, state.scaler)
        if state.scaler is not None:  # per update: an inner loop steps one optimizer repeatedly,
            state.scaler.update()     # and GradScaler allows one unscale_ per optimizer per update()
        log.add(update)
    for name in stage.players:  # per step, also for a player whose update was skipped this step
        state.schedules[name].step()
    state.step += 1


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
def _apply_base_lrs(schedule, base: list[float]) -> None:
    """Give a restored schedule the learning rates of the resumed config (``--set model.lr=...``).

    The optimizer and schedule states restored from a checkpoint carry the learning rates they
    were written with; without this, an lr changed on resume would be recorded in every new
    checkpoint but never used. Untouched when they agree, so plain resumes stay bit-identical.
    """
    if list(schedule.base_lrs) == base:
        return
    schedule.base_lrs = list(base)
    for group, lr, factor in zip(schedule.optimizer.param_groups, base, schedule.lr_lambdas):
        group["initial_lr"] = lr
        group["lr"] = lr * factor(schedule.last_epoch)


@contextlib.contextmanager
def flush_denormal_inside(on: bool):
    """Flush subnormals to zero inside when ``on`` (and the CPU supports it), off again on the way
    out (torch has no getter for the setting, and off is its default); untouched when not ``on``."""
    flushing = on and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushing:
            torch.set_flush_denormal(False)


def _get_rng() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    if torch.cuda.is_available() and distributed.current() is not None:
        # under DDP every rank draws on its own cuda:LOCAL_RANK with the same stream as rank 0's
        # device: resume restores that one stream on every rank's device (any world size)
        state["cuda_rank"] = torch.cuda.get_rng_state()
    return state


def _set_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if torch.cuda.is_available() and distributed.current() is not None and state.get("cuda_rank") is not None:
        torch.cuda.set_rng_state(state["cuda_rank"])
    elif state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
