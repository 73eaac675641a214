"""The training engine: gradient isolation, schedules, clipping, non-finite losses, exact resume."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file

from conftest import fast_train_overrides, tiny_overrides
from genae import runs
from genae.config import build_config
from genae.errors import ConfigError, GenaeError, Interrupted, NonFiniteLoss
from genae.methods import METHODS, Batch, DataInfo, Method, MethodSpec, Update
from genae.optim import OPTIMIZERS, build_optimizer, build_schedule, lr_factor
from genae.trainer import run_update
from genae.training import resume, train


def _final_weights(run_dir):
    return load_file(str(runs.latest_checkpoint(run_dir) / "model.safetensors"))


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --------------------------------------------------------------------------------------------
# run_update: each loss reaches only its own player's parameters
# --------------------------------------------------------------------------------------------
def test_run_update_isolates_players_even_when_graphs_connect():
    torch.manual_seed(0)
    g, d = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)
    opts = {"g": torch.optim.SGD(g.parameters(), lr=1.0), "d": torch.optim.SGD(d.parameters(), lr=1.0)}
    x = torch.randn(5, 3)
    out = d(g(x)).mean()
    # the generator minimises -D(G(x)), the discriminator minimises +D(G(x)): one graph, opposite signs
    expected_g = torch.autograd.grad(-out, list(g.parameters()), retain_graph=True)
    expected_d = torch.autograd.grad(out, list(d.parameters()), retain_graph=True)
    before = [p.detach().clone() for p in [*g.parameters(), *d.parameters()]]
    run_update(opts, Update({"g": -out, "d": out}))
    for p, b, e in zip([*g.parameters(), *d.parameters()], before, [*expected_g, *expected_d]):
        torch.testing.assert_close(p.detach(), b - e)  # SGD lr=1: p <- p - grad of its own loss


def test_optimizers_and_schedules():
    w = torch.nn.Parameter(torch.ones(2))
    for name in OPTIMIZERS:
        opt = build_optimizer(name, [w], lr=0.1, betas=(0.5, 0.9), momentum=0.9)
        assert opt.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="adamw"):
        build_optimizer("adagrad", [w], lr=0.1)
    total = 10
    assert [lr_factor("linear", s, total) for s in (0, 5, 10)] == [1.0, 0.5, 0.0]
    assert lr_factor("cosine", 5, total) == pytest.approx(0.5)
    assert lr_factor("cosine", 10, total) == pytest.approx(0.0)
    assert [lr_factor("step", s, total, step_size=3, gamma=0.1) for s in (2, 3, 6)] == pytest.approx([1, .1, .01])
    opt = build_optimizer("sgd", [w], lr=1.0)
    sched = build_schedule(opt, "linear", total)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1 - s / total for s in range(total)])


def test_per_player_gradient_clipping():
    a, b = torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(4))
    opts = {"a": torch.optim.SGD([a], lr=1.0), "b": torch.optim.SGD([b], lr=1.0)}
    target = torch.full((4,), 10.0)
    run_update(opts, Update({"a": -(a * target).sum(), "b": -(b * target).sum()}), clip={"a": 1.0})
    assert a.norm().item() == pytest.approx(1.0, rel=1e-5)  # clipped to norm 1
    assert b.norm().item() == pytest.approx(20.0, rel=1e-5)  # unclipped: |grad| = 10·√4


# --------------------------------------------------------------------------------------------
# A run end to end, resume and interruption
# --------------------------------------------------------------------------------------------
def _cfg(tmp_path, name="run", method="vae", steps=6, **extra):
    return build_config(method, "fake", overrides=tiny_overrides(method) + fast_train_overrides(steps, **extra),
                        out=str(tmp_path / name))


def test_run_directory_contents(tmp_path):
    run = train(_cfg(tmp_path, steps=4, tensorboard=True))
    assert (run / "config.yaml").is_file() and (run / "loss_curves.png").is_file()
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert all(math.isfinite(r["vae/loss"]) for r in rows)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["recon_00000004.png", "samples_00000004.png"]
    assert any((run / "tb").iterdir())
    ckpt = runs.latest_checkpoint(run)
    assert ckpt.name == "step-00000004" and (ckpt / "config.yaml").is_file()
    assert len(list((run / "checkpoints").glob("step-*"))) == 2  # keep_ckpts
    with pytest.raises(Exception, match="already holds a run"):
        train(_cfg(tmp_path, steps=4))


@pytest.mark.parametrize("method", ["vae", "wae-gan"])
def test_resume_equals_uninterrupted_run(tmp_path, method):
    full = train(_cfg(tmp_path, "full", method, steps=6))
    cut = train(_cfg(tmp_path, "cut", method, steps=6))
    # roll the second run back to its step-4 checkpoint, as if it had been killed at step 5
    import shutil
    shutil.rmtree(cut / "checkpoints" / "step-00000006")
    resume(cut)
    _assert_same_weights(_final_weights(full), _final_weights(cut))
    rows = [json.loads(l)["step"] for l in (cut / "metrics.jsonl").read_text().splitlines()]
    assert rows == [2, 4, 6]  # the log was rewound to the checkpoint, not duplicated


def test_resume_with_lr_schedule_and_balanced_batches(tmp_path):
    kw = dict(lr_schedule="cosine", balanced_batches=True, batch_size=20)
    full = train(_cfg(tmp_path, "full", steps=6, **kw))
    cut = train(_cfg(tmp_path, "cut", steps=6, keep_ckpts=3, **kw))
    import shutil
    for later in ("step-00000004", "step-00000006"):  # back to step 2, as if killed at step 3
        shutil.rmtree(cut / "checkpoints" / later)
    assert runs.latest_checkpoint(cut).name == "step-00000002"
    resume(cut)
    _assert_same_weights(_final_weights(full), _final_weights(cut))


def test_sigterm_checkpoints_and_resume_matches(tmp_path, monkeypatch):
    import os
    import signal

    import genae.trainer as gt

    full = train(_cfg(tmp_path, "full", steps=6, ckpt_every=100))
    real_next = gt.BatchSampler.next
    calls = {"n": 0}

    def next_and_signal(self):
        calls["n"] += 1
        if calls["n"] == 3:  # a SIGTERM arrives during step 3
            os.kill(os.getpid(), signal.SIGTERM)
        return real_next(self)

    monkeypatch.setattr(gt.BatchSampler, "next", next_and_signal)
    with pytest.raises(Interrupted, match="genae resume"):
        train(_cfg(tmp_path, "cut", steps=6, ckpt_every=100))
    monkeypatch.setattr(gt.BatchSampler, "next", real_next)
    assert runs.latest_checkpoint(tmp_path / "cut").name == "step-00000003"
    resume(tmp_path / "cut")
    _assert_same_weights(_final_weights(full), _final_weights(tmp_path / "cut"))


@dataclass
class _NaNConfig:
    bad_step: int = 3
    lr: float = 0.1


class _NaNAt(Method):
    """A linear autoencoder whose loss turns into NaN at ``bad_step`` (engine test double)."""

    Config = _NaNConfig

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.lin = torch.nn.Linear(math.prod(info.shape), 2)

    def optimizers(self):
        return {"ae": torch.optim.SGD(self.parameters(), lr=self.cfg.lr)}

    def train_step(self, batch: Batch, step: int):
        fit = self.lin(batch.x.flatten(1)).pow(2).mean()
        poison = torch.tensor(float("nan")) if step == self.cfg.bad_step else torch.tensor(0.0)
        yield Update({"ae": fit + poison}, {"ae/fit": fit.detach(), "ae/poison": poison})


class _PriorProbe(_NaNAt):
    """Records what the trainer hands to ``fit_prior``; its buffer must reach the checkpoint."""

    capabilities = frozenset({"fit_prior"})

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.register_buffer("prior_mean", torch.zeros(math.prod(info.shape)))
        self.calls = []

    def fit_prior(self, x, y):
        assert not torch.is_grad_enabled() and not self.training
        self.calls.append((x.shape[0], None if y is None else y.shape[0]))
        self.prior_mean.copy_(x.flatten(1).mean(0))


def test_fit_prior_hook_before_images_and_checkpoints(tmp_path, monkeypatch):
    from genae.data import DataConfig, load_dataset, to_range
    monkeypatch.setitem(METHODS, "prior-test", MethodSpec(_PriorProbe, "test double", {"bad_step": -1}))
    cfg = build_config("prior-test", "fake", overrides=fast_train_overrides(4, prior_examples=100),
                       out=str(tmp_path / "r"))
    train(cfg)
    method = runs.load_run(tmp_path / "r")
    x = to_range(load_dataset(DataConfig("fake"), "train").x[:100], "unit")
    torch.testing.assert_close(method.prior_mean, x.flatten(1).mean(0))


def test_nonfinite_loss_stops_naming_player_and_term(tmp_path, monkeypatch):
    monkeypatch.setitem(METHODS, "nan-test", MethodSpec(_NaNAt, "test double"))
    cfg = build_config("nan-test", "fake", overrides=fast_train_overrides(8), out=str(tmp_path / "r"))
    with pytest.raises(NonFiniteLoss) as e:
        train(cfg)
    assert (e.value.step, e.value.player, e.value.term) == (3, "ae", "ae/poison")
    ckpt = runs.latest_checkpoint(tmp_path / "r")
    assert ckpt.name == "step-00000002"
    assert all(torch.isfinite(v).all() for v in load_file(str(ckpt / "model.safetensors")).values())
    # with on_nonfinite=skip the run goes on past the bad step
    cfg = build_config("nan-test", "fake", overrides=fast_train_overrides(8, on_nonfinite="skip"),
                       out=str(tmp_path / "s"))
    train(cfg)
    assert runs.latest_checkpoint(tmp_path / "s").name == "step-00000008"


def test_interval_nan_check_stops_before_any_bad_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setitem(METHODS, "nan-test", MethodSpec(_NaNAt, "test double"))
    cfg = build_config("nan-test", "fake", out=str(tmp_path / "r"), overrides=fast_train_overrides(
        8, nan_check="interval", log_every=4, ckpt_every=2))
    with pytest.raises(NonFiniteLoss) as e:
        train(cfg)
    assert (e.value.step, e.value.player) == (3, "ae")  # the step it happened, found at step 4
    assert runs.latest_checkpoint(tmp_path / "r").name == "step-00000002"
    with pytest.raises(ConfigError, match="nan_check=update"):
        build_config("nan-test", "fake", overrides=["train.nan_check='interval'", "train.on_nonfinite='skip'"])


def test_bf16_autocast_runs_on_cpu(tmp_path):
    run = train(_cfg(tmp_path, steps=2, amp="bf16"))
    assert all(torch.isfinite(v).all() for v in _final_weights(run).values())


def test_method_dataset_mismatch_is_rejected_before_any_file(tmp_path):
    cfg = build_config("vae", "fake", overrides=fast_train_overrides(2, balanced_batches=True, batch_size=4),
                       out=str(tmp_path / "r"))
    with pytest.raises(ConfigError, match="batch_size"):
        train(cfg)
    assert not (tmp_path / "r").exists()


def test_weights_that_no_longer_fit_name_the_commit_that_trained_the_run(tmp_path):
    """A checkpoint whose shapes do not fit today's networks (genae's networks changed, e.g. lsr-gan's
    discriminator in issue 37) is a one-line error naming the run's commit beside this genae's."""
    run = train(_cfg(tmp_path, steps=2))
    ckpt = runs.latest_checkpoint(run)
    weights = load_file(str(ckpt / "model.safetensors"))
    key = next(iter(weights))
    weights[key] = torch.zeros(*weights[key].shape, 2)          # a layer of another shape
    method = runs.load_run(run)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "git_commit": "0123456789abcdef" * 2 + "01234567"}))
    with pytest.raises(GenaeError, match=r"genae's networks change.*run\.json: 0123456789") as e:
        runs.load_weights(method, weights, ckpt)
    assert "\n" not in str(e.value)
    (run / "run.json").write_text(json.dumps({**info, "git_commit": None}))
    with pytest.raises(GenaeError, match=r"\(was it edited\?\)"):
        runs.load_weights(method, weights, ckpt)


@pytest.mark.parametrize("flush, calls", [(True, [True, False]), (False, [])])
def test_flush_denormal_is_on_while_training_and_off_after(tmp_path, monkeypatch, flush, calls):
    """CPU training flushes subnormals to zero (train.flush_denormal, default on) and turns the
    process's setting back off when it ends; off, the setting is never touched."""
    seen = []
    real = torch.set_flush_denormal
    monkeypatch.setattr(torch, "set_flush_denormal", lambda on: seen.append(on) or real(on))
    train(_cfg(tmp_path, steps=2, flush_denormal=flush))
    assert seen == calls
    assert torch.tensor([1e-40]).mul(1.0).item() != 0.0   # the process is back to keeping subnormals
