#!/usr/bin/env bash
# Issue 28: QMM Table 1 on full MNIST at CPU scale, 3 seeds, through `genae sweep`: q-wgan and its
# λ = 0 ablation (3000 generator steps ≈ the GAN baselines' 240 s budget of issue 27), q-beta-vae and
# its λ = 0 ablation (150 minibatches × 10 EM updates) and the β-VAE on the same networks
# (beta-vae-qmm: 1500 minibatches × 1 update, the same number of gradient steps). FID in the sweep;
# qmm-score afterwards on 200 source images (benchmarks/qmm_scores.sh).
#   bash benchmarks/qmm_table1.sh OUT
set -euo pipefail
OUT=${1:-runs/qmm-table1}
mkdir -p "$OUT"
sweep() {  # name config steps extra-args...
  local name=$1 cfg=$2 steps=$3; shift 3
  genae sweep --config "configs/$cfg" --seeds 0,1,2 --metrics fid --set "train.steps=$steps" \
    --set "train.sample_every=$steps" --set "train.ckpt_every=$steps" --set train.log_every=50 \
    --jobs 1 --threads 1 --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
}
( sweep q-wgan q-wgan_mnist_cpu.yaml 3000 --grid model.reg_weight=0.05,0.0
  sweep beta-vae-qmm beta-vae-qmm_mnist_cpu.yaml 1500 ) &
( sweep q-beta-vae q-beta-vae_mnist_cpu.yaml 150 --grid model.reg_weight=0.05,0.0 ) &
wait
