"""Data-parallel training over processes (``torchrun``, DDP) with exact global-batch semantics.

The trainer stays a single-process loop; under ``torch.distributed`` it asks this module to

* **split every global batch** into disjoint per-rank shards: every rank draws the same global
  batch of ``train.batch_size`` indices (the sampler's state is global, so a checkpoint does not
  depend on the world size) and keeps rows ``rank, rank + W, rank + 2W, ...`` (strided, so a
  class-balanced batch stays balanced on every rank). ``batch_size`` must be divisible by W.
* **average each player's gradients after every ``Update``** (``average_gradients``, one SUM
  all-reduce of the update's flattened gradients, divided by W), between ``backward`` and
  ``optimizer.step``: every inner loop, critic ratio, EM repeat and stage stays in lock-step because
  every rank runs the same generator on its shard. For a loss that is a mean over the shard,
  the average over W equal shards is the global-batch mean, so the averaged gradient is the
  single-process gradient of the global batch. A loss that is already a function of the global
  batch (the rate reduction, whose Gram matrices are all-reduced; ``GlobalBatchNorm``) has an
  autograd-aware SUM all-reduce whose backward SUMs the ranks' gradients, so that each rank's
  gradient is W times its share and the average is again the global gradient (no manual scaling).
* **draw the noise of the global batch** (``GlobalNoise``): inside ``Method.train_step`` a random
  draw whose leading dimension is the shard size B/W is made for the whole batch B on every rank
  (all ranks keep identical RNG streams, as the single process does) and the rank's rows are
  kept. Reparameterisation noise, prior samples and gradient-penalty interpolation weights are
  then exactly those of the single-process run. What is NOT covered (equal in distribution only):
  draws whose leading dimension is not B/W (e.g. 2B), ``torch.bernoulli``/dropout masks of batch
  shape, and a non-batch draw whose leading dimension happens to equal B/W (still a valid draw,
  but not the single-process one).
* **use batch statistics of the global batch** (``GlobalBatchNorm``, ``train.sync_bn``): every
  BatchNorm becomes one whose mean and variance are those of the global batch (one all-gather of
  per-rank counts, means and centred sums of squares per layer, combined exactly as Chan et al.'s
  parallel variance). torch's ``SyncBatchNorm`` needs a GPU; this one runs on any device.
* give methods **batch statistics of the global batch** where a loss is not a mean over examples
  (``global_mean``, ``global_var``: MaskAAE's variance penalty and its mask's (1 + Ω)²): they are
  plain ``mean``/``var`` in one process.
* agree across ranks on **non-finite losses** (all ranks stop or skip at the same update) and on
  **SIGINT/SIGTERM** (all ranks stop after the same step; rank 0 writes the checkpoint);
* let **rank 0 alone write** (``main_then_share``: rank 0 prepares the run directory and every
  other rank learns its path, or rank 0's error).

Collectives that carry a flag or a string use a gloo group on the CPU (``Context.ctrl``), so with
NCCL they never force a device synchronisation.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode

from .collectives import local_only
from .errors import GenaeError, short_repr

__all__ = ["Context", "GlobalNoise", "average_gradients", "current", "init_from_env", "launched_by_torchrun",
           "main_then_share", "shard_map"]


@dataclass(frozen=True)
class Context:
    """This process's place in the job: ``rank`` of ``world``, ``local_rank`` on its node,
    ``ctrl`` the CPU (gloo) group for flags and strings."""

    rank: int
    world: int
    local_rank: int
    ctrl: Any
    default: Any = None  # the default process group this context belongs to

    @property
    def main(self) -> bool:
        return self.rank == 0


_CONTEXT: Context | None = None


def launched_by_torchrun() -> bool:
    """Whether the environment is a ``torchrun`` worker's (RANK, WORLD_SIZE, MASTER_ADDR set)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init_from_env(device: str = "auto") -> Context:
    """Join the process group described by torchrun's environment: NCCL when this rank trains on
    CUDA (``train.device`` auto/cuda with a GPU; the rank uses ``cuda:LOCAL_RANK``), gloo on the
    CPU. ``GENAE_DDP_TIMEOUT`` (seconds, default 600) bounds how long a collective waits for a
    rank that died."""
    if dist.is_initialized():
        return current()
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = device not in ("cpu", "mps") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local)
    timeout = datetime.timedelta(seconds=float(os.environ.get("GENAE_DDP_TIMEOUT", 600)))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    return current()


def current() -> Context | None:
    """The job's ``Context`` when ``torch.distributed`` is initialised (by ``init_from_env`` or by
    the caller, e.g. a test's ``init_process_group``), else None. The first call is collective
    under NCCL (it creates the gloo control group)."""
    global _CONTEXT
    if not (dist.is_available() and dist.is_initialized()):
        _CONTEXT = None
        return None
    world = dist.group.WORLD  # a new object after every init_process_group: the cache follows it
    if _CONTEXT is None or _CONTEXT.default is not world:
        ctrl = world if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
        _CONTEXT = Context(dist.get_rank(), dist.get_world_size(),
                           int(os.environ.get("LOCAL_RANK", dist.get_rank())), ctrl, world)
    return _CONTEXT


def device_for(device: torch.device) -> torch.device:
    """Under torchrun each rank owns ``cuda:LOCAL_RANK``: a bare ``cuda`` means that one."""
    ctx = current()
    if ctx is not None and device.type == "cuda" and device.index is None:
        return torch.device("cuda", ctx.local_rank)
    return device


# --------------------------------------------------------------------------------------------
# Rank 0 writes; the others learn the outcome
# --------------------------------------------------------------------------------------------
def main_then_share(ctx: Context | None, fn: Callable[[], str]) -> str:
    """``fn()`` on rank 0 only; its string result is broadcast to every rank. An exception on rank 0
    is re-raised there and becomes a ``GenaeError`` naming it on the others (no rank is left
    waiting). Without a context ``fn()`` simply runs."""
    if ctx is None:
        return fn()
    if ctx.main:
        try:
            text = fn()
        except BaseException as e:
            _broadcast_text(ctx, "\x00" + (str(e).splitlines() or [type(e).__name__])[0])
            raise
        _broadcast_text(ctx, "\x01" + text)
        return text
    text = _broadcast_text(ctx, None)
    if text.startswith("\x00"):
        raise GenaeError(f"rank 0 failed: {text[1:]}")
    return text[1:]


def _broadcast_text(ctx: Context, text: str | None) -> str:
    """rank 0's ``text`` on every rank (UTF-8 bytes over the CPU group; nothing is unpickled)."""
    data = torch.tensor(list(text.encode()) if text is not None else [], dtype=torch.uint8)
    n = torch.tensor([len(data)], dtype=torch.long)
    dist.broadcast(n, 0, group=ctx.ctrl)
    buf = data if ctx.main else torch.empty(int(n), dtype=torch.uint8)
    dist.broadcast(buf, 0, group=ctx.ctrl)
    return bytes(buf.tolist()).decode()


def barrier(ctx: Context | None) -> None:
    """Wait for every rank (CPU group); nothing without a context or with one rank."""
    if ctx is not None and ctx.world > 1:
        dist.barrier(group=ctx.ctrl)


# --------------------------------------------------------------------------------------------
# Agreement: flags, gradients, logged means
# --------------------------------------------------------------------------------------------
def agree_max(ctx: Context, values: Sequence[int]) -> list[int]:
    """Element-wise maximum of small integer vectors over ranks (CPU group, no device sync)."""
    t = torch.tensor(list(values), dtype=torch.long)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=ctx.ctrl)
    return t.tolist()


def average_gradients(params: Sequence[torch.Tensor], world: int) -> None:
    """Replace each ``p.grad`` by its mean over the ``world`` ranks: one SUM all-reduce of the
    flattened gradients (per dtype), then ``/ world``. Parameters without a gradient keep none
    (every rank runs the same graph, so the same ones have none everywhere)."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for p in params:
        if p.grad is not None:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    for grads in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(world)
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))


def mean_over_ranks(values: torch.Tensor, ctx: Context) -> torch.Tensor:
    """CPU ``values`` (any shape, float) averaged over ranks (the logged terms at a log interval)."""
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM, group=ctx.ctrl)
    return values / ctx.world


def agree_nonfinite(ctx: Context, players: Sequence[str], bad: tuple[str, str, float] | None
                    ) -> tuple[str, str, float] | None:
    """The trainer's ``first_nonfinite`` result agreed over ranks: None only when every rank's
    losses are finite; else this rank's (player, term, value), or, where only another rank saw it,
    the first such player with its term named as on another rank."""
    flags = agree_max(ctx, [int(bad is not None and bad[0] == p) for p in players])
    if bad is not None or not any(flags):
        return bad
    player = players[flags.index(1)]
    return player, f"{player}/loss (non-finite on another rank)", float("nan")


_SIGNALS = ("SIGINT", "SIGTERM")


def agree_signal(ctx: Context, requested: str | None) -> str | None:
    """Whether any rank was asked to stop (SIGINT/SIGTERM) by now: the ranks stop after the same step."""
    code = agree_max(ctx, [_SIGNALS.index(requested) + 1 if requested in _SIGNALS else int(bool(requested))])[0]
    return None if code == 0 else _SIGNALS[code - 1]


def first_over_ranks(steps: torch.Tensor) -> torch.Tensor:
    """Per entry, the smallest non-negative value over ranks, -1 where every rank has -1 (the first
    step at which a player's loss was non-finite, ``train.nan_check=interval``)."""
    big = torch.iinfo(torch.long).max
    t = torch.where(steps < 0, torch.full_like(steps, big), steps)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return torch.where(t == big, torch.full_like(t, -1), t)


# --------------------------------------------------------------------------------------------
# Noise of the global batch
# --------------------------------------------------------------------------------------------
_SIZED = {torch.randn, torch.rand, torch.randint, torch.normal}  # factories taking a size
_LIKE = {torch.randn_like, torch.rand_like, torch.randint_like}
_INPLACE = {torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.exponential_,
            torch.Tensor.cauchy_, torch.Tensor.log_normal_, torch.Tensor.geometric_,
            torch.Tensor.random_}


class GlobalNoise(TorchFunctionMode):
    """Within this mode, a random draw of leading dimension ``local`` (the shard size) is made with
    leading dimension ``local * world`` and rows ``rank::world`` are returned, so each rank gets
    exactly the single-process draw's rows of its shard (see the module docstring for what is not
    covered). Handles ``randn``/``rand``/``randint``/``normal`` with a size, ``*_like`` of a
    shard-sized tensor, the in-place samplers (``normal_``, ``uniform_``, ...) and 1-D
    ``multinomial(probs, local)``."""

    def __init__(self, local: int, world: int, rank: int):
        super().__init__()
        self.local, self.world, self.rank = local, world, rank

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = self._global(func, args, kwargs) if kwargs.get("generator") is None else None
        # the rows are a strided view of the global draw: a contiguous copy, so .view() etc. work
        return func(*args, **kwargs) if out is None else out if out.is_contiguous() else out.contiguous()

    def _global(self, func, args, kwargs):
        """The rank's rows of the global-batch draw ``func(*args)``; None when it is not batch-led."""
        if func in _SIZED:
            return self._sized(func, args, kwargs)
        if func in _LIKE and args and args[0].dim() and args[0].shape[0] == self.local:
            ref = args[0]
            big = ref.new_empty((self.local * self.world, *ref.shape[1:]))
            return func(big, *args[1:], **kwargs)[self.rank::self.world]
        if func in _INPLACE and args and args[0].dim() and args[0].shape[0] == self.local:
            dst = args[0]
            big = dst.new_empty((self.local * self.world, *dst.shape[1:]))
            func(big, *args[1:], **kwargs)
            with torch.no_grad():
                dst.copy_(big[self.rank::self.world])
            return dst
        if func is torch.multinomial and len(args) >= 2 and args[0].dim() == 1 and args[1] == self.local \
                and (args[2] if len(args) > 2 else kwargs.get("replacement", False)):
            return func(args[0], self.local * self.world, *args[2:], **kwargs)[self.rank::self.world]
        return None

    def _sized(self, func, args, kwargs):
        """The draw of ``func`` for the global batch, sliced; None when its size is not shard-led."""
        args = list(args)
        if func is torch.randint:  # randint(high, size) or randint(low, high, size)
            pos = next((i for i, a in enumerate(args) if isinstance(a, (tuple, list, torch.Size))), None)
            if pos is None and "size" in kwargs:
                size = tuple(kwargs["size"])
                if size and size[0] == self.local:
                    kwargs = {**kwargs, "size": (self.local * self.world, *size[1:])}
                    return func(*args, **kwargs)[self.rank::self.world]
                return None
            if pos is None or not args[pos] or args[pos][0] != self.local:
                return None
            args[pos] = (self.local * self.world, *tuple(args[pos])[1:])
            return func(*args, **kwargs)[self.rank::self.world]
        if func is torch.normal:  # only normal(mean: float, std: float, size)
            size = kwargs.get("size", args[2] if len(args) > 2 else None)
            if size is None or not len(size) or size[0] != self.local:
                return None
            big = (self.local * self.world, *tuple(size)[1:])
            if "size" in kwargs:
                kwargs = {**kwargs, "size": big}
            else:
                args[2] = big
            return func(*args, **kwargs)[self.rank::self.world]
        if "size" in kwargs:
            size = tuple(kwargs["size"])
            if not size or size[0] != self.local:
                return None
            kwargs = {**kwargs, "size": (self.local * self.world, *size[1:])}
            return func(*args, **kwargs)[self.rank::self.world]
        if not args:
            return None
        if isinstance(args[0], (tuple, list, torch.Size)):
            size = tuple(args[0])
            rest = args[1:]
        else:
            size, rest = tuple(a for a in args if isinstance(a, int)), []
        if not size or size[0] != self.local:
            return None
        return func((self.local * self.world, *size[1:]), *rest, **kwargs)[self.rank::self.world]


def shard_map(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int,
              ctx: Context | None = None) -> torch.Tensor:
    """``torch.cat([fn(x[i:i + batch_size]) for i in ...])`` computed by W ranks: batch j on rank
    ``j % W``, the results gathered on every rank (CPU tensors over the control group). The
    batches are the single-process ones, so the result is identical to a single-process call
    (bit for bit on the same hardware). ``fn`` returns ``(b, ...)`` tensors; rank-local work
    (``local_only``)."""
    ctx = ctx if ctx is not None else current()
    starts = list(range(0, len(x), batch_size))
    if ctx is None or ctx.world == 1:
        with local_only():
            return torch.cat([fn(x[i:i + batch_size]).cpu() for i in starts])
    with local_only():
        mine = {j: fn(x[i:i + batch_size]).cpu() for j, i in enumerate(starts) if j % ctx.world == ctx.rank}
    # rank 0 always holds batch 0: it tells the others the dtype and trailing shape
    probe = mine[0] if ctx.main else None
    meta = [_DTYPE_CODES.index(probe.dtype), probe.dim() - 1, *probe.shape[1:]] if ctx.main else []
    meta = agree_max(ctx, meta + [0] * (10 - len(meta)))
    dtype, tail = _DTYPE_CODES[meta[0]], tuple(meta[2:2 + meta[1]])
    out = torch.zeros((len(x), *tail), dtype=dtype)
    for j, i in enumerate(starts):
        if j in mine:
            out[i:i + batch_size] = mine[j]
    # each row was written by exactly one rank (zeros elsewhere): a SUM gathers them exactly
    dist.all_reduce(out, op=dist.ReduceOp.SUM, group=ctx.ctrl)
    return out


_DTYPE_CODES = [torch.float32, torch.float64, torch.int64, torch.bfloat16, torch.float16, torch.int32,
                torch.uint8]


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """``auto`` -> cuda when available, else cpu; a device that is not there is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):  # `meta`, `xla`, ...: torch names, not ours
        raise GenaeError(f"{key}={short_repr(name)} is not a device; use cpu, cuda, cuda:N or mps")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GenaeError(f"{key}={name} but no CUDA device is available; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GenaeError(f"{key}={name} but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise GenaeError(f"{key}={name} but no MPS device is available; use cpu")
    return device
