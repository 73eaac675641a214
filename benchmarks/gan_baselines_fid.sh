#!/usr/bin/env bash
# Issue 27: FID (domain backbone, 10k generated vs the MNIST test split) over 3 seeds for the GAN
# baselines and the vae / wae-gan references on full MNIST, every run with the same training
# wall-clock budget (≈ 240 s on one thread of the 2-core development machine, two runs at once):
# each method's step count is 240 s × its steps/s measured the same way (two 1-thread runs at once;
# docs/results.md). Two lanes of `genae sweep` (one job, one thread each) keep both cores busy.
#   bash benchmarks/gan_baselines_fid.sh OUT
set -euo pipefail
OUT=${1:-runs/gan-baselines}
mkdir -p "$OUT"
sweep() {  # method steps extra-metrics
  local m=$1 steps=$2 metrics=fid${3:+,$3}
  genae sweep --config "configs/${m}_mnist_cpu.yaml" --seeds 0,1,2 --metrics "$metrics" \
    --set "train.steps=$steps" --set "train.sample_every=$steps" --set "train.ckpt_every=$steps" \
    --set train.log_every=50 --jobs 1 --threads 1 --out "$OUT/$m" > "$OUT/$m.log" 2>&1
}
( sweep wgan-gp 900; sweep dcgan 4550; sweep dmwgan 550 cluster-acc,nmi; sweep vae 9200 ) &
( sweep wgan-sn 4450; sweep infogan-qmm 4900 cluster-acc,nmi; sweep vae-gan 2450; sweep wae-gan 6000 ) &
wait
