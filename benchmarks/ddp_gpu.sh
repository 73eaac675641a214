#!/usr/bin/env bash
# GPU throughput of data-parallel training (issue 31, item 5), for a machine with N GPUs:
# steps/s of the plain trainer vs torchrun with N ranks, fp32 vs bf16 + channels-last (+ compile),
# for CTRL (resnet32, CIFAR-10-shaped fake images, batch 2048) and DCGAN.
#   NPROC=8 STEPS=60 bash benchmarks/ddp_gpu.sh          # prints one line per configuration
# On a CPU-only machine it runs the same code paths on small settings (a smoke test):
#   DEVICE=cpu NPROC=2 STEPS=4 BATCH=20 bash benchmarks/ddp_gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
NPROC=${NPROC:-1}; STEPS=${STEPS:-60}; BATCH=${BATCH:-2048}; DEVICE=${DEVICE:-auto}
OUT=$(mktemp -d)
common=(--data fake --set train.steps=$STEPS --set train.batch_size=$BATCH --set train.device=$DEVICE
        --set train.log_every=$STEPS --set train.ckpt_every=100000 --set train.sample_every=100000
        --set train.progress=false --set train.tensorboard=false --set train.nan_check=interval
        --set data.limit=$((BATCH * 4)))
if [ "$DEVICE" = cpu ]; then
  ctrl=(ctrl-multi --set model.arch=mlp --set model.width=32 --set model.feature_dim=8)
  dcgan=(dcgan --set model.hidden=8 --set model.depth=1 --set model.latent_dim=4)
  modes=("fp32:" "bf16-cl:--set train.amp=bf16 --set train.channels_last=true")
else
  ctrl=(ctrl-multi --set model.arch=resnet32 --set model.n_enc_steps=2 --set model.delta_r_pre_step=true)
  dcgan=(dcgan)
  modes=("fp32:" "bf16-cl:--set train.amp=bf16 --set train.channels_last=true"
         "bf16-cl-compile:--set train.amp=bf16 --set train.channels_last=true --set train.compile=true")
fi
rate() {  # steps/s of the last logged interval of run $1
  python -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])][-1]; print(r['steps_per_s'])" "$1/metrics.jsonl"
}
for m in ctrl dcgan; do
  declare -n args=$m
  for mode in "${modes[@]}"; do
    name=${mode%%:*}; read -r -a extra <<< "${mode#*:}"
    python -m genae train "${args[@]}" "${common[@]}" "${extra[@]}" --out "$OUT/$m-$name-plain" > /dev/null
    torchrun --standalone --nproc-per-node "$NPROC" -m genae train "${args[@]}" "${common[@]}" "${extra[@]}" \
      --out "$OUT/$m-$name-ddp" > /dev/null
    echo "$m $name: plain $(rate "$OUT/$m-$name-plain") steps/s, torchrun x$NPROC $(rate "$OUT/$m-$name-ddp") steps/s"
  done
done
rm -rf "$OUT"
