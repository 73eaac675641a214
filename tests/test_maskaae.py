"""MaskAAE: the mask μ = 1 − exp(−θ) and its projection, the update order, masking of codes and
prior samples, the active-dimension threshold, the λ3 schedule, the fixed-mask baseline, and a
short deterministic run that masks out dimensions. (Gradient isolation of every update is the
contract test in test_methods.py; the synthetic generator's rank is tested in test_data.py.)"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from genae.data import DataConfig, load_dataset
from genae.errors import ConfigError
from genae.methods import METHODS, Batch, DataInfo
from genae.methods.maskaae import reference_lam3_every, variance_penalty
from genae.metrics import EvalContext, evaluate
from genae.trainer import player_params, run_update

VEC = DataInfo((16,), None, "vector")
SMALL = dict(latent_dim=6, hidden=32, depth=1, critic_hidden=16, n_critic=2)


def _build(info=VEC, **kw):
    torch.manual_seed(0)
    spec = METHODS["maskaae"]
    return spec.build(spec.config(**{**SMALL, **kw}), info)


def _set_mu(method, mu):
    with torch.no_grad():
        method.theta.copy_(-torch.log1p(-torch.tensor(mu)))


def test_mask_parameterisation_and_gradient():
    method = _build()
    theta = torch.tensor([0.0, 0.05, 0.5, 1.0, 3.0, 10.0])
    with torch.no_grad():
        method.theta.copy_(theta)
    mu = method.mask()
    torch.testing.assert_close(mu, 1 - torch.exp(-theta))
    (grad,) = torch.autograd.grad(mu.sum(), method.theta)
    torch.testing.assert_close(grad, torch.exp(-theta))  # dμ/dθ = exp(−θ)


def test_theta_initialised_uniform_and_stays_nonnegative():
    method = _build(init_max=2.0, mask_lr=1.0, lam3_every=1)
    assert (method.theta >= 0).all() and (method.theta <= 2.0).all()
    with torch.no_grad():
        method.theta.fill_(1e-3)  # μ ≈ 0: the polariser pushes θ below 0; a step of ~3 overshoots
    opts = method.optimizers()
    params = player_params(opts)
    x = torch.randn(16, 16, generator=torch.Generator().manual_seed(0))
    for step in range(3):
        for update in method.train_step(Batch(x), step):
            run_update(opts, update, params)
        assert (method.theta >= 0).all()
    assert (method.theta == 0).any(), "the projection never acted: the test does not test it"


def test_theta_init_min_bounds_the_draw_and_keeps_the_paper_draw_at_zero():
    paper = _build(init_max=5.0).theta.detach().clone()        # _build seeds torch with 0
    same = _build(init_max=5.0, init_min=0.0).theta.detach()
    assert torch.equal(paper, same)                    # init_min = 0 is U[0, a] exactly
    high = _build(init_max=5.0, init_min=2.5, latent_dim=256).theta.detach()
    assert (high >= 2.5).all() and (high <= 5.0).all() and high.std() > 0.5
    with pytest.raises(ConfigError, match="init_min"):
        _build(init_max=2.0, init_min=2.0)


@pytest.mark.parametrize("form", ["paper", "reference"])
def test_variance_penalty_against_numpy(form):
    g = torch.Generator().manual_seed(1)
    z, mu = torch.randn(10, 5, generator=g), torch.tensor([0.0, 0.1, 0.3, 0.8, 1.0])
    zn, mun = z.double().numpy(), mu.double().numpy()
    var = ((zn - zn.mean(0)) ** 2).mean(0)
    want = (np.exp(-10 * mun) * var).sum() if form == "paper" else (np.exp(-10 * mun ** 2) * var).mean()
    assert variance_penalty(z, mu, 10.0, form).item() == pytest.approx(want, rel=1e-5)
    method = _build(var_penalty=form)  # the autoencoder update logs the same penalty
    x = torch.randn(8, 16, generator=g)
    logged = next(iter(method.train_step(Batch(x), 0))).logs["autoencoder/var_penalty"]
    assert logged.item() == pytest.approx(
        variance_penalty(method.encoder(x), method.mask().detach(), 10.0, form).item(), rel=1e-5)
    with pytest.raises(ConfigError, match="var_penalty"):
        _build(var_penalty="mean")


def test_four_updates_in_order_with_their_players():
    method = _build(n_critic=3)
    assert set(method.optimizers()) == {"autoencoder", "critic", "encoder", "mask"}
    opt_params = {k: {id(p) for g in o.param_groups for p in g["params"]} for k, o in method.optimizers().items()}
    assert opt_params["mask"] == {id(method.theta)}
    assert opt_params["encoder"] == {id(p) for p in method.encoder.parameters()}
    order = [list(u.losses) for u in method.train_step(Batch(torch.randn(8, 16)), 0)]
    assert order == [["autoencoder"], ["critic"], ["critic"], ["critic"], ["encoder"], ["mask"]]


def test_mask_multiplies_codes_and_prior_samples():
    method = _build()
    _set_mu(method, [0.0, 0.3, 0.0, 0.9, 0.5, 0.0])
    off = method.mask() == 0
    assert off.sum() == 3
    seen = {"critic": [], "decoder": []}
    method.critic.register_forward_pre_hook(lambda mod, inp: seen["critic"].append(inp[0].detach()))
    method.decoder.register_forward_pre_hook(lambda mod, inp: seen["decoder"].append(inp[0].detach()))
    for _ in method.train_step(Batch(torch.randn(8, 16)), 0):
        pass
    # every critic input (codes, prior samples, GP interpolates) and every decoder input is masked
    assert len(seen["critic"]) >= 6 and len(seen["decoder"]) == 2
    for z in seen["critic"] + seen["decoder"]:
        assert (z[:, off] == 0).all() and (z[:, ~off] != 0).all()
    with torch.no_grad():
        x = torch.randn(5, 16)
        torch.testing.assert_close(method.encode(x), method.mask() * method.encoder(x))
        s = method.sample(7, generator=torch.Generator().manual_seed(3))
        z = torch.randn(7, 6, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(s, method.decoder(method.mask() * z))


def test_active_dims_threshold_and_metrics():
    method = _build()
    _set_mu(method, [0.0, 0.05, 0.099, 0.101, 0.5, 0.99])
    assert method.active_dims().tolist() == [False, False, False, True, True, True]
    ctx = EvalContext(DataConfig("synthetic", latent_dim=2, dim=16, n=200), n_samples=200)
    res = evaluate(method, ctx, ["active-dims", "nac", "fid"])
    assert res["active-dims"]["value"] == 3 and res["active-dims"]["active"] == [3, 4, 5]
    assert res["nac"]["n_dims"] == 3
    assert math.isfinite(res["fid"]["value"]) and res["fid"]["backbone"] == "raw"


def test_lam3_schedule():
    method = _build(latent_dim=8, lam3_every=10)
    assert [method.lam3(s) for s in (0, 9, 10, 25)] == [0.25, 0.25, 0.5, 1.0]
    assert method.lam3(10 ** 7) == 2048.0  # capped, no overflow
    assert reference_lam3_every(16) == 300 and reference_lam3_every(64) == 4 * 7200
    assert _build(latent_dim=16).lam3(300) == 2 / 16 * 2


def test_mask_warmup_skips_only_the_mask_update():
    method = _build(n_critic=1, mask_warmup=3)
    players = lambda step: [list(u.losses) for u in method.train_step(Batch(torch.randn(8, 16)), step)]
    assert players(0) == players(2) == [["autoencoder"], ["critic"], ["encoder"]]
    assert players(3) == [["autoencoder"], ["critic"], ["encoder"], ["mask"]]
    # λ3's doubling clock starts with the first mask update: the game after the warm-up is the
    # paper's schedule shifted by mask_warmup steps
    shifted, plain = _build(latent_dim=8, lam3_every=10, mask_warmup=25), _build(latent_dim=8, lam3_every=10)
    assert [shifted.lam3(s) for s in (0, 25, 34, 35, 50)] == [0.25, 0.25, 0.25, 0.5, 1.0]
    assert all(shifted.lam3(s + 25) == plain.lam3(s) for s in range(0, 200, 7))
    with pytest.raises(ConfigError, match="mask_warmup"):
        _build(mask_warmup=-1)


def test_mask_warmup_trains_without_scheduler_warnings(tmp_path):
    # the mask's LR schedule steps during the warm-up although its optimizer has not stepped yet
    from genae.config import build_config
    from genae.training import train
    cfg = build_config("maskaae", "synthetic", out=str(tmp_path / "run"), overrides=[
        "model.latent_dim=4", "model.hidden=16", "model.depth=1", "model.critic_hidden=16",
        "model.n_critic=1", "model.mask_warmup=3", "train.steps=5", "train.progress=False",
        "data.n=256", "data.latent_dim=2", "data.dim=8"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(cfg)
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]


def test_fixed_mask_baseline():
    method = _build(learn_mask=False)
    assert "mask" not in method.optimizers() and not method.theta.requires_grad
    assert (method.mask() == 1).all() and method.active_dims().all()
    updates = list(method.train_step(Batch(torch.randn(8, 16)), 0))
    assert [list(u.losses) for u in updates] == [["autoencoder"], ["critic"], ["critic"], ["encoder"]]
    assert "autoencoder/var_penalty" not in updates[0].logs


def test_figures_and_bce_images():
    method = _build(DataInfo((1, 28, 28), 10, "image"), recon="bce")
    x = torch.rand(10, 1, 28, 28)
    with torch.no_grad():
        assert ((method.sample(4) >= 0) & (method.sample(4) <= 1)).all()
        figs = method.figures(x, None)
    assert set(figs) == {"latent covariance", "mask"}
    with pytest.raises(Exception, match="model.recon"):
        _build(recon="bce")


def test_short_run_masks_out_dimensions():
    """Synthetic n = 2, m = 6, 300 steps of small nets: spurious dimensions are switched off."""
    torch.manual_seed(0)
    ds = load_dataset(DataConfig("synthetic", latent_dim=2, dim=16, n=2000, seed=0), "train")
    method = _build(ds.info, hidden=64, depth=2, critic_hidden=64, init_max=2.0, mask_lr=1e-2,
                    lam3_every=30)
    opts = method.optimizers()
    params = player_params(opts)
    g = torch.Generator().manual_seed(0)
    for step in range(300):
        x = ds.x[torch.randint(0, len(ds.x), (64,), generator=g)]
        for update in method.train_step(Batch(x), step):
            run_update(opts, update, params)
    m_active = int(method.active_dims().sum())
    assert 2 <= m_active < 6, method.mask()
