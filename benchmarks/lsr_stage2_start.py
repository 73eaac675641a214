"""Posterior widths and the latent term's gradient scale at stage 2's start (issue 41's question).

    python benchmarks/lsr_stage2_start.py RUN      # an lsr-gan run (Table 3 networks)

What stage 2 starts from: the frozen encoder (stage 1's, the same at every later checkpoint) and
the generator equal to the decoder, against a freshly initialised Table 3 discriminator. Prints the
posterior's σ over the first 2,000 test examples of the run's dataset (per dimension, and the
active dimensions: mean KL > 0.01 nats), −log q(z | Decoder(z)) for 32 prior draws, and the
gradient norms over the generator's weights of the latent term (λ = 1, summed over the latent or
averaged) and of the non-saturating adversarial term.
"""
from __future__ import annotations

import argparse

import torch

from genae.data import load_dataset, to_range
from genae.nets.lsr import PatchDiscriminator
from genae.objectives import lsr_latent_nll, ns_generator_loss
from genae.runs import open_checkpoint


def grad_norm(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> float:
    """‖∂loss/∂params‖₂ over all of ``params`` together."""
    grads = torch.autograd.grad(loss, params, retain_graph=True)
    return torch.sqrt(sum((g ** 2).sum() for g in grads)).item()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--n", type=int, default=2000, help="test examples for the posterior widths")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    m, cfg, _ = open_checkpoint(args.run)
    x = to_range(load_dataset(cfg.data, "test").x[: args.n], m.input_range)
    with torch.no_grad():
        mu, lv = m.encoder(x).chunk(2, 1)
    sig = (0.5 * lv).exp()
    kl = 0.5 * (mu ** 2 + lv.exp() - 1 - lv)
    active = kl.mean(0) > 0.01
    d = mu.shape[1]
    print(f"posterior σ over {len(x)} test examples: median {sig.median():.3f}; per-dimension mean σ: "
          f"min {sig.mean(0).min():.3f}, median {sig.mean(0).median():.3f}, max {sig.mean(0).max():.3f}; "
          f"KL {kl.sum(1).mean():.1f} nats; active dimensions (KL > 0.01) {int(active.sum())} of {d}")

    gen = m.decoder.train()                         # stage 2 starts with G = the decoder, in train mode
    params = list(gen.parameters())
    for p in params:
        p.requires_grad_(True)
    disc = PatchDiscriminator(m.info.shape).train()
    z = torch.randn(32, d)
    fake = gen(z)
    mu2, lv2 = m.encoder(fake).chunk(2, 1)           # the frozen encoder, in eval mode
    latent = lsr_latent_nll(z, mu2, lv2, "sum").mean()
    adv = ns_generator_loss(disc(fake))
    g_latent, g_adv = grad_norm(latent, params), grad_norm(adv, params)
    print(f"-log q(z|G(z)) at stage 2's start: {latent.item():.1f} nats summed, {latent.item() / d:.3f} "
          f"per dimension; adversarial term {adv.item():.3f}")
    print(f"gradient norm over G of the latent term (λ = 1): summed {g_latent:.3g}, mean {g_latent / d:.3g}; "
          f"of the adversarial term {g_adv:.3g}; ratio: summed {g_latent / g_adv:.3g}, mean {g_latent / d / g_adv:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
