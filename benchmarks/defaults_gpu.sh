#!/usr/bin/env bash
# Every registered method with its defaults on MNIST-10k at its *default length* on one lent GPU,
# eight runs at once: the rows the 2-core CPU cannot train at full length (CTRL's batch of 2048,
# Q-β-VAE's ten EM steps over ten decoders, WGAN-GP's five critic steps with a gradient penalty,
# DMWGAN, MaskAAE, VAE-GAN). Meant for one device call of under 9 minutes; not yet run (no GPU has
# been lent to this issue): docs/results.md says so beside the CPU table.
#   here, once:  mkdir -p .gpu-data && cp -r ../shared/datasets/mnist-10k .gpu-data/
#   device tool: command "bash benchmarks/defaults_gpu.sh", carry [".gpu-data"]; the table and the
#                grids come back under $OUT (the device tool's output folder)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${OUT:-runs}/defaults-gpu
PY=${PYTHON:-python}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no GPU'; print(torch.cuda.get_device_name(0))"
"$PY" -m pip install -q -e . >/dev/null
"$PY" benchmarks/defaults_mnist.py --device cuda --jobs 8 --data-dir .gpu-data/mnist-10k --out "$RUNS" \
  --only ctrl-multi,ctrl-binary,ctrl-ce,q-beta-vae,q-beta-vae-noreg,beta-vae-qmm,wgan-gp,dmwgan,maskaae,maskaae-fixed,vae-gan
rm -rf "$RUNS"/runs/*/checkpoints   # the table, grids and eval.json are what come back
