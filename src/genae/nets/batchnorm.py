"""Re-estimating BatchNorm statistics on chosen data ("precise BN").

A network that sees two distributions in training mode (CTRL's encoder reads real images *and*
transcriptions, each batch normalised by its own statistics) ends training with running
statistics that average both, so its eval-mode outputs on real data differ from what training
computed. :func:`recalibrate_batchnorm` replaces every BatchNorm layer's running mean and variance
by their exact average over the given batches; weights and every other module are untouched (a
spectral-normalised layer stays in eval mode and does no power iteration).
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

__all__ = ["recalibrate_batchnorm"]


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Running statistics of every BatchNorm in ``module`` := the average over ``batches``.

    Each batch goes through ``module`` with only its BatchNorm layers in training mode and
    ``momentum=None`` (PyTorch's cumulative average), so the result is the mean of the per-batch
    means and unbiased variances. Modes and momenta are restored afterwards. No-op without BN.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [(m, m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for b in batches:
            module(b)
    finally:
        for m, momentum, training in saved:
            m.momentum = momentum
            m.train(training)
