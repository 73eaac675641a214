#!/usr/bin/env bash
# Issue 44: the IMAE-family runs of IMAE Fig. 5 at CPU scale (configs/<method>_dsprites_cpu.yaml:
# Table 2 networks, 500 steps of batch 64, β ∈ {1, 4, 10}), scored with every disentanglement metric:
# MIG (both estimators), DCI, SAP, the FactorVAE score, modularity and explicitness.
#   SEEDS=0 bash benchmarks/disentangle_dsprites.sh OUT        # train (one thread), then evaluate; rerun resumes
#   genae compare OUT/{imae,beta-vae-hybrid,infovae,jointvae} --markdown
set -euo pipefail
OUT=${1:-runs/disentangle-dsprites}
SEEDS=${SEEDS:-0,1,2}
METRICS=${METRICS:-mig,mig-sampled,dci,sap,factorvae-score,modularity,recon-mse}
mkdir -p "$OUT"
for m in imae beta-vae-hybrid infovae jointvae; do
  genae sweep --config "configs/${m}_dsprites_cpu.yaml" --grid model.beta=1,4,10 --seeds "$SEEDS" \
    --metrics "$METRICS" --jobs 1 --threads 1 --out "$OUT/$m" > "$OUT/$m.log" 2>&1 \
    || echo "$m: some points failed (see $OUT/$m.log); rerun to retry them"
done
