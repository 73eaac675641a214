"""CTRL: closed-loop transcription to a linear discriminative representation (LDR) by minimaxing
rate reduction (Dai, Tong, Li, Wu, Psenka, Chan, Zhai, Yu, Yuan, Shum & Ma, Entropy 24(4):456,
2022; arXiv:2111.06636). Registry entries: ``ctrl-multi`` (LDR-Multi), ``ctrl-binary``
(LDR-Binary) and ``ctrl-ce`` (the closed-loop cross-entropy ablation, paper appendix A.8).

Players
    encoder f: images -> features on the unit sphere S^{d-1} (d = 128); maximises J (loss −J).
    decoder g: features -> images in [-1, 1] (tanh); minimises J (loss +J).
    The loop: Z = f(X), X̂ = g(Z), Ẑ = f(X̂). Rows of Z are samples (n × d).

Objective J (``genae.objectives.rate_reduction``; R(Z) = ½ logdet(I + d/(n ε²) ZᵀZ), ε² = 0.5)
    multi  (eq. 11, labelled): J = ΔR(Z) + ΔR(Ẑ) + Σ_j ΔR(Z_j, Ẑ_j) — the features of each class
           are expanded as a whole and compressed per class (ΔR = R − Σ_j n_j/n R(Z_j)), and each
           class's transcriptions Ẑ_j are pushed towards (decoder) / away from (encoder) Z_j by
           the pair term ΔR(Z_j, Ẑ_j) = R(Z_j ∪ Ẑ_j) − ½R(Z_j) − ½R(Ẑ_j).
    binary (eq. 10, unlabelled): J = ΔR(Z, Ẑ) = R(Z ∪ Ẑ) − ½R(Z) − ½R(Ẑ), data vs transcriptions.
    ce     (appendix A.8): the same loop, with each rate-reduction term replaced by a
           cross-entropy of linear heads on the features (heads owned by the encoder player):
           J = −[CE(WZ, y) + CE(WẐ, y) + Σ_j BCE_j(w_jᵀZ_j → real, w_jᵀẐ_j → transcribed)],
           W a K-way linear classifier (↔ ΔR(Z), ΔR(Ẑ)) and w_j per-class linear real-vs-
           transcribed discriminators (↔ the pair terms). Same players and schedule, so it is
           this class with another objective, not a second class.

Update order per iteration (as the reference code github.com/Delay-Xili/LDR, ``MCRTrainer``)
    1. ``n_enc_steps`` encoder updates on the batch, each on a fresh forward pass:
       Z = f(X), X̂ = g(Z) computed without gradient (detached), Ẑ = f(X̂), loss −J(Z, Ẑ).
       With ``delta_r_pre_step`` the first of them instead maximises ΔR(Z) of the real data
       only (loss −ΔR(Z); the reference CIFAR-10 recipe: 2 encoder steps).
    2. One decoder update on a fresh forward pass through the updated encoder:
       Z = f(X) (no gradient needed: Z does not depend on g), Ẑ = f(g(Z)), loss +J(Z, Ẑ).
    Adam for both players (lr 1.5e-4, betas (0.5, 0.999) for DCGAN backbones; (0, 0.9) for the
    SNGAN ResNets), learning rate decayed linearly to 0 (registry ``train_defaults``).

Sampling (``fit_prior`` then ``sample``)
    ``fit_prior`` encodes up to 10,000 training examples and stores, per class j, the mean z̄_j,
    the top-r principal directions v_i of the centred Z_j and σ_i = the standard deviation of
    Z_j along v_i (singular value / √n_j), and the same for all data pooled (r_unlabelled = 100,
    capped by d). Class-conditional samples (eq. 13): z = z̄_j + α Σ_{i≤r} n_i σ_i v_i,
    n_i ~ N(0, 1), projected back to the sphere, decoded. ``y=None``: LDR-Binary (or data
    without labels) samples the pooled Gaussian (eq. 14); LDR-Multi/CE draw classes uniformly.

Choices where the paper is silent (or our reading of it)
    - σ_i is a standard deviation (σ/√n_j), so α = 1 reproduces the spread of the class along
      each kept direction; the paper does not say which normalisation of σ it uses.
    - ``figures``: the paper's "|ZᵀẐ|" with its d × n convention is our n × n matrix |Z Ẑᵀ| of
      cosine similarities between samples (rows of Z are samples), likewise |Z Zᵀ|; principal
      directions for the "aligned samples" figure come from the *uncentred* SVD of each class's
      features (class subspaces pass through the origin) and the samples with the largest
      |zᵀv| are decoded.
    - The CE ablation's exact terms could not be checked against released code (none exists for
      it); the formulation above maps each ΔR term to the cross-entropy that measures the same
      property, with unit weights, as the rate-reduction terms have.
    - A batch missing a class is rejected (multi/ce): the pair term of an empty class is
      undefined in the paper. The trainer's class-balanced sampler guarantees every class.
    - The reference code back-propagates the decoder loss through the encoder too and only steps
      the decoder; here the decoder's loss reaches its own parameters only (same update).
    - BatchNorm statistics for inference. Real images and transcriptions both pass through f in
      training mode (as in the reference code), so f's running statistics average the two and
      its eval-mode features of real images are not the features training produced; measured on
      MNIST-10k, eval-mode decodings collapsed to one image while training-mode ones were
      digits. ``fit_prior`` (called by the trainer before every sample grid and checkpoint)
      therefore re-estimates the BN statistics of f on real training images and of g on their
      features (``genae.nets.recalibrate_batchnorm``). Training itself only uses batch
      statistics, so the game is unchanged.
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass
from itertools import chain
from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..nets import build_ctrl_nets, recalibrate_batchnorm
from ..objectives.rate_reduction import ctrl_binary_objective, ctrl_multi_objective, delta_r
from ..optim import build_optimizer
from .base import Batch, Contract, DataInfo, Grid, Method, Plot, Unsupported, Update, check_config


@dataclass
class CTRLConfig:
    objective: Literal["multi", "binary", "ce"] = "multi"  # J: LDR-Multi (11), LDR-Binary (10), CE (A.8)
    arch: Literal["dcgan32", "resnet32", "resnet48", "resnet128", "mlp"] = "dcgan32"  # paper Tables 4–11
    feature_dim: int = 128            # d (features on S^{d-1})
    width: int = 0                    # base channels / MLP units; 0 = the architecture's default
    eps2: float = 0.5                 # ε² of the coding rate (the reference code's EPS)
    precision: Literal["float32", "float64"] = "float32"  # logdet precision
    n_enc_steps: int = 1              # encoder updates per iteration (reference INNER_LOOP)
    delta_r_pre_step: bool = False    # first encoder update maximises ΔR(Z) of real data only
    r: int = 8                        # r, rank of each class's Gaussian (eq. 13)
    r_unlabelled: int = 100           # r of the pooled Gaussian (eq. 14), capped by d
    alpha: float = 1.0                # α, noise scale of eqs. 13–14
    lr: float = 1.5e-4                # both players
    betas: tuple[float, float] = (0.5, 0.999)  # Adam (β1, β2); (0, 0.9) for the ResNets


class CTRL(Method):
    Config = CTRLConfig
    capabilities = frozenset({"encode", "decode", "reconstruct", "sample", "fit_prior", "figures"})
    input_range = "tanh"
    sample_y = "class"  # y picks the class subspace Gaussian of eq. 13

    @classmethod
    def contract(cls, cfg, info: DataInfo) -> Contract:
        labelled = cfg.objective != "binary"    # LDR-Multi and CE: each class plays its own games
        offer = dataclasses.replace(super().contract(cfg, info), needs_labels=labelled,
                                    needs_balanced_batches=labelled)
        # LDR-Binary on unlabelled data: one pooled Gaussian, nothing for y to choose
        return offer if info.num_classes else dataclasses.replace(offer, sample_y=None)

    def __init__(self, cfg: CTRLConfig, info: DataInfo):
        super().__init__(cfg, info)
        _validate(cfg, info)
        self._labels_checked = False   # see _check_labels
        self.num_classes = k = info.num_classes or 0
        try:
            self.encoder, self.decoder = build_ctrl_nets(cfg.arch, info.shape, cfg.feature_dim, cfg.width or None)
        except ConfigError as e:  # name the fix for images of another size (e.g. MNIST's 28×28)
            raise ConfigError(f"{e}; or set data.image_size to the side model.arch expects") from None
        if cfg.objective == "ce":  # the encoder player's linear heads (appendix A.8)
            self.classifier = nn.Linear(cfg.feature_dim, k)       # W: K-way classifier
            self.discriminators = nn.Linear(cfg.feature_dim, k)   # w_j: real vs transcribed, per class
        d, r, ru = cfg.feature_dim, min(cfg.r, cfg.feature_dim), min(cfg.r_unlabelled, cfg.feature_dim)
        for name, shape in (("class_mean", (k, d)), ("class_dirs", (k, d, r)), ("class_std", (k, r)),
                            ("class_count", (k,)), ("all_mean", (d,)), ("all_dirs", (d, ru)),
                            ("all_std", (ru,)), ("all_count", ())):
            self.register_buffer(name, torch.zeros(shape))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        enc = chain(self.encoder.parameters(), *(m.parameters() for m in self._heads()))
        return {"encoder": build_optimizer("adam", enc, c.lr, c.betas),
                "decoder": build_optimizer("adam", self.decoder.parameters(), c.lr, c.betas)}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        c, x, y = self.cfg, batch.x, self._check_labels(batch)
        for i in range(c.n_enc_steps):
            if i == 0 and c.delta_r_pre_step:
                yield self.delta_r_update(x, y)
                continue
            z = self.encoder(x)
            with torch.no_grad():
                x_hat = self.decoder(z)             # X̂ = g(Z), detached before re-encoding
            j, terms = self.objective(z, self.encoder(x_hat), y)
            yield Update({"encoder": -j}, {"encoder/loss": -j.detach(), "encoder/J": j.detach(),
                                           **{f"encoder/{k}": v for k, v in terms.items()}})
        with torch.no_grad():
            z = self.encoder(x)                     # fresh pass through the updated encoder
        j, terms = self.objective(z, self.encoder(self.decoder(z)), y)
        yield Update({"decoder": j}, {"decoder/loss": j.detach(), "decoder/J": j.detach(),
                                      **{f"decoder/{k}": v for k, v in terms.items()}})

    def delta_r_update(self, x: torch.Tensor, y: torch.Tensor) -> Update:
        """Encoder-only update maximising ΔR(f(x)) of real data (MCR²; the reference CIFAR-10 pre-step).

        x ``(B, C, H, W)``, y ``(B,)`` labels with every class present.
        """
        dr = delta_r(self.encoder(x), y, self.num_classes, self.cfg.eps2, self.cfg.precision)
        return Update({"encoder": -dr}, {"encoder/pre_delta_r": dr.detach()})

    def objective(self, z: torch.Tensor, z_hat: torch.Tensor, y: torch.Tensor | None
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """J(Z, Ẑ) of this game and its terms (detached), exactly what each player's loss uses."""
        c = self.cfg
        if c.objective == "multi":
            return ctrl_multi_objective(z, z_hat, y, self.num_classes, c.eps2, c.precision)
        if c.objective == "binary":
            return ctrl_binary_objective(z, z_hat, c.eps2, c.precision)
        return _ce_objective(self.classifier(z), self.classifier(z_hat), self.discriminators(z),
                             self.discriminators(z_hat), y)

    # --- inference API ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Features f(x) on the unit sphere, ``(B, feature_dim)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """g(z), ``(B, *shape)`` in [-1, 1]."""
        return self.decoder(z)

    @torch.no_grad()
    def fit_prior(self, x: torch.Tensor, y: torch.Tensor | None) -> None:
        """BatchNorm statistics of f on real data and of g on f(x) (see the module docstring), then
        per-class (and pooled) mean, top principal directions and standard deviations of f(x)."""
        recalibrate_batchnorm(self.encoder, x.split(500))
        z = torch.cat([self.encoder(b) for b in x.split(500)])
        recalibrate_batchnorm(self.decoder, z.split(500))
        z = z.double()
        self.all_mean, self.all_dirs, self.all_std = _pca(z, self.all_dirs.shape[1], self.all_mean)
        self.all_count.fill_(len(z))
        self.class_count.zero_()
        if y is None:
            return
        for j in range(self.num_classes):
            zj = z[y == j]
            if len(zj):
                self.class_mean[j], self.class_dirs[j], self.class_std[j] = _pca(zj, self.class_dirs.shape[2],
                                                                                 self.class_mean[j])
                self.class_count[j] = len(zj)

    def sample(self, n: int, y: int | torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoded draws from the class Gaussians (eq. 13; ``y``, an int or ``(n,)``, given or
        drawn uniformly) or, for LDR-Binary / unlabelled data with ``y=None``, from the pooled
        Gaussian (eq. 14)."""
        y = self.check_y(y, n)
        if self.all_count.item() == 0:
            raise Unsupported("CTRL samples from Gaussians fitted to encoded training data: call "
                              "fit_prior(x, y) first (the trainer does before every checkpoint)")
        classes_known = bool((self.class_count > 0).any())
        if y is None and self.cfg.objective != "binary" and classes_known:
            y = (torch.randint(self.num_classes, (n,), device=self.device) if generator is None else
                 torch.randint(self.num_classes, (n,), generator=generator, device=generator.device)
                 .to(self.device))
        if y is None:
            mean, dirs, std = self.all_mean.expand(n, -1), self.all_dirs.expand(n, -1, -1), self.all_std.expand(n, -1)
        else:
            missing = sorted({int(c) for c in y.unique() if self.class_count[c] == 0})
            if missing:
                raise Unsupported(f"no class subspace for class(es) {missing}: fit_prior saw "
                                  f"{'no labels' if not classes_known else 'no examples of them'}")
            mean, dirs, std = self.class_mean[y], self.class_dirs[y], self.class_std[y]
        noise = self.prior_noise(n, dirs.shape[2], generator)
        z = mean + self.cfg.alpha * torch.einsum("ndr,nr->nd", dirs, noise * std)
        return self.decoder(F.normalize(z, dim=1))

    def sample_y_count(self) -> int:
        return self.num_classes  # K

    def figures(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
        """|ZẐᵀ| and |ZZᵀ| heatmaps, decoded samples aligned with class principal directions,
        interpolations and a class-conditional sample grid (see ``_figures``)."""
        return _figures(self, x, y)

    # --- helpers ------------------------------------------------------------------------------
    def _heads(self) -> list[nn.Module]:
        return [self.classifier, self.discriminators] if self.cfg.objective == "ce" else []

    def _check_labels(self, batch: Batch) -> torch.Tensor | None:
        if self.cfg.objective == "binary":
            return batch.y
        if batch.y is None:
            raise ConfigError(f"CTRL objective {self.cfg.objective!r} needs labelled batches")
        # The check reads the counts on the host: free on a CPU, a synchronisation per step on an
        # accelerator. There it runs on the first batch only: the class-balanced sampler that the
        # labelled objectives need (train.balanced_batches) guarantees every class in every batch.
        if batch.y.device.type != "cpu" and self._labels_checked:
            return batch.y
        self._labels_checked = True
        counts = torch.bincount(batch.y, minlength=self.num_classes)[: self.num_classes]
        if bool((counts == 0).any()):
            missing = torch.nonzero(counts == 0).flatten().tolist()
            raise ConfigError(f"CTRL objective {self.cfg.objective!r} needs every class in every batch, "
                              f"but class(es) {missing} are missing from this batch of {len(batch.y)}; "
                              f"use class-balanced batches (train.balanced_batches=true) with "
                              f"train.batch_size >= {self.num_classes}")
        return batch.y


def _validate(cfg: CTRLConfig, info: DataInfo) -> None:
    check_config(cfg, positive=("feature_dim", "eps2", "n_enc_steps", "r", "r_unlabelled", "lr"),
                 nonnegative=("width", "alpha"))
    if info.kind != "image" or len(info.shape) != 3:
        raise ConfigError(f"CTRL (model.arch={cfg.arch!r}) needs images; got data of shape {tuple(info.shape)}")
    if cfg.objective != "binary" and (info.num_classes or 0) < 2:
        raise ConfigError(f"model.objective={cfg.objective!r} needs labelled data with at least 2 "
                          "classes; use model.objective=binary (ctrl-binary) for unlabelled data")
    if cfg.delta_r_pre_step and (cfg.objective != "multi" or cfg.n_enc_steps < 2):
        raise ConfigError("model.delta_r_pre_step needs model.objective=multi and model.n_enc_steps >= 2 "
                          "(the pre-step replaces the first of the encoder updates)")


def _ce_objective(logits_z, logits_zh, disc_z, disc_zh, y) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Closed-loop CE utility (appendix A.8): −[CE(WZ) + CE(WẐ) + BCE of class y's discriminator]."""
    ce_z, ce_zh = F.cross_entropy(logits_z, y), F.cross_entropy(logits_zh, y)
    real, fake = disc_z.gather(1, y[:, None]), disc_zh.gather(1, y[:, None])
    bce = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
           + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    j = -(ce_z + ce_zh + bce)
    return j, {"ce_z": ce_z.detach(), "ce_zhat": ce_zh.detach(), "bce_pair": bce.detach()}


def _pca(z: torch.Tensor, r: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, top-r principal directions (d, r), std along each) of rows ``z``; zero-padded."""
    mean = z.mean(0)
    _, s, vh = torch.linalg.svd(z - mean, full_matrices=False)
    k = min(r, len(s))
    dirs = torch.zeros(z.shape[1], r, dtype=z.dtype, device=z.device)
    std = torch.zeros(r, dtype=z.dtype, device=z.device)
    dirs[:, :k], std[:k] = vh[:k].T, s[:k] / math.sqrt(len(z))
    return mean.to(like), dirs.to(like), std.to(like)


@torch.no_grad()
def _figures(m: CTRL, x: torch.Tensor, y: torch.Tensor | None, n_dirs: int = 4, n_top: int = 8) -> dict[str, Any]:
    z = torch.cat([m.encode(b) for b in x.split(250)])
    z_hat = torch.cat([m.encode(m.decode(b)) for b in z.split(250)])
    out: dict[str, Any] = {}
    sorted_note = ", sorted by class" if y is not None else ""
    boundaries = torch.nonzero(y[1:] != y[:-1]).flatten().tolist() if y is not None else []
    out["feature similarity heatmaps"] = Plot("heatmaps", (
        [((z @ z.T).abs().cpu().numpy(), "|Z Zᵀ| (real vs real)" + sorted_note),
         ((z @ z_hat.T).abs().cpu().numpy(), "|Z Ẑᵀ| (real vs transcribed)" + sorted_note)], boundaries))

    if y is not None:
        rows = []
        for j in torch.unique(y).tolist():
            zj, xj = z[y == j], x[y == j]
            _, _, vh = torch.linalg.svd(zj.double(), full_matrices=False)
            for v in vh[:n_dirs].to(z):
                top = (zj @ v).abs().argsort(descending=True)[:n_top]
                rows.append(m.to_unit(m.decode(zj[top])))
                if len(top) < n_top:
                    rows.append(torch.zeros(n_top - len(top), *x.shape[1:], device=x.device))
        out[f"decoded samples best aligned with each class's top-{n_dirs} principal directions "
           f"(rows: class, direction)"] = Grid(torch.cat(rows), nrow=n_top)

    firsts = ([int((y == j).nonzero()[0]) for j in torch.unique(y).tolist()] if y is not None
              else list(range(min(len(x), 9))))
    pairs = list(zip(firsts, firsts[1:]))[:8]
    if pairs:
        t = torch.linspace(0, 1, 10, device=z.device)[:, None]
        interp = [m.to_unit(m.decode(F.normalize((1 - t) * z[a] + t * z[b], dim=1))) for a, b in pairs]
        out["interpolation g(normalise((1−α) f(x1) + α f(x2)))"] = Grid(torch.cat(interp), nrow=10)

    if m.all_count.item() > 0 and bool((m.class_count > 0).any()):
        k = m.num_classes
        ys = torch.arange(k, device=m.device).repeat_interleave(10)
        g = torch.Generator(device=m.device).manual_seed(0)
        out[f"class-conditional samples (eq. 13, r={m.class_dirs.shape[2]}, α={m.cfg.alpha})"] = Grid(
            m.to_unit(m.sample(len(ys), y=ys, generator=g)), nrow=10)
    return out
