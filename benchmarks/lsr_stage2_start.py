"""Posterior widths and the latent term's gradient scale at stage 2's start (issue 41's question).

    python benchmarks/lsr_stage2_start.py RUN      # an lsr-gan run on MNIST (Table 3 networks)

What stage 2 starts from: the frozen encoder (stage 1's, the same at every later checkpoint) and
the generator equal to the decoder, against a freshly initialised Table 3 discriminator. Prints the
posterior's σ over 2,000 MNIST-10k test digits (per dimension, and the active dimensions: mean KL
> 0.01 nats), −log q(z | Decoder(z)) for 32 prior draws, and the gradient norms over the generator's
weights of the latent term (λ = 1, summed over the latent or averaged) and of the non-saturating
adversarial term.
"""
import sys, torch, numpy as np
from genae.runs import load_run
from genae.data import DataConfig, load_dataset, to_range
from genae.objectives import lsr_latent_nll, ns_generator_loss
from genae.nets.lsr import PatchDiscriminator
torch.set_num_threads(1); torch.manual_seed(0)
m = load_run(sys.argv[1]); m.eval()
test = load_dataset(DataConfig(name="mnist", root="/work/shared/datasets/mnist-10k"), "test")
x = to_range(test.x[:2000], "tanh")
with torch.no_grad():
    mu, lv = m.encoder(x).chunk(2, 1)
sig = (0.5 * lv).exp()
kl = 0.5 * (mu**2 + lv.exp() - 1 - lv)
active = (kl.mean(0) > 0.01)
print(f"posterior σ over test digits: median {sig.median():.3f}; per-dim mean σ: min {sig.mean(0).min():.3f} "
      f"median {sig.mean(0).median():.3f} max {sig.mean(0).max():.3f}; KL {kl.sum(1).mean():.1f} nats; "
      f"active dims (KL>0.01) {int(active.sum())}/{mu.shape[1]}; σ of active dims median {sig[:, active].median():.3f}")
gen = m.decoder; gen.train()            # stage 2 starts with G = decoder, in train mode
D = PatchDiscriminator((1, 28, 28)); D.train()
params = [p for p in gen.parameters()]
for p in params: p.requires_grad_(True)
z = torch.randn(32, mu.shape[1])
fake = gen(z)
mu2, lv2 = m.encoder(fake).chunk(2, 1)
nll_sum = lsr_latent_nll(z, mu2, lv2, "sum").mean()
adv = ns_generator_loss(D(fake))
def gnorm(loss):
    g = torch.autograd.grad(loss, params, retain_graph=True)
    return torch.sqrt(sum((t**2).sum() for t in g)).item()
gs, ga = gnorm(nll_sum), gnorm(adv)
d = mu.shape[1]
print(f"-log q(z|G(z)) at stage 2's start: {nll_sum.item():.1f} nats summed, {nll_sum.item()/d:.3f} per dim; "
      f"adversarial term {adv.item():.3f}")
print(f"‖∇_G‖ of λ·latent at λ=1: summed {gs:.3g}, mean {gs/d:.3g}; of the adversarial term {ga:.3g}; "
      f"ratio latent/adv: summed {gs/ga:.3g}, mean {gs/d/ga:.3g}")
