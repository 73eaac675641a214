"""``EvalContext``: what the metrics evaluate against, and what they share.

It lazily loads the data splits, the feature backbone (``backbones.py``) and the cached
real-data statistics; within one ``evaluate`` call it also shares a method's generated samples and
encodings between metrics (cleared afterwards, so a later call on a further-trained method never
sees stale samples).

Under ``torchrun`` (``torch.distributed`` initialised with several ranks) the two heavy loops,
backbone features and ``batched`` (encodings, reconstructions), are sharded over ranks batch by
batch and gathered on every rank (``genae.distributed.shard_map``): the same batches as in one
process, so the numbers are the single-process ones.

Evaluation never touches the global RNG (the trainer checkpoints it): every draw uses a
``torch.Generator`` / NumPy generator seeded from ``ctx.seed``.
"""
from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..data import load_dataset
from .. import distributed
from ..errors import ConfigError
from ..ex_post import decode_prior, fit_ex_post
from ..fileio import atomic_write
from ..priors import GaussianMixture
from . import frechet
from .backbones import IMAGE_BACKBONES, Backbone, make_backbone
from .base import log, quantize, to_unit
from .domain import DomainRecipe, cache_root, dataset_key

__all__ = ["EvalContext"]

_STATS_KEYS = ("features", "mu", "sigma")


def _read_stats(path: Path) -> dict[str, np.ndarray] | None:
    """The cached real-data statistics at ``path``, or None (with a ``RuntimeWarning`` naming
    it) when the file is damaged. ``allow_pickle=False``: an object array in a crafted file is
    refused rather than unpickled."""
    try:
        with np.load(path, allow_pickle=False) as z:
            stats = {k: np.asarray(z[k]) for k in _STATS_KEYS}
        if any(v.dtype.kind not in "fiu" for v in stats.values()):
            raise ValueError("non-numeric arrays")
        return stats
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        warnings.warn(f"real-data statistics cache {path} is unusable ({type(e).__name__}: {e}); "
                      f"recomputing it", RuntimeWarning, stacklevel=3)
        return None


def _write_stats(path: Path, stats: dict[str, np.ndarray]) -> None:
    """Write ``stats`` to ``path`` atomically (``genae.fileio.atomic_write``)."""
    buf = io.BytesIO()
    np.savez(buf, **stats)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.getvalue())


@dataclass
class EvalContext:
    """What the metrics evaluate against.

    data_cfg: the run's ``DataConfig``. split: the reference split ("test" or "train").
    n_samples: generated samples for fid/kid/is/precision-recall (and the cap on reconstructed
        examples). backbone: "domain" (genae's classifier, offline) or "inception"; vector data
        always uses the raw vectors ("raw"). device: where the method and backbone run.
    seed: all sampling in evaluation. batch_size: inference batch size.
    cache_dir: root of genae's cache (default ``$GENAE_CACHE`` or ``~/.cache/genae``).
    domain_recipe: how the domain classifier is trained (part of its cache key).
    mig_factors: factor names used by ``mig``; None = all but "shape" (Chen et al. 2018 leave
        dSprites' shape out).
    qmm_images: source images of ``qmm-score`` (500, the QMM paper's; fewer where codes come
        from encoding by optimisation on a CPU).
    progress: print one line per metric with its duration to stderr.
    ex_post: the ex-post prior ``NAME@gmm`` samples from (``genae.ex_post``; the CLI passes the one
        stored in the checkpoint); None = fitted on first use on the first ``ex_post_examples``
        training examples (K = 10, seed 0) and kept for this context, per method.
    """

    data_cfg: Any
    split: str = "test"
    n_samples: int = 10000
    backbone: str = "domain"
    device: str = "cpu"
    seed: int = 0
    batch_size: int = 500
    cache_dir: str | None = None
    domain_recipe: DomainRecipe = field(default_factory=DomainRecipe)
    mig_factors: tuple[str, ...] | None = None
    qmm_images: int = 500
    progress: bool = False
    ex_post: GaussianMixture | None = None
    ex_post_examples: int = 10000
    _data: dict = field(default_factory=dict, init=False, repr=False)
    _backbones: dict = field(default_factory=dict, init=False, repr=False)
    _real_stats: dict | None = field(default=None, init=False, repr=False)
    _per_method: dict = field(default_factory=dict, init=False, repr=False)
    _ex_post_fits: dict = field(default_factory=dict, init=False, repr=False)
    sampling_prior: GaussianMixture | None = field(default=None, init=False, repr=False)

    # --- data -----------------------------------------------------------------------------------
    def dataset(self, split: str | None = None):
        """The ``ArrayDataset`` of ``split`` (default: the reference split), loaded once."""
        split = split or self.split
        if split not in self._data:
            self._data[split] = load_dataset(self.data_cfg, split=split)
        return self._data[split]

    @property
    def kind(self) -> str:
        return self.dataset("train").kind

    @property
    def cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else cache_root()

    def to_method(self, x: torch.Tensor, method) -> torch.Tensor:
        """Stored examples (uint8 images / float vectors) -> the method's input range, on its device."""
        from ..data import to_range
        return to_range(x.to(self.device), method.input_range)

    # --- backbones ------------------------------------------------------------------------------
    @property
    def backbone_name(self) -> str:
        """The feature backbone's name: ``backbone`` for images, "raw" for vector data."""
        if self.kind == "vector":
            return "raw"
        if self.backbone not in IMAGE_BACKBONES:
            raise ConfigError(f"unknown backbone {self.backbone!r}; choose 'domain' or 'inception'")
        return self.backbone

    def get_backbone(self, name: str) -> Backbone:
        """The backbone ``name``, built (weights loaded, the domain classifier trained or read from
        its cache) on first use and kept for this context's lifetime."""
        if name not in self._backbones:
            self._backbones[name] = make_backbone(name, self.dataset, self.device, self.cache,
                                                  self.domain_recipe, self.progress)
        return self._backbones[name]

    @property
    def feature_backbone(self) -> Backbone:
        """The backbone of fid/kid/is/precision-recall (``backbone_name``)."""
        return self.get_backbone(self.backbone_name)

    def classifier(self):
        """The domain classifier (trained and cached on first use); needs labelled images."""
        return self.get_backbone("domain").net

    def protocol(self, n_real: int | None, n_fake: int | None) -> dict[str, Any]:
        """The fields every feature-based number carries."""
        bb = self.feature_backbone.protocol()
        return {"backbone": bb["backbone"], "n_real": n_real, "n_fake": n_fake, "split": self.split, **bb}

    def features(self, x: torch.Tensor, with_probs: bool = False):
        """``(N, C, H, W)`` images (uint8, or float in [0, 1]) or ``(N, D)`` vectors -> backbone
        features ``(N, F)`` float32 numpy, and class probabilities ``(N, K)`` if ``with_probs``."""
        ddp = distributed.current()
        if ddp is None or ddp.world == 1:
            return self.feature_backbone.embed(x, self.batch_size, with_probs)
        bb = self.feature_backbone
        width = []  # the feature width, to split [features | probabilities] rows again

        def both(xb):
            h, p = bb.features_and_probs(xb, with_probs)
            width[:] = [h.shape[1]]
            return torch.cat([h, p], 1) if p is not None else h
        rows = distributed.shard_map(both, x, self.batch_size, ddp)
        if not width:  # this rank ran no batch (fewer batches than ranks): one row tells the width
            both(x[:1])
        f = rows[:, :width[0]].numpy() if width else rows.numpy()
        if not with_probs:
            return f
        return f, (rows[:, width[0]:].contiguous().numpy() if width and rows.shape[1] > width[0] else None)

    def real_features(self) -> dict[str, Any]:
        """Features, mean and covariance of the reference split, cached on disk keyed by the
        split's contents, the backbone and its weights hash."""
        if self._real_stats is not None:
            return self._real_stats
        ref = self.dataset(self.split)
        bb = self.feature_backbone
        path = None
        if bb.cache_stats:
            path = self.cache / "stats" / f"{dataset_key(ref)}-{self.split}-{bb.name}-{bb.weights_hash[:12]}.npz"
        stats = _read_stats(path) if path is not None and path.is_file() else None
        if stats is None:
            if self.progress and path is not None:
                log(f"real-data features of {ref.name} ({self.split}, {bb.name}): computing (cached)")
            f = self.features(ref.x)
            mu, sigma = frechet.feature_statistics(f)
            stats = {"features": f, "mu": mu, "sigma": sigma}
            if path is not None:
                _write_stats(path, stats)
        self._real_stats = stats
        return stats

    # --- per-method caches (valid within one evaluate() call) -----------------------------------
    def memo(self, method, key, make: Callable[[], Any]):
        """``make()``, computed once per method and key until ``clear_method_cache``."""
        d = self._per_method.setdefault(id(method), {})
        if key not in d:
            d[key] = make()
        return d[key]

    def clear_method_cache(self) -> None:
        self._per_method.clear()

    def generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + offset)

    def samples(self, method) -> torch.Tensor:
        """``n_samples`` generated examples on the CPU: images quantised to uint8 like the stored
        real images (as when samples are saved as PNG for FID), vectors raw float32."""
        def make():
            g = self.generator()
            out = []
            with torch.no_grad():
                for i in self._steps(range(0, self.n_samples, self.batch_size), "sampling"):
                    n = min(self.batch_size, self.n_samples - i)
                    xb = method.sample(n, generator=g) if self.sampling_prior is None else \
                        decode_prior(method, self.sampling_prior, n, g)
                    xb = method.to_unit(xb).float().cpu()
                    out.append(quantize(xb) if self.kind == "image" else xb)
            return torch.cat(out)
        return self.memo(method, "samples", make)

    def ex_post_prior(self, method) -> GaussianMixture:
        """The ex-post prior of ``method`` that ``NAME@gmm`` samples from: ``ex_post`` if given,
        else a 10-component mixture fitted (once per method and context) on the codes of the first
        ``ex_post_examples`` training examples."""
        if self.ex_post is not None:
            return self.ex_post
        if id(method) not in self._ex_post_fits:
            if self.progress:
                log(f"ex-post prior: fitting a Gaussian mixture on {self.ex_post_examples} training codes")
            self._ex_post_fits[id(method)] = fit_ex_post(method, self.dataset("train").x[:self.ex_post_examples])
        return self._ex_post_fits[id(method)]

    def fake_features(self, method):
        """(features ``(n_samples, F)``, class probabilities ``(n_samples, K)`` or None for raw)."""
        return self.memo(method, "fake_features",
                         lambda: self.features(self.samples(method), with_probs=True))

    def batched(self, fn, x: torch.Tensor, method) -> torch.Tensor:
        """``fn`` over stored examples ``x`` in batches (converted to the method's range, on its
        device) -> float32 on the CPU."""
        ddp = distributed.current()
        if ddp is not None and ddp.world > 1:
            with torch.no_grad():
                return distributed.shard_map(lambda xb: fn(self.to_method(xb, method)).float(), x,
                                             self.batch_size, ddp)
        out = []
        with torch.no_grad():
            for i in self._steps(range(0, len(x), self.batch_size), getattr(fn, "__name__", "batches")):
                out.append(fn(self.to_method(x[i:i + self.batch_size], method)).float().cpu())
        return torch.cat(out)

    def _steps(self, batches: range, what: str):
        """``batches``, with a progress bar (rate, ETA) when ``progress`` is on and the loop is long
        enough to take more than a few seconds (over 20 batches)."""
        if not self.progress or len(batches) <= 20:
            return batches
        from tqdm.auto import tqdm

        return tqdm(batches, desc=f"[genae eval] {what}", unit="batch", leave=False, dynamic_ncols=True)

    def bar(self, total: int, what: str, unit: str):
        """A progress bar (rate, ETA) on stderr over ``total`` units of long work when ``progress``
        is on, else None; advance it with ``update(n)``, ``close()`` it when done."""
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=f"[genae eval] {what}", unit=unit, unit_scale=True, leave=False,
                    dynamic_ncols=True)

    def encode(self, method, x: torch.Tensor) -> np.ndarray:
        """``method.encode`` of stored examples ``x`` in batches -> ``(N, latent)`` float64 (codes
        flattened per example)."""
        return self.batched(method.encode, x, method).reshape(len(x), -1).double().numpy()

    def encodings(self, method, split: str | None = None) -> np.ndarray:
        """``encode`` of a whole split (once per method within an ``evaluate`` call)."""
        ds = self.dataset(split or self.split)
        return self.memo(method, ("enc", split or self.split), lambda: self.encode(method, ds.x))

    def reconstructions(self, method) -> tuple[torch.Tensor, torch.Tensor]:
        """(originals, reconstructions) of the first ``n_samples`` reference examples, both in
        [0, 1] (images) or raw (vectors), on the CPU."""
        x = self.dataset(self.split).x[:self.n_samples]

        def make():
            rec = self.batched(lambda b: method.to_unit(method.reconstruct(b)), x, method)
            return to_unit(x), rec
        return self.memo(method, "recon", make)
