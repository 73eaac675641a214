#!/usr/bin/env bash
# Issue 41 on one lent GPU: LSR-GAN with Table 3's networks (the defaults) at the recipe's length,
# full MNIST and Fashion-MNIST, 3 seeds each, in bf16 (channels-last by train.channels_last=auto)
# and in fp32: the 12 runs of benchmarks/lsr_table3.sh (issue 41's table and issue 38's LSR
# equality check), six at a time on the one card, two CPU threads each. Meant for one device call
# of under 9 minutes; not yet run (no GPU has been lent to issue 41).
#   here, once:  mkdir -p .gpu-data && cp -r ~/.cache/genae/data/mnist .gpu-data/mnist && \
#                cp -r /usr/share/datasets/fashion-mnist .gpu-data/fashion-mnist
#   device tool: command "bash benchmarks/lsr_gpu.sh", carry [".gpu-data"], timeout_s 560;
#                the sweeps' eval.json, grids and logs come back under $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-runs}/lsr-gpu
PY=${PYTHON:-python}
mkdir -p "$OUTDIR"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no GPU'; print(torch.cuda.get_device_name(0))"
"$PY" -m pip install -q -e . >/dev/null
source benchmarks/lsr_metrics.sh   # M: every metric for both renderers
for amp in bf16 none; do
  for data in mnist fashion-mnist; do
    "$PY" -m genae sweep lsr-gan --data "$data" --data-dir ".gpu-data/$data" --seeds 0,1,2 --metrics "$M" \
      --n-samples 5000 --jobs 3 --threads 2 --set train.device=cuda --set "train.amp=$amp" \
      --set train.progress=False --set train.tensorboard=False \
      --out "$OUTDIR/$data-$amp" > "$OUTDIR-$data-$amp.log" 2>&1 &
  done
  wait   # bf16 (6 runs at once), then fp32 (6 runs at once)
done
rm -rf "$OUTDIR"/*/runs/*/checkpoints   # eval.json, metrics.jsonl and the grids are what come back
