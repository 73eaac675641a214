"""DCI, SAP, the FactorVAE score, modularity and explicitness (genae.metrics.disentangle_scores):
closed-form codes, the hand-written learners against scikit-learn, and the registry end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genae import metrics as M
from genae.metrics import disentangle_scores as S

LEVELS = (2, 5, 10)


def _factors(n: int, rng, levels=LEVELS) -> np.ndarray:
    return np.stack([rng.integers(0, k, n) for k in levels], 1)


def _codes(v: np.ndarray, rng, noise_dims: int = 2, jitter: float = 0.01) -> np.ndarray:
    """Each factor copied into its own dimension (plus a little jitter), then pure-noise dims."""
    n = len(v)
    return np.concatenate([v + jitter * rng.standard_normal(v.shape), rng.standard_normal((n, noise_dims))], 1)


def _rotated(codes: np.ndarray, rng) -> np.ndarray:
    """The same information, mixed over every dimension by a random rotation of the standardized code."""
    q, _ = np.linalg.qr(rng.standard_normal((codes.shape[1],) * 2))
    return ((codes - codes.mean(0)) / codes.std(0)) @ q


# --- the learners against scikit-learn ------------------------------------------------------------

def test_lasso_logistic_auc_svm_match_sklearn():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import Lasso, LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.svm import LinearSVC
    import warnings

    rng = np.random.default_rng(0)
    n, d = 2000, 5
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    xs = (x - x.mean(0)) / x.std(0)
    y = xs[:, 0] - 0.4 * xs[:, 2] + rng.standard_normal(n)
    y = (y - y.mean()) / y.std()
    ref = Lasso(alpha=0.02, fit_intercept=False, tol=1e-12, max_iter=100000).fit(xs, y).coef_
    np.testing.assert_allclose(S.lasso(xs, y, 0.02), ref, atol=1e-9)

    lab = (xs[:, 1] + xs[:, 3] + rng.standard_normal(n) > 0.3).astype(int)
    m = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(xs, lab)
    np.testing.assert_allclose(S.logistic_regression(xs, lab, c=1.0), np.r_[m.coef_[0], m.intercept_], atol=1e-6)

    scores = np.round(rng.standard_normal(n), 1)                  # many ties
    assert S.roc_auc(lab, scores) == pytest.approx(roc_auc_score(lab, scores), abs=1e-12)
    assert np.isnan(S.roc_auc(np.zeros(5), np.arange(5)))

    for k in (2, 3, 7):                                          # binary and one-vs-rest
        lab = np.clip(((xs[:, 1] + 0.5 * rng.standard_normal(n) + 2.5) * k / 5).astype(int), 0, k - 1)
        classes, theta = S.svm_1d(xs[:, 1], lab, c=0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            svc = LinearSVC(C=0.01, class_weight="balanced", tol=1e-10, max_iter=100000).fit(xs[:, 1:2], lab)
        np.testing.assert_allclose(theta, np.concatenate([svc.coef_, svc.intercept_[:, None]], 1), atol=1e-6)
        grid = np.linspace(-4, 4, 801)
        assert np.mean(S.svm_1d_predict(classes, theta, grid) == svc.predict(grid[:, None])) >= 0.995


def test_train_test_indices_are_a_seeded_partition():
    tr, te = S.train_test_indices(103, 0.8, seed=4)
    assert len(tr) == 83 and len(te) == 20 and sorted(np.r_[tr, te]) == list(range(103))
    assert np.array_equal(tr, S.train_test_indices(103, 0.8, seed=4)[0])
    assert not np.array_equal(tr, S.train_test_indices(103, 0.8, seed=5)[0])
    with pytest.raises(ValueError):
        S.train_test_indices(1, 0.8)               # nothing left to score


# --- DCI ------------------------------------------------------------------------------------------

def test_dci_from_importance_closed_forms():
    eye = S.dci_from_importance(np.eye(3))
    assert eye["disentanglement"] == pytest.approx(1.0) and eye["completeness"] == pytest.approx(1.0)
    flat = S.dci_from_importance(np.ones((4, 3)))
    assert flat["disentanglement"] == pytest.approx(0.0, abs=1e-12)
    assert flat["completeness"] == pytest.approx(0.0, abs=1e-12)
    # a dead code row weighs nothing; a factor no code predicts has completeness 0
    r = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    out = S.dci_from_importance(r)
    # code 0: one factor (D=1, weight 2/4); code 1: uniform over 2 factors (D=0, weight 2/4)
    assert out["disentanglement"] == pytest.approx(0.5)
    p0, p1 = np.array([2, 1, 0]) / 3, np.array([0, 1, 0])
    h = lambda p: -sum(a * np.log(a) for a in p if a > 0) / np.log(3)  # noqa: E731
    assert out["completeness"] == pytest.approx(np.mean([1 - h(p0), 1 - h(p1)]))
    zero = S.dci_from_importance(np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert zero["per_factor"][1] == 0.0


def test_dci_perfect_rotated_and_missing_factor():
    rng = np.random.default_rng(1)
    v = _factors(6000, rng)
    perfect = S.dci(_codes(v, rng), v)
    assert perfect["disentanglement"] == pytest.approx(1.0, abs=1e-3)
    assert perfect["completeness"] == pytest.approx(1.0, abs=1e-3)
    assert perfect["informativeness"] == pytest.approx(1.0) and perfect["n_train"] == 4800
    assert np.all(perfect["importance"][3:] == 0)                 # the noise dims get no weight
    mixed = S.dci(_rotated(_codes(v, rng), rng), v)
    assert mixed["disentanglement"] < 0.6 and mixed["completeness"] < 0.6
    blind = S.dci(_codes(v, rng)[:, 1:], v)                       # factor 0 is not in the code
    assert blind["informativeness"] < perfect["informativeness"] - 0.1
    assert blind["per_factor_accuracy"][0] < 0.7
    with pytest.raises(ValueError, match="lasso"):
        S.dci(_codes(v, rng), v, importance="forest")


def test_dci_lasso_and_gbt_against_sklearn():
    pytest.importorskip("sklearn")
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import Lasso

    rng = np.random.default_rng(2)
    v = _factors(1500, rng)
    z = _codes(v, rng, jitter=1.0) @ rng.standard_normal((5, 5)) * 0.3 + _codes(v, rng)  # partly mixed
    tr, te = S.train_test_indices(len(z), 0.8, 0)
    zs = (z[tr] - z[tr].mean(0)) / z[tr].std(0)
    imp = np.zeros((5, 3))
    for k in range(3):
        y = v[tr, k] - v[tr, k].mean()
        imp[:, k] = np.abs(Lasso(alpha=0.02, tol=1e-12, max_iter=100000).fit(zs, y / v[tr, k].std()).coef_)
    out = S.dci(z, v)
    np.testing.assert_allclose(out["importance"], imp, atol=1e-8)
    # D and C in disentanglement_lib's form (scipy-style entropy with +1e-11, completeness weighted by
    # the factor's share), which for trees (columns summing to 1) equals the unweighted mean
    gbt = S.dci(z, v, importance="gbt")
    ref = np.zeros((5, 3))
    acc = []
    for k in range(3):
        m = GradientBoostingClassifier(random_state=0).fit(z[tr], v[tr, k])
        ref[:, k] = m.feature_importances_
        acc.append(np.mean(m.predict(z[te]) == v[te, k]))
    np.testing.assert_allclose(gbt["importance"], ref, atol=1e-12)
    assert gbt["informativeness"] == pytest.approx(np.mean(acc))

    def ent(p, base):
        p = p / p.sum(0)
        return -(p * np.log(p)).sum(0) / np.log(base)
    dis = np.sum((1 - ent(ref.T + 1e-11, 3)) * ref.sum(1) / ref.sum())
    comp = np.sum((1 - ent(ref + 1e-11, 5)) * ref.sum(0) / ref.sum())
    assert gbt["disentanglement"] == pytest.approx(dis, abs=1e-8)
    assert gbt["completeness"] == pytest.approx(comp, abs=1e-8)


# --- SAP ------------------------------------------------------------------------------------------

def test_sap_perfect_rotated_and_continuous():
    rng = np.random.default_rng(3)
    v = _factors(5000, rng)
    codes = _codes(v, rng)
    cont = S.sap(codes, v, continuous=True)
    assert cont["sap"] == pytest.approx(1.0, abs=0.01)          # R² 1 for the copy, ~0 elsewhere
    perfect = S.sap(codes, v)
    # the binary factor is separated exactly by its copy; noise dims predict it at chance
    assert perfect["scores"][0, 0] == 1.0 and perfect["per_factor"][0] > 0.4
    mixed = S.sap(_rotated(codes, rng), v)
    assert mixed["sap"] < perfect["sap"] - 0.1
    assert S.sap(codes[:, 1:], v)["per_factor"][0] < 0.1         # no dimension knows factor 0


def test_sap_scores_against_linear_svc():
    pytest.importorskip("sklearn")
    import warnings
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(4)
    v = _factors(1000, rng)
    z = _rotated(_codes(v, rng, jitter=0.5), rng)
    tr, te = S.train_test_indices(len(z), 0.8, 0)
    ref = np.zeros((z.shape[1], 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(z.shape[1]):
            for k in range(3):
                svc = LinearSVC(C=0.01, class_weight="balanced", tol=1e-10, max_iter=100000)
                ref[i, k] = np.mean(svc.fit(z[tr, i:i + 1], v[tr, k]).predict(z[te, i:i + 1]) == v[te, k])
    out = S.sap(z, v)
    np.testing.assert_allclose(out["scores"], ref, atol=2 / len(te))   # at most a borderline point apart
    top = np.sort(ref, 0)[::-1]
    assert out["sap"] == pytest.approx(np.mean(top[0] - top[1]), abs=2 / len(te))


# --- modularity and explicitness ---------------------------------------------------------------------

def test_modularity_and_explicitness_closed_forms():
    rng = np.random.default_rng(5)
    v = _factors(8000, rng)
    codes = _codes(v, rng)
    clean = S.modularity(codes[:, :3], v)
    assert clean["modularity"] == pytest.approx(1.0, abs=1e-3)
    noisy = S.modularity(codes, v)
    # the copies stay modular; a pure-noise dimension has only the plug-in estimator's small bias
    # with each factor (largest for the factor with most levels, so it can even look modular)
    np.testing.assert_allclose(noisy["per_dim"][:3], 1.0, atol=1e-3)
    assert noisy["mi"][3:].max() < 0.02 < noisy["mi"][:3].max(1).min()
    # mixed codes score lower, though not near 0: each mixed dimension still shares most
    # information with the factor of most values (modularity compares MI magnitudes)
    assert S.modularity(_rotated(codes, rng), v)["modularity"] < 0.9
    h = np.array([[1, 1, 1], [1, -1, 1], [1, 1, -1]]) / np.sqrt(3)
    assert S.modularity(((codes[:, :3] - codes[:, :3].mean(0)) / codes[:, :3].std(0)) @ h, v)["modularity"] < 0.85
    assert S.modularity(np.zeros((100, 2)), v[:100])["per_dim"].tolist() == [0.0, 0.0]   # no information
    # binary factors: a copy is linearly explicit (AUC 1); a code without factor 0 is at chance for it
    b = _factors(4000, rng, (2, 2, 2))
    full = S.explicitness(_codes(b, rng), b)
    assert full["explicitness"] == pytest.approx(1.0, abs=1e-6)
    blind = S.explicitness(_codes(b, rng)[:, 1:], b)
    assert blind["per_factor"][0] == pytest.approx(0.5, abs=0.05) and blind["explicitness"] < 0.9


def test_modularity_explicitness_against_references():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import mutual_info_score, roc_auc_score
    from sklearn.multiclass import OneVsRestClassifier

    rng = np.random.default_rng(6)
    v = _factors(1200, rng)
    z = _rotated(_codes(v, rng, jitter=0.3), rng)[:, :4]
    # modularity: dlib's formula on sklearn's plug-in MI of 20 equal-width bins per code dimension
    bins = np.stack([np.digitize(c, np.histogram(c, 20)[1][:-1]) for c in z.T], 1)
    mi = np.array([[mutual_info_score(v[:, k], bins[:, i]) for k in range(3)] for i in range(4)])
    sq = mi ** 2
    mod = 1 - (sq.sum(1) - sq.max(1)) / (sq.max(1) * 2)
    out = S.modularity_explicitness(z, v)
    assert out["modularity"] == pytest.approx(mod.mean(), abs=1e-10)
    np.testing.assert_allclose(out["mi"], mi, atol=1e-12)
    # explicitness: sklearn's one-vs-rest logistic regressions on standardized codes (class
    # probabilities normalised over the values), ROC AUC per value
    tr, te = S.train_test_indices(len(z), 0.8, 0)
    mu, sd = z[tr].mean(0), z[tr].std(0)
    per = []
    for k in range(3):
        ovr = OneVsRestClassifier(LogisticRegression(C=1.0, tol=1e-10, max_iter=10000))
        prob = ovr.fit((z[tr] - mu) / sd, v[tr, k]).predict_proba((z[te] - mu) / sd)
        if prob.shape[1] == 1:                                    # sklearn fits one model for two values
            prob = np.concatenate([1 - prob, prob], 1)
        per.append(np.mean([roc_auc_score(v[te, k] == val, prob[:, j]) for j, val in enumerate(ovr.classes_)]))
    np.testing.assert_allclose(out["explicitness_per_factor"], per, atol=1e-4)
    assert out["explicitness"] == pytest.approx(np.mean(per), abs=1e-4)


# --- FactorVAE score ------------------------------------------------------------------------------

def _factorvae(represent, **kw):
    base = dict(batch_size=64, num_train=400, num_eval=200, num_variance_estimate=2000)
    return S.factorvae_score(represent, LEVELS, np.random.default_rng(0), **{**base, **kw})


def test_factorvae_score_perfect_mixed_missing_and_pruning():
    noise = np.random.default_rng(7)
    perfect = lambda c: np.concatenate([c + 1e-3 * noise.standard_normal(c.shape),  # noqa: E731
                                        noise.standard_normal((len(c), 2))], 1)
    out = _factorvae(perfect)
    assert out["score"] == 1.0 and out["train_accuracy"] == 1.0 and out["num_active_dims"] == 5
    assert out["classifier"][:3].tolist() == [0, 1, 2] and out["train_votes"].sum() == 400
    # every dimension an equal mix of the three standardized factors: fixing one factor lowers
    # every dimension's variance alike, so the votes carry little about which factor was fixed
    h = np.array([[1, 1, 1], [1, -1, 1], [1, 1, -1]]) / np.sqrt(3)
    mixed = _factorvae(lambda c: ((perfect(c)[:, :3] - [0.5, 2, 4.5]) / [0.5, 1.41, 2.87]) @ h)
    assert mixed["score"] < 0.7
    # no dimension for factor 0 (nor spare ones): its third of the votes go to the other factors' dims
    missing = _factorvae(lambda c: perfect(c)[:, 1:3])
    assert missing["score"] < 0.75
    # a constant dimension is pruned (its normalised variance would be 0/0)
    const = _factorvae(lambda c: np.concatenate([perfect(c), np.zeros((len(c), 1))], 1))
    assert const["num_active_dims"] == 5 and not const["active"][5] and const["classifier"][5] == -1
    assert const["score"] == 1.0
    # deterministic for a seeded generator, and the tick sees every example
    seen = []
    a = _factorvae(lambda c: c + 0.0, tick=seen.append)
    assert sum(seen) == 2000 + 64 * 600 and a["score"] == _factorvae(lambda c: c + 0.0)["score"]


# --- registry -------------------------------------------------------------------------------------

NEW = ["dci", "sap", "factorvae-score", "modularity"]


def test_registry_on_dsprites_and_skips(tmp_path, monkeypatch):
    from genae.data import DataConfig, load_dataset
    from genae.methods import METHODS
    from genae.metrics import latent

    torch.set_num_threads(1)
    monkeypatch.setitem(latent.FACTORVAE, "num_train", 60)
    monkeypatch.setitem(latent.FACTORVAE, "num_eval", 40)
    monkeypatch.setitem(latent.FACTORVAE, "num_variance_estimate", 300)
    monkeypatch.setitem(latent.FACTORVAE, "batch_size", 16)
    cfg = DataConfig("dsprites", n=32)
    ctx = M.EvalContext(cfg, cache_dir=str(tmp_path), batch_size=128)
    ds = ctx.dataset()
    ds.x, ds.factors = ds.x[:600], ds.factors[:600]              # a small reference split
    spec = METHODS["vae"]
    method = spec.build(spec.config(latent_dim=4, net="mlp", hidden=16), load_dataset(cfg, "train").info)
    res = M.evaluate(method, ctx, NEW)
    for name in NEW:
        r = res[name]
        assert "skipped" not in r, (name, r)
        assert r["codes"] == "mean of q(z|x)" and 0.0 <= r["value"] <= 1.0, name
        assert set(M.METRICS[name].protocol) <= set(r), name
    d = res["dci"]
    assert d["value"] == d["disentanglement"] and 0 <= d["completeness"] <= 1 and 0 <= d["informativeness"] <= 1
    assert d["regressor"].startswith("lasso") and (d["n_train"], d["n_test"]) == (480, 120)
    assert list(d["completeness_per_factor"]) == ["shape", "scale", "orientation", "posX", "posY"]
    assert len(res["sap"]["scores"]) == 4 and res["sap"]["n"] == 600
    f = res["factorvae-score"]
    assert f["num_train"] == 60 and f["batch_size"] == 16 and 0 <= f["train_accuracy"] <= 1
    m = res["modularity"]
    assert m["value"] == m["modularity"] and 0 <= m["explicitness"] <= 1 and len(m["per_dim"]) == 4
    # the same numbers from the pure functions on the posterior means
    from genae.metrics.disentangle import discretize
    with torch.no_grad():
        mu = method.posterior(ctx.to_method(ds.x, method)).mean.double().numpy()
    cls = discretize(ds.factors.numpy(), 20, max_levels=64)
    assert d["value"] == pytest.approx(S.dci(mu, cls)["disentanglement"], abs=1e-6)
    assert res["sap"]["value"] == pytest.approx(S.sap(mu, cls)["sap"], abs=1e-6)

    # no factors: every one skips; factors but nothing to render: factorvae-score alone skips
    fake = M.EvalContext(DataConfig("fake"), cache_dir=str(tmp_path), batch_size=64)
    info = load_dataset(DataConfig("fake"), "train").info
    res = M.evaluate(spec.build(spec.config(latent_dim=4, net="mlp", hidden=16), info), fake, NEW)
    for name in NEW:
        assert set(res[name]) == {"skipped", "seconds"} and "factors" in res[name]["skipped"], name
    syn = DataConfig("synthetic", n=300, latent_dim=3, dim=12)
    sctx = M.EvalContext(syn, cache_dir=str(tmp_path), batch_size=64)
    ae = METHODS["ae"]
    vec = ae.build(ae.config(latent_dim=3, net="mlp", hidden=16, likelihood="mse"), load_dataset(syn, "train").info)
    res = M.evaluate(vec, sctx, NEW)
    assert "vector data" in res["factorvae-score"]["skipped"]   # declared needs: images, checked first
    for name in ("dci", "sap", "modularity"):
        assert "skipped" not in res[name] and res[name]["codes"] == "encode (deterministic)", name
        assert 0.0 <= res[name]["value"] <= 1.0
