#!/usr/bin/env bash
# Data-parallel scaling on a machine with several CUDA cards: steps/s and seconds per resample
# of reaction-diffusion-20d (GLF per rank, RAD whole set) on 1, 2, 4, ... cards (NCCL, one
# rank per card), strong and weak scaling, through glfpinn train --nproc K --device cuda.
# Usage (from the repository root, with the package installed): bash benchmarks/gpu/multi_gpu.sh
# Writes the table, headed by the cards' names, to stdout and, when $OUT is set, to
# $OUT/multi_gpu_results.md. Nothing in CI needs it.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python}
out=${OUT:-/tmp}/multi_gpu_results.md
cards=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "$cards" -lt 2 ]; then
  echo "multi_gpu.sh: this machine has $cards CUDA card(s); data-parallel scaling needs 2 or more" >&2
  exit 2
fi
nprocs=1
k=2
while [ "$k" -le "$cards" ]; do nprocs="$nprocs,$k"; k=$((k * 2)); done
{
  echo "# Data-parallel scaling on $cards cards"
  echo
  $PY - <<'PYEOF'
import torch
names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
print(f"cards: {torch.cuda.device_count()} x {', '.join(sorted(names))}, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, NCCL {'.'.join(map(str, torch.cuda.nccl.version()))}")
PYEOF
  echo
  timeout 1200 $PY benchmarks/distributed.py scaling --device cuda --nprocs "$nprocs" \
    --n-points 200000 --steps 300 --resample-every 100 --out "${OUT:-/tmp}/multi-gpu-runs"
} | tee "$out"
