"""Quotient manifold modeling: the bias-aligning regulariser against float64 NumPy, the multi-bias
layer against A linear layers sharing a weight, Q-β-VAE's EM responsibilities against the posterior
over decoders, eq. 3 recovering the code and biases of a generated image, the disentanglement score
on codes with a known ratio, and the `genae manifold` command."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genae.manifold import derive, manifold_grid
from genae.methods import METHODS, Batch, DataInfo
from genae.metrics import transform_score
from genae.nets.multibias import MultiBiasLinear, QMMGenerator
from genae.objectives import bias_alignment, em_responsibilities, tangential_offset
from genae.trainer import backward_update, player_params, step_update

IMAGE = DataInfo((1, 28, 28), 10, "image")


def _build(name, info=IMAGE, **kw):
    torch.manual_seed(0)
    spec = METHODS[name]
    return spec.build(spec.config(**kw), info)


def _np_alignment(w, b):
    t = b @ w                                             # (A, in): Uᵀa as rows
    c = t - t.mean(0)
    return np.log(np.trace(c.T @ c / len(b)))             # covariance normalised by A


def test_bias_alignment_matches_float64_numpy_and_is_shift_invariant():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(7, 3)), rng.normal(size=(5, 7))
    got = bias_alignment(torch.tensor(w), torch.tensor(b))
    assert got.item() == pytest.approx(_np_alignment(w, b), rel=1e-12)
    shift = rng.normal(size=7)
    assert bias_alignment(torch.tensor(w), torch.tensor(b + shift)).item() == pytest.approx(got.item(), rel=1e-12)
    # scaling U by s adds 2 log s (the log makes R_BA a measure of shape, not size)
    assert bias_alignment(torch.tensor(3 * w), torch.tensor(b)).item() == pytest.approx(got.item() + 2 * np.log(3))
    # the gradient reaches both U and the biases
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    gw, gb = torch.autograd.grad(bias_alignment(wt, bt), (wt, bt))
    assert gw.abs().sum() > 0 and gb.abs().sum() > 0
    with pytest.raises(ValueError, match="A >= 2"):
        bias_alignment(torch.tensor(w), torch.tensor(b[:1]))


def test_tangential_offset_by_hand():
    w = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], dtype=torch.float64)     # (out=3, in=2)
    a = torch.tensor([[1.0, 1.0, 5.0]], dtype=torch.float64)
    ref = torch.tensor([0.0, 0.0, -5.0], dtype=torch.float64)
    # Uᵀ(a − ā) = (1, 2): the third (normal) coordinate does not count
    assert tangential_offset(w, a, ref).item() == pytest.approx(np.log(5.0), rel=1e-9)


def test_multibias_layer_equals_linear_layers_sharing_the_weight():
    torch.manual_seed(0)
    layer = MultiBiasLinear(5, 4, 3)
    x = torch.randn(6, 5)
    index = torch.tensor([0, 2, 1, 1, 0, 2])
    got = layer(x, index)
    for i in range(3):
        lin = nn.Linear(5, 4)
        with torch.no_grad():
            lin.weight.copy_(layer.weight)
            lin.bias.copy_(layer.biases[i])
        rows = index == i
        torch.testing.assert_close(got[rows], lin(x[rows]))
    torch.testing.assert_close(layer(x, bias=layer.biases[index]), got)       # explicit biases
    torch.testing.assert_close(layer.tangential(), layer.biases @ layer.weight)
    with pytest.raises(ValueError, match="exactly one"):
        layer(x)
    with pytest.raises(ValueError, match="exactly one"):
        layer(x, index, layer.biases[index])


def test_qmm_generator_shares_all_but_the_fc_biases():
    g = QMMGenerator(4, (1, 28, 28), 3, base=8, hidden=16)
    multi = {id(p) for layer in g.multibias for p in (layer.biases,)}
    per_bias = [n for n, p in g.named_parameters() if p.dim() >= 1 and p.shape[0] == 3 and id(p) in multi]
    assert per_bias == ["fc1.biases", "fc2.biases"]
    assert g(torch.randn(5, 4), torch.zeros(5, dtype=torch.long)).shape == (5, 1, 28, 28)


def test_em_responsibilities_are_the_posterior_over_decoders():
    m = _build("q-beta-vae", num_biases=3, latent_dim=4, hidden=8, fc_hidden=16).eval()
    x = (torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        gamma, nll = em_responsibilities(m._log_lik(z, x))
        # independent reference: each decoder on its own, Bernoulli log-likelihood in float64 NumPy
        ll = np.zeros((5, 3))
        for i in range(3):
            p = torch.sigmoid(m.decoder(z, torch.full((5,), i))).double().numpy().reshape(5, -1)
            t = x.double().numpy().reshape(5, -1)
            ll[:, i] = (t * np.log(p) + (1 - t) * np.log1p(-p)).sum(1)
    post = np.exp(ll - ll.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    np.testing.assert_allclose(gamma.double().numpy(), post, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gamma.sum(1), torch.ones(5))
    np.testing.assert_allclose(nll.double().numpy(), -(post * ll).sum(1), rtol=1e-4)


def test_em_step_repeats_per_minibatch_and_responsibilities_are_held_fixed():
    m = _build("q-beta-vae", num_biases=3, latent_dim=4, hidden=8, fc_hidden=16, em_repeats=4)
    x = torch.rand(6, 1, 28, 28)
    updates = list(m.train_step(Batch(x), 0))
    assert len(updates) == 4 and all(set(u.losses) == {"vae"} for u in updates)
    # γ is a constant of the M-step: the loss's gradient through log p_i is γ_i-weighted only
    ll = torch.randn(4, 3, requires_grad=True)
    gamma, nll = em_responsibilities(ll)
    (g,) = torch.autograd.grad(nll.sum(), ll)
    torch.testing.assert_close(g, -gamma)


def test_regulariser_pulls_the_tangential_components_together():
    def r_ba_after(weight):
        m = _build("q-wgan", num_biases=4, latent_dim=3, hidden=16, fc_hidden=16, net="mlp", depth=1,
                   reg_weight=weight)
        opts = m.optimizers()
        params = player_params(opts)
        x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
        for step in range(30):
            for update in m.train_step(Batch(x), step):
                backward_update(update, params)
                step_update(update, opts, params, {})
        return m.regulariser().item()

    assert r_ba_after(1.0) < r_ba_after(0.0) - 1.0


def test_reg_schedule_and_single_bias_set():
    from genae.methods.qmm_shared import reg_weight_at

    assert [reg_weight_at(5e-6, ((300, 5e-4),), s) for s in (0, 299, 300, 1000)] == [5e-6, 5e-6, 5e-4, 5e-4]
    from genae.errors import ConfigError

    with pytest.raises(ConfigError, match="num_biases >= 2"):
        _build("q-wgan", num_biases=1)
    with pytest.raises(ConfigError, match="increasing steps"):
        _build("q-wgan", reg_schedule=((300, 1e-3), (100, 1e-3)))
    m = _build("wgan-qmm", latent_dim=4, hidden=8, fc_hidden=16)
    assert m.regulariser().item() == 0.0 and m.manifolds().count == 1


def test_eq3_recovers_the_code_and_biases_of_a_generated_image():
    m = _build("q-wgan", num_biases=3, latent_dim=3, hidden=32, net="mlp", depth=1).eval()
    man = m.manifolds()
    z0 = torch.randn(2, 3, generator=torch.Generator().manual_seed(4))
    idx = torch.tensor([2, 0])
    with torch.no_grad():
        x = man.render(z0, idx)
    d = derive(m, x, mu=0.0, steps=300, restarts=4)
    assert torch.equal(d.index, idx) and d.derived
    assert d.error.max() < 1e-4
    # z and the biases are identified only up to the network's symmetries (Uz + a = U(z + v) +
    # (a − Uv); biases of ReLU units that are off are free), so what eq. 3 must recover is the
    # image (above) and the manifold it came from; the generated codes start from the inversion:
    assert (d.z - z0).norm(dim=1).max() < 1.0
    # with the tangential penalty (μ = 0.05) the image is still regenerated from new biases
    d2 = derive(m, x, mu=0.05, steps=300, restarts=4)
    assert d2.error.max() < 1e-3 and torch.equal(d2.index, idx)
    assert all(b.shape == (2, layer.out_features) for layer, b in zip(man.layers, d2.biases))
    grid = manifold_grid(m, x, d2)
    assert grid.shape[2] == 3 and grid.dtype == np.uint8
    assert all(p.grad is None for p in m.parameters())                       # weights untouched


def test_derive_frees_only_the_layers_asked():
    """``free``: the other multi-bias layers keep the biases of the chosen learned manifold."""
    m = _build("q-wgan", num_biases=3, latent_dim=3, hidden=16, net="mlp", depth=1).eval()
    man = m.manifolds()
    x = torch.rand(2, 1, 28, 28) * 2 - 1                  # not on any learned manifold
    d = derive(m, x, mu=0.05, steps=30, restarts=1, free=[0])
    assert torch.equal(d.biases[1], man.layers[1].biases[d.index])
    assert not torch.equal(d.biases[0], man.layers[0].biases[d.index])
    assert d.protocol["free_layers"] == [0]
    with pytest.raises(ValueError, match="outside"):
        derive(m, x, steps=2, restarts=1, free=[5])
    # free=[]: no biases estimated, the best learned manifold's fit (the inversion alone)
    from genae.inversion import invert_multi

    learned = derive(m, x, steps=30, restarts=1, free=[])
    fit = invert_multi([man.generator(k) for k in range(man.count)], x, man.dim, steps=30, restarts=1,
                       lr=0.1, seed=0)
    assert not learned.derived and learned.biases == [] and torch.equal(learned.index, fit.index)
    torch.testing.assert_close(learned.z, fit.z, rtol=0, atol=0)
    assert (learned.error > d.error).all()               # estimating layer 0's biases fits better


class _Bar:
    """Stands in for ``tqdm.auto.tqdm``: records the bars made, their total and their progress."""

    made: list["_Bar"] = []

    def __init__(self, total=None, **kw):
        self.total, self.n, self.closed, self.desc = total, 0, False, kw.get("desc", "")
        _Bar.made.append(self)

    def update(self, n=1):
        self.n += n

    def close(self):
        self.closed = True


def test_derive_shows_a_progress_bar_over_inversion_and_eq3_only_when_asked(monkeypatch):
    """``genae manifold``'s minutes of work: one bar, A·steps of inversion then steps of eq. 3,
    full and closed at the end; none without ``progress``."""
    monkeypatch.setattr("tqdm.auto.tqdm", _Bar)
    monkeypatch.setattr(_Bar, "made", [])
    m = _build("q-wgan", num_biases=3, latent_dim=3, hidden=8, net="mlp", depth=1).eval()
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    quiet = derive(m, x, steps=6, restarts=1)
    assert _Bar.made == []
    shown = derive(m, x, steps=6, restarts=1, progress=True)
    (bar,) = _Bar.made
    assert bar.total == bar.n == (3 + 1) * 6 and bar.closed and "eq. 3" in bar.desc
    torch.testing.assert_close(shown.z, quiet.z, rtol=0, atol=0)  # the bar changes nothing


def test_qmm_score_inversion_shows_one_full_bar_only_with_progress(monkeypatch):
    """qmm-score's encoding by optimisation (selection, identity, both walks over all batches)
    advances one bar to exactly its total; ``genae eval --json`` (progress off) shows none."""
    from genae.data import DataConfig
    from genae.metrics import EvalContext
    from genae.metrics.latent import qmm_score

    monkeypatch.setattr("tqdm.auto.tqdm", _Bar)
    monkeypatch.setattr("genae.metrics.latent.QMM_INVERSION",
                        {"steps": 3, "restarts": 2, "walk_steps": 2, "select_steps": 2, "lr": 0.1})
    monkeypatch.setattr(_Bar, "made", [])
    m = _build("q-wgan", num_biases=3, latent_dim=3, hidden=8, net="mlp", depth=1).eval()
    for progress in (False, True):
        ctx = EvalContext(DataConfig("fake"), qmm_images=3, batch_size=2, progress=progress)
        with torch.no_grad():
            res = qmm_score(m, ctx)
        assert res["codes"] == "inversion"
    (bar,) = _Bar.made
    # 2 batches × (3 manifolds × 2 select + 3 identity + 2 transforms × 10 strengths × 2 walk steps)
    assert bar.total == bar.n == 2 * (3 * 2 + 3 + 2 * 10 * 2) and bar.closed


def test_derive_falls_back_to_inversion_without_multibias_layers():
    m = _build("wgan-gp", latent_dim=3, hidden=16, net="mlp", depth=1).eval()
    with torch.no_grad():
        x = m.manifolds().generator(0)(torch.randn(2, 3, generator=torch.Generator().manual_seed(5)))
    d = derive(m, x, steps=200, restarts=2)
    assert not d.derived and d.biases == [] and d.error.max() < 1e-3


def test_transform_score_known_ratio():
    """Codes moving by s·a·e1 (s the strength) and u(s)·b·e2 with u = s² − mean(s²) (uncorrelated
    with s): the centred covariance has eigenvalues ∝ a²·mean(s²) and b²·mean(u²)."""
    rng = np.random.default_rng(3)
    s = np.linspace(-1, 1, 11)
    u = s ** 2 - (s ** 2).mean()
    a, b = 2.0, 0.5
    e = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    base = rng.normal(size=(40, 1, 5)) * 7
    codes = base + (a * s)[None, :, None] * e[:, 0] + (b * u)[None, :, None] * e[:, 1]
    want = (a ** 2 * (s ** 2).mean()) / (b ** 2 * (u ** 2).mean())
    assert transform_score(codes)["score"] == pytest.approx(want, rel=1e-9)


def test_manifold_command_and_qmm_score_by_inversion(tmp_path):
    """`genae manifold` on a trained q-wgan run writes the grid; a file that is not an image is a
    one-line error; `genae eval --metrics qmm-score` encodes by optimisation on a generator."""
    import json

    from PIL import Image

    from conftest import fast_train_overrides
    from test_cli import _sets, genae

    run = tmp_path / "run"
    model = ["model.num_biases=3", "model.latent_dim=3", "model.hidden=8", "model.fc_hidden=16", "model.net='mlp'",
             "model.depth=1"]
    genae("train", "q-wgan", "--data", "fake", "--out", run, *_sets(model + fast_train_overrides(4)))
    img = tmp_path / "digit.png"
    Image.fromarray((np.random.default_rng(0).random((40, 30)) * 255).astype(np.uint8)).save(img)
    out = genae("manifold", run, "--image", img, "--out", tmp_path / "grid.png", "--steps", 20, "--restarts", 1)
    assert (tmp_path / "grid.png").is_file() and "derived manifold" in out.stdout
    assert "[genae manifold] inversion on 3 manifold(s), then eq. 3" in out.stderr  # the minutes are shown
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape[0] > 28 * 4                        # input row, derived row, 3 learned rows
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    proc = genae("manifold", run, "--image", bad, "--out", tmp_path / "g2.png", check=False)
    assert proc.returncode != 0 and "not a readable image" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "g2.png").exists()

    res = json.loads(genae("eval", run, "--metrics", "qmm-score", "--json").stdout)
    q = res["metrics"]["qmm-score"] if "metrics" in res else res["qmm-score"]
    assert q["codes"] == "inversion" and np.isfinite(q["slant"]) and np.isfinite(q["width"])
