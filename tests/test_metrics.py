"""Reference checks for genae.metrics: every metric against an independent value (closed forms,
brute-force float64 NumPy), plus the backbones and the METRICS registry end to end."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from genae import metrics as M


def _rot(d, rng):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


# --- Fréchet distance -----------------------------------------------------------------------------

def _closed_form(mu1, a, mu2, b):
    # Commuting covariances Q diag(a) Qᵀ, Q diag(b) Qᵀ: d² = ‖μ1−μ2‖² + Σ(√a − √b)².
    return float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())


@pytest.mark.parametrize("d", [1, 5, 64])
def test_frechet_commuting_closed_form(d):
    rng = np.random.default_rng(d)
    q = _rot(d, rng)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    got = M.frechet_distance(mu1, (q * a) @ q.T, mu2, (q * b) @ q.T)
    assert got == pytest.approx(_closed_form(mu1, a, mu2, b), rel=1e-9, abs=1e-10)
    # Diagonal covariances, torch float32 inputs are accepted too.
    got_t = M.frechet_distance(torch.tensor(mu1), torch.tensor(np.diag(a)), mu2, np.diag(b))
    assert got_t == pytest.approx(_closed_form(mu1, a, mu2, b), rel=1e-9)


def test_frechet_near_singular():
    rng = np.random.default_rng(1)
    d = 32
    q = _rot(d, rng)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    a = rng.uniform(0.5, 2.0, d)
    b = rng.uniform(0.5, 2.0, d)
    a[:10] = 0.0          # exactly singular
    b[5:15] = 1e-14       # numerically singular, overlapping a's null space
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    got = M.frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(_closed_form(mu1, a, mu2, b), rel=1e-6, abs=1e-6)
    # Identical rank-deficient Gaussians (covariance of fewer samples than dims): distance 0.
    x = rng.standard_normal((10, 50))
    mu, sig = M.feature_statistics(x)
    assert M.frechet_distance(mu, sig, mu, sig) == pytest.approx(0.0, abs=1e-8)


def test_frechet_general_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(2)
    d = 20
    x, y = rng.standard_normal((200, d)), rng.standard_normal((300, d)) @ rng.standard_normal((d, d))
    mu1, s1 = x.mean(0), np.cov(x, rowvar=False)
    mu2, s2 = y.mean(0), np.cov(y, rowvar=False)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) \
        - 2 * np.trace(scipy_linalg.sqrtm(s1 @ s2).real)
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(M.frechet_distance(mu2, s2, mu1, s1), rel=1e-9)


def test_feature_statistics_matches_numpy():
    x = np.random.default_rng(3).standard_normal((50, 4))
    mu, s = M.feature_statistics(torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s, np.cov(x, rowvar=False), rtol=1e-5, atol=1e-6)


# --- KID, IS, precision/recall -------------------------------------------------------------------

def test_kid_unbiased_reference_and_shift():
    from genae.metrics.frechet import _mmd2_unbiased
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((9, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    ref = (sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
           + sum(k(y[i], y[j]) for i in range(9) for j in range(9) if i != j) / 72
           - 2 * sum(k(x[i], y[j]) for i in range(7) for j in range(9)) / 63)
    assert _mmd2_unbiased(x, y) == pytest.approx(ref, rel=1e-12)

    # Identical distributions: single estimates scatter around 0 (some negative), mean ≈ 0.
    vals = []
    for s in range(40):
        r = np.random.default_rng(100 + s)
        vals.append(M.kid(r.standard_normal((100, 8)), r.standard_normal((100, 8)),
                          n_subsets=5, subset_size=100, seed=s)[0])
    vals = np.array(vals)
    assert (vals < 0).any()
    assert abs(vals.mean()) < 3 * vals.std(ddof=1) / np.sqrt(vals.size)
    shifted = M.kid(rng.standard_normal((300, 8)), rng.standard_normal((300, 8)) + 0.5,
                    n_subsets=10, subset_size=200)[0]
    assert shifted > 10 * vals.std()


def test_inception_score_extremes():
    k = 10
    onehot = np.eye(k)[np.tile(np.arange(k), 50)]                # confident, uniform over classes
    assert M.inception_score(onehot, splits=5)[0] == pytest.approx(k, rel=1e-12)
    const = np.tile(np.random.default_rng(5).dirichlet(np.ones(k)), (500, 1))
    assert M.inception_score(const, splits=5)[0] == pytest.approx(1.0, abs=1e-12)


def test_precision_recall_reference():
    rng = np.random.default_rng(6)
    r, f = rng.standard_normal((60, 3)), rng.standard_normal((50, 3)) + 0.7

    def ref(a, b, k=3):  # brute force: fraction of b inside a's k-NN balls
        da = np.linalg.norm(a[:, None] - a[None], axis=2)
        rad = np.sort(da, axis=1)[:, k]
        dab = np.linalg.norm(b[:, None] - a[None], axis=2)
        return (dab <= rad[None]).any(axis=1).mean()

    p, rc = M.precision_recall(r, f, k=3, chunk=16)
    assert p == pytest.approx(ref(r, f)) and rc == pytest.approx(ref(f, r))
    assert M.precision_recall(r, r) == (1.0, 1.0)
    assert M.precision_recall(r, r + 100.0) == (0.0, 0.0)


# --- subspaces ------------------------------------------------------------------------------------

@pytest.mark.parametrize("centered", [True, False])
def test_ns_acc_orthogonal_subspaces(centered):
    rng = np.random.default_rng(7)
    q = _rot(60, rng)
    k, dim = 5, 6                                 # 5 classes, each on its own 6-dim subspace
    def draw(n):
        z, y = [], []
        for c in range(k):
            basis = q[:, c * dim:(c + 1) * dim]
            z.append((rng.standard_normal((n, dim)) + 2.0) @ basis.T)   # non-zero class mean
            y += [c] * n
        return np.concatenate(z), np.array(y)
    ztr, ytr = draw(40)
    zte, yte = draw(30)
    assert M.nearest_subspace_accuracy(ztr, ytr, zte, yte, n_components=10, centered=centered) == 1.0
    # Tensors work too.
    assert M.nearest_subspace_accuracy(torch.tensor(ztr), torch.tensor(ytr), torch.tensor(zte),
                                       torch.tensor(yte), n_components=6, centered=centered) == 1.0
    # Principal angles: cos = 0 between distinct classes, 1 within a class.
    classes, cos = M.principal_angles(ztr, ytr, n_components=dim)
    off = ~np.eye(k, dtype=bool)
    assert np.nanmax(cos[off]) < 1e-8
    np.testing.assert_allclose(cos[np.arange(k), np.arange(k)], 1.0, atol=1e-8)
    # Per-class spectra: rank `dim` each.
    for s in M.class_singular_values(ztr, ytr).values():
        assert (s > 1e-8 * s[0]).sum() == dim


def test_ns_acc_matches_projection_reference():
    rng = np.random.default_rng(8)
    ztr, ytr = rng.standard_normal((90, 12)), np.repeat(np.arange(3), 30)
    zte, yte = rng.standard_normal((40, 12)), rng.integers(0, 3, 40)
    for centered in (True, False):
        resid = []
        for c in range(3):
            zc = ztr[ytr == c]
            m = zc.mean(0) if centered else 0 * zc.mean(0)
            # Independent reference: projector from the eigenvectors of the (scatter) matrix.
            w, v = np.linalg.eigh((zc - m).T @ (zc - m))
            u = v[:, np.argsort(w)[::-1][:4]]
            p = np.eye(12) - u @ u.T
            resid.append(np.linalg.norm((zte - m) @ p, axis=1))
        ref = (np.argmin(np.stack(resid, 1), 1) == yte).mean()
        assert M.nearest_subspace_accuracy(ztr, ytr, zte, yte, 4, centered) == pytest.approx(ref)


def test_feature_rank_and_effective_rank():
    rng = np.random.default_rng(9)
    z = rng.standard_normal((200, 5)) @ rng.standard_normal((5, 30))
    assert M.feature_rank(z) == 5
    assert M.feature_rank(np.ones((10, 4))) == 0
    e = np.eye(8)
    assert M.effective_rank(e, centered=False) == pytest.approx(8.0)


def test_rate_reduction_against_slogdet():
    rng = np.random.default_rng(10)
    z = rng.standard_normal((60, 16))
    y = np.repeat(np.arange(3), 20)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)

    def r(a, eps2=0.5):
        n, d = a.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps2) * a.T @ a)[1]

    out = M.rate_reduction(z, y)
    rc = sum((y == c).mean() * r(zn[y == c]) for c in range(3))
    assert out["R"] == pytest.approx(r(zn), rel=1e-10)
    assert out["Rc"] == pytest.approx(rc, rel=1e-10)
    assert out["delta_R"] == pytest.approx(r(zn) - rc, rel=1e-10)
    assert M.coding_rate(np.zeros((0, 4))) == 0.0


# --- clustering / classification -----------------------------------------------------------------

def test_cluster_acc_relabelling_and_reference():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 4, 200)
    perm = np.array([2, 0, 3, 1])
    assert M.clustering_accuracy(y, perm[y]) == 1.0
    pred = np.where(rng.random(200) < 0.3, rng.integers(0, 4, 200), y)
    base = M.clustering_accuracy(y, pred)
    for p in itertools.permutations(range(4)):
        assert M.clustering_accuracy(y, np.array(p)[pred]) == base
    # Brute force over all one-to-one maps.
    ref = max((np.array(p)[pred] == y).mean() for p in itertools.permutations(range(4)))
    assert base == pytest.approx(ref)
    # More clusters than classes: unmatched clusters count as errors.
    assert M.clustering_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == 0.5


def test_nmi_reference():
    rng = np.random.default_rng(12)
    a, b = rng.integers(0, 3, 300), rng.integers(0, 4, 300)
    pab = np.zeros((3, 4))
    for i, j in zip(a, b):
        pab[i, j] += 1 / 300
    pa, pb = pab.sum(1), pab.sum(0)
    mi = sum(pab[i, j] * np.log(pab[i, j] / (pa[i] * pb[j])) for i in range(3) for j in range(4) if pab[i, j])
    ha, hb = -(pa * np.log(pa)).sum(), -(pb * np.log(pb)).sum()
    assert M.nmi(a, b) == pytest.approx(mi / ((ha + hb) / 2), rel=1e-10)
    assert M.nmi(a, (a + 1) % 3) == pytest.approx(1.0)


def test_kmeans_knn_linear_probe_on_blobs():
    rng = np.random.default_rng(13)
    centres = rng.standard_normal((4, 10)) * 10
    y = np.repeat(np.arange(4), 50)
    z = centres[y] + rng.standard_normal((200, 10))
    assert M.clustering_accuracy(y, M.kmeans(z, 4, seed=0)) == 1.0
    np.testing.assert_array_equal(M.kmeans(z, 4, seed=3), M.kmeans(z, 4, seed=3))
    zt = centres[y] + rng.standard_normal((200, 10))
    assert M.knn_accuracy(z, y, zt, y, k=5) == 1.0
    assert M.knn_accuracy(z, y, zt, y, k=5, metric="cosine") == 1.0
    assert M.linear_probe_accuracy(z, y, zt, y) == 1.0


def test_knn_brute_force_reference():
    rng = np.random.default_rng(14)
    ztr, ytr = rng.standard_normal((80, 3)), rng.integers(0, 3, 80)
    zte, yte = rng.standard_normal((50, 3)), rng.integers(0, 3, 50)
    pred = []
    for q in zte:
        order = np.argsort(np.linalg.norm(ztr - q, axis=1))[:5]
        counts = np.bincount(ytr[order], minlength=3)
        tied = np.flatnonzero(counts == counts.max())
        pred.append(next(ytr[i] for i in order if ytr[i] in tied))
    assert M.knn_accuracy(ztr, ytr, zte, yte, k=5) == pytest.approx((np.array(pred) == yte).mean())


# --- latent codes ---------------------------------------------------------------------------------

def test_mig_copy_and_noise():
    rng = np.random.default_rng(15)
    n = 20000
    factors = np.stack([rng.integers(0, 5, n), rng.integers(0, 10, n), rng.random(n)], 1).astype(float)
    codes = np.concatenate([factors, rng.standard_normal((n, 2))], 1)   # copies + 2 nuisance dims
    assert M.mig(codes, factors)["mig"] == pytest.approx(1.0, abs=0.02)
    noise = rng.standard_normal((n, 6))
    assert M.mig(noise, factors)["mig"] == pytest.approx(0.0, abs=0.02)


def test_nac_isotropic_and_correlated():
    rng = np.random.default_rng(16)
    assert M.normalized_absolute_covariance(rng.standard_normal((50000, 6))) < 0.01
    t = rng.standard_normal((1000, 1))
    z = np.concatenate([t, -2 * t, 3 * t + 1], 1)
    assert M.normalized_absolute_covariance(torch.tensor(z)) == pytest.approx(1.0)
    # Dead dimensions are left out rather than producing NaN correlations.
    z0 = np.concatenate([z, np.zeros((1000, 1))], 1)
    assert M.normalized_absolute_covariance(z0) == pytest.approx(1.0)


def test_transform_score_and_kl_active():
    rng = np.random.default_rng(17)
    d = rng.standard_normal(6)
    s = np.linspace(-1, 1, 11)
    base = rng.standard_normal((50, 1, 6)) * 10
    codes = base + s[None, :, None] * d + 0.01 * rng.standard_normal((50, 11, 6))
    assert M.transform_score(codes)["score"] > 100      # one direction of motion
    iso = base + rng.standard_normal((50, 11, 6))
    assert M.transform_score(iso)["score"] < 2
    mu = np.concatenate([rng.standard_normal((100, 2)), np.zeros((100, 2))], 1)
    active, kl = M.kl_active_dims(mu, np.zeros((100, 4)))
    assert active.tolist() == [True, True, False, False]


# --- images ---------------------------------------------------------------------------------------

def test_sharpness_reference_and_blur_ranking():
    rng = np.random.default_rng(18)
    img = rng.random((3, 3, 16, 20))
    y = 0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]
    ref = []
    for im in y:  # direct loop over 'valid' positions
        lap = np.array([[im[i - 1, j] + im[i + 1, j] + im[i, j - 1] + im[i, j + 1] - 4 * im[i, j]
                         for j in range(1, 19)] for i in range(1, 15)])
        ref.append(lap.var())
    np.testing.assert_allclose(M.sharpness_per_image(torch.tensor(img)), ref, rtol=1e-12)
    assert M.sharpness(img) == pytest.approx(np.mean(ref))
    gray = rng.random((2, 1, 12, 12))
    blurred = torch.nn.functional.avg_pool2d(torch.tensor(gray), 3, stride=1, padding=1)
    assert (M.sharpness_per_image(blurred) < M.sharpness_per_image(gray)).all()


# --- backbones ------------------------------------------------------------------------------------

def _expected_inception_shapes():
    """Key names and shapes of pytorch-fid's converted FID Inception weights, written out from the
    torchvision Inception-v3 layout (BasicConv2d = conv (no bias) + bn) independently of genae."""
    shapes = {}

    def conv(name, cin, cout, kh, kw=None):
        kw = kh if kw is None else kw
        shapes[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{p}"] = (cout,)

    conv("Conv2d_1a_3x3", 3, 32, 3); conv("Conv2d_2a_3x3", 32, 32, 3); conv("Conv2d_2b_3x3", 32, 64, 3)
    conv("Conv2d_3b_1x1", 64, 80, 1); conv("Conv2d_4a_3x3", 80, 192, 3)
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        conv(f"{name}.branch1x1", cin, 64, 1); conv(f"{name}.branch5x5_1", cin, 48, 1)
        conv(f"{name}.branch5x5_2", 48, 64, 5); conv(f"{name}.branch3x3dbl_1", cin, 64, 1)
        conv(f"{name}.branch3x3dbl_2", 64, 96, 3); conv(f"{name}.branch3x3dbl_3", 96, 96, 3)
        conv(f"{name}.branch_pool", cin, pool, 1)
    conv("Mixed_6a.branch3x3", 288, 384, 3); conv("Mixed_6a.branch3x3dbl_1", 288, 64, 1)
    conv("Mixed_6a.branch3x3dbl_2", 64, 96, 3); conv("Mixed_6a.branch3x3dbl_3", 96, 96, 3)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        conv(f"{name}.branch1x1", 768, 192, 1); conv(f"{name}.branch7x7_1", 768, c7, 1)
        conv(f"{name}.branch7x7_2", c7, c7, 1, 7); conv(f"{name}.branch7x7_3", c7, 192, 7, 1)
        conv(f"{name}.branch7x7dbl_1", 768, c7, 1); conv(f"{name}.branch7x7dbl_2", c7, c7, 7, 1)
        conv(f"{name}.branch7x7dbl_3", c7, c7, 1, 7); conv(f"{name}.branch7x7dbl_4", c7, c7, 7, 1)
        conv(f"{name}.branch7x7dbl_5", c7, 192, 1, 7); conv(f"{name}.branch_pool", 768, 192, 1)
    conv("Mixed_7a.branch3x3_1", 768, 192, 1); conv("Mixed_7a.branch3x3_2", 192, 320, 3)
    conv("Mixed_7a.branch7x7x3_1", 768, 192, 1); conv("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7)
    conv("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1); conv("Mixed_7a.branch7x7x3_4", 192, 192, 3)
    for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        conv(f"{name}.branch1x1", cin, 320, 1); conv(f"{name}.branch3x3_1", cin, 384, 1)
        conv(f"{name}.branch3x3_2a", 384, 384, 1, 3); conv(f"{name}.branch3x3_2b", 384, 384, 3, 1)
        conv(f"{name}.branch3x3dbl_1", cin, 448, 1); conv(f"{name}.branch3x3dbl_2", 448, 384, 3)
        conv(f"{name}.branch3x3dbl_3a", 384, 384, 1, 3); conv(f"{name}.branch3x3dbl_3b", 384, 384, 3, 1)
        conv(f"{name}.branch_pool", cin, 192, 1)
    shapes["fc.weight"], shapes["fc.bias"] = (1008, 2048), (1008,)
    return shapes


def test_inception_state_dict_layout_and_features():
    from genae.metrics.inception import FIDInceptionV3
    torch.manual_seed(0)
    net = FIDInceptionV3().eval()
    got = {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert got == _expected_inception_shapes()
    # A state dict with the standard names loads (here: a copy with num_batches_tracked dropped).
    sd = {k: v.clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    other = FIDInceptionV3()
    other.load_checked(sd)
    assert torch.equal(other.fc.weight, net.fc.weight)
    torch.set_num_threads(1)
    with torch.no_grad():
        f = net(torch.rand(2, 1, 28, 28))            # grey 28×28 -> RGB 299×299 inside
    assert f.shape == (2, 2048) and torch.isfinite(f).all()


def test_inception_rejects_wrong_weights(monkeypatch, tmp_path):
    from genae.errors import ConfigError
    from genae.metrics import inception
    net = inception.FIDInceptionV3()
    sd = net.state_dict()
    bad = {("module." + k if i % 2 else k): v for i, (k, v) in enumerate(sd.items())}
    with pytest.raises(ConfigError, match="missing keys"):
        net.load_checked(bad)
    wrong_shape = dict(sd, **{"fc.weight": torch.zeros(1000, 2048)})
    with pytest.raises(ConfigError, match="shape mismatches: fc.weight"):
        net.load_checked(wrong_shape)
    # No weights anywhere and downloads off: one clear message saying how to provide them.
    monkeypatch.delenv("GENAE_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("GENAE_CACHE", str(tmp_path))
    with pytest.raises(ConfigError, match="GENAE_INCEPTION_WEIGHTS"):
        inception.inception_weights_path(download=False)


def test_domain_classifier_trains_deterministically(tmp_path):
    from types import SimpleNamespace
    from genae.metrics.domain import DomainRecipe, load_or_train_domain
    g = torch.Generator().manual_seed(0)
    # Two easy classes: bright left half vs bright right half, plus noise.
    y = torch.arange(64) % 2
    x = torch.randint(0, 60, (64, 1, 12, 12), generator=g, dtype=torch.uint8)
    x[y == 0, :, :, :6] += 150
    x[y == 1, :, :, 6:] += 150
    ds = SimpleNamespace(name="toy", x=x, y=y, num_classes=2)
    recipe = DomainRecipe(width=4, feature_dim=8, steps=30, batch_size=16)
    net1, h1 = load_or_train_domain(ds, ds, recipe, cache_dir=tmp_path)
    assert net1.meta["test_accuracy"] == 1.0
    files = list((tmp_path / "domain").glob("toy-1x12x12-n64-*.safetensors"))
    assert len(files) == 1
    net2, h2 = load_or_train_domain(ds, ds, recipe, cache_dir=tmp_path)     # from the cache
    assert h1 == h2
    files[0].unlink()
    net3, h3 = load_or_train_domain(ds, ds, recipe, cache_dir=tmp_path)     # retrained
    assert h3 == h1                                                          # deterministic
    assert net3.features(x[:5].float() / 255).shape == (5, 8)


# --- report ---------------------------------------------------------------------------------------

def test_write_report_embeds_everything(tmp_path):
    import base64
    import json
    import re
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    from genae.viz.report import write_report

    run = tmp_path / "vae-fake-test"
    (run / "samples").mkdir(parents=True)
    pngs = {}
    for name, colour in (("samples_100.png", 10), ("samples_200.png", 200), ("recon_200.png", 90),
                         ("../loss_curves.png", 150)):
        path = run / "samples" / name
        Image.fromarray(np.full((8, 8), colour, np.uint8)).save(path)
        pngs[path.name] = path.read_bytes()
    (run / "config.yaml").write_text("method: vae\ndata:\n  name: fake\n")
    (run / "eval.json").write_text(json.dumps({
        "fid": {"value": 12.5, "backbone": "domain", "backbone_test_acc": 0.98, "n_real": 2000,
                "n_fake": 10000, "split": "test"},
        "ns-acc": {"skipped": "ns-acc needs class labels; <fake> is unlabelled"}}))
    # the last line cut short, as a SIGKILLed run leaves it: the table shows the last whole row
    (run / "metrics.jsonl").write_text('{"step": 10, "vae/loss": 3.5}\n{"step": 20, "vae/loss": 2.5}\n'
                                       '{"step": 30, "vae/lo')
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    heat = np.zeros((5, 7, 3), np.uint8)

    out = write_report(run, figures={"spectrum": fig, "heatmap <|Z^T Z|>": heat})
    text = out.read_text()
    assert out == run / "report.html"
    uris = re.findall(r"src='data:image/png;base64,([^']+)'", text)
    decoded = [base64.b64decode(u) for u in uris]
    assert pngs["samples_200.png"] in decoded and pngs["recon_200.png"] in decoded
    assert pngs["loss_curves.png"] in decoded and pngs["samples_100.png"] not in decoded
    assert len(uris) == 5                                   # 2 grids + curves + 2 method figures
    assert not re.search(r"(src|href)=['\"](?!data:)", text)  # nothing external
    assert "12.5" in text and "&lt;fake&gt; is unlabelled" in text and "heatmap &lt;|Z^T Z|&gt;" in text
    assert "2.5" in text and "method <b>vae</b>" in text
    last = text.split("Last logged values", 1)[1]
    assert "<td class='num'>20</td>" in last and "2.5" in last and "30" not in last.split("</table>")[0]
    # A run with nothing but a config still gets a (small) report, without a checkpoint to load.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text("method: ae\n")
    assert "<h1>bare</h1>" in write_report(bare).read_text()


# --- METRICS registry end to end ------------------------------------------------------------------

from genae.methods.base import DataInfo, Method, Posterior, Unsupported  # noqa: E402


class StubAE(Method):
    """encode = fixed random projection, decode = its pseudo-inverse, sample = uniform noise."""

    input_range = "unit"
    capabilities = frozenset({"encode", "decode", "reconstruct", "sample"})

    def __init__(self, info: DataInfo, latent: int = 6):
        super().__init__(None, info)
        d = int(np.prod(info.shape))
        g = torch.Generator().manual_seed(0)
        self.register_buffer("P", torch.randn(d, latent, generator=g) / d ** 0.5)
        self.register_buffer("Pinv", torch.linalg.pinv(self.P))
        self.anchor = torch.nn.Parameter(torch.zeros(1))   # gives the module a device

    def encode(self, x):
        return x.flatten(1) @ self.P

    def decode(self, z):
        return (z @ self.Pinv).view(-1, *self.info.shape)

    def sample(self, n, y=None, generator=None):
        return torch.rand(n, *self.info.shape, generator=generator)


class StubVAE(StubAE):
    """Adds a Gaussian posterior whose last two units carry no information (mu = 0, var = 1)."""

    capabilities = StubAE.capabilities | {"posterior", "posterior_sample"}

    def posterior(self, x):
        mu = self.encode(x) * 10
        mu[:, -2:] = 0
        return Posterior(mean=mu, logvar=torch.zeros_like(mu))


class StubVAEFirstInactive(StubAE):
    """A Gaussian posterior whose first three units carry no information."""

    capabilities = StubAE.capabilities | {"posterior", "posterior_sample"}

    def posterior(self, x):
        mu = self.encode(x) * 10
        mu[:, :3] = 0
        return Posterior(mean=mu, logvar=torch.zeros_like(mu))


class StubEncoderOnly(StubAE):
    capabilities = StubAE.capabilities - {"sample"}

    def sample(self, n, y=None, generator=None):
        raise Unsupported("StubEncoderOnly cannot sample")


def _ctx(tmp_path, name="fake", **kw):
    from genae.data import DataConfig
    from genae.metrics.domain import DomainRecipe
    base = dict(n_samples=64, batch_size=32, cache_dir=str(tmp_path),
                domain_recipe=DomainRecipe(width=4, feature_dim=16, steps=40, batch_size=32))
    base.update(kw)
    return M.EvalContext(DataConfig(name, n=kw.pop("n", None)) if name != "synthetic"
                         else DataConfig("synthetic", n=300, latent_dim=4, dim=16), **base)


def test_registry_end_to_end_on_fake(tmp_path):
    from genae.data import DataConfig, load_dataset
    torch.set_num_threads(1)
    ctx = _ctx(tmp_path)
    info = load_dataset(DataConfig("fake"), "train").info
    method = StubVAE(info)
    method.train()
    res = M.evaluate(method, ctx, list(M.METRICS))
    assert list(res) == list(M.METRICS) and method.training          # order kept, mode restored
    factor_metrics = ("mig", "mig-sampled", "dci", "sap", "factorvae-score", "modularity")
    for name in factor_metrics:                                       # fake has no factors
        assert set(res[name]) == {"skipped", "seconds"} and "factor" in res[name]["skipped"]
    for name, r in res.items():
        if name in factor_metrics:
            continue
        assert "skipped" not in r, (name, r)
        nums = [v for k, v in r.items() if isinstance(v, float)]
        assert nums and all(np.isfinite(v) for v in nums), (name, r)
    for name in ("fid", "kid", "precision-recall"):
        r = res[name]
        assert r["backbone"] == "domain" and r["split"] == "test" and r["n_fake"] == 64
        assert r["n_real"] == 64 and 0 <= r["backbone_test_acc"] <= 1
    assert res["is"]["n_fake"] == 64 and 1.0 <= res["is"]["value"] <= 10.0
    assert res["active-dims"]["value"] == 4 and res["active-dims"]["method"] == "KL > 0.01 nats"
    assert res["nac"]["n_dims"] == 4
    assert res["decode-variance"]["value"] > 0
    assert 0.0 <= res["cluster-acc"]["value"] <= 1.0 and res["cluster-acc"]["assignments"].startswith("kmeans")
    # recon-mse against a direct computation.
    test = load_dataset(DataConfig("fake"), "test")
    x = test.x.float() / 255
    ref = ((method.decode(method.encode(x)).clamp(0, 1) - x) ** 2).mean().item()
    assert res["recon-mse"]["value"] == pytest.approx(ref, rel=1e-5)
    # fid against frechet_distance of independently computed features (same seeded samples).
    net = ctx.classifier()
    with torch.no_grad():
        fr = net.features(x).double().numpy()
        fake = method.sample(64, generator=torch.Generator().manual_seed(0))
        fake = (fake * 255).round() / 255                      # samples are quantised like real images
        ff = net.features(fake).double().numpy()
    ref = M.frechet_distance(*M.feature_statistics(fr), *M.feature_statistics(ff))
    assert res["fid"]["value"] == pytest.approx(ref, rel=1e-4)
    # The domain classifier and the real statistics are cached on disk.
    assert list((tmp_path / "domain").glob("fake-*.safetensors")) and list((tmp_path / "stats").glob("fake-*.npz"))


def test_registry_skips_and_errors(tmp_path):
    from genae.data import DataConfig, load_dataset
    from genae.errors import ConfigError
    ctx = _ctx(tmp_path)
    info = load_dataset(DataConfig("fake"), "train").info
    with pytest.raises(ConfigError, match="valid: fid, kid"):
        M.evaluate(StubAE(info), ctx, ["fid", "fidd"])
    res = M.evaluate(StubEncoderOnly(info), ctx, ["fid", "is", "decode-variance", "active-dims", "sharpness"])
    assert "cannot sample" in res["fid"]["skipped"] and "cannot sample" in res["is"]["skipped"]
    assert "posterior" in res["decode-variance"]["skipped"]
    assert res["active-dims"]["method"] == "feature rank" and res["active-dims"]["value"] == 6
    assert "skipped" in res["sharpness"]["samples"] and res["sharpness"]["reconstructions"] > 0
    res = M.evaluate(StubVAEFirstInactive(info), ctx, ["active-dims", "decode-variance"])
    assert res["active-dims"]["value"] == 3 and res["active-dims"]["active"] == [3, 4, 5]
    assert res["decode-variance"]["value"] > 0


def test_registry_vector_data_uses_raw_features(tmp_path):
    from genae.data import load_dataset
    ctx = _ctx(tmp_path, "synthetic", n_samples=200)
    test = load_dataset(ctx.data_cfg, "test")
    method = StubAE(test.info, latent=4)
    method.input_range = "raw"
    res = M.evaluate(method, ctx, ["fid", "is", "mig", "ns-acc", "sharpness", "nac", "recon-mse"])
    assert res["fid"]["backbone"] == "raw" and res["fid"]["n_real"] == len(test.x)
    fake = method.sample(200, generator=torch.Generator().manual_seed(0)).double().numpy()
    ref = M.frechet_distance(*M.feature_statistics(test.x.double().numpy()), *M.feature_statistics(fake))
    assert res["fid"]["value"] == pytest.approx(ref, rel=1e-6)
    assert "vector data" in res["is"]["skipped"] and "labels" in res["ns-acc"]["skipped"]
    assert "vector" in res["sharpness"]["skipped"]
    assert 0.0 <= res["mig"]["value"] <= 1.0 and set(res["mig"]["per_factor"]) == set(test.factor_names)
    assert 0.0 <= res["nac"]["value"] <= 1.0


def _fake_inception(monkeypatch):
    """No Inception weights offline: a seeded, randomly initialised FIDInceptionV3 stands in."""
    from genae.metrics import inception

    def load(device="cpu", download=True):
        torch.manual_seed(0)
        return inception.FIDInceptionV3().to(device).eval(), "ab" * 32
    monkeypatch.setattr(inception, "load_fid_inception", load)


def test_backbones_features_and_weights_hash_are_stable(tmp_path, monkeypatch):
    from genae.errors import ConfigError
    from genae.metrics.backbones import make_backbone
    torch.set_num_threads(1)
    # raw: the vectors themselves, no weights, no classifier head.
    raw = make_backbone("raw")
    v = torch.randn(7, 3, 2, dtype=torch.float64)
    assert torch.equal(raw.features(v), v.float().flatten(1)) and torch.equal(raw.features(v), raw.features(v))
    f, p = raw.embed(v, batch_size=3, with_probs=True)
    assert p is None and np.array_equal(f, v.float().flatten(1).numpy())
    assert raw.weights_hash == "" and raw.protocol() == {"backbone": "raw"}
    # domain: same input -> same features; the hash survives the cache and is the one eval records.
    ctx = _ctx(tmp_path)
    dom = ctx.get_backbone("domain")
    x = ctx.dataset("test").x[:40]
    f1 = dom.features(x)
    assert f1.shape == (40, 16) and f1.dtype == torch.float32
    assert torch.equal(f1, dom.features(x)) and torch.equal(f1, dom.features(x.float() / 255))
    # batching changes nothing but rounding: a matrix-product kernel may block a batch of 16 rows
    # differently from one of 40 (seen with AVX2 kernels), the same sums in another order; float32
    # rounding (2^-24 relative per addition) through three conv layers and a linear layer of fan-in
    # ≤ 512 stays far below 1e-5 of the features' scale
    np.testing.assert_allclose(dom.embed(x, batch_size=16), f1.numpy(), rtol=0, atol=1e-5 * float(f1.abs().max()))
    again = make_backbone("domain", _ctx(tmp_path).dataset, cache_dir=tmp_path,
                          domain_recipe=ctx.domain_recipe)                    # read from the cache
    assert again.weights_hash == dom.weights_hash and len(dom.weights_hash) == 16
    assert torch.equal(again.features(x), f1)
    res = M.evaluate(StubVAE(ctx.dataset("train").info), ctx, ["fid", "recon-class-acc"])
    assert res["fid"]["backbone_weights"] == res["recon-class-acc"]["backbone_weights"] == dom.weights_hash
    assert res["recon-class-acc"]["backbone_name"] == res["fid"]["backbone_name"] == dom.description
    assert res["fid"]["backbone_test_acc"] == res["recon-class-acc"]["backbone_test_acc"] == dom.test_accuracy
    assert ctx.classifier() is dom.net
    # inception (a stand-in network: no weights offline): stable features, the loader's hash.
    _fake_inception(monkeypatch)
    inc = make_backbone("inception")
    xi = x[:2]
    fi = inc.features(xi)
    assert fi.shape == (2, 2048) and torch.equal(fi, make_backbone("inception").features(xi))
    assert inc.weights_hash == "ab" * 32 and inc.protocol()["backbone_weights"] == "ab" * 8
    with pytest.raises(M.Skip, match="1 or 3 channels"):
        inc.features(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ConfigError, match="unknown backbone"):
        make_backbone("resnet")


# evaluate(StubVAE, every metric) on `fake` with _ctx's settings, as computed by the main before the
# metrics were split into backbones / context / metric groups (issue 25). The SHA-256 is of the
# whole results (JSON, sorted keys, "seconds" dropped) and holds on the machine kind it was made on
# (CPU kernels decide the last bits); elsewhere the headline numbers are compared approximately.
PRE_SPLIT_MACHINE = "AMD EPYC / avx512 / torch 2.13.0+cpu"
PRE_SPLIT_SHA256 = "6684c9e44a8336b4fada7a9d1568e6f0ddce3e42078410ab2d88f88c94218b2d"
PRE_SPLIT_VALUES = {
    "fid": 10.1028810929246, "kid": 6.32023495174347, "is": 1.0017543946133878,
    "precision-recall": (0.0, 0.0), "recon-mse": 0.0647149165998625, "sharpness": 1.6587648020107428,
    "recon-class-acc": (0.09375, 0.078125), "decode-variance": 0.0035087518973212425, "ns-acc": 0.5,
    "knn-acc": 1.0, "linear-probe": 0.9375, "cluster-acc": 0.625, "nmi": 0.6982268463411081,
    "feature-rank": 6, "rate-reduction": 1.079031953095194, "mig": None,
    "qmm-score": 1.0879694765341086, "nac": 0.2551575921472142, "active-dims": 4,
}


def test_registry_values_unchanged_by_the_metrics_split(tmp_path):
    import hashlib
    import json
    from fixtures.make_weight_digests import machine
    from genae.data import DataConfig, load_dataset
    torch.set_num_threads(1)
    # the metrics that existed then (later ones are tested on their own)
    res = M.evaluate(StubVAE(load_dataset(DataConfig("fake"), "train").info), _ctx(tmp_path), list(PRE_SPLIT_VALUES))
    assert list(res) == list(PRE_SPLIT_VALUES)
    for name, want in PRE_SPLIT_VALUES.items():
        r = res[name]
        if want is None:                                  # fake data has no ground-truth factors
            assert "factors" in r["skipped"]
            continue
        got = ((r["precision"], r["recall"]) if name == "precision-recall" else
               (r["absolute"], r["relative"]) if name == "recon-class-acc" else r.get("value"))
        assert got == pytest.approx(want, rel=1e-4, abs=1e-9), name
    if machine() == PRE_SPLIT_MACHINE:
        plain = {n: {k: v for k, v in r.items() if k != "seconds"} for n, r in json.loads(json.dumps(res)).items()}
        assert hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest() == PRE_SPLIT_SHA256


def test_sharpness_sp_against_a_numpy_loop():
    """San Pedro & Siersdorfer's normalised sharpness (our stated reading) by explicit loops."""
    rng = np.random.default_rng(5)
    img = rng.random((2, 3, 6, 7))
    got = M.image.sharpness_sp_per_image(torch.tensor(img))
    for n in range(2):
        lum = 0.5 * (img[n].max(0) + img[n].min(0))               # HSL lightness
        vals = []
        for i in range(1, 5):
            for j in range(1, 6):
                lap = lum[i - 1, j] + lum[i + 1, j] + lum[i, j - 1] + lum[i, j + 1] - 4 * lum[i, j]
                mu = lum[i - 1:i + 2, j - 1:j + 2].mean()
                vals.append(abs(lap) / (mu + 1 / 255))
        assert got[n] == pytest.approx(np.mean(vals), rel=1e-12)
    flat = M.image.sharpness_sp_per_image(torch.full((1, 1, 8, 8), 0.5))
    assert flat[0] == 0.0                                          # no edges: no sharpness


def test_declared_needs_are_checked_in_one_place_before_the_metric_runs(tmp_path, monkeypatch):
    """``evaluate`` checks every metric's declared ``needs`` (``unmet_need``) before calling it: a
    metric whose needs the method or the data do not meet is skipped with the reason and never
    called; one whose needs are met is called."""
    import dataclasses

    from genae.data import DataConfig, load_dataset

    ctx = _ctx(tmp_path)
    info = load_dataset(DataConfig("fake"), "train").info
    calls = []
    spy = M.MetricSpec(lambda m, c: calls.append(1) or {"value": 1.0}, "spy", ("sample", "labels"))
    monkeypatch.setitem(M.METRICS, "spy-sample", spy)
    monkeypatch.setitem(M.METRICS, "spy-factors", dataclasses.replace(spy, needs=("encode", "factors")))
    monkeypatch.setitem(M.METRICS, "spy-any", dataclasses.replace(spy, needs=("cluster|encode",)))
    res = M.evaluate(StubEncoderOnly(info), ctx, ["spy-sample", "spy-factors", "spy-any"])
    assert "cannot sample" in res["spy-sample"]["skipped"]
    assert "needs ground-truth factors; fake has none" == res["spy-factors"]["skipped"]
    assert res["spy-any"]["value"] == 1.0 and len(calls) == 1
