"""The image-space GAN baselines (wgan-gp, wgan-sn, dcgan): the gradient penalty against a direct
``torch.autograd.grad`` computation and a closed form, the spectrally normalised critic's per-layer
spectral norms after training, and the recipe each registry entry declares."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genae.methods import METHODS, Batch, DataInfo
from genae.objectives import gradient_penalty, wgan_critic_loss, wgan_gp_critic_loss
from genae.trainer import backward_update, player_params, step_update

IMAGE = DataInfo((1, 28, 28), 10, "image")


def _build(name, info=IMAGE, **kw):
    torch.manual_seed(0)
    spec = METHODS[name]
    return spec.build(spec.config(**kw), info)


def _train(method, steps, n=16):
    opts = method.optimizers()
    params = player_params(opts)
    x = torch.rand((n, *method.info.shape), generator=torch.Generator().manual_seed(1)) * 2 - 1
    for step in range(steps):
        for update in method.train_step(Batch(x), step):
            backward_update(update, params)
            step_update(update, opts, params, {})


def test_gradient_penalty_matches_a_direct_autograd_computation():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Tanh(), nn.Linear(5, 1)).double()
    real, fake = torch.randn(6, 3, 2, 2, dtype=torch.float64), torch.randn(6, 3, 2, 2, dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(7))

    eps = torch.rand(6, 1, 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    want = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(gp, want)
    # and its gradient in the critic's parameters (the double back-propagation the critic steps on)
    params = list(critic.parameters())[:-1]  # the output bias does not move ∇_x D
    got = torch.autograd.grad(gp, params, retain_graph=True)
    ref = torch.autograd.grad(want, params)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b)

    # the full critic loss of Algorithm 1: E[D(fake)] − E[D(real)] + λ·gp, same draws of ε
    loss, logs = wgan_gp_critic_loss(critic, real, fake, 10.0, torch.Generator().manual_seed(7))
    torch.testing.assert_close(loss, wgan_critic_loss(critic(real), critic(fake)) + 10 * want)
    torch.testing.assert_close(logs["gp"], want.detach())


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    """D(x) = w·x + b has ∇D = w everywhere: the penalty is (‖w‖ − 1)² whatever the interpolates."""
    torch.manual_seed(0)
    critic = nn.Linear(5, 1).double()
    real, fake = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 5, dtype=torch.float64)
    want = (critic.weight.detach().norm() - 1) ** 2
    torch.testing.assert_close(gradient_penalty(critic, real, fake), want)


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_spectrally_normalised_critic_has_unit_spectral_norms_after_training(net):
    method = _build("wgan-sn", net=net, hidden=8, depth=1, latent_dim=4)
    layers = [m for m in method.critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers), "a critic layer has no SN"
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in method.critic.modules())
    _train(method, steps=5)
    method.eval()
    with torch.no_grad():  # the weight the forward uses: W / σ̂(W), reshaped (out, in·k·k) as SN does
        sigmas = [torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item() for m in layers]
    assert max(sigmas) <= 1 + 1e-2, sigmas
    assert min(sigmas) >= 1 - 1e-2, sigmas  # normalised, not merely bounded


@pytest.mark.parametrize("name", ["wgan-gp", "dcgan"])
def test_other_critics_have_no_spectral_norm(name):
    method = _build(name, net="conv", hidden=8)
    disc = method.critic if name == "wgan-gp" else method.discriminator
    assert not any(hasattr(m, "parametrizations") for m in disc.modules())
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in disc.modules())
    assert has_bn == (name == "dcgan")  # WGAN-GP's critic has no BatchNorm; DCGAN's discriminator has


def test_recipes_of_the_registry_entries():
    gp, sn, dc = (METHODS[n].config() for n in ("wgan-gp", "wgan-sn", "dcgan"))
    assert (gp.lipschitz, gp.gp_weight, gp.n_critic, gp.lr, tuple(gp.betas)) == ("gp", 10.0, 5, 1e-4, (0.0, 0.9))
    assert (sn.lipschitz, sn.n_critic, sn.lr, tuple(sn.betas), sn.latent_dim) == ("sn", 1, 2e-4, (0.5, 0.999), 8)
    assert (dc.lr, tuple(dc.betas)) == (2e-4, (0.5, 0.999))


@pytest.mark.parametrize("name", ["wgan-gp", "wgan-sn", "dcgan"])
def test_schedule_and_ranges(name):
    """n_critic critic updates then one generator update; images in [-1, 1] from a tanh generator."""
    method = _build(name, net="conv", hidden=8, latent_dim=4)
    assert method.input_range == "tanh"
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    players = [tuple(u.losses) for u in method.train_step(Batch(x), 0)]
    k = getattr(method.cfg, "n_critic", 1)
    first = "discriminator" if name == "dcgan" else "critic"
    assert players == [(first,)] * k + [("generator",)]
    with torch.no_grad():
        s = method.eval().sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, 1, 28, 28) and s.abs().max() <= 1


def test_dcgan_noise_is_uniform_and_init_is_dcgan():
    method = _build("dcgan", net="conv", hidden=8, latent_dim=64)
    z = method._noise(2000, torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() <= 1 and abs(z.mean().item()) < 0.02 and abs(z.var().item() - 1 / 3) < 0.01
    convs = [m.weight for m in method.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    assert all(abs(w.std().item() - 0.02) < 0.005 for w in convs if w.numel() > 200)


IMAGE_GANS = ("dcgan", "wgan-gp", "wgan-sn", "infogan", "infogan-qmm", "dmwgan", "vae-gan")


@pytest.mark.parametrize("name", IMAGE_GANS)
def test_image_gans_default_to_their_conv_networks_on_images_and_mlps_on_vectors(name):
    """`genae train dcgan --data mnist` with no config builds the DCGAN convolutions (an MLP pair
    gave grey checkerboards); vectors and image sizes the conv family does not take get MLPs."""
    from genae.nets import resolve_net

    assert METHODS[name].config().net == "auto"
    has_conv = lambda m: any(isinstance(l, (nn.Conv2d, nn.ConvTranspose2d)) for l in m.modules())  # noqa: E731
    assert has_conv(_build(name, hidden=8))
    assert not has_conv(_build(name, info=DataInfo((16,), None, "vector"), hidden=8))
    assert resolve_net("auto", (1, 28, 28)) == resolve_net("auto", (3, 64, 64)) == "conv"
    assert resolve_net("auto", (1, 20, 20)) == resolve_net("auto", (16,)) == "mlp"
    assert resolve_net("mlp", (1, 28, 28)) == "mlp"
