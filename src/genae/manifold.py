"""Deriving a manifold from an unseen image (QMM, "Deep Quotient Manifold Modeling", eq. 3).

For a method with multi-bias generators (``q-wgan``, ``q-beta-vae``: ``Manifolds.layers`` not
empty) and an image x, estimate a code z and *new* biases {a_l}, one per multi-bias layer, by

    min_{z, {a_l}}  ‖x − G(z; {a_l})‖² + μ Σ_l log(‖U_lᵀa_l − U_lᵀā_l‖² + ε)              (eq. 3)

with Adam (lr 0.1, μ = 0.05). The penalty keeps the new biases' tangential components near the
learned ones', so the derived manifold is the learned quotient manifold translated along normal
directions only; sampling it with the estimated biases and other z gives new images "in the same
family" as x (Fig. 5, 6, G.3). Choices where the paper is silent:

- ā_l is the mean of the A learned biases of layer l; ε = 1e-12 keeps the log finite.
- Start: encoding by optimisation (``genae.inversion.invert_multi``, ``steps`` Adam steps from
  ``restarts`` starts) against every learned manifold; z and the biases start from the best one
  (its code, its learned biases), then ``steps`` joint Adam steps of eq. 3.
- ‖·‖² is the sum over the image's elements in the method's ``input_range``; the reported
  ``error`` is the mean squared error per element in [0, 1] pixels (comparable across methods).
- The method runs in eval mode (BatchNorm with its running statistics); its weights are untouched.

For a method without multi-bias layers (the GAN baselines, DMWGAN) the same call returns the
inversion alone (``derived=False``): the regeneration is the best learned manifold's G(z*).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .inversion import invert_multi
from .methods.base import Manifolds, Method
from .objectives import tangential_offset

__all__ = ["Derived", "derive", "manifold_grid"]


@dataclass
class Derived:
    """z: ``(B, dim)`` codes; biases: one ``(B, out)`` tensor per multi-bias layer (empty when
    nothing was derived); index: ``(B,)`` the learned manifold inversion started from;
    regeneration: ``(B, *shape)`` G(z; biases) in the method's input range; error: ``(B,)`` MSE
    per element in [0, 1] pixels; derived: whether new biases were estimated; protocol: settings."""

    z: torch.Tensor
    biases: list[torch.Tensor]
    index: torch.Tensor
    regeneration: torch.Tensor
    error: torch.Tensor
    derived: bool
    protocol: dict

    def render(self, man: Manifolds, z: torch.Tensor, k: int = 0) -> torch.Tensor:
        """Image ``k``'s derived manifold at codes ``z`` ``(N, dim)``: ``(N, *shape)``."""
        if self.derived:
            return man.render(z, biases=[b[k].expand(len(z), -1) for b in self.biases])
        return man.render(z, self.index[k].expand(len(z)))


def derive(method: Method, x: torch.Tensor, mu: float = 0.05, steps: int = 500, restarts: int = 4,
           lr: float = 0.1, seed: int = 0, free: Sequence[int] | None = None, progress: bool = False) -> Derived:
    """Eq. 3 for a batch ``x`` ``(B, *shape)`` in the method's ``input_range`` (see the module
    docstring); the global RNG is not used (starts come from ``seed``). ``free``: the indices of
    the multi-bias layers whose biases are estimated (default all, the paper's); the others keep
    the biases of the learned manifold the inversion chose. ``free=[]`` estimates none: the result
    is the best learned manifold's fit (``derived=False``), as for a method without multi-bias
    layers. ``progress``: a bar on stderr over the Adam steps (inversion, then eq. 3)."""
    if steps < 1 or restarts < 1 or mu < 0:
        raise ValueError(f"derive: steps and restarts must be positive and mu >= 0 (got {steps}, {restarts}, {mu})")
    man = method.manifolds()
    free_layers = "all" if free is None else sorted(free)
    free = set(range(len(man.layers)) if free is None else free)
    if not free <= set(range(len(man.layers))):  # before minutes of inversion
        raise ValueError(f"derive: free={sorted(free)} names layers outside 0..{len(man.layers) - 1}")
    was_training = method.training
    method.eval()
    params = [p for p in method.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    bar = None
    try:
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=(man.count + bool(free)) * steps, unit="step", leave=False, dynamic_ncols=True,
                       desc=f"[genae manifold] inversion on {man.count} manifold(s)" + (", then eq. 3" if free else ""))
        tick = bar.update if bar is not None else None
        fit = invert_multi([man.generator(i) for i in range(man.count)], x, man.dim, steps=steps,
                           restarts=restarts, lr=lr, seed=seed, tick=tick)
        protocol = {**fit.protocol, "mu": mu, "bias_reference": "mean of the learned biases", "eps": 1e-12,
                    "free_layers": free_layers}
        if not free:                           # no multi-bias layers, or none asked: inversion alone
            with torch.no_grad():
                regen = man.render(fit.z, fit.index)
            return Derived(fit.z, [], fit.index, regen, _error(method, regen, x), False, protocol)
        z = fit.z.clone().requires_grad_(True)
        biases = [layer.biases[fit.index].detach().clone().requires_grad_(i in free)
                  for i, layer in enumerate(man.layers)]
        refs = [layer.biases.mean(0) for layer in man.layers]
        opt = torch.optim.Adam([z, *(b for i, b in enumerate(biases) if i in free)], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                fit_term = (man.render(z, biases=biases) - x).pow(2).flatten(1).sum(1)
                penalty = sum(tangential_offset(layer.weight, b, ref)
                              for i, (layer, b, ref) in enumerate(zip(man.layers, biases, refs)) if i in free)
                # summed over the batch: every image's z and biases get exactly their own gradient
                (fit_term + mu * penalty).sum().backward()
                opt.step()
                if tick is not None:
                    tick(1)
        with torch.no_grad():
            z, biases = z.detach(), [b.detach() for b in biases]
            regen = man.render(z, biases=biases)
        return Derived(z, biases, fit.index, regen, _error(method, regen, x), True, protocol)
    finally:
        if bar is not None:
            bar.close()
        for p in params:
            p.requires_grad_(True)
        method.train(was_training)


def manifold_grid(method: Method, x: torch.Tensor, derived: Derived, k: int = 0, cols: int = 10,
                  seed: int = 0) -> torch.Tensor:
    """The figure of QMM Fig. 5 / 6 / G.3 for image ``k`` as one ``(3, H, W)`` grid in [0, 1]:
    row 1 the input and its regeneration; row 2 the derived manifold at ``cols`` codes z ~ prior;
    then one row per learned manifold at the same codes."""
    from .viz.grids import make_grid

    man = method.manifolds()
    g = torch.Generator().manual_seed(seed)
    z = (torch.rand(cols, man.dim, generator=g) * 2 - 1 if man.prior == "uniform"
         else torch.randn(cols, man.dim, generator=g)).to(x.device)
    was_training = method.training
    method.eval()
    try:
        with torch.no_grad():
            first = torch.zeros(cols, *x.shape[1:], device=x.device)
            first[0], first[1] = method.to_unit(x[k]), method.to_unit(derived.regeneration[k])
            rows = [first, method.to_unit(derived.render(man, z, k))]
            rows += [method.to_unit(man.generator(i)(z)) for i in range(man.count)]
            return make_grid(torch.cat(rows), nrow=cols)
    finally:
        method.train(was_training)


def _error(method: Method, regen: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(B,)`` mean squared error per element between the two in [0, 1] pixels."""
    return (method.to_unit(regen) - method.to_unit(x)).pow(2).flatten(1).mean(1)
