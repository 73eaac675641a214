"""Encoding by optimisation (issue 27 item 7): recovers the code of a random generator's output
and picks the right generator of a multi-generator model."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genae.inversion import invert, invert_multi


def _generator(seed: int, dim: int = 3, out: int = 20) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(dim, 32), nn.Tanh(), nn.Linear(32, out))


def test_inversion_recovers_the_code_of_a_generated_example():
    g = _generator(0)
    z_true = torch.randn(8, 3, generator=torch.Generator().manual_seed(1)) * 0.7
    with torch.no_grad():
        x = g(z_true)
    before = [p.clone() for p in g.parameters()]
    fit = invert(g, x, dim=3, steps=600, restarts=4)
    # stated bound: the reconstruction error is below 1e-4 of the examples' energy
    assert (fit.error <= 1e-4 * x.pow(2).sum(1)).all(), fit.error
    with torch.no_grad():
        assert torch.allclose(g(fit.z), x, atol=5e-3)
    assert all(torch.equal(a, b) and b.grad is None for a, b in zip(before, g.parameters()))
    assert fit.protocol == {"steps": 600, "restarts": 4, "lr": 0.1, "seed": 0, "start": "N(0, I)"} and fit.index is None


def test_inversion_picks_the_generator_that_made_the_example():
    gens = [_generator(s) for s in (10, 11, 12)]
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(2)) * 0.7
    with torch.no_grad():
        x = torch.cat([gens[1](z[:3]), gens[2](z[3:])])
    fit = invert_multi(gens, x, dim=3, steps=400, restarts=3)
    assert fit.index.tolist() == [1, 1, 1, 2, 2, 2]
    assert fit.protocol["generators"] == 3 and fit.z.shape == (6, 3)


def test_inversion_does_not_touch_the_global_rng():
    g = _generator(0)
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    invert(g, torch.zeros(2, 20), dim=3, steps=2, restarts=1)
    assert torch.equal(state, torch.random.get_rng_state())


def test_a_warm_start_is_used_as_given():
    torch.manual_seed(0)
    g = torch.nn.Linear(3, 12)
    for p in g.parameters():
        p.requires_grad_(False)
    z0 = torch.randn(4, 3)
    x = g(z0)
    fit = invert(g, x, 3, steps=1, restarts=1, lr=1e-9, start=z0)     # one tiny step: stays at the start
    torch.testing.assert_close(fit.z, z0)
    assert fit.protocol["start"] == "given"
    with pytest.raises(ValueError, match="restarts=1"):
        invert(g, x, 3, restarts=2, start=z0)
