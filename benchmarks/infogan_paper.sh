#!/usr/bin/env bash
# Issue 39: InfoGAN on full MNIST in the paper's setting (configs/infogan_mnist.yaml: Table 1's
# networks, the official launcher's λ = 1, batch 128, 5,000 steps, fresh codes for G's step), one
# run per seed on one thread in bf16 autocast (the DCGAN pair gave fp32's FID in bf16, issue 38),
# then the categorical code's unsupervised accuracy (cluster-acc on the 10,000 test digits) at every
# kept checkpoint (every 500 steps): the accuracy-vs-step curve of each seed.
#   bash benchmarks/infogan_paper.sh OUT "0 1 2"        # seeds; two calls with other seeds = two lanes
#   python benchmarks/infogan_summary.py OUT            # the curves and the final accuracies
set -uo pipefail
OUT=${1:?usage: infogan_paper.sh OUT "SEEDS"}
SEEDS=${2:-0 1 2 3 4}
mkdir -p "$OUT"
for s in $SEEDS; do
  run="$OUT/seed=$s"
  if [ ! -f "$run/run.json" ] || ! grep -q '"step": 5000' "$run/run.json"; then
    if [ -d "$run/checkpoints" ]; then
      genae resume "$run" > "$OUT/seed=$s.log" 2>&1
    else
      genae train --config configs/infogan_mnist.yaml --out "$run" --set train.seed=$s --set train.amp=bf16 \
        --set train.threads=1 --set train.progress=False --set train.tensorboard=False --set train.keep_ckpts=20 \
        > "$OUT/seed=$s.log" 2>&1
    fi
  fi
  for step in 500 1000 1500 2000 2500 3000 3500 4000 4500 5000; do
    [ -f "$run/eval-step-$(printf %08d $step).json" ] && continue
    if [ "$step" = 5000 ]; then
      genae eval "$run" --metrics cluster-acc --json > /dev/null 2>> "$OUT/seed=$s.log"
    else
      genae eval "$run" --step $step --metrics cluster-acc --json > /dev/null 2>> "$OUT/seed=$s.log"
    fi
  done
done
