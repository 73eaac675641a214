#!/usr/bin/env bash
# Issue 44: FID with the method's own prior against FID with the ex-post Gaussian mixture
# (10 full-covariance components, EM on the codes of the first train.prior_examples training
# examples, stored in the checkpoint), for the encoder methods of a folder of runs.
#   bash benchmarks/ex_post_gmm.sh RUNS [METHODS]     # RUNS: e.g. the defaults benchmark's OUT/runs
# Prints a Markdown table: method, step, FID (own prior), FID (gmm), the mixture's EM iterations.
set -euo pipefail
RUNS=${1:?usage: ex_post_gmm.sh RUNS [METHODS]}
METHODS=${2:-ae vae wae-gan maskaae}
for m in $METHODS; do
  genae eval "$RUNS/$m" --metrics fid --n-samples 5000 --json --allow-skipped > /dev/null
  genae eval "$RUNS/$m" --metrics fid --prior gmm --n-samples 5000 --json > /dev/null
done
python - "$RUNS" $METHODS <<'PY'
import json, sys
from pathlib import Path
runs, methods = Path(sys.argv[1]), sys.argv[2:]
print("| method | step | FID, own prior | FID, ex-post GMM | EM iterations |")
print("|---|---|---|---|---|")
for m in methods:
    rec = json.loads((runs / m / "eval.json").read_text())
    own, gmm = rec["metrics"]["fid"], rec["metrics"]["fid@gmm"]
    own_v = "no sampler" if "skipped" in own else f"{own['value']:.2f}"
    ckpt = sorted((runs / m / "checkpoints").glob("step-*"))[-1]
    meta = next(ckpt.glob("ex-post-gmm-k10-s0.safetensors"))
    from safetensors import safe_open
    with safe_open(str(meta), framework="pt") as f:
        info = json.loads(f.metadata()["info"])
    print(f"| {m} | {rec['step']} | {own_v} | {gmm['value']:.2f} | {info['iterations']} |")
PY
