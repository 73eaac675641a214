"""Every shipped config in configs/ validates, builds its method on its dataset's shape, and the
networks map a batch to the right shapes (no data needed: shapes are the datasets' published ones)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genae.config import build_config
from genae.methods import METHODS, DataInfo

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))

# (channels, native side, classes) of each image dataset; folder datasets are RGB, unlabelled.
IMAGE_DATA = {"mnist": (1, 28, 10), "fashion-mnist": (1, 28, 10), "transformed-mnist": (1, 28, 10),
              "cifar10": (3, 32, 10), "stl10": (3, 96, 10), "stl10-unlabeled": (3, 96, None),
              "dsprites": (1, 64, 3), "rgb-mnist": (3, 28, 10), "two-digit-mnist": (1, (28, 56), 100),
              "folder": (3, 64, None)}


def _info(data) -> DataInfo:
    if data.name == "synthetic":
        return DataInfo((data.dim,), None, "vector")
    c, side, k = IMAGE_DATA["folder" if data.name.startswith("folder:") else data.name]
    h, w = side if isinstance(side, tuple) else (data.image_size or side,) * 2
    return DataInfo((c, h, w), k, "image", 60000)   # size: N of the aggregate-posterior estimators   # size: N of the aggregate-posterior estimators


def test_every_config_is_checked():
    assert len(CONFIGS) >= 10
    assert {p.stem.split("_")[0] for p in CONFIGS} <= set(METHODS)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds_its_method(path):
    cfg = build_config(config_file=path)
    assert path.stem.startswith(cfg.method)
    info = _info(cfg.data)
    torch.manual_seed(0)
    method = METHODS[cfg.method].build(cfg.model, info).eval()
    assert set(method.optimizers())  # one optimizer per player
    x = torch.rand(2, *info.shape)
    if method.input_range == "tanh":
        x = x * 2 - 1
    with torch.no_grad():
        if method.supports("reconstruct"):
            assert method.reconstruct(x).shape == x.shape
        elif method.supports("sample"):  # a GAN: its generator makes images of the dataset's shape
            assert method.sample(2).shape == x.shape
        else:  # a clustering encoder (imsat): p(y|x) of the configured K
            assert method.cluster(x).shape == (2, cfg.model.n_clusters)


def test_the_hybrid_beta_vae_configs_keep_zero_capacities():
    """beta-vae-hybrid is JointVAE with zero capacities: a config that sets capacities turns it into
    JointVAE (a first dSprites config did, and its sweep duplicated jointvae's)."""
    for path in (p for p in CONFIGS if p.stem.startswith("beta-vae-hybrid")):
        cfg = build_config(config_file=path)
        assert cfg.model.capacity_z == 0.0 and cfg.model.capacity_y == 0.0, path.name
