"""Tests of the data of Deep Quotient Manifold Modeling: rgb-mnist, two-digit-mnist (and its
multiples_of / exclude_multiples_of filters), the rectangle noise, and the EMNIST Letters reader
and download.

MNIST and EMNIST are small IDX files this test writes (``test_data``'s independent writer); the
expected values are computed here from what was written, never from the loaders' own output.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from genae.data import (DATASETS, DataConfig, add_rectangles, check_data_config, dataset_info,
                        derive_seed, fetch, list_datasets, load_dataset)
from genae.data import download as dl
from genae.data import emnist
from genae.data.download import RemoteFile
from genae.data.transforms import rectangle_ranges
from genae.errors import ConfigError, CorruptDataset
from genae.methods.base import DataInfo
from test_data import write_idx, write_mnist_dir


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Cache inside tmp_path, no GENAE_DATA, the network off."""
    monkeypatch.setenv("GENAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENAE_DATA", raising=False)

    def no_network(url, timeout):
        raise OSError(f"network disabled in tests ({url})")

    monkeypatch.setattr(dl, "urlopen", no_network)
    return tmp_path


@pytest.fixture
def mnist(tmp_path):
    """A 200/40-image MNIST of random images (all distinct) and labels; (root, {split: (x, y)})."""
    root = tmp_path / "mnist"
    return root, write_mnist_dir(root, n_train=200, n_test=40, seed=5)


def _cfg(root, name, **kw):
    return DataConfig(name=name, root=str(root), **kw)


# --- rgb-mnist -------------------------------------------------------------------------------------

def test_rgb_mnist_colours_digits_in_one_channel(mnist):
    root, ref = mnist
    for split in ("train", "test"):
        src_x, src_y = ref[split]
        ds = load_dataset(_cfg(root, "rgb-mnist", seed=3), split)
        assert ds.x.dtype == torch.uint8 and ds.x.shape == (len(src_x), 3, 28, 28)
        assert ds.info == DataInfo((3, 28, 28), 10, "image", len(ds))
        assert ds.y.dtype == torch.int64 and ds.y.tolist() == src_y.tolist()      # labels: the digit
        assert ds.factor_names == ("colour",) and ds.factors.shape == (len(src_x), 1)
        colour = ds.factors[:, 0].long()
        assert torch.equal(ds.factors[:, 0], colour.float()) and set(colour.tolist()) == {0, 1, 2}
        for i in range(len(src_x)):
            c = int(colour[i])
            assert np.array_equal(ds.x[i, c].numpy(), src_x[i])
            assert int(ds.x[i, [k for k in range(3) if k != c]].sum()) == 0
    a, b = load_dataset(_cfg(root, "rgb-mnist", seed=3)), load_dataset(_cfg(root, "rgb-mnist", seed=3))
    assert len(a) == 200 and torch.equal(a.x, b.x) and torch.equal(a.factors, b.factors)
    other = load_dataset(_cfg(root, "rgb-mnist", seed=4))
    assert not torch.equal(other.factors, a.factors) and torch.equal(other.y, a.y)
    assert a.files == load_dataset(_cfg(root, "mnist")).files              # MNIST's provenance


# --- two-digit-mnist -------------------------------------------------------------------------------

def _source_index(halves: np.ndarray, src: np.ndarray) -> np.ndarray:
    """For each 28x28 image of ``halves``, the index of the identical image in ``src``."""
    keys = {src[i].tobytes(): i for i in range(len(src))}
    assert len(keys) == len(src)                                 # random images: all distinct
    return np.array([keys[h.tobytes()] for h in halves])


def test_two_digit_mnist_pairs_and_labels(mnist):
    root, ref = mnist
    for split in ("train", "test"):
        src_x, src_y = ref[split]
        ds = load_dataset(_cfg(root, "two-digit-mnist", seed=1), split)
        n = len(src_x)
        assert ds.x.dtype == torch.uint8 and ds.x.shape == (n, 1, 28, 56) and len(ds) == n
        assert ds.info == DataInfo((1, 28, 56), 100, "image", len(ds))
        assert ds.class_names[0] == "00" and ds.class_names[99] == "99" and len(ds.class_names) == 100
        x = ds.x[:, 0].numpy()
        left, right = _source_index(x[:, :, :28], src_x), _source_index(x[:, :, 28:], src_x)
        # every source image once on each side, not in the source order
        assert sorted(left) == list(range(n)) and sorted(right) == list(range(n))
        assert not np.array_equal(left, np.arange(n))
        want = 10 * src_y[left].astype(np.int64) + src_y[right]
        assert ds.y.dtype == torch.int64 and ds.y.tolist() == want.tolist()
        assert ds.factor_names == ("left", "right")
        assert ds.factors[:, 0].tolist() == src_y[left].tolist()
        assert ds.factors[:, 1].tolist() == src_y[right].tolist()
    a, b = load_dataset(_cfg(root, "two-digit-mnist", seed=1)), load_dataset(_cfg(root, "two-digit-mnist", seed=1))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(load_dataset(_cfg(root, "two-digit-mnist", seed=2)).x, a.x)


@pytest.mark.parametrize("m", [9, 4])
def test_two_digit_multiples_filters_are_complementary_and_disjoint(mnist, m):
    root, _ = mnist
    for split in ("train", "test"):
        full = load_dataset(_cfg(root, "two-digit-mnist", seed=1), split)
        keep = load_dataset(_cfg(root, "two-digit-mnist", seed=1, multiples_of=m), split)
        rest = load_dataset(_cfg(root, "two-digit-mnist", seed=1, exclude_multiples_of=m), split)
        assert len(keep) > 0 and len(rest) > 0 and len(keep) + len(rest) == len(full)
        assert bool((keep.y % m == 0).all()) and bool((rest.y % m != 0).all())
        assert keep.num_classes == rest.num_classes == 100                  # labels keep their meaning
        sel = full.y % m == 0
        assert torch.equal(keep.x, full.x[sel]) and torch.equal(keep.y, full.y[sel])
        assert torch.equal(rest.x, full.x[~sel]) and torch.equal(rest.factors, full.factors[~sel])
        kept = {bytes(t.numpy().tobytes()) for t in keep.x}
        assert not any(bytes(t.numpy().tobytes()) in kept for t in rest.x)   # disjoint images
    assert set(keep.y.tolist()) <= set(range(0, 100, m))


@pytest.mark.parametrize("kw,words", [
    ({"name": "two-digit-mnist", "multiples_of": 0}, ["data.multiples_of", ">= 1"]),
    ({"name": "two-digit-mnist", "exclude_multiples_of": -9}, ["data.exclude_multiples_of", ">= 1"]),
    ({"name": "two-digit-mnist", "multiples_of": "9"}, ["data.multiples_of", "integer"]),
    ({"name": "two-digit-mnist", "multiples_of": 9.0}, ["data.multiples_of", "integer"]),
    ({"name": "two-digit-mnist", "multiples_of": 9, "exclude_multiples_of": 9},
     ["data.multiples_of", "data.exclude_multiples_of", "set one"]),
    ({"name": "mnist", "multiples_of": 9}, ["data.multiples_of", "does not apply", "two-digit-mnist"]),
    ({"name": "rgb-mnist", "exclude_multiples_of": 9}, ["data.exclude_multiples_of", "two-digit-mnist"]),
    ({"name": "cifar10", "rect_noise": 2}, ["data.rect_noise", "does not apply", "rgb-mnist", "mnist"]),
    ({"name": "fake", "rect_noise": 2}, ["data.rect_noise", "does not apply"]),
    ({"name": "synthetic", "rect_noise": 2}, ["data.rect_noise", "does not apply"]),
    ({"name": "mnist", "rect_noise": -1}, ["data.rect_noise", ">= 0"]),
    ({"name": "mnist", "rect_noise": True}, ["data.rect_noise", "integer"]),
    ({"name": "mnist", "seed": 2, "rect_noise": 2}, ["data.seed", "does not apply"]),
])
def test_new_data_options_are_validated_in_one_line(kw, words):
    with pytest.raises(ConfigError) as e:
        check_data_config(DataConfig(**kw))
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_new_data_options_accepted_where_they_apply():
    check_data_config(DataConfig(name="two-digit-mnist", multiples_of=9, rect_noise=3, seed=2))
    check_data_config(DataConfig(name="two-digit-mnist", exclude_multiples_of=9))
    for name in ("mnist", "fashion-mnist", "emnist-letters", "transformed-mnist", "rgb-mnist"):
        check_data_config(DataConfig(name=name, rect_noise=1))
    check_data_config(DataConfig(name="cifar10", rect_noise=0))                # the default: fine


# --- rectangle noise ---------------------------------------------------------------------------------

def test_add_rectangles_pure_function():
    x = torch.zeros(1300, 1, 28, 28, dtype=torch.uint8)                # more than one block of 1024
    before = x.clone()
    a = add_rectangles(x, 3, seed=7)
    assert torch.equal(x, before)                                        # input untouched
    assert a.dtype == torch.uint8 and a.shape == x.shape
    assert torch.equal(a, add_rectangles(x, 3, seed=7))                  # deterministic
    assert not torch.equal(a, add_rectangles(x, 3, seed=8))
    assert set(a.unique().tolist()) == {0, 255}                          # full intensity
    assert bool((a.flatten(1) > 0).any(1).all())                         # every image changed
    # Example i's rectangles depend on (seed, k, i) only: a prefix or a block boundary keeps them.
    assert torch.equal(add_rectangles(x[:5], 3, seed=7), a[:5])
    assert torch.equal(add_rectangles(x[:1100], 3, seed=7), a[:1100])
    # k = 0: an unchanged copy
    z = add_rectangles(x, 0, seed=7)
    assert torch.equal(z, x) and z.data_ptr() != x.data_ptr()
    # One rectangle on a blank image is one filled box with sides in the documented ranges.
    (h_lo, h_hi), (w_lo, w_hi) = rectangle_ranges(28, 28)
    assert ((h_lo, h_hi), (w_lo, w_hi)) == ((2, 7), (2, 7))
    assert rectangle_ranges(28, 56) == ((2, 7), (4, 14))
    one = add_rectangles(x[:300], 1, seed=3)[:, 0] > 0
    heights, widths = set(), set()
    for m in one:
        rows, cols = m.any(1).nonzero()[:, 0], m.any(0).nonzero()[:, 0]
        h, w = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        assert int(m.sum()) == h * w                                     # filled, a single box
        heights.add(h)
        widths.add(w)
    assert heights == set(range(h_lo, h_hi + 1)) and widths == set(range(w_lo, w_hi + 1))
    # every channel, on top of the content
    rgb = torch.randint(0, 200, (20, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    noisy = add_rectangles(rgb, 2, seed=1)
    changed = (noisy != rgb).any(1)                                      # (N, H, W)
    assert bool(changed.any()) and bool((noisy.permute(0, 2, 3, 1)[changed] == 255).all())
    with pytest.raises(ValueError):
        add_rectangles(rgb.float(), 2, 1)


def test_rect_noise_through_load_dataset(mnist):
    root, ref = mnist
    plain = load_dataset(_cfg(root, "mnist"))
    noisy = load_dataset(_cfg(root, "mnist", rect_noise=3))
    assert noisy.x.shape == plain.x.shape and torch.equal(noisy.y, plain.y)
    # exactly the documented draw: add_rectangles seeded by derive_seed(data.seed, "rect-noise", split)
    blank = torch.zeros_like(plain.x)
    box = add_rectangles(blank, 3, derive_seed(0, "rect-noise", "train")) == 255     # (N, 1, H, W)
    assert torch.equal(noisy.x, plain.x.masked_fill(box, 255))
    assert bool(box.flatten(1).any(1).all()) and bool((noisy.x != plain.x).flatten(1).any(1).all())
    assert torch.equal(noisy.x, load_dataset(_cfg(root, "mnist", rect_noise=3)).x)
    assert torch.equal(load_dataset(_cfg(root, "mnist", rect_noise=3, limit=7)).x, noisy.x[:7])
    assert not torch.equal(load_dataset(_cfg(root, "mnist", rect_noise=3), "test").x,
                           load_dataset(_cfg(root, "mnist"), "test").x)
    # rgb-mnist with the same seed gets the same rectangles, white in every channel
    rgb = load_dataset(_cfg(root, "rgb-mnist", rect_noise=3))
    assert torch.equal(rgb.x, load_dataset(_cfg(root, "rgb-mnist")).x.masked_fill(box, 255))
    two = load_dataset(_cfg(root, "two-digit-mnist", rect_noise=2, seed=1, multiples_of=9))
    assert two.x.shape[1:] == (1, 28, 56)
    assert not torch.equal(two.x, load_dataset(_cfg(root, "two-digit-mnist", seed=1, multiples_of=9)).x)
    tm = load_dataset(_cfg(root, "transformed-mnist", rect_noise=1))
    assert bool(((tm.x != load_dataset(_cfg(root, "transformed-mnist")).x).flatten(1).any(1)).all())


# --- EMNIST Letters ---------------------------------------------------------------------------------

def _write_emnist(d: Path, gz: bool = True, n=(30, 12), seed=0, splits=("train", "test")):
    """EMNIST Letters files in the official format: each image stored transposed, labels 1..26.
    Returns {split: (upright images (N, 28, 28), labels 1..26)}."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, count in zip(("train", "test"), n):
        if split not in splits:
            continue
        upright = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(1, 27, count, dtype=np.uint8)
        labels[:2] = (1, 26)                                            # both ends of the range
        ext = ".gz" if gz else ""
        write_idx(d / f"emnist-letters-{split}-images-idx3-ubyte{ext}", upright.transpose(0, 2, 1))
        write_idx(d / f"emnist-letters-{split}-labels-idx1-ubyte{ext}", labels)
        out[split] = (upright, labels)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_emnist_letters_reader_transposes_and_shifts_labels(tmp_path, gz):
    ref = _write_emnist(tmp_path / "e", gz=gz)
    for split in ("train", "test"):
        ds = load_dataset(_cfg(tmp_path / "e", "emnist-letters"), split)
        upright, labels = ref[split]
        assert ds.x.dtype == torch.uint8 and ds.x.shape == (len(upright), 1, 28, 28)
        assert np.array_equal(ds.x[:, 0].numpy(), upright)                      # upright, not stored order
        assert ds.y.dtype == torch.int64 and ds.y.tolist() == (labels.astype(int) - 1).tolist()
        assert ds.num_classes == 26 and ds.info == DataInfo((1, 28, 28), 26, "image", len(ds))
        assert ds.class_names[0] == "A/a" and ds.class_names[25] == "Z/z"
        assert ds.y.min() == 0 and ds.y.max() == 25
    # An asymmetric glyph: a vertical bar stored the EMNIST way comes out vertical.
    g = np.zeros((1, 28, 28), np.uint8)
    g[0, 4:24, 10:13] = 255                                                     # upright: vertical bar
    d = tmp_path / "glyph"
    d.mkdir()
    for split in ("train", "test"):
        write_idx(d / f"emnist-letters-{split}-images-idx3-ubyte.gz", g.transpose(0, 2, 1))
        write_idx(d / f"emnist-letters-{split}-labels-idx1-ubyte.gz", np.array([9], np.uint8))
    ds = load_dataset(_cfg(d, "emnist-letters"), "test")
    assert np.array_equal(ds.x[0, 0].numpy(), g[0]) and ds.class_names[int(ds.y[0])] == "I/i"


@pytest.mark.parametrize("bad", [0, 27])
def test_emnist_letters_bad_labels_are_named(tmp_path, bad):
    _write_emnist(tmp_path / "e")
    labels = np.full(30, 5, np.uint8)
    labels[3] = bad
    write_idx(tmp_path / "e" / "emnist-letters-train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(CorruptDataset) as e:
        load_dataset(_cfg(tmp_path / "e", "emnist-letters"), "train")
    assert "emnist-letters-train-labels-idx1-ubyte.gz" in str(e.value) and "1..26" in str(e.value)


def _emnist_zip(src: Path) -> bytes:
    """A zip laid out like NIST's gzip.zip: gzip/emnist-<split>-*.gz for several EMNIST splits."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("gzip/", b"")
        for p in sorted(src.iterdir()):
            z.writestr(f"gzip/{p.name}", p.read_bytes())
        z.writestr("gzip/emnist-digits-train-labels-idx1-ubyte.gz", gzip.compress(b"not letters"))
        z.writestr("gzip/emnist-letters-mapping.txt", b"1 65 97\n")
    return buf.getvalue()


def test_emnist_letters_from_zip_in_data_dir(tmp_path):
    ref = _write_emnist(tmp_path / "src")
    root = tmp_path / "given"
    root.mkdir()
    (root / "gzip.zip").write_bytes(_emnist_zip(tmp_path / "src"))
    ds = load_dataset(_cfg(root, "emnist-letters"), "test")
    assert np.array_equal(ds.x[:, 0].numpy(), ref["test"][0]) and ds.source == str(root / "gzip.zip")
    cache = tmp_path / "cache" / "data" / "emnist-letters"
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in (tmp_path / "src").iterdir())
    assert set(ds.files) == {str(cache / "emnist-letters-test-images-idx3-ubyte.gz"),
                             str(cache / "emnist-letters-test-labels-idx1-ubyte.gz")}
    # unzipped by hand: the gzip/ folder is one of the layouts looked in
    (root / "gzip.zip").unlink()
    _write_emnist(root / "gzip", gz=False, seed=3)
    assert load_dataset(_cfg(root, "emnist-letters"), "train").source == str(root / "gzip")
    # a zip without the letters files is named
    bad = tmp_path / "bad"
    bad.mkdir()
    other = tmp_path / "other"
    _write_emnist(other, splits=("train",))
    (bad / "gzip.zip").write_bytes(_emnist_zip(other))
    for p in cache.iterdir():                               # no stale copy may stand in for it
        p.unlink()
    with pytest.raises(CorruptDataset, match="gzip.zip: has no gzip/emnist-letters-test-images"):
        load_dataset(_cfg(bad, "emnist-letters"), "test")


def _serve_emnist(tmp_path, monkeypatch, tamper: bool = False):
    ref = _write_emnist(tmp_path / "src", n=(25, 9))
    blob = _emnist_zip(tmp_path / "src")
    url = "https://nist.example.test/cs_links/EMNIST/gzip.zip"
    fs = replace(emnist.EMNIST_LETTERS_FILES,
                 remote=(RemoteFile("gzip.zip", (url,), hashlib.sha256(blob).hexdigest(), len(blob)),))
    calls = []

    def fake_urlopen(u, timeout):
        calls.append(u)
        assert u == url
        return io.BytesIO(blob[:-1] + bytes([blob[-1] ^ 1]) if tamper else blob)

    monkeypatch.setattr(dl, "urlopen", fake_urlopen)
    monkeypatch.setattr(emnist, "EMNIST_LETTERS_FILES", fs)
    monkeypatch.setitem(DATASETS, "emnist-letters", replace(DATASETS["emnist-letters"], files=fs))
    return ref, calls


def test_emnist_letters_download(tmp_path, monkeypatch):
    ref, calls = _serve_emnist(tmp_path, monkeypatch)
    cache = tmp_path / "cache" / "data" / "emnist-letters"
    assert fetch(DataConfig(name="emnist-letters")) == cache and len(calls) == 1
    for split in ("train", "test"):
        ds = load_dataset(DataConfig(name="emnist-letters", download=False), split)
        assert np.array_equal(ds.x[:, 0].numpy(), ref[split][0])
        assert ds.y.tolist() == (ref[split][1].astype(int) - 1).tolist()
    names = {p.name for p in cache.iterdir()}
    assert names == {"gzip.zip"} | {p.name for p in (tmp_path / "src").iterdir()}   # letters only
    assert fetch(DataConfig(name="emnist-letters")) == cache and len(calls) == 1    # no new download


def test_emnist_letters_download_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    _serve_emnist(tmp_path, monkeypatch, tamper=True)
    with pytest.raises(CorruptDataset, match="SHA-256 mismatch for gzip.zip"):
        fetch(DataConfig(name="emnist-letters"))
    cache = tmp_path / "cache"
    assert not cache.exists() or [p for p in cache.rglob("*")] == []


def test_emnist_letters_registered_with_nist_url_and_published_checksum():
    fs = DATASETS["emnist-letters"].files
    (rf,) = fs.remote
    assert rf.urls[0] == "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
    assert rf.sha256 == "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e"
    assert rf.size == 561753746


# --- registry ----------------------------------------------------------------------------------------

def test_new_datasets_listed(mnist, capsys):
    from genae.cli import main

    names = dict(list_datasets())
    for name in ("rgb-mnist", "two-digit-mnist", "emnist-letters"):
        assert name in names and "\n" not in names[name]
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in ("rgb-mnist", "two-digit-mnist", "emnist-letters"))
    root, _ = mnist
    info = dataset_info(_cfg(root, "rgb-mnist"))
    assert info["found"] and info["splits"]["train"]["factor_names"] == ["colour"]
    assert info["splits"]["train"]["shape"] == [3, 28, 28]
