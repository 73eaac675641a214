#!/usr/bin/env bash
# Issue 29 at CPU scale: LSR-GAN on full MNIST (configs/lsr-gan_mnist_cpu.yaml with a shorter
# budget: 1000 VAE steps, then 1000 GAN steps), one run per seed, then every imagination metric for
# both renderers of the same run (the stage-1 VAE decoder and the LSR generator).
#   bash benchmarks/lsr_cpu.sh OUT SEED...
set -euo pipefail
OUT=$1; shift
mkdir -p "$OUT"
for seed in "$@"; do
  run="$OUT/seed=$seed"
  [ -f "$run/run.json" ] || OMP_NUM_THREADS=1 genae train --config configs/lsr-gan_mnist_cpu.yaml --out "$run" \
    --set model.vae_steps=1000 --set train.steps=2000 --set train.seed="$seed" --set train.threads=1 \
    --set train.progress=false > "$run.log" 2>&1
  OMP_NUM_THREADS=1 genae eval "$run" --renderer vae,lsr --json \
    --n-samples 5000 --metrics fid,fid-seeded,sharpness-sp,imagine-mse,imagine-class-acc,decode-variance,recon-class-acc > "$run.eval.json"
done
