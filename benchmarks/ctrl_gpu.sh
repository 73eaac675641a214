#!/usr/bin/env bash
# The paper's full-MNIST CTRL configurations on one GPU, timed, then scored with ctrl_repro.py.
#
#   OUT=DIR bash benchmarks/ctrl_gpu.sh MNIST_DIR BUDGET_S
#
# Trains configs/ctrl-multi_mnist.yaml (LDR-Multi, 4500 iterations) and then, if time is left,
# configs/ctrl-binary_mnist.yaml (LDR-Binary), each as published (DCGAN w = 64, batch 2048, Adam
# 1.5e-4, fp32), on the official MNIST files in MNIST_DIR; scores each with
# benchmarks/ctrl_repro.py on the official test split (ns-acc, FIDs, class match). A run that would
# outlast the budget gets SIGTERM (genae checkpoints and stops; the figures are then of that step,
# and say so). Writes to $OUT: gpu.txt (device, driver, torch), ctrl-{multi,binary}.json (the
# figures), ctrl-{multi,binary}.tar (config, metrics.jsonl, sample grids, final weights), log.txt.
set -u
DATA=$1
BUDGET=${2:-480}
OUT=${OUT:?set OUT}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
START=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
for m in multi binary; do
  # keep ≈ 60 s for scoring; LDR-Multi may use all but that, LDR-Binary what is left
  t=$(( $(left) - 60 ))
  if [ "$t" -lt 60 ]; then echo "skip ctrl-$m: $(left) s left"; continue; fi
  echo "== ctrl-$m: training, at most $t s"
  timeout -s TERM --kill-after=30 "$t" python3 -m genae train --config "configs/ctrl-${m}_mnist.yaml" \
      --data-dir "$DATA" --set train.progress=False --set train.tensorboard=False --out "runs/gpu-ctrl-$m"
  echo "== ctrl-$m: training exit $? after $(( $(date +%s) - START )) s"
  python3 benchmarks/ctrl_repro.py "runs/gpu-ctrl-$m" --json "$OUT/ctrl-$m.json"
  last=$(ls -d runs/gpu-ctrl-$m/checkpoints/step-* | tail -1)
  keep=()
  for f in config.yaml metrics.jsonl samples "${last#runs/gpu-ctrl-$m/}/model.safetensors" \
           "${last#runs/gpu-ctrl-$m/}/config.yaml"; do
    [ -e "runs/gpu-ctrl-$m/$f" ] && keep+=("runs/gpu-ctrl-$m/$f")
  done
  tar cf "$OUT/ctrl-$m.tar" "${keep[@]}"
done
echo "== done after $(( $(date +%s) - START )) s"
