"""Issue 28: how different a multi-generator run's manifolds are, and how aligned QMM's biases are.

For each run: the share of pixel variance that lies between the learned manifolds at equal codes
(256 codes z ~ N(0, I), [0, 1] pixels), and for multi-bias generators, per layer, tr Cov_i(a^(i))
and tr Cov_i(Uᵀa^(i)) (normalised by A) and ‖U‖_F.
    python benchmarks/qmm_manifold_stats.py RUN...
"""
import sys

import torch

from genae.runs import load_run


def main(runs):
    torch.manual_seed(0)
    for run in runs:
        m = load_run(run)
        man = m.manifolds()
        z = torch.randn(256, man.dim)
        with torch.no_grad():
            xs = torch.stack([m.to_unit(man.generator(i)(z)) for i in range(man.count)])
        share = xs.var(0).mean().item() / xs.flatten(0, 1).var(0).mean().item()
        line = [f"{run}: between-manifold share of pixel variance {share:.4f}"]
        for k, layer in enumerate(man.layers):
            a, t = layer.biases.double(), layer.tangential().double()
            tr = lambda v: ((v - v.mean(0)) ** 2).sum(1).mean().item()  # noqa: E731
            line.append(f"layer {k + 1}: trCov(a) {tr(a):.3g}, trCov(Uᵀa) {tr(t):.3g}, "
                        f"‖U‖_F {layer.weight.norm().item():.3g}")
        print("; ".join(line))


if __name__ == "__main__":
    main(sys.argv[1:])
