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
from genae.trainer import backward_update, player_params, resume, step_update, train
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
