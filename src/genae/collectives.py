"""Differentiable collectives: what a method's loss uses to see the global batch under DDP.

In one process every function here is the plain computation on its input (``global_mean`` is
``mean``); under ``torch.distributed`` with several ranks each one is the single-process quantity
of the global batch, with autograd-aware collectives (an all-gather whose backward keeps this
rank's slice of the gradient; a SUM all-reduce whose backward SUMs the ranks' gradients), so the
trainer's per-update gradient average gives exactly the single-process gradient
(``genae.distributed`` explains the whole scheme). ``local_only()`` turns them off for rank-local
work inside a DDP job (sample grids, prior fits, evaluation). ``GlobalBatchNorm`` normalises with
the global batch's statistics (``train.sync_bn``; ``convert_batchnorm`` swaps it in).

Methods and objectives import these; process orchestration (start-up, sharding, agreement on
signals and non-finite losses, rank 0 writing) is ``genae.distributed``, which they never need.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["GlobalBatchNorm", "all_gather_rows", "convert_batchnorm", "global_mean", "global_rows", "global_var",
           "has_batchnorm", "is_local_only", "local_only"]

_LOCAL_ONLY = [0]  # > 0: collectives of GlobalBatchNorm and the rate reduction are off (rank-local work)


class _AllGather(torch.autograd.Function):
    """``(n, ...)`` per rank -> ``(W, n, ...)`` on every rank. Backward: the SUM over ranks of the
    gradient w.r.t. this rank's slot (each rank's loss depends on every slot), so that averaging
    parameter gradients over ranks yields the gradient of the mean of the ranks' losses."""

    @staticmethod
    def forward(ctx, x, world):
        out = x.new_empty(world * x.numel())  # flat: gloo gathers into a concatenation
        gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor  # renamed in torch 2.13
        gather(out, x.contiguous().reshape(-1))
        ctx.rank = dist.get_rank()
        return out.view(world, *x.shape)

    @staticmethod
    def backward(ctx, g):
        g = g.contiguous().clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        return g[ctx.rank], None


def all_gather_rows(x: torch.Tensor, world: int) -> torch.Tensor:
    """Differentiable all-gather: ``(n, ...)`` on each rank -> ``(W, n, ...)`` (same on every rank)."""
    return _AllGather.apply(x, world)


class _AllReduceSum(torch.autograd.Function):
    """SUM all-reduce whose backward is a SUM all-reduce too (the gradient of the sum of the
    ranks' losses, which the trainer's averaging turns into that of their mean)."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x

    @staticmethod
    def backward(ctx, g):
        g = g.contiguous().clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        return g


def global_rows(*xs: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """The rows of per-example tensors ``xs`` (each ``(n, d_i)``) for the **whole global batch**, in
    the single-process order, and the positions of this rank's own rows in it: ``(list(xs), None)``
    in one process; under DDP ``([(W·n, d_i), ...], (n,))`` from one all-gather — the sampler gives
    rank r the global rows r, r + W, r + 2W, ..., so its row i is global row i·W + r.
    Differentiable (``all_gather_rows``: every rank's loss may use every row; the trainer's
    averaging then gives the global gradient). For estimators that compare each example with the
    whole batch (aggregate-posterior densities, MMD)."""
    world = _world()
    if world == 1:
        return list(xs), None
    n = xs[0].shape[0]
    gathered = all_gather_rows(torch.cat(xs, dim=1), world)               # (W, n, Σ d_i)
    full = gathered.transpose(0, 1).reshape(world * n, -1)
    parts = [t.contiguous() for t in full.split([x.shape[1] for x in xs], dim=1)]
    return parts, torch.arange(n, device=xs[0].device) * world + dist.get_rank()


def _world() -> int:
    if is_local_only() or not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size()


def global_mean(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The mean of ``x`` over ``dim`` (the batch) of the **global** batch: ``x.mean(dim)`` in one
    process; under DDP the ranks' sums are all-reduced (differentiably) and divided by the global
    count (equal shards). For batch statistics that enter a loss non-linearly (a batch variance,
    the square of a mean difference), where the mean of per-shard losses is not the global loss."""
    world = _world()
    if world == 1:
        return x.mean(dim)
    return _AllReduceSum.apply(x.sum(dim)) / (x.shape[dim] * world)


def global_var(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The biased variance of ``x`` over ``dim`` of the global batch (``x.var(dim, unbiased=False)``
    in one process; two differentiable all-reduces under DDP)."""
    if _world() == 1:
        return x.var(dim, unbiased=False)
    mean = global_mean(x, dim)
    return global_mean((x - mean.unsqueeze(dim)).pow(2), dim)


@contextlib.contextmanager
def local_only() -> Iterator[None]:
    """Rank-local work (images on rank 0, ``fit_prior`` on every rank's identical data, evaluation):
    ``GlobalBatchNorm`` uses this rank's batch and the rate reduction its rows, with no collective."""
    _LOCAL_ONLY[0] += 1
    try:
        yield
    finally:
        _LOCAL_ONLY[0] -= 1


def is_local_only() -> bool:
    return _LOCAL_ONLY[0] > 0


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (1d/2d/3d) whose training-mode statistics are those of the global batch.

    Per channel, each rank contributes (count n_r, mean m_r, centred sum of squares M_r) of its
    ``(N, C, ...)`` input; one differentiable all-gather, then mean = Σ n_r m_r / N and
    M = Σ M_r + Σ n_r (m_r − mean)² (Chan et al.), var = M / N (normalisation) and M / (N − 1)
    (running variance, as ``nn.BatchNorm``). Eval mode and ``local_only`` behave as ``nn.BatchNorm``.
    The state dict is ``nn.BatchNorm``'s, so checkpoints do not depend on the switch.
    """

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size() if dist.is_initialized() else 1
        if not self.training or world == 1 or is_local_only():
            return super().forward(x)
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        n = xf.numel() // xf.shape[1]
        mean_r = xf.mean(dims)
        m2_r = (xf - _bcast(mean_r, x)).pow(2).sum(dims)
        stats = all_gather_rows(torch.cat([mean_r.new_full((1,), float(n)), mean_r, m2_r]), world)
        c = x.shape[1]
        counts, means, m2s = stats[:, :1], stats[:, 1:1 + c], stats[:, 1 + c:]
        total = counts.sum()
        mean = (counts * means).sum(0) / total
        m2 = m2s.sum(0) + (counts * (means - mean).pow(2)).sum(0)
        var = m2 / total
        if self.track_running_stats:
            with torch.no_grad():
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                unbiased = m2.detach() / (total.detach() - 1).clamp(min=1)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        y = (xf - _bcast(mean, x)) * _bcast(torch.rsqrt(var + self.eps), x)
        if self.affine:
            y = y * _bcast(self.weight, x) + _bcast(self.bias, x)
        return y.to(x.dtype)


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.view(1, -1, *([1] * (x.dim() - 2)))


def convert_batchnorm(module: nn.Module) -> list[str]:
    """Replace every ``nn.BatchNorm1d/2d/3d`` inside ``module`` by a ``GlobalBatchNorm`` that shares
    its parameters and buffers (optimizers and checkpoints are unaffected). Returns the names."""
    done = []
    for name, child in list(module.named_modules()):
        for attr, bn in list(child.named_children()):
            if isinstance(bn, nn.modules.batchnorm._BatchNorm) and not isinstance(bn, GlobalBatchNorm) \
                    and type(bn) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
                new = GlobalBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine,
                                      bn.track_running_stats, device=None, dtype=None)
                new.weight, new.bias = bn.weight, bn.bias
                new.running_mean, new.running_var = bn.running_mean, bn.running_var
                new.num_batches_tracked = bn.num_batches_tracked
                new.train(bn.training)  # the same Parameter objects: requires_grad and optimizers carry over
                setattr(child, attr, new)
                done.append(f"{name}.{attr}" if name else attr)
    return done


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


# --------------------------------------------------------------------------------------------
# Evaluation: shard, then gather on every rank
# --------------------------------------------------------------------------------------------
