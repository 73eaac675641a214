"""InfoGAN's mutual-information bound and code handling; VAE-GAN's per-player losses (explicit
gradient isolation between decoder and discriminator, and the sign of the decoder's GAN term)."""
from __future__ import annotations

import math

import pytest
import torch

from conftest import TINY
from genae.methods import METHODS, Batch, DataInfo, Unsupported
from genae.objectives import categorical_mi_bound, uniform_gaussian_mi_bound
from genae.trainer import backward_update, player_params

IMAGE = DataInfo((1, 28, 28), 10, "image")
VECTOR = DataInfo((6,), None, "vector")


def _build(name, info=IMAGE, **extra):
    torch.manual_seed(0)
    spec = METHODS[name]
    return spec.build(spec.config(**{**TINY[name], **extra}), info)


# --- InfoGAN -----------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.7, 0.999])
def test_categorical_bound_is_entropy_minus_cross_entropy(p):
    # Q gives the true code probability p and spreads 1 − p evenly over the other K − 1 codes:
    # cross-entropy = −log p, H(c) = log K, so L_I = log K + log p (by hand).
    k, b = 10, 6
    codes = torch.arange(b) % k
    probs = torch.full((b, k), (1 - p) / (k - 1), dtype=torch.float64)
    probs[torch.arange(b), codes] = p
    bound = categorical_mi_bound(probs.log(), codes)
    torch.testing.assert_close(bound, torch.full((b,), math.log(k) + math.log(p), dtype=torch.float64))


def test_categorical_bound_limits():
    codes = torch.tensor([0, 3, 2])
    assert torch.allclose(categorical_mi_bound(torch.zeros(3, 4), codes), torch.zeros(3))  # uniform Q: 0
    sure = torch.full((3, 4), -1e4)
    sure[torch.arange(3), codes] = 0.0
    assert torch.allclose(categorical_mi_bound(sure, codes), torch.full((3,), math.log(4)))  # = H(c)


def test_continuous_bound_by_hand():
    # c ~ U[-1, 1]^2: H(c) = 2 log 2; Q = N(mean, σ² = 0.25): log Q = Σ −(c − m)²/(2σ²) − log σ − ½ log 2π
    mean = torch.tensor([[0.0, 0.5]], dtype=torch.float64)
    c = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    log_q = -(0.25 / (2 * 0.25)) - 2 * (math.log(0.5) + 0.5 * math.log(2 * math.pi))
    expected = 2 * math.log(2) + log_q
    torch.testing.assert_close(uniform_gaussian_mi_bound(mean, c, 0.5), torch.tensor([expected], dtype=torch.float64))


def test_infogan_presets():
    assert METHODS["infogan"].config().noise_dim == 62
    assert METHODS["infogan-qmm"].config().noise_dim == 8
    for name in ("infogan", "infogan-qmm"):
        cfg = METHODS[name].config()
        assert (cfg.n_categories, cfg.n_continuous) == (10, 2)


def test_infogan_sample_fixes_the_category_and_cluster_is_a_distribution():
    m = _build("infogan").eval()
    k = m.cfg.n_categories
    y = torch.tensor([0, 1, 2, 1])
    cat, cont, latent = m._codes(4, y, torch.Generator().manual_seed(0))
    assert torch.equal(cat, y) and cont.abs().max() <= 1
    torch.testing.assert_close(latent[:, m.cfg.noise_dim: m.cfg.noise_dim + k],
                               torch.nn.functional.one_hot(y, k).float())
    with torch.no_grad():
        assert m.sample(4, y=y).shape == (4, *IMAGE.shape)
        p = m.cluster(torch.rand(5, *IMAGE.shape) * 2 - 1)
    assert p.shape == (5, k) and torch.allclose(p.sum(1), torch.ones(5))
    with pytest.raises(Unsupported):
        m.sample(2, y=torch.tensor([0, k]))


def test_infogan_mi_term_trains_q_and_generator():
    # The discriminator player holds D's trunk, its output layer and the Q head; the generator player G.
    m = _build("infogan", VECTOR)
    params = player_params(m.optimizers())
    q_ids = {id(p) for p in m.q_head.parameters()}
    assert q_ids <= {id(p) for p in params["discriminator"]}
    assert {id(p) for p in params["generator"]} == {id(p) for p in m.generator.parameters()}
    updates = m.train_step(Batch(torch.randn(8, 6)), 0)
    d_update = next(updates)
    assert set(d_update.losses) == {"discriminator"}
    g_q = torch.autograd.grad(d_update.losses["discriminator"], list(m.q_head.parameters()))
    assert any(g.abs().sum() > 0 for g in g_q)   # Q learns from the discriminator player's loss
    g_update = next(updates)
    assert set(g_update.losses) == {"generator"}
    logs = g_update.logs
    assert "generator/mi" in logs and "discriminator/mi_cat" in d_update.logs


# --- VAE-GAN -----------------------------------------------------------------------------------

def test_vaegan_decoder_and_discriminator_gradients_are_isolated():
    m = _build("vae-gan", VECTOR)
    params = player_params(m.optimizers())
    assert set(params) == {"encoder", "decoder", "discriminator"}
    (update,) = list(m.train_step(Batch(torch.randn(8, 6)), 0))
    losses = update.losses
    own = {pl: torch.autograd.grad(losses[pl], params[pl], retain_graph=True) for pl in losses}
    # the graph does connect them: D's loss depends on the decoder, the decoder's on D
    cross_dec = torch.autograd.grad(losses["discriminator"], params["decoder"], retain_graph=True)
    cross_dis = torch.autograd.grad(losses["decoder"], params["discriminator"], retain_graph=True)
    assert any(g.abs().sum() > 0 for g in cross_dec) and any(g.abs().sum() > 0 for g in cross_dis)
    for p in m.parameters():
        p.grad = None
    backward_update(update, params)
    for pl in losses:
        for p, g in zip(params[pl], own[pl]):
            torch.testing.assert_close(p.grad, g, msg=f"{pl}'s gradient is not its own loss's")
    # neither D's gradient (either sign, pythae's flip included) reaches the decoder, nor the reverse
    flat = lambda gs: torch.cat([g.flatten() for g in gs])  # noqa: E731
    dec_grad = flat([p.grad for p in params["decoder"]])
    for sign in (1, -1):
        assert not torch.allclose(dec_grad, flat(own["decoder"]) + sign * flat(cross_dec))
    dis_grad = flat([p.grad for p in params["discriminator"]])
    assert not torch.allclose(dis_grad, flat(own["discriminator"]) + flat(cross_dis))
    # the encoder's loss is L_prior + L_llike, nothing adversarial
    torch.testing.assert_close(losses["encoder"].detach(), update.logs["encoder/prior"] + update.logs["encoder/llike"])

@pytest.mark.parametrize("dec_gan", ["non-saturating", "minimax"])
def test_vaegan_decoder_step_raises_the_discriminators_logit_on_its_samples(dec_gan):
    # γ = 0: the decoder's loss is its GAN term alone. One gradient-descent step of the decoder, with
    # the same random draws (seed) before and after, must raise Dis's mean logit on x̃ and x_p.
    m = _build("vae-gan", VECTOR, gamma=0.0, dec_gan=dec_gan)
    params = player_params(m.optimizers())["decoder"]
    x = torch.randn(16, 6)
    torch.manual_seed(5)
    (before,) = list(m.train_step(Batch(x), 0))
    grads = torch.autograd.grad(before.losses["decoder"], params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= 0.05 * g
    torch.manual_seed(5)
    (after,) = list(m.train_step(Batch(x), 0))
    assert after.logs["decoder/d_logit"] > before.logs["decoder/d_logit"]
    assert after.losses["decoder"] < before.losses["decoder"]


def test_infogan_generator_step_draws_fresh_codes_as_the_official_trainer():
    """``fresh_codes`` (default): G's update sees new noise and codes, so one train_step draws the
    prior twice; ``fresh_codes=False`` (runs from before) reuses D's draw."""
    from genae.methods import METHODS, Batch, DataInfo

    info = DataInfo((8,), None, "vector")
    x = torch.randn(6, 8)
    for fresh, draws in ((True, 2), (False, 1)):
        spec = METHODS["infogan"]
        m = spec.build(spec.config(net="mlp", hidden=8, noise_dim=4, n_categories=3, q_hidden=8,
                                   fresh_codes=fresh), info)
        calls = []
        real = m._codes
        m._codes = lambda n, *a, **k: calls.append(n) or real(n, *a, **k)
        for _ in m.train_step(Batch(x, None), 0):
            pass
        assert len(calls) == draws


def test_infogan_builds_table_1_networks_with_net_infogan_mnist():
    from genae.methods import METHODS, Batch, DataInfo

    spec = METHODS["infogan"]
    m = spec.build(spec.config(net="infogan-mnist"), DataInfo((1, 28, 28), 10, "image"))
    assert type(m.generator).__name__ == "InfoGANGenerator" and m.q_head is not None
    assert m.discriminator.n_features == 1024
    updates = list(m.train_step(Batch(torch.rand(4, 1, 28, 28) * 2 - 1, None), 0))
    assert len(updates) == 2 and all(torch.isfinite(v).all() for u in updates for v in u.losses.values())
