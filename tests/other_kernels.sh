#!/usr/bin/env bash
# The test suite with the matrix-product and convolution kernels of another kind of x86-64 CPU,
# on this one: the same sums in another order, which is what differs between CPUs. Every
# tolerance in the suite must hold under each (bit-identity digests are skipped, once, because they
# compare only on the machine kind that made them).
#   bash tests/other_kernels.sh avx2          # an AVX2-only CPU (e.g. Intel before Skylake-SP, AMD before Zen 4)
#   bash tests/other_kernels.sh avx512        # AVX-512 without AMX / bf16 matrix units
#   bash tests/other_kernels.sh avx512_bf16   # AVX-512 with bf16 dot products, no AMX (AMD Zen 4)
# Extra arguments go to pytest (e.g. -k distributed).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?name a kernel kind: avx2, avx512 or avx512_bf16}; shift
case "$kind" in
  avx2)        aten=avx2;    mkl=AVX2;       onednn=AVX2 ;;
  avx512)      aten=avx512;  mkl=AVX512;     onednn=AVX512_CORE ;;
  avx512_bf16) aten=avx512;  mkl=AVX512;     onednn=AVX512_CORE_BF16 ;;
  *) echo "unknown kind $kind: avx2, avx512 or avx512_bf16" >&2; exit 2 ;;
esac
# ATen's own vectorised kernels, MKL's GEMM code path (conditional numerical reproducibility) and
# oneDNN's ISA: each picks the code the named CPU would run
export ATEN_CPU_CAPABILITY=$aten MKL_CBWR=$mkl ONEDNN_MAX_CPU_ISA=$onednn
PY=${PYTHON:-.venv/bin/python}
"$PY" -c "import torch; print('kernels:', torch.backends.cpu.get_cpu_capability(), '| MKL_CBWR', '$mkl', '| oneDNN', '$onednn')"
exec "$PY" -m pytest -q "$@"
