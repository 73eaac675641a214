"""The one abstraction every method implements: ``Method`` and the ``Update`` it yields.

A method owns its networks, its losses and its update schedule; the trainer (``genae.trainer``)
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
- Inference contract used by metrics, the report, the CLI and the trainer: ``encode``,
  ``decode``, ``reconstruct``, ``sample``, ``posterior``, ``posterior_sample``, ``cluster``,
  ``active_dims``, ``fit_prior``, ``figures``. A method lists what it supports in
  ``capabilities``; everything else raises ``Unsupported`` with a sentence saying why.

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

import contextlib
import copy
import dataclasses
import numbers
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Iterator, Literal

import torch
from torch import nn

from ..data.core import Batch, DataInfo  # re-exported: methods and their users import them here
from ..data.transforms import convert_range
from ..errors import ConfigError

__all__ = ["Batch", "CAPABILITIES", "Contract", "DataInfo", "Manifolds", "Method", "Posterior", "SAMPLE_Y", "Stage",
           "Unsupported", "Update", "check_config"]


class Unsupported(RuntimeError):
    """Raised by an inference call a method does not support (e.g. ``encode`` on a pure GAN)."""


#: What a method can be asked for at inference, each with what it means; a method declares the
#: ones it supports in ``Method.capabilities`` (``genae methods`` shows them as a table).
CAPABILITIES: dict[str, str] = {
    "encode": "x -> (B, latent) codes",
    "decode": "(B, latent) codes -> x",
    "reconstruct": "x -> x through the code",
    "sample": "n new examples from the model",
    "posterior": "q(.|x): Gaussian, categorical or hybrid",
    "posterior_sample": "one draw z ~ q(z|x)",
    "cluster": "x -> (B, K) probabilities of a discrete code",
    "active_dims": "the code dimensions the method switches on",
    "fit_prior": "fits a sampling prior on encoded training data",
    "figures": "extra report figures",
    "manifolds": "the learned generators as functions of z (encoding by optimisation, QMM eq. 3)",
}

#: What ``y`` in ``sample(n, y=...)`` can fix (``Method.sample_y``); None = nothing (refused).
SAMPLE_Y: dict[str, str] = {
    "class": "a class label of the data",
    "manifold": "one of the learned manifolds",
    "generator": "a generator index",
    "code": "a value of the discrete latent code",
}


@dataclass(frozen=True)
class Contract:
    """What one configuration of a method offers and needs (``Method.contract(cfg, info)``).

    capabilities: the inference calls it supports (names of ``CAPABILITIES``); sample_y: what ``y``
    of ``sample`` fixes (a key of ``SAMPLE_Y``) or None; needs_labels / needs_balanced_batches: what
    its training needs of the data. A pure function of the config and the data's ``DataInfo``: the
    instance, the trainer's data check and the registry table read the same answer.
    """

    capabilities: frozenset[str]
    sample_y: str | None = None
    needs_labels: bool = False
    needs_balanced_batches: bool = False

    def without(self, *names: str) -> "Contract":
        """This contract less the capabilities ``names``."""
        return dataclasses.replace(self, capabilities=self.capabilities - set(names))

    def figures_for_images(self, info: DataInfo) -> "Contract":
        """Less "figures" for vector data: for methods whose report figures are image grids."""
        return self.without("figures") if len(info.shape) == 1 else self


@dataclass(frozen=True)
class Stage:
    """One stage of a staged recipe (e.g. LSR-GAN: stage 1 the VAE, stage 2 the GAN).

    name: what ``Method.stage`` says while it runs (``train_step`` branches on it).
    players: the players trained in this stage; an ``Update`` naming another player is an error.
        Each player's learning-rate schedule spans the stages it is trained in, and is stepped
        only in them.
    steps: how many training steps the stage lasts; None (last stage only) = until ``train.steps``.
    frozen: sub-networks (attribute names of the method) frozen for the stage: no gradient, and
        eval mode with BatchNorm buffers fixed however the trainer switches train/eval.
    """

    name: str
    players: tuple[str, ...]
    steps: int | None = None
    frozen: tuple[str, ...] = ()


@dataclass
class Posterior:
    """q(·|x) of a batch of ``B`` inputs.

    mean, logvar: ``(B, d)`` diagonal Gaussian over the continuous code (None if there is none);
    logits: ``(B, K)`` unnormalised log-probabilities of a categorical code (None if none).
    A hybrid posterior (a relaxed one-hot y and a Gaussian z) has both.
    """

    mean: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
    logits: torch.Tensor | None = None

    def __post_init__(self):
        if (self.mean is None) != (self.logvar is None):
            raise ValueError("a Gaussian posterior needs both mean and logvar")
        if self.mean is None and self.logits is None:
            raise ValueError("a posterior needs a Gaussian part, a categorical part, or both")

    @classmethod
    def gaussian(cls, out: torch.Tensor) -> "Posterior":
        """A diagonal Gaussian from an encoder's ``(B, 2d)`` output laid out as [mean, logvar]."""
        mean, logvar = out.chunk(2, dim=1)
        return cls(mean=mean, logvar=logvar)

    @property
    def kind(self) -> str:
        """"gaussian", "categorical" or "hybrid"."""
        if self.logits is None:
            return "gaussian"
        return "categorical" if self.mean is None else "hybrid"

    @property
    def probs(self) -> torch.Tensor:
        """``(B, K)`` probabilities of the categorical code."""
        if self.logits is None:
            raise Unsupported("this posterior has no categorical code")
        return self.logits.softmax(1)


@dataclass
class Manifolds:
    """A method's learned manifolds as functions of their code (``Method.manifolds()``).

    dim: the dimension of z; count: how many manifolds (1 for a single-generator GAN; A for
    DMWGAN's generators or QMM's bias sets); render(z, index=None, biases=None): ``(N, dim)`` codes
    -> ``(N, *shape)`` in the method's ``input_range``, on manifold ``index`` ``(N,)`` (None: the
    only one) or, for multi-bias generators, with explicit per-layer ``biases``; layers: the
    multi-bias layers (``nets.multibias.MultiBiasLinear``) whose biases define a manifold (empty
    when new manifolds cannot be derived, QMM eq. 3); prior: "normal" or "uniform" z.
    """

    dim: int
    count: int
    render: typing.Callable[..., torch.Tensor]
    layers: list = field(default_factory=list)
    prior: str = "normal"

    def generator(self, i: int) -> typing.Callable[[torch.Tensor], torch.Tensor]:
        """Manifold ``i`` as a function ``(N, dim) -> (N, *shape)``."""
        return lambda z: self.render(z, torch.full((len(z),), i, dtype=torch.long, device=z.device))

    @classmethod
    def single(cls, net: typing.Callable[[torch.Tensor], torch.Tensor], dim: int, prior: str = "normal"
               ) -> "Manifolds":
        """The one manifold of a single-generator model ``net``: ``(N, dim) -> (N, *shape)``."""
        return cls(dim, 1, lambda z, index=None, biases=None: net(z), prior=prior)


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
    instance in ``__init__``), ``needs_labels``, ``needs_balanced_batches``, and declare what they
    support for inference in ``capabilities`` (names from ``CAPABILITIES``) and what ``y`` means
    in ``sample`` in ``sample_y`` (a key of ``SAMPLE_Y`` or None). A method whose offer depends on
    its configuration (no figures for vector data, nothing for ``y`` to pick with one manifold)
    overrides the class method ``contract(cfg, info)``; ``__init__`` sets the instance's four
    attributes from it, and nothing else changes them. Every inference method below has a default
    that raises ``Unsupported`` naming the method and the capability; metrics, the report, the CLI
    and the trainer ask ``supports(name)`` instead of probing for attributes.
    """

    Config: ClassVar[type]
    input_range: str = "unit"  # "unit" = [0, 1], "tanh" = [-1, 1], "raw" = vectors as given
    needs_labels: ClassVar[bool] = False
    needs_balanced_batches: ClassVar[bool] = False
    capabilities: ClassVar[frozenset[str]] = frozenset()
    sample_y: ClassVar[str | None] = None
    #: the decoders besides the default one that can render a code, picked with ``render_with``
    #: (lsr-gan: its stage-1 VAE decoder "vae" and its LSR generator "lsr"); empty: one decoder
    renderers: ClassVar[tuple[str, ...]] = ()
    renderer: str = "auto"   # the one in use; "auto" = the method's default

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        unknown = set(cls.capabilities) - set(CAPABILITIES)
        if unknown:
            raise TypeError(f"{cls.__name__}.capabilities has unknown names {sorted(unknown)}; "
                            f"valid: {', '.join(CAPABILITIES)}")
        if cls.sample_y is not None and cls.sample_y not in SAMPLE_Y:
            raise TypeError(f"{cls.__name__}.sample_y={cls.sample_y!r}; valid: {', '.join(SAMPLE_Y)} or None")
        if cls.sample_y is not None and cls.sample_y_count is Method.sample_y_count:
            raise TypeError(f"{cls.__name__}.sample_y={cls.sample_y!r} needs sample_y_count(): how many "
                            "values y can take")

    def __init__(self, cfg: Any, info: DataInfo):
        super().__init__()
        self.cfg = cfg
        self.info = info
        offer = type(self).contract(cfg, info)
        unknown = set(offer.capabilities) - set(CAPABILITIES)
        if unknown or (offer.sample_y is not None and offer.sample_y not in SAMPLE_Y):
            raise TypeError(f"{type(self).__name__}.contract: unknown capabilities {sorted(unknown)} or "
                            f"sample_y {offer.sample_y!r}")
        self.capabilities, self.sample_y = frozenset(offer.capabilities), offer.sample_y
        self.needs_labels, self.needs_balanced_batches = offer.needs_labels, offer.needs_balanced_batches
        self.stage: str | None = None          # the running stage's name (staged recipes)
        self._frozen: dict[str, list[bool]] = {}  # frozen sub-network -> its params' requires_grad

    @classmethod
    def contract(cls, cfg: Any, info: DataInfo) -> Contract:
        """What a method built from ``cfg`` for data ``info`` offers and needs; the default is the
        class's declarations. Override it (a pure function of its arguments) where they depend on
        the configuration; never assign the attributes elsewhere."""
        return Contract(frozenset(cls.capabilities), cls.sample_y, cls.needs_labels, cls.needs_balanced_batches)

    def supports(self, capability: str) -> bool:
        """Whether this method declares ``capability`` (a name from ``CAPABILITIES``)."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; valid: {', '.join(CAPABILITIES)}")
        return capability in self.capabilities

    @contextlib.contextmanager
    def render_with(self, renderer: str | None) -> Iterator[None]:
        """Decode with ``renderer`` (one of ``renderers``) inside the block, then with the one used
        before; None changes nothing. ``Unsupported`` naming the choices for any other name."""
        if renderer is None:
            yield
            return
        if renderer not in self.renderers:
            raise Unsupported(f"{type(self).__name__} " + (f"renders with {', '.join(self.renderers)}, not "
                              f"{renderer!r}" if self.renderers else "has one decoder; only lsr-gan has "
                              "several renderers (vae, lsr)"))
        saved, self.renderer = self.renderer, renderer
        try:
            yield
        finally:
            self.renderer = saved

    def _unsupported(self, capability: str) -> Unsupported:
        return Unsupported(f"{type(self).__name__} does not support {capability} "
                           f"({CAPABILITIES[capability]})")

    # --- training -----------------------------------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError(f"{type(self).__name__} must define optimizers()")

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        raise NotImplementedError(f"{type(self).__name__} must define train_step()")

    def stages(self) -> tuple[Stage, ...]:
        """The recipe's stages, in order; empty (the default) = one stage training every player
        for all of ``train.steps``."""
        return ()

    def enter_stage(self, stage: Stage | None) -> None:
        """Make ``stage`` the running one: set ``self.stage`` and freeze exactly its ``frozen``
        sub-networks (unfreezing those of the previous stage, restoring their ``requires_grad``).
        The trainer calls it at every stage boundary and on resume."""
        frozen = set(stage.frozen) if stage is not None else set()
        for name in [n for n in self._frozen if n not in frozen]:
            for p, flag in zip(getattr(self, name).parameters(), self._frozen.pop(name)):
                p.requires_grad_(flag)
        for name in frozen - set(self._frozen):
            module = getattr(self, name, None)
            if not isinstance(module, nn.Module):
                raise ValueError(f"stage {stage.name!r} freezes {name!r}, which is not a sub-network of "
                                 f"{type(self).__name__}")
            self._frozen[name] = [p.requires_grad for p in module.parameters()]
            module.requires_grad_(False)
        self.stage = stage.name if stage is not None else None
        self.train(self.training)

    def train(self, mode: bool = True) -> "Method":
        """``nn.Module.train``, except that frozen sub-networks stay in eval mode (their
        BatchNorm running statistics must not move while they are frozen)."""
        super().train(mode)
        for name in self._frozen:
            getattr(self, name).eval()
        return self

    # --- inference API (declare each one a method supports in ``capabilities``) --------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, *shape)`` inputs in ``input_range`` -> ``(B, latent)`` codes (posterior mean)."""
        raise self._unsupported("encode")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent)`` codes -> ``(B, *shape)`` outputs in ``input_range``."""
        raise self._unsupported("decode")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, *shape)`` -> ``(B, *shape)``; default ``decode(encode(x))`` when declared."""
        if not self.supports("reconstruct"):
            raise self._unsupported("reconstruct")
        return self.decode(self.encode(x))

    def posterior(self, x: torch.Tensor) -> "Posterior":
        """q(·|x) of a batch: a ``Posterior`` that is Gaussian, categorical or both (hybrid)."""
        raise self._unsupported("posterior")

    def posterior_sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw from q(z|x), ``(B, latent)`` in the space ``decode`` takes (the default
        reparameterises a Gaussian posterior: ``mean + exp(logvar / 2) * eps``, eps from
        ``generator``); methods with discrete or hybrid codes override it."""
        if not self.supports("posterior_sample"):
            raise self._unsupported("posterior_sample")
        q = self.posterior(x)
        if q.kind != "gaussian":
            raise Unsupported(f"{type(self).__name__} has a {q.kind} posterior: it must define "
                              "posterior_sample itself")
        eps = (torch.randn(q.mean.shape, generator=generator, device=generator.device) if generator is not None
               else torch.randn(q.mean.shape)).to(q.mean.device, q.mean.dtype)
        return q.mean + (0.5 * q.logvar).exp() * eps

    def cluster(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, *shape)`` -> ``(B, K)`` probabilities of the method's own discrete code."""
        raise self._unsupported("cluster")

    def active_dims(self) -> torch.Tensor:
        """``(latent,)`` bool mask of the code dimensions the method itself switches on."""
        raise self._unsupported("active_dims")

    def sample(self, n: int, y: int | torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(n, *shape)`` in ``input_range``; ``y`` fixes what ``sample_y`` says:
        an int (the same value for all ``n``) or ``(n,)`` integers, each in
        ``[0, sample_y_count())`` (``check_y``; a method with ``sample_y=None`` refuses any y).

        ``generator`` makes the noise reproducible without touching the global RNG (which the
        trainer checkpoints for exact resume).
        """
        raise self._unsupported("sample")

    def sample_y_count(self) -> int:
        """How many values ``y`` of ``sample`` can take (it takes 0 .. count − 1): the data's
        classes, the discrete code's categories, the manifolds or the generators, as ``sample_y``
        says. A method with a ``sample_y`` defines it; it is asked only while ``sample_y`` is not
        None (an instance may set that to None, e.g. with one manifold)."""
        return 0

    def check_y(self, y: int | torch.Tensor | None, n: int) -> torch.Tensor | None:
        """``y`` of ``sample(n, y)`` as a ``(n,)`` int64 tensor on the method's device (an int
        means every one of the ``n`` samples gets it; None stays None). ``Unsupported`` when the
        method samples unconditionally, or ``y`` is not an int / ``(n,)`` integer tensor with
        values in ``[0, sample_y_count())``."""
        if self.sample_y is None:
            self.reject_y(y)
        if y is None:
            return None
        k, what = self.sample_y_count(), SAMPLE_Y[self.sample_y]
        expected = (f"{type(self).__name__}.sample(n, y): y fixes {what} ({self.sample_y} 0..{k - 1}); "
                    f"give an int or a ({n},) integer tensor")
        if isinstance(y, bool) or not isinstance(y, (numbers.Integral, torch.Tensor)):
            raise Unsupported(f"{expected}; got {type(y).__name__}")
        if not isinstance(y, torch.Tensor):
            y = torch.full((n,), int(y), dtype=torch.long)
        if y.shape != (n,) or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise Unsupported(f"{expected}; got a {tuple(y.shape)} {y.dtype} tensor")
        if bool(((y < 0) | (y >= k)).any()):  # one host sync per sample call, as before
            raise Unsupported(f"{expected}; got values {int(y.min())}..{int(y.max())}")
        return y.to(self.device, torch.long)

    def reject_y(self, y: int | torch.Tensor | None) -> None:
        """For unconditional ``sample``: a ``y`` would be silently ignored, so it is an error."""
        if y is not None:
            raise Unsupported(f"{type(self).__name__} samples unconditionally: sample(n, y=...) has "
                              "nothing for y to fix")

    # --- your own networks ----------------------------------------------------------------------
    def replace_networks(self, networks: dict[str, nn.Module]) -> None:
        """Swap built sub-networks for the given ``nn.Module``s (e.g. ``{"encoder": MyEncoder()}``).

        Each replacement is checked on what the built network actually sees: one training step of
        a small probe batch runs on a copy of the method (global RNG forked, nothing of this method
        changes) with every input the network receives recorded; a copy of the given module must
        map those inputs to outputs of the same shapes, else a ``ConfigError`` names the network,
        the input shape, what it returned and what the method expects.
        """
        own = dict(self.named_children())
        for name, module in networks.items():
            if name not in own:
                raise ConfigError(f"networks[{name!r}]: {type(self).__name__} has no sub-network {name!r}; "
                                  f"it has: {', '.join(own)}")
            if not isinstance(module, nn.Module):
                raise ConfigError(f"networks[{name!r}] must be a torch.nn.Module, got {type(module).__name__}")
        seen: dict[str, list[tuple[tuple, Any]]] = {name: [] for name in networks}
        with torch.random.fork_rng(devices=[]):
            twin = copy.deepcopy(self)
            hooks = [getattr(twin, name).register_forward_hook(
                lambda mod, args, out, name=name: seen[name].append(
                    (tuple(a.detach().clone() if torch.is_tensor(a) else a for a in args), _shapes(out))))
                for name in networks]
            try:
                for _ in twin.train_step(_probe_batch(self), 0):
                    pass
            finally:
                for h in hooks:
                    h.remove()
            for name, module in networks.items():
                trial = copy.deepcopy(module).train()
                for args, want in seen[name]:
                    try:
                        got = _shapes(trial(*args))
                    except Exception as e:  # the user's module could not even take the input
                        raise ConfigError(f"networks[{name!r}] failed on input {_shapes(args)}: "
                                          f"{type(e).__name__}: {e}") from None
                    if got != want:
                        raise ConfigError(f"networks[{name!r}]: for input {_shapes(args)} it returns {got}; "
                                          f"{type(self).__name__} needs {want}")
        for name, module in networks.items():
            setattr(self, name, module)

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
        """Outputs in ``input_range`` -> [0, 1] for image grids and image metrics (vectors unchanged)."""
        return x if self.input_range == "raw" else convert_range(x, self.input_range, "unit")

    def fit_prior(self, x: torch.Tensor, y: torch.Tensor | None) -> None:
        """Fit what sampling estimates from encoded training data (e.g. CTRL's class subspaces).

        The trainer calls it in eval mode, under ``no_grad``, with the global RNG forked, before
        each sample grid and checkpoint: ``x`` are up to ``train.prior_examples`` training examples
        in ``input_range`` (on the device), ``y`` their labels or None. Store the result in
        buffers so checkpoints carry it. Called only when the method declares ``fit_prior``.
        """
        raise self._unsupported("fit_prior")

    def manifolds(self) -> Manifolds:
        """The learned generators as functions of z (see :class:`Manifolds`)."""
        raise self._unsupported("manifolds")

    def figures(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
        """Extra figures for the run report: name -> ``Grid`` or ``Plot`` (data; the report draws
        them), or an already drawn matplotlib Figure or ``(H, W, C)`` uint8 array.

        ``x``, ``y``: a fixed batch of test examples in ``input_range`` (sorted by label when
        labelled) for figures that need data (heatmaps, interpolations). Called only when the
        method declares ``figures``.
        """
        raise self._unsupported("figures")


@dataclass(frozen=True)
class Grid:
    """A figure that is a grid of images: ``images`` ``(N, C, H, W)`` in [0, 1], ``nrow`` per row.
    Methods return it from ``figures()``; the report draws it (``genae.viz.figures.draw``)."""
    images: torch.Tensor
    nrow: int


@dataclass(frozen=True)
class Plot:
    """A figure drawn from data: ``kind`` names a drawing of ``genae.viz.figures.PLOTS``, called
    with ``args`` and ``kwargs`` (arrays, titles). Methods compute, the report draws: a method
    never imports the plotting code."""
    kind: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


def _shapes(v: Any) -> Any:
    """The shape structure of a tensor or nested tuple/list of tensors (other values as they are)."""
    if torch.is_tensor(v):
        return tuple(v.shape)
    if isinstance(v, (tuple, list)):
        return tuple(_shapes(x) for x in v)
    return v


def _probe_batch(method: "Method") -> Batch:
    """A small batch in ``method``'s input range (every class present when labelled), drawn from a
    private generator so the global RNG is untouched."""
    info, g = method.info, torch.Generator().manual_seed(0)
    n = max(8, 2 * (info.num_classes or 0))
    x = torch.rand((n, *info.shape), generator=g)
    if method.input_range == "tanh":
        x = x * 2 - 1
    elif method.input_range == "raw":
        x = torch.randn((n, *info.shape), generator=g)
    y = torch.arange(n) % info.num_classes if info.num_classes else None
    return Batch(x, y)


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
