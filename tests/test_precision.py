"""bf16 on the CPU (issue 38): ``train.amp=auto`` chooses by measurement, records the choice, and
a resume keeps it on any machine; every registered method trains under bf16 autocast with its
weights, gradients and optimizer state in fp32."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from conftest import fast_train_overrides, tiny_overrides
from genae import precision
from genae.config import build_config
from genae.methods import METHODS
from genae.trainer import backward_update, player_params, step_update
from genae.training import resume, train
from test_methods import _batch, _build     # the contract's tiny builds and batches


def test_the_probe_measures_a_ratio():
    r = precision.bf16_matmul_speedup(n=64, k=128, repeats=1)
    assert 0 < r < float("inf")


@pytest.mark.parametrize("speedup, choice", [(7.0, "bf16"), (1.6, "bf16"), (1.2, "none"), (0.3, "none")])
def test_auto_chooses_by_the_measured_ratio(monkeypatch, speedup, choice):
    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda: speedup)
    got, why = precision.resolve_amp(torch.device("cpu"))
    assert got == choice and f"{speedup:.1f}×" in why


def _auto_run(tmp_path):
    cfg = build_config("vae", "fake", overrides=tiny_overrides("vae") + fast_train_overrides(2, amp="auto"),
                       out=str(tmp_path / "r"))
    return train(cfg)


def test_auto_is_recorded_and_a_resume_keeps_it_on_another_machine(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda: 7.0)
    run = _auto_run(tmp_path)
    assert "train.amp=auto -> bf16" in capsys.readouterr().err
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["amp"] == "bf16"
    note = json.loads((run / "run.json").read_text())["amp_auto"]
    assert note.startswith("bf16: ") and "7.0×" in note
    # the same run continued where bf16 would not be chosen: it keeps its dtype and its note
    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda: 0.5)
    resume(run, steps=4)
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["amp"] == "bf16"
    info = json.loads((run / "run.json").read_text())
    assert info["step"] == 4 and info["amp_auto"] == note


def test_auto_where_bf16_is_slow_trains_in_fp32(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda: 0.5)
    run = _auto_run(tmp_path)
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["amp"] == "none"
    assert json.loads((run / "run.json").read_text())["amp_auto"].startswith("none: ")


def test_a_run_without_auto_has_no_note(tmp_path):
    cfg = build_config("vae", "fake", overrides=tiny_overrides("vae") + fast_train_overrides(2),
                       out=str(tmp_path / "r"))
    assert "amp_auto" not in json.loads((train(cfg) / "run.json").read_text())


@pytest.mark.parametrize("amp, net, expected", [("bf16", "conv", True), ("fp16", "conv", True),
                                                 ("none", "conv", False), ("bf16", "mlp", False)])
def test_channels_last_auto_is_for_convolutions_in_low_precision(amp, net, expected):
    method = _build("dcgan", net=net)
    layout, why = precision.resolve_channels_last("auto", amp, method)
    assert layout is expected and why
    assert precision.resolve_channels_last(True, "none", method) == (True, "")   # set by hand: kept
    assert precision.resolve_channels_last(False, "bf16", method) == (False, "")


def _conv_bf16(tmp_path, name, steps, layout="auto"):
    overrides = tiny_overrides("dcgan") + ["model.net='conv'"] + fast_train_overrides(steps, amp="bf16", channels_last=layout)
    return build_config("dcgan", "fake", overrides=overrides, out=str(tmp_path / name))


def test_channels_last_auto_trains_a_conv_net_in_bf16_channels_last_and_resumes_exactly(tmp_path, capsys):
    from test_train import _assert_same_weights, _final_weights

    auto = train(_conv_bf16(tmp_path, "auto", 4))
    assert "train.channels_last=auto -> true" in capsys.readouterr().err
    assert yaml.safe_load((auto / "config.yaml").read_text())["train"]["channels_last"] == "auto"
    assert json.loads((auto / "run.json").read_text())["channels_last_auto"].startswith("True: ")
    by_hand = train(_conv_bf16(tmp_path, "by-hand", 4, layout=True))
    _assert_same_weights(_final_weights(auto), _final_weights(by_hand))  # auto is the explicit choice
    cut = train(_conv_bf16(tmp_path, "cut", 2))
    resume(cut, steps=4)
    _assert_same_weights(_final_weights(cut), _final_weights(auto))  # a resume re-derives it, bit for bit


def test_a_channels_last_run_in_fp32_resumes_exactly(tmp_path):
    """The optimizer's restored moments take their parameters' layout (trainer._state_like_params);
    before, a channels-last resume differed from the uninterrupted run by 6e-4 in fp32 as in bf16."""
    from test_train import _assert_same_weights, _final_weights

    def cfg(name, steps):
        overrides = tiny_overrides("dcgan") + ["model.net='conv'"] + fast_train_overrides(steps, channels_last=True)
        return build_config("dcgan", "fake", overrides=overrides, out=str(tmp_path / name))

    full = train(cfg("full", 4))
    cut = train(cfg("cut", 2))
    resume(cut, steps=4)
    _assert_same_weights(_final_weights(cut), _final_weights(full))


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_under_bf16_autocast_with_fp32_state(name):
    """Two steps of every update under CPU bf16 autocast: finite losses, weights of every stepped
    player moved and still fp32, fp32 gradients and optimizer moments (autocast casts copies, never
    the weights)."""
    method = _build(name)
    opts = method.optimizers()
    params = player_params(opts)
    before = {id(p): p.detach().clone() for ps in params.values() for p in ps}
    batch = _batch(method)
    stepped = set()
    for step in range(2):
        updates = method.train_step(batch, step)
        while True:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                update = next(updates, None)
            if update is None:
                break
            for pl, loss in update.losses.items():
                assert torch.isfinite(loss), f"{name}: {pl} loss {loss} under bf16"
            backward_update(update, params)
            for pl in update.losses:
                stepped.add(pl)
                assert all(p.grad is None or p.grad.dtype == torch.float32 for p in params[pl])
            step_update(update, opts, params, {})
    for pl in stepped:
        assert all(p.dtype == torch.float32 for p in params[pl]), f"{name}: {pl} weights are no longer fp32"
        moved = [not torch.equal(before[id(p)], p.detach()) for p in params[pl]]
        assert any(moved), f"{name}: no weight of {pl} moved under bf16"
        for p in params[pl]:
            for v in opts[pl].state.get(p, {}).values():
                assert not torch.is_tensor(v) or v.dtype == torch.float32 or v.dim() == 0
