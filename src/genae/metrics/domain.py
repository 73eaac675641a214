"""The ``domain`` feature backbone: a small CNN classifier trained by genae on the dataset itself.

Why: the standard Inception network needs downloaded weights and is slow on a CPU; a small
classifier trained on the dataset's own training split gives features that see what matters for
that data, runs offline in seconds, and makes FID/KID/precision-recall comparable *between
methods* (never with papers' Inception FIDs). Its test accuracy is stored with it and reported
with every number computed from it.

Recipe (deterministic for a given data set and seed): three 3×3 conv blocks (conv → BN → ReLU,
two 2×2 max pools) → adaptive average pool to 4×4 → fc(``feature_dim``) → ReLU → fc(classes).
Features = the ``feature_dim``-d penultimate activations. Adam, linear learning-rate decay,
``steps`` minibatches drawn by a seeded permutation per epoch; inputs in [0, 1]; no augmentation.
Trained once per (dataset contents, recipe) and cached under ``$GENAE_CACHE/domain/`` (default
``~/.cache/genae/domain/``) as ``<dataset-key>-r<recipe-hash>.safetensors``: the weights as
safetensors tensors and everything else (accuracy, recipe, class count, dataset keys) as one JSON
string in the safetensors metadata under ``"genae_domain_meta"``. Reading it never unpickles
anything, so a crafted cache file cannot run code. Written atomically (a uniquely named
temporary file beside it, fsync, ``os.replace``), so a reader sees the old file or the new one.

Shipped backbones (``backbones/manifest.json`` beside this file, package data): the classifiers
of MNIST and Fashion-MNIST (and of this project's MNIST-10k subset), trained once with the default
recipe by ``benchmarks/ship_domain_backbones.py`` and shipped with genae like Inception's fixed
weights, so that FIDs are comparable between users and machines and the first FID on a fresh
machine takes seconds. ``load_or_train_domain`` uses one when the training split's contents match
(the full SHA-256 of its images and labels, not its name) and the recipe is the default; the
file's own SHA-256 is checked against the manifest on every load, and a damaged file is refused
with a ``DamagedShippedBackbone`` naming it (never silently retrained: the numbers would no longer
be comparable with anyone else's). Any other data set trains its own classifier, as below.

Old ``.pt`` caches (pickles, read with ``torch.load(weights_only=False)`` by earlier versions)
are never opened: they are ignored and the classifier is retrained once. A cache file that is
damaged, crafted or inconsistent (not safetensors, bad JSON, wrong recipe/dataset, tensors that
do not fit the network) is discarded with a ``RuntimeWarning`` naming it and the classifier is
retrained; the new file replaces it.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import convert_range
from ..errors import GenaeError
from ..fileio import atomic_write, cache_root, sha256_file

__all__ = ["DamagedCache", "DamagedShippedBackbone", "DomainClassifier", "DomainRecipe", "SHIPPED_DIR",
           "cache_root", "data_sha256", "dataset_key", "domain_cache_path", "find_shipped",
           "load_or_train_domain", "load_shipped", "read_domain_cache", "save_domain_cache",
           "ship_backbone", "shipped_manifest", "train_domain_classifier", "weights_digest"]


@dataclass(frozen=True)
class DomainRecipe:
    width: int = 16            # channels of the first conv block (then ×2, ×2)
    feature_dim: int = 128     # penultimate (feature) width
    steps: int = 2000          # minibatch updates
    batch_size: int = 128
    lr: float = 2e-3           # Adam, linearly decayed to 0
    weight_decay: float = 1e-4
    seed: int = 0

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]


class DomainClassifier(nn.Module):
    """``(B, C, H, W)`` images in [0, 1] -> logits ``(B, K)``; ``features(x)`` -> ``(B, feature_dim)``."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, feature_dim: int = 128):
        super().__init__()
        w = width

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(in_channels, w), nn.MaxPool2d(2),
            *block(w, 2 * w), nn.MaxPool2d(2),
            *block(2 * w, 2 * w),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(2 * w * 16, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        self.meta: dict[str, Any] = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _tensor_digest(*tensors: torch.Tensor | None) -> str:
    h = hashlib.sha256()
    for t in tensors:
        if t is not None:
            t = t.detach().cpu().contiguous()
            h.update(str((tuple(t.shape), str(t.dtype))).encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()


def data_sha256(ds: Any) -> str:
    """The full SHA-256 of a split's contents (images and labels, with their shapes and dtypes):
    what decides whether a shipped backbone was trained on exactly this training set."""
    return _tensor_digest(ds.x, ds.y)


def dataset_key(ds: Any) -> str:
    """A file-name-safe key for a split's *contents*: ``<name>-<C>x<H>x<W>-n<N>-<sha12>``.

    Hashing the data (not the config) means a changed file, ``limit`` or ``image_size`` can never
    reuse a stale classifier or statistic.
    """
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(ds.name))[:40]
    shape = "x".join(str(s) for s in ds.x.shape[1:])
    return f"{name}-{shape}-n{len(ds.x)}-{data_sha256(ds)[:12]}"


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    return convert_range(x, None, "unit")


@torch.no_grad()
def accuracy(net: DomainClassifier, x: torch.Tensor, y: torch.Tensor, device: str | torch.device = "cpu",
             batch_size: int = 1000) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        xb = _to_unit(x[i:i + batch_size]).to(device)
        correct += int((net(xb).argmax(1).cpu() == y[i:i + batch_size]).sum())
    return correct / max(len(x), 1)


def train_domain_classifier(train: Any, test: Any, recipe: DomainRecipe = DomainRecipe(),
                            device: str | torch.device = "cpu", progress: bool = False) -> DomainClassifier:
    """Train the classifier on ``train`` (``ArrayDataset`` with uint8 images and labels); store its
    accuracy on ``test`` in ``net.meta``. Deterministic given the data and ``recipe``."""
    if train.y is None or train.num_classes is None:
        raise ValueError(f"the domain classifier needs labels; {train.name} has none")
    g = torch.Generator().manual_seed(recipe.seed)
    # fork_rng: seeding the initialisation must not disturb the caller's global RNG (the trainer
    # checkpoints it for exact resume and may evaluate mid-run).
    with _deterministic(), torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(recipe.seed)
        net = DomainClassifier(train.x.shape[1], train.num_classes, recipe.width, recipe.feature_dim).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / recipe.steps)
        n = len(train.x)
        bs = min(recipe.batch_size, n)
        perm, pos = torch.randperm(n, generator=g), 0
        net.train()
        t0 = time.perf_counter()
        bar = None
        if progress:  # the first FID on a user's own dataset trains this once (a minute or more on a CPU)
            from tqdm.auto import tqdm
            bar = tqdm(total=recipe.steps, desc=f"training the domain classifier on {train.name} (cached "
                                               "after this once)", unit="step", dynamic_ncols=True)
        for step in range(recipe.steps):
            if step == ESTIMATE_STEPS[0]:
                t_warm = time.perf_counter()
            if bar is not None and step == ESTIMATE_STEPS[1]:  # the time up front, from the first steps
                per_step = (time.perf_counter() - t_warm) / (ESTIMATE_STEPS[1] - ESTIMATE_STEPS[0])
                bar.write(f"domain classifier for {train.name}: {recipe.steps} steps on {n} images, about "
                          f"{per_step * recipe.steps:.0f} s in all (timed on steps {ESTIMATE_STEPS[0]}-"
                          f"{ESTIMATE_STEPS[1]})", file=sys.stderr)
            if pos + bs > n:
                perm, pos = torch.randperm(n, generator=g), 0
            idx = perm[pos:pos + bs]
            pos += bs
            xb, yb = _to_unit(train.x[idx]).to(device), train.y[idx].to(device)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if bar is not None and (step + 1) % 50 == 0:  # a host sync only every 50 steps
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
                bar.update(50)
        if bar is not None:
            bar.update(recipe.steps - bar.n)
            bar.close()
        seconds = time.perf_counter() - t0
    net.eval()
    test_acc = accuracy(net, test.x, test.y, device) if test.y is not None else float("nan")
    net.meta = {"test_accuracy": test_acc, "train_seconds": round(seconds, 1),
                "recipe": asdict(recipe), "dataset": str(train.name),
                "num_classes": int(train.num_classes), "in_channels": int(train.x.shape[1]),
                "train_key": dataset_key(train), "test_key": dataset_key(test)}
    return net


#: The steps timed to announce how long the domain classifier's training will take (the first
#: ones are slower: kernels warm up, memory is first touched).
ESTIMATE_STEPS = (10, 40)


class _deterministic:
    """Turn on ``torch.use_deterministic_algorithms`` for the block and restore the old setting."""

    def __enter__(self):
        self.prev = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.prev)


#: Key of the JSON metadata in the safetensors header, and the format tag stored beside it.
META_KEY = "genae_domain_meta"
FORMAT = "genae-domain-v1"
SUFFIX = ".safetensors"


class DamagedCache(ValueError):
    """A domain-classifier cache file that cannot be used (the message says why)."""


class DamagedShippedBackbone(GenaeError):
    """A shipped backbone file whose bytes do not match the manifest's SHA-256 (names the file)."""


def save_domain_cache(net: DomainClassifier, path: Path) -> None:
    """Write ``net``'s weights and ``net.meta`` to ``path`` (safetensors + JSON), atomically."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    blob = save(tensors, metadata={"format": FORMAT, META_KEY: json.dumps(net.meta, sort_keys=True)})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, blob)


def read_domain_cache(path: Path, recipe: DomainRecipe, train_key: str) -> DomainClassifier:
    """The classifier stored at ``path`` (CPU, eval mode, ``meta`` restored).

    Raises ``DamagedCache`` when the file is not a genae domain cache, belongs to another recipe
    or training set, or its tensors do not fit the network. Parses only the safetensors header
    (JSON) and raw tensor bytes: nothing in the file is executed.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        data = path.read_bytes()
        tensors = load(data)
        n = int.from_bytes(data[:8], "little")   # safetensors: u64 header length, JSON header
        header = json.loads(data[8:8 + n])
        meta = json.loads((header.get("__metadata__") or {}).get(META_KEY, "null"))
    except (SafetensorError, OSError, ValueError, TypeError, AttributeError) as e:
        raise DamagedCache(f"not a readable safetensors file ({type(e).__name__}: {e})") from e
    if (header.get("__metadata__") or {}).get("format") != FORMAT or not isinstance(meta, dict):
        raise DamagedCache(f"no {FORMAT} metadata")
    if meta.get("recipe") != asdict(recipe) or meta.get("train_key") != train_key:
        raise DamagedCache("written for another recipe or training set")
    try:
        in_channels, num_classes = int(meta["in_channels"]), int(meta["num_classes"])
        if not (0 < in_channels <= 64 and 0 < num_classes <= 100_000):
            raise ValueError(f"implausible in_channels={in_channels}, num_classes={num_classes}")
        net = DomainClassifier(in_channels, num_classes, recipe.width, recipe.feature_dim)
        net.load_state_dict(tensors, strict=True)   # also checks every shape
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DamagedCache(f"weights do not fit the classifier ({type(e).__name__}: {e})") from e
    net.meta = meta
    return net.eval()


def domain_cache_path(train: Any, recipe: DomainRecipe, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/domain/<dataset-key>-r<recipe-hash>.safetensors`` for this training set."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return root / "domain" / f"{dataset_key(train)}-r{recipe.key()}{SUFFIX}"


#: genae's shipped domain classifiers: ``manifest.json`` and one safetensors file per data set.
SHIPPED_DIR = Path(__file__).with_name("backbones")


def shipped_manifest(shipped_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The entries of ``<shipped_dir>/manifest.json`` (default ``SHIPPED_DIR``): per backbone its
    ``file``, ``sha256`` (of the file), ``weights`` (the tensor digest FIDs report),
    ``train_sha256`` / ``test_sha256`` (``data_sha256`` of the splits), ``recipe``,
    ``test_accuracy``, ``command``, ``machine``. Empty when there is no manifest."""
    path = Path(shipped_dir if shipped_dir is not None else SHIPPED_DIR) / "manifest.json"
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8"))["backbones"])


def ship_backbone(net: DomainClassifier, train: Any, test: Any, name: str, out_dir: str | os.PathLike,
                  **record: Any) -> dict[str, Any]:
    """Write ``net`` (trained on ``train`` by ``train_domain_classifier``) as the shipped backbone
    ``name`` into ``out_dir`` and add or replace its entry in ``out_dir/manifest.json``; ``record``:
    more fields for the entry (the command, the machine, what the data is). Returns the entry."""
    out = Path(out_dir)
    path = out / f"domain-{name}{SUFFIX}"
    save_domain_cache(net, path)
    entry = {"name": name, "file": path.name, "sha256": sha256_file(path), "weights": weights_digest(net),
             "train_sha256": data_sha256(train), "test_sha256": data_sha256(test),
             "train_key": dataset_key(train), "test_key": dataset_key(test), "n_train": len(train.x),
             "n_test": len(test.x), "recipe": net.meta["recipe"],
             "test_accuracy": round(float(net.meta["test_accuracy"]), 4), **record}
    entries = [e for e in shipped_manifest(out) if e["name"] != name] + [entry]
    doc = {"format": "genae-shipped-backbones-v1", "backbones": entries}
    atomic_write(out / "manifest.json", (json.dumps(doc, indent=1) + "\n").encode())
    return entry


def find_shipped(train: Any, recipe: DomainRecipe = DomainRecipe(),
                 shipped_dir: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The manifest entry trained on exactly ``train``'s contents with ``recipe``, else None."""
    entries = shipped_manifest(shipped_dir)
    if not entries:
        return None
    digest = data_sha256(train)
    return next((e for e in entries if e["train_sha256"] == digest and e["recipe"] == asdict(recipe)), None)


def load_shipped(entry: dict[str, Any], train: Any, recipe: DomainRecipe = DomainRecipe(),
                 shipped_dir: str | os.PathLike | None = None) -> DomainClassifier:
    """The shipped classifier of ``entry`` (CPU, eval mode), its file's SHA-256 checked first.

    Raises ``DamagedShippedBackbone`` naming the file when its bytes are not the manifest's (a
    truncated install, an edited file): a different network would silently change every FID."""
    path = Path(shipped_dir if shipped_dir is not None else SHIPPED_DIR) / entry["file"]
    got = sha256_file(path) if path.is_file() else "missing"
    if got != entry["sha256"]:
        raise DamagedShippedBackbone(
            f"genae's shipped domain backbone {path} is damaged (SHA-256 {got[:16]}..., the manifest says "
            f"{entry['sha256'][:16]}...); reinstall genae (pip install --force-reinstall genae) so that FIDs "
            "stay comparable with everyone else's")
    try:
        net = read_domain_cache(path, recipe, dataset_key(train))
    except DamagedCache as e:  # the right bytes but not a loadable backbone: a broken release
        raise DamagedShippedBackbone(f"genae's shipped domain backbone {path} cannot be used: {e}") from None
    net.meta = dict(net.meta, shipped=entry["name"], path=str(path))
    return net


def load_or_train_domain(train: Any, test: Any, recipe: DomainRecipe = DomainRecipe(),
                         device: str | torch.device = "cpu", cache_dir: str | os.PathLike | None = None,
                         progress: bool = False,
                         shipped_dir: str | os.PathLike | None = None) -> tuple[DomainClassifier, str]:
    """The classifier for this training set and recipe: genae's shipped one when it was trained on
    exactly ``train`` (``find_shipped``), else the cached one, else trained now and cached.

    Returns ``(net in eval mode on device, weights hash)``; ``net.meta["test_accuracy"]`` is the
    accuracy on ``test``, ``net.meta["path"]`` the file it came from and ``net.meta["shipped"]``
    the shipped backbone's name (absent when trained here). A damaged cache file is replaced
    after a ``RuntimeWarning`` naming it (see the module docstring); a damaged shipped file is an
    error.
    """
    entry = find_shipped(train, recipe, shipped_dir)
    if entry is not None:
        net = load_shipped(entry, train, recipe, shipped_dir)
    else:
        path = domain_cache_path(train, recipe, cache_dir)
        net = None
        if path.is_file():
            try:
                net = read_domain_cache(path, recipe, dataset_key(train))
            except DamagedCache as e:
                warnings.warn(f"domain classifier cache {path} is unusable ({e}); discarding it and "
                              f"retraining", RuntimeWarning, stacklevel=2)
        if net is None:
            net = train_domain_classifier(train, test, recipe, device, progress).cpu()
            save_domain_cache(net, path)
        net.meta = dict(net.meta, path=str(path))
    if net.meta.get("test_key") != dataset_key(test) and test.y is not None:
        net.meta = dict(net.meta, test_accuracy=accuracy(net, test.x, test.y, "cpu"), test_key=dataset_key(test))
    return net.to(device).eval(), weights_digest(net)


def weights_digest(net: nn.Module) -> str:
    """The 16-hex-digit digest of a network's tensors that every FID's protocol reports
    (``backbone_weights``): the same weights give the same digest whichever file they came from."""
    return _tensor_digest(*net.state_dict().values())[:16]
