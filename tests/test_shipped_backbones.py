"""The domain backbones shipped with genae: checked on load, used exactly when the data matches.

- The manifest and the files in the package agree (SHA-256, weights digest, recipe, accuracy).
- ``load_or_train_domain`` takes a shipped backbone when the training split's contents match
  (never by name), writes nothing to the cache, and a damaged shipped file is refused naming it.
- FID with the shipped backbone equals FID with the same weights read from a cache, and both name
  the same digest; the protocol says which one it was.
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from conftest import fast_train_overrides, tiny_overrides
from genae import cli
from genae.config import build_config
from genae.data import DataConfig, load_dataset
from genae.errors import GenaeError
from genae.fileio import sha256_file
from genae.metrics import EvalContext, domain, evaluate
from genae.runs import load_run
from genae.training import train

RECIPE = domain.DomainRecipe(width=4, feature_dim=8, steps=20, batch_size=32)
MNIST_10K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist-10k"


def test_the_shipped_manifest_matches_its_files():
    entries = domain.shipped_manifest()
    assert {e["name"] for e in entries} >= {"mnist", "fashion-mnist"}
    for e in entries:
        path = domain.SHIPPED_DIR / e["file"]
        assert path.stat().st_size < 1_000_000, e["file"]          # a few hundred KB each
        assert sha256_file(path) == e["sha256"], e["file"]
        recipe = domain.DomainRecipe(**e["recipe"])
        assert recipe == domain.DomainRecipe(), "shipped backbones use genae eval's default recipe"
        net = domain.read_domain_cache(path, recipe, e["train_key"])
        assert domain.weights_digest(net) == e["weights"]
        assert net.meta["test_accuracy"] == pytest.approx(e["test_accuracy"], abs=1e-4)
        assert e["test_accuracy"] >= (0.97 if "mnist" == e["name"][:5] else 0.90)
        assert e["command"] and e["machine"] and len(e["train_sha256"]) == 64


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A shipped-backbone folder holding one classifier of ``fake`` (trained with RECIPE), in place
    of genae's own; returns (folder, train split, test split, its manifest entry)."""
    train_ds, test_ds = load_dataset(DataConfig("fake"), "train"), load_dataset(DataConfig("fake"), "test")
    folder = tmp_path / "shipped"
    torch.set_num_threads(1)
    net = domain.train_domain_classifier(train_ds, test_ds, RECIPE)
    entry = domain.ship_backbone(net, train_ds, test_ds, "fake", folder, command="(test)")
    monkeypatch.setattr(domain, "SHIPPED_DIR", folder)
    return folder, train_ds, test_ds, entry


def test_a_matching_training_set_uses_the_shipped_backbone_and_caches_nothing(shipped, tmp_path):
    folder, train_ds, test_ds, entry = shipped
    cache = tmp_path / "cache"
    net, digest = domain.load_or_train_domain(train_ds, test_ds, RECIPE, cache_dir=cache)
    assert digest == entry["weights"] and net.meta["shipped"] == "fake"
    assert not (cache / "domain").exists()                      # nothing trained, nothing written
    # another training set (other contents, same name) or another recipe: trained here and cached
    other = load_dataset(DataConfig("fake", n=64), "train")
    assert other.name == train_ds.name and domain.find_shipped(other, RECIPE) is None
    assert domain.find_shipped(train_ds, domain.DomainRecipe(width=4, feature_dim=8, steps=21,
                                                             batch_size=32)) is None
    net2, digest2 = domain.load_or_train_domain(other, test_ds, RECIPE, cache_dir=cache)
    assert "shipped" not in net2.meta and digest2 != digest and (cache / "domain").is_dir()


def test_a_damaged_shipped_file_is_refused_naming_it(shipped, tmp_path):
    folder, train_ds, test_ds, entry = shipped
    path = folder / entry["file"]
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF                                             # one weight's byte flipped
    path.write_bytes(bytes(blob))
    with pytest.raises(domain.DamagedShippedBackbone, match=str(path)) as e:
        domain.load_or_train_domain(train_ds, test_ds, RECIPE, cache_dir=tmp_path / "cache")
    assert isinstance(e.value, GenaeError) and "reinstall" in str(e.value)
    path.unlink()                                                # a missing file: the same refusal
    with pytest.raises(domain.DamagedShippedBackbone, match="missing"):
        domain.load_or_train_domain(train_ds, test_ds, RECIPE, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()                     # never silently retrained


def test_fid_with_the_shipped_backbone_equals_fid_with_the_same_weights_from_a_cache(shipped, tmp_path,
                                                                                    monkeypatch):
    folder, train_ds, test_ds, entry = shipped
    run = train(build_config("vae", "fake", out=str(tmp_path / "run"),
                             overrides=tiny_overrides("vae") + fast_train_overrides(3, threads=1)))
    method = load_run(run)

    def fid(cache):
        ctx = EvalContext(DataConfig("fake"), n_samples=64, batch_size=32, cache_dir=str(cache),
                          domain_recipe=RECIPE, progress=False)
        with torch.no_grad():
            return evaluate(method, ctx, ["fid"])["fid"]

    with_shipped = fid(tmp_path / "cache-a")
    # the same weights as a cache entry of genae's own, with no shipped backbone to find
    cached = domain.domain_cache_path(train_ds, RECIPE, tmp_path / "cache-b")
    cached.parent.mkdir(parents=True)
    shutil.copy(folder / entry["file"], cached)
    monkeypatch.setattr(domain, "SHIPPED_DIR", tmp_path / "nowhere")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                           # read, not discarded and retrained
        from_cache = fid(tmp_path / "cache-b")
    assert with_shipped["value"] == from_cache["value"]
    assert with_shipped["backbone_weights"] == from_cache["backbone_weights"] == entry["weights"]
    assert "shipped" in with_shipped["backbone_name"] and "trained here" in from_cache["backbone_name"]


def test_genae_eval_names_the_shipped_backbone_and_its_digest(shipped, tmp_path, capsys, monkeypatch):
    folder, train_ds, test_ds, entry = shipped
    run = train(build_config("vae", "fake", out=str(tmp_path / "run"),
                             overrides=tiny_overrides("vae") + fast_train_overrides(3, threads=1)))
    # genae eval uses the default recipe, which the shipped backbones are trained with: make RECIPE
    # the default for this test (a default-recipe classifier of `fake` takes a minute to train)
    monkeypatch.setattr(domain.DomainRecipe.__init__, "__defaults__",
                        tuple(getattr(RECIPE, f) for f in domain.DomainRecipe.__dataclass_fields__))
    monkeypatch.setenv("GENAE_CACHE", str(tmp_path / "cache"))
    assert cli.main(["eval", str(run), "--metrics", "fid", "--n-samples", "64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["fid"]
    assert out["backbone_weights"] == entry["weights"] and "shipped" in out["backbone_name"]
    assert not (tmp_path / "cache" / "domain").exists()


@pytest.mark.skipif(not MNIST_10K.is_dir(), reason="MNIST-10k is not on this machine (../shared/datasets)")
def test_mnist_10k_finds_its_shipped_backbone_by_contents():
    ds = load_dataset(DataConfig("mnist", root=str(MNIST_10K)), "train")
    entry = domain.find_shipped(ds)
    assert entry is not None and entry["name"] == "mnist-10k"


def test_a_dataset_without_a_shipped_backbone_trains_one_saying_how_long_first(capsys):
    """The first FID on a user's own data trains its classifier: a bar, and the time it will take
    (timed on the first steps) before most of it has run."""
    train_ds, test_ds = load_dataset(DataConfig("fake", n=64), "train"), load_dataset(DataConfig("fake"), "test")
    steps = domain.ESTIMATE_STEPS[1] + 10
    recipe = domain.DomainRecipe(width=4, feature_dim=8, steps=steps, batch_size=16)
    torch.set_num_threads(1)
    domain.train_domain_classifier(train_ds, test_ds, recipe, progress=True)
    err = capsys.readouterr().err
    assert f"{steps} steps on 64 images, about" in err and "s in all" in err
    assert "training the domain classifier on fake" in err      # the bar, on stderr
