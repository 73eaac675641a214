"""Ex-post priors of runs (genae.ex_post): the mixture stored in the checkpoint and read back,
refitted when the weights change, a damaged file refused; resume untouched by it; `genae sample
--prior gmm` and `genae eval --prior gmm` (fid@gmm) from the CLI and `evaluate`."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import fast_train_overrides, tiny_overrides
from genae import cli
from genae.config import build_config
from genae.data import load_dataset
from genae.errors import ConfigError, GenaeError
from genae.ex_post import decode_prior, ex_post_prior, prior_path, read_prior
from genae.runs import checkpoint_config, load_run, read_weights, require_checkpoint
from genae.training import resume, train


def _run(tmp_path, method="ae", steps=4, name="run"):
    return train(build_config(method, "fake", out=str(tmp_path / name),
                              overrides=tiny_overrides(method) + fast_train_overrides(steps)))


def _fit(run, **kw):
    ckpt = require_checkpoint(run)
    cfg, _ = checkpoint_config(run, ckpt)
    method = load_run(run)
    x = load_dataset(cfg.data, "train").x[:cfg.train.prior_examples]
    return ckpt, method, ex_post_prior(run, ckpt, method, x, components=3, **kw)


def test_prior_is_stored_in_the_checkpoint_and_read_back(tmp_path, monkeypatch):
    run = _run(tmp_path)
    ckpt, method, gmm = _fit(run)
    path = prior_path(ckpt, 3, 0)
    assert path.is_file() and gmm.components == 3 and gmm.dim == 4
    again = read_prior(path)
    for k in ("weights", "means", "covariances"):
        assert torch.equal(getattr(again, k), getattr(gmm, k))
    assert again.info["n_codes"] == gmm.info["n_codes"] > 0
    # the second call reads the file: no refit
    import genae.ex_post as ep

    monkeypatch.setattr(ep, "fit_ex_post", lambda *a, **k: pytest.fail("refitted a stored prior"))
    _, _, read = _fit(run)
    assert torch.equal(read.means, gmm.means)
    # the same seed gives the same samples from the stored prior as from the fitted one
    a = decode_prior(method, gmm, 8, torch.Generator().manual_seed(1))
    b = decode_prior(method, read, 8, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (8, *method.info.shape)


def test_prior_of_other_weights_is_refitted_and_a_damaged_one_refused(tmp_path):
    run = _run(tmp_path)
    ckpt, _, gmm = _fit(run)
    path = prior_path(ckpt, 3, 0)
    assert read_prior(path, "0" * 64) is None          # fitted on other weights: stale
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(GenaeError, match="ex-post-gmm-k3-s0.safetensors is damaged"):
        _fit(run)


def test_resume_ignores_the_stored_prior_and_stays_exact(tmp_path):
    """A prior stored in a checkpoint is outside its manifest: the checkpoint still verifies, and
    resuming from it gives the uninterrupted run's weights."""
    full = _run(tmp_path, steps=4, name="full")
    part = _run(tmp_path, steps=2, name="part")
    _fit(part)
    resume(part, steps=4)
    a, b = read_weights(require_checkpoint(full)), read_weights(require_checkpoint(part))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_sample_and_eval_with_the_gmm_prior(tmp_path, capsys):
    run = _run(tmp_path)        # ae: no sampler of its own
    out = tmp_path / "s.png"
    assert cli.main(["sample", str(run), "--n", "8", "--out", str(out), "--prior", "gmm", "--components", "3"]) == 0
    assert out.is_file() and prior_path(require_checkpoint(run), 3, 0).is_file()
    capsys.readouterr()
    assert cli.main(["sample", str(run), "--out", str(out), "--prior", "gmm", "--class", "1"]) != 0
    assert "--class with --prior gmm" in capsys.readouterr().err
    # sharpness: a sampling metric that needs no feature backbone (fid's would be trained on fake data)
    assert cli.main(["eval", str(run), "--json", "--metrics", "sharpness,recon-mse", "--prior", "gmm",
                     "--components", "3", "--n-samples", "64"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"sharpness@gmm", "recon-mse"}
    assert res["sharpness@gmm"]["value"] > 0 and "gmm: 3 full-covariance" in res["sharpness@gmm"]["prior"]
    stored = json.loads((run / "eval.json").read_text())["metrics"]
    assert "sharpness@gmm" in stored


def test_gmm_prior_needs_an_encoder_and_a_sampling_metric(tmp_path, capsys):
    gan = _run(tmp_path, method="wgan-gp", steps=2, name="gan")
    assert cli.main(["sample", str(gan), "--out", str(tmp_path / "g.png"), "--prior", "gmm"]) != 0
    assert "WGAN cannot encode or decode" in capsys.readouterr().err
    ae = _run(tmp_path, name="ae")
    assert cli.main(["eval", str(ae), "--metrics", "recon-mse", "--prior", "gmm"]) != 0
    assert "none of the metrics samples" in capsys.readouterr().err
    from genae.metrics import EvalContext, evaluate

    cfg, _ = checkpoint_config(ae, require_checkpoint(ae))
    with pytest.raises(ConfigError, match="changes only the sampling metrics"):
        evaluate(load_run(ae), EvalContext(cfg.data, n_samples=50), ["recon-mse@gmm"])
    # from Python, without a stored prior, the context fits one (the same EM, not stored)
    res = evaluate(load_run(ae), EvalContext(cfg.data, n_samples=64), ["sharpness@gmm", "sharpness"])
    assert res["sharpness@gmm"]["value"] > 0 and "prior" in res["sharpness@gmm"]
    assert "skipped" in res["sharpness"]["samples"]          # the ae alone cannot sample
    gan_res = evaluate(load_run(gan), EvalContext(cfg.data, n_samples=50), ["fid@gmm"])
    assert "cannot encode" in gan_res["fid@gmm"]["skipped"]
