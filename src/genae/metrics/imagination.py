"""Imaginations (LSR-GAN): images rendered from samples z ~ q(z|x) of reference images.

``fid-seeded`` (FID of test-seeded images: one draw z ~ q(z|x) per reference image, rendered;
the prior-seeded FID is ``fid``), ``imagine-mse`` (input vs its imagination), ``imagine-class-acc``
(the domain classifier on imaginations: absolute against the label, relative against its own
prediction on the input) and ``sharpness-sp`` (San Pedro & Siersdorfer's luminance-normalised
sharpness of imaginations, reconstructions and real images). All use the first ``ctx.n_samples``
images of the reference split and one draw each (seeded by the context); images in [0, 1] pixels.
For ``lsr-gan`` the current ``renderer`` decodes (``genae eval --renderer vae|lsr``).
"""
from __future__ import annotations

from typing import Any

import torch

from . import frechet, image
from .base import Skip, need_images, need_labels, quantize, to_unit
from .context import EvalContext

__all__ = ["fid_seeded", "imagine_class_acc", "imagine_mse", "sharpness_sp"]


def _imaginations(method, ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, one imagination each), float in [0, 1] (images) on the CPU, memoised per method."""
    if not (method.supports("posterior_sample") and method.supports("decode")):
        raise Skip(f"{type(method).__name__} has no stochastic encoder q(z|x) and decoder to imagine with")

    def make():
        x = ctx.dataset(ctx.split).x[:ctx.n_samples]
        g = ctx.generator(3)
        out = []
        with torch.no_grad():
            for i in range(0, len(x), ctx.batch_size):
                xb = ctx.to_method(x[i:i + ctx.batch_size], method)
                out.append(method.to_unit(method.decode(method.posterior_sample(xb, generator=g))).float().cpu())
        return to_unit(x), torch.cat(out)

    return ctx.memo(method, "imaginations", make)


def fid_seeded(method, ctx: EvalContext) -> dict[str, Any]:
    """FID of test-seeded images (z ~ q(z|x) of the reference images) against the reference split."""
    real = ctx.real_features()
    _, imag = _imaginations(method, ctx)
    fake = ctx.features(quantize(imag) if ctx.kind == "image" else imag)
    mu, sigma = frechet.feature_statistics(fake)
    return {"value": frechet.frechet_distance(real["mu"], real["sigma"], mu, sigma), "seeds": "q(z|x) of the split",
            **ctx.protocol(len(real["features"]), len(fake))}


def imagine_mse(method, ctx: EvalContext) -> dict[str, Any]:
    """Mean squared error per element between each input and its imagination, and the per-image
    sum of squared errors."""
    x, imag = _imaginations(method, ctx)
    se = (imag.double() - x.double()) ** 2
    return {"value": float(se.mean()), "sse_per_example": float(se.flatten(1).sum(1).mean()),
            "scale": "[0,1] pixels" if ctx.kind == "image" else "raw", "n": len(x), "split": ctx.split}


def imagine_class_acc(method, ctx: EvalContext) -> dict[str, Any]:
    """The domain classifier on imaginations: absolute (true label) and relative (its own label
    for the input) accuracy."""
    need_images(ctx, "imagine-class-acc")
    _, y = need_labels(ctx, "imagine-class-acc")
    classifier = ctx.get_backbone("domain")
    x, imag = _imaginations(method, ctx)
    y = torch.as_tensor(y[:len(x)])
    p_imag, p_orig = classifier.predict(imag, ctx.batch_size), classifier.predict(x, ctx.batch_size)
    return {"absolute": float((p_imag == y).double().mean()), "relative": float((p_imag == p_orig).double().mean()),
            "value": float((p_imag == y).double().mean()), "classifier": "domain", **classifier.identity(),
            "n": len(x), "split": ctx.split}


def sharpness_sp(method, ctx: EvalContext) -> dict[str, Any]:
    """San Pedro & Siersdorfer sharpness (``image.sharpness_sp_per_image``) of imaginations
    (``value``), of reconstructions decode(μ(x)) and of the real inputs, mean and std over images."""
    need_images(ctx, "sharpness-sp")
    x, imag = _imaginations(method, ctx)
    out: dict[str, Any] = {"normalisation": image.SHARPNESS_SP_NOTE, "n": len(x), "split": ctx.split}
    s = image.sharpness_sp_per_image(imag)
    out.update(value=float(s.mean()), std=float(s.std()))
    if method.supports("reconstruct"):
        _, rec = ctx.reconstructions(method)
        s = image.sharpness_sp_per_image(rec)
        out.update(reconstructions=float(s.mean()), reconstructions_std=float(s.std()))
    s = image.sharpness_sp_per_image(x)
    out.update(real=float(s.mean()), real_std=float(s.std()))
    return out
