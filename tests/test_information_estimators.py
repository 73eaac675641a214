"""IMAE's minibatch estimators (genae.objectives.information) against closed forms, brute-force
full-data estimates and float64 NumPy references."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from genae.objectives import (aggregate_log_densities, dimension_kl_surrogate, empirical_mutual_information,
                              mmd, total_correlation, vat_loss)

RNG = np.random.default_rng(0)


def t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def np_log_normal(z, mu, logvar):
    return -0.5 * ((z - mu) ** 2 * np.exp(-logvar) + logvar + np.log(2 * np.pi))


def np_logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


# --- mutual information of a categorical code --------------------------------------------------
def test_mi_of_balanced_deterministic_assignment_is_log_k():
    k = 4
    p = torch.eye(k, dtype=torch.float64)[torch.arange(12) % k]
    assert empirical_mutual_information(p).item() == pytest.approx(math.log(k), abs=1e-12)


def test_mi_of_constant_posterior_is_zero():
    p = t(np.tile(RNG.dirichlet(np.ones(5)), (7, 1)))
    assert empirical_mutual_information(p).item() == pytest.approx(0.0, abs=1e-12)


def test_mi_matches_numpy_and_has_finite_gradient_at_zero_probabilities():
    p = RNG.dirichlet(np.ones(6), size=9)
    marginal = p.mean(0)
    ref = -(marginal * np.log(marginal)).sum() + (p * np.log(p)).sum(1).mean()
    assert empirical_mutual_information(t(p)).item() == pytest.approx(ref, rel=1e-12)
    ref4 = -4 * (marginal * np.log(marginal)).sum() + (p * np.log(p)).sum(1).mean()
    assert empirical_mutual_information(t(p), marginal_weight=4.0).item() == pytest.approx(ref4, rel=1e-12)
    hard = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 0]].requires_grad_(True)
    empirical_mutual_information(hard).backward()
    assert torch.isfinite(hard.grad).all()


# --- aggregate posterior: MWS / MSS --------------------------------------------------------------
def _small_set(n=6, d=2):
    mu, logvar = RNG.normal(size=(n, d)), RNG.normal(scale=0.3, size=(n, d))
    z = mu + np.exp(0.5 * logvar) * RNG.standard_normal((n, d))
    return z, mu, logvar


def _exact_log_q(z, mu, logvar):
    """Exact log q(z_i) and log q_k(z_ik) of the aggregate over all N examples (float64)."""
    mat = np_log_normal(z[:, None], mu[None], logvar[None])          # (N, N, d)
    n = mu.shape[0]
    return np_logsumexp(mat.sum(2), 1) - np.log(n), np_logsumexp(mat, 1) - np.log(n)


def test_mws_matches_its_definition():
    z, mu, logvar = _small_set(5, 3)
    n_data = 1000
    mat = np_log_normal(z[:, None], mu[None], logvar[None])
    ref_joint = np_logsumexp(mat.sum(2), 1) - np.log(5 * n_data)
    ref_marg = np_logsumexp(mat, 1) - np.log(5 * n_data)
    lq, lqk = aggregate_log_densities(t(z), t(mu), t(logvar), n_data, "mws")
    np.testing.assert_allclose(lq.numpy(), ref_joint, rtol=1e-12)
    np.testing.assert_allclose(lqk.numpy(), ref_marg, rtol=1e-12)
    tc = total_correlation(t(z), t(mu), t(logvar), n_data, "mws").item()
    assert tc == pytest.approx(np.mean(ref_joint - ref_marg.sum(1)), rel=1e-12)


def test_mws_on_the_whole_dataset_is_the_exact_aggregate_minus_log_n():
    # With the whole (small) data set as the batch, MWS's mixture is the exact aggregate scaled by 1/N.
    z, mu, logvar = _small_set(6, 3)
    exact, exact_k = _exact_log_q(z, mu, logvar)
    lq, lqk = aggregate_log_densities(t(z), t(mu), t(logvar), 6, "mws")
    np.testing.assert_allclose(lq.numpy(), exact - np.log(6), rtol=1e-12)
    np.testing.assert_allclose(lqk.numpy(), exact_k - np.log(6), rtol=1e-12)


def test_mss_is_unbiased_for_the_exact_aggregate_over_all_batches():
    """Average q̂(z_a) over every ordered batch (a, b, c) of distinct examples: the MSS estimate in
    probability space equals the exact full-data aggregate q(z_a) (and each marginal)."""
    n, batch = 6, 3
    z, mu, logvar = _small_set(n, 2)
    exact, exact_k = _exact_log_q(z, mu, logvar)
    for a in range(n):
        est, est_k = [], []
        for rest in itertools.permutations([i for i in range(n) if i != a], batch - 1):
            idx = [a, *rest]
            lq, lqk = aggregate_log_densities(t(z[idx]), t(mu[idx]), t(logvar[idx]), n, "mss")
            est.append(lq[0].exp().item())
            est_k.append(lqk[0].exp().numpy())
        assert np.mean(est) == pytest.approx(np.exp(exact[a]), rel=1e-10)
        np.testing.assert_allclose(np.mean(est_k, 0), np.exp(exact_k[a]), rtol=1e-10)


def _correlated_posteriors(batch, cov, sigma2, seed=1):
    rng = np.random.default_rng(seed)
    d = cov.shape[0]
    mu = rng.multivariate_normal(np.zeros(d), cov, size=batch)
    logvar = np.full((batch, d), np.log(sigma2))
    z = mu + np.sqrt(sigma2) * rng.standard_normal((batch, d))
    return t(z), t(mu), t(logvar)


COV = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]])


def test_tc_of_correlated_gaussian_matches_closed_form():
    # Posteriors N(mu_n, σ²I), mu_n ~ N(0, Σ): the aggregate of a large data set is N(0, Σ + σ²I),
    # whose TC is −½ log det of its correlation matrix.
    sigma2, n_data = 0.3, 10 ** 7
    agg = COV + sigma2 * np.eye(3)
    sd = np.sqrt(np.diag(agg))
    closed = -0.5 * np.log(np.linalg.det(agg / np.outer(sd, sd)))
    z, mu, logvar = _correlated_posteriors(1500, COV, sigma2)
    tc_mss = total_correlation(z, mu, logvar, n_data, "mss").item()
    assert tc_mss == pytest.approx(closed, abs=0.06)
    # MWS: the same up to its documented constant (d − 1)·log N.
    tc_mws = total_correlation(z, mu, logvar, n_data, "mws").item()
    assert tc_mws - 2 * math.log(n_data) == pytest.approx(closed, abs=0.06)
    # Independent dimensions: TC ≈ 0.
    zi, mui, lvi = _correlated_posteriors(1500, np.eye(3), sigma2, seed=2)
    assert total_correlation(zi, mui, lvi, n_data, "mss").item() == pytest.approx(0.0, abs=0.04)


def test_dimension_kl_surrogate_matches_closed_form():
    mean, scale2, sigma2 = np.array([0.5, -1.0]), np.array([2.0, 0.5]), 0.2
    rng = np.random.default_rng(3)
    mu = mean + np.sqrt(scale2) * rng.standard_normal((1500, 2))
    z = mu + np.sqrt(sigma2) * rng.standard_normal((1500, 2))
    logvar = np.full_like(mu, np.log(sigma2))
    v = scale2 + sigma2                                   # per-dimension aggregate variance
    closed = -np.sum(0.5 * (v + mean ** 2 - 1 - np.log(v)))
    out = dimension_kl_surrogate(t(z), t(mu), t(logvar), 10 ** 7).item()
    assert out == pytest.approx(closed, abs=0.05)
    # MWS: each KL lowered by log N (its constant), so L = −Σ_k KL_k is raised by d·log N.
    out_mws = dimension_kl_surrogate(t(z), t(mu), t(logvar), 10 ** 7, "mws").item()
    assert out_mws - 2 * math.log(10 ** 7) == pytest.approx(closed, abs=0.05)


def test_unknown_tc_estimator_is_rejected():
    z = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="mws"):
        total_correlation(z, z, z, 10, "bogus")


# --- VAT ---------------------------------------------------------------------------------------
def _kl_rows(lp, lq):
    return (lp.exp() * (lp - lq)).sum(1).mean().item()


def test_vat_perturbation_increases_kl_over_random_direction():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 32), nn.Tanh(), nn.Linear(32, 4)).double()
    x = torch.randn(64, 5, dtype=torch.float64)
    eps = 0.5
    adv = vat_loss(net, x, eps=eps, xi=1e-3, n_power=2).item()
    with torch.no_grad():
        lp = net(x).log_softmax(1)
        rand = []
        for _ in range(20):
            d = torch.randn_like(x)
            d = eps * d / d.norm(dim=1, keepdim=True)
            rand.append(_kl_rows(lp, net(x + d).log_softmax(1)))
    assert adv > 2 * max(rand)


def test_vat_leaves_batchnorm_buffers_and_param_grads_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    net.train()
    x = torch.randn(32, 5)
    net(x)                                                # one ordinary step: buffers move off init
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loss = vat_loss(lambda a: net(a), x, eps=1.0, xi=10.0, n_power=2, module=net)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    bn = net[1]
    assert bn.training and bn.track_running_stats        # restored
    assert all(p.grad is None for p in net.parameters())  # the power iteration touched no .grad
    loss.backward()
    assert net[0].weight.grad is not None and torch.isfinite(net[0].weight.grad).all()
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_vat_passes_use_batch_statistics():
    # In train mode the extra passes normalise with the batch's statistics (IMSAT/VAT's
    # update_batch_stats=False), not the running ones: with a tiny ε the loss is ~0 either way, so
    # compare the clean logits vat_loss computes against a train-mode forward.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)).double()
    x = 3.0 + torch.randn(16, 5, dtype=torch.float64)
    captured = []

    def forward(a):
        out = net(a)
        captured.append(out.detach())
        return out

    vat_loss(forward, x, eps=1.0, n_power=1, module=net)
    with torch.no_grad():
        net.eval()
        running = net(x)
        net.train()
    assert not torch.allclose(captured[0], running)      # batch stats differ from the fresh buffers
    assert net[1].num_batches_tracked.item() == 0


# --- MMD ---------------------------------------------------------------------------------------
def np_mmd(x, y, kernel, c):
    def k(a, b):
        s = ((a[:, None] - b[None]) ** 2).sum(-1)
        return c / (c + s) if kernel == "imq" else np.exp(-s / c)
    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * k(x, y).mean())


@pytest.mark.parametrize("kernel", ["imq", "gaussian"])
def test_mmd_matches_numpy(kernel):
    x, y = RNG.normal(size=(7, 3)), RNG.normal(loc=0.5, size=(9, 3))
    ref = np_mmd(x, y, kernel, 6.0)                        # default scale: C = 2d = 6
    assert mmd(t(x), t(y), kernel).item() == pytest.approx(ref, rel=1e-10)
    ref2 = np_mmd(x, y, kernel, 0.5) + np_mmd(x, y, kernel, 2.0)
    assert mmd(t(x), t(y), kernel, scale=[0.5, 2.0]).item() == pytest.approx(ref2, rel=1e-10)


@pytest.mark.parametrize("kernel", ["imq", "gaussian"])
def test_mmd_is_unbiased_zero_for_same_distribution_and_positive_for_shift(kernel):
    g = torch.Generator().manual_seed(0)
    same = torch.stack([mmd(torch.randn(16, 4, generator=g, dtype=torch.float64),
                            torch.randn(16, 4, generator=g, dtype=torch.float64), kernel)
                        for _ in range(400)])
    se = same.std() / math.sqrt(len(same))
    assert abs(same.mean().item()) < 3 * se.item()
    assert (same < 0).any()                               # unbiased: no floor at 0
    shifted = torch.stack([mmd(torch.randn(16, 4, generator=g, dtype=torch.float64),
                               1.0 + torch.randn(16, 4, generator=g, dtype=torch.float64), kernel)
                           for _ in range(50)])
    assert shifted.mean().item() > 10 * se.item() and shifted.mean().item() > 0


def test_mmd_rejects_unknown_kernel_and_tiny_samples():
    with pytest.raises(ValueError, match="imq"):
        mmd(torch.zeros(3, 2), torch.zeros(3, 2), "laplace")
    with pytest.raises(ValueError, match="at least 2"):
        mmd(torch.zeros(1, 2), torch.zeros(3, 2))


# --- the four hybrid-latent objectives as pure functions (issue 43) ------------------------------

def test_beta_tcvae_terms_sum_to_the_sampled_kl():
    """Chen et al.'s decomposition: I + TC + Σ_k KL_k = mean_i [log q(z_i|x_i) − log p(z_i)], exactly
    (β = 1), whatever the aggregate estimate; β scales only TC; the categorical KL is added as is."""
    from genae.objectives.information import beta_tcvae_terms

    z, mu, lv = t(RNG.normal(size=(16, 3))), t(RNG.normal(size=(16, 3))), t(RNG.normal(size=(16, 3)) * 0.3)
    terms = beta_tcvae_terms(z, mu, lv, (z, mu, lv), None, 1.0, 1000, "mss")
    sampled_kl = (np_log_normal(z.numpy(), mu.numpy(), lv.numpy()).sum(1)
                  - np_log_normal(z.numpy(), 0.0, 0.0).sum(1)).mean()
    assert float(sum(terms.values())) == pytest.approx(sampled_kl, rel=1e-12, abs=1e-12)
    b4 = beta_tcvae_terms(z, mu, lv, (z, mu, lv), None, 4.0, 1000, "mss")
    assert float(b4["tc"]) == pytest.approx(4 * float(terms["tc"]), rel=1e-12)
    logits = t(RNG.normal(size=(16, 5)))
    with_y = beta_tcvae_terms(z, mu, lv, (z, mu, lv), logits, 1.0, 1000, "mss")
    p = torch.softmax(logits, 1).numpy()
    assert float(with_y["kl_y"]) == pytest.approx((p * np.log(p * 5)).sum(1).mean(), rel=1e-12)


def test_jointvae_and_infovae_terms_match_their_formulas():
    from genae.objectives.information import infovae_terms, jointvae_terms

    out = jointvae_terms(t(3.0), t(0.2), 2.0, 5.0, 1.0)
    assert float(out["kl_z"]) == pytest.approx(2.0 * 2.0) and float(out["kl_y"]) == pytest.approx(2.0 * 0.8)
    assert set(jointvae_terms(t(3.0), None, 2.0, 0.0, 0.0)) == {"kl_z"}
    z, prior = t(RNG.normal(size=(20, 4))), t(RNG.normal(size=(20, 4)))
    q_y = t([0.5, 0.25, 0.25])
    terms = infovae_terms(z, prior, q_y, 3.0, 1000.0, "gaussian", 4.0)
    assert float(terms["mmd_z"]) == pytest.approx(3.0 * 1000.0 * float(mmd(z, prior, "gaussian", 4.0)), rel=1e-12)
    q = q_y.numpy()
    assert float(terms["kl_qy"]) == pytest.approx(3.0 * (q * np.log(q * 3)).sum(), rel=1e-12)


def test_imae_terms_weights_and_mutual_information():
    """−β·L(z) + γ·TC(z) − β·I(x; y), with I = H(mean p) − mean H(p) in NumPy."""
    from genae.objectives.information import imae_terms

    z, mu, lv = t(RNG.normal(size=(12, 2))), t(RNG.normal(size=(12, 2))), t(RNG.normal(size=(12, 2)) * 0.2)
    p = torch.softmax(t(RNG.normal(size=(12, 4))), 1)
    out = imae_terms(z, mu, lv, p, p.mean(0), 2.0, 5.0, 500, "mws")
    pn = p.numpy()
    h = lambda a: -(a * np.log(a)).sum(-1)  # noqa: E731
    assert float(out["neg_mi"]) == pytest.approx(-2.0 * (h(pn.mean(0)) - h(pn).mean()), rel=1e-10)
    assert float(out["tc"]) == pytest.approx(5.0 * float(total_correlation(z, mu, lv, 500, "mws")), rel=1e-12)
    assert float(out["neg_dim_kl"]) == pytest.approx(-2.0 * float(dimension_kl_surrogate(z, mu, lv, 500, "mws")),
                                                     rel=1e-12)
    assert set(imae_terms(z, mu, lv, None, None, 2.0, 5.0, 500)) == {"neg_dim_kl", "tc"}
