"""CTRL reproduction figures for trained runs: nearest-subspace accuracy of the encoder, FID (domain
backbone) of reconstructions and of class-conditional samples, and the fraction of class-conditional
samples the domain classifier assigns to the requested class.

    python benchmarks/ctrl_repro.py RUN [RUN ...] [--n 10000] [--split test] [--json OUT.json]
        [--step N] [--data-dir DIR] [--ns-only]

``--step`` scores that checkpoint instead of the latest; ``--data-dir`` scores the run on another
copy of its dataset (e.g. a run trained on ``benchmarks/mnist_disjoint.py``'s 58,000 digits, scored on
full MNIST's official test split: the train split of DIR then fits the subspaces); ``--ns-only``
stops after ns-acc (no FIDs, no domain classifier).

For each run (latest checkpoint): ``ns-acc`` through ``genae.metrics.evaluate``; then, with the
same ``EvalContext`` (domain classifier trained on the run's training split and cached; real
statistics of the reference split):
- ``fid_recon``: Fréchet distance between backbone features of the reconstructions g(f(x)) of the
  first n reference images and of the reference split;
- ``fid_class_cond``: the same for n class-conditional samples (eq. 13), n/K per class (classes in
  turn), quantised to uint8 like saved images;
- ``class_match``: the fraction of those samples whose domain-classifier label is the requested
  class (and per class);
- ``fid_uncond``: genae's ``fid`` metric (``sample`` with y=None: uniform classes for LDR-Multi,
  the pooled Gaussian of eq. 14 for LDR-Binary).
Every FID carries the backbone, its test accuracy, n_real and n_fake.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch

from genae.metrics import EvalContext, evaluate
from genae.metrics.frechet import feature_statistics, frechet_distance
from genae.runs import checkpoint_step, latest_checkpoint, load_run, run_config


def _fid(ctx: EvalContext, images: torch.Tensor) -> float:
    real = ctx.real_features()
    mu, sigma = feature_statistics(ctx.features(images))
    return float(frechet_distance(real["mu"], real["sigma"], mu, sigma))


@torch.no_grad()
def figures(run: str, n: int, split: str, seed: int = 0, step: int | None = None,
            data_dir: str | None = None, ns_only: bool = False) -> dict:
    t0 = time.perf_counter()
    cfg, info = run_config(run)
    method = load_run(run, step=step)
    data = replace(cfg.data, root=data_dir) if data_dir else cfg.data
    ctx = EvalContext(data, split=split, n_samples=n, backbone="domain", seed=seed)
    out = {"run": run, "method": cfg.method, "data": cfg.data.name, "data_dir": data.root,
           "step": step if step is not None else checkpoint_step(latest_checkpoint(run))}
    res = evaluate(method, ctx, ["ns-acc"] if ns_only else ["ns-acc", "fid"])
    out["ns_acc"] = {k: res["ns-acc"][k] for k in ("centered", "uncentered", "n_train", "n_test")}
    if ns_only:
        out["seconds"] = round(time.perf_counter() - t0, 1)
        return out
    out["fid_uncond"] = res["fid"]["value"]
    _, rec = ctx.reconstructions(method)
    out["fid_recon"] = _fid(ctx, rec)
    k = info.num_classes
    y = torch.arange(n) % k
    gen = torch.Generator().manual_seed(seed + 1)
    samples = torch.cat([method.to_unit(method.sample(len(yb), y=yb, generator=gen)).cpu()
                         for yb in y.split(ctx.batch_size)])
    samples = (samples.clamp(0, 1) * 255).round().to(torch.uint8)
    out["fid_class_cond"] = _fid(ctx, samples)
    net = ctx.classifier()
    pred = torch.cat([net(s.float().div(255)).argmax(1) for s in samples.split(ctx.batch_size)])
    hit = (pred == y).double()
    out["class_match"] = float(hit.mean())
    out["class_match_per_class"] = [round(float(hit[y == c].mean()), 4) for c in range(k)]
    out["protocol"] = {key: v for key, v in ctx.protocol(len(ctx.real_features()["features"]), n).items()
                       if key != "backbone_weights"}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--n", type=int, default=10000, help="reconstructions / samples per FID")
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--step", type=int, help="checkpoint step to score (default: the latest)")
    p.add_argument("--data-dir", help="score on this copy of the run's dataset instead")
    p.add_argument("--ns-only", action="store_true", help="nearest-subspace accuracy only")
    args = p.parse_args()
    rows = [figures(r, args.n, args.split, step=args.step, data_dir=args.data_dir,
                    ns_only=args.ns_only) for r in args.runs]
    for r in rows:
        print(json.dumps(r, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2, default=str)


if __name__ == "__main__":
    main()
