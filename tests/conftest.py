"""Shared fixtures: small thread count (2-core CI), an isolated cache, tiny method configs."""
from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)

# Tiny configs for every registered method; test_methods checks this covers METHODS exactly.
TINY = {
    "ae": dict(latent_dim=4, hidden=32),
    "vae": dict(latent_dim=4, hidden=32),
    "beta-vae": dict(latent_dim=4, hidden=32),
    "wae-gan": dict(latent_dim=4, hidden=32, n_critic=2),
    "aae": dict(latent_dim=4, hidden=32),
    "maskaae": dict(latent_dim=4, hidden=32, depth=1, critic_hidden=16, n_critic=2),
    "maskaae-fixed": dict(latent_dim=4, hidden=32, depth=1, critic_hidden=16, n_critic=2),
}

# Extra overrides a method needs on vector data (e.g. no Bernoulli likelihood for real vectors).
TINY_VECTOR = {"vae": dict(likelihood="gaussian"), "beta-vae": dict(likelihood="gaussian")}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never read or write the user's ~/.cache/genae from tests."""
    cache = tmp_path_factory.getbasetemp() / "genae-cache"
    monkeypatch.setenv("GENAE_CACHE", str(cache))
    monkeypatch.delenv("GENAE_DATA", raising=False)
    yield


def tiny_overrides(name: str) -> list[str]:
    return [f"model.{k}={v!r}" for k, v in TINY[name].items()]


def fast_train_overrides(steps: int = 4, **extra) -> list[str]:
    base = dict(steps=steps, batch_size=16, log_every=2, sample_every=steps, ckpt_every=2,
                progress=False, tensorboard=False, device="cpu")
    base.update(extra)
    return [f"train.{k}={v!r}" for k, v in base.items()]
