"""The one abstraction every method implements: ``Method`` and the ``Update`` it yields.

A method owns its networks, its losses and its update schedule; the trainer (``genae.train``)
owns everything mechanical: device, autocast, backward, clipping, stepping, learning-rate
schedules, logging and checkpoints.

Protocol
--------
- ``optimizers() -> dict[str, Optimizer]``: one optimizer per *player*, over exactly that player's
  parameters. Player names are short strings ("vae", "critic", "encoder", ...).
- ``train_step(batch, step) -> Iterator[Update]``: a generator yielding ``Update(losses={player:
  scalar loss}, logs={...})`` in the paper's order. All players of one ``Update`` are stepped
  together (gradients of all of them are computed before any parameter moves); code after a
  ``yield`` runs after the trainer has stepped those players, so it sees the updated weights.
- Inference API used by metrics and the CLI: ``encode``, ``decode``, ``reconstruct``, ``sample``.
  A method that does not support one raises ``Unsupported`` with a sentence saying why.

Conventions
-----------
- Images reach a method as float tensors ``(B, C, H, W)`` already converted on the device to the
  method's ``input_range``: ``"unit"`` = [0, 1] (sigmoid/Bernoulli decoders), ``"tanh"`` = [-1, 1].
  Vector data ``(B, D)`` arrives unchanged (``"raw"``).
- Likelihood terms sum over data/latent dimensions and average over the batch; GAN terms average.
- ``Update.logs`` keys are ``"<player>/<term>"`` (detached scalars) so a non-finite loss can be
  reported by player *and* term.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Iterator, Literal

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["Batch", "DataInfo", "Method", "Unsupported", "Update", "check_config"]


class Unsupported(RuntimeError):
    """Raised by an inference call a method does not support (e.g. ``encode`` on a pure GAN)."""


@dataclass(frozen=True)
class DataInfo:
    """What a method needs to know about its data to build its networks.

    shape: one example's shape, ``(C, H, W)`` for images or ``(D,)`` for vectors.
    num_classes: number of labels, or None for unlabelled data.
    kind: "image" or "vector".
    """

    shape: tuple[int, ...]
    num_classes: int | None = None
    kind: str = "image"

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "num_classes": self.num_classes, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataInfo":
        return cls(tuple(d["shape"]), d.get("num_classes"), d.get("kind", "image"))


@dataclass
class Batch:
    """One training batch on the method's device.

    x: ``(B, C, H, W)`` images in the method's input range, or ``(B, D)`` vectors; float32.
    y: ``(B,)`` int64 labels, or None for unlabelled data.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None


@dataclass
class Update:
    """One simultaneous step of some players.

    losses: player name -> scalar loss tensor that this player *minimises*. The trainer
        back-propagates each loss only into the parameters of that player's optimizer.
    logs: "<player>/<term>" -> scalar tensor or float, for logging and non-finite diagnostics.
    """

    losses: dict[str, torch.Tensor]
    logs: dict[str, torch.Tensor | float] = field(default_factory=dict)


class Method(nn.Module):
    """Base class of every method (the only base class in ``genae.methods``).

    Subclasses set ``Config`` (their dataclass), ``input_range`` (class default; may be set per
    instance in ``__init__``), ``needs_labels`` and ``needs_balanced_batches``.
    """

    Config: ClassVar[type]
    input_range: str = "unit"  # "unit" = [0, 1], "tanh" = [-1, 1], "raw" = vectors as given
    needs_labels: ClassVar[bool] = False
    needs_balanced_batches: ClassVar[bool] = False
    #: What ``y`` fixes in ``sample(n, y=...)``: "class" (CTRL's class subspaces), or None when
    #: the method samples unconditionally and refuses ``y`` (``reject_y``).
    sample_y: ClassVar[str | None] = None

    def __init__(self, cfg: Any, info: DataInfo):
        super().__init__()
        self.cfg = cfg
        self.info = info

    # --- training -----------------------------------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError(f"{type(self).__name__} must define optimizers()")

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        raise NotImplementedError(f"{type(self).__name__} must define train_step()")

    # --- inference API ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, *shape)`` inputs in ``input_range`` -> ``(B, latent)`` codes (posterior mean)."""
        raise Unsupported(f"{type(self).__name__} has no encoder")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent)`` codes -> ``(B, *shape)`` outputs in ``input_range``."""
        raise Unsupported(f"{type(self).__name__} has no decoder")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, *shape)`` -> ``(B, *shape)``: ``decode(encode(x))`` unless a method says otherwise."""
        return self.decode(self.encode(x))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of a diagonal Gaussian q(z|x), each ``(B, latent)`` (VAE-like methods)."""
        raise Unsupported(f"{type(self).__name__} has no Gaussian posterior q(z|x)")

    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(n, *shape)`` in ``input_range``; ``y`` requests classes where supported.

        ``generator`` makes the noise reproducible without touching the global RNG (which the
        trainer checkpoints for exact resume).
        """
        raise Unsupported(f"{type(self).__name__} cannot sample")

    def reject_y(self, y: torch.Tensor | None) -> None:
        """For unconditional ``sample``: a ``y`` would be silently ignored, so it is an error."""
        if y is not None:
            raise Unsupported(f"{type(self).__name__} samples unconditionally: sample(n, y=...) has "
                              "nothing for y to fix")

    # --- helpers shared by all methods --------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def prior_noise(self, n: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, dim)`` standard normal noise on the method's device (from ``generator`` if given)."""
        if generator is None:
            return torch.randn(n, dim, device=self.device)
        return torch.randn(n, dim, generator=generator, device=generator.device).to(self.device)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs in ``input_range`` -> [0, 1] for image grids and image metrics."""
        if self.input_range == "tanh":
            return (x.clamp(-1, 1) + 1) / 2
        if self.input_range == "unit":
            return x.clamp(0, 1)
        return x

    def fit_prior(self, x: torch.Tensor, y: torch.Tensor | None) -> None:
        """Fit what sampling estimates from encoded training data (e.g. CTRL's class subspaces).

        The trainer calls it in eval mode, under ``no_grad``, with the global RNG forked, before
        each sample grid and checkpoint: ``x`` are up to ``train.prior_examples`` training examples
        in ``input_range`` (on the device), ``y`` their labels or None. Store the result in
        buffers so checkpoints carry it. Default: nothing to fit.
        """

    def figures(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
        """Extra figures for the run report: name -> matplotlib Figure or ``(H, W, C)`` uint8 array.

        ``x``, ``y``: a fixed batch of test examples in ``input_range`` (sorted by label when
        labelled) for figures that need data (heatmaps, interpolations). Default: none.
        """
        return {}


def check_config(cfg: Any, positive: tuple[str, ...] = (), nonnegative: tuple[str, ...] = ()) -> None:
    """Validate a method config built in Python (the YAML/CLI path checks types and choices earlier).

    Every ``Literal[...]`` field must hold one of its choices; ``positive`` fields must be > 0 and
    ``nonnegative`` fields ≥ 0. Errors name ``model.<key>`` and the valid choices.
    """
    hints = typing.get_type_hints(type(cfg))
    for f in fields(cfg):
        value, hint = getattr(cfg, f.name), hints.get(f.name)
        if typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
            raise ConfigError(f"model.{f.name}={value!r} is not valid; choose one of: "
                              f"{', '.join(map(str, typing.get_args(hint)))}")
    for key in positive:
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"model.{key} must be positive, got {getattr(cfg, key)}")
    for key in nonnegative:
        if not getattr(cfg, key) >= 0:
            raise ConfigError(f"model.{key} must be non-negative, got {getattr(cfg, key)}")
