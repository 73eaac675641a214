"""LSR-GAN: the latent term against torch.distributions for both reductions; through stage 2 the
encoder's weights and BatchNorm buffers stay bit-identical; at the start of stage 2 the generator is
the stage-1 decoder (once: not again on resume); resume inside stage 2 and across the boundary
equals the uninterrupted run; Table 3's networks; the renderers and imaginations."""
from __future__ import annotations

import math
import shutil

import pytest
import torch
from safetensors.torch import load_file

from conftest import fast_train_overrides, tiny_overrides
from genae import runs
from genae.config import build_config
from genae.imagine import imagine
from genae.methods import METHODS, Batch, DataInfo
from genae.nets.lsr import LSRDecoder, LSREncoder, PatchDiscriminator
from genae.objectives import lsr_latent_nll
from genae.training import resume, train

STEPS, VAE_STEPS = 6, 3


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_latent_nll_matches_torch_distributions(reduction):
    g = torch.Generator().manual_seed(0)
    z, mu, logvar = (torch.randn(5, 7, generator=g, dtype=torch.float64) for _ in range(3))
    ref = -torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z)
    want = ref.sum(1) if reduction == "sum" else ref.mean(1)
    torch.testing.assert_close(lsr_latent_nll(z, mu, logvar, reduction), want)
    # the sum is the latent size times the mean: λ on the code's mean weighs what λ / 7 weighs on the paper's sum
    torch.testing.assert_close(lsr_latent_nll(z, mu, logvar, "sum"), 7 * lsr_latent_nll(z, mu, logvar, "mean"))


def test_table3_network_shapes():
    for shape in ((3, 32, 32), (1, 28, 28)):
        enc, dec = LSREncoder(shape, 128), LSRDecoder(128, shape)
        x = torch.rand(4, *shape) * 2 - 1
        assert enc(x).shape == (4, 256) and dec(torch.randn(4, 128)).shape == (4, *shape)
    for side in (28, 32, 64):
        assert PatchDiscriminator((3, side, side)).eval()(torch.randn(2, 3, side, side)).shape == (2, 3, 2, 2)
    with pytest.raises(ValueError, match="28×28 or 32×32"):
        LSREncoder((3, 64, 64))


def test_patch_discriminator_is_the_reference_codes_width_and_dcgan_initialised():
    torch.manual_seed(0)
    d = PatchDiscriminator((3, 32, 32))
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 3]            # base 32, doubling, 3 patch channels
    # Table 3: every layer 4×4, stride 2, padding 1, and no bias (the reference code's too)
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) and c.bias is None
               for c in convs)
    # 28×28 is padded to 32×32 like the encoder: the same four layers, the same 2×2 patches
    assert [m.out_channels for m in PatchDiscriminator((1, 28, 28)).modules()
            if isinstance(m, torch.nn.Conv2d)] == [32, 64, 128, 3]
    w = torch.cat([c.weight.flatten() for c in convs])
    assert abs(w.mean().item()) < 2e-3 and abs(w.std().item() - 0.02) < 1e-3       # N(0, 0.02)
    scales = torch.cat([m.weight for m in d.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(scales.mean().item() - 1) < 5e-3 and abs(scales.std().item() - 0.02) < 5e-3   # N(1, 0.02)


def _run(tmp_path, name, **extra):
    sets = tiny_overrides("lsr-gan") + [f"model.vae_steps={VAE_STEPS}"] + fast_train_overrides(STEPS, **extra)
    return train(build_config("lsr-gan", "fake", overrides=sets, out=str(tmp_path / name)))


def _weights(run, step):
    return load_file(str(run / "checkpoints" / runs.checkpoint_name(step) / "model.safetensors"))


def test_stage_two_keeps_the_encoder_and_decoder_and_starts_from_the_decoder(tmp_path):
    run = _run(tmp_path, "r", ckpt_every=1, keep_ckpts=100)
    boundary, last = _weights(run, VAE_STEPS), _weights(run, STEPS)
    frozen = [k for k in boundary if k.startswith(("encoder.", "decoder."))]
    assert any("running_mean" in k for k in frozen)                # BatchNorm buffers are checked too
    for k in frozen:
        assert torch.equal(boundary[k], last[k]), k
    assert int(boundary["generator_ready"]) == 0 and int(last["generator_ready"]) == 1
    # stage 2 moved the generator and the discriminator
    assert any(not torch.equal(boundary[k], last[k]) for k in boundary if k.startswith("generator."))
    assert any(not torch.equal(boundary[k], last[k]) for k in boundary if k.startswith("discriminator."))


def test_generator_is_initialised_from_the_decoder_once():
    spec = METHODS["lsr-gan"]
    torch.manual_seed(0)
    m = spec.build(spec.config(**{**tiny_overrides_dict(), "net": "conv"}), DataInfo((1, 28, 28), 10, "image"))
    gan = m.stages()[1]
    assert any(not torch.equal(a, b) for a, b in zip(m.generator.state_dict().values(),
                                                      m.decoder.state_dict().values()))
    m.enter_stage(gan)
    for (k, a), b in zip(m.generator.state_dict().items(), m.decoder.state_dict().values()):
        assert torch.equal(a, b), k
    assert not m.encoder.training and not m.decoder.training            # frozen in eval mode
    with torch.no_grad():
        next(m.generator.parameters()).add_(1.0)
    m.enter_stage(gan)                                                   # a resume: no second copy
    assert not torch.equal(next(m.generator.parameters()), next(m.decoder.parameters()))


def tiny_overrides_dict():
    from conftest import TINY

    return dict(TINY["lsr-gan"])


@pytest.mark.parametrize("cut_at", [2, 4])     # before the boundary (3) and inside stage 2
def test_resume_across_the_boundary_and_inside_stage_two_equals_the_uninterrupted_run(tmp_path, cut_at):
    full = _run(tmp_path, "full", ckpt_every=1, keep_ckpts=100)
    cut = _run(tmp_path, "cut", ckpt_every=1, keep_ckpts=100)
    for ckpt in runs.checkpoint_dirs(cut):
        if runs.checkpoint_step(ckpt) > cut_at:
            shutil.rmtree(ckpt)
    resume(cut)
    a, b = _weights(full, STEPS), _weights(cut, STEPS)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_renderers_and_imaginations(tmp_path):
    run = _run(tmp_path, "r")
    m = runs.load_run(run)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        assert m.render(torch.zeros(2, 4)).shape == (2, 1, 28, 28)
        lsr = m.decode(torch.zeros(2, 4))
        m.renderer = "vae"
        vae = m.decode(torch.zeros(2, 4))
        assert not torch.equal(lsr, vae)
        torch.testing.assert_close(vae, m.decoder(torch.zeros(2, 4)))
        m.renderer = "lsr"
        im = imagine(m, x, 5, torch.Generator().manual_seed(0))
        assert im.shape == (3, 5, 1, 28, 28)
        im2 = imagine(m, x, 5, torch.Generator().manual_seed(0))
        assert torch.equal(im, im2)
        figs = m.figures(x, None)
        assert len(figs) == 1


def test_latent_term_reaches_only_the_generator():
    spec = METHODS["lsr-gan"]
    torch.manual_seed(0)
    m = spec.build(spec.config(**{**tiny_overrides_dict(), "net": "conv"}), DataInfo((1, 28, 28), 10, "image"))
    m.enter_stage(m.stages()[1])
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    updates = m.train_step(Batch(x), 0)
    next(updates)
    g_update = next(updates)
    loss = g_update.losses["generator"]
    loss.backward()
    assert all(p.grad is None for p in m.encoder.parameters())        # frozen: no gradient at all
    assert all(p.grad is None for p in m.decoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.generator.parameters())
    assert math.isfinite(g_update.logs["generator/latent_nll"].item())


def test_imagine_command_layout(tmp_path):
    import numpy as np
    from PIL import Image

    from test_cli import _sets, genae

    run = tmp_path / "run"
    model = tiny_overrides("lsr-gan") + ["model.vae_steps=2"]
    genae("train", "lsr-gan", "--data", "fake", "--out", run, *_sets(model + fast_train_overrides(4)))
    out = tmp_path / "im.png"
    proc = genae("imagine", run, "--out", out, "--n", 3, "--draws", 2)
    grid = np.asarray(Image.open(out))
    assert grid.shape == (3 * 30 + 2, 4 * 30 + 2, 3)       # 3 rows; input, reconstruction, 2 draws
    assert "3 rows" in proc.stdout
    genae("imagine", run, "--out", out, "--n", 2, "--draws", 1, "--renderer", "vae")
    proc = genae("imagine", run, "--out", out, "--images", tmp_path / "missing.png", check=False)
    assert proc.returncode != 0 and "not a readable image" in proc.stderr


def test_eval_both_renderers_in_one_call(tmp_path):
    import json

    from test_cli import _sets, genae

    run = tmp_path / "run"
    model = tiny_overrides("lsr-gan") + ["model.vae_steps=2"]
    genae("train", "lsr-gan", "--data", "fake", "--out", run, *_sets(model + fast_train_overrides(4)))
    res = json.loads(genae("eval", run, "--metrics", "imagine-mse,sharpness-sp", "--renderer", "vae,lsr",
                           "--n-samples", 16, "--json").stdout)
    assert set(res) == {"imagine-mse@vae", "imagine-mse@lsr", "sharpness-sp@vae", "sharpness-sp@lsr"}
    assert res["imagine-mse@vae"]["renderer"] == "vae"
    assert res["imagine-mse@vae"]["value"] != res["imagine-mse@lsr"]["value"]
    proc = genae("eval", run, "--metrics", "imagine-mse", "--renderer", "gan", check=False)
    assert proc.returncode != 0 and "choose vae, lsr" in proc.stderr
    # the same numbers asked by name (what `genae sweep --metrics` passes on)
    pinned = json.loads(genae("eval", run, "--metrics", "sharpness-sp@lsr,imagine-mse@vae", "--n-samples", 16,
                              "--json").stdout)
    assert list(pinned) == ["sharpness-sp@lsr", "imagine-mse@vae"]
    for k, v in pinned.items():
        assert v["value"] == res[k]["value"] and v["renderer"] == res[k]["renderer"]


def test_a_renderer_in_a_metric_name_needs_a_method_with_renderers():
    from genae.errors import ConfigError
    from genae.metrics import EvalContext, check_names, evaluate

    spec = METHODS["vae"]
    m = spec.build(spec.config(latent_dim=4), DataInfo((1, 28, 28), 10, "image"))
    with pytest.raises(ConfigError, match="has one decoder"):
        evaluate(m, EvalContext(None), ["fid@vae"])
    with pytest.raises(ConfigError, match="unknown metric"):
        check_names(["fidd@vae"])
    with pytest.raises(ConfigError, match="after @"):
        check_names(["fid@"])


def test_stage_one_loss_is_the_papers_batch_sums_over_the_batch_size():
    """(N/2)(log MSE + 1 + log 2π) over the batch's N scalars plus β·Σ_batch KL, both divided by B:
    the recon term and the KL keep the paper's relative weight (a KL summed over the batch beside
    a per-example recon term would weigh the KL B times too much)."""
    spec = METHODS["lsr-gan"]
    torch.manual_seed(0)
    m = spec.build(spec.config(net="conv", latent_dim=4, hidden=8, vae_steps=1, beta=2.0),
                   DataInfo((1, 28, 28), 10, "image"))
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    torch.manual_seed(1)
    got = next(m.train_step(Batch(x), 0)).losses["vae"]
    torch.manual_seed(1)
    mu, lv = m.encoder(x).chunk(2, 1)
    out = m.decoder(mu + (0.5 * lv).exp() * torch.randn_like(mu))
    n = x.numel()
    recon = 0.5 * n * (((out - x) ** 2).mean().log() + 1 + math.log(2 * math.pi))
    kl = 0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum()
    torch.testing.assert_close(got, (recon + 2.0 * kl) / 6)


@pytest.mark.parametrize("reduction", [None, "sum"])
def test_stage_two_generator_loss_is_the_nonsaturating_term_plus_lambda_times_the_latent_term(reduction):
    """The default weighs −log q(z|G(z)) averaged over the latent dimensions (the authors' code);
    "sum" is eq. 4 read literally: latent_dim times the default's latent term at the same λ."""
    spec = METHODS["lsr-gan"]
    extra = {} if reduction is None else {"latent_reduction": reduction}
    torch.manual_seed(0)
    m = spec.build(spec.config(net="conv", latent_dim=4, hidden=8, vae_steps=1, lam=0.7, **extra),
                   DataInfo((1, 28, 28), 10, "image"))
    m.enter_stage(m.stages()[1])
    m.eval()                                   # BatchNorm by running statistics: the same D and G twice
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    torch.manual_seed(1)
    updates = m.train_step(Batch(x), 0)
    next(updates)
    got = next(updates).losses["generator"]
    torch.manual_seed(1)
    z = torch.randn(6, 4)
    fake = m.generator(z)
    adv = torch.nn.functional.softplus(-m.discriminator(fake)).mean()        # −log σ(D(G(z))), patches averaged
    mu, lv = m.encoder(fake).chunk(2, 1)
    nll = -torch.distributions.Normal(mu.double(), (0.5 * lv.double()).exp()).log_prob(z.double())
    latent = nll.sum(1) if reduction == "sum" else nll.mean(1)
    # the same float32 networks on the same inputs on both sides; only −log q is recomputed, in
    # float64: what differs is float32 rounding of a sum of a few terms (relative ~1e-7), far below
    # 1e-5 on any CPU's kernels, while a wrong reduction or weight moves the loss by O(1)
    torch.testing.assert_close(got.double(), adv.double() + 0.7 * latent.mean(), rtol=1e-5, atol=1e-5)
