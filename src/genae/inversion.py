"""Encoding by optimisation: codes for a generator that has no encoder.

For images ``x`` and a generator ``G`` (any callable ``(N, d) -> (N, *shape)``, e.g. a GAN
method's ``decode``), ``invert`` finds per example

    z* = argmin_z ‖G(z) − x‖²                     (sum of squares over the example's elements)

by Adam (lr 0.1, ``steps`` iterations) from ``restarts`` random starts z₀ ~ N(0, I), all examples
and restarts as one batch (their losses are summed, so each z gets exactly its own gradient), and
keeps the restart with the smallest final error. ``invert_multi`` does the same for several
generators (DMWGAN's, QMM's manifolds) and keeps, per example, the best generator: its index is
returned with the code. QMM's manifold derivation (its eq. 3) and its disentanglement score build
on this; a metric that uses it reports ``inversion = {steps, restarts, lr}`` in its protocol.

The generator's parameters are left untouched (no gradient is accumulated into them) and the
global RNG is not used: starts come from ``seed``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

__all__ = ["Inversion", "invert", "invert_multi"]


@dataclass
class Inversion:
    """z: ``(B, d)`` best codes; error: ``(B,)`` ‖G(z) − x‖² per example (sum over elements) at z;
    index: ``(B,)`` int64 index of the generator that fits best (``invert_multi``), else None;
    protocol: the settings, for metrics that report them."""

    z: torch.Tensor
    error: torch.Tensor
    index: torch.Tensor | None
    protocol: dict


def invert(generator: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, dim: int, steps: int = 500,
           restarts: int = 4, lr: float = 0.1, seed: int = 0, start: torch.Tensor | None = None,
           tick: Callable[[int], object] | None = None) -> Inversion:
    """Codes ``(B, dim)`` whose generations best match ``x`` ``(B, *shape)`` (see the module
    docstring); ``x`` in the generator's output range and on its device. ``start`` ``(B, dim)``:
    one given starting code per example instead of random ones (a warm start, e.g. the code of a
    nearby image; ``restarts`` must then be 1). ``tick``: called with 1 after every Adam step
    (e.g. a progress bar's ``update``; it is given no tensor, so it costs no host sync)."""
    if steps < 1 or restarts < 1 or dim < 1:
        raise ValueError(f"invert: steps, restarts and dim must be positive (got {steps}, {restarts}, {dim})")
    b = len(x)
    if start is not None:
        if restarts != 1 or start.shape != (b, dim):
            raise ValueError(f"invert: a start must be ({b}, {dim}) with restarts=1")
        z = start.detach().clone().to(x.device).requires_grad_(True)
    else:
        g = torch.Generator(device="cpu").manual_seed(seed)
        z = torch.randn(restarts * b, dim, generator=g).to(x.device).requires_grad_(True)
    target = x.detach().repeat(restarts, *([1] * (x.ndim - 1)))
    opt = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            per_example = (generator(z) - target).pow(2).flatten(1).sum(1)
            # the sum keeps every code's gradient its own; inputs=[z] keeps G's parameters untouched
            per_example.sum().backward(inputs=[z])
            opt.step()
            if tick is not None:
                tick(1)
    with torch.no_grad():
        err = (generator(z) - target).pow(2).flatten(1).sum(1).view(restarts, b)
        best = err.argmin(0)
        zs = z.detach().view(restarts, b, dim)[best, torch.arange(b, device=x.device)]
        return Inversion(zs, err[best, torch.arange(b, device=x.device)], None,
                         {"steps": steps, "restarts": restarts, "lr": lr, "seed": seed,
                          "start": "given" if start is not None else "N(0, I)"})


def invert_multi(generators: Sequence[Callable[[torch.Tensor], torch.Tensor]], x: torch.Tensor, dim: int,
                 **kw) -> Inversion:
    """``invert`` against each generator (``kw``, ``tick`` included, go to each: ``len(generators)
    * steps`` ticks); per example the best generator's code, error and index."""
    if not generators:
        raise ValueError("invert_multi needs at least one generator")
    fits = [invert(gen, x, dim, **kw) for gen in generators]
    errors = torch.stack([f.error for f in fits])             # (A, B)
    index = errors.argmin(0)                                    # (B,)
    arange = torch.arange(len(x), device=x.device)
    z = torch.stack([f.z for f in fits])[index, arange]
    return Inversion(z, errors[index, arange], index, {**fits[0].protocol, "generators": len(generators)})
