"""What the QMM methods (``q-wgan``, ``q-beta-vae``) share: config checks of the multi-bias recipe,
λ's schedule, R_BA summed over a generator's multi-bias layers, and the report's manifold and
bias figures. Each method file keeps its own players and game."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import ConfigError
from ..objectives import bias_alignment
from .base import Grid, Manifolds, Method, Plot

__all__ = ["check_multibias", "multibias_figures", "reg_weight_at", "sum_alignment"]


def check_multibias(num_biases: int, reg_weight: float, reg_schedule) -> None:
    """ConfigError unless A ≥ 1, the schedule's steps increase and its λ ≥ 0, and R_BA (which
    needs A ≥ 2) is unweighted with a single bias set."""
    if num_biases < 1:
        raise ConfigError(f"model.num_biases must be at least 1, got {num_biases}")
    steps = [s for s, _ in reg_schedule]
    if any(w < 0 for _, w in reg_schedule) or steps != sorted(set(steps)):
        raise ConfigError(f"model.reg_schedule needs increasing steps and λ ≥ 0, got {list(reg_schedule)}")
    if num_biases < 2 and (reg_weight > 0 or any(w > 0 for _, w in reg_schedule)):
        raise ConfigError("model.reg_weight must be 0 with one bias set (R_BA needs num_biases >= 2)")


def reg_weight_at(base: float, schedule, step: int) -> float:
    """λ at generator step ``step``: the last scheduled (s, λ) with s ≤ step, else ``base``."""
    lam = base
    for s, w in schedule:
        if step >= s:
            lam = w
    return lam


def sum_alignment(layers) -> torch.Tensor:
    """Σ_l bias_alignment(U_l, biases_l) (0 with a single bias set)."""
    if layers[0].num_biases < 2:
        return torch.zeros((), device=layers[0].weight.device)
    return sum(bias_alignment(layer.weight, layer.biases) for layer in layers)


def multibias_figures(method: Method, man: Manifolds, cols: int = 10) -> dict[str, Any]:
    """The manifold grid (rows: bias index; columns: one z each, shared down the column) and, per
    multi-bias layer, the A biases and their tangential components Uᵀa in 2-D PCA coordinates."""
    z = method.prior_noise(cols, man.dim, torch.Generator().manual_seed(0)).repeat(man.count, 1)
    index = torch.arange(man.count, device=method.device).repeat_interleave(cols)
    out: dict[str, Any] = {"manifolds (rows: bias set; columns: shared z)":
                           Grid(method.to_unit(man.render(z, index)), nrow=cols)}
    if man.count >= 2:
        panels = [(f"layer {k + 1}", layer.biases.detach().cpu().double().numpy(),
                   layer.tangential().detach().cpu().double().numpy()) for k, layer in enumerate(man.layers)]
        out["biases and their tangential components Uᵀa per layer"] = Plot("bias_scatter", (panels,))
    return out
