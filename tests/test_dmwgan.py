"""DMWGAN: the learned prior's loss against float64 NumPy and its minimiser, the one-sided gradient
penalty in closed form, the prior moving toward the generators the encoder (on the critic's trunk)
assigns real data to, generator widths, sampling per generator, and inversion over its generators."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genae.inversion import invert_multi
from genae.methods import METHODS, Batch, DataInfo
from genae.nets import build_decoder
from genae.objectives import gradient_penalty, learned_prior_loss
from genae.trainer import backward_update, player_params, step_update

VECTOR = DataInfo((2,), 2, "vector")


def _build(info=VECTOR, **kw):
    torch.manual_seed(0)
    spec = METHODS["dmwgan"]
    return spec.build(spec.config(**kw), info)


def _train(method, x, steps):
    opts = method.optimizers()
    params = player_params(opts)
    for step in range(steps):
        for update in method.train_step(Batch(x), step):
            backward_update(update, params)
            step_update(update, opts, params, {})


def test_prior_loss_matches_float64_numpy():
    rng = np.random.default_rng(0)
    post = rng.dirichlet(np.ones(5), size=7)
    zeta = rng.normal(size=5)
    w = 0.3
    log_r = zeta - np.log(np.exp(zeta).sum())
    entropy = -(np.exp(log_r) * log_r).sum()
    want = (-(post * log_r).mean()) - w * entropy        # the reference's mean over batch and generators
    loss, h = learned_prior_loss(torch.tensor(post), torch.tensor(zeta), w)
    assert loss.item() == pytest.approx(want, rel=1e-12)
    assert h.item() == pytest.approx(entropy, rel=1e-12)


def test_prior_loss_without_entropy_is_minimised_at_the_average_posterior():
    post = torch.tensor([[0.9, 0.1, 0.0], [0.7, 0.2, 0.1], [0.8, 0.0, 0.2]], dtype=torch.float64)
    zeta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([zeta], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = learned_prior_loss(post, zeta, 0.0)[0]
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(zeta.softmax(0), post.mean(0), atol=1e-6, rtol=0)
    # and a large entropy weight holds the prior at uniform
    zeta2 = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(learned_prior_loss(post, zeta2, 1e6)[0], zeta2)
    expected = -(post.mean(0) - 1 / 3) / 3            # ∂/∂ζ of the cross-entropy at ζ = 0; H is flat there
    torch.testing.assert_close(g, expected, atol=1e-8, rtol=0)


@pytest.mark.parametrize("norm", [0.5, 2.5])
def test_one_sided_penalty_of_a_linear_critic(norm):
    """D(x) = w·x + b: ‖∇D‖ = ‖w‖ everywhere; one-sided: max(0, ‖w‖ − 1)², two-sided (‖w‖ − 1)²."""
    critic = nn.Linear(4, 1).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[1.0, 2.0, 2.0, 4.0]], dtype=torch.float64) / 5 * norm)
    real, fake = torch.randn(8, 4, dtype=torch.float64), torch.randn(8, 4, dtype=torch.float64)
    one = gradient_penalty(critic, real, fake, one_sided=True)
    two = gradient_penalty(critic, real, fake)
    assert two.item() == pytest.approx((norm - 1) ** 2)
    assert one.item() == pytest.approx(max(0.0, norm - 1) ** 2)


def test_generators_are_the_base_architecture_with_width_divided():
    info = DataInfo((1, 28, 28), 10, "image")
    m = _build(info, net="conv", n_generators=3, hidden=32, width_divisor=4, latent_dim=8)
    want = sum(p.numel() for p in build_decoder("conv", 8, (1, 28, 28), 8, "tanh").parameters())
    assert len(m.generators) == 3
    assert all(sum(p.numel() for p in g.parameters()) == want for g in m.generators)
    assert not any(isinstance(mod, nn.BatchNorm2d) for mod in m.critic.modules())  # a GP critic: no BN
    assert set(m.optimizers()) == {"critic", "generator", "encoder", "prior"}
    assert set(_build(learn_prior=False).optimizers()) == {"critic", "generator", "encoder"}


def test_sample_fixes_the_generator_and_cluster_is_a_distribution():
    m = _build(n_generators=3, hidden=16, depth=1).eval()
    with torch.no_grad():
        y = torch.tensor([2, 0, 1, 2])
        got = m.sample(4, y=y, generator=torch.Generator().manual_seed(5))
        z = m._noise(4, torch.Generator().manual_seed(5))
        want = torch.stack([m.generators[int(i)](z[k:k + 1])[0] for k, i in enumerate(y)])
        torch.testing.assert_close(got, want)
        assert (z.abs() <= 1).all()                           # z ~ U[−1, 1]
        p = m.cluster(got)
        torch.testing.assert_close(p.sum(1), torch.ones(4))
    with pytest.raises(Exception, match="fixes a generator index"):
        m.sample(2, y=torch.tensor([0, 3]))


def _train_without(m, x, steps, frozen):
    """Train ``m`` on ``x`` with the players in ``frozen`` left out (their losses dropped)."""
    opts = {k: v for k, v in m.optimizers().items() if k not in frozen}
    params = player_params(opts)
    for step in range(steps):
        for update in m.train_step(Batch(x), step):
            for name in frozen:
                update.losses.pop(name, None)
            if update.losses:
                backward_update(update, params)
                step_update(update, opts, params, {})


def test_prior_moves_toward_the_generator_the_encoder_assigns_real_data_to():
    """Wiring of the prior's update: with a stand-in encoder that assigns every real example to
    generator 1, the prior's mass on generator 1 grows; with a large entropy weight it stays uniform."""
    def run(entropy_weight):
        m = _build(n_generators=3, hidden=16, depth=1, n_critic=1, entropy_weight=entropy_weight,
                   entropy_decay=1.0, prior_lr=0.05)
        out = [mod for mod in m.encoder.modules() if isinstance(mod, nn.Linear)][-1]
        with torch.no_grad():  # Q(i|x) ≈ one-hot(1) whatever the features (and the encoder held)
            out.weight.zero_()
            out.bias.copy_(torch.tensor([-5.0, 5.0, -5.0]))
        _train_without(m, torch.randn(16, 2, generator=torch.Generator().manual_seed(1)), 40, {"encoder"})
        return m.prior().detach()

    r = run(0.0)
    assert r[1] > 0.8 and r.argmax() == 1
    # (Adam moves ζ by about lr per step whatever the gradient's size: "uniform" up to that jitter)
    torch.testing.assert_close(run(1e4), torch.full((3,), 1 / 3), atol=0.02, rtol=0)


def test_on_a_toy_mixture_the_prior_learns_the_mode_weights():
    """Two well-separated 2-D clusters with weights 0.85 / 0.15 and two generators, each placed on
    one cluster and held there: the critic, the encoder on its trunk and the prior train as in the
    game, and the learned prior converges to the clusters' weights (no entropy bonus), i.e. it moves
    to the generator whose region real data prefers."""
    g = torch.Generator().manual_seed(0)
    n = 512
    heavy = torch.rand(n, generator=g) < 0.85
    centres = torch.where(heavy[:, None], torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 0.0]))
    x = centres + 0.05 * torch.randn(n, 2, generator=g)
    m = _build(n_generators=2, hidden=32, depth=1, latent_dim=2, width_divisor=2, n_critic=1,
               entropy_weight=0.0, prior_lr=2e-2, encoder_lr=1e-2)
    with torch.no_grad():       # generator i outputs its cluster's centre (plus a little spread)
        for gen, cx in zip(m.generators, (-2.0, 2.0)):
            last = [mod for mod in gen.modules() if isinstance(mod, nn.Linear)][-1]
            last.weight.mul_(0.01)
            last.bias.copy_(torch.tensor([cx, 0.0]))
    _train_without(m, x, 300, {"generator"})
    r = m.prior().detach()
    assert r[0] == pytest.approx(heavy.float().mean().item(), abs=0.05), r


def test_inversion_picks_the_generator_of_a_dmwgan_sample():
    info = DataInfo((1, 28, 28), 10, "image")
    m = _build(info, net="mlp", n_generators=3, hidden=32, depth=1, latent_dim=3).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    y = torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        x = m.sample(4, y=y, generator=torch.Generator().manual_seed(3))
    man = m.manifolds()
    fit = invert_multi([man.generator(i) for i in range(man.count)], x, man.dim, steps=300, restarts=4)
    assert torch.equal(fit.index, y)
    assert fit.error.max() < 1e-2
