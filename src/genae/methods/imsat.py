"""IMSAT (Hu et al., "Learning Discrete Representations via Information Maximizing Self-Augmented
Training", ICML 2017), clustering only: the discrete half of IMAE's objective on an encoder alone.

It is the first rung of issue 39's diagnostic ladder: IMAE's L(y) (eq. 11: the minibatch mutual
information I(x; y) of eq. 7 with VAT) is IMSAT's clustering objective, so if an encoder trained
on it cannot reach IMSAT's regime on MNIST (≥ 0.9 unsupervised accuracy), the estimator, VAT or the
optimisation is wrong, whatever the autoencoder around it does.

Player
    encoder (p(y|x) = softmax of a K-way head), one update per step, minimising

        VAT(p(y|x); ε) − λ·[μ·H(mean_b p(y|x_b)) − mean_b H(p(y|x_b))]

    (IMSAT eq. 8 with its "equal" regulariser weights: λ = 0.1, μ = 4 in its clustering code; the
    bracket is ``objectives.empirical_mutual_information`` with ``marginal_weight=μ``, the marginal
    of the global batch under DDP). VAT: one power iteration, ξ = 10, BatchNorm statistics of the
    batch without updating the running buffers (``objectives.vat_loss``), as IMSAT's code.

Settings (IMSAT's clustering code): the encoder 784-1200-1200-K with BatchNorm and ReLU
(``net="imsat"``), Adam lr 0.002, batch 250, 50 epochs of MNIST's 70,000 digits = 14,000 steps
(``configs/imsat_mnist.yaml``). Deliberate differences: ε is one fixed number in [0, 1] pixel
units (``vat_eps``, IMAE's footnote: 1), not IMSAT's per-example ε = 0.25 × the distance to the
10th nearest neighbour (that needs each example's index in the batch; not built yet); images in
[0, 1] as IMAE's (IMSAT scales them to [−1, 1)); PyTorch's default initialisation (IMSAT's code
scales its output layer's weights by 1e-4); the reference split is MNIST's test set (IMSAT
reports accuracy on all 70,000 digits).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import torch

from ..collectives import global_mean
from ..errors import ConfigError
from ..nets import MLPEncoder, build_encoder
from ..objectives import empirical_mutual_information, vat_loss
from ..optim import build_optimizer
from .base import Batch, DataInfo, Method, Update, check_config


@dataclass
class IMSATConfig:
    net: Literal["imsat", "mlp", "conv"] = "imsat"   # imsat: 1200-1200 with BatchNorm (IMSAT's code)
    n_clusters: int = 10              # K
    hidden: int = 0                   # width of the "mlp" / "conv" families (0: their default)
    lam: float = 0.1                  # λ on the information term (IMSAT's --lam)
    mu: float = 4.0                   # μ on the marginal entropy H(Y) (IMSAT's --mu)
    vat_eps: float = 1.0              # ε of VAT, [0, 1] pixel units (IMAE's footnote)
    vat_xi: float = 10.0              # ξ of the power iteration (IMSAT's code)
    vat_power: int = 1
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.999)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"


class IMSAT(Method):
    Config = IMSATConfig
    capabilities = frozenset({"encode", "cluster"})

    def __init__(self, cfg: IMSATConfig, info: DataInfo):
        super().__init__(cfg, info)
        check_config(cfg, positive=("n_clusters", "vat_xi", "vat_power", "lr"), nonnegative=("hidden", "lam", "mu",
                                                                                             "vat_eps"))
        if cfg.n_clusters < 2:
            raise ConfigError(f"model.n_clusters must be at least 2, got {cfg.n_clusters}")
        self.input_range = "raw" if len(info.shape) == 1 else "unit"
        if cfg.net == "imsat":
            self.encoder = MLPEncoder(info.shape, cfg.n_clusters, (1200, 1200), batchnorm=True)
        else:
            self.encoder = build_encoder(cfg.net, info.shape, cfg.n_clusters, cfg.hidden or None)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        return {"encoder": build_optimizer(c.optimizer, self.encoder.parameters(), c.lr, c.betas)}

    def train_step(self, batch: Batch, step: int) -> Iterator[Update]:
        c, x = self.cfg, batch.x
        logits = self.encoder(x)
        p = logits.softmax(1)
        info = empirical_mutual_information(p, marginal_weight=c.mu, marginal=global_mean(p))
        vat = vat_loss(self.encoder, x, c.vat_eps, c.vat_xi, c.vat_power, logits=logits, module=self.encoder)
        loss = vat - c.lam * info
        yield Update({"encoder": loss}, {"encoder/vat": vat.detach(), "encoder/info": info.detach(),
                                         "encoder/loss": loss.detach()})

    # --- inference API ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` logits of p(y|x) (the representation a probe or k-NN reads)."""
        return self.encoder(x)

    def cluster(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` p(y|x)."""
        return self.encoder(x).softmax(1)
