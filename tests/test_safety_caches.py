"""Caches never execute what they read, and the FID Inception weights are verified in full.

- The domain-classifier cache is safetensors + JSON: a crafted pickle, at the old ``.pt`` name
  or at the new name, never runs; a damaged file is discarded (with a warning) and retrained.
- The real-data statistics cache refuses pickled arrays.
- The Inception download is checked against the full SHA-256 and leaves nothing behind on failure.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shlex
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from genae.data import DataConfig, download, load_dataset
from genae.errors import ConfigError
from genae.metrics import domain, inception
from genae.metrics.domain import DomainRecipe, load_or_train_domain

RECIPE = DomainRecipe(width=4, feature_dim=8, steps=20, batch_size=32)


class Evil:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture
def fake():
    return load_dataset(DataConfig("fake", n=64), "train"), load_dataset(DataConfig("fake"), "test")


def _good_state() -> dict:
    """A state dict that fits the classifier of ``fake`` under ``RECIPE``."""
    net = domain.DomainClassifier(1, 10, RECIPE.width, RECIPE.feature_dim)
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_crafted_pickle_domain_cache_never_runs(tmp_path, fake):
    train, test = fake
    marker = tmp_path / "pwned"
    new = domain.domain_cache_path(train, RECIPE, tmp_path)
    old = new.with_suffix(".pt")                 # the name (and format) earlier versions read
    new.parent.mkdir(parents=True)
    # Old name: a torch.save zip whose pickle runs the command, laid out like the old cache.
    torch.save({"meta": {"in_channels": 1, "num_classes": 10}, "state_dict": Evil(marker)}, old)
    # New name: a bare pickle, and (second round) a torch.save zip.
    new.write_bytes(pickle.dumps({"meta": Evil(marker)}))
    with pytest.warns(RuntimeWarning, match=str(new)):
        net, h = load_or_train_domain(train, test, RECIPE, cache_dir=tmp_path)
    assert not marker.exists()
    assert net.meta["path"] == str(new) and 0.0 <= net.meta["test_accuracy"] <= 1.0
    assert old.read_bytes()[:2] == b"PK"         # the old file is left alone, never opened
    torch.save({"meta": Evil(marker)}, new)
    with pytest.warns(RuntimeWarning, match="discarding it and retraining"):
        net2, h2 = load_or_train_domain(train, test, RECIPE, cache_dir=tmp_path)
    assert not marker.exists() and h2 == h       # retrained deterministically
    # The rewritten cache is safetensors and loads without training (no warning).
    from safetensors import safe_open
    with safe_open(str(new), "pt") as f:
        assert f.metadata()["format"] == "genae-domain-v1"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net3, h3 = load_or_train_domain(train, test, RECIPE, cache_dir=tmp_path)
    assert h3 == h and not marker.exists()
    assert not [p for p in new.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other recipe", "wrong shapes", "no meta"])
def test_damaged_domain_cache_is_discarded_and_retrained(tmp_path, fake, damage):
    from safetensors.torch import save
    train, test = fake
    net, h = load_or_train_domain(train, test, RECIPE, cache_dir=tmp_path)
    path = Path(net.meta["path"])
    good = path.read_bytes()
    state = _good_state()
    meta = {k: v for k, v in net.meta.items() if k != "path"}
    if damage == "truncated":
        path.write_bytes(good[:-100])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 64)
    elif damage == "other recipe":
        bad = dict(meta, recipe=dict(meta["recipe"], steps=999))
        path.write_bytes(save(state, {"format": "genae-domain-v1", "genae_domain_meta": json.dumps(bad)}))
    elif damage == "wrong shapes":
        state["head.weight"] = torch.zeros(3, RECIPE.feature_dim)
        path.write_bytes(save(state, {"format": "genae-domain-v1", "genae_domain_meta": json.dumps(meta)}))
    else:
        path.write_bytes(save(state))
    with pytest.warns(RuntimeWarning, match=str(path)):
        again, h2 = load_or_train_domain(train, test, RECIPE, cache_dir=tmp_path)
    assert h2 == h                                              # retrained: the same weights
    reread = domain.read_domain_cache(path, RECIPE, domain.dataset_key(train))   # rewritten, valid
    assert all(torch.equal(a, b) for a, b in zip(reread.state_dict().values(), net.state_dict().values()))


def test_stats_cache_refuses_pickles(tmp_path):
    from genae import metrics as M
    marker = tmp_path / "pwned"
    ctx = M.EvalContext(DataConfig("fake", n=64), n_samples=32, batch_size=32, cache_dir=str(tmp_path),
                        domain_recipe=RECIPE)
    stats = ctx.real_features()
    (path,) = (tmp_path / "stats").glob("fake-*.npz")
    ref = {k: v.copy() for k, v in stats.items()}
    for crafted in (pickle.dumps(Evil(marker)), None):
        if crafted is None:                        # an .npz whose array is a pickled object
            buf = io.BytesIO()
            np.savez(buf, features=np.array([Evil(marker)], dtype=object), mu=ref["mu"], sigma=ref["sigma"])
            crafted = buf.getvalue()
        path.write_bytes(crafted)
        fresh = M.EvalContext(DataConfig("fake", n=64), n_samples=32, batch_size=32,
                              cache_dir=str(tmp_path), domain_recipe=RECIPE)
        with pytest.warns(RuntimeWarning, match=str(path)):
            got = fresh.real_features()
        assert not marker.exists()
        assert all(np.allclose(got[k], ref[k]) for k in ref)
    with np.load(path, allow_pickle=False) as z:     # rewritten with plain arrays
        assert np.allclose(z["mu"], ref["mu"])


# --- Inception weights --------------------------------------------------------------------------

def test_inception_digest_is_the_full_sha256():
    assert len(inception.WEIGHTS_SHA256) == 64 and int(inception.WEIGHTS_SHA256, 16) >= 0
    assert inception.WEIGHTS_NAME == f"pt_inception-2015-12-05-{inception.WEIGHTS_SHA256[:8]}.pth"


@pytest.fixture
def weights_env(tmp_path, monkeypatch):
    monkeypatch.delenv("GENAE_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("GENAE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "weights"


def _serve(monkeypatch, payload: bytes, fail_after: BaseException | None = None):
    calls = []

    class Stream(io.BytesIO):
        def read(self, n=-1):
            block = super().read(n if n and n > 0 else 4)
            if fail_after is not None and self.tell() > len(payload) // 2:
                raise fail_after
            return block

    def fake_urlopen(url, timeout):
        calls.append(url)
        return Stream(payload)

    monkeypatch.setattr(download, "urlopen", fake_urlopen)
    return calls


def _left(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*")) if d.exists() else []


def test_inception_failed_download_leaves_nothing(weights_env, monkeypatch):
    def refused(url, timeout):
        raise OSError("connection refused")
    monkeypatch.setattr(download, "urlopen", refused)
    with pytest.raises(ConfigError, match="download failed.*connection refused"):
        inception.inception_weights_path()
    assert _left(weights_env) == []
    _serve(monkeypatch, b"x" * 64, fail_after=TimeoutError("timed out"))   # dies mid-stream
    with pytest.raises(ConfigError, match="timed out"):
        inception.inception_weights_path()
    assert _left(weights_env) == []
    _serve(monkeypatch, b"x" * 64, fail_after=KeyboardInterrupt())         # Ctrl-C mid-stream
    with pytest.raises(KeyboardInterrupt):
        inception.inception_weights_path()
    assert _left(weights_env) == []


def test_inception_wrong_digest_is_refused_and_removed(weights_env, monkeypatch):
    payload = b"not the inception weights" * 10
    calls = _serve(monkeypatch, payload)
    with pytest.raises(ConfigError) as e:
        inception.inception_weights_path()
    msg = str(e.value)
    assert hashlib.sha256(payload).hexdigest() in msg and inception.WEIGHTS_SHA256 in msg
    assert calls == [inception.WEIGHTS_URL] and _left(weights_env) == []
    # Same prefix is not enough: a digest agreeing only in the first 8 hex digits is refused too.
    monkeypatch.setattr(inception, "WEIGHTS_SHA256",
                        hashlib.sha256(payload).hexdigest()[:8] + "0" * 56)
    monkeypatch.setattr(inception, "WEIGHTS_SIZE", len(payload))
    with pytest.raises(ConfigError, match=hashlib.sha256(payload).hexdigest()):
        inception.inception_weights_path()
    assert _left(weights_env) == []


def test_inception_good_download_lands_and_cached_file_is_checked(weights_env, monkeypatch):
    payload = b"pretend weights" * 100
    monkeypatch.setattr(inception, "WEIGHTS_SHA256", hashlib.sha256(payload).hexdigest())
    monkeypatch.setattr(inception, "WEIGHTS_SIZE", len(payload))
    calls = _serve(monkeypatch, payload)
    path = inception.inception_weights_path()
    assert path == weights_env / inception.WEIGHTS_NAME and path.read_bytes() == payload
    assert _left(weights_env) == [inception.WEIGHTS_NAME]
    assert inception.inception_weights_path() == path and len(calls) == 1   # cached: no download
    path.write_bytes(payload[:-1] + b"!")                                     # damaged in place
    with pytest.raises(ConfigError, match=f"{path}.*Delete it"):
        inception.inception_weights_path()
