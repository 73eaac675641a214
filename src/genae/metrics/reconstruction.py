"""Reconstructions and pixels: ``recon-mse``, ``sharpness``, ``recon-class-acc``,
``decode-variance``.

Images are compared in [0, 1] pixels, vectors raw; reconstructions are of the first
``ctx.n_samples`` examples of the reference split.
"""
from __future__ import annotations

from typing import Any

import torch

from ..methods.base import Unsupported
from . import image
from .base import Skip, need_images, need_labels, to_unit
from .context import EvalContext

__all__ = ["SHARPNESS_NOTE", "decode_variance", "recon_class_acc", "recon_mse", "sharpness_metric"]


def recon_mse(method, ctx: EvalContext) -> dict[str, Any]:
    """Mean squared reconstruction error per element ([0, 1] pixels for images, raw for vectors),
    and the per-example sum of squared errors."""
    orig, rec = ctx.reconstructions(method)
    se = (rec.double() - orig.double()) ** 2
    return {"value": float(se.mean()), "sse_per_example": float(se.flatten(1).sum(1).mean()),
            "scale": "[0,1] pixels" if ctx.kind == "image" else "raw", "n": len(orig),
            "split": ctx.split}


SHARPNESS_NOTE = ("variance of the 3x3 Laplacian ('valid' borders) of the BT.601 luminance, "
                  "pixels in [0,1], population variance per image, mean over images")


def sharpness_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """Sharpness of samples (``value``), of reconstructions and of the real reference images."""
    need_images(ctx, "sharpness")
    out: dict[str, Any] = {"normalisation": SHARPNESS_NOTE, "split": ctx.split}
    try:
        s = image.sharpness_per_image(to_unit(ctx.samples(method)))
        out.update(value=float(s.mean()), std=float(s.std()), n_fake=len(s))
    except Unsupported as e:
        out["samples"] = f"skipped: {e}"
    try:
        orig, rec = ctx.reconstructions(method)
        s = image.sharpness_per_image(rec)
        out.update(reconstructions=float(s.mean()), reconstructions_std=float(s.std()))
    except Unsupported as e:
        out["reconstructions"] = f"skipped: {e}"
        orig = to_unit(ctx.dataset(ctx.split).x[:ctx.n_samples])
    s = image.sharpness_per_image(orig)
    out.update(real=float(s.mean()), real_std=float(s.std()), n_real=len(s))
    if "value" not in out and "reconstructions_std" not in out:
        raise Skip(f"{type(method).__name__} can neither sample nor reconstruct")
    return out


def recon_class_acc(method, ctx: EvalContext) -> dict[str, Any]:
    """Domain-classifier accuracy on reconstructions: absolute (true label) and relative (the
    classifier's own label for the original), as in LSR-GAN. Always the ``domain`` backbone's
    classifier, whatever ``ctx.backbone``."""
    need_images(ctx, "recon-class-acc")
    _, y = need_labels(ctx, "recon-class-acc")
    classifier = ctx.get_backbone("domain")
    orig, rec = ctx.reconstructions(method)
    y = torch.as_tensor(y[:len(orig)])
    p_rec = classifier.predict(rec, ctx.batch_size)
    p_orig = classifier.predict(orig, ctx.batch_size)
    return {"absolute": float((p_rec == y).double().mean()),
            "relative": float((p_rec == p_orig).double().mean()),
            "classifier_on_originals": float((p_orig == y).double().mean()),
            "classifier": "domain", **classifier.identity(), "n": len(orig), "split": ctx.split}


def decode_variance(method, ctx: EvalContext, n_images: int = 500, n_draws: int = 10) -> dict[str, Any]:
    """Mean per-pixel variance (ddof=1, [0, 1] pixels) among decodings of ``n_draws`` samples
    z ~ q(z|x), over ``n_images`` reference images (LSR-GAN's 'variance' column)."""
    if not (method.supports("posterior_sample") and method.supports("decode")):
        raise Skip(f"{type(method).__name__} has no stochastic encoder q(z|x) to decode draws of "
                   "(no posterior_sample)")
    x = ctx.dataset(ctx.split).x[:n_images]
    g = ctx.generator(1)
    per_image = []
    with torch.no_grad():
        for i in range(0, len(x), ctx.batch_size):
            xb = ctx.to_method(x[i:i + ctx.batch_size], method)
            draws = [method.to_unit(method.decode(method.posterior_sample(xb, generator=g))).double().cpu()
                     for _ in range(n_draws)]
            v = torch.stack(draws).var(dim=0, unbiased=True)
            per_image.append(v.flatten(1).mean(1))
    v = torch.cat(per_image)
    return {"value": float(v.mean()), "n_images": len(v), "n_draws": n_draws,
            "scale": "[0,1] pixels" if ctx.kind == "image" else "raw", "split": ctx.split}
