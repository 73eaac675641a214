"""Staged recipes and ``train.init_from`` (issue 25).

A toy two-stage recipe: stage 1 trains an autoencoder (encoder with BatchNorm + decoder), stage 2
trains a new classifier head on the encoder's codes with the encoder frozen.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from conftest import fast_train_overrides, tiny_overrides
from genae import runs
from genae.config import build_config
from genae.errors import GenaeError
from genae.methods import METHODS, MethodSpec
from genae.methods.base import Batch, Method, Stage, Update
from genae.training import resume, train

STAGE1 = 4


@dataclass
class _ToyConfig:
    stage1_steps: int = STAGE1
    lr: float = 0.01


class _TwoStage(Method):
    """Stage "ae": encoder (Linear → BatchNorm) + decoder, MSE. Stage "head": a linear classifier
    on the frozen encoder's codes, cross-entropy on the labels."""

    Config = _ToyConfig
    capabilities = frozenset({"encode", "decode", "reconstruct"})

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        d = math.prod(info.shape)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, 8), nn.BatchNorm1d(8))
        self.decoder = nn.Sequential(nn.Linear(8, d), nn.Unflatten(1, info.shape))
        self.head = nn.Linear(8, info.num_classes)

    def optimizers(self):
        return {"ae": torch.optim.SGD([*self.encoder.parameters(), *self.decoder.parameters()], lr=self.cfg.lr),
                "head": torch.optim.SGD(self.head.parameters(), lr=self.cfg.lr)}

    def stages(self):
        return (Stage("ae", ("ae",), self.cfg.stage1_steps), Stage("head", ("head",), None, ("encoder",)))

    def train_step(self, batch: Batch, step: int):
        if self.stage == "ae":
            loss = (self.decoder(self.encoder(batch.x)) - batch.x).pow(2).mean()
            yield Update({"ae": loss}, {"ae/loss": loss.detach()})
        else:
            loss = nn.functional.cross_entropy(self.head(self.encoder(batch.x)), batch.y)
            yield Update({"head": loss}, {"head/loss": loss.detach()})

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(METHODS, "two-stage", MethodSpec(_TwoStage, "test double"))


def _run(tmp_path, name, steps=8, **extra):
    return train(build_config("two-stage", "fake", overrides=fast_train_overrides(steps, **extra),
                              out=str(tmp_path / name)))


def _weights(run, step):
    return load_file(str(run / "checkpoints" / runs.checkpoint_name(step) / "model.safetensors"))


def test_frozen_encoder_and_its_batchnorm_do_not_move_in_stage_two(tmp_path, toy):
    run = _run(tmp_path, "r", ckpt_every=1, keep_ckpts=100)
    end1, end2 = _weights(run, STAGE1), _weights(run, 8)
    enc = [k for k in end1 if k.startswith("encoder.")]
    assert any("running_mean" in k for k in enc) and any("num_batches_tracked" in k for k in enc)
    for k in enc:  # weights *and* BatchNorm buffers bit-identical through stage 2
        assert torch.equal(end1[k], end2[k]), k
    assert not torch.equal(_weights(run, 1)["encoder.1.weight"], end1["encoder.1.weight"])  # stage 1 trains it
    assert not torch.equal(end1["head.weight"], end2["head.weight"])  # stage 2 trains the head
    for k in (k for k in end1 if k.startswith("head.")):
        assert torch.equal(_weights(run, 1)[k], end1[k])  # ... and only stage 2


def test_each_players_schedule_spans_its_own_stage(tmp_path, toy):
    run = _run(tmp_path, "r", ckpt_every=1, keep_ckpts=100, lr_schedule="linear")

    def lrs(step):
        state = runs.read_checkpoint(run / "checkpoints" / runs.checkpoint_name(step))[1]
        return {k: o["param_groups"][0]["lr"] for k, o in state["optimizers"].items()}

    # "ae" decays linearly to 0 over its 4 steps; "head" starts at full lr at step 4 and reaches 0 at 8
    assert [lrs(s)["ae"] for s in (1, 2, 4)] == pytest.approx([0.01 * 0.75, 0.01 * 0.5, 0.0])
    assert [lrs(s)["head"] for s in (1, 4)] == pytest.approx([0.01, 0.01])
    assert [lrs(s)["head"] for s in (6, 8)] == pytest.approx([0.01 * 0.5, 0.0])


@pytest.mark.parametrize("cut_at", [STAGE1 - 2, STAGE1, STAGE1 + 2])
def test_resume_across_the_stage_boundary_equals_the_uninterrupted_run(tmp_path, toy, cut_at):
    full = _run(tmp_path, "full", ckpt_every=2, keep_ckpts=100)
    cut = _run(tmp_path, "cut", ckpt_every=2, keep_ckpts=100)
    for ckpt in runs.checkpoint_dirs(cut):
        if runs.checkpoint_step(ckpt) > cut_at:
            shutil.rmtree(ckpt)
    resume(cut)
    a, b = _weights(full, 8), _weights(cut, 8)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stages_must_add_up_to_train_steps(tmp_path, toy):
    cfg = build_config("two-stage", "fake", overrides=fast_train_overrides(8) + ["model.stage1_steps=9"],
                       out=str(tmp_path / "r"))
    with pytest.raises(GenaeError, match="last 9 steps"):
        train(cfg)


# --------------------------------------------------------------------------------------------
# init_from
# --------------------------------------------------------------------------------------------
def test_init_from_copies_named_sub_networks(tmp_path):
    from genae.data import DataConfig, load_dataset

    src = train(build_config("vae", "fake", overrides=tiny_overrides("vae") + fast_train_overrides(4),
                             out=str(tmp_path / "src")))
    made = build_config("vae", "fake", overrides=tiny_overrides("vae") + fast_train_overrides(1)
                        + [f"train.init_from='{src}@2:encoder'"], out=str(tmp_path / "from"))
    source = runs.load_run(src, step=2)
    torch.manual_seed(0)
    method = runs.build_method(made, load_dataset(DataConfig("fake")).info)
    before = {k: v.clone() for k, v in method.decoder.state_dict().items()}
    assert runs.init_from(method, made.train.init_from) == ["encoder"]
    for k, v in source.encoder.state_dict().items():
        assert torch.equal(method.encoder.state_dict()[k], v), k
    for k, v in method.decoder.state_dict().items():  # not named: keeps its own initialisation
        assert torch.equal(v, before[k]), k
    run = train(made)  # the same through the trainer (stderr names what was initialised)
    assert runs.latest_checkpoint(run).name == "step-00000001"


def test_init_from_shape_mismatch_is_a_clear_error_and_changes_nothing(tmp_path):
    src = train(build_config("vae", "fake", overrides=tiny_overrides("vae") + fast_train_overrides(2),
                             out=str(tmp_path / "src")))
    sets = [o for o in tiny_overrides("vae") if "latent_dim" not in o] + ["model.latent_dim=6"]
    cfg = build_config("vae", "fake", overrides=sets + fast_train_overrides(2) + [f"train.init_from='{src}'"],
                       out=str(tmp_path / "r"))
    with pytest.raises(GenaeError, match=r"has shape \(\d+, \d+\) in .* but \(\d+, \d+\) here"):
        train(cfg)
    assert not (tmp_path / "r").exists()
    cfg = build_config("vae", "fake", overrides=tiny_overrides("vae") + fast_train_overrides(2)
                       + [f"train.init_from='{src}:critic'"], out=str(tmp_path / "r2"))
    with pytest.raises(GenaeError, match="no sub-network 'critic'"):
        train(cfg)
