#!/usr/bin/env bash
# Issue 41: LSR-GAN with Table 3's networks (the defaults: ResNet encoder/decoder, Table 3's patch
# discriminator, λ on −log q averaged over the latent as the authors' code) at the recipe's length
# (5,000 VAE + 5,000 GAN steps, batch 32), on full MNIST, 3 seeds, every metric for both renderers
# (NAME@vae: the stage-1 VAE decoder; NAME@lsr: the LSR generator), 5,000 images.
# Two sweeps, one thread each, one after the other:
#   bf16  train.amp=bf16 (channels-last by train.channels_last=auto): ~3× the fp32 rate here
#   fp32  the same runs in fp32: issue 38's check that bf16 gives LSR-GAN's results too
#   bash benchmarks/lsr_table3.sh OUT [DATA]        # DATA: mnist (default) or fashion-mnist
#   genae compare OUT/mnist-bf16 OUT/mnist-fp32 --metrics fid@vae,fid@lsr,fid-seeded@vae,fid-seeded@lsr --markdown
set -euo pipefail
OUT=${1:-runs/lsr-table3}
DATA=${2:-mnist}
mkdir -p "$OUT"
source "$(dirname "$0")/lsr_metrics.sh"   # M: every metric for both renderers
for amp in bf16 fp32; do
  set_amp=$([ "$amp" = fp32 ] && echo none || echo bf16)
  genae sweep lsr-gan --data "$DATA" --seeds 0,1,2 --metrics "$M" --n-samples 5000 --jobs 1 --threads 1 \
    --set "train.amp=$set_amp" --set train.progress=False --set train.tensorboard=False \
    --out "$OUT/$DATA-$amp" > "$OUT/$DATA-$amp.log" 2>&1
done
