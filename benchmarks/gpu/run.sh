#!/usr/bin/env bash
# Speed, memory and time-to-accuracy benchmarks on a CUDA device, in under 9 minutes: every
# figure the docs want from a lent GPU, in one run.
# Usage (from the repository root, with the package installed): bash benchmarks/gpu/run.sh
# Writes every table to stdout and, when $OUT is set, to $OUT/gpu_results.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python}
out=${OUT:-/tmp}/gpu_results.md
{
  echo "# GPU benchmarks"
  echo
  $PY - <<'PYEOF'
import torch
print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PYEOF
  echo
  echo "## Training speed (allen-cahn): the default (compiled, CUDA graphs) against DeepXDE"
  timeout 150 $PY benchmarks/training_speed.py --device cuda --steps 300 --rounds 1 \
    --variants glfpinn,glfpinn-eager,glfpinn-naive,torch-eager,deepxde
  echo
  echo "## Compiled (default) against eager steps on every problem"
  timeout 120 $PY benchmarks/compile_speedup.py --device cuda --blocks 3
  echo
  echo "## Resample memory at d = 20: GLF, GLF-D and RAD"
  timeout 60 $PY benchmarks/resample_cost.py --device cuda --d 20 --n 10000,100000 \
    --samplers glf,glf-d,rad
  echo
  echo "## One resample vs one training step"
  timeout 150 $PY benchmarks/resample_cost.py --device cuda --d 2,10,20 \
    --n 1000,10000,100000,1000000 --samplers glf,glf-d,rad,r3
  echo
  echo "## Derivative operators"
  timeout 45 $PY benchmarks/derivatives.py --device cuda --quick
  echo
  echo "## Time to accuracy"
  timeout 60 $PY benchmarks/time_to_accuracy.py --device cuda --problems burgers \
    --samplers glf,rad --max-seconds 25
  timeout 60 $PY benchmarks/time_to_accuracy.py --device cuda --problems burgers \
    --samplers glf,rad --max-seconds 25 --compile
} 2>&1 | tee "$out"
