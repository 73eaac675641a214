"""IMAE and its hybrid-latent baselines: Gumbel-softmax, each objective's terms against closed forms
or float64 NumPy, JointVAE's capacities, the temperature schedule, the hybrid inference contract,
IMAE learning a categorical code that matches clusters, and the IMAE metrics (informativeness, TC,
β-TCVAE's MIG estimator) against known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genae.errors import ConfigError
from genae.methods import METHODS, DataInfo
from genae.metrics import disentangle
from genae.objectives import categorical_kl_uniform, gaussian_kl, gumbel_softmax

INFO = DataInfo((1, 28, 28), 10, "image", 1000)
VECTOR = DataInfo((2,), 3, "vector", 600)


def _build(name: str, info: DataInfo = INFO, **kw):
    spec = METHODS[name]
    base = dict(latent_dim=4, n_categories=3, net="mlp", hidden=16)
    if len(info.shape) == 1:
        base["likelihood"] = "gaussian"
    if spec.defaults.get("n_categories") == 0:
        base.pop("n_categories")
    return spec.build(spec.config(**{**base, **kw}), info)


def _np_entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p)).sum(-1)


# --- Gumbel-softmax ---------------------------------------------------------------------------------

def test_gumbel_softmax_argmax_follows_the_categorical_and_rows_sum_to_one():
    logits = torch.tensor([[1.0, 0.0, -1.0, 2.0]]).repeat(40000, 1)
    g = torch.Generator().manual_seed(0)
    draw = gumbel_softmax(logits, 0.67, generator=g)
    assert torch.allclose(draw.sum(1), torch.ones(len(draw)), atol=1e-6)
    freq = torch.bincount(draw.argmax(1), minlength=4).double() / len(draw)
    target = logits[0].double().softmax(0)
    assert torch.allclose(freq, target, atol=0.01)                  # 3σ ≈ 0.007 at n = 40,000
    cold = gumbel_softmax(logits[:2000], 1e-3, generator=g)
    assert (cold.max(1).values > 0.99).double().mean() > 0.98       # τ → 0: one-hot (but for near ties)
    hot = gumbel_softmax(logits[:2000], 1e4, generator=g)
    assert torch.allclose(hot, torch.full_like(hot, 0.25), atol=1e-3)  # τ → ∞: uniform


def test_gumbel_softmax_is_differentiable_in_the_logits():
    logits = torch.randn(5, 3, requires_grad=True)
    (gumbel_softmax(logits, 0.5)[:, 0]).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_categorical_kl_uniform_matches_numpy():
    logits = torch.randn(6, 5, dtype=torch.float64)
    p = logits.softmax(1).numpy()
    assert np.allclose(categorical_kl_uniform(logits).numpy(), math.log(5) - _np_entropy(p))


# --- each objective's terms ---------------------------------------------------------------------------

def _posterior(b: int = 32, d: int = 4, k: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(b, d, generator=g, dtype=torch.float64)
    logvar = 0.3 * torch.randn(b, d, generator=g, dtype=torch.float64)
    z = mu + (0.5 * logvar).exp() * torch.randn(b, d, generator=g, dtype=torch.float64)
    logits = torch.randn(b, k, generator=g, dtype=torch.float64)
    return z, mu, logvar, logits


def test_beta_tcvae_terms_sum_to_the_sampled_kl():
    """I(x; z) + TC + Σ_k KL_k = mean_i [log q(z_i|x_i) − log p(z_i)] exactly (the decomposition of
    Chen et al. eq. 2; the estimator's constants cancel), for both estimators and with β = 1."""
    z, mu, logvar, _ = _posterior()
    log_q = (-0.5 * ((z - mu) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi))).sum(1)
    log_p = (-0.5 * (z ** 2 + math.log(2 * math.pi))).sum(1)
    for est in ("mws", "mss"):
        m = _build("beta-tcvae", beta=1.0, estimator=est)
        t = m._beta_tcvae(z, mu, logvar, None, 0)
        assert set(t) == {"mi", "tc", "dim_kl"}
        assert torch.allclose(t["mi"] + t["tc"] + t["dim_kl"], (log_q - log_p).mean())
        t3 = _build("beta-tcvae", beta=3.0, estimator=est)._beta_tcvae(z, mu, logvar, None, 0)
        assert torch.allclose(t3["tc"], 3 * t["tc"]) and torch.allclose(t3["mi"], t["mi"])


def test_beta_vae_hybrid_is_beta_times_both_kls():
    z, mu, logvar, logits = _posterior()
    m = _build("beta-vae-hybrid", beta=4.0)
    t = m._jointvae(z, mu, logvar, logits, step=12345)
    kl_z = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
    kl_y = (math.log(3) - _np_entropy(logits.softmax(1).numpy())).mean()
    assert torch.allclose(t["kl_z"], 4 * kl_z) and np.isclose(t["kl_y"].item(), 4 * kl_y)


def test_jointvae_capacities_grow_linearly_and_cap_y_at_log_k():
    m = _build("jointvae", capacity_z=5.0, capacity_y=5.0, capacity_steps=1000)
    assert m.capacities(0) == (0.0, 0.0)
    cz, cy = m.capacities(500)
    assert cz == pytest.approx(2.5) and cy == pytest.approx(math.log(3))   # 2.5 > log 3: capped
    assert m.capacities(10 ** 6)[0] == pytest.approx(5.0)
    z, mu, logvar, logits = _posterior()
    t = m._jointvae(z, mu, logvar, logits, 500)
    assert torch.allclose(t["kl_z"], m.cfg.beta * (gaussian_kl(mu, logvar).mean() - 2.5).abs())


def test_imae_terms_match_numpy_and_gamma_defaults_to_two_beta():
    z, mu, logvar, logits = _posterior()
    m = _build("imae", beta=3.0)
    t = m._imae(z, mu, logvar, logits, 0)
    p = logits.softmax(1).numpy()
    mi = _np_entropy(p.mean(0)) - _np_entropy(p).mean()
    assert np.isclose(t["neg_mi"].item(), -3.0 * mi)
    t2 = _build("imae", beta=3.0, tc_weight=1.5)._imae(z, mu, logvar, logits, 0)
    assert torch.allclose(t["tc"], 4 * t2["tc"])                     # γ = 6 = 2β against γ = 1.5
    assert torch.allclose(t["neg_dim_kl"], t2["neg_dim_kl"])


def test_infovae_aggregate_kl_of_y_matches_numpy():
    z, mu, logvar, logits = _posterior()
    m, m1 = _build("infovae", beta=2.0), _build("infovae", beta=2.0, mmd_weight=1.0)
    torch.manual_seed(0)
    t = m._infovae(z.float(), mu.float(), logvar.float(), logits, 0)
    q = logits.softmax(1).numpy().mean(0)
    assert np.isclose(t["kl_qy"].item(), 2.0 * (math.log(3) - _np_entropy(q)))
    assert t["mmd_z"].shape == ()
    # λ (mmd_weight, default 1000) scales MMD² inside β: the same prior draws under λ = 1 give a thousandth
    torch.manual_seed(0)
    t1 = m1._infovae(z.float(), mu.float(), logvar.float(), logits, 0)
    assert torch.allclose(t["mmd_z"], 1000.0 * t1["mmd_z"])


def test_temperature_schedule():
    m = _build("imae", temperature=1.0, temperature_min=0.5, anneal_rate=1e-3, anneal_every=100)
    assert m.temperature(0) == 1.0 and m.temperature(99) == 1.0
    assert m.temperature(150) == pytest.approx(math.exp(-0.1))
    assert m.temperature(10 ** 5) == 0.5
    assert _build("imae").temperature(10 ** 6) == pytest.approx(0.67)   # fixed by default


def test_config_errors_say_what_to_change():
    with pytest.raises(ConfigError, match="dataset_size"):
        _build("imae", DataInfo((1, 28, 28), 10, "image"))
    with pytest.raises(ConfigError, match="vat_weight"):
        _build("imae", n_categories=0)
    with pytest.raises(ConfigError, match="net=mlp"):
        _build("imae", VECTOR, net="imae-table1")
    with pytest.raises(ConfigError, match="n_categories=1"):
        _build("imae", n_categories=1)


def test_paper_networks_match_table_1():
    m = _build("imae", net="imae-table1", latent_dim=10, n_categories=10)
    widths = [l.out_features for l in m.encoder.modules() if isinstance(l, torch.nn.Linear)]
    assert widths == [500, 1000, 2 * 10 + 10]
    bns = [l for l in m.encoder.modules() if isinstance(l, torch.nn.BatchNorm1d)]
    assert len(bns) == 2
    dec = [l.out_features for l in m.decoder.modules() if isinstance(l, torch.nn.Linear)]
    assert dec == [500, 500, 784]


def test_hybrid_inference_contract():
    m = _build("imae").eval()
    x = torch.rand(5, 1, 28, 28)
    q = m.posterior(x)
    assert q.kind == "hybrid" and q.mean.shape == (5, 4) and q.logits.shape == (5, 3)
    code = m.encode(x)
    assert code.shape == (5, 7) and torch.equal(code[:, :3].argmax(1), q.logits.argmax(1))
    assert torch.equal(code[:, :3].sum(1), torch.ones(5)) and torch.equal(code[:, 3:], q.mean)
    assert torch.allclose(m.cluster(x).sum(1), torch.ones(5))
    s = m.sample(6, y=torch.tensor([0, 1, 2, 0, 1, 2]))
    assert s.shape == (6, 1, 28, 28)
    # sample(y=k) decodes with category k: equal to decoding [one-hot k, z] at the same z
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    y = torch.full((4,), 2)
    z = torch.randn(4, 4, generator=g2)
    ref = m.decode(torch.cat([torch.nn.functional.one_hot(y, 3).float(), z], 1))
    assert torch.allclose(m.sample(4, y=y, generator=g1), ref)
    draw = m.posterior_sample(x, generator=torch.Generator().manual_seed(0))
    assert draw.shape == (5, 7) and torch.equal(draw[:, :3].sum(1), torch.ones(5))


@pytest.mark.parametrize("name", ["imae", "jointvae", "infovae", "beta-vae-hybrid", "beta-tcvae"])
def test_training_step_decreases_nothing_unexpected_and_vat_keeps_bn_buffers(name):
    """One step: finite loss with every declared term logged; VAT's passes leave BatchNorm's running
    statistics as one ordinary forward pass leaves them (the paper networks have BatchNorm)."""
    m = _build(name, net="imae-table1")
    m.train()
    x = torch.rand(16, 1, 28, 28)
    from genae.methods import Batch
    upd = next(m.train_step(Batch(x, None), 0))
    assert torch.isfinite(upd.losses["vae"])
    assert ("vae/vat" in upd.logs) == (m.cfg.vat_weight > 0)
    bn = next(l for l in m.encoder.modules() if isinstance(l, torch.nn.BatchNorm1d))
    assert bn.num_batches_tracked.item() == 1                       # the clean pass only


def test_imae_learns_a_code_that_matches_clusters():
    """Three well-separated Gaussian clusters in 2-D: IMAE's y recovers them (I(x; y) is maximised
    by confident, balanced assignments). The objective has local optima where two clusters share a
    category (one of three initialisations here), so the claim is on the median of three seeds."""
    from genae.methods import Batch
    from genae.metrics.clustering import clustering_accuracy

    accs = []
    for seed in range(3):
        torch.manual_seed(seed)
        centres = torch.tensor([[-6.0, 0.0], [6.0, 0.0], [0.0, 8.0]])
        y = torch.arange(3).repeat(200)
        x = centres[y] + 0.7 * torch.randn(600, 2)
        m = _build("imae", VECTOR, beta=1.0, vat_weight=0.0, hidden=32, optimizer="adam", lr=3e-3,
                   latent_dim=2)
        opt = m.optimizers()["vae"]
        for step in range(300):
            idx = torch.randint(0, 600, (100,))
            loss = next(m.train_step(Batch(x[idx], None), step)).losses["vae"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.eval()
        with torch.no_grad():
            accs.append(clustering_accuracy(y.numpy(), m.cluster(x).argmax(1).numpy()))
    assert np.median(accs) > 0.95 and min(accs) >= 0.6


# --- metrics ------------------------------------------------------------------------------------------

def test_informativeness_closed_form():
    rng = np.random.default_rng(0)
    mu = rng.normal(0, 2.0, (20000, 2)) * np.array([1.0, 0.0])      # Var[μ] = 4, 0
    logvar = np.log(np.full((20000, 2), 0.5))
    out = disentangle.gaussian_informativeness(mu, logvar)
    assert np.isclose(out["informativeness"][0], 0.5 * math.log(1 + 4 / 0.5), rtol=0.02)
    assert out["informativeness"][1] == 0.0 and np.allclose(out["mean_var"], 0.5)


def test_total_correlation_estimate_of_a_correlated_gaussian():
    """Posteriors N(μ_i, s²I) with μ ~ N(0, Σ − s²I): the aggregate is N(0, Σ), Σ with unit variances
    and correlation ρ, whose TC is −½·log(1 − ρ²)."""
    rng = np.random.default_rng(1)
    rho, s2, n = 0.4, 0.5, 3000
    cov = np.array([[1 - s2, rho], [rho, 1 - s2]])
    mu = rng.multivariate_normal([0, 0], cov, n)
    logvar = np.full((n, 2), math.log(s2))
    z = mu + math.sqrt(s2) * rng.normal(size=(n, 2))
    assert disentangle.total_correlation_estimate(z, mu, logvar) == pytest.approx(-0.5 * math.log(1 - rho ** 2),
                                                                                  abs=0.03)
    indep = disentangle.total_correlation_estimate(z[:, :1].repeat(2, 1) * 0 + rng.normal(size=(n, 2)),
                                                   np.zeros((n, 2)), np.zeros((n, 2)))
    assert abs(indep) < 0.02                                        # N(0, I) draws: TC 0


def test_mig_sampled_known_answers():
    """z_1 reads factor 1 and z_2 factor 2 (sharp posteriors): MIG ≈ 1; both dims reading factor 1:
    its gap ≈ 0. A categorical code that is factor 2 (appendix-E variant) takes factor 2's gap."""
    rng = np.random.default_rng(2)
    n = 2000
    v = rng.integers(0, 4, (n, 2))
    logvar = np.full((n, 2), math.log(1e-4))
    mu = v.astype(float) + 0.0
    z = mu + 1e-2 * rng.normal(size=(n, 2))
    good = disentangle.mig_sampled(z, mu, logvar, v)
    assert good["mig"] > 0.95
    same = np.stack([mu[:, 0], mu[:, 0]], 1)
    bad = disentangle.mig_sampled(same + 1e-2 * rng.normal(size=(n, 2)), same, logvar, v[:, :1])
    assert bad["mig"] < 0.05
    probs = np.eye(4)[v[:, 1]] * 0.999 + 0.001 / 4
    noise = rng.normal(size=(n, 2))
    with_y = disentangle.mig_sampled(noise, np.zeros((n, 2)), np.zeros((n, 2)), v, probs)
    assert with_y["mi"].shape == (3, 2) and with_y["per_factor"][1] > 0.95 and with_y["per_factor"][0] < 0.05


def test_mig_sampled_progress_ticks_add_up_to_its_stated_work(monkeypatch, tmp_path):
    """``tick`` receives exactly ``mig_sampled_pairs`` (point, example) pairs (N² + Σ_v N_v² per
    factor) and changes no number; the ``mig-sampled`` metric shows one such bar only with
    ``progress`` on (off for ``genae eval --json``)."""
    rng = np.random.default_rng(5)
    n = 300
    v = np.stack([rng.integers(0, 3, n), rng.integers(0, 5, n)], 1)
    z, mu, logvar = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) * 0.1
    seen = []
    ticked = disentangle.mig_sampled(z, mu, logvar, v, tick=seen.append)
    want = n * n + sum(int((np.bincount(v[:, k]) ** 2).sum()) for k in range(2))
    assert sum(seen) == disentangle.mig_sampled_pairs(v) == want and len(seen) > 3
    np.testing.assert_array_equal(ticked["mi"], disentangle.mig_sampled(z, mu, logvar, v)["mi"])

    from genae import metrics as M
    from genae.data import DataConfig, load_dataset
    from test_qmm import _Bar  # stands in for tqdm.auto.tqdm

    monkeypatch.setattr("tqdm.auto.tqdm", _Bar)
    monkeypatch.setattr(_Bar, "made", [])
    cfg = DataConfig("synthetic", n=200, latent_dim=2, dim=6)
    m = _build("imae", load_dataset(cfg, "train").info, latent_dim=3, n_categories=2, vat_weight=0.0)
    for progress in (False, True):
        ctx = M.EvalContext(cfg, cache_dir=str(tmp_path), batch_size=64, progress=progress)
        ds = ctx.dataset()
        ds.x, ds.factors = ds.x[:150], ds.factors[:150]  # a small reference split
        assert np.isfinite(M.evaluate(m, ctx, ["mig-sampled"])["mig-sampled"]["value"])
    (bar,) = [b for b in _Bar.made if "mig-sampled" in b.desc]
    assert bar.n == bar.total > 0 and bar.closed


def test_latent_metrics_of_a_hybrid_method_end_to_end(tmp_path):
    """mig (with the appendix-E ``with_y``), mig-sampled (both variants from one estimate),
    informativeness, tc and cluster-acc on a hybrid posterior, through ``metrics.evaluate``."""
    from genae import metrics as M
    from genae.data import DataConfig, load_dataset

    cfg = DataConfig("synthetic", n=200, latent_dim=2, dim=6)
    info = load_dataset(cfg, "train").info
    m = _build("imae", info, latent_dim=3, n_categories=2, vat_weight=0.0)
    ctx = M.EvalContext(cfg, cache_dir=str(tmp_path), batch_size=64, mig_factors=("f0",))
    ds = ctx.dataset()
    ds.x = ds.x[:400]                                   # a small reference split
    ds.factor_names = ("f0", "shape")                   # the second factor plays dSprites' shape
    ds.factors = torch.stack([ds.factors[:400, 0], (ds.factors[:400, 1] > 0).float()], 1)
    res = M.evaluate(m, ctx, ["mig", "mig-sampled", "informativeness", "tc"])
    for name in ("mig", "mig-sampled"):
        r = res[name]
        assert set(r["per_factor"]) == {"f0"} and set(r["with_y_per_factor"]) == {"f0", "shape"}
        assert 0.0 <= r["value"] <= 1.0 and 0.0 <= r["with_y"] <= 1.0
    assert len(res["informativeness"]["informativeness"]) == 3
    assert np.isfinite(res["tc"]["value"])


def test_vat_weight_is_beta_times_vat_weight_by_default_as_eq_11_inside_eq_10():
    """IMAE eq. 11 puts VAT in L(y), which eq. 10 weighs by β: the default ``vat_scale="beta"``
    adds β·vat_weight·VAT (the baselines: the weight of their y regulariser, 1 for β-TCVAE);
    ``vat_scale="fixed"`` keeps vat_weight alone. One step's losses differ by exactly (β − 1)·VAT."""
    from genae.methods import METHODS, Batch, DataInfo

    info = DataInfo((1, 28, 28), 10, "image", 1000)
    for name, expect in (("imae", 4.0), ("jointvae", 4.0), ("infovae", 4.0), ("beta-tcvae", 1.0)):
        spec = METHODS[name]
        extra = dict(beta=4.0, net="mlp", hidden=16, latent_dim=4, n_categories=3, dataset_size=1000, vat_weight=1.0)
        m = spec.build(spec.config(**extra), info)
        assert m.vat_weight() == expect, name
        assert spec.build(spec.config(**extra, vat_scale="fixed"), info).vat_weight() == 1.0
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    logs = {}
    for scale in ("beta", "fixed"):
        spec = METHODS["imae"]
        torch.manual_seed(0)
        m = spec.build(spec.config(beta=4.0, net="mlp", hidden=16, latent_dim=4, n_categories=3,
                                   dataset_size=1000, vat_scale=scale), info)
        torch.manual_seed(1)
        logs[scale] = next(m.train_step(Batch(x, None), 0)).logs
    assert torch.equal(logs["beta"]["vae/vat"], logs["fixed"]["vae/vat"])
    diff = float(logs["beta"]["vae/loss"] - logs["fixed"]["vae/loss"])
    # the float32 losses (~500 nats) differ in their last bits: a few ulps of the loss
    ulps = 4 * torch.finfo(torch.float32).eps * abs(float(logs["fixed"]["vae/loss"]))
    assert diff == pytest.approx(3.0 * float(logs["fixed"]["vae/vat"]), abs=ulps)
