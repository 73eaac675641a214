#!/usr/bin/env bash
# Issue 30: IMAE Fig. 3 (unsupervised accuracy of y vs β on MNIST and Fashion-MNIST) and Fig. 5
# (MIG vs reconstruction on dSprites) at CPU scale, through `genae sweep`: imae, beta-vae-hybrid,
# infovae and jointvae (all with VAT on p(y|x)), two lanes of one thread. MNIST: β ∈ {1,3,5,7,9} ×
# 3 seeds; dSprites: β ∈ {1,4,10} × SEEDS; Fashion-MNIST: β ∈ {1,3,5,7,9} × SEEDS (SEEDS=0,1,2; in
# docs/results.md dSprites' seed 2 ran a stop later as a sweep of its own, OUT/dsprites-s2/<method>,
# and Fashion-MNIST's β = 3, 7 in OUT/fashion-b37/<method>; benchmarks/imae_summary.py reads both).
#   SEEDS=0,1,2 bash benchmarks/imae_figures.sh OUT
#   genae compare OUT/mnist/{imae,beta-vae-hybrid,infovae,jointvae} --markdown   (and fashion, dsprites)
set -euo pipefail
OUT=${1:-runs/imae-figures}
SEEDS=${SEEDS:-0,1,2}
mkdir -p "$OUT"/{mnist,fashion,dsprites}
sweep() {  # method config-suffix sub grid seeds metrics extra...
  local m=$1 cfg=$2 sub=$3 grid=$4 seeds=$5 metrics=$6; shift 6
  genae sweep --config "configs/${m}_$cfg" --grid "model.beta=$grid" --seeds "$seeds" --metrics "$metrics" \
    --jobs 1 --threads 1 --out "$OUT/$sub/$m" "$@" > "$OUT/$sub/$m.log" 2>&1
}
lane() {
  for m in "$@"; do sweep "$m" mnist_cpu.yaml mnist 1,3,5,7,9 0,1,2 cluster-acc,recon-mse; done
  for m in "$@"; do sweep "$m" dsprites_cpu.yaml dsprites 1,4,10 "$SEEDS" mig,mig-sampled,recon-mse,tc,cluster-acc; done
  for m in "$@"; do
    sweep "$m" mnist_cpu.yaml fashion 1,3,5,7,9 "$SEEDS" cluster-acc,recon-mse --set data.name=fashion-mnist
  done
}
lane imae infovae &
lane jointvae beta-vae-hybrid &
wait
