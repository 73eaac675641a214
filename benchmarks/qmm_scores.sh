#!/usr/bin/env bash
# Issue 28: the disentanglement score (slant, width) of every run of QMM's Table 1 on 200 source
# images of the MNIST test split (encoders encode; GANs encode by optimisation, QMM_INVERSION),
# two runs at a time, one thread each. Writes each run's eval.json.
#   bash benchmarks/qmm_scores.sh RUN_DIR...
set -uo pipefail
printf '%s\n' "$@" | xargs -P "${JOBS:-2}" -I{} env OMP_NUM_THREADS=1 genae eval {} --metrics qmm-score --qmm-images 200 --json \
  > /dev/null
