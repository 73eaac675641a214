"""Your own data and networks from Python (issue 25): genae.train / load_run / evaluate on
tensors, arrays and Datasets, with user networks checked against what the method feeds them."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import genae
from genae.errors import ConfigError, GenaeError

TRAIN = {"batch_size": 16, "progress": False, "tensorboard": False, "device": "cpu", "log_every": 5,
         "ckpt_every": 10, "sample_every": 10}


def test_readme_your_own_data_section_runs(tmp_path, monkeypatch):
    """The README's code is executed as written (in a temporary folder)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Your own data and networks"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["codes"].shape == (5, 8)
    assert 0 <= scope["scores"]["recon-mse"]["value"] < 1
    assert (tmp_path / "runs" / "my-vae" / "checkpoints").is_dir()


def test_numpy_vectors_without_labels_and_cli_resume(tmp_path):
    from test_cli import genae as cli

    x = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float64)
    run = genae.train("ae", data=x, steps=10, model={"latent_dim": 2, "hidden": 16}, train=TRAIN,
                      out=tmp_path / "vec")
    method = genae.load_run(run)
    assert method.info.kind == "vector" and method.info.shape == (6,) and method.info.num_classes is None
    assert not any(p.requires_grad for p in method.parameters())  # load_run: inference only
    with torch.no_grad():
        assert method.encode(torch.randn(3, 6)).shape == (3, 2)
    assert method.encode(torch.randn(3, 6)).grad_fn is None
    cli("resume", run, "--steps", 20)  # an ordinary run directory for the command line
    assert genae.load_run(run).info.shape == (6,)


def test_torch_dataset_and_uint8_images(tmp_path):
    class Digits(torch.utils.data.Dataset):
        def __len__(self):
            return 48

        def __getitem__(self, i):
            return torch.full((1, 12, 12), i * 5 % 256, dtype=torch.uint8), i % 3

    run = genae.train("vae", data=Digits(), steps=5, model={"latent_dim": 3, "hidden": 16}, train=TRAIN,
                      out=tmp_path / "ds")
    method = genae.load_run(run)
    assert method.info.shape == (1, 12, 12) and method.info.num_classes == 3
    from genae.data import load_dataset
    from genae.runs import run_config

    ds = load_dataset(run_config(run)[0].data, "train")
    assert ds.x.dtype == torch.uint8 and ds.x[7, 0, 0, 0] == 35 and ds.y.tolist()[:4] == [0, 1, 2, 0]


def test_bad_arrays_are_clear_errors():
    with pytest.raises(ConfigError, match="channels-last"):
        genae.train("vae", data=torch.rand(10, 28, 28, 3), steps=2)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        genae.train("vae", data=torch.rand(10, 1, 8, 8) * 3, steps=2)
    with pytest.raises(ConfigError, match="labels must be"):
        genae.train("vae", data=torch.rand(10, 1, 8, 8), labels=torch.arange(9), steps=2)


class _Enc(nn.Module):
    def __init__(self, out=8):
        super().__init__()
        self.lin = nn.Linear(28 * 28, out)

    def forward(self, x):
        return self.lin(x.flatten(1))


def test_own_network_shape_is_checked_when_the_method_is_built(tmp_path):
    x = torch.rand(32, 1, 28, 28)
    with pytest.raises(ConfigError, match=r"networks\['encoder'\]: for input \(\(8, 1, 28, 28\),\) it returns "
                                          r"\(8, 5\); VAE needs \(8, 8\)"):
        genae.train("vae", data=x, steps=2, model={"latent_dim": 4}, networks={"encoder": _Enc(5)},
                    train=TRAIN, out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="has no sub-network 'encodr'"):
        genae.train("vae", data=x, steps=2, model={"latent_dim": 4}, networks={"encodr": _Enc()},
                    train=TRAIN, out=tmp_path / "bad")


def test_own_network_trains_loads_and_resumes_only_with_it(tmp_path):
    x = torch.rand(40, 1, 28, 28)
    enc = _Enc(8)
    run = genae.train("vae", data=x, test=x[:8], steps=10, model={"latent_dim": 4, "hidden": 16},
                      networks={"encoder": enc}, train=TRAIN, out=tmp_path / "own")
    with pytest.raises(GenaeError, match="came from Python"):
        genae.load_run(run)
    method = genae.load_run(run, networks={"encoder": _Enc(8)})
    assert isinstance(method.encoder, _Enc)
    assert torch.equal(method.encoder.lin.weight, enc.lin.weight)  # the trained module's weights
    genae.resume(run, steps=20, networks={"encoder": _Enc(8)})
    scores = genae.evaluate(run, ["recon-mse"], networks={"encoder": _Enc(8)})
    assert scores["recon-mse"]["split"] == "test"


def test_shape_probe_leaves_the_global_rng_and_the_given_module_alone():
    from genae.config import RunConfig
    from genae.data import DataConfig, load_dataset
    from genae.runs import build_method

    cfg = RunConfig.from_dict({"method": "vae", "model": {"latent_dim": 4}, "train": {"networks": ["encoder"]},
                               "data": {"name": "fake"}})
    enc = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.BatchNorm1d(8))
    state = {k: v.clone() for k, v in enc.state_dict().items()}
    info = load_dataset(DataConfig("fake")).info
    torch.manual_seed(3)
    build_method(cfg, info, {"encoder": enc})
    after_probe = torch.random.get_rng_state()
    torch.manual_seed(3)
    from genae.methods import METHODS
    METHODS["vae"].build(cfg.model, info)  # the same build without networks: the same draws
    assert torch.equal(after_probe, torch.random.get_rng_state())
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in state.items())  # BN stats untouched


def test_evaluate_a_method_object_against_given_data(tmp_path):
    x = torch.rand(40, 1, 28, 28)
    y = torch.arange(40) % 2
    run = genae.train("ae", data=x, labels=y, steps=5, model={"latent_dim": 3, "hidden": 16}, train=TRAIN,
                      out=tmp_path / "ae")
    method = genae.load_run(run)
    scores = genae.evaluate(method, ["recon-mse", "knn-acc"], data=x[:20], labels=y[:20])
    assert 0 <= scores["recon-mse"]["value"] and 0 <= scores["knn-acc"]["value"] <= 1
    with pytest.raises(ConfigError, match="give data="):
        genae.evaluate(method, ["recon-mse"])
