"""Device-resident batches: ``BatchSampler``.

The whole dataset is moved to the device once (as ``uint8`` for images); a batch is an index
gather followed by ``to_range`` on the device. No DataLoader, no per-example Python.

Order. Examples are drawn from an endless stream: the concatenation of one random permutation per
epoch, the permutation of epoch e being ``randperm(N)`` from a generator seeded with
``derive_seed(seed, "epoch", e)``. A batch is the next ``batch_size`` indices of the stream, across
epoch boundaries when needed (so every batch is full and no example is dropped). The sampler's
whole state is therefore the number of examples drawn so far, and a sampler restored from
``state_dict`` yields exactly the batches the original would have.

Class-balanced batches (``balanced=True``, for objectives that need every class in every batch,
such as the multi-class rate reduction): with K classes, class k contributes
``batch_size // K`` examples, plus one for the first ``batch_size % K`` classes. Each class has its
own stream of permutations of its examples (seeded by ``(seed, "class", k, "epoch", e)``), so the
state is one count per class. A batch lists its classes in order 0..K-1.

Shards (data-parallel training, ``shard=(rank, world)``): every rank draws the same global batch
and keeps rows ``rank, rank + world, ...`` of it, so the W shards are disjoint, together are the
global batch, and a class-balanced global batch gives every rank (nearly) every class. The state
stays the global one, independent of the world size.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .core import Batch
from .core import ArrayDataset, derive_seed
from .transforms import INPUT_RANGES, to_range

__all__ = ["BatchSampler"]


class BatchSampler:
    """Endless, resumable, device-resident batches of ``ds``.

    ``next()`` returns ``Batch(x, y)``: x ``float32 (B, *shape)`` on ``device`` in
    ``input_range``, y ``int64 (B,)`` on ``device`` or None (B = ``batch_size / world`` with
    ``shard=(rank, world)``: this rank's rows of the global batch). It never synchronises with the
    host.
    """

    def __init__(self, ds: ArrayDataset, batch_size: int, seed: int, device: torch.device | str = "cpu",
                 input_range: str = "unit", balanced: bool = False, shard: tuple[int, int] = (0, 1)):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"train.batch_size must be a positive integer, got {batch_size!r}")
        rank, world = shard
        if not 0 <= rank < world or batch_size % world:
            raise ConfigError(f"train.batch_size = {batch_size} (the global batch) must be divisible by "
                              f"the world size {world} so that every rank gets an equal shard; use "
                              f"a multiple of {world}")
        self.shard = (int(rank), int(world))
        if input_range not in INPUT_RANGES:
            raise ConfigError(f"input_range must be one of {', '.join(INPUT_RANGES)}, got {input_range!r}")
        if len(ds) == 0:
            raise ConfigError(f"dataset {ds.name!r} is empty")
        self.name = ds.name
        self.batch_size = batch_size
        self.seed = int(seed)
        self.device = torch.device(device)
        self.input_range = input_range
        self.balanced = bool(balanced)
        self.num_examples = len(ds)
        self.x = ds.x.to(self.device)
        self.y = None if ds.y is None else ds.y.to(self.device, torch.int64)
        self._cache: dict[object, tuple[int, torch.Tensor]] = {}  # stream -> (epoch, permutation)
        if not self.balanced:
            self.consumed = 0
            return
        if ds.y is None or not ds.num_classes:
            raise ConfigError(f"class-balanced batches need labels, but dataset {ds.name!r} is "
                              f"unlabelled; choose a labelled dataset for this method")
        k = ds.num_classes
        if batch_size < k:
            raise ConfigError(f"train.batch_size = {batch_size} is smaller than the {k} classes of "
                              f"{ds.name!r}: class-balanced batches need every class in every batch; "
                              f"use train.batch_size >= {k}")
        y_cpu = ds.y.to("cpu", torch.int64)
        counts = torch.bincount(y_cpu, minlength=k)[:k].tolist()
        empty = [c for c in range(k) if counts[c] == 0]
        if empty:
            raise ConfigError(f"class-balanced batches: class(es) {empty} of {ds.name!r} have no "
                              f"examples (is data.limit too small?)")
        self.num_classes = k
        self.class_sizes = counts
        # Per-class example indices, on the device, gathered once so next() is K slices + a cat.
        order = torch.argsort(y_cpu, stable=True)
        self.class_index = [t.to(self.device) for t in torch.split(order, counts)]
        self.per_class = [batch_size // k + (1 if c < batch_size % k else 0) for c in range(k)]
        self.consumed_per_class = [0] * k

    # --- drawing ---------------------------------------------------------------------------------
    def _perm(self, stream: object, epoch: int, size: int, pool: torch.Tensor | None) -> torch.Tensor:
        """The permutation of ``stream`` for ``epoch`` (indices into the dataset, on the device)."""
        hit = self._cache.get(stream)
        if hit is not None and hit[0] == epoch:
            return hit[1]
        g = torch.Generator().manual_seed(derive_seed(self.seed, *stream, "epoch", epoch))
        perm = torch.randperm(size, generator=g).to(self.device)
        if pool is not None:
            perm = pool[perm]
        self._cache[stream] = (epoch, perm)
        return perm

    def _take(self, stream: object, start: int, count: int, size: int,
              pool: torch.Tensor | None) -> list[torch.Tensor]:
        """Indices ``start .. start+count`` of a stream of permutations of ``size`` items."""
        pieces = []
        while count > 0:
            epoch, off = divmod(start, size)
            k = min(count, size - off)
            pieces.append(self._perm(stream, epoch, size, pool)[off:off + k])
            start += k
            count -= k
        return pieces

    def next(self) -> Batch:
        """The next batch (see the module docstring for the order)."""
        if self.balanced:
            pieces = []
            for c, n_c in enumerate(self.per_class):
                pieces += self._take(("class", c), self.consumed_per_class[c], n_c,
                                     self.class_sizes[c], self.class_index[c])
                self.consumed_per_class[c] += n_c
        else:
            pieces = self._take(("all",), self.consumed, self.batch_size, self.num_examples, None)
            self.consumed += self.batch_size
        idx = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        rank, world = self.shard
        if world > 1:
            idx = idx[rank::world]
        x = to_range(self.x.index_select(0, idx), self.input_range)
        y = None if self.y is None else self.y.index_select(0, idx)
        return Batch(x, y)

    __next__ = next

    def __iter__(self):
        return self

    @property
    def epochs(self) -> float:
        """Examples drawn so far divided by the dataset size (for logging)."""
        drawn = sum(self.consumed_per_class) if self.balanced else self.consumed
        return drawn / self.num_examples

    # --- checkpointing -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain ints only. ``consumed`` counts examples drawn (per class when balanced);
        ``epoch``/``position`` are the same information, for people reading a checkpoint."""
        d = {"seed": self.seed, "num_examples": self.num_examples, "balanced": self.balanced}
        if self.balanced:
            d["class_sizes"] = list(self.class_sizes)
            d["consumed"] = list(self.consumed_per_class)
        else:
            d["consumed"] = self.consumed
            d["epoch"], d["position"] = divmod(self.consumed, self.num_examples)
        return d

    def load_state_dict(self, d: dict) -> None:
        """Continue exactly where the sampler that wrote ``d`` was (its seed is adopted).

        The batch size may differ (the stream simply continues); the dataset must be the same.
        """
        if bool(d["balanced"]) != self.balanced:
            raise ConfigError(f"sampler state is for balanced={d['balanced']}, this sampler has "
                              f"balanced={self.balanced}")
        if int(d["num_examples"]) != self.num_examples:
            raise ConfigError(f"sampler state is for a dataset of {d['num_examples']} examples, this "
                              f"one has {self.num_examples} (data.* settings changed?)")
        if self.balanced and list(d["class_sizes"]) != self.class_sizes:
            raise ConfigError("sampler state is for a dataset with other class sizes (data.* changed?)")
        self.seed = int(d["seed"])
        self._cache.clear()
        if self.balanced:
            self.consumed_per_class = [int(c) for c in d["consumed"]]
        else:
            self.consumed = int(d["consumed"])
