"""CTRL (methods/ctrl.py): each player's loss is ∓J computed independently with the objectives, the
encoder step detaches X̂, batches missing a class are rejected, eq. 13 sampling, fit_prior buffers
in checkpoints, and `genae sample --class` end to end."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import TINY, fast_train_overrides, tiny_overrides
from genae import runs
from genae.cli import main
from genae.config import build_config
from genae.errors import ConfigError
from genae.methods import METHODS, Batch, DataInfo, Unsupported
from genae.objectives.rate_reduction import ctrl_binary_objective, ctrl_multi_objective, delta_r
from genae.trainer import run_update
from genae.training import train

INFO = DataInfo((1, 28, 28), 10, "image")
NAMES = ["ctrl-multi", "ctrl-binary", "ctrl-ce"]


def _build(name="ctrl-multi", info=INFO, **extra):
    torch.manual_seed(0)
    spec = METHODS[name]
    return spec.build(spec.config(**{**TINY[name], **extra}), info)


def _batch(n=20, k=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.rand((n, *INFO.shape), generator=g) * 2 - 1, torch.arange(n) % k)


def _reference_j(m, z, z_hat, y):
    """J(Z, Ẑ) written directly from the objectives (not through the method)."""
    c = m.cfg
    if c.objective == "multi":
        return ctrl_multi_objective(z, z_hat, y, 10, c.eps2, c.precision)[0]
    if c.objective == "binary":
        return ctrl_binary_objective(z, z_hat, c.eps2, c.precision)[0]
    bce = (F.binary_cross_entropy_with_logits(m.discriminators(z).gather(1, y[:, None]), torch.ones(len(y), 1))
           + F.binary_cross_entropy_with_logits(m.discriminators(z_hat).gather(1, y[:, None]), torch.zeros(len(y), 1)))
    return -(F.cross_entropy(m.classifier(z), y) + F.cross_entropy(m.classifier(z_hat), y) + bce)


@pytest.mark.parametrize("name", NAMES)
def test_encoder_loss_is_minus_j_and_decoder_loss_is_plus_j(name):
    m, batch = _build(name), _batch()
    opts = m.optimizers()
    steps = m.train_step(batch, 0)
    enc = next(steps)
    assert set(enc.losses) == {"encoder"}
    z = m.encoder(batch.x)
    z_hat = m.encoder(m.decoder(z).detach())
    torch.testing.assert_close(enc.losses["encoder"], -_reference_j(m, z, z_hat, batch.y))
    run_update(opts, enc)
    dec = next(steps)  # computed after the encoder moved: a fresh pass through the updated encoder
    assert set(dec.losses) == {"decoder"}
    z = m.encoder(batch.x)
    torch.testing.assert_close(dec.losses["decoder"], _reference_j(m, z, m.encoder(m.decoder(z)), batch.y))
    assert next(steps, None) is None


def test_reconstructions_are_detached_in_the_encoder_step():
    m, batch = _build(), _batch()
    params = list(m.encoder.parameters())
    update = next(m.train_step(batch, 0))
    got = torch.autograd.grad(update.losses["encoder"], params)

    def grad_of_minus_j(detach):
        z = m.encoder(batch.x)
        x_hat = m.decoder(z)
        loss = -ctrl_multi_objective(z, m.encoder(x_hat.detach() if detach else x_hat), batch.y, 10)[0]
        return torch.autograd.grad(loss, params)

    for a, b in zip(got, grad_of_minus_j(detach=True)):
        torch.testing.assert_close(a, b)
    assert any(not torch.allclose(a, b) for a, b in zip(got, grad_of_minus_j(detach=False)))


def test_delta_r_pre_step_comes_first_and_optimises_delta_r_of_real_data():
    m, batch = _build(n_enc_steps=2, delta_r_pre_step=True), _batch()
    updates = list(m.train_step(batch, 0))
    assert [list(u.losses) for u in updates] == [["encoder"], ["encoder"], ["decoder"]]
    torch.testing.assert_close(updates[0].losses["encoder"], -delta_r(m.encoder(batch.x), batch.y, 10))
    assert "encoder/pre_delta_r" in updates[0].logs and "encoder/J" in updates[1].logs
    with pytest.raises(ConfigError, match="n_enc_steps"):
        _build(delta_r_pre_step=True)
    with pytest.raises(ConfigError, match="objective=multi"):
        _build("ctrl-binary", n_enc_steps=2, delta_r_pre_step=True)


@pytest.mark.parametrize("name", ["ctrl-multi", "ctrl-ce"])
def test_batch_missing_a_class_is_rejected(name):
    m = _build(name)
    batch = _batch(n=18, k=9)  # no example of class 9
    with pytest.raises(ConfigError, match=r"class\(es\) \[9\] are missing"):
        next(m.train_step(batch, 0))
    with pytest.raises(ConfigError, match="labelled"):
        next(m.train_step(Batch(batch.x), 0))
    next(_build("ctrl-binary").train_step(Batch(batch.x), 0))  # LDR-Binary needs no labels


def test_config_checks():
    with pytest.raises(ConfigError, match="objective=binary"):
        _build("ctrl-multi", DataInfo((1, 28, 28), None))
    _build("ctrl-binary", DataInfo((1, 28, 28), None))
    with pytest.raises(ConfigError, match="needs images"):
        _build("ctrl-binary", DataInfo((16,), None, "vector"))
    with pytest.raises(ConfigError, match="image_size"):
        _build("ctrl-multi", arch="dcgan32")  # 28×28 data, 32×32 network
    with pytest.raises(ConfigError, match="model.objective"):
        _build("ctrl-multi", objective="ternary")


def _fitted(name="ctrl-multi", **extra):
    m = _build(name, **extra).eval()
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(200, *INFO.shape, generator=g) * 2 - 1, torch.arange(200) % 10
    with torch.no_grad():
        m.fit_prior(x, y)
    return m


def _features(m, n, y=None, seed=0):
    """What ``sample`` decodes: the decoder swapped for the identity."""
    decoder, m.decoder = m.decoder, nn.Identity()
    try:
        with torch.no_grad():
            return m.sample(n, y=y, generator=torch.Generator().manual_seed(seed))
    finally:
        m.decoder = decoder


def test_sampling_needs_a_fitted_prior():
    with pytest.raises(Unsupported, match="fit_prior"):
        _build().eval().sample(3)


def test_eq13_samples_lie_on_the_sphere_and_concentrate_as_alpha_goes_to_zero():
    m = _fitted()
    y = torch.full((500,), 3)
    z = _features(m, 500, y)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(500))
    centre = F.normalize(m.class_mean[3], dim=0)
    spread = []
    for alpha in (1.0, 0.1, 1e-3):
        m.cfg.alpha = alpha
        spread.append((_features(m, 500, y) - centre).norm(dim=1).mean())
    assert spread[0] > spread[1] > spread[2] and spread[2] < 1e-2
    assert m.sample(4, y=y[:4]).shape == (4, *INFO.shape)


def test_unconditional_sampling():
    m = _fitted()  # multi: classes drawn uniformly; same draws for the same generator
    torch.testing.assert_close(_features(m, 50, seed=1), _features(m, 50, seed=1))
    b = _fitted("ctrl-binary")  # binary: the pooled Gaussian of eq. 14 (r_unlabelled components)
    assert b.all_dirs.shape[1] == TINY["ctrl-binary"]["r_unlabelled"]
    torch.testing.assert_close(_features(b, 20).norm(dim=1), torch.ones(20))
    with pytest.raises(Unsupported, match="class"):
        _features(m, 2, torch.tensor([0, 10]))


def test_figures():
    m = _fitted()
    x, y = _batch(40).x, torch.arange(40) // 4
    figs = m.figures(x, y)
    assert any("heatmap" in k for k in figs) and any("interpolation" in k for k in figs)
    assert any("principal directions" in k for k in figs) and any("class-conditional" in k for k in figs)


def test_fit_prior_buffers_survive_save_and_load(tmp_path):
    cfg = build_config("ctrl-multi", "fake", overrides=tiny_overrides("ctrl-multi") + fast_train_overrides(2),
                       out=str(tmp_path / "run"))
    run = train(cfg)
    a, b = runs.load_run(run), runs.load_run(run)
    assert a.class_count.sum() > 0 and a.all_count > 0 and a.class_std.abs().sum() > 0
    for key in ("class_mean", "class_dirs", "class_std", "class_count", "all_mean", "all_dirs", "all_std"):
        torch.testing.assert_close(getattr(a, key), getattr(b, key), rtol=0, atol=0)
    y = torch.arange(10)
    assert torch.equal(a.sample(10, y, torch.Generator().manual_seed(0)),
                       b.sample(10, y, torch.Generator().manual_seed(0)))


def test_genae_sample_class_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "ctrl-multi", "--data", "fake", "--out", str(run)]
    for o in tiny_overrides("ctrl-multi") + fast_train_overrides(2):
        args += ["--set", o]
    assert main(args) == 0
    assert main(["sample", str(run), "--class", "3", "--n", "6", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    assert main(["sample", str(run), "--class", "10", "--out", str(tmp_path / "t.png")]) == 2
    assert "--class 10" in capsys.readouterr().err


def test_label_check_runs_every_step_on_cpu_and_once_on_an_accelerator(monkeypatch):
    """The every-class check needs the counts on the host: on a CPU batch it runs on every step; on
    an accelerator only on the first batch (no host synchronisation per step)."""
    from genae.errors import ConfigError
    from genae.methods import Batch
    m = _build("ctrl-multi", INFO)
    x = torch.rand(4, 1, 32, 32)
    missing = Batch(x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ConfigError, match="missing"):
        m._check_labels(missing)

    class OnDevice(torch.Tensor):       # a CPU tensor that reports an accelerator device
        @property
        def device(self):
            return torch.device("meta")

    full = Batch(x, torch.arange(10).as_subclass(OnDevice))
    fresh = _build("ctrl-multi", INFO)
    fresh._check_labels(full)                                   # first batch: checked
    assert fresh._check_labels(Batch(x, torch.tensor([0, 1]).as_subclass(OnDevice))) is not None
