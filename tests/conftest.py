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
    "aae": dict(latent_dim=4, hidden=32, adv_lr=1e-4),  # the bit-identity digests' recipe (adv_lr's old default)
    "maskaae": dict(latent_dim=4, hidden=32, depth=1, critic_hidden=16, n_critic=2),
    "maskaae-fixed": dict(latent_dim=4, hidden=32, depth=1, critic_hidden=16, n_critic=2),
    "ctrl-multi": dict(arch="mlp", width=32, feature_dim=8, r=2, r_unlabelled=4),
    "ctrl-binary": dict(arch="mlp", width=32, feature_dim=8, r=2, r_unlabelled=4),
    "ctrl-ce": dict(arch="mlp", width=32, feature_dim=8, r=2, r_unlabelled=4),
    "wgan-gp": dict(latent_dim=4, hidden=8, depth=1, n_critic=2),
    "wgan-sn": dict(latent_dim=4, hidden=8, depth=1, n_critic=2),
    "dcgan": dict(latent_dim=4, hidden=8, depth=1),
    "infogan": dict(noise_dim=4, n_categories=3, hidden=8, depth=1, q_hidden=8),
    "infogan-qmm": dict(noise_dim=4, n_categories=3, hidden=8, depth=1, q_hidden=8, q_std="learned"),
    "vae-gan": dict(latent_dim=4, hidden=8, depth=1),
    "q-wgan": dict(num_biases=3, latent_dim=4, hidden=8, fc_hidden=16, depth=1),
    "q-wgan-noreg": dict(num_biases=3, latent_dim=4, hidden=8, fc_hidden=16, depth=1),
    "wgan-qmm": dict(latent_dim=4, hidden=8, fc_hidden=16, depth=1),
    "q-beta-vae": dict(num_biases=3, latent_dim=4, hidden=8, fc_hidden=16, depth=1, em_repeats=2),
    "q-beta-vae-noreg": dict(num_biases=3, latent_dim=4, hidden=8, fc_hidden=16, depth=1, em_repeats=2),
    "beta-vae-qmm": dict(latent_dim=4, hidden=8, fc_hidden=16, depth=1),
    "lsr-gan": dict(latent_dim=4, hidden=8, depth=1, d_base=8, vae_steps=1),
    **{n: dict(latent_dim=4, n_categories=3, hidden=16, net="mlp", dataset_size=1000)
       for n in ("imae", "jointvae", "beta-vae-hybrid", "infovae")},
    "beta-tcvae": dict(latent_dim=4, hidden=16, net="mlp", dataset_size=1000, estimator="mss"),
    "imsat": dict(n_clusters=3, net="mlp", hidden=16),
    "dmwgan": dict(n_generators=3, latent_dim=4, hidden=8, width_divisor=2, depth=1, encoder_hidden=8,
                   n_critic=2),
}

_CTRL = ("ctrl-multi", "ctrl-binary", "ctrl-ce")

# The contract tests build every method with each of its two network families: name -> variant ->
# (config overrides, one image's shape). Most methods choose with `model.net` on 28×28 images;
# CTRL chooses with `model.arch`, and its paper DCGAN (Tables 4-5) takes 32×32 images only.
NETS = {name: {"mlp": (dict(net="mlp"), (1, 28, 28)), "conv": (dict(net="conv"), (1, 28, 28))}
        for name in TINY}
NETS.update({name: {"mlp": (dict(arch="mlp"), (1, 28, 28)), "conv": (dict(arch="dcgan32", width=8), (1, 32, 32))}
             for name in _CTRL})

# Extra overrides a method needs on vector data (e.g. no Bernoulli likelihood for real vectors).
TINY_VECTOR = {"vae": dict(likelihood="gaussian"), "beta-vae": dict(likelihood="gaussian"),
               **{n: dict(likelihood="gaussian", net="mlp") for n in ("q-beta-vae", "q-beta-vae-noreg", "beta-vae-qmm")},
               # methods whose default networks are their paper's convolutional ones
               **{n: dict(net="mlp") for n in ("q-wgan", "q-wgan-noreg", "wgan-qmm", "lsr-gan")},
               **{n: dict(likelihood="gaussian")
                  for n in ("imae", "jointvae", "beta-vae-hybrid", "infovae", "beta-tcvae")}}
# Methods that do not take vector data: the ConfigError they must raise at construction.
VECTOR_UNSUPPORTED = {name: "needs images" for name in _CTRL}


def code_dim(name: str) -> int:
    """The width of ``encode``'s output for the tiny config of ``name`` (hybrid codes: the one-hot
    category, then z)."""
    return TINY[name].get("latent_dim", TINY[name].get("feature_dim")) + TINY[name].get("n_categories", 0)


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
