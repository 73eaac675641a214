"""Datasets: the ``DATASETS`` registry, loading, validation and device-resident batches.

Typical use (the trainer)::

    check_data_config(cfg.data)                      # before any work: fails naming the key
    ds = load_dataset(cfg.data, "train")             # ArrayDataset: uint8 images or float vectors
    sampler = BatchSampler(ds, 64, seed, device, method.input_range, method.needs_balanced_batches)
    batch = sampler.next()                           # Batch(x float32 on device, y int64 or None)

Where files come from is documented in ``genae.data.download``: an explicit ``--data-dir``
(``data.root``) is the only place looked in when given; otherwise (first match wins) ``GENAE_DATA``,
the cache ``~/.cache/genae/data`` (``GENAE_CACHE`` overrides ``~/.cache/genae``), system dataset
packages, then a SHA-256-checked download (unless ``data.download`` is false).

What was read is recorded: ``ArrayDataset.files`` maps each file read to its SHA-256;
``provenance(ds)`` gives it as JSON and ``compare_provenance(recorded, current)`` lists what
changed (``genae.data.provenance``)::

    record = provenance(ds)                          # {"source": ..., "files": {path: sha256}}
    for line in compare_provenance(record, provenance(load_dataset(cfg.data, "train"))):
        print("warning:", line)
"""
from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import torch

from ..errors import ConfigError, CorruptDataset, DatasetNotFound, did_you_mean, short_repr
from .arrays import PREFIX as ARRAYS_PREFIX, arrays_meta, as_split, load_arrays, store_arrays
from .batches import BatchSampler
from .cifar import CIFAR10_FILES, load_cifar10
from .core import SPLITS, ArrayDataset, DataConfig, DatasetSpec, derive_seed
from . import download as _download
from .dsprites import DSPRITES_NPZ_FILES, load_dsprites, load_dsprites_npz
from .download import (FileSet, candidate_dirs, download_fileset, explicit_root, install_system_package,
                       not_found_message, root_dirs, root_not_found_message)
from .folder import load_folder_dataset
from .provenance import compare_provenance, provenance
from .emnist import EMNIST_LETTERS_FILES, load_emnist_letters
from .idx import FASHION_MNIST_FILES, MNIST_FILES, load_fashion_mnist, load_mnist
from .mnist_variants import RGB_MNIST_COLOURS, load_rgb_mnist, load_two_digit_mnist
from .stl10 import STL10_FILES, STL10_UNLABELED_FILES, load_stl10, load_stl10_unlabeled
from .synthetic import (SYNTHETIC_HIDDEN, TRANSFORMED_MNIST_MODES, load_fake, load_synthetic,
                        load_transformed_mnist, synthetic_network)
from .transforms import add_rectangles, resize_images, to_range

__all__ = ["DATASETS", "ArrayDataset", "BatchSampler", "DataConfig", "DatasetSpec",
           "RGB_MNIST_COLOURS", "TRANSFORMED_MNIST_MODES", "add_rectangles", "as_split", "check_data_config", "store_arrays", "compare_provenance", "dataset_info",
           "derive_seed", "fetch", "install_system_dataset", "list_datasets", "load_dataset",
           "provenance", "resize_images", "resolve_spec", "synthetic_network", "to_range"]

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(load_mnist, "MNIST handwritten digits: 60000/10000, 1x28x28, 10 classes", ("rect_noise",), True, "image", MNIST_FILES),
    "fashion-mnist": DatasetSpec(load_fashion_mnist, "Fashion-MNIST clothing: 60000/10000, 1x28x28, 10 classes", ("rect_noise",), True, "image", FASHION_MNIST_FILES),
    "emnist-letters": DatasetSpec(load_emnist_letters, "EMNIST Letters handwritten letters: 124800/20800, 1x28x28, 26 classes (A/a..Z/z)", ("rect_noise",), True, "image", EMNIST_LETTERS_FILES),
    "cifar10": DatasetSpec(load_cifar10, "CIFAR-10 photos: 50000/10000, 3x32x32, 10 classes", (), True, "image", CIFAR10_FILES),
    "stl10": DatasetSpec(load_stl10, "STL-10 photos, labelled: 5000/8000, 3x96x96, 10 classes", (), True, "image", STL10_FILES),
    "stl10-unlabeled": DatasetSpec(load_stl10_unlabeled, "STL-10 photos for unsupervised training: 105000 unlabelled (+5000 train)/8000, 3x96x96", (), False, "image", STL10_UNLABELED_FILES),
    "synthetic": DatasetSpec(load_synthetic, "MaskAAE synthetic: N(0, I_n) latent through a fixed random 2-layer leaky-ReLU net to d dims (vectors)", ("latent_dim", "dim", "seed", "n"), False, "vector"),
    "transformed-mnist": DatasetSpec(load_transformed_mnist, "MNIST, each digit normal, scaled x1.5 or x0.5, or rotated +-45 degrees (mode = factor)", ("seed", "rect_noise"), True, "image", MNIST_FILES),
    "rgb-mnist": DatasetSpec(load_rgb_mnist, "MNIST, each digit coloured red, green or blue: 60000/10000, 3x28x28, 10 classes (colour = factor)", ("seed", "rect_noise"), True, "image", MNIST_FILES),
    "two-digit-mnist": DatasetSpec(load_two_digit_mnist, "two MNIST digits side by side: 60000/10000, 1x28x56, 100 classes 00-99 (data.multiples_of / exclude_multiples_of filter)", ("seed", "multiples_of", "exclude_multiples_of", "rect_noise"), True, "image", MNIST_FILES),
    "dsprites": DatasetSpec(load_dsprites, "dSprites rendered procedurally: shape x scale x orientation x posX x posY grid (737280 cells), 1x64x64 binary, 3 shape classes; data.n train (60000)/10000 test seeded subsets", ("seed", "n"), True, "image"),
    "dsprites-npz": DatasetSpec(load_dsprites_npz, "official dSprites .npz (user-supplied, not downloaded), same splits/order as dsprites", ("seed", "n"), True, "image", DSPRITES_NPZ_FILES),
    "fake": DatasetSpec(load_fake, "tiny procedural labelled bars for tests: 256/64, 1x28x28, 10 classes", ("seed", "n"), True, "image"),
}

FOLDER_PREFIX = "folder:"
#: Dataset-specific fields; every other DataConfig field applies to every dataset.
SPECIFIC_PARAMS = ("latent_dim", "dim", "seed", "n", "multiples_of", "exclude_multiples_of", "rect_noise")
MIN_IMAGE_SIZE = 8


def _expand(path: str | Path, key: str) -> Path:
    """``path`` with ``~``/``~user`` expanded; a ``ConfigError`` naming ``key`` for a user that
    does not exist (``Path.expanduser`` raises a bare RuntimeError)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        raise ConfigError(f"{key}: {short_repr(str(path))} names a home directory that does not exist") from None


def resolve_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``; ``"folder:PATH"`` and ``"tensors:PATH"`` (arrays given from
    Python, ``genae.data.arrays``) get an entry made on the fly."""
    if isinstance(name, str) and name.startswith(ARRAYS_PREFIX):
        root = _expand(name[len(ARRAYS_PREFIX):], "data.name")
        if not str(root) or name == ARRAYS_PREFIX:
            raise ConfigError("data.name: 'tensors:' needs the directory genae.data.arrays.store_arrays wrote")
        meta = arrays_meta(root)
        return DatasetSpec(lambda cfg, split: load_arrays(root, split), f"arrays given from Python, in {root}",
                           (), meta["num_classes"] is not None, meta["kind"])
    if isinstance(name, str) and name.startswith(FOLDER_PREFIX):
        path = _expand(name[len(FOLDER_PREFIX):], "data.name")
        if not str(path) or name == FOLDER_PREFIX:
            raise ConfigError("data.name: 'folder:' needs a directory, e.g. folder:/data/celeba")
        # Labelled when the folder has sub-directories (their names are the classes).
        labelled = path.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())
        return DatasetSpec(load_folder_dataset, f"images under {path}", (), labelled, "image")
    if name in DATASETS:
        return DATASETS[name]
    raise ConfigError(f"data.name: unknown dataset {short_repr(name)}{did_you_mean(name, DATASETS)}; choose one of "
                      f"{', '.join(DATASETS)}, or folder:PATH")


def _check_int(key: str, value, minimum: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"data.{key} must be an integer{' or null' if optional else ''}, got {short_repr(value)}")
    if value < minimum:
        raise ConfigError(f"data.{key} must be >= {minimum}, got {value}")


def check_data_config(cfg: DataConfig) -> None:
    """Validate ``cfg`` before any work; raise ``ConfigError`` naming the offending ``data.<key>``.

    Checks: the dataset exists; the dataset-specific fields (latent_dim, dim, seed, n,
    multiples_of, exclude_multiples_of, rect_noise) keep their defaults unless the dataset reads
    them; value ranges (image_size >= 8, limit >= 1, 1 <= latent_dim <= dim, latent_dim <= 128
    hidden units for synthetic, n >= 1, multiples_of / exclude_multiples_of >= 1 and not both,
    rect_noise >= 0); image_size only for image data; ``root`` is an existing directory for
    file-based datasets.
    """
    if not isinstance(cfg.name, str) or not cfg.name:
        raise ConfigError(f"data.name must be a dataset name, got {short_repr(cfg.name)}")
    spec = resolve_spec(cfg.name)
    defaults = {f.name: f.default for f in fields(DataConfig)}
    for key in SPECIFIC_PARAMS:
        value = getattr(cfg, key)
        if value != defaults[key] and key not in spec.params:
            users = [n for n, s in DATASETS.items() if key in s.params]
            raise ConfigError(f"data.{key} = {short_repr(value)} does not apply to dataset {short_repr(cfg.name)}; "
                              f"it is read by: {', '.join(users)}")
    _check_int("image_size", cfg.image_size, MIN_IMAGE_SIZE, optional=True)
    if cfg.image_size is not None and spec.kind != "image":
        raise ConfigError(f"data.image_size applies to image datasets; {short_repr(cfg.name)} is {spec.kind} data")
    _check_int("limit", cfg.limit, 1, optional=True)
    _check_int("latent_dim", cfg.latent_dim, 1)
    _check_int("dim", cfg.dim, 1)
    _check_int("seed", cfg.seed, 0)
    _check_int("n", cfg.n, 1, optional=True)
    _check_int("multiples_of", cfg.multiples_of, 1, optional=True)
    _check_int("exclude_multiples_of", cfg.exclude_multiples_of, 1, optional=True)
    if cfg.multiples_of is not None and cfg.exclude_multiples_of is not None:
        raise ConfigError(f"data.multiples_of = {cfg.multiples_of} and data.exclude_multiples_of = "
                          f"{cfg.exclude_multiples_of} exclude each other: set one (the two values "
                          f"give complementary parts of the dataset)")
    _check_int("rect_noise", cfg.rect_noise, 0)
    if "latent_dim" in spec.params:
        if cfg.latent_dim > cfg.dim:
            raise ConfigError(f"data.latent_dim = {cfg.latent_dim} exceeds data.dim = {cfg.dim}: the "
                              f"data manifold cannot have more dimensions than the space it lies in")
        if cfg.latent_dim > SYNTHETIC_HIDDEN:
            raise ConfigError(f"data.latent_dim = {cfg.latent_dim} exceeds the {SYNTHETIC_HIDDEN} hidden "
                              f"units of the synthetic generator, so the data would have rank "
                              f"{SYNTHETIC_HIDDEN}, not {cfg.latent_dim}")
    if not isinstance(cfg.download, bool):
        raise ConfigError(f"data.download must be true or false, got {short_repr(cfg.download)}")
    if cfg.root is not None:
        if not isinstance(cfg.root, (str, Path)):
            raise ConfigError(f"data.root must be a directory path, got {short_repr(cfg.root)}")
        if spec.files is not None and not _expand(cfg.root, "data.root").is_dir():
            raise ConfigError(f"data.root (--data-dir) {cfg.root} is not a directory")


def load_dataset(cfg: DataConfig, split: str = "train") -> ArrayDataset:
    """Validate ``cfg`` and load ``split`` ("train" or "test").

    Applies ``rect_noise`` (K random rectangles on every image, ``add_rectangles``, seeded by
    ``derive_seed(cfg.seed, "rect-noise", split)``, so with the same seed rgb-mnist and mnist
    example i get the same rectangles), then ``limit`` (train split: the first ``limit``
    examples; the noise does not depend on it) and then ``image_size`` (pad or resize, once, kept
    uint8) to image data.
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {short_repr(split)}")
    check_data_config(cfg)
    ds = resolve_spec(cfg.name).load(cfg, split)
    if cfg.rect_noise:  # only datasets that declare rect_noise get here (check_data_config)
        ds.x = add_rectangles(ds.x, cfg.rect_noise, derive_seed(cfg.seed, "rect-noise", split))
    if split == "train" and cfg.limit is not None and cfg.limit < len(ds):
        ds = ds.subset(cfg.limit)
    if ds.kind == "image" and cfg.image_size is not None:
        ds.x = resize_images(ds.x, cfg.image_size)
    return ds


def list_datasets() -> list[tuple[str, str]]:
    """``(name, description)`` of every registered dataset, plus the ``folder:PATH`` form."""
    return [(n, s.description) for n, s in DATASETS.items()] + [
        ("folder:PATH", "every png/jpg/jpeg/bmp/webp under PATH; labels from sub-directory names"),
        ("tensors:PATH", "tensors/arrays given from Python (genae.train(METHOD, data=...)), stored in PATH")]


def dataset_info(cfg: DataConfig) -> dict:
    """What ``genae data info`` shows; never downloads.

    Returns ``{"name", "description", "kind", "labelled", "params", "looked_in" (file-based sets:
    every directory searched, in order; only the ``--data-dir`` ones when it is given), "found"
    (both splits), "splits": {split: {"found", and either "error" or "source", "files" (path ->
    SHA-256, as in ``provenance``), "size", "shape", "dtype", "num_classes", "class_counts",
    "class_names", "factor_names"}}}``. Corrupt files raise ``CorruptDataset``.
    """
    check_data_config(cfg)
    spec = resolve_spec(cfg.name)
    info: dict = {"name": cfg.name, "description": spec.description, "kind": spec.kind,
                  "labelled": spec.labelled, "params": {k: getattr(cfg, k) for k in spec.params}}
    if spec.files is not None:
        info["looked_in"] = [f"{d}  ({label})" for d, label in candidate_dirs(spec.files, cfg)]
    splits = {}
    for split in SPLITS:
        try:
            ds = load_dataset(replace(cfg, download=False), split)
        except DatasetNotFound as e:
            splits[split] = {"found": False, "error": str(e)}
            continue
        counts = None
        if ds.y is not None:
            counts = torch.bincount(ds.y, minlength=ds.num_classes or 0).tolist()
        splits[split] = {"found": True, "source": ds.source, "files": dict(ds.files), "size": len(ds),
                         "shape": list(ds.x.shape[1:]), "dtype": str(ds.x.dtype).replace("torch.", ""),
                         "num_classes": ds.num_classes, "class_counts": counts,
                         "class_names": list(ds.class_names), "factor_names": list(ds.factor_names)}
    info["splits"] = splits
    info["found"] = all(s["found"] for s in splits.values())
    return info


def fetch(cfg: DataConfig) -> Path:
    """Make the files of ``cfg.name`` available locally; return the directory that holds them.

    With an explicit ``cfg.root`` (``--data-dir``) nothing is downloaded or installed: the root
    (or its dataset-named sub-directory or a layout) is returned if it holds both splits, else
    ``DatasetNotFound`` names it and the missing files. Otherwise, if some place in the look-up
    order already holds both splits, that directory is returned and nothing is downloaded; else,
    when ``cfg.download`` allows, the official files are downloaded into the cache (SHA-256
    checked; for Fashion-MNIST, if that fails, ``install_system_dataset`` is tried) and both
    splits are read once to validate them (for CIFAR-10 this also extracts the archive).
    Raises ``ConfigError`` for generated datasets (nothing to fetch), ``DatasetNotFound`` when the
    files are not there and may not or cannot be downloaded, ``CorruptDataset`` when a download
    or file is bad.
    """
    check_data_config(cfg)
    spec = resolve_spec(cfg.name)
    for prefix in (FOLDER_PREFIX, ARRAYS_PREFIX):
        if cfg.name.startswith(prefix):
            path = Path(cfg.name[len(prefix):]).expanduser()
            if not path.is_dir():
                raise DatasetNotFound(f"{prefix[:-1]} dataset: {path} is not a directory")
            return path
    fs: FileSet | None = spec.files
    if fs is None:
        raise ConfigError(f"dataset {short_repr(cfg.name)} is generated on the fly; there is nothing to fetch")
    root = explicit_root(cfg)
    if root is not None:
        for d in root_dirs(fs, root):
            if all(fs.probe(d, s) for s in SPLITS):
                return d
        missing = [s for s in SPLITS if not any(fs.probe(d, s) for d in root_dirs(fs, root))]
        raise DatasetNotFound(root_not_found_message(fs, root, missing or list(SPLITS)))
    looked = []
    for d, label in candidate_dirs(fs, cfg):
        if all(fs.probe(d, s) for s in SPLITS):
            return d
        looked.append(f"{d}  ({label})")
    if not cfg.download:
        looked.append("download: not attempted (downloads disabled: data.download is false)")
        raise DatasetNotFound(not_found_message(fs, "train", looked))
    try:
        d = download_fileset(fs)
    except (OSError, CorruptDataset) as e:
        if fs.package and install_system_dataset(fs.name, cfg):
            return next(Path(p) for p in _download.SYSTEM_DIRS[fs.name] if all(fs.probe(Path(p), s) for s in SPLITS))
        if isinstance(e, CorruptDataset):
            raise
        looked.append(f"download: {e}")
        raise DatasetNotFound(not_found_message(fs, "train", looked)) from e
    for split in SPLITS:  # validate (and, for an archive, extract) now rather than at train time
        load_dataset(replace(cfg, root=str(d), download=False, limit=None, image_size=None), split)
    return d


def install_system_dataset(name: str, cfg: DataConfig | None = None) -> bool:
    """Install ``name`` from the operating system's package manager (Fashion-MNIST only).

    Runs ``apt-get install -y dataset-fashion-mnist`` as root or via ``sudo -n`` (and ``apt-get
    update`` first when the package lists lack it), printing each command. Returns True if the
    files are now in ``SYSTEM_DIRS[name]`` (also when they already were), False otherwise.

    ``cfg``: the data config the installation is for; callers should pass it. When it forbids
    fetching (``data.download`` false) or names an explicit ``--data-dir`` (whose files alone are
    read, so the system directory would not be), nothing is run and the return value only says
    whether the files are already there.
    """
    if name != "fashion-mnist":
        return False
    fs = FASHION_MNIST_FILES

    def present() -> bool:
        return any(all(fs.probe(Path(d), s) for s in SPLITS) for d in _download.SYSTEM_DIRS.get(name, ()))

    if cfg is not None and (not cfg.download or explicit_root(cfg) is not None):
        return present()
    return install_system_package(fs.package, present)
