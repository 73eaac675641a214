"""The ``METHODS`` registry: one explicit line per registered name.

A registry entry is a :class:`MethodSpec`: the method class plus default overrides of its config.
A variant that only changes a scalar (``beta-vae`` is ``vae`` with β = 4) is an entry with other
defaults, not a new class; a variant that changes players or schedule is a new file.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from .base import Batch, DataInfo, Manifolds, Method, Unsupported, Update


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its class, a one-line summary and default overrides.

    defaults: overrides of ``cls.Config`` (``model.*``) for this registry name.
    train_defaults / data_defaults: the recipe's ``train.*`` / ``data.*`` defaults (e.g. CTRL's
        linearly decayed learning rate and 32×32 inputs); a YAML file or ``--set`` still wins.
    """

    cls: type[Method]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    train_defaults: dict[str, Any] = field(default_factory=dict)
    data_defaults: dict[str, Any] = field(default_factory=dict)

    def config(self, **overrides: Any) -> Any:
        """The method's config dataclass with this entry's defaults, then ``overrides``, applied."""
        base = self.cls.Config()
        return replace(base, **{**self.defaults, **overrides})

    def build(self, cfg: Any, info: DataInfo) -> Method:
        return self.cls(cfg, info)

    def config_fields(self) -> dict[str, Any]:
        return {f.name: f for f in fields(self.cls.Config)}


# Imports sit below MethodSpec so method files stay free of registry knowledge.
from .ae import AE  # noqa: E402
from .aae import AAE  # noqa: E402
from .vae import VAE  # noqa: E402
from .wae import WAEGAN  # noqa: E402
from .ctrl import CTRL  # noqa: E402
from .maskaae import MaskAAE  # noqa: E402
from .wgan import WGAN  # noqa: E402
from .dcgan import DCGAN  # noqa: E402
from .infogan import InfoGAN  # noqa: E402
from .vaegan import VAEGAN  # noqa: E402
from .dmwgan import DMWGAN  # noqa: E402
from .qwgan import QWGAN  # noqa: E402
from .qbetavae import QBetaVAE  # noqa: E402
from .lsrgan import LSRGAN  # noqa: E402
from .imae import IMAE  # noqa: E402
from .imsat import IMSAT  # noqa: E402

# CTRL's recipe (reference code): batch 2048, lr decayed linearly to 0, 32×32 inputs (MNIST's 28×28
# padded); the labelled games need every class in every batch.
_CTRL_TRAIN = {"lr_schedule": "linear", "batch_size": 2048}
_CTRL_LABELLED = {**_CTRL_TRAIN, "balanced_batches": True}
_CTRL_DATA = {"image_size": 32}

METHODS: dict[str, MethodSpec] = {
    "ae": MethodSpec(AE, "deterministic autoencoder (reconstruction only)"),
    "vae": MethodSpec(VAE, "variational autoencoder (Kingma & Welling 2014)"),
    "beta-vae": MethodSpec(VAE, "β-VAE (Higgins et al. 2017): the VAE with β = 4", {"beta": 4.0}),
    "wae-gan": MethodSpec(WAEGAN, "Wasserstein autoencoder with a latent WGAN-GP critic"),
    "aae": MethodSpec(AAE, "adversarial autoencoder (Makhzani et al. 2016), latent JS discriminator"),
    "maskaae": MethodSpec(MaskAAE, "MaskAAE (Mondal et al. 2020): AAE with a learned latent mask"),
    "maskaae-fixed": MethodSpec(MaskAAE, "MaskAAE's WAE-GAN baseline: identical networks and schedule, "
                                "mask fixed to ones", {"learn_mask": False}),
    "ctrl-multi": MethodSpec(CTRL, "CTRL LDR-Multi (Dai et al. 2022): encoder/decoder minimax of class-wise rate reduction",
                             {"objective": "multi"}, _CTRL_LABELLED, _CTRL_DATA),
    "ctrl-binary": MethodSpec(CTRL, "CTRL LDR-Binary (Dai et al. 2022): rate reduction between data and transcriptions",
                              {"objective": "binary"}, _CTRL_TRAIN, _CTRL_DATA),
    "ctrl-ce": MethodSpec(CTRL, "CTRL closed-loop cross-entropy ablation (Dai et al. 2022, appendix A.8)",
                          {"objective": "ce"}, _CTRL_LABELLED, _CTRL_DATA),
    "wgan-gp": MethodSpec(WGAN, "WGAN-GP (Gulrajani et al. 2017): Wasserstein GAN, gradient penalty on the critic",
                          {"lipschitz": "gp"}),
    "wgan-sn": MethodSpec(WGAN, "WGAN with a spectrally normalised critic (Miyato et al. 2018; QMM's WGAN baseline)",
                          {"lipschitz": "sn", "latent_dim": 8, "n_critic": 1, "lr": 2e-4, "betas": (0.5, 0.999)}),
    "dcgan": MethodSpec(DCGAN, "DCGAN (Radford et al. 2016): non-saturating GAN, BatchNorm conv networks"),
    "infogan": MethodSpec(InfoGAN, "InfoGAN (Chen et al. 2016): GAN + MI bound of a categorical and 2 continuous "
                          "codes, Q on D's trunk; the paper's MNIST setting (62 noise dims)"),
    "infogan-qmm": MethodSpec(InfoGAN, "InfoGAN in the QMM paper's MNIST setting: 10-way code, "
                              "2 continuous, 8 noise dims", {"noise_dim": 8}),
    "dmwgan": MethodSpec(DMWGAN, "DMWGAN (Khayatkhoei et al. 2018): A generators with a learned prior and an "
                         "index encoder, WGAN with a one-sided gradient penalty"),
    "q-wgan": MethodSpec(QWGAN, "Q-WGAN (QMM): multi-bias generator with the bias-aligning regulariser, "
                         "spectrally normalised critic"),
    "q-wgan-noreg": MethodSpec(QWGAN, "Q-WGAN's ablation without the regulariser (λ = 0)", {"reg_weight": 0.0}),
    "wgan-qmm": MethodSpec(QWGAN, "QMM's WGAN baseline on Q-WGAN's networks: one bias set (A = 1), λ = 0",
                           {"num_biases": 1, "reg_weight": 0.0}),
    "q-beta-vae": MethodSpec(QBetaVAE, "Q-β-VAE (QMM): multi-decoder β-VAE trained by EM, bias-aligning regulariser"),
    "q-beta-vae-noreg": MethodSpec(QBetaVAE, "Q-β-VAE's ablation without the regulariser (λ = 0)", {"reg_weight": 0.0}),
    "beta-vae-qmm": MethodSpec(QBetaVAE, "QMM's β-VAE baseline on Q-β-VAE's networks: one decoder (A = 1), λ = 0",
                               {"num_biases": 1, "reg_weight": 0.0, "em_repeats": 1}),
    "lsr-gan": MethodSpec(LSRGAN, "LSR-GAN: a VAE, then a GAN generator from its decoder rendering q(z|x) "
                          "(λ·−log q(z|G(z)), encoder frozen)", train_defaults={"batch_size": 32}),
    "imae": MethodSpec(IMAE, "IMAE (Gao et al. 2019): hybrid categorical + Gaussian latents, β·I(x; y) + β·L(z) "
                       "− 2β·TC(z), VAT on p(y|x)"),
    "jointvae": MethodSpec(IMAE, "JointVAE (Dupont 2018): hybrid latents, controlled capacities C_z, C_y "
                           "(0 → 5 nats over 25k steps, γ = 30), VAT on p(y|x) as in the IMAE comparison",
                           {"objective": "jointvae", "beta": 30.0, "optimizer": "adam", "lr": 5e-4}),
    "beta-vae-hybrid": MethodSpec(IMAE, "β-VAE on hybrid latents (the IMAE comparison): β on both KL terms, "
                                  "VAT on p(y|x)", {"objective": "jointvae", "beta": 4.0, "capacity_z": 0.0,
                                                    "capacity_y": 0.0}),
    "infovae": MethodSpec(IMAE, "InfoVAE as the IMAE paper states it for hybrid latents: β·[MMD(q(z), p(z)) + "
                          "KL(q(y)‖U)], VAT on p(y|x)", {"objective": "infovae"}),
    "beta-tcvae": MethodSpec(IMAE, "β-TCVAE (Chen et al. 2018): ELBO with the total correlation weighted β "
                             "(minibatch-weighted sampling)",
                             {"objective": "beta-tcvae", "beta": 6.0, "n_categories": 0, "vat_weight": 0.0,
                              "optimizer": "adam"}),
    "imsat": MethodSpec(IMSAT, "IMSAT (Hu et al. 2017) clustering: an encoder trained on VAT − λ·[μ·H(Y) − H(Y|X)] "
                        "alone (IMAE's L(y); issue 39's first rung)", train_defaults={"batch_size": 250}),
    "vae-gan": MethodSpec(VAEGAN, "VAE-GAN (Larsen et al. 2016): VAE with a reconstruction in the discriminator's "
                          "features, per-player losses"),
}



def method_capabilities(name: str) -> tuple[frozenset[str], str | None]:
    """(declared inference capabilities, what ``y`` fixes in ``sample``) of a registered method.

    Read from the class, so nothing is built: the most it offers. What one configuration offers is
    ``METHODS[name].cls.contract(model_cfg, info)`` (a method's ``supports`` answers from it)."""
    cls = METHODS[name].cls
    return frozenset(cls.capabilities), cls.sample_y


__all__ = ["METHODS", "MethodSpec", "Manifolds", "Method", "Update", "Batch", "DataInfo", "Unsupported",
           "method_capabilities"]
