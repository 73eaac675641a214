"""Ex-post priors of a run: a Gaussian mixture fitted on the codes of training examples, stored in
the checkpoint it was fitted for, and sampling by decoding its draws.

Any method that can ``encode`` and ``decode`` gets a sampler this way, also one that has none of
its own (``ae``), and one whose own prior its aggregate posterior never matched (a VAE, WAE,
MaskAAE): ``genae sample RUN --prior gmm``, ``genae eval RUN --prior gmm`` (results named
``fid@gmm``, ...), ``genae.ex_post.ex_post_prior`` from Python. The mixture (``genae.priors``:
K = 10 full-covariance components by EM, k-means++ start from ``seed``) is fitted on
``encode(x)`` of the first ``train.prior_examples`` (10,000) training examples — the posterior
mean for a VAE, as pythae's ``GaussianMixtureSampler`` fits the embeddings — in float64.

Storage: ``RUN/checkpoints/step-N/ex-post-gmm-k{K}-s{seed}.safetensors`` (weights, means,
covariances; the fit's settings and the SHA-256 of the ``model.safetensors`` it was fitted on in
the metadata), written atomically beside the checkpoint's files (outside its manifest: the
checkpoint stays what training wrote, and resuming never reads it). A stored mixture is used
while the weights it was fitted on are the checkpoint's, and refitted otherwise; a damaged file
is an error naming it. Nothing read runs code (safetensors and JSON).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
from safetensors import safe_open
from safetensors.torch import save as save_tensors

from .errors import GenaeError
from .fileio import atomic_write, sha256_file
from .priors import GaussianMixture, fit_gmm

__all__ = ["PRIORS", "decode_prior", "ex_post_prior", "fit_ex_post", "prior_path", "read_prior",
           "training_codes", "why_not"]

#: the ex-post priors ``--prior`` accepts ("model" = the method's own sampler)
PRIORS = ("gmm",)
FORMAT = "1"


def why_not(method) -> str | None:
    """None when ``method`` can take an ex-post prior (it encodes and decodes), else why not."""
    missing = [c for c in ("encode", "decode") if not method.supports(c)]
    if missing:
        return (f"{type(method).__name__} cannot {' or '.join(missing)}: an ex-post prior is fitted on "
                "encoded training data and sampled through the decoder")
    return None


def training_codes(method, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``encode`` of stored examples ``x`` (uint8 images or float vectors) -> ``(N, D)`` float64 on
    the CPU, in batches, in eval mode under ``no_grad``."""
    from .data import to_range

    was = method.training
    method.eval()
    try:
        with torch.no_grad():
            parts = [method.encode(to_range(x[i:i + batch_size].to(method.device), method.input_range))
                     .flatten(1).double().cpu() for i in range(0, len(x), batch_size)]
    finally:
        method.train(was)
    return torch.cat(parts)


def fit_ex_post(method, train_x: torch.Tensor, components: int = 10, seed: int = 0) -> GaussianMixture:
    """The mixture of ``components`` Gaussians fitted on ``encode`` of ``train_x`` (``genae.priors.fit_gmm``)."""
    reason = why_not(method)
    if reason:
        raise GenaeError(reason)
    codes = training_codes(method, train_x)
    gmm = fit_gmm(codes, components, seed=seed)
    gmm.info["codes"] = "encode (posterior mean where there is a posterior)"
    return gmm


def decode_prior(method, prior: GaussianMixture, n: int, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
    """``n`` samples ``(n, *shape)`` in the method's ``input_range``: ``decode(z)``, z ~ ``prior``
    (drawn in float64 on the CPU from ``generator``, then cast to the decoder's device and dtype)."""
    p = next(method.parameters())
    return method.decode(prior.sample(n, generator).to(p.device, p.dtype if p.dtype.is_floating_point else torch.float32))


def prior_path(ckpt: Path, components: int = 10, seed: int = 0) -> Path:
    return Path(ckpt) / f"ex-post-gmm-k{components}-s{seed}.safetensors"


def _weights_digest(ckpt: Path) -> str:
    """SHA-256 of the checkpoint's ``model.safetensors``: from its manifest where it has one."""
    manifest = Path(ckpt) / "manifest.json"
    try:
        return json.loads(manifest.read_text())["files"]["model.safetensors"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return sha256_file(Path(ckpt) / "model.safetensors")


def read_prior(path: Path, weights_sha256: str | None = None) -> GaussianMixture | None:
    """The mixture stored at ``path``; None when it is absent or was fitted on other weights than
    ``weights_sha256``; ``GenaeError`` naming the file when it is damaged."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:   # tensors and the fit's settings, one read
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in ("weights", "means", "covariances")}
        info = json.loads(meta.get("info", "{}"))
        gmm = GaussianMixture(tensors["weights"], tensors["means"], tensors["covariances"], info)
    except Exception as e:  # SafetensorError, KeyError, ValueError, a non-PD covariance, ...
        raise GenaeError(f"{path} is damaged ({type(e).__name__}: {e}); delete it to refit") from None
    if weights_sha256 is not None and meta.get("weights_sha256") != weights_sha256:
        return None
    return gmm


def ex_post_prior(run_dir: str | Path, ckpt: Path, method, train_x: torch.Tensor, components: int = 10,
                  seed: int = 0, log: Callable[[str], object] | None = None) -> GaussianMixture:
    """The run's ex-post mixture for checkpoint ``ckpt``: the stored one when it was fitted on these
    weights with these settings, else fitted now on ``encode(train_x)`` and stored (atomically, so
    a crash leaves the old file or none). ``train_x``: the training examples to fit on (the CLI
    passes the first ``train.prior_examples``)."""
    path, digest = prior_path(ckpt, components, seed), _weights_digest(ckpt)
    stored = read_prior(path, digest)
    if stored is not None:
        if log:
            log(f"ex-post prior: {path.name} (fitted on {stored.info.get('n_codes')} training codes)")
        return stored
    if log:
        log(f"ex-post prior: fitting a {components}-component Gaussian mixture on {len(train_x)} training codes")
    gmm = fit_ex_post(method, train_x, components, seed)
    meta = {"format": FORMAT, "kind": "gmm", "weights_sha256": digest, "info": json.dumps(gmm.info)}
    try:
        atomic_write(path, save_tensors(gmm.tensors(), metadata=meta), root=run_dir)
    except OSError as e:  # a read-only run still samples; the fit is only not kept
        if log:
            log(f"ex-post prior: not stored ({e.strerror or e}); it is refitted next time")
    if log:
        log(f"ex-post prior: {gmm.info['iterations']} EM iterations, mean log-likelihood "
            f"{gmm.info['log_likelihood']:.3f} nats; stored as {path}")
    return gmm
