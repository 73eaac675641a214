#!/usr/bin/env bash
# Issue 39 on one lent GPU, in one device call of under 9 minutes: the diagnostic ladder's first
# rung (IMSAT's clustering objective, configs/imsat_mnist.yaml), InfoGAN in the paper's setting
# (configs/infogan_mnist.yaml: Table 1 networks, the official λ, 5,000 steps) for 5 seeds, and IMAE
# with eq. 11's VAT weight (vat_scale=beta, the default) at β ∈ {1, 5, 9} × 3 seeds with the
# paper's settings (configs/imae_mnist.yaml, its 60,000 steps cut to what fits: 20,000), all at
# once on the card (bf16 autocast), two CPU threads each. Not yet run (no GPU lent to issue 39).
#   here, once:  mkdir -p .gpu-data && cp -r ~/.cache/genae/data/mnist .gpu-data/mnist
#   device tool: command "bash benchmarks/issue39_gpu.sh", carry [".gpu-data"], timeout_s 560
#   then: python benchmarks/infogan_summary.py OUT/issue39-gpu/infogan
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-runs}/issue39-gpu
PY=${PYTHON:-python}
mkdir -p "$OUTDIR/infogan" "$OUTDIR/imsat"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no GPU'; print(torch.cuda.get_device_name(0))" || exit 1
"$PY" -m pip install -q -e . >/dev/null
COMMON=(--data-dir .gpu-data/mnist --set train.device=cuda --set train.amp=bf16 --set train.threads=2
        --set train.progress=False --set train.tensorboard=False)
timeout 500 "$PY" -m genae train --config configs/imsat_mnist.yaml --out "$OUTDIR/imsat/run" "${COMMON[@]}" \
  --set train.keep_ckpts=20 > "$OUTDIR/imsat.log" 2>&1 &
for s in 0 1 2 3 4; do
  timeout 500 "$PY" -m genae train --config configs/infogan_mnist.yaml --out "$OUTDIR/infogan/seed=$s" "${COMMON[@]}" \
    --set train.seed=$s --set train.keep_ckpts=20 > "$OUTDIR/infogan-$s.log" 2>&1 &
done
timeout 500 "$PY" -m genae sweep --config configs/imae_mnist.yaml --grid model.beta=1,5,9 --seeds 0,1,2 \
  --metrics cluster-acc,recon-mse --jobs 3 --threads 2 --data-dir .gpu-data/mnist --set train.device=cuda \
  --set train.amp=bf16 --set train.steps=20000 --set train.progress=False --set train.tensorboard=False \
  --out "$OUTDIR/imae" > "$OUTDIR/imae.log" 2>&1 &
wait
for run in "$OUTDIR"/imsat/run "$OUTDIR"/infogan/seed=*; do   # the accuracy curve over the kept checkpoints
  for ck in "$run"/checkpoints/step-*; do
    [ -d "$ck" ] || continue
    "$PY" -m genae eval "$run" --step "$((10#${ck##*step-}))" --metrics cluster-acc --json --device cuda \
      >> "$run.curve.jsonl" 2>/dev/null
  done
done
rm -rf "$OUTDIR"/*/*/checkpoints "$OUTDIR"/imae/runs/*/checkpoints   # eval files, metrics.jsonl and grids come back
