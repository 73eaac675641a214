"""Objectives against independent float64 NumPy / SciPy / closed-form references."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from genae.objectives import (bernoulli_nll, gaussian_kl, gaussian_nll, gaussian_nll_optimal_variance,
                              gradient_penalty, js_discriminator_loss, ns_generator_loss,
                              reconstruction_nll, reparameterize, wgan_critic_loss, wgan_generator_loss,
                              wgan_gp_critic_loss)

RNG = np.random.default_rng(0)


def t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


# --- ELBO terms ------------------------------------------------------------------------------
def test_gaussian_kl_matches_closed_form():
    mu, logvar = RNG.normal(size=(5, 7)), RNG.normal(size=(5, 7))
    ref = 0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=1)
    out = gaussian_kl(t(mu), t(logvar))
    assert out.shape == (5,)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)


def test_gaussian_kl_matches_monte_carlo():
    mu, logvar = np.array([0.5, -1.0, 0.0]), np.array([0.3, -0.7, 0.0])
    sd = np.exp(0.5 * logvar)
    z = mu + sd * RNG.standard_normal((400_000, 3))
    mc = np.mean(np.sum(stats.norm.logpdf(z, mu, sd) - stats.norm.logpdf(z), axis=1))
    out = gaussian_kl(t(mu[None]), t(logvar[None])).item()
    assert out == pytest.approx(mc, abs=0.01)


def test_gaussian_kl_is_zero_at_prior():
    assert torch.all(gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)) == 0)


def test_bernoulli_nll_matches_numpy():
    logits, x = RNG.normal(size=(4, 2, 3, 3)) * 3, RNG.uniform(size=(4, 2, 3, 3))
    p = 1 / (1 + np.exp(-logits))
    ref = -np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=(1, 2, 3))
    out = bernoulli_nll(t(logits), t(x))
    assert out.shape == (4,)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)


@pytest.mark.parametrize("sigma", [1.0, 0.1, 2.5])
def test_gaussian_nll_matches_scipy(sigma):
    mean, x = RNG.uniform(size=(3, 1, 4, 4)), RNG.uniform(size=(3, 1, 4, 4))
    ref = -np.sum(stats.norm.logpdf(x, mean, sigma), axis=(1, 2, 3))
    np.testing.assert_allclose(gaussian_nll(t(mean), t(x), sigma).numpy(), ref, rtol=1e-12)
    # a tensor sigma (here per example) goes through the general path
    sig = np.array([sigma, 0.5, 1.5]).reshape(3, 1, 1, 1)
    ref2 = -np.sum(stats.norm.logpdf(x, mean, sig), axis=(1, 2, 3))
    np.testing.assert_allclose(gaussian_nll(t(mean), t(x), t(sig)).numpy(), ref2, rtol=1e-12)


def test_optimal_variance_nll_is_gaussian_nll_at_mse_and_its_minimum():
    mean, x = RNG.uniform(size=(6, 10)), RNG.uniform(size=(6, 10))
    b = x.shape[0]
    out = gaussian_nll_optimal_variance(t(mean), t(x))
    assert out.dim() == 0
    mse = np.mean((x - mean) ** 2)

    def batch_nll(sigma):  # per-example share of the batch NLL at a shared sigma, float64 SciPy
        return -np.sum(stats.norm.logpdf(x, mean, sigma)) / b

    assert out.item() == pytest.approx(batch_nll(np.sqrt(mse)), rel=1e-12)
    n = x.size
    assert out.item() == pytest.approx((n / 2 * np.log(mse) + n / 2 * (1 + np.log(2 * np.pi))) / b, rel=1e-12)
    grid = np.exp(np.linspace(np.log(mse) / 2 - 2, np.log(mse) / 2 + 2, 2001))
    assert out.item() <= min(batch_nll(s) for s in grid) + 1e-9
    best = optimize.minimize_scalar(lambda ls: batch_nll(np.exp(ls)), bracket=(-3, 0), tol=1e-12)
    assert out.item() == pytest.approx(best.fun, rel=1e-9)


def test_reconstruction_nll_dispatch():
    out, x = RNG.uniform(size=(4, 5)), RNG.uniform(size=(4, 5))
    np.testing.assert_allclose(reconstruction_nll("bernoulli", t(out), t(x)).numpy(),
                               bernoulli_nll(t(out), t(x)).numpy())
    np.testing.assert_allclose(reconstruction_nll("gaussian", t(out), t(x), 0.3).numpy(),
                               gaussian_nll(t(out), t(x), 0.3).numpy())
    opt = reconstruction_nll("gaussian-optimal", t(out), t(x))
    assert opt.shape == (4,)
    assert opt.mean().item() == pytest.approx(gaussian_nll_optimal_variance(t(out), t(x)).item(), rel=1e-12)
    with pytest.raises(ValueError, match="bernoulli, gaussian, gaussian-optimal"):
        reconstruction_nll("laplace", t(out), t(x))


def test_reparameterize_moments_and_gradient():
    torch.manual_seed(0)
    mu = torch.full((200_000, 2), 1.5, dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([[0.0, np.log(4.0)]], dtype=torch.float64).expand(200_000, 2).requires_grad_(True)
    z = reparameterize(mu, logvar)
    np.testing.assert_allclose(z.mean(0).detach().numpy(), [1.5, 1.5], atol=0.02)
    np.testing.assert_allclose(z.std(0).detach().numpy(), [1.0, 2.0], atol=0.02)
    z.sum().backward()
    assert torch.all(mu.grad == 1)


# --- GAN terms -------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1.0, 0.3, 2.0])
def test_gradient_penalty_of_linear_critic(scale):
    w = torch.randn(16, dtype=torch.float64)
    w = (scale * w / w.norm()).requires_grad_(True)
    critic = lambda v: v.flatten(1) @ w  # noqa: E731  D(x) = w·x, ‖∇D‖ = ‖w‖ everywhere
    real = torch.randn(8, 1, 4, 4, dtype=torch.float64)
    fake = torch.randn(8, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    gp = gradient_penalty(critic, real, fake)
    assert gp.dim() == 0
    assert gp.item() == pytest.approx((scale - 1) ** 2, abs=1e-12)
    # differentiable in the critic's parameters (create_graph), not in the detached inputs
    (g,) = torch.autograd.grad(gp, w)
    np.testing.assert_allclose(g.numpy(), (2 * (scale - 1) * w / scale).detach().numpy(), atol=1e-12)
    assert torch.autograd.grad(gp, fake, allow_unused=True)[0] is None


@pytest.mark.parametrize("lam", [10.0, 0.5])
def test_wgan_gp_critic_loss_of_linear_critic_is_the_closed_form(lam):
    """D(x) = w·x + b: ‖∇D‖ = ‖w‖ everywhere, so L = mean(w·fake) − mean(w·real) + λ(‖w‖ − 1)²
    whatever the interpolation weights."""
    critic = torch.nn.Linear(6, 1).double()
    real, fake = RNG.normal(size=(5, 6)), RNG.normal(size=(5, 6)) + 1
    loss, logs = wgan_gp_critic_loss(critic, t(real), t(fake), lam)
    w, b = critic.weight.detach().numpy()[0], critic.bias.item()
    wass = np.mean(real @ w + b) - np.mean(fake @ w + b)
    gp = (np.linalg.norm(w) - 1) ** 2
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(-wass + lam * gp, rel=1e-12)
    assert logs["gp"].item() == pytest.approx(gp, rel=1e-12)
    assert logs["wasserstein"].item() == pytest.approx(wass, rel=1e-12)
    assert logs["loss"].item() == loss.item()
    assert not any(v.requires_grad for v in logs.values())


def test_wgan_gp_critic_loss_matches_a_hand_written_reference():
    """A tiny non-linear critic D(x) = v·tanh(Wx + b) + c, float64: the loss against NumPy with the
    gradient at the interpolates written out, ∇D(x̂) = Wᵀ(v ⊙ (1 − tanh²(Wx̂ + b)))."""
    torch.manual_seed(0)
    lin, out = torch.nn.Linear(4, 3).double(), torch.nn.Linear(3, 1).double()
    critic = lambda x: out(torch.tanh(lin(x.flatten(1))))  # noqa: E731
    real, fake = RNG.normal(size=(6, 1, 2, 2)), RNG.normal(size=(6, 1, 2, 2)) * 2
    real_t, fake_t = t(real).requires_grad_(True), t(fake).requires_grad_(True)
    loss, logs = wgan_gp_critic_loss(critic, real_t, fake_t, 10.0, generator=torch.Generator().manual_seed(7))

    W, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    v, c = out.weight.detach().numpy()[0], out.bias.item()
    alpha = torch.rand((6, 1, 1, 1), dtype=torch.float64, generator=torch.Generator().manual_seed(7)).numpy()
    x_hat = (alpha * real + (1 - alpha) * fake).reshape(6, 4)
    D = lambda x: np.tanh(x.reshape(len(x), 4) @ W.T + b) @ v + c  # noqa: E731
    grad = (v * (1 - np.tanh(x_hat @ W.T + b) ** 2)) @ W            # (6, 4), one row per x̂
    gp = np.mean((np.linalg.norm(grad, axis=1) - 1) ** 2)
    wass = D(real).mean() - D(fake).mean()
    assert logs["gp"].item() == pytest.approx(gp, rel=1e-12)
    assert logs["wasserstein"].item() == pytest.approx(wass, rel=1e-12)
    assert loss.item() == pytest.approx(-wass + 10.0 * gp, rel=1e-12)
    # the loss reaches the critic's parameters only (real and fake are detached)
    grads = torch.autograd.grad(loss, [real_t, fake_t, *lin.parameters(), *out.parameters()],
                                allow_unused=True)
    assert grads[0] is None and grads[1] is None and all(g is not None for g in grads[2:])


def test_wgan_gp_critic_loss_draws_once_from_the_global_rng_after_the_critic():
    """Without a generator: one U[0, 1] draw of shape (B, 1, ...) from the global RNG, the same as
    gradient_penalty's (the order the methods' bit-identity rests on)."""
    critic = torch.nn.Linear(3, 1).double()
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    torch.manual_seed(5)
    loss, logs = wgan_gp_critic_loss(critic, real, fake, 10.0)
    after = torch.rand(1).item()
    torch.manual_seed(5)
    gp = gradient_penalty(critic, real, fake)
    assert torch.rand(1).item() == after
    torch.testing.assert_close(logs["gp"], gp.detach(), rtol=0, atol=0)
    torch.testing.assert_close(loss, wgan_critic_loss(critic(real), critic(fake)) + 10.0 * gp, rtol=0, atol=0)


def test_wgan_losses():
    d_real, d_fake = RNG.normal(size=(7, 1)), RNG.normal(size=(7, 1))
    assert wgan_critic_loss(t(d_real), t(d_fake)).item() == pytest.approx(d_fake.mean() - d_real.mean())
    assert wgan_generator_loss(t(d_fake)).item() == pytest.approx(-d_fake.mean())


def test_js_losses_match_numpy_bce():
    lr, lf = RNG.normal(size=9) * 4, RNG.normal(size=9) * 4
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    ref_d = -np.mean(np.log(sig(lr))) - np.mean(np.log(1 - sig(lf)))
    assert js_discriminator_loss(t(lr), t(lf)).item() == pytest.approx(ref_d, rel=1e-12)
    assert ns_generator_loss(t(lf)).item() == pytest.approx(-np.mean(np.log(sig(lf))), rel=1e-12)
    # stable for large logits
    big = torch.tensor([100.0, -100.0])
    assert torch.isfinite(js_discriminator_loss(big, -big)) and torch.isfinite(ns_generator_loss(-big))
